# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The host punches a hole in guest_memfd under a page the guest is using, and the
guest's validation check that catches it.

What it shows: a host event at a point (``@scenario.at``).  vCPU 1 writes a private page
for the first time, so KVM handles an #NPF for it and maps the page.  Each time vCPU 1
leaves ``kvm_mmu_page_fault`` for that page, the event runs in host context; the first
time, the host frees the page's backing with fallocate(PUNCH_HOLE) on the guest_memfd
(``Host.punch_hole``).  The guest's write is then retried.

Expected outcome (sources: Linux virt/kvm/guest_memfd.c ``kvm_gmem_punch_hole``: the
GFN is zapped and the folio freed, ``sev_gmem_invalidate`` makes it shared again;
arch/x86/kvm/svm/sev.c ``sev_gmem_prepare``: a fresh folio is made private with
RMPUPDATE, which leaves it not validated; APM vol 2, "Page Validation": a guest access
to an unvalidated private page raises #VC with error code 0x404; Linux's #VC handler
has no case for it and asks to terminate, GHCB spec "Termination Request", reason set 0
code 0):

* ``punch_hole`` returns 0 and the GPA has no host page behind it any more;
* the retried write faults again; KVM gives the GPA a new guest_memfd page, assigned
  to the guest but not validated, so the write raises #VC 0x404;
* the guest terminates (reason set 0, code 0, from ``exc_vmm_communication``) instead
  of using a page whose contents the host replaced; exit status 1.

Run it: ``snpsim run examples/hole_punched_under_guest.py``.
"""

from snpsim.api import Scenario, leave

scenario = Scenario("a hole punched under the guest", memory="64M", vcpus=2)
data = scenario.data


@scenario.guest(vcpu=1)
def write_fresh_page(g):
    va = g.alloc_page()
    data["gpa"] = g.pa(va)
    g.write(va, b"secret")
    data["read_back"] = g.read(va, 6).decode()   # not reached


def is_target(args):
    return args["cr2_or_gpa"] >> 12 == data.get("gpa", -1) >> 12


@scenario.at(leave("kvm_mmu_page_fault", vcpu=1, where=is_target))
def punch_once(h):
    if "punch_hole" in data:
        return                                   # later faults: leave them alone
    data["punch_hole"] = h.punch_hole(data["gpa"], 4096)
    data["backed_after_punch"] = h.spa(data["gpa"]) is not None


@scenario.after
def look(h):
    spa = h.spa(data["gpa"])                     # the new page KVM mapped after the hole
    data["rmp_after"] = h.rmp(spa) if spa is not None else None
