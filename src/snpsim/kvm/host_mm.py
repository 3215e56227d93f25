# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A minimal host kernel memory manager: the page allocator that hands out SPAs and the
anonymous memory of the VMM process (HVAs).

Model-only in shape (Linux ``mm/page_alloc.c``, ``mm/mmap.c``, ``mm/madvise.c``), kept to
what the page-state protocol needs:

* :class:`PageAllocator`: ``alloc_page`` / ``alloc_pages`` / ``__free_pages`` over PFNs held
  as extents (a bump pointer and a free-extent map), LIFO reuse of the last pages freed
  (so a page freed by a hole punch is what the next allocation gets, as with the per-CPU
  free lists), and ``snp_leak_pages``' "never reuse" extents.  New pages read as zero
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snpsim.spec.mman import MADV_DONTNEED, MADV_REMOVE
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE

__all__ = ["PageAllocator", "HostMm", "Vma", "HVA_BASE", "PFN_BASE"]

#: The top of the mmap area (``mm->mmap_base``, model-only: a typical x86-64 value,
#: below the stack of a 4-level address space).  Mappings are placed top-down beneath
#: it, as Linux's default layout does (``arch_get_unmapped_area_topdown``), so a 1 TiB
#: guest's RAM ends below ``TASK_SIZE_MAX`` whatever its size.
HVA_BASE = 0x7F00_0000_0000
#: Alignment of an anonymous mapping of 2 MiB or more (THP alignment, ``mm/mmap.c``
#: ``__get_unmapped_area`` -> ``thp_get_unmapped_area``, v6.7+) and the gap the model
#: leaves between two mappings.
_MAP_ALIGN = 2 << 20
#: First PFN the allocator hands out (model-only: SPA 1 GiB, above the low firmware area).
PFN_BASE = 0x40000


#: Pages per chunk of a mapping's page array (one 2 MiB range of HVAs).
_CHUNK = 512
#: Most recently freed single pages remembered for LIFO reuse (the bound).
_RECENT = 64


