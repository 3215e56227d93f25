# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Campaign throughput of ``snpsim explore``: runs per second on 1 and 2 local workers
(and on a local Ray instance with ``--ray``), on the seed target.

Run as a script, which prints a table::

    .venv/bin/python benchmarks/bench_explore.py [--budget 40] [--host malicious] [--ray]

or with pytest-benchmark (the file is not collected by the test suite)::

    .venv/bin/pytest benchmarks/bench_explore.py -o python_files='bench_*.py' --benchmark-enable

Each row runs one whole campaign (:func:`snpsim.explore.campaign.campaign`) of
``--budget`` runs with seed 0 and times it (wall clock, process start-up of the workers
included); the records are checked to be the same on every row.  Two workers cannot
be faster than twice one; on a machine whose cores are busy they are slower.
"""

from __future__ import annotations

import argparse
import time

from snpsim.explore.campaign import campaign


def measure(budget: int, host: str, workers: int, ray: bool = False) -> tuple[float, list]:
    """Seconds for a campaign of ``budget`` runs, and its records."""
    t = time.perf_counter()
    res = campaign("seed", budget=budget, seed=0, bounds=host, workers=workers,
                   ray_address="local" if ray else None)
    return time.perf_counter() - t, res.records


def test_explore_one_worker(benchmark):
    benchmark.pedantic(measure, args=(8, "honest", 1), rounds=1, iterations=1)


def test_explore_two_workers(benchmark):
    benchmark.pedantic(measure, args=(8, "honest", 2), rounds=1, iterations=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--host", choices=("honest", "malicious"), default="honest")
    ap.add_argument("--ray", action="store_true", help="also a local Ray instance, 2 CPUs")
    args = ap.parse_args()
    rows = [("1 worker", 1, False), ("2 workers", 2, False)]
    if args.ray:
        rows.append(("ray local, 2 CPUs", 2, True))
    first = None
    print(f"{'':20} {'runs':>5} {'seconds':>8} {'runs/s':>7}")
    for name, workers, ray in rows:
        secs, records = measure(args.budget, args.host, workers, ray)
        if first is None:
            first = records
        assert records == first, f"{name}: records differ from 1 worker's"
        print(f"{name:20} {args.budget:5} {secs:8.2f} {args.budget / secs:7.1f}")


if __name__ == "__main__":
    main()
