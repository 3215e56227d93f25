# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Memory and time cost of the RMP (issue 4: <= 32 bytes of RMP state per touched 4 KiB
page; an untouched 1 TiB space costs nothing measurable).

Run as a script, which prints a table::

    .venv/bin/python benchmarks/bench_rmp.py

or with pytest-benchmark (the file is not collected by the test suite)::

    .venv/bin/pytest benchmarks/bench_rmp.py -o python_files='bench_*.py' --benchmark-enable

"numpy bytes" is :meth:`Rmp.bytes_used` (the entry arrays); "traced bytes" is what
``tracemalloc`` sees allocated by the table, Python objects (dict slots, array headers)
included.  Entries are 16 bytes and stored in chunks of 512 (one per 2 MiB of SPA), so
dense touches cost ~16.5 bytes per page and the worst case -- one page per 2 MiB -- costs
a whole chunk (8 KiB) per page.
"""

from __future__ import annotations

import gc
import timeit
import tracemalloc

from snpsim.hw.cpu import Platform
from snpsim.hw.rmp import Rmp
from snpsim.spec.rmp import RmpState

TIB = 1 << 40
ASID = 1


def touch(rmp: Rmp, pfns) -> None:
    for pfn in pfns:
        assert rmp.rmpupdate(pfn << 12, RmpState(pfn << 12, 1, 0, 0, 0, ASID)) == 0


def measure(build) -> tuple[object, int]:
    """(result of ``build()``, bytes tracemalloc saw it keep)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    obj = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return obj, after - before


def scenario_rows() -> list[tuple[str, int, int, int]]:
    """(scenario, pages touched, numpy bytes, traced bytes)."""
    rows = []

    def dense(n):
        def build():
            r = Rmp(TIB)
            touch(r, range(0x100000, 0x100000 + n))
            return r
        return build

    for n in (512, 512 * 64, 512 * 512):  # 2 MiB, 128 MiB, 1 GiB touched densely
        r, traced = measure(dense(n))
        rows.append((f"dense {n * 4 // 1024} MiB", n, r.bytes_used(), traced))

    def sparse():
        r = Rmp(TIB)
        touch(r, range(0, 512 * 1024, 512))  # one page per 2 MiB over 2 GiB
        return r

    r, traced = measure(sparse)
    rows.append(("sparse: 1 page per 2 MiB", 1024, r.bytes_used(), traced))

    def untouched():
        r = Rmp(TIB)
        for pfn in range(0, TIB >> 12, 1 << 16):  # 4096 lookups spread over 1 TiB
            r.lookup(pfn)
            r.rmpread(pfn << 12)
        return r

    r, traced = measure(untouched)
    rows.append(("untouched 1 TiB (lookups only)", 0, r.bytes_used(), traced))

    for size, label in ((1 << 32, "4 GiB"), (TIB, "1 TiB")):  # fixed cost, independent of size
        p, traced = measure(lambda size=size: Platform(mem_size=size))
        rows.append((f"Platform(mem_size={label}), untouched", 0, p.rmp.bytes_used(), traced))
    return rows


def timing_rows() -> list[tuple[str, float]]:
    r = Rmp(TIB)
    touch(r, range(512))
    st = RmpState(0x1000, 1, 0, 0, 0, ASID)
    n = 20000
    return [
        ("RMPUPDATE 4K", timeit.timeit(lambda: r.rmpupdate(0x1000, st), number=n) / n * 1e9),
        ("lookup (assigned)", timeit.timeit(lambda: r.lookup(7), number=n) / n * 1e9),
        ("lookup (untouched)", timeit.timeit(lambda: r.lookup(1 << 27), number=n) / n * 1e9),
    ]


def main() -> None:
    print(f"{'scenario':40} {'pages':>8} {'numpy B':>12} {'traced B':>12} {'B/page':>8}")
    for name, pages, nbytes, traced in scenario_rows():
        per = f"{traced / pages:8.1f}" if pages else f"{'-':>8}"
        print(f"{name:40} {pages:8} {nbytes:12} {traced:12} {per}")
    print()
    print(f"{'operation':40} {'ns/op':>8}")
    for name, ns in timing_rows():
        print(f"{name:40} {ns:8.0f}")


# -- pytest-benchmark ----------------------------------------------------------------------


def test_rmpupdate_4k(benchmark):
    r = Rmp(TIB)
    st = RmpState(0x1000, 1, 0, 0, 0, ASID)
    benchmark(r.rmpupdate, 0x1000, st)


def test_lookup(benchmark):
    r = Rmp(TIB)
    touch(r, range(8))
    benchmark(r.lookup, 7)


def test_dense_cost_per_page_is_at_most_32_bytes(benchmark):
    rows = benchmark.pedantic(scenario_rows, rounds=1, iterations=1)
    dense = [row for row in rows if row[0].startswith("dense")]
    assert all(traced / pages <= 32 for _, pages, _, traced in dense[1:]), dense
    assert all(nbytes == 0 for name, _, nbytes, _ in rows if "untouched" in name)


if __name__ == "__main__":
    main()
