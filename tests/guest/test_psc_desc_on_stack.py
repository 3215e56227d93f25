# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 13 item 7: the PSC descriptor lives where Linux keeps it.

``set_pages_state`` declares ``struct snp_psc_desc desc`` on its stack (arch/x86/coco/sev/
core.c, v6.5+: the 2023 change that replaced 6.4's ``kmalloc``'d descriptor) and fills it
in ``__set_pages_state``.  A CPU has run on its kernel stack long before its first page
state change, so filling the descriptor is a write to a page already mapped private in
the NPT: no #NPF and no guest_memfd prepare belong to the conversion itself.  The counts
below are those of one conversion of one 4 KiB page that the guest has written:

* private -> shared: PVALIDATE (rescind) of a mapped page, the PSC VMGEXIT, QEMU's
  ``kvm_convert_memory`` -- no #NPF, no ``sev_gmem_prepare``;
* shared -> private with QEMU 10.1: QEMU's ``KVM_PRE_FAULT_MEMORY`` after the conversion
  (target/i386/kvm/kvm.c ``kvm_handle_hc_map_gpa_range``) prepares the page (one
  ``sev_gmem_prepare``) and the guest's PVALIDATE takes no #NPF;
* shared -> private with QEMU 9.1 (no pre-fault): the PVALIDATE takes the one #NPF that
  maps the page and prepares it.
"""

import pytest

from snpsim.api import Scenario


def _one_conversion(kernel: str, qemu: str) -> dict:
    s = Scenario("psc descriptor on the stack", memory="64M", vcpus=1, kernel=kernel,
                 qemu=qemu)
    seen = {"prepare": 0, "npf": []}

    @s.hook("sev_gmem_prepare")
    def prepare(original, *args, **kwargs):
        seen["prepare"] += 1
        return original(*args, **kwargs)

    @s.hook("kvm_mmu_page_fault")
    def fault(original, vcpu, gpa, error_code, *args, **kwargs):
        seen["npf"].append(gpa)
        return original(vcpu, gpa, error_code, *args, **kwargs)

    @s.guest(vcpu=0)
    def work(g):
        va = g.alloc_page()
        g.write(va, b"payload")
        out = {}
        for name, convert in (("to_shared", g.set_memory_decrypted),
                              ("to_private", g.set_memory_encrypted)):
            seen["prepare"] = 0
            seen["npf"] = []
            rc = convert(va, 1)
            out[name] = (rc, seen["prepare"], list(seen["npf"]))
        g.result.update(out)

    res = s.run()
    assert res.outcome.vmm.result == "completed", res.outcome
    return res.data


@pytest.mark.parametrize("kernel", ["6.17", "6.4"])
def test_to_shared_takes_no_fault_and_no_prepare(kernel):
    data = _one_conversion(kernel, "10.1")
    assert data["to_shared"] == (0, 0, [])


def test_to_private_qemu_10_1_prepares_once_through_pre_fault():
    data = _one_conversion("6.17", "10.1")
    assert data["to_private"] == (0, 1, [])


def test_to_private_qemu_9_1_faults_once_on_the_converted_page():
    data = _one_conversion("6.17", "9.1")
    rc, prepares, faults = data["to_private"]
    assert (rc, prepares, len(faults)) == (0, 1, 1)
