# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Golden vectors from the references (values typed from the documents, not from snpsim)."""

import pytest

from snpsim.spec import exit_codes as ec
from snpsim.spec import kvm_uapi as kvm
from snpsim.spec import msr_index as mi
from snpsim.spec import pgtable_types as pt
from snpsim.spec import rmp
from snpsim.spec.errors import SpecDecodeError
from snpsim.spec.faults import (
    PFERR_GUEST_ENC_MASK,
    PFERR_GUEST_FINAL_MASK,
    PFERR_GUEST_PAGE_MASK,
    PFERR_GUEST_RMP_MASK,
    PFERR_GUEST_SIZEM_MASK,
    PFERR_GUEST_VMPL_MASK,
    X86_PF_RMP,
    X86_TRAP_VC,
    decode_npf_error_code,
    decode_pf_error_code,
)
from snpsim.spec.msr_protocol import (
    GHCB_HV_FT_SNP,
    GHCB_HV_FT_SNP_AP_CREATION,
    GHCB_HV_FT_SUPPORTED,
    GHCB_MSR_PSC_REQ_GFN,
    GHCB_MSR_PSC_RESP_ERROR,
    GHCB_MSR_REG_GPA_REQ_VAL,
    GHCB_MSR_SEV_INFO,
    GHCB_MSR_TERM_REQ_VAL,
    GhcbMsrInfo,
    decode_msr,
    ghcb_msr_response,
)
from snpsim.spec.psc import (
    VMGEXIT_PSC_ERROR_GENERIC,
    VMGEXIT_PSC_ERROR_INVALID_ENTRY,
    VMGEXIT_PSC_ERROR_INVALID_HDR,
    VMGEXIT_PSC_MAX_COUNT,
    VMGEXIT_PSC_MAX_ENTRY,
    PscEntry,
    PscOp,
    describe_psc_result,
)
from snpsim.spec.termination import (
    GHCB_SNP_UNSUPPORTED,
    GHCB_TERM_PSC,
    GHCB_TERM_PVALIDATE,
    GHCB_TERM_SAVIC_FAIL,
    SEV_TERM_SET_GEN,
    SEV_TERM_SET_LINUX,
    decode_term_msr,
    decode_term_nae,
    describe_termination,
)

# ---- GHCB MSR protocol ------------------------------------------------------------


def test_msr_psc_request():
    m = decode_msr(0x0020000012345014)
    assert m.name == "GHCB_MSR_PSC_REQ" and m.info == 0x014
    assert m.fields == {"gfn": 0x12345, "operation": 2}
    assert m.problems == []
    assert GHCB_MSR_PSC_REQ_GFN(0x12345, PscOp.SNP_PAGE_STATE_SHARED) == 0x0020000012345014


def test_msr_psc_response_error_and_success():
    m = decode_msr(0x8000000000000015)
    assert m.name == "GHCB_MSR_PSC_RESP"
    assert m.fields["error_code"] != 0
    assert GHCB_MSR_PSC_RESP_ERROR == 0x8000000000000015
    ok = decode_msr(0x15)
    assert ok.name == "GHCB_MSR_PSC_RESP" and ok.fields["error_code"] == 0 and ok.problems == []


def test_msr_sev_info_response():
    m = decode_msr(0x0002000133000001)
    assert m.name == "GHCB_MSR_SEV_INFO_RESP"
    assert (m.fields["max_version"], m.fields["min_version"], m.fields["cbit"]) == (2, 1, 51)
    assert GHCB_MSR_SEV_INFO(2, 1, 51) == 0x0002000133000001


def test_msr_register_gpa_and_hv_features():
    m = decode_msr(0x12345012)
    assert m.name == "GHCB_MSR_REG_GPA_REQ" and m.fields["gfn"] == 0x12345
    assert GHCB_MSR_REG_GPA_REQ_VAL(0x12345) == 0x12345012
    hv = decode_msr(0x3081)
    assert hv.name == "GHCB_MSR_HV_FT_RESP"
    assert hv.fields["features"] == GHCB_HV_FT_SNP | GHCB_HV_FT_SNP_AP_CREATION == 0x3
    assert "GHCB_HV_FT_SNP" in hv.notes and "GHCB_HV_FT_SNP_AP_CREATION" in hv.notes
    assert ghcb_msr_response(GhcbMsrInfo.GHCB_MSR_HV_FT_RESP, GHCB_HV_FT_SUPPORTED) == 0x3081


