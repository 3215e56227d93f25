# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Cost of one private -> shared conversion (``set_memory_decrypted``) as a function of its
size, its alignment and the kernel's PSC batching.

Run as a script, which prints a table (add ``--quick`` for the small sizes only)::

    .venv/bin/python benchmarks/bench_conversion.py

or with pytest-benchmark (the file is not collected by the test suite)::

    .venv/bin/pytest benchmarks/bench_conversion.py -o python_files='bench_*.py' --benchmark-enable

Each row boots a fresh :class:`snpsim.system.SnpSystem` and, in guest context, takes
``pages`` contiguous pre-validated pages from the kernel's pool and converts them with
``set_memory_decrypted``.  Only the call is timed (wall clock, best of ``--repeat`` runs);
boot is not.  The counts are what the call added to ``platform.counters`` (VMGEXIT,
RMPUPDATE, PVALIDATE) plus the PSC entries the guest put in its descriptors (counted by
wrapping the guest's ``vmgexit_psc``, model-only).

Alignment: ``2M`` ranges start on a 2 MiB boundary; ``4K`` ranges start one page past
one.  The 6.17 profile (64 entries per descriptor, 2M entries since v6.5) still uses a
2M entry for every whole aligned 2 MiB inside a ``4K`` range; 6.4 (253 4K entries per
descriptor) never does.  Timings and counts go into ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from snpsim.guest import sev_core
from snpsim.guest.kernel import GuestKernel, __va
from snpsim.guest.set_memory import set_memory_decrypted
from snpsim.hw.ports import GuestPort
from snpsim.spec.psc import PscHdr
from snpsim.spec.units import PAGE_SIZE, PMD_SIZE
from snpsim.system import SnpSystem

SIZES = (1, 64, 512, 4096)
ALIGNS = ("4K", "2M")
KERNELS = ("6.17", "6.4")
COUNTERS = ("VMGEXIT", "RMPUPDATE", "PVALIDATE")


@dataclass
class Row:
    """One measured conversion."""

    kernel: str
    align: str
    pages: int
    seconds: float
    ret: int
    psc_entries: int
    counts: dict[str, int]


def _alloc_range(kernel: GuestKernel, pages: int, align: str) -> int | None:
    """GPA of ``pages`` contiguous pool pages starting on a 2 MiB boundary (``2M``) or one
    page past one (``4K``); pages skipped to get there stay allocated."""
    alloc = kernel.page_alloc
    assert alloc is not None
    want = 0 if align == "2M" else PAGE_SIZE
    got: list[int] = []
    while len(got) < pages:
        p = alloc.alloc_page()
        if p is None:
            return None
        if not got and p % PMD_SIZE != want:
            continue
        if got and p != got[-1] + PAGE_SIZE:
            got = []
            continue
        got.append(p)
    return got[0]


def measure(pages: int, align: str, kernel: str) -> Row:
    """Boot a guest and time ``set_memory_decrypted`` of ``pages`` pages (see module doc)."""
    system = SnpSystem(memory=128 << 20, kernel=kernel, pool_pages=pages + 2 * 512 + 64)
    counters = system.platform.counters
    psc_entries = 0
    result: dict[str, object] = {}
    original = sev_core.vmgexit_psc

    def counting_vmgexit_psc(k: GuestKernel, ghcb: int, desc: int) -> int:
        nonlocal psc_entries
        hdr = PscHdr.decode(sev_core.this_cpu(k).read(desc, 8))
        psc_entries += hdr.end_entry + 1
        return original(k, ghcb, desc)

    def workload(k: GuestKernel, cpu: GuestPort) -> None:
        gpa = _alloc_range(k, pages, align)
        assert gpa is not None, "pool too small"
        va = __va(k, gpa)
        before = dict(counters)
        t0 = time.perf_counter()
        ret = set_memory_decrypted(k, va, pages)
        result["seconds"] = time.perf_counter() - t0
        result["ret"] = ret
        result["counts"] = {n: counters.get(n, 0) - before.get(n, 0) for n in COUNTERS}

    sev_core.vmgexit_psc = counting_vmgexit_psc  # type: ignore[assignment]
    try:
        system.run(workload)
    finally:
        sev_core.vmgexit_psc = original  # type: ignore[assignment]
    return Row(kernel, align, pages, float(result["seconds"]), int(result["ret"]),  # type: ignore[arg-type]
               psc_entries, result["counts"])  # type: ignore[arg-type]


def table(sizes=SIZES, repeat: int = 3) -> list[Row]:
    """Every (kernel, alignment, size) row, the best wall time of ``repeat`` runs."""
    rows = []
    for kernel in KERNELS:
        for align in ALIGNS:
            for pages in sizes:
                runs = [measure(pages, align, kernel) for _ in range(repeat)]
                rows.append(min(runs, key=lambda r: r.seconds))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes 1 and 64 only")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row (best is shown)")
    args = ap.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    print(f"{'kernel':6} {'align':5} {'pages':>6} {'ms':>9} {'us/page':>8} {'VMGEXIT':>8} "
          f"{'PSC ent':>8} {'RMPUPD':>7} {'PVALID':>7} {'ret':>4}")
    for r in table(sizes, args.repeat):
        c = r.counts
        print(f"{r.kernel:6} {r.align:5} {r.pages:6} {r.seconds * 1e3:9.1f} "
              f"{r.seconds / r.pages * 1e6:8.0f} {c['VMGEXIT']:8} {r.psc_entries:8} "
              f"{c['RMPUPDATE']:7} {c['PVALIDATE']:7} {r.ret:4}")


# -- pytest-benchmark ----------------------------------------------------------------------


def _bench(benchmark, pages: int, align: str, kernel: str) -> None:
    row = benchmark.pedantic(measure, args=(pages, align, kernel), rounds=3, iterations=1)
    assert row.ret == 0


def test_convert_64_4k_617(benchmark):
    _bench(benchmark, 64, "4K", "6.17")


def test_convert_512_2m_617(benchmark):
    _bench(benchmark, 512, "2M", "6.17")


def test_convert_512_4k_64(benchmark):
    _bench(benchmark, 512, "4K", "6.4")


if __name__ == "__main__":
    main()
