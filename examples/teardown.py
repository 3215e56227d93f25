# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A VM torn down through KVM's release and destroy paths, and what happens to its
private pages.

What it shows: the guest writes a secret into a private page and powers off.  The
host then tears the VM down as QEMU's ``exit()`` does (``Host.teardown``, i.e.
``Machine.teardown``): the kernel closes the process's KVM file descriptors in fd
order, and KVM's release functions run -- ``kvm_gmem_release`` and the freeing of the
guest_memfd folios (``kvm_gmem_free_folio`` -> ``sev_gmem_invalidate``), then, with the
last reference, ``kvm_destroy_vm``.

Expected outcome (sources: Linux virt/kvm/guest_memfd.c ``kvm_gmem_release`` and
``kvm_gmem_free_folio``; arch/x86/kvm/svm/sev.c ``sev_gmem_invalidate`` (private pages go
back to the hypervisor with ``rmp_make_shared``), ``sev_free_vcpu`` and
``sev_vm_destroy``; virt/kvm/kvm_main.c ``kvm_destroy_vm``; APM vol 2, "RMP entry"):

* before teardown the page's RMP entry is guest-owned: assigned, the guest's ASID,
  validated;
* every close() returns 0;
* after teardown the same system page is hypervisor-owned again (not assigned, ASID 0),
  and no RMP entry at all is left assigned to the guest's ASID (``assigned_after`` 0,
  down from every page the guest had, VMSA included); the whole check
  (``Host.check_teardown``) finds nothing left -- no page assigned to the ASID, no
  firmware page (the guest context page) unreclaimed, nothing freed while assigned,
  leaked or never freed: ``problems`` is empty; the run completes (exit status 0).

``h.teardown("vm-first")``, ``"gmem-first"`` or ``"punch-first"`` tear down in another
order the kernel allows, with the same end state (docs/api.md, "Teardown").

Run it: ``snpsim run examples/teardown.py``.
"""

from snpsim.api import Scenario

scenario = Scenario("teardown after power-off", memory="64M", vcpus=1)
data = scenario.data


@scenario.guest(vcpu=0)
def keep_a_secret(g):
    va = g.alloc_page()
    g.write(va, b"secret")
    data["gpa"] = g.pa(va)


@scenario.after
def tear_down(h):
    spa = h.spa(data["gpa"])               # the system page behind the guest's page
    data["spa"] = spa
    data["rmp_before"] = h.rmp(spa)
    data["assigned_before"] = h.assigned_to_guest()   # RMP entries with the guest's ASID
    closes = h.teardown()                  # [(fd, close() result), ...]
    data["close_results"] = sorted({ret for _fd, ret in closes})
    data["rmp_after"] = h.rmp(spa)
    data["assigned_after"] = h.assigned_to_guest()
    data["problems"] = h.check_teardown().problems()   # [] for a clean teardown
