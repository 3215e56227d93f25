# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A legitimate long run is never stopped (issue 12 item 4): detection is by an
unchanged state, not by a count.

The guest PVALIDATEs every 4 KiB page of unaccepted RAM with no PSC: each page is
private in KVM's attributes from the start (QEMU sets every guest_memfd memslot private,
kvm-qemu-host.md 8.1), so the first PVALIDATE takes an #NPF, KVM faults the page in from
guest_memfd (``kvm_mmu_faultin_pfn_private`` -> ``sev_gmem_prepare``: RMPUPDATE to
guest-owned, not validated) and maps it, and the retried PVALIDATE succeeds -- one #NPF
per page, each at a new GPA, all inside one KVM_RUN with no userspace exit.

Size: 512 MiB (131,072 pages, more than the 100,000 guest entries the old KVM_RUN
watchdog allowed), in a guest of 512 MiB + 192 MiB.  The full 1 GiB (262,144 pages)
completes too but is over the ~60 s test budget on the shared 2-core machine: as this
test, 65 s wall / 50 s CPU; as a script, 48 s alone and 123 s next to another run (about
0.18 ms per page; 256 MiB: 11 s).  The run uses the smallest ``livelock_repeats`` (2).
"""

from snpsim.guest.kernel import __va
from snpsim.spec.units import PAGE_SIZE, PMD_SIZE, RMP_PG_SIZE_4K
from snpsim.system import SnpSystem
from snpsim.trace.progress import Livelock, ProgressWatcher

MiB = 1 << 20
SIZE = 512 * MiB


def validate_unaccepted_4k(size: int, result: dict):
    """Guest workload: take the highest unaccepted 2 MiB units covering ``size`` bytes,
    mark them accepted and PVALIDATE each 4 KiB page of them (no PSC)."""

    def workload(kernel, cpu):
        u = kernel.unaccepted
        units = [i for i in range(u.nbits) if u.test(i)][-(size // PMD_SIZE):]
        ok = 0
        for i in units:
            u.clear(i)
            for gpa in range(i * PMD_SIZE, (i + 1) * PMD_SIZE, PAGE_SIZE):
                ok += cpu.pvalidate(__va(kernel, gpa), RMP_PG_SIZE_4K, True) == (0, 0)
        result.update(units=len(units), validated=ok)
        return 0

    return workload


def test_validating_512_mib_at_4k_without_psc_completes():
    result = {}
    system = SnpSystem(SIZE + 192 * MiB, 1, livelock_repeats=2)
    npf_before = system.platform.counters.get("#NPF", 0)
    out = system.run(validate_unaccepted_4k(SIZE, result))
    assert out.completed, out.describe()
    assert out.livelock is None and system.platform.progress.tripped is None
    assert result == {"units": SIZE // PMD_SIZE, "validated": SIZE // PAGE_SIZE}
    assert out.counters["#NPF"] - npf_before >= SIZE // PAGE_SIZE
    # no KVM_RUN entry limit is in force
    assert system.kvm_profile.knob("max_entries_per_run") is None


def test_watcher_never_trips_on_a_million_distinct_states():
    w = ProgressWatcher(repeats=2)
    for gpa in range(0, 1 << 32, 4096):
        w.watch("kvm_mmu_page_fault", 0, (gpa, 0x100000004))
    assert w.tripped is None and len(w) == 1


def test_watcher_trips_on_the_nth_identical_state_and_counts_per_loop_and_vcpu():
    w = ProgressWatcher(repeats=3)
    w.watch("vcpu_block", 0, "s")
    w.watch("vcpu_block", 1, "s")           # another vCPU: its own count
    w.watch("vmgexit_psc", 0, "s")          # another loop: its own count
    w.watch("vcpu_block", 0, "s")
    w.watch("vcpu_block", 0, "t")           # progress: the count starts again
    w.watch("vcpu_block", 0, "t")
    try:
        w.watch("vcpu_block", 0, "t", lambda: "stuck")
    except Livelock as e:
        assert (e.loop, e.vcpu, e.state, e.repeats) == ("vcpu_block", 0, "stuck", 3)
        assert w.tripped is e
    else:
        raise AssertionError("the third identical state did not trip")


def test_progress_forgets_a_loop():
    w = ProgressWatcher(repeats=2)
    w.watch("rmpupdate", None, 1)
    assert w.last("rmpupdate", None) == 1 and w.last("rmpupdate", 0) is None
    w.progress("rmpupdate", None)
    assert w.last("rmpupdate", None) is None
    w.watch("rmpupdate", None, 1)           # a new run of the loop: first pass again
    assert w.tripped is None
