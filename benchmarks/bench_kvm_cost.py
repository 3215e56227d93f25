# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""What KVM's and the VMM's host bookkeeping costs per page (issue 10, item 3).

Run as a script (each case in its own process; ``--repeat`` runs of each, interleaved,
min shown)::

    .venv/bin/python benchmarks/bench_kvm_cost.py [--repeat 3] [--accepted-mib 512]

A fresh 1 GiB :class:`snpsim.system.SnpSystem` (kernel 6.17 without 2M PSC entries,
KVM v7.0.12 with order-0 folios: every page is its own 4 KiB RMP entry, NPT leaf and
folio), in guest context: ``accept_memory`` of 16 MiB at 768 MiB, then, for the
``accepted`` case only, ``accept_memory`` of ``--accepted-mib`` MiB from 128 MiB (all
untimed); then ``set_memory_decrypted`` + ``set_memory_encrypted`` of the 4,096 pages at
768 MiB, timed with ``time.process_time`` (CPU) and ``time.perf_counter`` (wall).

Reported per case: CPU and wall microseconds per page of the private -> shared -> private
cycle; and the bytes per touched page held by the host structures this benchmark is
about -- the NPT, the guest_memfd folio maps, the memory-attribute map, the VMM's page
map (HostMm) and the host page allocator -- measured by walking those objects
(``sys.getsizeof`` of every container and int, ``nbytes`` of numpy arrays, not
following references to the VM, the host port or the platform), divided by the pages
the run touched (accepted or converted).  The ratio row is CPU per page with
``--accepted-mib`` accepted over CPU per page without.

``--qemu 9.1`` runs without the QEMU 10.1 pre-fault.  ``--gc-freeze`` calls
``gc.freeze()`` just before the timed part, so the cyclic garbage collector does not
rescan the objects the untimed acceptance left (whatever module holds them): with it,
what remains of the ratio is not the collector's.  Tracing is off.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from typing import Any

import numpy as np

MIB = 1 << 20
CONVERT_GPA = 768 * MIB
PAGES = 4096
SKIP = {"kvm", "host", "allocator", "bindings", "mm", "platform", "profile", "_cache"}


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and what it owns (see the module doc)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return sys.getsizeof(obj) if obj.base is None else obj.nbytes
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        return size + sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return size + sum(deep_size(x, seen) for x in obj)
    if isinstance(obj, (int, float, bool, str, bytes, type(None))):
        return size
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        names += [n for n in getattr(cls, "__slots__", ()) if n not in names]
    for n in names:
        if n in SKIP:
            continue
        try:
            v = getattr(obj, n)
        except AttributeError:
            continue
        if callable(v) and not isinstance(v, (dict, list, set)):
            continue
        size += deep_size(v, seen)
    return size


def structures(system: Any) -> dict[str, int]:
    """Bytes of each host structure (see the module doc)."""
    vm = system.kvm.vm(system.machine.s.vmfd)
    files = {id(s.gmem_file): s.gmem_file for s in vm.memslots.values() if s.gmem_file}
    return {
        "npt": deep_size(vm.npt),
        "gmem": sum(deep_size(f) for f in files.values()),
        "attributes": deep_size(vm.mem_attr_array),
        "host_mm": sum(deep_size(v) for v in system.kvm.mm.vmas),
        "allocator": deep_size(system.kvm.allocator),
    }


def run_case(accepted_mib: int, qemu: str, gc_freeze: bool = False) -> dict[str, Any]:
    """One run in this process."""
    from snpsim.guest.kernel import PROFILES as KERNEL_PROFILES
    from snpsim.guest.kernel import __va
    from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
    from snpsim.guest.unaccepted_memory import accept_memory
    from snpsim.kvm.profiles import KVM_PROFILES
    from snpsim.system import SnpSystem

    kernel = KERNEL_PROFILES["6.17"].derive("6.17+4K-psc", knobs={"psc_2m_entries": False})
    system = SnpSystem(memory=1024 * MIB, kernel="6.17", kvm=KVM_PROFILES["v7.0.12"],
                       profile=kernel, qemu=qemu)
    res: dict[str, Any] = {"accepted_mib": accepted_mib, "qemu": qemu}

    def workload(k: Any, cpu: Any) -> None:
        accept_memory(k, CONVERT_GPA, PAGES * 4096)
        if accepted_mib:
            accept_memory(k, 128 * MIB, accepted_mib * MIB)
        va = __va(k, CONVERT_GPA)
        if gc_freeze:
            gc.collect()
            gc.freeze()
        c0, w0 = time.process_time(), time.perf_counter()
        r1 = set_memory_decrypted(k, va, PAGES)
        r2 = set_memory_encrypted(k, va, PAGES)
        c1, w1 = time.process_time(), time.perf_counter()
        res["ret"] = (r1, r2)
        res["cpu_us_per_page"] = (c1 - c0) / PAGES * 1e6
        res["wall_us_per_page"] = (w1 - w0) / PAGES * 1e6

    outcome = system.run(workload)
    res["outcome"] = outcome.describe()
    touched = PAGES + accepted_mib * MIB // 4096
    sizes = structures(system)
    res["bytes"] = sizes
    res["bytes_per_page"] = {n: b / touched for n, b in sizes.items()}
    res["bytes_per_page_total"] = sum(sizes.values()) / touched
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--accepted-mib", type=int, default=512)
    ap.add_argument("--qemu", default="10.1")
    ap.add_argument("--gc-freeze", action="store_true")
    ap.add_argument("--case", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.qemu, args.gc_freeze)))
        return
    runs: dict[int, list[dict[str, Any]]] = {0: [], args.accepted_mib: []}
    for _ in range(args.repeat):  # interleaved, so that both cases see the same load
        for acc in runs:
            cmd = [sys.executable, __file__, "--case", str(acc), "--qemu", args.qemu]
            out = subprocess.run(cmd + (["--gc-freeze"] if args.gc_freeze else []),
                                 capture_output=True, text=True, check=True)
            runs[acc].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = {}
    for acc, rs in runs.items():
        best = min(rs, key=lambda r: r["cpu_us_per_page"])
        rows[acc] = best
        bpp = best["bytes_per_page"]
        print(f"accepted {acc:4} MiB  cpu {best['cpu_us_per_page']:7.1f} us/page  wall "
              f"{best['wall_us_per_page']:7.1f} us/page  bytes/touched page "
              f"{best['bytes_per_page_total']:7.1f} ("
              + ", ".join(f"{n} {v:.1f}" for n, v in bpp.items()) + f")  {best['outcome']}  "
              "cpu runs " + " ".join(f"{r['cpu_us_per_page']:.0f}" for r in rs))
    r0, r1 = rows[0], rows[args.accepted_mib]
    print(f"ratio cpu/page with {args.accepted_mib} MiB accepted / without: "
          f"{r1['cpu_us_per_page'] / r0['cpu_us_per_page']:.2f}")


if __name__ == "__main__":
    main()
