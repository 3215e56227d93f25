# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A host page that the firmware still owns when guest_memfd hands it to the guest.

What it shows: ``Scenario.preassign`` makes the host page that guest_memfd will allocate
for one GPA come from the allocator still in the RMP's Firmware state (assigned, ASID 0,
immutable: what Linux ``rmp_mark_pages_firmware`` leaves) -- a host that gave a
firmware page back without reclaiming it.  The GPA is the first page of the highest
2 MiB unit of RAM, which the guest has not accepted yet; the guest then accepts that
unit, so KVM meets the page on its real path: the guest's PVALIDATE faults, guest_memfd
allocates the page, ``sev_gmem_prepare`` prepares it.

Expected outcome (sources: Linux arch/x86/kvm/svm/sev.c ``sev_gmem_prepare``: a page
already assigned in the RMP is taken as prepared and left alone, return 0;
``sev_handle_rmp_fault``: nothing to PSMASH for a 4 KiB entry; APM vol 2, "RMP checks":
a guest access to a page that is not its own is an #NPF with the RMP bit; docs/host.md,
"Pre-owned host pages"):

* ``sev_gmem_prepare`` returns 0 for the page every time, and its RMP entry stays the
  firmware's (assigned, ASID 0, immutable): KVM never makes it the guest's;
* KVM maps it anyway; the guest's PVALIDATE fails the RMP check, KVM finds nothing to
  fix and re-enters, and it faults again: KVM's #NPF loop, with no progress;
* the run does not complete (exit status 1) and the guest never finishes accepting: the
  same fault comes back with nothing changed, so the model ends the run as a livelock
  in ``kvm_mmu_page_fault`` on vCPU 0 (docs/host.md, "Loops and livelocks").

The owner "guest" (another SNP guest's page, ``asid=2``) gives the same loop; "hv-fixed"
makes ``rmp_make_private`` fail instead (KVM_RUN -EINVAL).

Run it: ``snpsim run examples/preowned_pages.py``.
"""

from snpsim.api import Scenario

MEMORY = 64 << 20
TARGET = MEMORY - (2 << 20)        # the first page of the highest 2 MiB unit of RAM

scenario = Scenario("a guest_memfd page the firmware owns", memory=MEMORY, vcpus=1)
scenario.preassign(TARGET, "firmware")
data = scenario.data


@scenario.guest(vcpu=0)
def accept_the_top_unit(g):
    data["unaccepted"] = g.unaccepted_gpa()     # TARGET: nothing has accepted it yet
    g.accept_memory(TARGET, 2 << 20)            # PSC to private, then PVALIDATE each page
    data["accepted"] = True                     # not reached


@scenario.hook("sev_gmem_prepare")
def watch_prepare(original, kvm, pfn, gfn, order):
    ret = original(kvm, pfn, gfn, order)
    if gfn == TARGET >> 12:
        data["spa"] = pfn << 12
        data["prepare_calls"] = data.get("prepare_calls", 0) + 1
        data["prepare_returns"] = sorted(set(data.get("prepare_returns", [])) | {ret})
    return ret


@scenario.after
def look(h):
    data["rmp_after"] = h.rmp(data["spa"])      # still the firmware's
