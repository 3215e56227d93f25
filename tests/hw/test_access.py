# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""One test per row of the RMP access-check table (APM vol 2 15.36.10, table 15-39, as in
hardware-and-ghcb.md 1.4) and per named check, with the exact fault and bits.

Complements tests/hw/test_cpu.py (which has: private access to a hypervisor page, shared
write to an assigned page, C=0 read unchecked, #VC 0x404 on a private read, NPT miss)."""

import pytest
from hw_machine import (
    ASID,
    DATA_GPA,
    ENC,
    FINAL,
    GVA,
    PAGE,
    PTE_PAGE_GPA,
    RMP,
    VMPL,
    F,
    P,
    W,
    assign,
    build,
    gva,
    platform,
    run,
    spa,
)

from snpsim.hw.faults import HostPageFault, VmmCommunicationException
from snpsim.spec.exit_codes import SVM_EXIT_NPF, SVM_EXIT_VMGEXIT
from snpsim.spec.rmp import RmpPerm, RmpState, rmpadjust_attrs

DONE = (SVM_EXIT_VMGEXIT, 0, 0)


def first_npf(exits):
    assert exits[0][0] == SVM_EXIT_NPF, exits
    return exits[0][1], exits[0][2]


# -- row: host data write -> Hypervisor-Owned, else #PF with bit 31 -----------------------------


def test_host_write_to_hypervisor_page_succeeds():
    p = platform()
    p.host.write(spa(DATA_GPA), b"hv")
    assert p.host.read(spa(DATA_GPA), 2) == b"hv"


@pytest.mark.parametrize("owner", ["guest", "guest-2M-nonhead", "firmware"])
def test_host_write_to_assigned_page_is_host_pf_with_rmp_bit(owner):
    p = platform()
    if owner == "guest":
        assign(p, DATA_GPA)
        target = spa(DATA_GPA)
    elif owner == "guest-2M-nonhead":
        assign(p, DATA_GPA, size=1)
        target = spa(DATA_GPA) + 0x5000
    else:  # AMD-SP: assigned, ASID 0, immutable (APM table 15-35)
        assert p.rmp.rmpupdate(spa(DATA_GPA), RmpState(0, 1, 0, 1, 0, 0)) == 0
        assert p.rmp.lookup(spa(DATA_GPA) >> 12).owner == "firmware"
        target = spa(DATA_GPA)
    before = p.host.read(target, 16)
    with pytest.raises(HostPageFault) as exc:
        p.host.write(target + 8, b"x" * 16)
    assert exc.value.error_code == (1 << 31) | (1 << 1)  # X86_PF_RMP | X86_PF_WRITE
    assert exc.value.spa == target
    assert p.host.read(target, 16) == before  # nothing written


def test_host_write_spanning_into_an_assigned_page_faults_on_that_page():
    p = platform()
    assign(p, DATA_GPA + 0x1000)
    with pytest.raises(HostPageFault) as exc:
        p.host.write(spa(DATA_GPA) + 0xFF8, b"y" * 16)
    assert exc.value.spa == spa(DATA_GPA + 0x1000)
    assert p.host.read(spa(DATA_GPA) + 0xFF8, 8) == bytes(8)


def test_host_read_of_private_page_is_ciphertext_without_fault():
    p = platform()
    assign(p, DATA_GPA)
    p.mem.write_enc(spa(DATA_GPA), b"guest-secret", ASID)
    raw = p.host.read(spa(DATA_GPA), 4096)
    assert b"guest-secret" not in raw


def test_pages_above_rmp_coverage_are_hypervisor_owned_for_host_writes():
    p = platform(rmp_coverage=spa(0))  # the whole guest range is above coverage
    p.host.write(spa(DATA_GPA), b"ok")
    assert p.rmp.lookup(spa(DATA_GPA) >> 12).owner == "hypervisor"


# -- row: guest not SNP-active: data write / page-table access -> Hypervisor-Owned ------------


def test_non_snp_guest_write_to_assigned_page_is_npf_rmp():
    p = platform()
    npt = build(p, tables_private=False)
    assign(p, DATA_GPA, asid=ASID)
    _, exits, _ = run(p, npt, lambda cpu: cpu.write(GVA, b"x"), snp_active=False, max_exits=1)
    assert first_npf(exits) == (P | W | RMP | FINAL | ENC, DATA_GPA)


def test_non_snp_guest_read_is_unchecked_and_hv_pages_are_usable():
    p = platform()
    npt = build(p, tables_private=False)
    assign(p, DATA_GPA)  # assigned: a read is not checked
    ret, exits, _ = run(p, npt, lambda cpu: (cpu.write(GVA + 0x1000, b"sev"),
                                             cpu.read(GVA + 0x1000, 3), cpu.read(GVA, 1))[1],
                        snp_active=False)
    assert ret == b"sev" and exits == [DONE]


def test_non_snp_guest_page_table_on_assigned_page_is_npf_rmp_guest_page():
    p = platform()
    npt = build(p, tables_private=False)
    assign(p, PTE_PAGE_GPA)
    _, exits, _ = run(p, npt, lambda cpu: cpu.read(GVA, 1), snp_active=False, max_exits=1)
    assert first_npf(exits) == (P | RMP | PAGE | ENC, PTE_PAGE_GPA + 0)


# -- row: SNP guest, instruction fetch (always private) ----------------------------------------


def test_fetch_is_private_even_through_a_c0_mapping():
    p = platform()
    npt = build(p, ptes={0: (DATA_GPA, False, False)})
    assign(p, DATA_GPA)
    p.mem.write_enc(spa(DATA_GPA), b"\x90\x90\xc3", ASID)
    ret, exits, _ = run(p, npt, lambda cpu: cpu.fetch(GVA, 3))
    assert ret == b"\x90\x90\xc3" and exits == [DONE]


def test_fetch_from_hypervisor_page_is_npf_rmp_fetch():
    p = platform()
    npt = build(p, ptes={0: (DATA_GPA, False, False)})
    _, exits, _ = run(p, npt, lambda cpu: cpu.fetch(GVA, 1), max_exits=1)
    assert first_npf(exits) == (P | F | RMP | FINAL | ENC, DATA_GPA)


def test_fetch_from_unvalidated_page_is_vc_404():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, validated=False)
    _, _, faults = run(p, npt, lambda cpu: cpu.fetch(GVA + 0x10, 1))
    assert [(type(f), f.error_code, f.cr2) for f in faults] == [
        (VmmCommunicationException, 0x404, GVA + 0x10)]


