# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The full mutation run (docs/mutants.md): every named check removed in turn, the
attacks it stops run again and, unless ``--no-tests``, the tests that name it run in a
subprocess under the mutant.  Prints the wall time of each half and the gaps (checks with
no attack only they stop, checks no test kills).

Run as a script::

    .venv/bin/python benchmarks/bench_mutants.py --no-tests   # the attack half, seconds
    .venv/bin/python benchmarks/bench_mutants.py              # with the tests, about a minute
"""

from __future__ import annotations

import argparse
import time

from snpsim.scenarios.mutants import run_mutants


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-tests", action="store_true", help="skip the test runs")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = run_mutants(tests=False)
    t1 = time.perf_counter()
    runs = sum(len(r.attacks) for r in rows)
    print(f"attack half: {len(rows)} checks, {runs} mutant attack runs, {t1 - t0:.1f} s")
    if not args.no_tests:
        rows = run_mutants(tests=True)
        print(f"with the tests: {time.perf_counter() - t1:.1f} s")
        print("no test kills:", ", ".join(r.check for r in rows if not r.killed_by) or "none")
    print("no attack only it stops:", ", ".join(r.check for r in rows if not r.only_stopped_by))


if __name__ == "__main__":
    main()
