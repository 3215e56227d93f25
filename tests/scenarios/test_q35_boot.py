# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Guests above 4 GiB boot in every kernel profile on the q35 map (issue 10 part 2),
and after the boot nothing outside e820 RAM was accepted, validated or converted: the
RMP holds no validated guest page there, KVM's attributes are shared only inside RAM
(holes keep what kvm_set_phys_mem gave them: no attribute at all), and the guest's
unaccepted bitmap never had a bit there.

The full ``boot`` scenario at 4G+2M..1T is in benchmarks/bench_boot_sizes.py (a
boot there accepts the swiotlb pool, up to 1 GiB, which takes minutes)."""

import pytest

from snpsim.guest.kernel import PROFILES as KERNEL_PROFILES
from snpsim.guest.kernel import __va
from snpsim.guest.set_memory import set_memory_decrypted
from snpsim.scenarios.catalog import run_scenario
from snpsim.scenarios.dmesg import parse_dmesg
from snpsim.scenarios.memblock import BootMemory
from snpsim.spec.e820 import E820_TYPE_RAM
from snpsim.spec.kvm_uapi import KVM_MEMORY_ATTRIBUTE_PRIVATE
from snpsim.system import SnpSystem

GiB, MiB = 1 << 30, 1 << 20
#: KVM's INITIAL_VMSA_GPA (arch/x86/kvm/svm/sev.c): the RMP GPA of each launched VMSA.
INITIAL_VMSA_GPA = 0xFFFFFFFFF000


def _in_ram(e820, gpa):
    return any(a <= gpa < a + n for a, n, t in e820 if t == E820_TYPE_RAM)


def _check_nothing_outside_ram(system):
    e820 = system.config.e820
    gfns = system._validated_gfns()
    gfns = gfns[gfns != INITIAL_VMSA_GPA >> 12]
    assert gfns.size
    assert all(_in_ram(e820, int(g) << 12) for g in gfns), "validated page outside e820 RAM"
    # KVM attributes: the firmware slot ("pc.bios") is still all private (never
    # converted); GFNs in no memslot (holes, MMIO) never got an attribute.
    vm = system.kvm.vm(system.machine.s.vmfd)
    slots = sorted((s.base_gfn, s.base_gfn + s.npages) for s in vm.memslots.values())
    bios = system.layout.bios_base >> 12
    for g0, g1 in slots:
        if g0 == bios:
            assert [v for _a, _b, v in vm.mem_attr_array.runs(g0, g1)] == [
                KVM_MEMORY_ATTRIBUTE_PRIVATE]
    for (_a, end), (nxt, _b) in zip(slots, slots[1:]):
        assert {v for _a, _b, v in vm.mem_attr_array.runs(end, nxt)} <= {0, None}
    u = system.kernel.unaccepted
    for i in range(u.nbits):
        a = u.phys_base + i * u.unit_size
        if not (_in_ram(e820, a) and _in_ram(e820, a + u.unit_size - 1)):
            assert not u.test(i)


@pytest.mark.parametrize("kernel", sorted(KERNEL_PROFILES))
def test_boot_above_4g_converts_above_4g(kernel):
    out = {}

    def workload(k, cpu):
        mem = BootMemory(k, system.reserved_ranges)
        gpa = mem.alloc_pages(0)             # top-down: the top of ram-above-4g
        out["gpa"] = gpa
        out["ret"] = set_memory_decrypted(k, int(__va(k, gpa)), 1)

    system = SnpSystem(4 * GiB + 2 * MiB, 1, kernel=kernel)
    run = system.run(workload)
    assert run.vmm.result == "completed", run.vmm.errors
    assert run.vmm.errors == []
    # q35: ram-above-4g is [4 GiB, 6 GiB + 2 MiB); the highest 4 MiB-aligned block
    # (MAX_PAGE_ORDER) in it.
    assert out["gpa"] == 6 * GiB - 4 * MiB and out["ret"] == 0
    st = system.page_state(out["gpa"])
    assert st.attribute_private is False and st.pte_c_bit is False
    _check_nothing_outside_ram(system)


def test_dmesg_log_over_4g_boots():
    """A crafted log in the format of shared/data/dmesg/01 (QEMU + OVMF, q35): 6 GiB of
    RAM -- "usable" up to 0x7fffffff and 0x100000000-0x1ffffffff -- sizes a 6 GiB VM,
    which boots (swiotlb=2048 slabs on its command line keeps the pool at 4 MiB)."""
    text = "\n".join([
        "[    0.000000] Linux version 6.16.0 (user@guest) #1 SMP",
        "[    0.000000] Command line: console=ttyS0 swiotlb=2048",
        "[    0.000000] BIOS-provided physical RAM map:",
        "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable",
        "[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000007fffffff] usable",
        "[    0.000000] BIOS-e820: [mem 0x00000000e0000000-0x00000000efffffff] reserved",
        "[    0.000000] BIOS-e820: [mem 0x00000000feffc000-0x00000000feffffff] reserved",
        "[    0.000000] BIOS-e820: [mem 0x0000000100000000-0x000000027fffffff] usable",
        "[    0.000000] BIOS-e820: [mem 0x000000fd00000000-0x000000ffffffffff] reserved",
        "[    0.000000] SEV: Status: SEV SEV-ES SEV-SNP",
        "[    0.000000] smpboot: Allowing 2 CPUs, 0 hotplug CPUs",
    ])
    from snpsim.scenarios.catalog import vm_memory_for_log

    cfg = parse_dmesg(text)
    assert vm_memory_for_log(cfg) == 8 * GiB
    r = run_scenario("boot", memory=vm_memory_for_log(cfg), vcpus=cfg.nr_cpus or 2, dmesg=cfg)
    assert r.outcome.vmm.result == "completed", r.outcome.vmm.errors
    assert r.result["errors"] == []
    assert r.result["swiotlb_bytes"] == 4 * MiB
    _check_nothing_outside_ram(r.system)


def test_memory_picture_shows_the_layout_with_its_holes():
    from snpsim.system import PICTURE_MAX_CELLS, RunObserver

    system = SnpSystem(6 * GiB, 1)
    obs = RunObserver(picture=True)
    run = system.run(None, obs)
    assert run.vmm.result == "completed"
    pic = run.picture
    # [0, 8 GiB): ram-below-4g, the 32-bit hole, ram-above-4g; 2 MiB cells.
    assert (pic.cell, pic.ncells) == (2 * MiB, 4096)
    assert pic.state_of(3 * GiB) == "not RAM"
    assert pic.state_of(0xE0000000) == "MMIO"          # MMCONFIG, 256 MiB
    assert pic.state_of(4 * GiB - 2 * MiB) == "firmware"  # pc.bios
    assert pic.state_of(5 * GiB) == "unaccepted"
    assert pic.state_of(GiB) == "unaccepted"
    # A 1 TiB guest spans 2 TiB - 2 GiB of GPA (ram-above-4g at 1 TiB): bounded cells.
    cell, ncells = SnpSystem(1 << 40, 1)._picture_geometry()
    assert (cell, ncells) == (32 * MiB, (2046 * GiB) // (32 * MiB))
    assert ncells <= PICTURE_MAX_CELLS


def test_no_entry_count_stops_a_run_by_default():
    """A 100,000-entry KVM_RUN watchdog ended a correct 6 GiB ``--kernel 6.4`` boot
    (accepting its 512 MiB swiotlb pool at 4 KiB is 131,072 #NPFs in one KVM_RUN).  Loops
    are now caught by the livelock watcher; the entry limit is opt-in and off by default,
    whatever the memory size, and the profile is not rewritten."""
    for mem in (64 * MiB, 6 * GiB):
        system = SnpSystem(mem, 1, kernel="6.4")
        assert system.kvm_profile.knob("max_entries_per_run") is None
        assert system.kvm_profile.name == "v7.0.12"
