# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The host-side bookkeeping structures against plain per-page reference models
(Hypothesis): the attribute map (:class:`snpsim.kvm.kvm_host.RangeMap`), the nested page
table (:class:`snpsim.hw.npt.Npt`) and the host page allocator
(:class:`snpsim.kvm.host_mm.PageAllocator`).  Each structure must answer every query
exactly as a dict per page would, and stay in its canonical form."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from snpsim.kvm.kvm_host import RangeMap

SPAN = 64

ops_set = st.lists(
    st.tuples(st.integers(0, SPAN), st.integers(0, SPAN), st.sampled_from([0, 0, 8, 8, 3])),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ops_set)
def test_rangemap_equals_a_dict_per_gfn(ops):
    rm = RangeMap()
    ref: dict[int, int] = {}
    for a, b, v in ops:
        s, e = min(a, b), max(a, b)
        rm.set(s, e, v)
        for g in range(s, e):
            ref[g] = v
        # canonical: sorted, disjoint, no zero run, no two touching runs of one value
        runs = list(zip(rm._starts, rm._ends, rm._vals))
        for (_s0, e0, v0), (s1, _e1, v1) in zip(runs, runs[1:]):
            assert e0 <= s1
            assert not (e0 == s1 and v0 == v1)
        assert all(s0 < e0 and v0 for s0, e0, v0 in runs)
    for g in range(-1, SPAN + 2):
        assert rm.get(g) == ref.get(g, 0)
    for a in range(0, SPAN, 7):
        for b in range(a, SPAN + 1, 5):
            got = list(rm.runs(a, b))
            flat = [v for s0, e0, v in got for _ in range(s0, e0)]
            assert flat == [ref.get(g, 0) for g in range(a, b)]
            assert rm.all_equal(a, b, 8) == all(ref.get(g, 0) == 8 for g in range(a, b))


def test_rangemap_set_visits_only_the_runs_it_touches():
    """Setting one GFN costs the same whether 1 or 10,000 other runs are stored."""
    small, big = RangeMap(), RangeMap()
    for i in range(10_000):
        big.set(4 * i, 4 * i + 2, 8)
    small.set(0, 2, 8)
    for rm in (small, big):
        rm.work = 0
        rm.set(1, 2, 0)
        rm.set(1, 2, 8)
    assert small.work == big.work


# ---- the nested page table ----------------------------------------------------------------

