# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Cost follows the request (issue 10, item 3): the same 4 KiB conversion does the same
work in a VM with one 2 MiB unit accepted and in one with 40 MiB accepted.

Work is counted, not timed: the runs the attribute map visits
(``RangeMap.work``), the NPT chunks ``unmap`` visits (``Npt.work``), the guest_memfd
chunks and folios a hole punch visits (``GmemFile.work``), the platform's instruction
counters, and, with tracing on, the sequence of host (KVM and VMM) function calls."""

from __future__ import annotations

from snpsim.guest.kernel import __va
from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
from snpsim.guest.unaccepted_memory import accept_memory
from snpsim.system import SnpSystem
from snpsim.trace.events import Enter
from snpsim.trace.record import Recorder, tracing

MIB = 1 << 20
GPA = 40 * MIB + 0x3000  # 4 KiB aligned, not 2 MiB aligned
PAGES = 16


def _convert(accept_upto: int) -> tuple[dict, list]:
    system = SnpSystem(memory=64 * MIB)
    out: dict = {}
    calls: list = []

    def workload(k, cpu):
        accept_memory(k, 40 * MIB, 2 * MIB)
        if accept_upto:
            accept_memory(k, 0, accept_upto)
        vm = system.kvm.vm(system.machine.s.vmfd)
        files = {id(s.gmem_file): s.gmem_file for s in vm.memslots.values() if s.gmem_file}
        out["populated"] = sum(f.populated() for f in files.values())
        c = system.platform.counters
        before = dict(c)
        vm.mem_attr_array.work = vm.npt.work = 0
        for f in files.values():
            f.work = 0
        with tracing(Recorder()) as rec:
            r1 = set_memory_decrypted(k, __va(k, GPA), PAGES)
            r2 = set_memory_encrypted(k, __va(k, GPA), PAGES)
        assert (r1, r2) == (0, 0)
        out["work"] = (vm.mem_attr_array.work, vm.npt.work, sum(f.work for f in files.values()))
        out["counts"] = {n: c.get(n, 0) - before.get(n, 0) for n in c}
        calls.extend(e.name for e in rec.events
                     if isinstance(e, Enter) and e.party in ("kvm", "vmm"))

    outcome = system.run(workload)
    assert outcome.completed, outcome.describe()
    return out, calls


def test_same_conversion_same_work_whatever_was_populated_before():
    small, small_calls = _convert(0)
    big, big_calls = _convert(40 * MIB)
    assert big["populated"] >= small["populated"] + 8 * 512  # really more populated
    assert big["work"] == small["work"]
    assert big["counts"] == small["counts"]
    assert big_calls == small_calls
    # and the work is of the request's size: a few runs, chunks and folios
    runs, chunks, gmem = small["work"]
    assert chunks <= 4 and gmem <= 2 * PAGES + 4 and runs <= 8 * PAGES
