# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The RMP state machine driven alone, from its rules (STYLE.md section 7; h11 style):
after every illegal step the return code is the architectural one and the state is
unchanged.  Codes: hardware-and-ghcb.md 3.1 (RMPUPDATE), 3.2 (PSMASH), 3.6 (RMPREAD)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snpsim.hw.faults import NestedPageFault
from snpsim.hw.rmp import Rmp, RmpEntry
from snpsim.spec.rmp import RmpState

MiB = 1 << 20
ASID = 5


def private(gpa, size=0, immutable=0, asid=ASID):
    return RmpState(gpa=gpa, assigned=1, pagesize=size, immutable=immutable, rsvd=0, asid=asid)


def shared(size=0):
    return RmpState(gpa=0, assigned=0, pagesize=size, immutable=0, rsvd=0, asid=0)


def snapshot(rmp, pfns):
    return [rmp.entry(p) for p in pfns]


def test_initial_state_is_hypervisor_owned():
    rmp = Rmp(1 << 40)
    e = rmp.lookup(0x12345)
    assert e == RmpEntry() and e.owner == "hypervisor"


def test_rmpupdate_private_then_shared():
    rmp = Rmp(64 * MiB)
    assert rmp.rmpupdate(0x200000, private(0x7000)) == 0
    e = rmp.lookup(0x200)
    assert (e.assigned, e.asid, e.gpa, e.pagesize, e.validated) == (True, ASID, 0x7000, 0, False)
    assert e.perms == (0x1F, 0, 0, 0)  # VMPL0 all (R, W, X-user, X-super, SSS), others none
    rmp.set_validated(0x200, True)
    assert rmp.rmpupdate(0x200000, shared()) == 0
    assert rmp.lookup(0x200) == RmpEntry()


def test_every_successful_rmpupdate_clears_validated():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x1000, private(0x1000))
    rmp.set_validated(1, True)
    assert rmp.rmpupdate(0x1000, private(0x1000)) == 0  # same state again
    assert rmp.lookup(1).validated is False


@pytest.mark.parametrize(
    "spa,state,code",
    [
        (64 * MiB, private(0), 1),  # beyond RMP coverage: FAIL_INPUT
        (0x201000, private(0x200000, size=1), 1),  # 2M state on a non-2M-aligned SPA
    ],
)
def test_rmpupdate_fail_input(spa, state, code):
    rmp = Rmp(64 * MiB)
    assert rmp.rmpupdate(spa, state) == code


def test_rmpupdate_from_a_guest_asid_is_fail_permission():
    rmp = Rmp(64 * MiB)
    assert rmp.rmpupdate(0x1000, private(0x1000), current_asid=ASID) == 2
    assert rmp.lookup(1) == RmpEntry()


def test_rmpupdate_of_immutable_entry_is_fail_permission_and_unchanged():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x1000, private(0x1000, immutable=1))
    before = snapshot(rmp, [1])
    assert rmp.rmpupdate(0x1000, shared()) == 2
    assert snapshot(rmp, [1]) == before


def test_rmpupdate_of_running_vmsa_is_fail_inuse():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x3000, private(0xFFFFFFFFF000))
    rmp.in_use.add(3)
    before = snapshot(rmp, [3])
    assert rmp.rmpupdate(0x3000, shared()) == 3
    assert snapshot(rmp, [3]) == before


def test_overlap_4k_under_2m_and_2m_over_assigned_4k():
    rmp = Rmp(64 * MiB)
    assert rmp.rmpupdate(0x400000, private(0x800000, size=1)) == 0
    before = snapshot(rmp, range(0x400, 0x600))
    assert rmp.rmpupdate(0x401000, private(0x801000)) == 4  # FAIL_OVERLAP
    assert snapshot(rmp, range(0x400, 0x600)) == before
    rmp2 = Rmp(64 * MiB)
    rmp2.rmpupdate(0x405000, private(0x5000))
    before = snapshot(rmp2, range(0x400, 0x600))
    assert rmp2.rmpupdate(0x400000, private(0x0, size=1)) == 4
    assert snapshot(rmp2, range(0x400, 0x600)) == before


def test_2m_entry_governs_its_range():
    rmp = Rmp(64 * MiB)
    assert rmp.rmpupdate(0x400000, private(0x800000, size=1)) == 0
    e = rmp.lookup(0x5FF)
    assert e.assigned and e.pagesize == 1 and e.gpa == 0x800000 + 0x1FF000


