# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Every size boots (issue 10 part 2): ``snpsim run boot --memory X --kernel K`` for
X = 4G+2M, 6G, 16G, 64G, 256G, 1T and every kernel profile, each in its own process:
how the run ended, wall time, CPU time (user + system) and peak RSS.

The test suite boots every kernel profile above 4 GiB with a small workload
(tests/scenarios/test_q35_boot.py); the whole ``boot`` scenario is here because it
accepts and converts the swiotlb pool -- 6 % of RAM, at most 1 GiB -- through the
per-page path, which takes one to several minutes per run.

Run as a script, which prints a table::

    .venv/bin/python benchmarks/bench_boot_sizes.py                  # every size and kernel
    .venv/bin/python benchmarks/bench_boot_sizes.py --sizes 6G,1T --kernels 6.17
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

SIZES = ("4098M", "6G", "16G", "64G", "256G", "1T")
SNPSIM = Path(sys.executable).with_name("snpsim")


def kernel_profiles() -> list[str]:
    """The ``--kernel`` profile names (snpsim.guest.kernel.PROFILES)."""
    from snpsim.guest.kernel import PROFILES

    return sorted(PROFILES)


def boot_once(size: str, kernel: str) -> dict[str, object]:
    """One ``snpsim run boot`` in a child process: its last output line (how the run
    ended), exit status, wall seconds, CPU seconds and peak RSS (MiB) from wait4."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(SNPSIM), "run", "boot", "--memory", size, "--kernel", kernel],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    ended = next((ln for ln in out.splitlines() if "run ended" in ln), out.strip()[-200:])
    return {"size": size, "kernel": kernel, "status": proc.returncode,
            "ended": " ".join(ended.replace("│", " ").split()),
            "wall_s": time.perf_counter() - t0, "cpu_s": ru.ru_utime + ru.ru_stime,
            "rss_mib": ru.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    """Run the matrix and print one row per (size, kernel); exit 1 if any run failed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--kernels", default=",".join(kernel_profiles()))
    args = ap.parse_args(argv)
    bad = 0
    print(f"{'size':>6} {'kernel':>6} {'wall s':>8} {'cpu s':>8} {'RSS MiB':>8}  ended")
    for size in args.sizes.split(","):
        for kernel in args.kernels.split(","):
            r = boot_once(size, kernel)
            bad += r["status"] != 0 or "completed" not in str(r["ended"])
            print(f"{size:>6} {kernel:>6} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} "
                  f"{r['rss_mib']:8.0f}  {r['ended']}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
