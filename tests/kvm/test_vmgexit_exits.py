# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 13 item 3: every exit code that passes ``sev_es_validate_vmgexit`` is handled
as KVM handles it (arch/x86/kvm/svm/sev.c ``sev_handle_vmgexit``, svm.c
``svm_exit_handlers[]``/``svm_invoke_exit_handler``, x86.c emulation helpers; v6.17).

Each test issues one GHCB request from the fake guest and asserts what KVM answers:
``sw_exit_info_1``/``sw_exit_info_2`` (0/0 = done; 1/EVENTINJ = raise that exception;
2/GHCB_ERR_* = bad input), an exception injected through the VMCB's EVENTINJ, or the
exit to userspace (KVM_EXIT_MMIO, KVM_EXIT_INTERNAL_ERROR).
"""

import pytest
from fakeguest import GHCB_GPA, ghcb_call, make

from snpsim.hw.faults import GeneralProtectionFault, InvalidOpcode
from snpsim.spec import ghcb as G
from snpsim.spec.exit_codes import (
    SVM_EXIT_INVD,
    SVM_EXIT_MONITOR,
    SVM_EXIT_MSR,
    SVM_EXIT_MWAIT,
    SVM_EXIT_RDPMC,
    SVM_EXIT_RDTSC,
    SVM_EXIT_RDTSCP,
    SVM_EXIT_READ_DR7,
    SVM_EXIT_WBINVD,
    SVM_EXIT_WRITE_DR7,
    SVM_VMGEXIT_AP_CREATION,
    SVM_VMGEXIT_EXT_GUEST_REQUEST,
    SVM_VMGEXIT_MMIO_READ,
    SVM_VMGEXIT_MMIO_WRITE,
    SVM_VMGEXIT_NMI_COMPLETE,
)
from snpsim.spec.faults import X86_TRAP_GP, X86_TRAP_UD
from snpsim.spec.kvm_uapi import KVM_EXIT_MMIO
from snpsim.vmm.machine import RegionSpec

#: svm_vmgexit_bad_input(svm, GHCB_ERR_INVALID_INPUT): (2, 5).
INVALID_INPUT = (2, 5)
#: svm_vmgexit_inject_exception(svm, X86_TRAP_GP): (1, VALID | TYPE_EXEPT | 13).
INJECT_GP = (1, (1 << 31) | (3 << 8) | 13)
SHARED_BUF = GHCB_GPA + 0x800


def call(exit_code, info1=0, info2=0, fields=None, *, shared_buf=None, vcpus=1,
         extra_regions=(), setup=None):
    """One GHCB request; returns (out, machine, kvm).  ``out``: "info" (info1, info2),
    "rax"/"rdx", "buf" (the shared buffer after), "events" (exceptions the guest took
    after the VMGEXIT, by vector), "result" (how the run ended)."""
    out = {"events": []}

    def body(cpu):
        for vector in (X86_TRAP_GP, X86_TRAP_UD):
            cpu.set_idt_handler(vector, lambda c, f: out["events"].append(type(f)))
        g = ghcb_call(cpu, exit_code, info1, info2, fields=fields, shared_buf=shared_buf)
        out["info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))
        out["rax"], out["rdx"] = G.ghcb_get(g, "rax"), G.ghcb_get(g, "rdx")
        out["buf"] = bytes(g[0x800:0x840])

    platform, kvm, m = make(body, vcpus=vcpus, extra_regions=extra_regions)
    if setup is not None:
        setup(m)
    out["result"] = m.run(platform.world.run_threads if vcpus > 1 else None)
    return out, m, kvm


def log(m, kvm):
    return kvm.vm(m.s.vmfd).log


# ---- instructions KVM emulates -----------------------------------------------------------------


@pytest.mark.parametrize("exit_code,fields", [
    (SVM_EXIT_READ_DR7, None),          # dr_interception: SEV-ES -> return 1 at once
    (SVM_EXIT_WRITE_DR7, {"rax": 0x400}),
    (SVM_EXIT_INVD, None),              # kvm_emulate_invd: NOP
    (SVM_EXIT_WBINVD, None),            # kvm_emulate_wbinvd
    (SVM_VMGEXIT_NMI_COMPLETE, None),
])
def test_emulated_as_done(exit_code, fields):
    out, _m, _k = call(exit_code, fields=fields)
    assert out["result"].result == "completed"
    assert out["info"] == (0, 0) and out["events"] == []


@pytest.mark.parametrize("exit_code,fields,insn", [
    (SVM_EXIT_MONITOR, {"rax": 0x1000, "rcx": 0, "rdx": 0}, "MONITOR"),
    (SVM_EXIT_MWAIT, {"rax": 0, "rcx": 0}, "MWAIT"),
])
def test_monitor_mwait_are_nops_with_one_warning(exit_code, fields, insn):
    out, m, kvm = call(exit_code, fields=fields)
    assert out["info"] == (0, 0) and out["events"] == []
    assert log(m, kvm).count(f"kvm: {insn} instruction emulated as NOP!") == 1


def test_rdpmc_without_vpmu_injects_gp():
    """kvm_emulate_rdpmc: kvm_pmu_rdpmc fails -> kvm_inject_gp(vcpu, 0), delivered by
    EVENTINJ at the next VMRUN; the GHCB answer itself is 0/0."""
    out, _m, _k = call(SVM_EXIT_RDPMC, fields={"rcx": 0})
    assert out["info"] == (0, 0)
    assert out["events"] == [GeneralProtectionFault]


def test_rdtscp_intercept_injects_ud():
    """SVM_EXIT_RDTSCP -> kvm_handle_invalid_op: #UD through EVENTINJ."""
    out, _m, _k = call(SVM_EXIT_RDTSCP)
    assert out["info"] == (0, 0)
    assert out["events"] == [InvalidOpcode]