def test_psmash_keeps_validated_and_makes_consecutive_gpas():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x400000, private(0x800000, size=1))
    rmp.set_validated(0x400, True)
    assert rmp.psmash(0x400000) == 0
    for i in (0, 1, 511):
        e = rmp.entry(0x400 + i)
        assert (e.assigned, e.pagesize, e.validated, e.asid, e.gpa) == (
            True, 0, True, ASID, 0x800000 + i * 0x1000)


@pytest.mark.parametrize("spa,code", [(0x401000, 1), (0x600000, 7)])
def test_psmash_failures(spa, code):
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x400000, private(0x800000, size=1))
    assert rmp.psmash(spa) == code  # 1 FAIL_INPUT misaligned, 7 not a 2M entry


def test_psmash_from_guest_is_fail_permission():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x400000, private(0x800000, size=1))
    assert rmp.psmash(0x400000, current_asid=1) == 2


def test_rmpread():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x1000, private(0x9000))
    code, e = rmp.rmpread(0x1000)
    assert code == 0 and e.gpa == 0x9000 and e.asid == ASID
    assert rmp.rmpread(64 * MiB)[0] == 1
    assert rmp.rmpread(0x1000, current_asid=2)[0] == 2


def test_owners_table_15_35():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x1000, private(0x1000))
    rmp.rmpupdate(0x2000, RmpState(0, 1, 0, 1, 0, 0))  # AMD-SP page: ASID 0, immutable
    assert [rmp.lookup(p).owner for p in (0, 1, 2)] == ["hypervisor", "guest", "firmware"]


def test_uncovered_pages_are_permanently_hypervisor_owned():
    rmp = Rmp(4 * MiB)
    pfn = (4 * MiB) >> 12
    assert rmp.covered(pfn - 1) and not rmp.covered(pfn)
    assert rmp.rmpupdate(4 * MiB, private(0x1000)) == 1  # FAIL_INPUT
    assert rmp.rmpupdate(4 * MiB, shared()) == 1
    assert rmp.psmash(4 * MiB) == 1
    assert rmp.rmpread(4 * MiB)[0] == 1
    assert rmp.lookup(pfn).owner == "hypervisor" and rmp.bytes_used() == 0


def test_rmpupdate_2m_range_partly_beyond_coverage_is_fail_input():
    rmp = Rmp(3 * MiB)  # the 2 MiB range at 2 MiB is only half covered
    assert rmp.rmpupdate(2 * MiB, private(0, size=1)) == 1
    assert rmp.bytes_used() == 0


def test_rmpupdate_reserved_pagesize_is_fail_input():
    rmp = Rmp(64 * MiB)
    assert rmp.rmpupdate(0x1000, RmpState(0x1000, 1, 2, 0, 0, ASID)) == 1


def test_rmpupdate_2m_over_range_with_running_vmsa_is_fail_inuse():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x405000, private(0xFFFFFFFFF000))
    rmp.in_use.add(0x405)
    assert rmp.rmpupdate(0x400000, private(0x800000, size=1)) == 3


def test_rmpupdate_4k_of_2m_head_is_fail_overlap_until_psmash():
    """A 4 KiB RMPUPDATE of the head of an assigned 2 MiB entry is refused with
    FAIL_OVERLAP (4) like any other page under it (MSDOC ``__rmpupdate`` code 4,
    "overlapping 4-KB and 2-MB RMP entries"; hardware-and-ghcb.md 1.3: model choice for
    the structural case) and changes nothing; KVM PSMASHes first (``sev_gmem_invalidate``,
    arch/x86/kvm/svm/sev.c v6.17), after which the same update succeeds and the other 511
    pages keep their PSMASHed entries."""
    rmp = Rmp(64 * MiB)
    assert rmp.rmpupdate(0x400000, private(0x800000, size=1)) == 0
    rmp.set_validated(0x400, True)
    assert rmp.rmpupdate(0x400000, shared()) == 4
    assert rmp.lookup(0x400).pagesize == 1 and rmp.lookup(0x400).validated
    assert rmp.lookup(0x5FF).assigned and rmp.lookup(0x5FF).pagesize == 1
    assert rmp.psmash(0x400000) == 0
    assert rmp.rmpupdate(0x400000, shared()) == 0
    assert not rmp.lookup(0x400).assigned
    assert all(rmp.lookup(0x400 + i).assigned for i in range(1, 512))
    assert rmp.lookup(0x401).gpa == 0x801000 and rmp.lookup(0x401).validated


