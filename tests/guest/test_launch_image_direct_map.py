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
