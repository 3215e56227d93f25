# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Calibration benchmark of the modelled clock (issue 16 item 5, docs/costs.md): the
modelled time of accepting guest memory at sizes up to 64 GiB, beside the published
anchors, and the simulator's CPU time for it.

Each case is ``snpsim run accept`` with one vCPU (``SIZE PSZ``: PSZ ``4K`` with order-0
guest_memfd folios, ``2M`` with 2 MiB folios).  Printed per case: the modelled time of
the whole run, of the acceptance alone (the run minus a 64 MiB run of the same page size,
which has the same boot and launch), the guest's own instructions and exits, and the
largest kinds.  With ``--check`` the largest size of each page size is compared with the
``[anchors]`` of the cost table as the calibration tests do (4K whole path in the
OpenHCL range; 2M guest side under its second).

Run as a script::

    .venv/bin/python benchmarks/bench_costs.py                 # 4K up to 1 GiB, 2M up to 4 GiB
    .venv/bin/python benchmarks/bench_costs.py --cases 2M:64G  # about 70 s of CPU

Results are in docs/costs.md ("Calibration").
"""

from __future__ import annotations

import argparse
import resource
import time

from snpsim.costs import default_costs
from snpsim.kvm.profiles import DEFAULT_PROFILE
from snpsim.scenarios.catalog import run_scenario
from snpsim.system import format_size, parse_size

GUEST_SIDE = ("pvalidate_2m", "pvalidate_4k", "psc_entry", "vmgexit_handling",
              "vmrun_vmexit", "kvm_run_ioctl", "vc_exception", "npf_handling")
DEFAULT_CASES = "4K:256M,4K:1G,2M:1G,2M:4G"
BASE = 64 << 20


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def modelled(psz: str, memory: int) -> tuple[dict, float, float]:
    """(modelled_time report, wall s, CPU s) of ``accept`` at ``memory`` bytes."""
    kvm = DEFAULT_PROFILE if psz == "4K" else DEFAULT_PROFILE.derive(
        "gmem-2M", knobs={"gmem_max_order": 9})
    t0, c0 = time.perf_counter(), _cpu()
    run = run_scenario("accept", memory=memory, vcpus=1, page_size=psz, kvm=kvm)
    assert run.outcome.completed, run.outcome.describe()
    return run.outcome.modelled_time, time.perf_counter() - t0, _cpu() - c0


def main() -> None:
    """Run the cases given with ``--cases PSZ:SIZE,...`` and print one block each."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=DEFAULT_CASES)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    anchors = default_costs().anchors
    base: dict[str, dict] = {}
    largest: dict[str, tuple[int, float, float]] = {}
    for case in args.cases.split(","):
        psz, size_text = case.split(":")
        memory = parse_size(size_text)
        if psz not in base:
            base[psz] = modelled(psz, BASE)[0]
        m, wall, cpu = modelled(psz, memory)
        b = base[psz]
        accept = m["elapsed_s"] - b["elapsed_s"]
        kinds = {k: v["s"] - b["by_kind"].get(k, {"s": 0.0})["s"] for k, v in m["by_kind"].items()}
        guest = sum(kinds.get(k, 0.0) for k in GUEST_SIDE)
        scale = (64 << 30) / (memory - BASE)
        print(f"accept {format_size(memory)} {psz}: modelled {m['elapsed_s']:.3f} s "
              f"({m['low_s']:.3f} .. {m['high_s']:.3f}); acceptance {accept:.3f} s, guest side "
              f"{guest:.3f} s; at 64 GiB {accept * scale:.2f} s / {guest * scale:.3f} s; "
              f"simulator wall {wall:.1f} s, CPU {cpu:.1f} s")
        for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:6]:
            print(f"    {k:28s} {v:9.4f} s")
        if memory > largest.get(psz, (0, 0.0, 0.0))[0]:
            largest[psz] = (memory, accept * scale, guest * scale)
    if args.check:
        for psz, name, which in (("4K", "openhcl_accept_64g_4k", 1), ("2M", "openhcl_accept_64g_2m", 2)):
            if psz in largest:
                a = anchors[name]
                v = largest[psz][which]
                ok = a["low"] <= v <= a["high"]
                print(f"{name}: modelled {v:.2f} s vs {a['low']}..{a['high']} s: "
                      f"{'in range' if ok else 'OUT OF RANGE'}")


if __name__ == "__main__":
    main()
