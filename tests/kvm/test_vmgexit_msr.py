# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""sev_es_validate_vmgexit rows, sev_handle_vmgexit entry checks and MSR-protocol
requests (kvm-qemu-host.md 2, 4, 5)."""

import errno

import pytest
from fakeguest import GHCB_GPA, ghcb_call, make, msr_call

from snpsim.spec import ghcb as G
from snpsim.spec.exit_codes import (
    SVM_EXIT_CPUID,
    SVM_EXIT_MSR,
    SVM_EXIT_VMMCALL,
    SVM_VMGEXIT_HV_FEATURES,
    SVM_VMGEXIT_PSC,
)
from snpsim.spec.kvm_uapi import KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_SEV_TERM
from snpsim.spec.msr_protocol import GHCB_MSR_TERM_REQ_VAL

BASE = ("sw_exit_code", "sw_exit_info_1", "sw_exit_info_2")


def answer(exit_code, info1=0, info2=0, fields=None, valid=BASE, profile="v7.0.12"):
    out = {}

    def body(cpu):
        g = ghcb_call(cpu, exit_code, info1, info2, fields=fields, valid=valid)
        out["info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))
        out["rax"] = G.ghcb_get(g, "rax")

    _p, _k, m = make(body, kvm_profile=profile)
    assert m.run().result == "completed"
    return out


@pytest.mark.parametrize("exit_code,fields,valid,expect", [
    (SVM_VMGEXIT_HV_FEATURES, None, BASE, (0, 3)),
    (SVM_VMGEXIT_HV_FEATURES, None, BASE[:2], (2, 4)),            # info2 not valid
    (SVM_VMGEXIT_HV_FEATURES, {"ghcb_usage": 1}, BASE, (2, 2)),   # INVALID_USAGE
    (0x12345, None, BASE, (2, 6)),                                 # INVALID_EVENT
    (SVM_VMGEXIT_PSC, None, BASE, (2, 4)),                         # sw_scratch missing
    (SVM_EXIT_MSR, {"rcx": 0x10}, BASE, (0, 0)),                   # RDMSR: rcx enough
    (SVM_EXIT_CPUID, {"rax": 0x8000001F}, BASE, (2, 4)),           # rcx missing
    (SVM_EXIT_VMMCALL, {"rax": 12}, BASE, (2, 4)),                 # cpl missing
])
@pytest.mark.check("sev_es_validate_vmgexit:fields")
def test_validate_rows(exit_code, fields, valid, expect):
    assert answer(exit_code, fields=fields, valid=valid)["info"] == expect


def test_map_gpa_range_vmmcall_errors():
    # misaligned GPA -> -KVM_EINVAL in RAX; npages 0 -> -KVM_EINVAL
    r = answer(SVM_EXIT_VMMCALL, fields={"rax": 12, "rbx": 0x30001, "rcx": 1, "rdx": 0, "cpl": 0})
    assert r["info"] == (0, 0) and r["rax"] == (-22) & (2**64 - 1)
    r = answer(SVM_EXIT_VMMCALL, fields={"rax": 12, "rbx": 0x30000, "rcx": 0, "rdx": 0, "cpl": 0})
    assert r["rax"] == (-22) & (2**64 - 1)
    r = answer(SVM_EXIT_VMMCALL, fields={"rax": 12, "rbx": 0x30000, "rcx": 1, "rdx": 0, "cpl": 3})
    assert r["rax"] == (-1) & (2**64 - 1)  # -KVM_EPERM
    r = answer(SVM_EXIT_VMMCALL, fields={"rax": 12, "rbx": 0x30000, "rcx": 1, "rdx": 0, "cpl": 0})
    assert r["rax"] == 0  # converted by QEMU, ret pre-zeroed


def test_msr_protocol_answers():
    out = {}

    def body(cpu):
        out["sev_info"] = msr_call(cpu, 0x002)
        out["hv_ft"] = msr_call(cpu, 0x080)
        out["pref"] = msr_call(cpu, 0x010)
        out["vmpl"] = msr_call(cpu, 0x016)
        out["psc_bad_op"] = msr_call(cpu, (3 << 52) | (0x30 << 12) | 0x014)
        out["psc_ok"] = msr_call(cpu, (2 << 52) | (0x30 << 12) | 0x014)

    _p, _k, m = make(body)
    assert m.run().result == "completed"
    assert out["sev_info"] == (2 << 48) | (1 << 32) | (51 << 24) | 0x001
    assert out["hv_ft"] == 0x3081
    assert out["pref"] == (0xFFFFFFFFFFFFF << 12) | 0x011
    assert out["vmpl"] == 0x016  # unknown to KVM: unchanged
    assert out["psc_bad_op"] == 0x8000000000000015
    assert out["psc_ok"] == 0x015


def test_msr_termination_ends_the_run_with_the_reason():
    def body(cpu):
        msr_call(cpu, GHCB_MSR_TERM_REQ_VAL(1, 2))

    _p, _k, m = make(body)
    seen = []
    m.on_exit.append(lambda cpu, run: seen.append((run.exit_reason, run.system_event.type,
                                                    run.system_event.ndata,
                                                    run.system_event.data[0])))
    res = m.run()
    assert seen[-1] == (KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_SEV_TERM, 1, 0x21100)
    assert res.result == "guest-terminated" and (res.reason_set, res.reason_code) == (1, 2)
    # QEMU 10.1 (default profile): kvm_arch_handle_exit's KVM_EXIT_SYSTEM_EVENT case
    # returns -1 without a message (tests/vmm/test_qemu_exits.py has 10.0's line).
    assert res.run_state == "internal-error" and res.errors == []


@pytest.mark.bug_report("R14")
def test_unregistered_ghcb_fails_kvm_run_with_einval():
    """R14: a GHCB GPA other than the registered one -> KVM_RUN = -EINVAL before any
    conversion; QEMU stops the VM."""
    def body(cpu):
        from snpsim.spec.msr_index import MSR_AMD64_SEV_ES_GHCB
        cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, GHCB_GPA + 0x1000)
        cpu.vmgexit()

    _p, _k, m = make(body)
    rets = []
    m.on_exit.append(lambda cpu, run: rets.append(cpu.last_run_ret))
    res = m.run()
    assert rets[-1] == -errno.EINVAL
    assert res.result == "internal-error" and "error: kvm run failed Invalid argument" in res.errors