def test_rdtsc_has_no_handler_in_kvm():
    """svm_exit_handlers[] has no SVM_EXIT_RDTSC entry: svm_handle_invalid_exit ->
    KVM_EXIT_INTERNAL_ERROR, UNEXPECTED_EXIT_REASON (4), data[0] = 0x6e; QEMU stops."""
    out, m, kvm = call(SVM_EXIT_RDTSC)
    res = out["result"]
    assert res.result == "internal-error"
    assert res.errors[:2] == ["KVM internal error. Suberror: 4",
                              f"extra data[0]: 0x{SVM_EXIT_RDTSC:016x}"]
    assert "svm: unexpected exit reason 0x6e" in log(m, kvm)


# ---- MSRs -----------------------------------------------------------------------------------------


def test_rdmsr_known():
    out, _m, _k = call(SVM_EXIT_MSR, 0, fields={"rcx": 0x1A0})  # IA32_MISC_ENABLE
    assert out["info"] == (0, 0) and (out["rax"], out["rdx"]) == (0x1800, 0)
    out, _m, _k = call(SVM_EXIT_MSR, 0, fields={"rcx": 0x8B})   # IA32_UCODE_REV
    assert (out["rax"], out["rdx"]) == (0, 1)


def test_wrmsr_known_then_read_back():
    out = {}

    def body(cpu):
        ghcb_call(cpu, SVM_EXIT_MSR, 1, fields={"rcx": 0x277, "rax": 0x06, "rdx": 0x07})
        g = ghcb_call(cpu, SVM_EXIT_MSR, 0, fields={"rcx": 0x277})
        out["read"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "rax"), G.ghcb_get(g, "rdx"))

    _p, _k, m = make(body)
    assert m.run().result == "completed"
    assert out["read"] == (0, 0x06, 0x07)


@pytest.mark.parametrize("write", [0, 1])
def test_unknown_msr_answers_gp_through_the_ghcb(write):
    """kvm_emulate_rdmsr/wrmsr fail, svm_complete_emulated_msr for an SEV-ES guest:
    svm_vmgexit_inject_exception(svm, X86_TRAP_GP): info1 = 1, info2 = 0x8000030d; no
    EVENTINJ, no exit to userspace, the VM goes on."""
    fields = {"rcx": 0xDEAD}
    if write:
        fields.update(rax=1, rdx=0)
    out, _m, _k = call(SVM_EXIT_MSR, write, fields=fields)
    assert out["info"] == INJECT_GP and out["events"] == []
    assert out["result"].result == "completed"


# ---- MMIO -------------------------------------------------------------------------------------

MMIO_GPA = 0x40000000


def _mmio_setup(seen):
    def setup(m):
        def dev(offset, data, length, is_write):
            seen.append((offset, bytes(data) if is_write else None, length))
            return None if is_write else bytes(range(offset & 0xFF, (offset & 0xFF) + length))

        m.mmio_devices["dev"] = dev
        m.on_exit.append(lambda cpu, run: seen.append(("exit", run.exit_reason))
                         if run.exit_reason == KVM_EXIT_MMIO else None)
    return setup


def test_mmio_read_goes_to_the_vmm_8_bytes_per_exit():
    seen = []
    out, _m, _k = call(SVM_VMGEXIT_MMIO_READ, MMIO_GPA + 0x10, 12,
                       fields={"sw_scratch": SHARED_BUF}, setup=_mmio_setup(seen),
                       extra_regions=[RegionSpec("dev", MMIO_GPA, 0x1000, kind="mmio")])
    assert out["info"] == (0, 0)
    assert seen == [("exit", KVM_EXIT_MMIO), (0x10, None, 8),
                    ("exit", KVM_EXIT_MMIO), (0x18, None, 4)]
    assert out["buf"][:12] == bytes(range(0x10, 0x18)) + bytes(range(0x18, 0x1C))


