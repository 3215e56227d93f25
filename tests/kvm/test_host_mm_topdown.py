# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The VMM's address space: mappings placed top-down below the mmap base (Linux's
default layout, mm/mmap.c ``arch_get_unmapped_area_topdown``), so RAM of any size the
model takes (up to 1 TiB) lies inside the user address space KVM's ``access_ok``
accepts for a memslot (``TASK_SIZE_MAX`` = 2**47 - 4096 with 4-level paging)."""

import errno

from snpsim.api import Scenario
from snpsim.hw.cpu import Platform
from snpsim.kvm.host_mm import HVA_BASE
from snpsim.kvm.kvm_main import TASK_SIZE_MAX, Kvm

TiB = 1 << 40


def test_mappings_go_down_aligned_and_apart():
    kvm = Kvm(Platform(cbit=51).host)
    a = kvm.mmap(TiB)
    b = kvm.mmap(3 << 20)
    assert a + TiB <= HVA_BASE <= TASK_SIZE_MAX
    assert a % (2 << 20) == 0 and b % (2 << 20) == 0
    assert b + (3 << 20) < a          # below the first, not adjoining
    assert kvm.mmap(0) == -errno.EINVAL


def test_the_address_space_runs_out_with_enomem():
    kvm = Kvm(Platform(cbit=51).host)
    got = [kvm.mmap(32 * TiB) for _ in range(5)]
    assert all(g > 0 for g in got[:3]) and got[-1] == -errno.ENOMEM


def test_a_1_tib_guest_boots_and_completes():
    """The largest machine snpsim run takes (--memory 1T): its RAM slots are accepted
    (KVM_SET_USER_MEMORY_REGION2 would refuse an HVA range past TASK_SIZE_MAX with
    -EINVAL, and QEMU would exit)."""
    res = Scenario("1T", memory="1T").run()
    assert res.outcome.vmm.result == "completed", res.describe()


def test_qemu_exit_while_building_is_an_outcome_not_an_exception():
    """Two regions at one GPA: KVM answers the second slot -EEXIST
    (``__kvm_set_memory_region``) and QEMU gives up while building the machine; the run
    ends "qemu-exit" with QEMU's line, and there is no Host to read."""
    sc = Scenario("overlap", memory="64M")
    sc.region("a", 1 << 32, "2M")
    sc.region("b", 1 << 32, "2M")
    ran = []
    sc.after(lambda h: ran.append(h))
    res = sc.run()
    assert res.outcome.vmm.result == "qemu-exit"
    assert res.outcome.vmm.errors == ["kvm_set_phys_mem: error registering slot: EEXIST"]
    assert res.host is None and ran == [] and not res.completed
