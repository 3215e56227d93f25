# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Throughput of the full path (guest -> GHCB -> KVM -> VMM -> RMP, tracing off): pages per
second converted private -> shared -> private, and pages per second accepted, with the peak
memory of each run and, for scale, a bare numpy write of 16 bytes per page.

Run as a script, which prints a table (issue 7, item 6; numbers in ``docs/performance.md``)::

    .venv/bin/python benchmarks/bench_full_path.py            # = --quick: scaled-down sizes
    .venv/bin/python benchmarks/bench_full_path.py --full     # 1 GiB, 16 GiB, 64 GiB, budgeted

or with pytest-benchmark (the file is not collected by the test suite)::

    .venv/bin/pytest benchmarks/bench_full_path.py -o python_files='bench_*.py' --benchmark-enable

Cases (each in its own Python process, so that its peak RSS is its own):

* ``convert SIZE 4K|2M``: a fresh :class:`snpsim.system.SnpSystem` (1 vCPU, kernel 6.17,
  KVM v7.0.12) whose RAM is 4 GiB + SIZE + 4 MiB; in guest context, through
  ``SnpSystem.run(workload)``, SIZE bytes from GPA 4 GiB (2 MiB-aligned) are converted
  chunk by chunk (``--chunk``, 64 MiB): ``set_memory_decrypted`` then
  ``set_memory_encrypted`` of the chunk, both timed.  Before that, and not timed, the
  chunk is accepted (``accept_memory``), since only validated private memory can be made
  shared.  ``4K``: the kernel profile without 2M PSC entries (``psc_2m_entries`` off, as
  ``snpsim run accept --page-size 4K``) and order-0 guest_memfd folios (4 KiB RMP
  entries).  ``2M``: 2M PSC entries (6.17's default) and 2 MiB guest_memfd folios
  (``gmem_max_order`` 9, what ``snpsim run --gmem-2m`` sets).  pages/s = pages taken
  private -> shared -> private per second of the two timed calls (each page converted
  twice).
* ``accept SIZE 4K|2M``: a fresh VM of SIZE RAM, all of it unaccepted but the launch
  image; in guest context ``accept_memory`` over each RAM range of the guest's e820 map in
  ``--chunk`` steps, timed
  (what ``accept_memory=eager`` does in one call at boot).  ``4K``/``2M`` as above.
  pages/s = pages whose 2 MiB unit went from unaccepted to accepted per second.

Time budget: each case stops after the chunk during which its wall time (boot and untimed
acceptance included) passed ``--budget`` seconds; pages/s is then measured over the part
done and the row is marked ``PARTIAL`` with the fraction done.  ``--quick`` (the default)
scales the sizes down so that every case completes: convert 4 MiB and 64 MiB, accept
256 MiB.  ``--full``: convert 1 GiB and 16 GiB, accept 64 GiB.

Peak memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (Linux: KiB; peak resident set
size) of the case's process at its end, and what it grew by from just before the VM was
built (after the imports).  tracemalloc is not used: it slows every allocation down.

numpy: an ``(n, 16)`` ``uint8`` array (allocated and touched first, not timed) receives one
16-byte record per page with one vectorised assignment, ``a[:] = rec``, over the n pages
the model did; best of 5.  ``model/numpy`` is the model's time over the numpy time for
the same n pages.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from snpsim.guest.kernel import PROFILES as KERNEL_PROFILES
from snpsim.guest.kernel import GuestKernel, __va
from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
from snpsim.guest.unaccepted_memory import accept_memory
from snpsim.hw.ports import GuestPort
from snpsim.kvm.profiles import KVM_PROFILES
from snpsim.spec.units import PAGE_SIZE, PMD_SIZE
from snpsim.system import SnpSystem, format_size, parse_size
from snpsim.trace.record import is_tracing, set_tracer

MIB, GIB = 1 << 20, 1 << 30
CONVERT_BASE = 4 * GIB  # above the MMIO window below 4 GiB, 2 MiB-aligned
KERNEL, KVM = "6.17", "v7.0.12"
COUNTERS = ("VMGEXIT", "RMPUPDATE", "PVALIDATE", "PSMASH")
PSIZES = ("4K", "2M")

#: (kind, size) per mode; each runs at 4K and 2M.
QUICK = (("convert", 4 * MIB), ("convert", 64 * MIB), ("accept", 256 * MIB))
FULL = (("convert", 1 * GIB), ("convert", 16 * GIB), ("accept", 64 * GIB))


@dataclass
class CaseResult:
    """What one case measured (see the module doc); times in seconds, RSS in KiB."""

    kind: str
    size: int
    psize: str
    budget: float
    chunk: int
    target_pages: int = 0
    pages_done: int = 0
    timed: float = 0.0
    t_decrypt: float = 0.0
    t_encrypt: float = 0.0
    t_untimed_accept: float = 0.0
    wall: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    outcome: str = ""
    error: str = ""
    rss_base_kib: int = 0
    rss_peak_kib: int = 0
    numpy_s: float = 0.0
    chunk_rates: list[float] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return self.pages_done < self.target_pages

    @property
    def pages_per_s(self) -> float:
        return self.pages_done / self.timed if self.timed else 0.0


def _profiles(psize: str) -> tuple[Any, Any]:
    """(kernel profile, KVM profile) of a page size (see the module doc)."""
    kernel = KERNEL_PROFILES[KERNEL]
    kvm = KVM_PROFILES[KVM]
    if psize == "4K":
        kernel = kernel.derive(f"{kernel.name}+4K-psc", knobs={"psc_2m_entries": False})
    else:
        kvm = kvm.derive(f"{KVM}+gmem-2M", knobs={"gmem_max_order": 9})
    return kernel, kvm


def _unaccepted_units(k: GuestKernel) -> int:
    u = k.unaccepted
    assert u is not None
    return int(np.unpackbits(np.frombuffer(bytes(u.bitmap), dtype=np.uint8)).sum())


def run_case(kind: str, size: int, psize: str, budget: float, chunk: int) -> CaseResult:
    """Run one case in this process (see the module doc)."""
    set_tracer(None)
    assert not is_tracing()
    res = CaseResult(kind, size, psize, budget, chunk)
    res.rss_base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kernel_profile, kvm_profile = _profiles(psize)
    memory = CONVERT_BASE + size + 2 * PMD_SIZE if kind == "convert" else size
    t_start = time.perf_counter()
    system = SnpSystem(memory=memory, vcpus=1, kernel=KERNEL, kvm=kvm_profile,
                       profile=kernel_profile)
    counters = system.platform.counters
    totals = dict.fromkeys(COUNTERS, 0)

    def add_counts(before: dict[str, int]) -> None:
        for n in COUNTERS:
            totals[n] += counters.get(n, 0) - before.get(n, 0)

    def convert(k: GuestKernel, cpu: GuestPort) -> None:
        res.target_pages = size // PAGE_SIZE
        step = chunk // PAGE_SIZE
        while res.pages_done < res.target_pages:
            n = min(step, res.target_pages - res.pages_done)
            gpa = CONVERT_BASE + res.pages_done * PAGE_SIZE
            t0 = time.perf_counter()
            accept_memory(k, gpa, n * PAGE_SIZE)
            t1 = time.perf_counter()
            va = __va(k, gpa)
            before = dict(counters)
            t2 = time.perf_counter()
            r1 = set_memory_decrypted(k, va, n)
            t3 = time.perf_counter()
            r2 = set_memory_encrypted(k, va, n) if r1 == 0 else None
            t4 = time.perf_counter()
            add_counts(before)
            if r1 != 0 or r2 != 0:
                res.error = f"set_memory_decrypted={r1} set_memory_encrypted={r2} at {gpa:#x}"
                return
            res.t_untimed_accept += t1 - t0
            res.t_decrypt += t3 - t2
            res.t_encrypt += t4 - t3
            res.pages_done += n
            res.chunk_rates.append(n / (t4 - t2))
            if t4 - t_start >= budget:
                return

    def accept(k: GuestKernel, cpu: GuestPort) -> None:
        at_start = _unaccepted_units(k)
        res.target_pages = at_start * (PMD_SIZE // PAGE_SIZE)
        # RAM is where the e820 map says (q35 splits it around the PCI hole).
        for start, size in k.boot.e820_ram:
            gpa, end = start, start + size
            while gpa < end:
                n = min(chunk, end - gpa)
                before = dict(counters)
                t0 = time.perf_counter()
                accept_memory(k, gpa, n)
                t1 = time.perf_counter()
                add_counts(before)
                res.timed += t1 - t0
                res.chunk_rates.append(n / PAGE_SIZE / (t1 - t0))
                gpa += n
                if t1 - t_start >= budget:
                    break
            if time.perf_counter() - t_start >= budget:
                break
        res.pages_done = (at_start - _unaccepted_units(k)) * (PMD_SIZE // PAGE_SIZE)

    outcome = system.run(convert if kind == "convert" else accept)
    res.wall = time.perf_counter() - t_start
    if kind == "convert":
        res.timed = res.t_decrypt + res.t_encrypt
    res.counts = totals
    res.outcome = outcome.describe()
    if not outcome.completed and not res.error:
        res.error = res.outcome
    res.rss_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return res


def numpy_write(pages: int, repeat: int = 5) -> float:
    """Best time of ``repeat`` vectorised writes of one 16-byte record per page."""
    if pages == 0:
        return 0.0
    a = np.zeros((pages, 16), dtype=np.uint8)
    a.fill(1)  # touch: page faults are not part of the write
    rec = np.arange(16, dtype=np.uint8)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a[:] = rec
        best = min(best, time.perf_counter() - t0)
    return best


def run_in_subprocess(kind: str, size: int, psize: str, budget: float, chunk: int) -> CaseResult:
    """:func:`run_case` in a fresh interpreter (its own peak RSS); its JSON is the last
    line of its output."""
    cmd = [sys.executable, __file__, "--one", kind, str(size), psize,
           "--budget", str(budget), "--chunk", str(chunk)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0 or not p.stdout.strip():
        r = CaseResult(kind, size, psize, budget, chunk)
        r.error = f"exit {p.returncode}: {p.stderr.strip().splitlines()[-1:]}"
        return r
    data = json.loads(p.stdout.strip().splitlines()[-1])
    return CaseResult(**data)


def machine() -> list[str]:
    """Where and when: date, Python, numpy, CPUs, CPU model, commit."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f
                          if ln.startswith("model name")), "")
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        commit = ""
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"date       {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"python     {platform.python_version()} ({platform.python_implementation()}), "
        f"numpy {np.__version__}",
        f"machine    {platform.machine()}, {ncpu} CPUs, {model or 'unknown CPU'}; "
        f"load {load}",
        f"snpsim     commit {commit or '?'}; kernel {KERNEL}, KVM {KVM}, 1 vCPU, tracing off",
    ]


HEADER = (f"{'case':8} {'size':>6} {'psz':3} {'status':13} {'pages':>9} {'timed s':>8} "
          f"{'pages/s':>8} {'dec us/p':>8} {'enc us/p':>8} {'VMGEXIT':>7} {'RMPUPD':>8} "
          f"{'PVALID':>8} {'PSMASH':>6} {'numpy s':>8} {'np pages/s':>10} {'model/np':>8} "
          f"{'RSS MiB':>7} {'+MiB':>6}")


def format_row(r: CaseResult) -> str:
    size = format_size(r.size)
    if r.error and not r.pages_done:
        return f"{r.kind:8} {size:>6} {r.psize:3} ERROR: {r.error}"
    if r.error:
        status = "ERROR"
    elif r.partial:
        status = f"PARTIAL {100 * r.pages_done / r.target_pages:4.1f}%"
    else:
        status = "complete"
    c = r.counts
    dec = f"{r.t_decrypt / r.pages_done * 1e6:8.1f}" if r.kind == "convert" else f"{'-':>8}"
    enc = f"{r.t_encrypt / r.pages_done * 1e6:8.1f}" if r.kind == "convert" else f"{'-':>8}"
    np_rate = r.pages_done / r.numpy_s if r.numpy_s else 0.0
    ratio = f"{r.timed / r.numpy_s:8.2g}" if r.numpy_s else f"{'-':>8}"
    return (f"{r.kind:8} {size:>6} {r.psize:3} {status:13} {r.pages_done:9} {r.timed:8.1f} "
            f"{r.pages_per_s:8.0f} {dec} {enc} {c.get('VMGEXIT', 0):7} "
            f"{c.get('RMPUPDATE', 0):8} {c.get('PVALIDATE', 0):8} {c.get('PSMASH', 0):6} "
            f"{r.numpy_s:8.2e} {np_rate:10.3g} {ratio} {r.rss_peak_kib / 1024:7.0f} "
            f"{(r.rss_peak_kib - r.rss_base_kib) / 1024:6.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="scaled-down sizes: convert 4M and 64M, accept 256M (the default)")
    mode.add_argument("--full", action="store_true",
                      help="convert 1G and 16G, accept 64G, each case within --budget")
    ap.add_argument("--budget", type=float, default=120.0,
                    help="seconds of wall time per case before it stops (default 120)")
    ap.add_argument("--chunk", type=parse_size, default=64 * MIB,
                    help="bytes per set_memory/accept_memory call (default 64M)")
    ap.add_argument("--only", default="",
                    help="comma-separated case filter, e.g. 'convert:1G:2M,accept'")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--one", nargs=3, metavar=("KIND", "SIZE", "PSIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.chunk % PMD_SIZE or args.chunk <= 0:
        ap.error("--chunk must be a positive multiple of 2M")

    if args.one:
        kind, size, psize = args.one[0], int(args.one[1]), args.one[2]
        r = run_case(kind, size, psize, args.budget, min(args.chunk, size))
        print(json.dumps(asdict(r)))
        return

    cases = [(kind, size, psize) for kind, size in (FULL if args.full else QUICK)
             for psize in PSIZES]
    if args.only:
        want = [w.split(":") for w in args.only.split(",")]
        cases = [c for c in cases
                 if any(w[0] == c[0] and (len(w) < 2 or parse_size(w[1]) == c[1])
                        and (len(w) < 3 or w[2] == c[2]) for w in want)]
    for line in machine():
        print(line)
    print(f"mode       {'full' if args.full else 'quick'}; budget {args.budget:g} s per case; "
          f"chunk {format_size(args.chunk)}; peak memory = ru_maxrss of the case's process")
    print()
    print(HEADER, flush=True)
    results = []
    for kind, size, psize in cases:
        r = run_in_subprocess(kind, size, psize, args.budget, min(args.chunk, size))
        r.numpy_s = numpy_write(r.pages_done)
        results.append(r)
        print(format_row(r), flush=True)
    print()
    for r in results:
        if len(r.chunk_rates) > 1:
            q = r.chunk_rates
            print(f"{r.kind} {format_size(r.size)} {r.psize}: pages/s by chunk: first {q[0]:.0f}, "
                  f"min {min(q):.0f}, max {max(q):.0f}, last {q[-1]:.0f} ({len(q)} chunks)")
    print("pages/s: convert = pages taken private -> shared -> private per second of the two "
          "timed calls;\n         accept = pages accepted per second.  PARTIAL: the case hit "
          "its budget; pages/s is over the part done.\nmodel/np: model time / numpy time "
          "for the same pages (one 16-byte write per page).\nRSS MiB: peak ru_maxrss of the "
          "case's process; +MiB: growth from just before the VM was built.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "results": [asdict(r) for r in results]}, f,
                      indent=1)
    if any(r.error for r in results):
        sys.exit(1)


# -- pytest-benchmark ----------------------------------------------------------------------


def test_convert_4mib_2m(benchmark):
    r = benchmark.pedantic(run_case, args=("convert", 4 * MIB, "2M", 60.0, 4 * MIB),
                           rounds=1, iterations=1)
    assert not r.error and not r.partial and r.counts["VMGEXIT"] >= 2


def test_accept_64mib_4k(benchmark):
    r = benchmark.pedantic(run_case, args=("accept", 64 * MIB, "4K", 60.0, 64 * MIB),
                           rounds=1, iterations=1)
    assert not r.error and not r.partial


if __name__ == "__main__":
    main()