def test_msr_termination():
    m = decode_msr(0x11100)
    assert m.name == "GHCB_MSR_TERM_REQ"
    assert (m.fields["reason_set"], m.fields["reason_code"]) == (1, 1)
    assert "GHCB_TERM_PSC" in m.notes[0]
    m2 = decode_msr(0x21100)
    assert (m2.fields["reason_set"], m2.fields["reason_code"]) == (1, 2)
    assert "GHCB_TERM_PVALIDATE" in m2.notes[0]
    assert GHCB_MSR_TERM_REQ_VAL(SEV_TERM_SET_LINUX, GHCB_TERM_PSC) == 0x11100
    assert GHCB_MSR_TERM_REQ_VAL(SEV_TERM_SET_LINUX, GHCB_TERM_PVALIDATE) == 0x21100
    assert GHCB_MSR_TERM_REQ_VAL(SEV_TERM_SET_GEN, GHCB_SNP_UNSUPPORTED) == 0x20100


def test_msr_codes_complete():
    want = {
        0x001, 0x002, 0x004, 0x005, 0x006, 0x007, 0x010, 0x011, 0x012, 0x013,
        0x014, 0x015, 0x016, 0x017, 0x080, 0x081, 0x100,
    }  # fmt: skip
    assert {int(c) for c in GhcbMsrInfo} == want


def test_msr_unknown_and_gpa():
    m = decode_msr(0x003)
    assert m.name is None and m.direction == "unknown" and m.problems
    g = decode_msr(0x12345000)
    assert g.name == "GHCB_GPA" and g.fields["gpa"] == 0x12345000


def test_msr_psc_request_bad_op_and_reserved():
    m = decode_msr(GHCB_MSR_PSC_REQ_GFN(0x1, 3))
    assert any("operation=3" in p for p in m.problems)
    m = decode_msr((1 << 60) | GHCB_MSR_PSC_REQ_GFN(0x1, 1))
    assert any("bits[63:56]" in p for p in m.problems)


@pytest.mark.parametrize("bad", [-1, 1 << 64, "0x15", 1.0])
def test_msr_not_u64(bad):
    with pytest.raises(SpecDecodeError) as ei:
        decode_msr(bad)
    assert ei.value.field == "msr"


# ---- PSC ---------------------------------------------------------------------------


def test_psc_entries():
    e = PscEntry.decode(0x0010000000100000)
    assert (e.gfn, e.operation, e.pagesize, e.cur_page, e.reserved) == (0x100, 1, 0, 0, 0)
    e = PscEntry.decode(0x0120000000200000)
    assert (e.gfn, e.operation, e.pagesize, e.cur_page) == (0x200, 2, 1, 0)
    e = PscEntry.decode(0x0110000100200000)
    assert (e.gfn, e.operation, e.pagesize) == (0x100200, 1, 1)
    assert PscEntry(0, 0x100200, 1, 1).encode() == 0x0110000100200000


def test_psc_constants_and_results():
    assert VMGEXIT_PSC_MAX_ENTRY == 64 and VMGEXIT_PSC_MAX_COUNT == 253
    assert VMGEXIT_PSC_ERROR_GENERIC == 0x10000000000
    assert describe_psc_result(0x100000001) == "VMGEXIT_PSC_ERROR_INVALID_HDR"
    assert describe_psc_result(0x100000002) == "VMGEXIT_PSC_ERROR_INVALID_ENTRY"
    assert describe_psc_result(0x10000000000) == "VMGEXIT_PSC_ERROR_GENERIC"
    assert describe_psc_result(0) == "success"
    for neighbour in (0x100000003, 0x100000000, 0x10000000001, 1, 2):
        assert describe_psc_result(neighbour) == "unknown"
    assert VMGEXIT_PSC_ERROR_INVALID_HDR == 0x0000000100000001
    assert VMGEXIT_PSC_ERROR_INVALID_ENTRY == 0x0000000100000002


# ---- exit codes, errors ---------------------------------------------------------------


def test_exit_codes():
    assert ec.SVM_EXIT_CPUID == 0x72 and ec.SVM_EXIT_IOIO == 0x7B and ec.SVM_EXIT_MSR == 0x7C
    assert ec.SVM_EXIT_VMMCALL == 0x81 and ec.SVM_EXIT_NPF == 0x400 and ec.SVM_EXIT_VMGEXIT == 0x403
    assert ec.SVM_EXIT_PAGE_NOT_VALIDATED == 0x404
    assert ec.SVM_VMGEXIT_MMIO_READ == 0x80000001 and ec.SVM_VMGEXIT_PSC == 0x80000010
    assert ec.SVM_VMGEXIT_AP_CREATION == 0x80000013 and ec.SVM_VMGEXIT_SNP_RUN_VMPL == 0x80000018
    assert ec.SVM_VMGEXIT_HV_FEATURES == 0x8000FFFD
    assert ec.SVM_VMGEXIT_TERM_REQUEST == 0x8000FFFE
    assert ec.SVM_VMGEXIT_UNSUPPORTED_EVENT == 0x8000FFFF
    assert ec.describe_exit_code(0x80000010) == "SVM_VMGEXIT_PSC"
    assert ec.describe_exit_code(0x80000006) == "unknown"
    assert (ec.GHCB_HV_RESP_NO_ACTION, ec.GHCB_HV_RESP_ISSUE_EXCEPTION) == (0, 1)
    assert ec.GHCB_HV_RESP_MALFORMED_INPUT == 2
    assert [int(e) for e in ec.GhcbErr] == [1, 2, 3, 4, 5, 6]
    assert ec.GHCB_ERR_INVALID_SCRATCH_AREA == 3 and ec.GHCB_ERR_INVALID_EVENT == 6


