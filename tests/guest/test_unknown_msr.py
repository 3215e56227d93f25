# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 13 item 3, guest side: an MSR the host does not know is a #GP in the guest,
never a Python exception out of the host loop.

Path (v6.17): RDMSR/WRMSR of an intercepted MSR -> SEV-ES/SNP: #VC 0x7C ->
``vc_handle_msr`` -> GHCB SVM_EXIT_MSR -> KVM ``kvm_emulate_rdmsr`` fails ->
``svm_complete_emulated_msr`` answers sw_exit_info_1 = 1, sw_exit_info_2 = #GP event ->
``verify_exception_info`` ES_EXCEPTION -> ``vc_forward_exception`` ->
``exc_general_protection``; plain SEV: #VMEXIT(MSR) -> ``kvm_complete_insn_gp`` ->
#GP through EVENTINJ -> ``exc_general_protection``.  There the exception table decides
(arch/x86/mm/extable.c ``ex_handler_msr``): ``rdmsr_safe``/``wrmsr_safe`` return -EIO
(-5), the plain accessors warn "unchecked MSR access error" and read 0, an RDMSR with no
table entry is a fatal #GP (die -> panic).
"""

import pytest

from snpsim.api import Scenario


def _run(mode, work):
    s = Scenario("unknown msr", memory="64M", vcpus=1, mode=mode)
    s.guest(vcpu=0)(work)
    return s.run()


@pytest.mark.parametrize("mode", ["snp", "sev-es", "sev"])
def test_msr_accessors_get_the_gp_fixup(mode):
    def work(g):
        g.result["safe"] = g.call("native_read_msr_safe", 0xDEAD)
        g.result["wsafe"] = g.call("native_write_msr_safe", 0xDEAD, 5)
        g.result["plain"] = g.call("native_read_msr", 0xDEAD)
        g.result["known"] = g.call("native_read_msr", 0x1A0)   # IA32_MISC_ENABLE
        g.result["pat"] = (g.call("native_write_msr_safe", 0x277, 0x0606),
                           g.call("native_read_msr", 0x277))

    res = _run(mode, work)
    assert res.outcome.vmm.result == "completed"
    assert res.data["safe"] == (0, -5) and res.data["wsafe"] == -5
    assert res.data["plain"] == 0 and res.data["known"] == 0x1800
    assert res.data["pat"] == (0, 0x0606)
    assert "unchecked MSR access error: RDMSR from 0xdead" in res.outcome.warnings


def test_rdmsr_without_a_fixup_is_a_fatal_gp_in_the_guest():
    def work(g):
        g.cpu.rdmsr(0xDEAD)

    res = _run("snp", work)
    assert res.outcome.panic == "general protection fault: 0x0"
    assert res.outcome.vmm.result == "reset"   # panic -> shutdown exit -> QEMU reset