def test_fetch_without_execute_permission_at_vmpl1_is_npf_vmpl():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    p.rmp.set_perms(spa(DATA_GPA) >> 12, 1, int(RmpPerm.READ | RmpPerm.WRITE))
    ret, exits, _ = run(p, npt, lambda cpu: cpu.read(GVA, 1), vmpl=1)
    assert exits == [DONE]  # data read allowed
    _, exits, _ = run(p, npt, lambda cpu: cpu.fetch(GVA, 1), vmpl=1, max_exits=1)
    assert first_npf(exits) == (P | F | RMP | FINAL | ENC | VMPL, DATA_GPA)


def test_fetch_from_nx_page_is_guest_pf():
    p = platform()
    npt = build(p, ptes={0: (DATA_GPA, True, True)})
    assign(p, DATA_GPA)
    _, _, faults = run(p, npt, lambda cpu: cpu.fetch(GVA, 1))
    assert [(f.vector, f.error_code, f.gva) for f in faults] == [(14, P | F, GVA)]


# -- row: SNP guest, guest page-table access (always private) ----------------------------------


def test_page_table_page_not_guest_owned_is_npf_rmp_guest_page():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    p.rmp.rmpupdate(spa(PTE_PAGE_GPA), RmpState())  # the host takes the PT page back
    _, exits, _ = run(p, npt, lambda cpu: cpu.read(GVA, 1), max_exits=1)
    assert first_npf(exits) == (P | RMP | PAGE | ENC, PTE_PAGE_GPA)