def test_mmio_write_carries_the_scratch_bytes():
    seen = []
    out, _m, _k = call(SVM_VMGEXIT_MMIO_WRITE, MMIO_GPA + 4, 4,
                       fields={"sw_scratch": SHARED_BUF}, shared_buf=b"\x11\x22\x33\x44",
                       setup=_mmio_setup(seen),
                       extra_regions=[RegionSpec("dev", MMIO_GPA, 0x1000, kind="mmio")])
    assert out["info"] == (0, 0)
    assert seen == [("exit", KVM_EXIT_MMIO), (4, b"\x11\x22\x33\x44", 4)]


def test_mmio_read_of_unassigned_gpa_reads_zero():
    out, _m, _k = call(SVM_VMGEXIT_MMIO_READ, MMIO_GPA, 8, fields={"sw_scratch": SHARED_BUF},
                       shared_buf=b"\xff" * 8)
    assert out["info"] == (0, 0) and out["buf"][:8] == bytes(8)


# ---- SNP AP creation --------------------------------------------------------------------------

VMSA_GPA = 0x401000  # page aligned, not 2 MiB aligned


def _ap(info1, info2, rax=1):
    out, m, kvm = call(SVM_VMGEXIT_AP_CREATION, info1, info2, fields={"rax": rax}, vcpus=2)
    return out["info"], kvm.vcpu(m.cpus[1].kvm_fd).sev_es


def test_ap_create_records_the_vmsa():
    info, es = _ap((1 << 32) | 1, VMSA_GPA)   # SVM_VMGEXIT_AP_CREATE for APIC ID 1
    assert info == (0, 0)
    assert es.snp_vmsa_gpa == VMSA_GPA and es.snp_ap_waiting_for_reset


def test_ap_destroy_clears_the_vmsa():
    info, es = _ap((1 << 32) | 2, 0)
    assert info == (0, 0)
    assert es.snp_vmsa_gpa == (1 << 64) - 1 and es.snp_ap_waiting_for_reset


@pytest.mark.parametrize("info1,info2,rax", [
    ((7 << 32) | 1, VMSA_GPA, 1),        # no vCPU with APIC ID 7
    ((1 << 32) | 1, VMSA_GPA, 3),        # RAX != the VM's vmsa_features (SNP_ACTIVE)
    ((1 << 32) | 1, VMSA_GPA + 8, 1),    # VMSA GPA not page aligned
    ((1 << 32) | 1, 1 << 50, 1),         # beyond MAXPHYADDR
    ((1 << 32) | 1, 0x400000, 1),        # 2 MiB aligned: the SNP erratum
    ((1 << 32) | 3, VMSA_GPA, 1),        # unknown request
])
def test_ap_creation_refusals(info1, info2, rax):
    info, es = _ap(info1, info2, rax)
    assert info == INVALID_INPUT
    assert es.snp_vmsa_gpa == (1 << 64) - 1 and not es.snp_ap_waiting_for_reset


# ---- SNP extended guest request ----------------------------------------------------------------

REQ, RESP, CERTS = 0x5000, 0x6000, 0x7000


def _ext(fields, msg_type=5):
    def setup(m):
        m.write_guest_ram(REQ + 0x34, bytes([msg_type]))
        m.write_guest_ram(CERTS, b"\xff" * 32)

    out, m, _k = call(SVM_VMGEXIT_EXT_GUEST_REQUEST, REQ, RESP, fields=fields, setup=setup)
    return out["info"], m.read_guest_ram(CERTS, 32)


def test_ext_report_request_writes_an_empty_certificate_table():
    """SNP_MSG_REPORT_REQ with RAX = buffer GPA, RBX = 1 page: KVM zeroes the 24-byte
    terminator (no certificates), then the request goes to the firmware, whose answer
    for this garbage message is SEV_RET_INVALID_PARAM (0x16) in sw_exit_info_2."""
    info, certs = _ext({"rax": CERTS, "rbx": 1})
    assert info == (0, 0x16)
    assert certs == bytes(24) + b"\xff" * 8


@pytest.mark.parametrize("fields", [
    {"rax": CERTS},                 # RBX not valid
    {"rax": CERTS + 8, "rbx": 1},   # buffer not page aligned
])
def test_ext_report_request_refusals(fields):
    info, certs = _ext(fields)
    assert info == INVALID_INPUT and certs == b"\xff" * 32


def test_ext_request_of_another_type_is_a_plain_guest_request():
    info, certs = _ext({}, msg_type=1)   # SNP_MSG_CPUID_REQ: no certificate buffer
    assert info == (0, 0x16) and certs == b"\xff" * 32
