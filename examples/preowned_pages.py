# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A host page that already belongs to another guest when guest_memfd hands it out.

What it shows: the page the host allocator gives guest_memfd for the guest's next
private fault is still assigned in the RMP to another SNP guest (ASID 2) -- a host
that reclaimed it wrongly, or not at all.  The scenario sets that state up with the
RMPUPDATE instruction just before KVM prepares the page (a hook on
``sev_gmem_prepare``, with the :class:`snpsim.api.Host` that ``@scenario.setup``
received), then lets KVM run its own code.

Expected outcome (sources: Linux arch/x86/kvm/svm/sev.c ``sev_gmem_prepare``: a page that
is already assigned is taken as prepared and left alone, return 0;
``sev_handle_rmp_fault``: nothing to PSMASH for a 4 KiB entry; APM vol 2, "RMP checks":
a guest access to a page assigned to another ASID is an #NPF with the RMP bit):

* ``sev_gmem_prepare`` returns 0 and the RMP entry stays ASID 2's: KVM never takes the
  page for this guest;
* KVM maps the page anyway; the guest's write fails the RMP check, KVM finds nothing
  to fix and re-enters, and the write faults again: KVM's #NPF loop, with no progress;
* the run does not complete (exit status 1): it ends as a livelock when the model
  detects the loop, or by the model-only ``max_entries_per_run`` watchdog (set low here
  so the example ends quickly); the guest never reads its page back.

Run it: ``snpsim run examples/preowned_pages.py``.
"""

from snpsim.api import Scenario

OTHER_ASID = 2

scenario = Scenario("a guest_memfd page owned by another guest", memory="64M", vcpus=1,
                    kvm_knobs={"max_entries_per_run": 2000})
data = scenario.data
host = {}


@scenario.setup
def keep_host(h):
    host["h"] = h                          # for the hook below


@scenario.guest(vcpu=0)
def touch_fresh_page(g):
    va = g.alloc_page()                    # its guest_memfd page is prepared on first touch
    data["gpa"] = g.pa(va)
    g.write(va, b"mine")
    data["read_back"] = g.read(va, 4).decode()   # not reached


@scenario.hook("sev_gmem_prepare")
def hand_over_a_taken_page(original, kvm, pfn, gfn, order):
    target = gfn == data.get("gpa", -1) >> 12
    if target and "preowned" not in data:
        h = host["h"]
        data["preowned"] = h.rmpupdate(pfn << 12, assigned=True, asid=OTHER_ASID,
                                       gpa=0x5000)          # 0: RMPUPDATE succeeded
        data["spa"] = pfn << 12
    ret = original(kvm, pfn, gfn, order)
    if target:
        data["prepare_returns"] = sorted(set(data.get("prepare_returns", [])) | {ret})
    return ret


@scenario.after
def look(h):
    data["rmp_after"] = h.rmp(data["spa"])   # still ASID 2's
