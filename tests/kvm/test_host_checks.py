# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 6 item 2: every row of the ``sev_es_validate_vmgexit`` table, every MSR-protocol
request, the KVM_HC_MAP_GPA_RANGE errors, RMP #NPF handling with PSMASH, the private
memory-fault path, and guest_memfd's "prepare once" (v6.17) vs "prepare on every get"
(v7.0).  Expected values from kvm-qemu-host.md sections 2.2, 4, 5, 6.2, 6.3, 7.4, 7.6."""

import errno

import pytest
from fakeguest import (
    DATA_GPA,
    EXTRA_GVA,
    GHCB_GPA,
    ghcb_call,
    make,
    msr_call,
    page_tables,
)

from snpsim.kvm.guest_memfd import kvm_gmem_get_pfn, sev_gmem_prepare
from snpsim.kvm.kvm_main import KvmEnableCap, gfn_to_memslot
from snpsim.spec import ghcb as G
from snpsim.spec.exit_codes import (
    SVM_EXIT_CPUID,
    SVM_EXIT_INVD,
    SVM_EXIT_IOIO,
    SVM_EXIT_MONITOR,
    SVM_EXIT_MSR,
    SVM_EXIT_MWAIT,
    SVM_EXIT_RDPMC,
    SVM_EXIT_RDTSC,
    SVM_EXIT_RDTSCP,
    SVM_EXIT_READ_DR7,
    SVM_EXIT_VMMCALL,
    SVM_EXIT_WBINVD,
    SVM_EXIT_WRITE_DR7,
    SVM_VMGEXIT_AP_CREATION,
    SVM_VMGEXIT_AP_HLT_LOOP,
    SVM_VMGEXIT_AP_JUMP_TABLE,
    SVM_VMGEXIT_EXT_GUEST_REQUEST,
    SVM_VMGEXIT_GUEST_REQUEST,
    SVM_VMGEXIT_HV_FEATURES,
    SVM_VMGEXIT_MMIO_READ,
    SVM_VMGEXIT_MMIO_WRITE,
    SVM_VMGEXIT_NMI_COMPLETE,
    SVM_VMGEXIT_PSC,
    SVM_VMGEXIT_TERM_REQUEST,
    SVM_VMGEXIT_UNSUPPORTED_EVENT,
)
from snpsim.spec.faults import PFERR_GUEST_RMP_MASK, PFERR_GUEST_SIZEM_MASK
from snpsim.spec.kvm_uapi import KVM_CAP_EXIT_HYPERCALL, KVM_ENABLE_CAP, KVM_EXIT_MEMORY_FAULT
from snpsim.spec.psc import VMGEXIT_PSC_ERROR_GENERIC, PscEntry, PscHdr, SnpPscDesc
from snpsim.spec.rmp import PVALIDATE_SUCCESS
from snpsim.trace.events import Enter
from snpsim.trace.record import Recorder, tracing

BASE = ("sw_exit_code", "sw_exit_info_1", "sw_exit_info_2")
U64 = 2**64 - 1
MISSING_INPUT = (2, 4)


def gexit(exit_code, info1=0, info2=0, fields=None, valid=()):
    """One GHCB exit with the base fields plus ``valid`` marked valid.  Returns (answer
    (info1, info2) or None if the guest never got control back, KVM log, run result)."""
    out = {}

    def body(cpu):
        vals = dict(fields or {})
        for name in valid:
            vals.setdefault(name, 0)
        g = ghcb_call(cpu, exit_code, info1, info2, fields=vals, valid=BASE)
        out["info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))

    _p, kvm, m = make(body)
    res = m.run()
    return out.get("info"), kvm.vm(m.s.vmfd).log, res.result


# (exit code, info1, required fields (besides the base three), field values)
ROWS = [
    (SVM_EXIT_READ_DR7, 0, (), {}),
    (SVM_EXIT_RDTSC, 0, (), {}),
    (SVM_EXIT_INVD, 0, (), {}),
    (SVM_EXIT_RDTSCP, 0, (), {}),
    (SVM_EXIT_WBINVD, 0, (), {}),
    (SVM_EXIT_WRITE_DR7, 0, ("rax",), {}),
    (SVM_EXIT_RDPMC, 0, ("rcx",), {}),
    (SVM_EXIT_CPUID, 0, ("rax", "rcx"), {"rax": 0x8000001F}),
    (SVM_EXIT_CPUID, 0, ("rax", "rcx", "xcr0"), {"rax": 0xD, "xcr0": 1}),
    (SVM_EXIT_IOIO, (0x80 << 16) | (1 << 4) | 1, (), {}),                    # IN: nothing
    (SVM_EXIT_IOIO, (0x80 << 16) | (1 << 4), ("rax",), {}),                  # OUT: rax
    (SVM_EXIT_IOIO, (0x80 << 16) | (1 << 4) | (1 << 2) | 1, ("sw_scratch",),  # INS: scratch
     {"sw_scratch": GHCB_GPA + 0x800}),
    (SVM_EXIT_MSR, 0, ("rcx",), {"rcx": 0x10}),                               # RDMSR
    (SVM_EXIT_MSR, 1, ("rcx", "rax", "rdx"), {"rcx": 0x10}),                  # WRMSR
    (SVM_EXIT_VMMCALL, 0, ("rax", "cpl"), {"rax": 0x1234}),
    (SVM_EXIT_MONITOR, 0, ("rax", "rcx", "rdx"), {}),
    (SVM_EXIT_MWAIT, 0, ("rax", "rcx"), {}),
    (SVM_VMGEXIT_MMIO_READ, 0, ("sw_scratch",), {"sw_scratch": GHCB_GPA + 0x800}),
    (SVM_VMGEXIT_MMIO_WRITE, 0, ("sw_scratch",), {"sw_scratch": GHCB_GPA + 0x800}),
    (SVM_VMGEXIT_AP_CREATION, 1, ("rax",), {}),                               # CREATE
    (SVM_VMGEXIT_AP_CREATION, 2, (), {}),                                     # DESTROY
    (SVM_VMGEXIT_NMI_COMPLETE, 0, (), {}),
    (SVM_VMGEXIT_AP_HLT_LOOP, 0, (), {}),
    (SVM_VMGEXIT_AP_JUMP_TABLE, 1, (), {}),
    (SVM_VMGEXIT_UNSUPPORTED_EVENT, 0, (), {}),
    (SVM_VMGEXIT_HV_FEATURES, 0, (), {}),
    (SVM_VMGEXIT_TERM_REQUEST, 0, (), {}),
    (SVM_VMGEXIT_PSC, 0, ("sw_scratch",), {"sw_scratch": GHCB_GPA + 0x800}),
]


@pytest.mark.parametrize("exit_code,info1,required,values", ROWS)
def test_validate_row_each_required_field(exit_code, info1, required, values):
    # all required fields valid: validation passes (whatever the handler then does)
    info, log, result = gexit(exit_code, info1, fields=values, valid=required)
    assert not any("is not valid" in line for line in log), (log, result)
    assert info != MISSING_INPUT
    # each required field missing on its own: MISSING_INPUT (info1 = 2, info2 = 4)
    for missing in required:
        info, log, result = gexit(exit_code, info1, fields={k: v for k, v in values.items()
                                                           if k != missing},
                                  valid=[r for r in required if r != missing])
        assert info == MISSING_INPUT, (missing, info, result)


@pytest.mark.parametrize("info1,info2", [(0x5000, 0x6000), (0x5001, 0x6000),
                                         (0x5000, 0x6008), (0x5000, 0x5000)])
@pytest.mark.parametrize("exit_code", [SVM_VMGEXIT_GUEST_REQUEST, SVM_VMGEXIT_EXT_GUEST_REQUEST])
def test_validate_guest_request_pages(exit_code, info1, info2):
    info, log, result = gexit(exit_code, info1, info2)
    ok = not (info1 % 4096 or info2 % 4096 or info1 == info2)
    if ok:
        # passes validation; the request page holds no valid message header (msg_type 0,
        # so an extended request needs no certificate buffer: snp_handle_ext_guest_req
        # goes straight to snp_handle_guest_req), and the firmware answers
        # SEV_RET_INVALID_PARAM (0x16), forwarded as (0, SNP_GUEST_ERR(0, 0x16))
        assert info == (0, 0x16)
    else:
        assert info == MISSING_INPUT


def test_validate_ap_hlt_loop_blocks_the_vcpu():
    info, log, result = gexit(SVM_VMGEXIT_AP_HLT_LOOP)
    # kvm_emulate_ap_reset_hold: the only vCPU blocks; nothing can wake it (no SIPI)
    assert info is None and result == "halted"


def test_validate_term_request_ends_the_run():
    info, log, result = gexit(SVM_VMGEXIT_TERM_REQUEST, 1, 2)
    assert info is None and result == "guest-terminated"


def test_validate_unsupported_event_fails_kvm_run():
    info, log, result = gexit(SVM_VMGEXIT_UNSUPPORTED_EVENT)
    assert info is None and result == "internal-error"


# ---- MSR protocol requests (section 4) -----------------------------------------------------


def test_msr_cpuid_request_returns_the_register():
    out = {}

    def body(cpu):
        # fn 0x8000001F in [63:32], reg 1 (EBX) in [31:30]: EBX[5:0] = C-bit position 51
        out["ebx"] = msr_call(cpu, (0x8000001F << 32) | (1 << 30) | 0x004)
        out["eax"] = msr_call(cpu, (0x40000001 << 32) | (0 << 30) | 0x004)

    _p, _k, m = make(body)
    assert m.run().result == "completed"
    # only [63:32] and [11:0] are replaced (set_ghcb_msr_bits): the reg field stays
    assert out["ebx"] == (51 << 32) | (1 << 30) | 0x005
    assert out["eax"] & 0xFFF == 0x005


def test_msr_reg_gpa_echoes_the_gfn_without_validation():
    out = {}

    def body(cpu):
        out["reg"] = msr_call(cpu, (0xFFFFF << 12) | 0x012)
        out["back"] = msr_call(cpu, ((GHCB_GPA >> 12) << 12) | 0x012)

    _p, kvm, m = make(body)
    assert m.run().result == "completed"
    assert out["reg"] == (0xFFFFF << 12) | 0x013
    assert out["back"] == GHCB_GPA | 0x013


def test_msr_ap_reset_hold_blocks_with_response_0x007():
    def body(cpu):
        msr_call(cpu, 0x006)

    _p, kvm, m = make(body, poweroff=False)
    assert m.run().result == "halted"
    v = kvm.vm(m.s.vmfd).vcpus[0]
    assert v.mp_state == "ap_reset_hold" and v.vmcb.ghcb_gpa == 0x007


def test_msr_term_request_data0_is_the_msr_value():
    def body(cpu):
        msr_call(cpu, (3 << 16) | (1 << 12) | 0x100)

    _p, _k, m = make(body)
    res = m.run()
    assert res.result == "guest-terminated" and res.ghcb_msr == 0x31100


# ---- KVM_HC_MAP_GPA_RANGE (section 5) -------------------------------------------------------


def vmmcall(rbx, rcx, rdx=0, disable_exit=False):
    out = {}

    def body(cpu):
        g = ghcb_call(cpu, SVM_EXIT_VMMCALL, fields={"rax": 12, "rbx": rbx, "rcx": rcx,
                                                      "rdx": rdx, "cpl": 0})
        out["rax"] = G.ghcb_get(g, "rax")

    _p, kvm, m = make(body)
    if disable_exit:
        assert kvm.ioctl(m.s.vmfd, KVM_ENABLE_CAP, KvmEnableCap(KVM_CAP_EXIT_HYPERCALL)) == 0
    assert m.run().result == "completed"
    return out["rax"]


def test_map_gpa_range_enosys_when_exit_not_enabled():
    assert vmmcall(0x30000, 1, disable_exit=True) == (-1000) & U64  # -KVM_ENOSYS


@pytest.mark.parametrize("gpa,npages", [(0x30800, 1), (0x30000, 0), (0x1000, U64),
                                        (0xFFFFFFFFFFFFF000, (1 << 64) - 0xFFFFFFFFFFFFF)])
def test_map_gpa_range_einval(gpa, npages):
    # misaligned, zero pages, and gfn + npages wrapping past 2**64
    assert vmmcall(gpa, npages) == (-22) & U64  # -KVM_EINVAL


def test_psc_paths_answer_errors_when_exit_not_enabled():
    out = {}

    def body(cpu):
        out["msr"] = msr_call(cpu, (2 << 52) | ((DATA_GPA >> 12) << 12) | 0x014)
        cpu.wrmsr(0xC0010130, GHCB_GPA)
        buf = SnpPscDesc(PscHdr(0, 0), (PscEntry(0, DATA_GPA >> 12, 2, 0),)).encode()
        g = ghcb_call(cpu, SVM_VMGEXIT_PSC, fields={"sw_scratch": GHCB_GPA + 0x800},
                      shared_buf=buf)
        out["ghcb"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))

    _p, kvm, m = make(body)
    kvm.ioctl(m.s.vmfd, KVM_ENABLE_CAP, KvmEnableCap(KVM_CAP_EXIT_HYPERCALL))
    assert m.run().result == "completed"  # the GHCB page became shared by implicit conversion
    assert out["msr"] == 0x8000000000000015
    assert out["ghcb"] == (0, VMGEXIT_PSC_ERROR_GENERIC)


# ---- #NPF: private memory-fault exit, RMP fault with PSMASH (6.3, 7.6) -------------------------


def test_private_access_to_shared_gfn_is_a_flags_8_memory_fault():
    out = {}

    def body(cpu):
        buf = SnpPscDesc(PscHdr(0, 0), (PscEntry(0, DATA_GPA >> 12, 2, 0),)).encode()
        ghcb_call(cpu, SVM_VMGEXIT_PSC, fields={"sw_scratch": GHCB_GPA + 0x800}, shared_buf=buf)
        out["pv"] = cpu.pvalidate(DATA_GPA, 0, True)   # C=1 access, attribute shared

    _p, kvm, m = make(body)
    seen = []
    m.on_exit.append(lambda cpu, run: seen.append((cpu.last_run_ret, run.memory_fault.gpa,
                                                   run.memory_fault.size, run.memory_fault.flags))
                     if run.exit_reason == KVM_EXIT_MEMORY_FAULT else None)
    assert m.run().result == "completed"
    assert seen == [(-errno.EFAULT, DATA_GPA, 4096, 8)]
    assert out["pv"] == (PVALIDATE_SUCCESS, 0)
    assert kvm.vm(m.s.vmfd).mem_attr_array.get(DATA_GPA >> 12) == 8


def run_2m_pvalidate(gpa=0x400000):
    """Guest PVALIDATEs (4 KiB) GPA ``gpa``, backed by a 2 MiB guest_memfd folio."""
    out = {}

    def body(cpu):
        out["pv"] = cpu.pvalidate(EXTRA_GVA, 0, True)
        cpu.write(EXTRA_GVA, b"after psmash")
        out["read"] = cpu.read(EXTRA_GVA, 12)

    prof_name = "v7.0.12"
    from snpsim.kvm.profiles import get_profile

    prof = get_profile(prof_name).derive("2M-folios", knobs={"gmem_max_order": 9})
    platform, kvm, m = make(body, kvm_profile=prof, launch=page_tables(extra=(gpa,)))
    rec = Recorder()
    with tracing(rec):
        res = m.run()
    return platform, kvm, m, res, out, rec.events


def test_2m_rmp_entry_4k_pvalidate_sizem_npf_psmash_then_retry_succeeds():
    platform, kvm, m, res, out, events = run_2m_pvalidate()
    assert res.result == "completed"
    assert out["pv"] == (PVALIDATE_SUCCESS, 0) and out["read"] == b"after psmash"
    # sev_gmem_prepare made one 2 MiB entry (folio order 9), the 4 KiB PVALIDATE took an
    # #NPF with RMP | SIZEM, sev_handle_rmp_fault PSMASHed it once
    rmp_faults = [e.args for e in events if isinstance(e, Enter) and e.name == "sev_handle_rmp_fault"]
    assert rmp_faults and rmp_faults[0]["gpa"] == 0x400000
    flags = rmp_faults[0]["error_code"].split("|")  # traced as PFERR flag names
    assert {PFERR_GUEST_RMP_MASK.name, PFERR_GUEST_SIZEM_MASK.name} <= set(flags)
    prepares = [e.args for e in events if isinstance(e, Enter) and e.name == "rmp_make_private"]
    assert any(a["gpa"] == 0x400000 and a["level"] == "PG_LEVEL_2M" for a in prepares)
    assert platform.counters["PSMASH"] == 1
    vm = kvm.vm(m.s.vmfd)
    pfn = platform.host.npt_lookup(vm.npt, 0x400).pfn
    assert pfn % 512 == 0
    e = platform.rmp.lookup(pfn)
    assert e.assigned and e.pagesize == 0 and e.gpa == 0x400000 and e.validated
    n = platform.rmp.lookup(pfn + 1)
    assert n.assigned and n.pagesize == 0 and n.gpa == 0x401000 and not n.validated
    assert not any("WARN" in line for line in vm.log)


# ---- guest_memfd prepare once (v6.17) vs every get (v7.0) (6.2) ---------------------------------


@pytest.mark.parametrize("profile,calls", [("v7.0.12", 3), ("v6.17", 1)])
def test_gmem_prepare_once_or_on_every_get(profile, calls):
    from snpsim.kvm.profiles import get_profile

    counted = []

    def counting_prepare(kvm, pfn, gfn, max_order):
        counted.append(gfn)
        return sev_gmem_prepare(kvm, pfn, gfn, max_order)

    prof = get_profile(profile).derive("count", overrides={"sev_gmem_prepare": counting_prepare})
    _p, kvm, m = make(lambda cpu: None, kvm_profile=prof)
    assert m.run().result == "completed"
    vm = kvm.vm(m.s.vmfd)
    slot = gfn_to_memslot(vm, DATA_GPA >> 12)
    counted.clear()
    pfns = {kvm_gmem_get_pfn(vm, slot, DATA_GPA >> 12)[1] for _ in range(3)}
    assert len(pfns) == 1 and counted == [DATA_GPA >> 12] * calls