npt_ops = st.lists(
    st.one_of(
        st.tuples(st.just("map4k"), st.integers(0, 3 * 512),
                  st.one_of(st.integers(0, 4096), st.integers(2**30 - 2, 2**30 + 2), st.just(2**40)),
                  st.booleans()),
        st.tuples(st.just("map2m"), st.integers(0, 2),
                  st.one_of(st.integers(0, 7), st.just(2**21 - 1), st.just(2**21)), st.booleans()),
        st.tuples(st.just("unmap"), st.integers(0, 3 * 512), st.integers(0, 1100), st.booleans()),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(npt_ops)
def test_npt_equals_a_dict_per_gfn(ops):
    from snpsim.hw.npt import Npt
    from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K

    npt = Npt()
    ref4k: dict[int, tuple[int, bool]] = {}
    ref2m: dict[int, tuple[int, bool]] = {}
    for op, a, b, w in ops:
        if op == "map4k":
            npt.map(a, b, PG_LEVEL_4K, w)
            big = ref2m.pop(a >> 9, None)
            if big is not None:
                for i in range(512):
                    ref4k[((a >> 9) << 9) + i] = (big[0] + i, big[1])
            ref4k[a] = (b, w)
        elif op == "map2m":
            npt.map(a * 512, b * 512, PG_LEVEL_2M, w)
            for g in range(a * 512, a * 512 + 512):
                ref4k.pop(g, None)
            ref2m[a] = (b * 512, w)
        else:
            s, e = a, a + b
            want = sum(1 for g in list(ref4k) if s <= g < e)
            for g in [g for g in ref4k if s <= g < e]:
                del ref4k[g]
            hs = [h for h in ref2m if h * 512 < e and h * 512 + 512 > s and s < e]
            for h in hs:
                del ref2m[h]
            assert npt.unmap(s, e) == want + len(hs)
        # interleave lookups so the cache is exercised between changes
        for g in (a, a + 1, a + 511, 600):
            _check(npt, ref4k, ref2m, g)
    for g in range(0, 3 * 512 + 2):
        _check(npt, ref4k, ref2m, g)
    assert npt.mapped_gfns() == len(ref4k) + 512 * len(ref2m)


def _check(npt, ref4k, ref2m, g):
    from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K

    e = npt.lookup(g)
    if g in ref4k:
        assert e is not None and (e.pfn, e.level, e.writable) == (*ref4k[g][:1], PG_LEVEL_4K, ref4k[g][1])
    elif g >> 9 in ref2m:
        pfn, w = ref2m[g >> 9]
        assert e is not None and (e.pfn, e.level, e.writable) == (pfn + (g & 511), PG_LEVEL_2M, w)
    else:
        assert e is None


def test_npt_unmap_visits_only_the_requested_chunks():
    """Zapping one GFN visits one chunk whether 1 or 2,000 chunks are mapped."""
    from snpsim.hw.npt import Npt

    small, big = Npt(), Npt()
    small.map(5, 5)
    for h in range(2000):
        big.map(h * 512 + 5, h * 512 + 5)
    for npt in (small, big):
        npt.work = 0
        assert npt.unmap(5, 6) == 1
    assert small.work == big.work == 1
    # a huge request over few mapped chunks visits only those
    big.work = 0
    assert big.unmap(0, 1 << 40) == 1999
    assert big.work == 1999


# ---- the host page allocator --------------------------------------------------------------


class _NullHost:
    def zero_page(self, spa):
        pass


alloc_ops = st.lists(
    st.one_of(st.tuples(st.just("alloc"), st.sampled_from([0, 0, 0, 9])),
              st.tuples(st.just("free"), st.integers(0, 10_000)),
              st.tuples(st.just("leak"), st.integers(0, 10_000))),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(alloc_ops)
def test_allocator_never_hands_out_a_page_twice_and_reuses_what_was_freed(ops):
    from snpsim.kvm.host_mm import PFN_BASE, PageAllocator

    a = PageAllocator(_NullHost())
    held: list[tuple[int, int]] = []  # (pfn, order)
    in_use: set[int] = set()
    leaked: set[int] = set()
    last_freed = None
    for op, x in ops:
        if op == "alloc":
            pfn = a.alloc_pages(x) if x else a.alloc_page()
            pages = set(range(pfn, pfn + (1 << x)))
            assert not pages & in_use and not pages & leaked
            assert pfn % (1 << x) == 0 and pfn >= PFN_BASE
            if x == 0 and last_freed is not None:
                assert pfn == last_freed  # LIFO: the page just freed comes back first
            last_freed = None
            in_use |= pages
            held.append((pfn, x))
        elif held:
            pfn, order = held.pop(x % len(held))
            if op == "leak":
                for p in range(pfn, pfn + (1 << order)):
                    a.leak_page(p)
                    leaked.add(p)
            a.free_pages(pfn, order)
            in_use -= set(range(pfn, pfn + (1 << order)))
            last_freed = pfn if order == 0 and op == "free" else None
        assert a.nr_allocated == len(in_use)
        assert a.leaked == frozenset(leaked)
    # everything freed and not leaked is found again: no growth past the high water
    for pfn, order in held:
        a.free_pages(pfn, order)
    hw = a.high_water
    free_blocks = [p for p in range(PFN_BASE, hw, 512)
                   if not any(a.is_leaked(q) for q in range(p, min(p + 512, hw)))
                   and p + 512 <= hw]
    for _ in free_blocks:
        a.alloc_pages(9)
    assert a.high_water == hw


def test_gmem_folio_map_widens_for_large_pfns():
    from snpsim.kvm.guest_memfd import GmemFile

    f = GmemFile(None, 4 << 20, 0)  # type: ignore[arg-type]
    f.set_small(3, 7)
    f.set_small(4, 2**40)
    f.mark_uptodate(4)
    assert f.folio_at(3) == (7, 0, False) and f.folio_at(4) == (2**40, 0, True)
    f.huge[1] = (2**31) << 1 | 1
    assert f.folio_at(512 + 5) == (2**31 + 5, 9, True)
    f.split_huge(1)
    assert f.folio_at(512 + 511) == (2**31 + 511, 0, True)
    f.drop(3)
    f.drop(4)
    assert f.folio_at(3) is None and 0 not in f.small
    assert f.populated() == 512
