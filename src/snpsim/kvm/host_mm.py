# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A minimal host kernel memory manager: the page allocator that hands out SPAs and the
anonymous memory of the VMM process (HVAs).

Model-only in shape (Linux ``mm/page_alloc.c``, ``mm/mmap.c``, ``mm/madvise.c``), kept to
what the page-state protocol needs:

* :class:`PageAllocator`: ``alloc_page`` / ``__free_page`` over PFNs, LIFO reuse of freed
  pages (so a page freed by a hole punch is what the next allocation gets, as with the
  per-CPU free lists), and ``snp_leak_pages``' "never reuse" list.  New pages read as zero
  (``__GFP_ZERO``: the host port's ``zero_page``).
* :class:`HostMm`: one process address space: ``mmap`` of anonymous memory (an HVA
  range, populated on first touch), ``get_user_page`` (the fault-in of
  ``get_user_pages``/``hva_to_pfn``), ``madvise(MADV_DONTNEED|MADV_REMOVE)`` freeing the
  pages, and ``read_user``/``write_user`` (the process's own loads and stores, used by the
  VMM for guest shared memory).

Units: HVAs and lengths in bytes, PFNs in 4 KiB frames.  Errors are negative errno.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from snpsim.spec.mman import MADV_DONTNEED, MADV_REMOVE
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE

__all__ = ["PageAllocator", "HostMm", "Vma", "HVA_BASE", "PFN_BASE"]

#: First HVA handed out by ``mmap`` (model-only; a typical x86-64 mmap base).
HVA_BASE = 0x7F00_0000_0000
#: First PFN the allocator hands out (model-only: SPA 1 GiB, above the low firmware area).
PFN_BASE = 0x40000


class PageAllocator:
    """The host's physical page allocator (model-only).

    ``host`` is the host port (used to zero pages).  ``allocated`` is the set of PFNs in
    use; ``leaked`` the PFNs ``snp_leak_pages`` took out of circulation.
    """

    def __init__(self, host: Any, pfn_base: int = PFN_BASE) -> None:
        self.host = host
        self._next = pfn_base
        self._free: list[int] = []
        self.allocated: set[int] = set()
        self.leaked: set[int] = set()

    def alloc_page(self) -> int:
        """Allocate one zeroed 4 KiB page; returns its PFN (``alloc_page(GFP_ZERO)``)."""
        if self._free:
            pfn = self._free.pop()
        else:
            pfn = self._next
            self._next += 1
        self.allocated.add(pfn)
        self.host.zero_page(pfn << PAGE_SHIFT)
        return pfn

    def alloc_pages(self, order: int) -> int:
        """Allocate ``2**order`` contiguous zeroed pages aligned to their size (the buddy
        allocator's ``alloc_pages(GFP_ZERO, order)``); returns the first PFN.  Model: taken
        from never-used PFNs above the ones handed out so far (the skipped PFNs are not
        reused)."""
        n = 1 << order
        base = (self._next + n - 1) & ~(n - 1)
        self._next = base + n
        for pfn in range(base, base + n):
            self.allocated.add(pfn)
            self.host.zero_page(pfn << PAGE_SHIFT)
        return base

    def free_page(self, pfn: int) -> None:
        """Return ``pfn`` to the allocator (``__free_page``).  Leaked pages are never
        reused.  Freeing a page that is not allocated is a model bug (assert)."""
        assert pfn in self.allocated, f"double free of pfn {pfn:#x}"
        self.allocated.discard(pfn)
        if pfn not in self.leaked:
            self._free.append(pfn)

    def leak_page(self, pfn: int) -> None:
        """Take ``pfn`` out of circulation for good (``snp_leak_pages``)."""
        self.leaked.add(pfn)


@dataclass
class Vma:
    """One anonymous mapping: ``start`` HVA, ``length`` bytes, ``pages`` HVA page -> PFN."""

    start: int
    length: int
    pages: dict[int, int] = field(default_factory=dict)

    @property
    def end(self) -> int:
        """First HVA past the mapping."""
        return self.start + self.length


class HostMm:
    """The VMM process's address space (``struct mm_struct``), anonymous memory only."""

    def __init__(self, host: Any, allocator: PageAllocator) -> None:
        self.host = host
        self.allocator = allocator
        self.vmas: list[Vma] = []
        self._next_hva = HVA_BASE

    def mmap(self, length: int) -> int:
        """``mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS)``: returns
        the HVA (bytes, page aligned) or -EINVAL for a zero length.  Pages are allocated on
        first touch."""
        if length <= 0:
            return -errno.EINVAL
        length = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        vma = Vma(self._next_hva, length)
        self._next_hva += length + (2 << 20)  # guard gap
        self.vmas.append(vma)
        return vma.start

    def find_vma(self, hva: int) -> Vma | None:
        """The mapping containing ``hva``, or None."""
        for v in self.vmas:
            if v.start <= hva < v.end:
                return v
        return None

    def get_user_page(self, hva: int, write: bool = True) -> int:
        """Fault in the page at ``hva`` and return its PFN (``get_user_pages`` /
        KVM ``hva_to_pfn``); -EFAULT when no mapping covers ``hva``."""
        vma = self.find_vma(hva)
        if vma is None:
            return -errno.EFAULT
        page = hva & ~(PAGE_SIZE - 1)
        pfn = vma.pages.get(page)
        if pfn is None:
            pfn = self.allocator.alloc_page()
            vma.pages[page] = pfn
        return pfn

    def lookup_user_page(self, hva: int) -> int | None:
        """The PFN backing ``hva`` if populated, without faulting (model-only)."""
        vma = self.find_vma(hva)
        if vma is None:
            return None
        return vma.pages.get(hva & ~(PAGE_SIZE - 1))

    def madvise(self, hva: int, length: int, advice: int) -> int:
        """``madvise(hva, length, advice)`` for MADV_DONTNEED (4) and MADV_REMOVE (9):
        free the pages; the next touch reads zeros.  Returns 0, -EINVAL (unaligned HVA,
        unknown advice) or -ENOMEM (range not mapped).  Source: mm/madvise.c."""
        if hva & (PAGE_SIZE - 1) or advice not in (MADV_DONTNEED, MADV_REMOVE):
            return -errno.EINVAL
        end = hva + ((length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
        a = hva
        while a < end:
            vma = self.find_vma(a)
            if vma is None:
                return -errno.ENOMEM
            pfn = vma.pages.pop(a, None)
            if pfn is not None:
                self.allocator.free_page(pfn)
            a += PAGE_SIZE
        return 0

    def read_user(self, hva: int, n: int) -> bytes:
        """The process reads ``n`` bytes at ``hva`` (faulting pages in).  Raises
        ``ValueError`` for an unmapped HVA (a VMM bug: SIGSEGV)."""
        out = bytearray()
        while n > 0:
            take = min(n, PAGE_SIZE - (hva & (PAGE_SIZE - 1)))
            pfn = self.get_user_page(hva, write=False)
            if pfn < 0:
                raise ValueError(f"SIGSEGV: read of unmapped HVA {hva:#x}")
            out += self.host.read((pfn << PAGE_SHIFT) | (hva & (PAGE_SIZE - 1)), take)
            hva += take
            n -= take
        return bytes(out)

    def write_user(self, hva: int, data: bytes) -> None:
        """The process writes ``data`` at ``hva`` (faulting pages in).  Raises
        ``ValueError`` for an unmapped HVA (SIGSEGV)."""
        pos = 0
        while pos < len(data):
            take = min(len(data) - pos, PAGE_SIZE - (hva & (PAGE_SIZE - 1)))
            pfn = self.get_user_page(hva, write=True)
            if pfn < 0:
                raise ValueError(f"SIGSEGV: write to unmapped HVA {hva:#x}")
            self.host.write((pfn << PAGE_SHIFT) | (hva & (PAGE_SIZE - 1)), data[pos : pos + take])
            hva += take
            pos += take
