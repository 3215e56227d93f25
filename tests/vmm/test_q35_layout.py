# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The q35 memory map (issue 10 part 1) and ``kvm_convert_memory`` across regions.

Expected values come from QEMU's source (QEMU 9.1-10.1, docs/model-choices.md "q35
memory map"):

* hw/i386/pc_q35.c ``pc_q35_init``: ``lowmem`` 0x80000000 when ``ram_size`` >=
  0xb0000000, else 0xb0000000; ``max-ram-below-4g`` lowers it; RAM >= lowmem splits
  into below = lowmem, above = the rest.
* hw/i386/pc.c ``pc_memory_init``: on AMD, ram-above-4g moves to AMD_ABOVE_1TB_START
  (0x10000000000) when ``pc_max_used_gpa`` = ROUND_UP(4 GiB + above, 1 GiB) +
  pci_hole64_size (Q35_PCI_HOST_HOLE64_SIZE_DEFAULT, 1 << 35) - 1 >= AMD_HT_START
  (0xfd00000000); the HT range is e820 reserved when phys-bits >= 40; "Address space
  limit 0x%PRIx64 < 0x%PRIx64 phys-bits too low (%u)" and exit(1) when the used GPA
  exceeds phys-bits.
* accel/kvm/kvm-all.c ``kvm_convert_memory``: memory_region_find's first section
  decides; "Convert non guest_memfd backed memory region (0x%HWADDR_PRIx ,+
  0x%HWADDR_PRIx) to %s".