def test_unvalidated_page_table_page_is_vc_404_with_cr2_of_the_access():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    p.rmp.set_validated(spa(PTE_PAGE_GPA) >> 12, False)
    _, _, faults = run(p, npt, lambda cpu: cpu.read(GVA + 0x123, 1))
    assert [(f.error_code, f.cr2) for f in faults] == [(0x404, GVA + 0x123)]


# -- row: SNP guest, C=0 data write -> Hypervisor-Owned ----------------------------------------


def test_shared_write_to_hypervisor_page_succeeds_and_is_plaintext():
    p = platform()
    npt = build(p, ptes={0: (DATA_GPA, False, False)})
    _, exits, _ = run(p, npt, lambda cpu: cpu.write(GVA, b"ghcb"))
    assert exits == [DONE] and p.host.read(spa(DATA_GPA), 4) == b"ghcb"


@pytest.mark.check("rmp:hypervisor-owned")
def test_shared_write_under_2m_npt_leaf_needs_all_512_pages_hypervisor_owned():
    p = platform()
    npt = build(p, ptes={0: (DATA_GPA, False, False)}, npt_data="2M")
    assign(p, DATA_GPA + 0x1FF000)  # another page of the same 2 MiB
    _, exits, _ = run(p, npt, lambda cpu: cpu.write(GVA, b"x"), max_exits=1)
    assert first_npf(exits) == (P | W | RMP | FINAL, DATA_GPA)


def test_shared_write_above_rmp_coverage_succeeds():
    p = platform(rmp_coverage=spa(DATA_GPA))
    npt = build(p, ptes={0: (DATA_GPA, False, False)})
    _, exits, _ = run(p, npt, lambda cpu: cpu.write(GVA, b"x"))
    assert exits == [DONE]


# -- row: SNP guest, C=1 data read/write: each named check ----------------------------------------


def test_private_access_ok_at_4k_and_at_2m():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    ret, exits, _ = run(p, npt, lambda cpu: (cpu.write(GVA, b"ok"), cpu.read(GVA, 2))[1])
    assert ret == b"ok" and exits == [DONE]
    p = platform()
    npt = build(p, npt_data="2M")
    assign(p, DATA_GPA, size=1)
    ret, exits, _ = run(p, npt, lambda cpu: (cpu.write(GVA + 0x7000, b"2m"), cpu.read(GVA + 0x7000, 2))[1])
    assert ret == b"2m" and exits == [DONE]


def test_rmp_covered_check():
    p = platform(rmp_coverage=spa(DATA_GPA))  # data page just above coverage
    npt = build(p)
    _, exits, _ = run(p, npt, lambda cpu: cpu.read(GVA, 1), max_exits=1)
    assert first_npf(exits) == (P | RMP | FINAL | ENC, DATA_GPA)


@pytest.mark.check("rmp:guest-owned")
@pytest.mark.parametrize("how", ["other-asid", "firmware"])
def test_guest_owned_check(how):
    p = platform()
    npt = build(p)
    if how == "other-asid":
        assign(p, DATA_GPA, asid=ASID + 1)
    else:
        assert p.rmp.rmpupdate(spa(DATA_GPA), RmpState(DATA_GPA, 1, 0, 1, 0, 0)) == 0
    _, exits, _ = run(p, npt, lambda cpu: cpu.write(GVA, b"x"), max_exits=1)
    assert first_npf(exits) == (P | W | RMP | FINAL | ENC, DATA_GPA)


@pytest.mark.check("rmp:reverse-map")
def test_reverse_map_check():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, rmp_gpa=DATA_GPA + 0x1000)  # assigned for another GPA
    _, exits, _ = run(p, npt, lambda cpu: cpu.read(GVA + 8, 1), max_exits=1)
    assert first_npf(exits) == (P | RMP | FINAL | ENC, DATA_GPA + 8)


def test_mutable_check():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, immutable=1, validated=False)
    _, exits, _ = run(p, npt, lambda cpu: cpu.read(GVA, 1), max_exits=1)
    assert first_npf(exits) == (P | RMP | FINAL | ENC, DATA_GPA)