def test_rmpupdate_2m_shared_replaces_an_assigned_2m_entry():
    """Returning a whole 2 MiB entry needs no PSMASH: a 2 MiB RMPUPDATE to the shared
    state (``rmp_make_shared(pfn, PG_LEVEL_2M)``, arch/x86/virt/svm/sev.c v6.17)."""
    rmp = Rmp(64 * MiB)
    assert rmp.rmpupdate(0x400000, private(0x800000, size=1)) == 0
    assert rmp.rmpupdate(0x400000, shared(size=1)) == 0
    assert not any(rmp.lookup(0x400 + i).assigned for i in (0, 1, 511))


def test_rmpupdate_size_change_clears_validated():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x400000, private(0x800000))
    rmp.set_validated(0x400, True)
    assert rmp.rmpupdate(0x400000, private(0x800000, size=1)) == 0
    assert rmp.lookup(0x400).validated is False and rmp.lookup(0x401).pagesize == 1


def test_rmpupdate_shared_keeps_page_size_only():
    """rmp_make_shared: all-zero state except Page_Size (arch/x86/virt/svm/sev.c)."""
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x400000, private(0x800000, size=1))
    assert rmp.rmpupdate(0x400000, shared(size=1)) == 0
    assert rmp.entry(0x400) == RmpEntry(pagesize=1)
    assert rmp.lookup(0x401) == RmpEntry()  # an unassigned 2M entry governs nothing


def test_psmash_of_range_with_running_vmsa_is_fail_inuse_and_unchanged():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x400000, private(0x800000, size=1))
    rmp.in_use.add(0x410)
    before = snapshot(rmp, range(0x400, 0x600))
    assert rmp.psmash(0x400000) == 3
    assert snapshot(rmp, range(0x400, 0x600)) == before


def test_psmash_copies_every_field():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x400000, private(0x800000, size=1))
    rmp.set_perms(0x400, 1, 0x3, vmsa=True)
    head = rmp.entry(0x400)
    assert rmp.psmash(0x400000) == 0
    for i in (0, 7, 511):
        e = rmp.entry(0x400 + i)
        assert (e.perms, e.vmsa, e.immutable, e.asid) == (head.perms, True, False, ASID)
        assert rmp.lookup(0x400 + i) == e


def test_psmash_of_unassigned_2m_entry_or_4k_entries_is_fail_badaddr():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x400000, shared(size=1))
    assert rmp.psmash(0x400000) == 7
    rmp.rmpupdate(0x600000, private(0x600000))
    assert rmp.psmash(0x600000) == 7


def test_rmpread_out_block():
    rmp = Rmp(64 * MiB)
    rmp.rmpupdate(0x405000, private(0x9000))
    code, out = rmp.rmpread_out(0x405000)
    assert code == 0 and (out.gpa, out.assigned, out.asid, out.pagesize & 1) == (0x9000, 1, ASID, 0)
    assert out.hpage_region_status == 1
    assert rmp.rmpread_out(0x401000)[1].hpage_region_status == 1  # same 2 MiB, unassigned
    assert rmp.rmpread_out(0x601000)[1].hpage_region_status == 0
    rmp.rmpupdate(0x600000, private(0xA00000, size=1))
    code, out = rmp.rmpread_out(0x7FF000)
    assert (out.gpa, out.pagesize) == (0xBFF000, 3)
    assert len(out.encode()) == 16
    assert rmp.rmpread_out(64 * MiB) == (1, None)


def test_lookups_of_untouched_1tib_allocate_nothing():
    rmp = Rmp(1 << 40)
    for pfn in range(0, 1 << 28, 1 << 18):
        assert rmp.lookup(pfn) == RmpEntry()
        assert rmp.rmpread(pfn << 12)[0] == 0
    assert rmp.bytes_used() == 0


ops = st.one_of(
    st.tuples(st.just("update"), st.integers(0, 1023), st.integers(0, 1), st.booleans(), st.integers(0, 3)),
    st.tuples(st.just("psmash"), st.integers(0, 1), st.just(0), st.just(False), st.just(0)),
    st.tuples(st.just("pvalidate"), st.integers(0, 1023), st.integers(0, 1), st.booleans(), st.integers(0, 3)),
)


def raw_state(rmp):
    return {k: v.tobytes() for k, v in rmp._chunks.items()}


