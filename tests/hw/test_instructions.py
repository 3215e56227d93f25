# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The guest SNP instructions with every return code and fault: PVALIDATE
(hardware-and-ghcb.md 2) and RMPADJUST (3.4), run by a guest vCPU.

tests/hw/test_cpu.py already covers PVALIDATE (0,0), CF=1, FAIL_INPUT, FAIL_SIZEMISMATCH
and #NPF SIZEM; this file adds the rest."""

import dataclasses

import pytest
from hw_machine import (
    ASID,
    DATA_GPA,
    ENC,
    FINAL,
    GVA,
    RMP,
    SIZEM,
    P,
    assign,
    build,
    platform,
    run,
    spa,
)

from snpsim.hw.faults import GeneralProtectionFault, VmmCommunicationException
from snpsim.spec.exit_codes import SVM_EXIT_NPF, SVM_EXIT_VMGEXIT
from snpsim.spec.rmp import (
    RMP_PERM_ALL,
    RMPADJUST_FAIL_INPUT,
    RMPADJUST_FAIL_PERMISSION,
    RMPADJUST_FAIL_SIZEMISMATCH,
    RmpPerm,
    RmpState,
    rmpadjust_attrs,
)

DONE = (SVM_EXIT_VMGEXIT, 0, 0)
PFN = spa(DATA_GPA) >> 12
RW = int(RmpPerm.READ | RmpPerm.WRITE)


# -- PVALIDATE -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["unassigned", "other-asid", "gpa-mismatch", "immutable", "uncovered"])
def test_pvalidate_npf_rmp(how):
    p = platform(rmp_coverage=spa(DATA_GPA)) if how == "uncovered" else platform()
    npt = build(p)
    if how == "other-asid":
        assign(p, DATA_GPA, asid=ASID + 1, validated=False)
    elif how == "gpa-mismatch":
        assign(p, DATA_GPA, rmp_gpa=DATA_GPA + 0x1000, validated=False)
    elif how == "immutable":
        assign(p, DATA_GPA, immutable=1, validated=False)
    before = p.rmp.entry(PFN)
    _, exits, _ = run(p, npt, lambda cpu: cpu.pvalidate(GVA, 0, True), max_exits=1)
    assert exits == [(SVM_EXIT_NPF, P | RMP | FINAL | ENC, DATA_GPA)]
    assert p.rmp.entry(PFN) == before


def test_pvalidate_npf_without_enc_bit_through_a_c0_mapping():
    p = platform()
    npt = build(p, ptes={0: (DATA_GPA, False, False)})
    _, exits, _ = run(p, npt, lambda cpu: cpu.pvalidate(GVA, 0, True), max_exits=1)
    assert exits == [(SVM_EXIT_NPF, P | RMP | FINAL, DATA_GPA)]


@pytest.mark.parametrize("vmpl,cpl", [(1, 0), (3, 0), (0, 3)])
def test_pvalidate_gp_at_vmpl_or_cpl_not_zero(vmpl, cpl):
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, validated=False)
    _, exits, faults = run(p, npt, lambda cpu: cpu.pvalidate(GVA, 0, True), vmpl=vmpl, cpl=cpl)
    assert [(type(f), f.vector, f.error_code) for f in faults] == [(GeneralProtectionFault, 13, 0)]
    assert exits == [DONE] and p.rmp.lookup(PFN).validated is False


def test_pvalidate_rescind_of_unvalidated_page_sets_cf():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, validated=False)
    ret, _, _ = run(p, npt, lambda cpu: cpu.pvalidate(GVA, 0, False))
    assert ret == (0, 1)


def test_pvalidate_2m_sets_one_bit_for_the_whole_range():
    p = platform()
    npt = build(p, npt_data="2M")
    assign(p, DATA_GPA, size=1, validated=False)
    ret, _, _ = run(p, npt, lambda cpu: [cpu.pvalidate(GVA, 1, True), cpu.pvalidate(GVA, 1, True)])
    assert ret == [(0, 0), (0, 1)]
    assert p.rmp.lookup(PFN + 511).validated and p.rmp.entry(PFN + 511) == p.rmp.entry(PFN + 1)


def test_pvalidate_changes_only_validated():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, validated=False)
    before = p.rmp.entry(PFN)
    run(p, npt, lambda cpu: cpu.pvalidate(GVA, 0, True))
    assert p.rmp.entry(PFN) == dataclasses.replace(before, validated=True)


# -- RMPADJUST --------------------------------------------------------------------------------


def rmpadjust(p, npt, vaddr, size, attrs, **kw):
    return run(p, npt, lambda cpu: cpu.rmpadjust(vaddr, size, attrs), **kw)


def test_rmpadjust_sets_target_vmpl_mask_and_vmsa_at_vmpl0():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    ret, _, _ = rmpadjust(p, npt, GVA, 0, rmpadjust_attrs(1, RW, vmsa=True))
    e = p.rmp.lookup(PFN)
    assert ret == 0 and e.perms == (int(RMP_PERM_ALL), RW, 0, 0) and e.vmsa
    ret, _, _ = rmpadjust(p, npt, GVA, 0, rmpadjust_attrs(1, 0, vmsa=False))
    assert ret == 0 and p.rmp.lookup(PFN).vmsa is False and p.rmp.lookup(PFN).perms[1] == 0


