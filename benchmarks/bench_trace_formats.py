# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Trace size and write time by format (issue 15): the same run traced to Perfetto's
``.pftrace`` (streamed while the run goes, in zlib-compressed batches, and with
``SNPSIM_PFTRACE_COMPRESS=0`` as plain packets) and to Chrome ``.json`` (built after the
run), side by side.

Each case is ``snpsim run SCENARIO --trace FILE`` in its own process (``--runs`` times,
default 1: a 4 GiB boot trace takes minutes); the table gives the file size, the run's
wall time with tracing (from the process start to the file in place), the same run
without a trace, and the ratio of the two formats' sizes.  Goal (issue 15): the
``.pftrace`` of the 4 GiB boot at most a fifth of the JSON, written in no more than the
run's own time.

    .venv/bin/python benchmarks/bench_trace_formats.py                  # seed, 64 MiB
    .venv/bin/python benchmarks/bench_trace_formats.py --scenario boot --memory 4G
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run(scenario: str, memory: str, trace: str | None, compress: bool = True) -> tuple[float, int]:
    """Wall seconds of one ``snpsim run`` in a fresh process, and the trace's size."""
    cmd = [sys.executable, "-m", "snpsim", "run", scenario, "--memory", memory, "--json"]
    if trace:
        cmd += ["--trace", trace]
    env = dict(os.environ, SNPSIM_PFTRACE_COMPRESS="1" if compress else "0")
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.strip()[-300:]}")
    return wall, os.path.getsize(trace) if trace else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="seed")
    ap.add_argument("--memory", default="64M")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        for fmt in ("none", "pftrace", "pftrace-plain", "json"):
            walls, size = [], 0
            for _ in range(args.runs):
                ext = fmt.split("-")[0]
                path = None if fmt == "none" else os.path.join(d, f"t.{ext}")
                w, size = run(args.scenario, args.memory, path, compress=fmt != "pftrace-plain")
                walls.append(w)
                if path:
                    os.unlink(path)
            rows[fmt] = (min(walls), statistics.median(walls), size)
    print(f"snpsim run {args.scenario} --memory {args.memory}; {args.runs} run(s) each, "
          "wall seconds min / median")
    print(f"{'trace':14} {'size MB':>10} {'wall s':>16}")
    for fmt, (lo, med, size) in rows.items():
        print(f"{fmt:14} {size / 1e6:10.1f} {lo:7.1f} / {med:6.1f}")
    pf, js = rows["pftrace"][2], rows["json"][2]
    if js:
        print(f"pftrace / json size: {pf / js:.3f} (goal <= 0.2); "
              f"plain pftrace / json: {rows['pftrace-plain'][2] / js:.3f}")
    print(f"pftrace run / untraced run: {rows['pftrace'][0] / rows['none'][0]:.2f}x; "
          f"json run / untraced run: {rows['json'][0] / rows['none'][0]:.2f}x")


if __name__ == "__main__":
    main()