def run_op(rmp, op, a, b, c, d):
    """Apply one step; return True when it succeeded (changed state or not)."""
    if op == "update":
        size = b
        pfn = a & ~511 if size else a
        gfn = (0x100 + d * 512) if size else (0x100 + a % 7)
        if c:
            # KVM's discipline (guest_memfd: one PFN per GFN): never assign a GPA that is
            # assigned at another SPA.
            gpas = range(gfn << 12, (gfn + (512 if size else 1)) << 12, 4096)
            taken = {(e.asid, e.gpa) for p in range(1024) if (e := rmp.lookup(p)).assigned
                     and not (pfn <= p < pfn + (512 if size else 1))}
            if any((ASID, g) in taken for g in gpas):
                return True
        state = private(gfn << 12, size=size) if c else shared(size)
        return rmp.rmpupdate(pfn << 12, state) == 0
    if op == "psmash":
        return rmp.psmash(a * 512 << 12) == 0
    # PVALIDATE as the guest would issue it: at the GPA the RMP records (d & 2: a wrong one)
    size = b
    pfn = a & ~511 if size else a
    e = rmp.lookup(pfn)
    gpa = (e.gpa if e.assigned else 0x100 << 12) + (0x1000 if d & 2 else 0)
    try:
        rax, _cf = rmp.pvalidate(pfn, gpa, asid=ASID, rmp_psize=size, validate=c, pferr=0)
    except NestedPageFault:
        return False
    return rax == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(ops, max_size=40))
def test_rmp_invariants_hold_after_any_sequence(seq):
    """After any sequence of RMPUPDATE / PSMASH / PVALIDATE (the RMP step of it, driven
    directly): a failed step leaves the table unchanged; a validated entry is assigned; a
    2M head and an assigned 4K entry inside it never coexist; and, under KVM's discipline
    (guest_memfd gives each GFN one PFN, so the host never assigns a GPA that is assigned
    elsewhere), no two SPAs are assigned at the same (ASID, GPA).  RMPUPDATE itself does
    not forbid such an alias: see test_rmpupdate_does_not_prevent_gpa_aliases."""
    rmp = Rmp(4 * MiB)
    for step in seq:
        before = raw_state(rmp)
        if not run_op(rmp, *step):
            after = raw_state(rmp)
            assert {k: v for k, v in after.items() if k in before} == before, step
        seen = {}
        for pfn in range(1024):
            e = rmp.lookup(pfn)
            if e.validated:
                assert e.assigned
            if e.assigned:
                key = (e.asid, e.gpa)
                assert key not in seen, f"pfn {pfn:#x} and {seen.get(key):#x} both map {key}"
                seen[key] = pfn
        for base in (0, 512):
            if rmp.head_2m(base) is not None:
                assert not any(rmp.entry(base + i).assigned for i in range(1, 512))


def test_rmpupdate_does_not_prevent_gpa_aliases():
    """The hardware does not stop a hypervisor from assigning two SPAs at one GPA; what
    stops the attack is the Reverse-Map check plus PVALIDATE's Validated bit (a freshly
    assigned page is never validated).  hardware-and-ghcb.md 1.4, 3.1."""
    rmp = Rmp(64 * MiB)
    assert rmp.rmpupdate(0x1000, private(0x7000)) == 0
    assert rmp.rmpupdate(0x2000, private(0x7000)) == 0
    assert rmp.lookup(2).validated is False


def test_an_entry_is_16_bytes_and_a_dense_2mib_costs_8_kib():
    """16 bytes per entry, the hardware entry's size (Linux ``struct rmpentry_raw``,
    arch/x86/virt/svm/sev.c: two u64); one chunk of 512 per touched 2 MiB."""
    from snpsim.hw.rmp import RMP_DTYPE

    rmp = Rmp(64 * MiB)
    assert RMP_DTYPE.itemsize == 16
    for pfn in range(512, 1024):
        assert rmp.rmpupdate(pfn << 12, private(pfn << 12, asid=0xFFFF)) == 0
    assert rmp.bytes_used() == 512 * 16
    e = rmp.lookup(700)
    assert (e.assigned, e.asid, e.gpa) == (True, 0xFFFF, 700 << 12)


def test_rmpupdate_of_an_asid_the_entry_cannot_hold_is_fail_input():
    """Model choice (hw/rmp.py docstring): ASIDs above RMP_ASID_MAX get FAIL_INPUT (1)."""
    from snpsim.hw.rmp import RMP_ASID_MAX

    rmp = Rmp(64 * MiB)
    assert rmp.rmpupdate(0x1000, private(0x1000, asid=RMP_ASID_MAX + 1)) == 1
    assert rmp.lookup(1) == RmpEntry() and rmp.bytes_used() == 0