"""

import pytest

from snpsim.hw.cpu import Platform
from snpsim.kvm.kvm_main import Kvm
from snpsim.spec.e820 import E820_TYPE_RAM, E820_TYPE_RESERVED, E820Range
from snpsim.spec.falloc import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
from snpsim.spec.kvm_uapi import KVM_MEMORY_ATTRIBUTE_PRIVATE
from snpsim.vmm.kvm_all import QemuExit, kvm_convert_memory, memory_region_find
from snpsim.vmm.machine import Machine, pc_max_used_gpa, pc_memory_layout

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


@pytest.mark.parametrize(("ram", "below", "above", "above_start"), [
    (2 * GiB, 2 * GiB, 0, 4 * GiB),                         # < 0xb0000000: all low
    (0xB0000000 - 2 * MiB, 0xB0000000 - 2 * MiB, 0, 4 * GiB),
    (0xB0000000, 0x80000000, 0x30000000, 4 * GiB),          # >= 0xb0000000: lowmem 2G
    (4 * GiB, 2 * GiB, 2 * GiB, 4 * GiB),
    (4 * GiB + 2 * MiB, 2 * GiB, 2 * GiB + 2 * MiB, 4 * GiB),
    (64 * GiB, 2 * GiB, 62 * GiB, 4 * GiB),
    (978 * GiB, 2 * GiB, 976 * GiB, 4 * GiB),               # max used GPA 1012G - 1
    (978 * GiB + 2 * MiB, 2 * GiB, 976 * GiB + 2 * MiB, TiB),  # reaches AMD_HT_START
    (TiB, 2 * GiB, TiB - 2 * GiB, TiB),
])
def test_q35_split_and_ht_relocation(ram, below, above, above_start):
    lay = pc_memory_layout(ram)
    assert (lay.below_4g_mem_size, lay.above_4g_mem_size, lay.above_4g_mem_start) == (
        below, above, above_start)
    ram_e820 = [e for e in lay.e820 if e.type == E820_TYPE_RAM]
    assert ram_e820 == [E820Range(0, below, 1)] + (
        [E820Range(above_start, above, 1)] if above else [])


def test_max_used_gpa_threshold_is_amd_ht_start():
    assert pc_max_used_gpa(4 * GiB, 976 * GiB) == 0xFD00000000 - 1
    assert pc_max_used_gpa(4 * GiB, 976 * GiB + 2 * MiB) == 0xFD00000000 + GiB - 1


def test_max_ram_below_4g_lowers_lowmem():
    lay = pc_memory_layout(4 * GiB, max_ram_below_4g=1 * GiB)
    assert (lay.below_4g_mem_size, lay.above_4g_mem_size) == (1 * GiB, 3 * GiB)


def test_e820_table_at_6g():
    lay = pc_memory_layout(6 * GiB)
    assert list(lay.e820) == [
        (0, 2 * GiB, E820_TYPE_RAM),
        (0xE0000000, 0x10000000, E820_TYPE_RESERVED),   # MMCONFIG (log 01)
        (0xFEFFC000, 0x4000, E820_TYPE_RESERVED),       # kvm_arch_init identity map
        (4 * GiB, 4 * GiB, E820_TYPE_RAM),
        (0xFD00000000, 0x300000000, E820_TYPE_RESERVED),  # AMD HT, phys-bits >= 40
    ]


def test_not_amd_keeps_ram_at_4g_and_no_ht_entry():
    lay = pc_memory_layout(TiB, amd=False)
    assert lay.above_4g_mem_start == 4 * GiB
    assert all(e.addr != 0xFD00000000 for e in lay.e820)


def test_phys_bits_too_low_is_qemu_exit():
    # 1 TiB relocated: ram-above-4g ends at 2 TiB - 2 GiB; + 32 GiB hole - 1.
    with pytest.raises(QemuExit) as ei:
        pc_memory_layout(TiB, phys_bits=40)
    assert ei.value.status == 1
    assert ei.value.message == ("Address space limit 0xffffffffff < 0x2077fffffff "
                                "phys-bits too low (40)")
    assert all(e.addr != 0xFD00000000 for e in pc_memory_layout(2 * GiB, phys_bits=39).e820)


def _machine(ram):
    platform = Platform(cbit=51, seed=0)
    kvm = Kvm(platform.host, "v7.0.12")
    return Machine(kvm, ram, 1, profile="10.1"), kvm


def test_one_pc_ram_guest_memfd_two_alias_memslots():
    m, kvm = _machine(6 * GiB)
    vm = kvm.vm(m.s.vmfd)
    slots = sorted(vm.memslots.values(), key=lambda s: s.base_gfn)
    assert [(s.base_gfn << 12, s.npages << 12) for s in slots] == [
        (0, 2 * GiB), (4 * GiB - 4 * MiB, 4 * MiB), (4 * GiB, 4 * GiB)]
    low, bios, high = slots
    assert low.gmem_file is high.gmem_file            # one "pc.ram" guest_memfd
    assert low.gmem_file.size == 6 * GiB
    assert (low.gmem_pgoff, high.gmem_pgoff) == (0, (2 * GiB) >> 12)
    assert bios.gmem_file is not low.gmem_file and bios.gmem_file.size == 4 * MiB
    assert high.userspace_addr == low.userspace_addr + 2 * GiB
    # Every guest_memfd slot starts private; MMIO has no slot.
    assert vm.mem_attr_array.get((4 * GiB) >> 12) == KVM_MEMORY_ATTRIBUTE_PRIVATE
    assert not any(s.contains(0xFEC00000 >> 12) for s in slots)


def test_memory_region_find_first_section_and_block_offset():
    m, _ = _machine(6 * GiB)
    mr, off = memory_region_find(m.s, 4 * GiB + 8 * KiB, 4 * KiB)
    assert (mr.name, off) == ("ram-above-4g", 2 * GiB + 8 * KiB)
    mr, off = memory_region_find(m.s, 0xC0000000, 0x40000000 + 4 * KiB)  # hole, then MMCONFIG
    assert (mr.name, off) == ("pcie-mmcfg-mmio", 0)
    assert memory_region_find(m.s, 0xC0000000, 4 * KiB) == (None, 0)


@pytest.mark.parametrize(("gpa", "to_private", "ret", "errors"), [
    (0xFEC00000, False, 0, []),                         # MMIO to shared: silently 0
    (0xFEC00000, True, -1, ["Convert non guest_memfd backed memory region "
                            "(0xfec00000 ,+ 0x1000) to private"]),
    (0xC0000000, False, 0, []),                         # unassigned to shared: 0
    (0xC0000000, True, -1, []),                         # unassigned to private: -1
])
def test_convert_mmio_and_unassigned(gpa, to_private, ret, errors):
    m, kvm = _machine(6 * GiB)
    assert kvm_convert_memory(m.s, gpa, 4 * KiB, to_private) == ret
    assert m.s.errors == errors
    # nothing changed the attributes there
    assert kvm.vm(m.s.vmfd).mem_attr_array.get(gpa >> 12) in (0, None)


def test_convert_non_guest_memfd_ram_to_shared_is_an_error():
    platform = Platform(cbit=51, seed=0)
    from snpsim.spec.kvm_uapi import KVM_X86_SEV_VM

    m = Machine(Kvm(platform.host, "v7.0.12"), 6 * GiB, 1, profile="10.1", vm_type=KVM_X86_SEV_VM)
    assert kvm_convert_memory(m.s, 4 * GiB, 4 * KiB, False) == -1
    assert m.s.errors == ["Convert non guest_memfd backed memory region "
                          "(0x100000000 ,+ 0x1000) to shared"]


def _record(kvm, name):
    calls = []
    real = getattr(kvm, name)

    def spy(*args):
        calls.append(args)
        return real(*args)

    setattr(kvm, name, spy)
    return calls


def test_convert_across_two_ram_regions_to_shared():
    """[2 GiB - 4 KiB, 4 GiB + 4 KiB): the first section is ram-below-4g; KVM's
    attributes change over the whole range, and the guest_memfd hole punched is
    ``size`` bytes from that section's "pc.ram" offset -- the first 2 GiB + 4 KiB of
    ram-above-4g's private backing, not the one page the guest asked for there."""
    m, kvm = _machine(6 * GiB)
    start, size = 2 * GiB - 4 * KiB, 2 * GiB + 8 * KiB
    falloc = _record(kvm, "fallocate")
    assert kvm_convert_memory(m.s, start, size, False) == 0
    attrs = kvm.vm(m.s.vmfd).mem_attr_array
    assert attrs.get(start >> 12) in (0, None)
    assert attrs.get((4 * GiB) >> 12) in (0, None)
    assert attrs.get((4 * GiB + 4 * KiB) >> 12) == KVM_MEMORY_ATTRIBUTE_PRIVATE
    gmem = m.s.regions[-2].ram_block.guest_memfd  # "pc.ram"'s (ram-above-4g's block)
    assert falloc == [(gmem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, size)]
    assert m.s.errors == []


