# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The launch image's direct map covers all guest RAM, whatever its size: one PDPT per
512 GiB of PAGE_OFFSET space (a PML4 entry maps 512 GiB, APM vol 2 5.3).  Regression:
RAM above 512 GiB used to be left unmapped, so a 1 TiB guest triple-faulted at boot."""

import pytest

from snpsim.guest.boot import build_launch_image
from snpsim.guest.kernel import GuestConfig

PAGE_OFFSET = 0xFFFF888000000000  # arch/x86/include/asm/page_64_types.h, 4-level, no KASLR
GiB = 1 << 30


def walk(pages, cr3, va, cbit=51):
    mask = ((1 << cbit) - 1) & ~0xFFF
    table = cr3
    for shift in (39, 30, 21, 12):
        raw = pages[table][((va >> shift) & 511) * 8:][:8]
        pte = int.from_bytes(raw, "little")
        assert pte & 1, f"not present at level shift {shift} for {va:#x}"
        if shift == 12 or pte & 0x80:
            size = 1 << shift
            return (pte & mask & ~(size - 1)) | (va & (size - 1)), bool(pte >> cbit & 1)
        table = pte & mask
    raise AssertionError


@pytest.mark.parametrize("ram", [64 << 20, 2 * GiB + (2 << 20), 512 * GiB, 513 * GiB, 1024 * GiB])
def test_direct_map_covers_every_gib(ram):
    img = build_launch_image(GuestConfig(ram_size=ram))
    pages = {gpa: data for gpa, data, _t in img.records}
    for gpa in {0, ram // 2 & ~0xFFF, ram - 0x1000, min(ram, 512 * GiB) - 0x1000}:
        assert walk(pages, img.boot.cr3, PAGE_OFFSET + gpa) == (gpa, True)


def _present(pages, cr3, va, cbit=51):
    mask = ((1 << cbit) - 1) & ~0xFFF
    table = cr3
    for shift in (39, 30, 21, 12):
        pte = int.from_bytes(pages[table][((va >> shift) & 511) * 8:][:8], "little")
        if not pte & 1:
            return False
        if shift == 12 or pte & 0x80:
            return True
        table = pte & mask
    raise AssertionError


# The q35 e820 QEMU builds (hw/i386/pc_q35.c pc_q35_init, hw/i386/pc.c pc_memory_init):
# 6 GiB -> RAM [0, 2 GiB) and [4 GiB, 8 GiB); 1 TiB on AMD -> ram-above-4g at 1 TiB.
Q35_6G = ((0, 2 * GiB, 1), (0xE0000000, 0x10000000, 2), (0xFEFFC000, 0x4000, 2),
          (4 * GiB, 4 * GiB, 1), (0xFD00000000, 0x300000000, 2))
Q35_1T = ((0, 2 * GiB, 1), (0xE0000000, 0x10000000, 2), (0xFEFFC000, 0x4000, 2),
          (0xFD00000000, 0x300000000, 2), (1024 * GiB, 1022 * GiB, 1))


@pytest.mark.parametrize(("ram", "e820", "mapped", "holes"), [
    (6 * GiB, Q35_6G, [0, 2 * GiB - 0x1000, 4 * GiB, 8 * GiB - 0x1000],
     [2 * GiB, 0xE0000000, 0xFEC00000, 8 * GiB]),
    (1024 * GiB, Q35_1T, [0, 1024 * GiB, 2046 * GiB - 0x1000],
     [4 * GiB, 1000 * GiB, 0xFD00000000, 2046 * GiB]),
])
def test_direct_map_follows_e820(ram, e820, mapped, holes):
    """Only e820 RAM is direct-mapped (Linux init_range_memory_mapping); holes and
    reserved ranges are not present in the page tables."""
    img = build_launch_image(GuestConfig(ram_size=ram, e820=e820))
    pages = {gpa: data for gpa, data, _t in img.records}
    for gpa in mapped:
        assert walk(pages, img.boot.cr3, PAGE_OFFSET + gpa) == (gpa, True)
    for gpa in holes:
        assert not _present(pages, img.boot.cr3, PAGE_OFFSET + gpa)
    b = img.boot
    assert b.e820_ram == [(s, n) for s, n, t in e820 if t == 1]
    assert b.ram_size == ram
    assert b.e820 == sorted(e820)
    assert b.max_pfn_mapped == (max(s + n for s, n, t in e820 if t == 1)) >> 12
    assert b.pfn_range_is_mapped(mapped[-1] >> 12, (mapped[-1] >> 12) + 1)
    assert not b.pfn_range_is_mapped(holes[0] >> 12, (holes[0] >> 12) + 1)