class PageAllocator:
    """The host's physical page allocator (model-only).

    ``host`` is the host port (used to zero pages).  State is sized by extents, not pages:
    a bump pointer (``_next``: PFNs at and above it were never handed out), the free PFNs
    below it as an extent map (:class:`~snpsim.kvm.kvm_host.RangeMap`, value 1), the
    leaked PFNs (``snp_leak_pages``) as another, a count of pages in use, and a bounded
    stack of the last ``_RECENT`` single pages freed, so that a page freed by a hole punch
    is what the next ``alloc_page`` gets (as with the per-CPU free lists).  A 2 MiB block
    freed whole (``free_pages(pfn, 9)``) is found again by ``alloc_pages(9)``.
    """

    def __init__(self, host: Any, pfn_base: int = PFN_BASE) -> None:
        from .kvm_host import RangeMap

        self.host = host
        self._base = pfn_base
        self._next = pfn_base
        self._free = RangeMap()
        self._leaked = RangeMap()
        self._recent: list[int] = []
        self.nr_allocated = 0

    # -- queries -----------------------------------------------------------------------
    def is_allocated(self, pfn: int) -> bool:
        """True when ``pfn`` was handed out and not freed (model-only)."""
        return self._base <= pfn < self._next and not self._free.get(pfn)

    def is_leaked(self, pfn: int) -> bool:
        """True when ``snp_leak_pages`` took ``pfn`` out of circulation."""
        return bool(self._leaked.get(pfn))

    @property
    def leaked(self) -> frozenset[int]:
        """The PFNs leaked so far (model-only, expanded from the extents: for tests)."""
        return frozenset(p for s, e, v in self._leaked.runs(0, self._next) if v
                         for p in range(s, e))

    def allocated_runs(self) -> Iterator[tuple[int, int]]:
        """Model-only: ``(start, end)`` PFN runs handed out and neither freed nor leaked,
        in PFN order (extents, not pages: for teardown checks)."""
        for s, e, free in self._free.runs(self._base, self._next):
            if free:
                continue
            for a, b, leaked in self._leaked.runs(s, e):
                if not leaked:
                    yield a, b

    def is_free(self, pfn: int) -> bool:
        """Model-only: True when ``pfn`` was handed out once and is back in the free
        pool (not allocated, not leaked)."""
        return self._base <= pfn < self._next and bool(self._free.get(pfn))

    @property
    def high_water(self) -> int:
        """The first PFN never handed out (model-only: how far the allocator has grown)."""
        return self._next

    def bytes_used(self) -> int:
        """Model-only estimate of the allocator's own bookkeeping: three list slots and
        three ints per free or leaked extent, the recent stack."""
        return 3 * 36 * (self._free.nruns() + self._leaked.nruns()) + 36 * len(self._recent)

    # -- allocation --------------------------------------------------------------------
    def alloc_page(self) -> int:
        """Allocate one zeroed 4 KiB page; returns its PFN (``alloc_page(GFP_ZERO)``)."""
        pfn = -1
        while self._recent:
            cand = self._recent.pop()
            if self._free.get(cand):
                pfn = cand
                break
        if pfn < 0:
            for s, _e, v in self._free.runs(self._base, self._next):
                if v:
                    pfn = s
                    break
        if pfn < 0:
            pfn = self._next
            self._next += 1
        else:
            self._free.set(pfn, pfn + 1, 0)
        self.nr_allocated += 1
        self.host.zero_page(pfn << PAGE_SHIFT)
        return pfn

    def alloc_pages(self, order: int) -> int:
        """Allocate ``2**order`` contiguous zeroed pages aligned to their size (the buddy
        allocator's ``alloc_pages(GFP_ZERO, order)``); returns the first PFN.  Model: the
        lowest free aligned block below the bump pointer, else a new block above it (the
        PFNs skipped for alignment become free)."""
        n = 1 << order
        base = -1
        for s, e, v in self._free.runs(self._base, self._next):
            if v:
                b = (s + n - 1) & ~(n - 1)
                if b + n <= e:
                    base = b
                    break
        if base < 0:
            base = (self._next + n - 1) & ~(n - 1)
            if base > self._next:
                self._free.set(self._next, base, 1)
            self._next = base + n
        else:
            self._free.set(base, base + n, 0)
        self.nr_allocated += n
        for pfn in range(base, base + n):
            self.host.zero_page(pfn << PAGE_SHIFT)
        return base

    def free_pages(self, pfn: int, order: int) -> None:
        """Return the ``2**order`` pages at ``pfn`` (``__free_pages``).  Leaked pages are
        never reused.  Freeing a page that is not allocated is a model bug (assert)."""
        n = 1 << order
        assert self._base <= pfn and pfn + n <= self._next and self._free.all_equal(pfn, pfn + n, 0), \
            f"double free of pfn {pfn:#x}"
        self.nr_allocated -= n
        for s, e, v in list(self._leaked.runs(pfn, pfn + n)):
            if not v:
                self._free.set(s, e, 1)
        if n == 1 and not self._leaked.get(pfn):
            if len(self._recent) >= _RECENT:
                del self._recent[0]
            self._recent.append(pfn)

    def free_page(self, pfn: int) -> None:
        """Return ``pfn`` to the allocator (``__free_page``)."""
        self.free_pages(pfn, 0)

    def free_pfns(self, pfns: np.ndarray) -> None:
        """Model-only: free many single pages at once (``release_pages``), grouped into
        runs of consecutive PFNs; same result as ``free_page`` on each in order."""
        if not len(pfns):
            return
        order = np.sort(pfns)
        breaks = np.flatnonzero(np.diff(order) != 1) + 1
        for run in np.split(order, breaks):
            s, e = int(run[0]), int(run[-1]) + 1
            assert e <= self._next and self._free.all_equal(s, e, 0), f"double free of pfn {s:#x}"
            self.nr_allocated -= e - s
            for a, b, v in list(self._leaked.runs(s, e)):
                if not v:
                    self._free.set(a, b, 1)
        for pfn in pfns[-_RECENT:].tolist():
            if not self._leaked.get(pfn):
                if len(self._recent) >= _RECENT:
                    del self._recent[0]
                self._recent.append(pfn)

    def leak_page(self, pfn: int) -> None:
        """Take ``pfn`` out of circulation for good (``snp_leak_pages``)."""
        self._leaked.set(pfn, pfn + 1, 1)
        self._free.set(pfn, pfn + 1, 0)