def test_convert_across_two_ram_regions_to_private_overruns_the_block():
    """To private, the shared backing is discarded ``size`` bytes from the first
    section's offset: past the end of "pc.ram" it is ram_block_discard_range's
    "Overrun block" error_report and -1, after the attributes already changed."""
    m, kvm = _machine(6 * GiB)
    start, size = 2 * GiB - 4 * KiB, 4 * GiB + 8 * KiB   # block offset end 6 GiB + 4 KiB
    madv = _record(kvm, "madvise")
    assert kvm_convert_memory(m.s, start, size, True) == -1
    assert madv == []
    assert m.s.errors == ["ram_block_discard_range: Overrun block 'pc.ram' "
                          f"({start}/{size:x}/{6 * GiB:x})"]
    assert kvm.vm(m.s.vmfd).mem_attr_array.get((6 * GiB) >> 12) == KVM_MEMORY_ATTRIBUTE_PRIVATE


def test_layout_invariants_any_size():
    """For every RAM size (multiple of 2 MiB, 32 MiB..1 TiB): e820 RAM adds up to the
    RAM size, no RAM entry overlaps a reserved entry, an MMIO region or pc.bios, and
    ram-above-4g starts at 4 GiB or (past the HT threshold) 1 TiB."""
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.integers(min_value=16, max_value=TiB // (2 * MiB)))
    def check(units):
        ram = units * 2 * MiB
        lay = pc_memory_layout(ram)
        rams = [(a, a + n) for a, n, t in lay.e820 if t == E820_TYPE_RAM]
        assert sum(b - a for a, b in rams) == ram
        others = [(a, a + n) for a, n, t in lay.e820 if t != E820_TYPE_RAM]
        others += [(a, a + n) for _name, a, n in lay.mmio]
        others.append((lay.bios_base, 4 * GiB))
        for a, b in rams:
            assert all(b <= c or d <= a for c, d in others)
        assert lay.above_4g_mem_start == (TiB if ram > 978 * GiB else 4 * GiB)

    check()
