# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Typed addresses and frame numbers, and the conversions between them.

Address spaces (ARCHITECTURE.md, "Data"): GVA (guest virtual), GPA (guest physical),
SPA (system physical), HVA (the VMM's userspace address); frame numbers GFN (GPA >> 12)
and PFN (SPA >> 12).  They are ``typing.NewType`` over ``int``: free at run time, checked
by mypy.  Translation between spaces happens only where the hardware or the kernel
translates (guest page walk, NPT walk, memslots, guest_memfd).

Kernel names: ``gfn_to_gpa``/``gpa_to_gfn`` (``include/linux/kvm_host.h``), ``PFN_PHYS``/
``PHYS_PFN`` (``include/linux/pfn.h``), ``PAGE_ALIGN`` (``include/linux/mm.h``).
Address arithmetic follows COCONUT-SVSM ``address.rs``: address - address = size,
address + size = address.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, NewType, TypeVar

from .units import PAGE_SHIFT, PAGE_SIZE, PageSize

__all__ = [
    "GVA",
    "GPA",
    "SPA",
    "HVA",
    "GFN",
    "PFN",
    "gfn_to_gpa",
    "gpa_to_gfn",
    "PFN_PHYS",
    "PHYS_PFN",
    "page_align_down",
    "page_align_up",
    "PAGE_ALIGN",
    "IS_ALIGNED",
    "Region",
]

GVA = NewType("GVA", int)
GPA = NewType("GPA", int)
SPA = NewType("SPA", int)
HVA = NewType("HVA", int)
GFN = NewType("GFN", int)
PFN = NewType("PFN", int)

A = TypeVar("A", bound=int)


def gfn_to_gpa(gfn: GFN) -> GPA:
    """GFN (4 KiB frame number) -> GPA in bytes.  Source: ``include/linux/kvm_host.h``."""
    return GPA(gfn << PAGE_SHIFT)


def gpa_to_gfn(gpa: GPA) -> GFN:
    """GPA in bytes -> GFN (drops the page offset).  Source: ``include/linux/kvm_host.h``."""
    return GFN(gpa >> PAGE_SHIFT)


def PFN_PHYS(pfn: PFN) -> SPA:
    """PFN -> SPA in bytes.  Source: ``include/linux/pfn.h``."""
    return SPA(pfn << PAGE_SHIFT)


def PHYS_PFN(spa: SPA) -> PFN:
    """SPA in bytes -> PFN.  Source: ``include/linux/pfn.h``."""
    return PFN(spa >> PAGE_SHIFT)


def page_align_down(addr: A, size: int = PAGE_SIZE) -> A:
    """Round ``addr`` down to a multiple of ``size`` bytes (a power of two)."""
    return addr & ~(size - 1)  # type: ignore[return-value]


def page_align_up(addr: A, size: int = PAGE_SIZE) -> A:
    """Round ``addr`` up to a multiple of ``size`` bytes (a power of two)."""
    return (addr + size - 1) & ~(size - 1)  # type: ignore[return-value]


def PAGE_ALIGN(addr: int) -> int:
    """Round up to the next 4 KiB boundary.  Source: ``include/linux/mm.h``."""
    return page_align_up(addr)


def IS_ALIGNED(x: int, a: int) -> bool:
    """True when ``x`` is a multiple of ``a`` (a power of two).  Source: ``include/linux/align.h``."""
    return (x & (a - 1)) == 0


@dataclass(frozen=True, slots=True)
class Region(Generic[A]):
    """A half-open address range ``[start, start + length)`` in one address space (bytes).

    Modelled on COCONUT-SVSM ``MemoryRegion<A>``.  ``length`` is in bytes.
    """

    start: A
    length: int

    @property
    def end(self) -> int:
        """First byte past the region."""
        return self.start + self.length

    def contains(self, addr: int) -> bool:
        """True when ``addr`` lies in the region."""
        return self.start <= addr < self.end

    def overlaps(self, other: Region[A]) -> bool:
        """True when the two regions share at least one byte."""
        return self.start < other.end and other.start < self.end

    def iter_pages(self, size: PageSize = PageSize.SIZE_4K) -> Iterator[A]:
        """Yield the start address of each page of ``size`` that the region covers."""
        step = size.bytes
        a = page_align_down(self.start, step)
        while a < self.end:
            yield a  # type: ignore[misc]
            a += step