@pytest.mark.check("rmp:page-size")
def test_page_size_check_npt_2m_over_rmp_4k():
    p = platform()
    npt = build(p, npt_data="2M")
    assign(p, DATA_GPA)
    _, exits, _ = run(p, npt, lambda cpu: cpu.read(GVA, 1), max_exits=1)
    assert first_npf(exits) == (P | RMP | FINAL | ENC, DATA_GPA)  # no SIZEM on accesses


def test_page_size_check_npt_4k_over_rmp_2m_then_psmash_fixes_it():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, size=1)
    seen = []

    def on_exit(ex):
        seen.append((ex.exit_info_1, ex.exit_info_2))
        assert p.rmp.psmash(spa(DATA_GPA)) == 0  # KVM sev_handle_rmp_fault

    ret, exits, _ = run(p, npt, lambda cpu: cpu.read(GVA + 0x3000, 1), on_exit=on_exit)
    assert seen == [(P | RMP | FINAL | ENC, DATA_GPA + 0x3000)]
    assert exits[-1] == DONE  # PSMASH kept Validated: the retried read completes


@pytest.mark.check("rmp:validated")
def test_validated_check_on_write_is_vc_404_with_cr2():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, validated=False)
    _, _, faults = run(p, npt, lambda cpu: cpu.write(GVA + 0x40, b"x"))
    assert [(f.vector, f.error_code, f.cr2) for f in faults] == [(29, 0x404, GVA + 0x40)]


@pytest.mark.parametrize(
    "perms,write,ok",
    [
        (0, False, False),
        (int(RmpPerm.READ), False, True),
        (int(RmpPerm.READ), True, False),
        (int(RmpPerm.WRITE), True, False),  # write without read is illegal
        (int(RmpPerm.READ | RmpPerm.WRITE), True, True),
    ],
)
def test_vmpl_check(perms, write, ok):
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    p.rmp.set_perms(spa(DATA_GPA) >> 12, 1, perms)
    body = (lambda cpu: cpu.write(GVA, b"x")) if write else (lambda cpu: cpu.read(GVA, 1))
    _, exits, _ = run(p, npt, body, vmpl=1, max_exits=1)
    if ok:
        assert exits == [DONE]
    else:
        assert first_npf(exits) == (P | (W if write else 0) | RMP | FINAL | ENC | VMPL, DATA_GPA)


def test_vmpl1_access_after_rmpadjust_grant():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    attrs = rmpadjust_attrs(1, int(RmpPerm.READ | RmpPerm.WRITE))
    ret, _, _ = run(p, npt, lambda cpu: cpu.rmpadjust(GVA, 0, attrs))
    assert ret == 0
    _, exits, _ = run(p, npt, lambda cpu: cpu.write(GVA, b"x"), vmpl=1)
    assert exits == [DONE]


# -- priority among the checks -------------------------------------------------------------------


def test_page_size_failure_wins_over_validated():
    p = platform()
    npt = build(p, npt_data="2M")
    assign(p, DATA_GPA, validated=False)
    _, exits, faults = run(p, npt, lambda cpu: cpu.read(GVA, 1), max_exits=1)
    assert faults == [] and first_npf(exits) == (P | RMP | FINAL | ENC, DATA_GPA)


def test_reverse_map_failure_wins_over_validated():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, validated=False, rmp_gpa=0x7000)
    _, exits, faults = run(p, npt, lambda cpu: cpu.read(GVA, 1), max_exits=1)
    assert faults == [] and first_npf(exits)[0] == P | RMP | FINAL | ENC


def test_validated_failure_wins_over_vmpl():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA, validated=False)  # VMPL1 has no permissions either
    _, exits, faults = run(p, npt, lambda cpu: cpu.read(GVA, 1), vmpl=1)
    assert [(f.error_code, f.cr2) for f in faults] == [(0x404, GVA)] and exits == [DONE]


def test_npt_failure_wins_over_rmp():
    p = platform()
    npt = build(p, npt_data=None)  # data not mapped in the NPT, RMP not assigned either
    _, exits, _ = run(p, npt, lambda cpu: cpu.read(gva(DATA_GPA), 1), max_exits=1)
    assert first_npf(exits) == (FINAL | ENC, DATA_GPA)  # no present, no RMP bit

