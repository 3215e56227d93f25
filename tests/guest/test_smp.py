# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Several vCPUs (issue 5 item 8): two vCPUs accept the same 2 MiB unit at once and the
unit is accepted -- PSC private and PVALIDATE -- exactly once; the second vCPU waits on
the ``accepting_list`` while the first accepts (drivers/firmware/efi/unaccepted_memory.c
``accept_memory``, linux-guest.md 8.1).  Races are reproducible from the scheduler seed."""

import pytest
from guest_fakehost import SPA_BASE, SmpFakeHost

from snpsim.guest.kernel import GuestConfig, __va
from snpsim.guest.unaccepted_memory import accept_memory
from snpsim.spec.psc import SNP_PAGE_STATE_PRIVATE
from snpsim.system import SnpSystem

MiB = 1 << 20
UNIT = 40 * MiB


def accept_and_use(tag):
    def wl(kernel, cpu):
        accept_memory(kernel, UNIT, 4096)
        cpu.write(__va(kernel, UNIT + 4096 * (1 + cpu.vcpu_id)), tag)
        return cpu.read(__va(kernel, UNIT + 4096 * (1 + cpu.vcpu_id)), len(tag))
    return wl


def race(seed):
    h = SmpFakeHost(GuestConfig(nr_cpus=2, coherency_sfw_no=True), workload=accept_and_use(b"bsp"))
    h.kernel.ap_workloads[1] = accept_and_use(b"ap1")
    out = h.run_smp(seed)
    return h, out


@pytest.mark.parametrize("seed", range(8))
def test_two_vcpus_accept_the_same_unit_once(seed):
    h, out = race(seed)
    k = h.kernel
    assert out == "poweroff", (out, k.warnings)
    assert k.terminated is None
    assert k.workload_result == b"bsp" and k.ap_results[1] == b"ap1"
    assert k.ap_state[1] == "done"
    # exactly one PSC(private) for the unit, one 2M entry
    mine = [c for c in h.psc_calls if c.desc.entries[0].gfn == UNIT >> 12]
    assert [(c.desc.entries[0].operation, c.desc.entries[0].pagesize) for c in mine] == [
        (SNP_PAGE_STATE_PRIVATE, 1)]
    # every page of the unit validated once (a second PVALIDATE would have been CF=1 ->
    # terminate (1, 2))
    rmp = h.p.rmp
    assert all(rmp.lookup((SPA_BASE + UNIT + i * 4096) >> 12).validated for i in range(512))
    assert not k.unaccepted.test(UNIT // (2 * MiB))


def test_second_vcpu_waits_on_the_accepting_range():
    waited = [s for s in range(8) if race(s)[0].kernel.accept_waits]
    assert waited, "no seed made one vCPU wait on the other's accepting range"
    h, _ = race(waited[0])
    assert h.pauses >= h.kernel.accept_waits >= 1


def test_race_is_reproducible_from_the_seed():
    a, _ = race(3)
    b, _ = race(3)
    assert (a.exits, a.kernel.accept_waits, a.pauses) == (b.exits, b.kernel.accept_waits, b.pauses)


def test_full_system_two_vcpus_without_ap_work_completes():
    out = SnpSystem(memory=64 * MiB, vcpus=2, seed=1).run(None)
    assert out.completed, out.describe()


@pytest.mark.parametrize("seed", range(4))
def test_full_system_two_vcpus_accept_the_same_unit_once(seed):
    s = SnpSystem(memory=64 * MiB, vcpus=2, seed=seed, coherency_sfw_no=True)
    b = s._build

    def build(workload, *rest):
        b(workload, *rest)
        s.kernel.ap_workloads[1] = accept_and_use(b"ap1")

    s._build = build
    out = s.run(accept_and_use(b"bsp"))
    assert out.completed, out.describe()
    assert s.kernel.workload_result == b"bsp" and s.kernel.ap_results[1] == b"ap1"
    st = s.page_state(UNIT)
    assert st.rmp["assigned"] and st.rmp["validated"]


def test_full_system_ap_work_never_hangs_without_pause():
    """Today's platform has no PAUSE exit: an AP that runs before the BSP starts it
    cannot wait and stays halted (a warning says so); the run still ends."""
    for seed in range(4):
        s = SnpSystem(memory=64 * MiB, vcpus=2, seed=seed, coherency_sfw_no=True)
        b = s._build

        def build(workload, *rest, s=s, b=b):
            b(workload, *rest)
            s.kernel.ap_workloads[1] = accept_and_use(b"ap1")

        s._build = build
        out = s.run(accept_and_use(b"bsp"))
        assert out.vmm.result in ("completed", "halted"), out.describe()
        assert s.kernel.ap_state.get(1) in ("parked", "done", "waiting", "online", None)
