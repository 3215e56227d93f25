# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The unaccepted-memory bitmap is built from e820 (issue 10): one bit per 2 MiB unit
(the EFI stub's unit_size, drivers/firmware/efi/libstub/unaccepted_memory.c), set only
for units wholly inside e820 RAM and outside the launched image, so a hole or MMIO
range is never accepted."""

from snpsim.guest.boot import build_launch_image
from snpsim.guest.kernel import GuestConfig
from snpsim.guest.unaccepted_memory import UnacceptedMemory

GiB, MiB = 1 << 30, 1 << 20
# What the firmware hands the guest for QEMU's q35 table (system.firmware_e820): RAM
# below 1 MiB stops at 0xa0000 (log 01).
Q35_6G = ((0, 0xA0000, 1), (0x100000, 2 * GiB - 0x100000, 1), (0xE0000000, 0x10000000, 2), (0xFEFFC000, 0x4000, 2),
          (4 * GiB, 4 * GiB, 1), (0xFD00000000, 0x300000000, 2))
Q35_1T = ((0, 0xA0000, 1), (0x100000, 2 * GiB - 0x100000, 1), (0xE0000000, 0x10000000, 2), (0xFEFFC000, 0x4000, 2),
          (0xFD00000000, 0x300000000, 2), (1024 * GiB, 1022 * GiB, 1))


def _bits(u):
    return [i for i in range(u.nbits) if u.test(i)]


def test_bitmap_has_no_bit_outside_ram_6g():
    boot = build_launch_image(GuestConfig(ram_size=6 * GiB, e820=Q35_6G)).boot
    u = UnacceptedMemory.for_boot(boot)
    assert (u.phys_base, u.unit_size, u.nbits) == (0, 2 * MiB, (8 * GiB) // (2 * MiB))
    img = set(range(boot.image_start // (2 * MiB), boot.image_end // (2 * MiB)))
    # unit 0 holds the legacy hole: no bit; the RAM units of both ranges: bits.
    want = [i for i in range(1, 1024) if i not in img] + list(range(2048, 4096))
    assert _bits(u) == want


def test_bitmap_1t_relocated_is_sized_in_units():
    boot = build_launch_image(GuestConfig(ram_size=1024 * GiB, e820=Q35_1T)).boot
    u = UnacceptedMemory.for_boot(boot)
    assert u.nbits == (2046 * GiB) // (2 * MiB)
    assert len(u.bitmap) == u.nbits // 8          # 128 KiB for 2 TiB of GPA
    assert not u.test((1000 * GiB) // (2 * MiB))  # the gap below 1 TiB
    assert u.test((1024 * GiB) // (2 * MiB)) and u.test(u.nbits - 1)
    assert sum(bin(b).count("1") for b in u.bitmap) == (
        1023 - (boot.image_end - boot.image_start) // (2 * MiB)) + (1022 * GiB) // (2 * MiB)
