# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""x86-64 page-table entry bits, levels and index helpers (4-level paging).

Sources: ``arch/x86/include/asm/pgtable_types.h`` (``_PAGE_BIT_*``, ``enum pg_level``),
``arch/x86/include/asm/pgtable_64_types.h`` (shifts, ``PTRS_PER_*``) and
``arch/x86/include/asm/page_types.h`` (``PTE_PFN_MASK`` = ``PAGE_MASK &
__PHYSICAL_MASK``), v6.x [from memory; these are architectural and stable].

The C-bit is not part of :data:`PTE_PFN_MASK`: Linux removes it from ``physical_mask``
under SME/SEV, so a PFN read from a PTE never includes it.  Use :func:`pte_cbit_mask`
for ``_PAGE_ENC`` (= ``sme_me_mask`` = ``1 << cbit``).
"""

from __future__ import annotations

import enum

from .units import PAGE_SHIFT, PMD_SHIFT, PUD_SHIFT

__all__ = [
    "_PAGE_BIT_PRESENT",
    "_PAGE_BIT_RW",
    "_PAGE_BIT_USER",
    "_PAGE_BIT_PWT",
    "_PAGE_BIT_PCD",
    "_PAGE_BIT_ACCESSED",
    "_PAGE_BIT_DIRTY",
    "_PAGE_BIT_PSE",
    "_PAGE_BIT_GLOBAL",
    "_PAGE_BIT_NX",
    "_PAGE_PRESENT",
    "_PAGE_RW",
    "_PAGE_USER",
    "_PAGE_PWT",
    "_PAGE_PCD",
    "_PAGE_ACCESSED",
    "_PAGE_DIRTY",
    "_PAGE_PSE",
    "_PAGE_GLOBAL",
    "_PAGE_NX",
    "_KERNPG_TABLE_NOENC",
    "__PHYSICAL_MASK_SHIFT",
    "PTE_PFN_MASK",
    "pte_cbit_mask",
    "PgLevel",
    "PG_LEVEL_NONE",
    "PG_LEVEL_4K",
    "PG_LEVEL_2M",
    "PG_LEVEL_1G",
    "PG_LEVEL_512G",
    "PGDIR_SHIFT",
    "PTRS_PER_PTE",
    "PTRS_PER_PMD",
    "PTRS_PER_PUD",
    "PTRS_PER_PGD",
    "pgd_index",
    "pud_index",
    "pmd_index",
    "pte_index",
]

_PAGE_BIT_PRESENT = 0
_PAGE_BIT_RW = 1
_PAGE_BIT_USER = 2
_PAGE_BIT_PWT = 3
_PAGE_BIT_PCD = 4
_PAGE_BIT_ACCESSED = 5
_PAGE_BIT_DIRTY = 6
_PAGE_BIT_PSE = 7
_PAGE_BIT_GLOBAL = 8
_PAGE_BIT_NX = 63

_PAGE_PRESENT = 1 << _PAGE_BIT_PRESENT
_PAGE_RW = 1 << _PAGE_BIT_RW
_PAGE_USER = 1 << _PAGE_BIT_USER
_PAGE_PWT = 1 << _PAGE_BIT_PWT
_PAGE_PCD = 1 << _PAGE_BIT_PCD
_PAGE_ACCESSED = 1 << _PAGE_BIT_ACCESSED
_PAGE_DIRTY = 1 << _PAGE_BIT_DIRTY
_PAGE_PSE = 1 << _PAGE_BIT_PSE
_PAGE_GLOBAL = 1 << _PAGE_BIT_GLOBAL
_PAGE_NX = 1 << _PAGE_BIT_NX

#: Kernel page-table (non-leaf) entry without the C-bit: PRESENT | RW | ACCESSED | DIRTY
#: = 0x63 (``__PP|__RW|0|___A|0|___D|0|0``; read in pgtable_types.h).  ``_KERNPG_TABLE``
#: adds ``_PAGE_ENC`` (:func:`pte_cbit_mask`).
_KERNPG_TABLE_NOENC = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY

#: 52-bit physical addresses (``__PHYSICAL_MASK_SHIFT``).
__PHYSICAL_MASK_SHIFT = 52
#: PFN bits of a PTE, 51:12 = 0x000F_FFFF_FFFF_F000 (before the C-bit is removed).
PTE_PFN_MASK = ((1 << __PHYSICAL_MASK_SHIFT) - 1) & ~((1 << PAGE_SHIFT) - 1)


def pte_cbit_mask(cbit: int) -> int:
    """Model-only: ``_PAGE_ENC`` for C-bit position ``cbit`` (``1 << cbit``)."""
    return 1 << cbit


class PgLevel(enum.IntEnum):
    """``enum pg_level`` (pgtable_types.h)."""

    PG_LEVEL_NONE = 0
    PG_LEVEL_4K = 1
    PG_LEVEL_2M = 2
    PG_LEVEL_1G = 3
    PG_LEVEL_512G = 4


PG_LEVEL_NONE = PgLevel.PG_LEVEL_NONE
PG_LEVEL_4K = PgLevel.PG_LEVEL_4K
PG_LEVEL_2M = PgLevel.PG_LEVEL_2M
PG_LEVEL_1G = PgLevel.PG_LEVEL_1G
PG_LEVEL_512G = PgLevel.PG_LEVEL_512G

#: 4-level paging: the PGD covers 512 GiB per entry.
PGDIR_SHIFT = 39
PTRS_PER_PTE = 512
PTRS_PER_PMD = 512
PTRS_PER_PUD = 512
PTRS_PER_PGD = 512


def pgd_index(va: int) -> int:
    """Index of ``va`` in the PGD (bits 47:39)."""
    return (va >> PGDIR_SHIFT) & (PTRS_PER_PGD - 1)


def pud_index(va: int) -> int:
    """Index of ``va`` in a PUD table (bits 38:30)."""
    return (va >> PUD_SHIFT) & (PTRS_PER_PUD - 1)


def pmd_index(va: int) -> int:
    """Index of ``va`` in a PMD table (bits 29:21)."""
    return (va >> PMD_SHIFT) & (PTRS_PER_PMD - 1)


def pte_index(va: int) -> int:
    """Index of ``va`` in a PTE table (bits 20:12)."""
    return (va >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