# ---- faults -----------------------------------------------------------------------------


def test_npf_golden():
    d = decode_npf_error_code(0x880000007)
    assert set(d.names) == {
        "PFERR_PRESENT_MASK",
        "PFERR_WRITE_MASK",
        "PFERR_USER_MASK",
        "PFERR_GUEST_RMP_MASK",
        "PFERR_GUEST_SIZEM_MASK",
    }
    assert d.unknown_bits == 0
    assert PFERR_GUEST_RMP_MASK == 1 << 31 and PFERR_GUEST_FINAL_MASK == 1 << 32
    assert PFERR_GUEST_PAGE_MASK == 1 << 33 and PFERR_GUEST_ENC_MASK == 1 << 34
    assert PFERR_GUEST_SIZEM_MASK == 1 << 35 and PFERR_GUEST_VMPL_MASK == 1 << 36
    assert X86_PF_RMP == 1 << 31 and X86_TRAP_VC == 29


def test_unknown_fault_bits_reported():
    d = decode_npf_error_code(1 << 40)
    assert d.names == [] and d.unknown_bits == 1 << 40
    p = decode_pf_error_code((1 << 31) | (1 << 20))
    assert p.names == ["X86_PF_RMP"] and p.unknown_bits == 1 << 20


# ---- termination ------------------------------------------------------------------------


def test_termination_forms():
    t = decode_term_msr(0x11100)
    assert (t.reason_set, t.reason_code, t.problems) == (1, 1, [])
    n = decode_term_nae(ec.SVM_VMGEXIT_TERM_REASON(1, 2))
    assert ec.SVM_VMGEXIT_TERM_REASON(1, 2) == 0x21
    assert (n.reason_set, n.reason_code) == (1, 2)
    assert GHCB_TERM_SAVIC_FAIL == 12
    assert "unknown" in describe_termination(1, 13)
    assert "unknown" in describe_termination(5, 1)
    assert decode_term_msr(0x11101).problems  # info code is not 0x100


# ---- RMP --------------------------------------------------------------------------------


def test_rmp_codes():
    assert rmp.PVALIDATE_SUCCESS == 0 and rmp.PVALIDATE_FAIL_INPUT == 1
    assert rmp.PVALIDATE_FAIL_SIZEMISMATCH == 6 and rmp.PVALIDATE_FAIL_NOUPDATE == 255
    assert (rmp.RMPUPDATE_FAIL_INPUT, rmp.RMPUPDATE_FAIL_PERMISSION) == (1, 2)
    assert (rmp.RMPUPDATE_FAIL_INUSE, rmp.RMPUPDATE_FAIL_OVERLAP) == (3, 4)
    assert (rmp.PSMASH_FAIL_INPUT, rmp.PSMASH_FAIL_PERMISSION) == (1, 2)
    assert (rmp.PSMASH_FAIL_INUSE, rmp.PSMASH_FAIL_BADADDR) == (3, 7)
    assert rmp.RMPADJUST_FAIL_SIZEMISMATCH == 6 and rmp.RMPREAD_FAIL_PERMISSION == 2
    assert rmp.RMPADJUST_VMSA_PAGE_BIT == 1 << 16
    assert rmp.RMPTABLE_CPU_BOOKKEEPING_SZ == 0x4000 and rmp.RMP_ENTRY_SIZE == 16
    assert int(rmp.RmpPerm.SSS) == 16 and int(rmp.RmpPerm.EXEC_SUPER) == 8


def test_rmp_state_layout():
    s = rmp.RmpState(gpa=0x1122334455667788, assigned=1, pagesize=1, immutable=1, rsvd=0, asid=5)
    b = s.encode()
    assert len(b) == 16
    assert b[0:8] == (0x1122334455667788).to_bytes(8, "little")
    assert (b[8], b[9], b[10], b[11]) == (1, 1, 1, 0)
    assert b[12:16] == (5).to_bytes(4, "little")
    with pytest.raises(SpecDecodeError):
        rmp.RmpState.decode(bytes(15))
    r = rmp.RmpReadOut.decode(bytes(8) + bytes([1, 3, 0, 0]) + bytes(4))
    assert r.hpage_region_status == 1 and r.pagesize & 1 == 1


# ---- KVM uAPI ---------------------------------------------------------------------------