def test_rmpadjust_at_vmpl1_ignores_the_vmsa_bit():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    p.rmp.set_perms(PFN, 1, RW)
    ret, _, _ = rmpadjust(p, npt, GVA, 0, rmpadjust_attrs(2, int(RmpPerm.READ), vmsa=True), vmpl=1)
    e = p.rmp.lookup(PFN)
    assert ret == 0 and e.perms[2] == int(RmpPerm.READ) and e.vmsa is False


@pytest.mark.parametrize(
    "vmpl,attrs",
    [
        (0, rmpadjust_attrs(0, RW)),  # target == current
        (1, rmpadjust_attrs(1, 0)),  # target == current (how Linux detects VMPL0)
        (2, rmpadjust_attrs(1, 0)),  # target below current privilege
        (1, rmpadjust_attrs(2, RW)),  # VMPL1 has READ only: WRITE is not a subset
    ],
)
def test_rmpadjust_fail_permission_leaves_entry_unchanged(vmpl, attrs):
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    p.rmp.set_perms(PFN, 1, int(RmpPerm.READ))
    p.rmp.set_perms(PFN, 2, int(RmpPerm.READ))
    before = p.rmp.entry(PFN)
    ret, _, _ = rmpadjust(p, npt, GVA, 0, attrs, vmpl=vmpl)
    assert ret == RMPADJUST_FAIL_PERMISSION and p.rmp.entry(PFN) == before


@pytest.mark.parametrize(
    "vaddr,size,attrs",
    [
        (GVA + 0x1000, 1, rmpadjust_attrs(1, RW)),  # 2M on a GVA not 2M aligned
        (GVA, 0, rmpadjust_attrs(4, RW)),  # target VMPL 4 does not exist
        (GVA, 0, rmpadjust_attrs(1, 0x20)),  # reserved permission bit 5
        (GVA, 0, rmpadjust_attrs(1, RW) | (1 << 20)),  # reserved RDX bit
        (GVA, 2, rmpadjust_attrs(1, RW)),  # page size 2 is not defined
    ],
)
def test_rmpadjust_fail_input(vaddr, size, attrs):
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    before = p.rmp.entry(PFN)
    ret, _, _ = rmpadjust(p, npt, vaddr, size, attrs)
    assert ret == RMPADJUST_FAIL_INPUT and p.rmp.entry(PFN) == before


def test_rmpadjust_2m_on_4k_entry_is_fail_sizemismatch():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    ret, _, _ = rmpadjust(p, npt, GVA, 1, rmpadjust_attrs(1, RW))
    assert ret == RMPADJUST_FAIL_SIZEMISMATCH


def test_rmpadjust_4k_on_2m_entry_is_npf_sizem_and_2m_succeeds():
    p = platform()
    npt = build(p, npt_data="2M")
    assign(p, DATA_GPA, size=1)
    _, exits, _ = rmpadjust(p, npt, GVA + 0x2000, 0, rmpadjust_attrs(1, RW), max_exits=1)
    assert exits == [(SVM_EXIT_NPF, P | RMP | FINAL | ENC | SIZEM, DATA_GPA + 0x2000)]
    ret, _, _ = rmpadjust(p, npt, GVA, 1, rmpadjust_attrs(1, RW))
    assert ret == 0 and p.rmp.lookup(PFN + 300).perms[1] == RW


@pytest.mark.parametrize("how", ["unassigned", "other-asid", "gpa-mismatch", "immutable"])
def test_rmpadjust_npf_rmp(how):
    p = platform()
    npt = build(p)
    if how == "other-asid":
        assign(p, DATA_GPA, asid=ASID + 1)
    elif how == "gpa-mismatch":
        assign(p, DATA_GPA, rmp_gpa=0x5000)
    elif how == "immutable":
        assign(p, DATA_GPA, immutable=1)
    _, exits, _ = rmpadjust(p, npt, GVA, 0, rmpadjust_attrs(1, RW), max_exits=1)
    assert exits == [(SVM_EXIT_NPF, P | RMP | FINAL | ENC, DATA_GPA)]


def test_rmpadjust_on_unvalidated_page_is_vc_404():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, validated=False)
    _, _, faults = rmpadjust(p, npt, GVA, 0, rmpadjust_attrs(1, RW))
    assert [(type(f), f.error_code, f.cr2) for f in faults] == [
        (VmmCommunicationException, 0x404, GVA)]


def test_rmpadjust_at_cpl3_is_gp():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    _, _, faults = rmpadjust(p, npt, GVA, 0, rmpadjust_attrs(1, RW), cpl=3)
    assert [type(f) for f in faults] == [GeneralProtectionFault]


def test_rmpupdate_after_rmpadjust_resets_perms_and_vmsa():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    rmpadjust(p, npt, GVA, 0, rmpadjust_attrs(1, RW, vmsa=True))
    assert p.rmp.rmpupdate(spa(DATA_GPA), RmpState(DATA_GPA, 1, 0, 0, 0, ASID)) == 0
    e = p.rmp.lookup(PFN)
    assert (e.perms, e.vmsa, e.validated) == ((int(RMP_PERM_ALL), 0, 0, 0), False, False)
