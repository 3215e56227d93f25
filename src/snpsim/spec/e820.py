# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The e820 memory map: entry types and the (addr, size, type) entry the VMM hands the
guest.

Type values: Linux ``arch/x86/include/asm/e820/types.h`` (``enum e820_type``,
v6.16) and QEMU ``hw/i386/e820_memory_layout.h`` (``E820_RAM`` 1, ``E820_RESERVED``
2, ``E820_ACPI`` 3, ``E820_NVS`` 4, ``E820_UNUSABLE`` 5): the same numbers on both
sides, as the firmware passes QEMU's table through.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "E820_TYPE_RAM",
    "E820_TYPE_RESERVED",
    "E820_TYPE_ACPI",
    "E820_TYPE_NVS",
    "E820_TYPE_UNUSABLE",
    "E820_TYPE_PMEM",
    "E820Range",
    "e820_ram_ranges",
]

E820_TYPE_RAM = 1
E820_TYPE_RESERVED = 2
E820_TYPE_ACPI = 3
E820_TYPE_NVS = 4
E820_TYPE_UNUSABLE = 5
#: Persistent memory (arch/x86/include/asm/e820/types.h).
E820_TYPE_PMEM = 7


class E820Range(NamedTuple):
    """One e820 entry: ``addr`` (GPA, bytes), ``size`` (bytes), ``type`` (E820_TYPE_*)."""

    addr: int
    size: int
    type: int


def e820_ram_ranges(table: Iterable[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """The (start, size) of every E820_TYPE_RAM entry of ``table``, sorted by address."""
    return sorted((a, s) for a, s, t in table if t == E820_TYPE_RAM and s > 0)