@dataclass
class Vma:
    """One anonymous mapping: ``start`` HVA, ``length`` bytes, ``chunks`` 2 MiB chunk index
    (within the mapping) -> array of 512 PFNs (-1: not populated; ``int32`` while PFNs
    fit, else ``int64``).  4 bytes per page of a chunk that was touched; nothing for the
    rest."""

    start: int
    length: int
    chunks: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def end(self) -> int:
        """First HVA past the mapping."""
        return self.start + self.length

    def pfn_at(self, hva: int) -> int:
        """The PFN populated at ``hva``, or -1 (model-only)."""
        i = (hva - self.start) >> PAGE_SHIFT
        arr = self.chunks.get(i >> 9)
        return -1 if arr is None else arr.item(i & (_CHUNK - 1))

    def set_pfn(self, hva: int, pfn: int) -> None:
        """Record ``pfn`` as populated at ``hva`` (model-only)."""
        i = (hva - self.start) >> PAGE_SHIFT
        arr = self.chunks.get(i >> 9)
        if arr is None:
            arr = self.chunks[i >> 9] = np.full(_CHUNK, -1, dtype=np.int32)
        if pfn > 0x7FFF_FFFF and arr.dtype != np.int64:
            arr = self.chunks[i >> 9] = arr.astype(np.int64)
        arr[i & (_CHUNK - 1)] = pfn

    def take_range(self, hva: int, end: int) -> np.ndarray:
        """Unpopulate ``[hva, end)`` (clipped to the mapping) and return the PFNs that
        were there, in HVA order (model-only).  Visits only chunks that exist."""
        i0 = (max(hva, self.start) - self.start) >> PAGE_SHIFT
        i1 = (min(end, self.end) - self.start) >> PAGE_SHIFT
        if i0 >= i1:
            return np.empty(0, dtype=np.int64)
        h0, h1 = i0 >> 9, ((i1 - 1) >> 9) + 1
        keys: list[int] | range
        keys = range(h0, h1) if h1 - h0 <= len(self.chunks) else sorted(
            h for h in self.chunks if h0 <= h < h1)
        out = []
        for h in keys:
            arr = self.chunks.get(h)
            if arr is None:
                continue
            lo = max(i0 - (h << 9), 0)
            hi = min(i1 - (h << 9), _CHUNK)
            part = arr[lo:hi]
            got = part[part >= 0]
            if len(got):
                out.append(got.astype(np.int64))
                part[:] = -1
                if not (arr >= 0).any():
                    del self.chunks[h]
        return np.concatenate(out) if out else np.empty(0, dtype=np.int64)

    def bytes_used(self) -> int:
        """Bytes of the page arrays (model-only)."""
        return sum(a.nbytes for a in self.chunks.values())


class HostMm:
    """The VMM process's address space (``struct mm_struct``), anonymous memory only."""

    def __init__(self, host: Any, allocator: PageAllocator) -> None:
        self.host = host
        self.allocator = allocator
        self.vmas: list[Vma] = []
        self._next_hva = HVA_BASE

    def mmap(self, length: int) -> int:
        """``mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS)``: returns
        the HVA (bytes, page aligned; 2 MiB aligned, placed top-down below
        :data:`HVA_BASE`), -EINVAL for a zero length or -ENOMEM when no room is left.
        Pages are allocated on first touch."""
        if length <= 0:
            return -errno.EINVAL
        length = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        start = (self._next_hva - length) & ~(_MAP_ALIGN - 1)
        if start < _MAP_ALIGN:
            return -errno.ENOMEM  # the address space is used up
        vma = Vma(start, length)
        self._next_hva = start - _MAP_ALIGN  # a gap below, so mappings never adjoin
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
        pfn = vma.pfn_at(hva)
        if pfn < 0:
            pfn = self.allocator.alloc_page()
            vma.set_pfn(hva, pfn)
        return pfn

    def lookup_user_page(self, hva: int) -> int | None:
        """The PFN backing ``hva`` if populated, without faulting (model-only)."""
        vma = self.find_vma(hva)
        if vma is None:
            return None
        pfn = vma.pfn_at(hva)
        return None if pfn < 0 else pfn

    def madvise(self, hva: int, length: int, advice: int) -> int:
        """``madvise(hva, length, advice)`` for MADV_DONTNEED (4) and MADV_REMOVE (9):
        free the pages; the next touch reads zeros.  Returns 0, -EINVAL (unaligned HVA,
        unknown advice, a length whose page-aligned value wraps, a range that wraps
        the u64 space) or -ENOMEM (range not mapped); a zero length is 0.  Source:
        mm/madvise.c (``madvise_behavior_valid``, ``do_madvise``)."""
        if advice not in (MADV_DONTNEED, MADV_REMOVE) or hva & (PAGE_SIZE - 1):
            return -errno.EINVAL
        aligned = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & 0xFFFF_FFFF_FFFF_FFFF
        if length and not aligned:
            return -errno.EINVAL
        end = hva + aligned
        if end > 0xFFFF_FFFF_FFFF_FFFF:
            return -errno.EINVAL
        # Every page of the range must be mapped (else -ENOMEM, nothing freed past the
        # hole, as the per-VMA walk of madvise stops there).
        a = hva
        while a < end:
            vma = self.find_vma(a)
            if vma is None:
                return -errno.ENOMEM
            stop = min(end, vma.end)
            self.allocator.free_pfns(vma.take_range(a, stop))
            a = stop
        return 0

    def bytes_used(self) -> int:
        """Bytes of the mappings' page arrays (model-only)."""
        return sum(v.bytes_used() for v in self.vmas)

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