def test_kvm_uapi():
    assert kvm.KVM_EXIT_UNKNOWN == 0 and kvm.KVM_EXIT_IO == 2 and kvm.KVM_EXIT_HYPERCALL == 3
    assert kvm.KVM_EXIT_MMIO == 6 and kvm.KVM_EXIT_SHUTDOWN == 8 and kvm.KVM_EXIT_FAIL_ENTRY == 9
    assert kvm.KVM_EXIT_INTERNAL_ERROR == 17 and kvm.KVM_EXIT_SYSTEM_EVENT == 24
    assert kvm.KVM_EXIT_MEMORY_FAULT == 39 and kvm.KVM_SYSTEM_EVENT_SEV_TERM == 6
    assert kvm.KVM_HC_MAP_GPA_RANGE == 12
    assert kvm.KVM_MAP_GPA_RANGE_ENCRYPTED == 0x10 and kvm.KVM_MAP_GPA_RANGE_DECRYPTED == 0
    assert kvm.KVM_MAP_GPA_RANGE_PAGE_SZ_2M == 1 and kvm.KVM_MAP_GPA_RANGE_PAGE_SZ_1G == 2
    assert kvm.KVM_MEMORY_ATTRIBUTE_PRIVATE == 8 and kvm.KVM_MEMORY_EXIT_FLAG_PRIVATE == 8
    assert kvm.KVM_ENOSYS == 1000 and kvm.KVM_EINVAL == 22 and kvm.KVM_EPERM == 1
    assert kvm.KVM_EFAULT == 14 and kvm.KVM_E2BIG == 7 and kvm.KVM_EOPNOTSUPP == 95
    assert kvm.KVM_FEATURE_MIGRATION_CONTROL == 17
    assert [int(t) for t in kvm.KvmSevSnpPageType] == [1, 2, 3, 4, 5, 6]
    assert kvm.KVM_X86_SNP_VM == 4


def test_ioctl_numbers_match_real_source():
    # literals seen in kvm-qemu-host.md 1.6 and in public code (docs/spec-sources.md)
    assert kvm.KVM_RUN == 0xAE80
    assert kvm.KVM_SET_MEMORY_ATTRIBUTES == 0x4020AED2
    assert kvm.KVM_CREATE_GUEST_MEMFD == 0xC040AED4
    assert kvm.KVM_SET_USER_MEMORY_REGION2 == 0x40A0AE49
    assert kvm.KVM_SET_USER_MEMORY_REGION == 0x4020AE46
    assert kvm.KVM_ENABLE_CAP == 0x4068AEA3
    assert kvm.KVM_PRE_FAULT_MEMORY == 0xC040AED5
    assert kvm.KVM_MEMORY_ENCRYPT_OP == 0xC008AEBA
    assert kvm.KVM_CREATE_VM == 0xAE01 and kvm.KVM_CREATE_VCPU == 0xAE41


# ---- MSRs, CPUID, page tables -----------------------------------------------------------


def test_msr_index():
    assert mi.MSR_AMD64_SEV_ES_GHCB == 0xC0010130 and mi.MSR_AMD64_SEV == 0xC0010131
    assert mi.MSR_AMD64_SEV_ENABLED == 1 and mi.MSR_AMD64_SEV_ES_ENABLED == 2
    assert mi.MSR_AMD64_SEV_SNP_ENABLED == 4
    assert mi.MSR_AMD64_SNP_VMPL_SSS == 1 << 10 and mi.MSR_AMD64_SNP_SMT_PROT == 1 << 17
    assert mi.MSR_AMD64_SNP_RESERVED_MASK == 0xFFFF_FFFF_FFFC_0000
    assert mi.cpuid_cbit(0x0000_5073 | (1 << 31)) == 51
    assert mi.CPUID_8000001F_EAX_SME_COHERENT == 1 << 10
    assert mi.CPUID_8000001F_EBX_COHERENCY_SFW_NO == 1 << 31


def test_pgtable():
    assert pt._PAGE_PRESENT == 1 and pt._PAGE_RW == 2 and pt._PAGE_PSE == 0x80
    assert pt._PAGE_NX == 1 << 63
    assert pt.PTE_PFN_MASK == 0x000F_FFFF_FFFF_F000
    assert (pt.PG_LEVEL_4K, pt.PG_LEVEL_2M, pt.PG_LEVEL_1G) == (1, 2, 3)
    va = (1 << 39) * 5 + (1 << 30) * 7 + (1 << 21) * 9 + (1 << 12) * 11 + 0x123
    assert (pt.pgd_index(va), pt.pud_index(va), pt.pmd_index(va), pt.pte_index(va)) == (5, 7, 9, 11)
    assert pt.pte_cbit_mask(51) & pt.PTE_PFN_MASK  # bit 51 lies inside 51:12: Linux drops it
