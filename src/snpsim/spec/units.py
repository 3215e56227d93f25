# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Page sizes and fixed-width integer masks.

Source: Linux ``arch/x86/include/asm/page_types.h`` (PAGE_SHIFT 12, PMD_SHIFT 21,
PUD_SHIFT 30) and ``arch/x86/include/asm/sev.h`` (``RMP_PG_SIZE_4K`` 0,
``RMP_PG_SIZE_2M`` 1; v6.16).  The u8/u16/u32/u64 helpers mask a Python int to the
width the C code holds it in, which is what makes overflow bugs reproducible.
"""

from __future__ import annotations

import enum

__all__ = [
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PAGE_MASK",
    "PMD_SHIFT",
    "PMD_SIZE",
    "PMD_MASK",
    "PUD_SHIFT",
    "PUD_SIZE",
    "PUD_MASK",
    "PTRS_PER_PMD",
    "HPAGE_PMD_ORDER",
    "PageSize",
    "RMP_PG_SIZE_4K",
    "RMP_PG_SIZE_2M",
    "u8",
    "u16",
    "u32",
    "u64",
    "U8_MAX",
    "U16_MAX",
    "U32_MAX",
    "U64_MAX",
    "SZ_4K",
    "SZ_2M",
    "SZ_1G",
]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT  # 4096 bytes
PAGE_MASK = ~(PAGE_SIZE - 1)
PMD_SHIFT = 21
PMD_SIZE = 1 << PMD_SHIFT  # 2 MiB
PMD_MASK = ~(PMD_SIZE - 1)
PUD_SHIFT = 30
PUD_SIZE = 1 << PUD_SHIFT  # 1 GiB
PUD_MASK = ~(PUD_SIZE - 1)
PTRS_PER_PMD = 512  # 4 KiB pages per 2 MiB page
#: ``HPAGE_PMD_ORDER`` (include/linux/huge_mm.h: HPAGE_PMD_SHIFT - PAGE_SHIFT): a 2 MiB
#: folio is 2**9 4 KiB pages.
HPAGE_PMD_ORDER = PMD_SHIFT - PAGE_SHIFT

SZ_4K = PAGE_SIZE
SZ_2M = PMD_SIZE
SZ_1G = PUD_SIZE

RMP_PG_SIZE_4K = 0
RMP_PG_SIZE_2M = 1

U8_MAX = 0xFF
U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


class PageSize(enum.IntEnum):
    """RMP / PVALIDATE / PSC page size (the ``RMP_PG_SIZE_*`` encoding: 0 = 4 KiB, 1 = 2 MiB).

    Source: ``arch/x86/include/asm/sev.h`` (v6.16) ``RMP_PG_SIZE_4K``/``RMP_PG_SIZE_2M``;
    AMD APM vol 3, PVALIDATE ECX[0].
    """

    SIZE_4K = RMP_PG_SIZE_4K
    SIZE_2M = RMP_PG_SIZE_2M

    @property
    def bytes(self) -> int:
        """Size in bytes: 4096 or 2097152."""
        return PAGE_SIZE if self is PageSize.SIZE_4K else PMD_SIZE

    @property
    def npages(self) -> int:
        """Number of 4 KiB pages covered: 1 or 512."""
        return 1 if self is PageSize.SIZE_4K else PTRS_PER_PMD


def u8(x: int) -> int:
    """Mask ``x`` to 8 bits, as a C ``u8`` holds it."""
    return x & U8_MAX


def u16(x: int) -> int:
    """Mask ``x`` to 16 bits, as a C ``u16`` holds it."""
    return x & U16_MAX


def u32(x: int) -> int:
    """Mask ``x`` to 32 bits, as a C ``u32`` holds it."""
    return x & U32_MAX


def u64(x: int) -> int:
    """Mask ``x`` to 64 bits, as a C ``u64`` holds it (two's complement for negatives)."""
    return x & U64_MAX
