# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``Rmp.lookup`` keeps decoded entries (a model-only speed-up): after any sequence of RMP
writes it must still give exactly what a fresh read of the table gives, and the cache
must stay bounded."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from snpsim.hw import rmp as rmp_mod
from snpsim.hw.rmp import Rmp, RmpEntry
from snpsim.spec.rmp import RmpState

ASID = 3
#: Two 2 MiB regions plus one page past the RMP coverage limit.
COVERAGE = 4 << 20
PFNS = list(range(0, 1024)) + [1024, 1025]


def fresh_lookup(rmp: Rmp, pfn: int) -> RmpEntry:
    """The governing entry read from the raw table, with no cache (the definition)."""
    if not rmp.covered(pfn):
        return RmpEntry()
    head = rmp.entry(pfn & ~511)
    if head.assigned and head.pagesize == 1:
        return replace(head, gpa=head.gpa + ((pfn & 511) << 12))
    return rmp.entry(pfn)


op = st.one_of(
    st.tuples(st.just("update"), st.sampled_from(PFNS), st.integers(0, 1), st.booleans(),
              st.booleans()),
    st.tuples(st.just("psmash"), st.sampled_from([0, 512]), st.just(0), st.just(False),
              st.just(False)),
    st.tuples(st.just("validate"), st.sampled_from(PFNS[:1024]), st.just(0), st.booleans(),
              st.just(False)),
    st.tuples(st.just("perms"), st.sampled_from(PFNS[:1024]), st.integers(1, 3), st.booleans(),
              st.just(False)),
    st.tuples(st.just("coverage"), st.sampled_from([2 << 20, COVERAGE]), st.just(0),
              st.just(False), st.just(False)),
)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(op, max_size=30), probes=st.lists(st.sampled_from(PFNS), min_size=1, max_size=20))
def test_lookup_equals_a_fresh_read_after_any_writes(ops, probes):
    rmp = Rmp(COVERAGE)
    for kind, pfn, n, flag, flag2 in ops:
        for p in probes:  # fill the cache between writes
            rmp.lookup(p)
        if kind == "update":
            spa = (pfn & ~511 if n else pfn) << 12
            state = RmpState(gpa=spa + 0x40000000, assigned=int(flag), pagesize=n,
                             immutable=int(flag2), rsvd=0, asid=ASID if flag else 0)
            rmp.rmpupdate(spa, state)
        elif kind == "psmash":
            rmp.psmash(pfn << 12)
        elif kind == "validate":
            rmp.set_validated(pfn, flag)
        elif kind == "perms":
            rmp.set_perms(pfn, n, 0x3, vmsa=flag)
        else:
            rmp.coverage = pfn
        for p in PFNS:
            assert rmp.lookup(p) == fresh_lookup(rmp, p), (kind, pfn, p)


def test_cache_is_bounded():
    rmp = Rmp(1 << 40)
    for chunk in range(3 * rmp_mod._LOOKUP_CACHE_CHUNKS):
        pfn = chunk * 512
        rmp.rmpupdate(pfn << 12, RmpState(pfn << 12, 1, 0, 0, 0, ASID))
        rmp.lookup(pfn)
    assert len(rmp._lookups) <= rmp_mod._LOOKUP_CACHE_CHUNKS
    assert rmp.lookup(5 * 512).gpa == 5 * 512 << 12


def as_entry(rec) -> RmpEntry:
    return RmpEntry(bool(rec["assigned"]), int(rec["pagesize"]), bool(rec["immutable"]),
                    int(rec["gpa"]), int(rec["asid"]), bool(rec["vmsa"]), bool(rec["validated"]),
                    tuple(int(x) for x in rec["perms"]))


@settings(max_examples=100, deadline=None)
@given(ops=st.lists(op, max_size=30), start=st.integers(0, 1030), n=st.integers(0, 1100))
def test_lookup_range_equals_lookup_page_by_page(ops, start, n):
    """``Rmp.lookup_range`` (and ``HostCpu.rmpread_range``'s records) = ``lookup`` per
    page, across 2 MiB entries, PSMASHed ranges, untouched chunks and the coverage
    limit."""
    rmp = Rmp(COVERAGE)
    for kind, pfn, k, flag, flag2 in ops:
        if kind == "update":
            spa = (pfn & ~511 if k else pfn) << 12
            rmp.rmpupdate(spa, RmpState(gpa=spa + 0x40000000, assigned=int(flag), pagesize=k,
                                        immutable=int(flag2), rsvd=0, asid=ASID if flag else 0))
        elif kind == "psmash":
            rmp.psmash(pfn << 12)
        elif kind == "validate":
            rmp.set_validated(pfn, flag)
        elif kind == "perms":
            rmp.set_perms(pfn, k, 0x3, vmsa=flag)
        else:
            rmp.coverage = pfn
    recs = rmp.lookup_range(start, n)
    assert len(recs) == n
    assert [as_entry(r) for r in recs] == [rmp.lookup(p) for p in range(start, start + n)]


def test_rmpread_range_counts_and_refuses_like_the_loop():
    from snpsim.hw.cpu import Platform

    p = Platform(mem_size=COVERAGE)
    p.rmp.rmpupdate(0x3000, RmpState(0x7000, 1, 0, 0, 0, ASID))
    code, recs = p.host.rmpread_range(0x2000, 3)
    assert code == 0 and [bool(r["assigned"]) for r in recs] == [False, True, False]
    assert int(recs[1]["gpa"]) == 0x7000 and p.rmp.counters["RMPREAD"] == 3
    # the last page is beyond coverage: FAIL_INPUT (1), as RMPREAD of that page gives
    code, recs = p.host.rmpread_range(COVERAGE - 0x2000, 3)
    assert (code, recs) == (1, None) and p.rmp.counters["RMPREAD"] == 6
