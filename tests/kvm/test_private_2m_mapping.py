# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A private fault maps 2 MiB in the NPT when the guest_memfd folio is 2 MiB, the RMP
entry is 2 MiB and the whole 2 MiB range has one attribute (kvm-qemu-host.md 6.3 item 3:
max_level = min(folio order, RMP level); 6.1 step 7: mixed-attribute ranges map 4 KiB).
Regression: every private fault used to map 4 KiB, so a 2 MiB PVALIDATE on a 2 MiB RMP
entry hit a 4 KiB NPT leaf (Page-Size check) and KVM PSMASHed every 2 MiB entry."""

from snpsim.kvm.profiles import DEFAULT_PROFILE
from snpsim.scenarios.catalog import run_scenario
from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K


def _accept(kvm):
    run = run_scenario("accept", memory=64 << 20, vcpus=1, page_size="2M", kvm=kvm)
    assert run.outcome.completed, run.outcome.describe()
    return run


def test_2m_folios_map_2m_and_validate_2m_without_psmash():
    run = _accept(DEFAULT_PROFILE.derive("2M folios", knobs={"gmem_max_order": 9}))
    c = run.system.platform.counters
    assert c.get("PSMASH", 0) == 0
    vm = run.system.kvm.vm(run.system.machine.s.vmfd)
    # a GFN in the middle of accepted RAM, far from the launched image at 16 MiB
    leaf = vm.npt.lookup((48 << 20) >> 12)
    assert leaf is not None and leaf.level == PG_LEVEL_2M


def test_order_0_folios_map_4k():
    run = _accept(DEFAULT_PROFILE)
    vm = run.system.kvm.vm(run.system.machine.s.vmfd)
    leaf = vm.npt.lookup((48 << 20) >> 12)
    assert leaf is not None and leaf.level == PG_LEVEL_4K
