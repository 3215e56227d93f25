# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Where the scenarios' allocations come from: boot-time ``memblock`` and the page allocator,
reduced to what page-state work needs, with lazy acceptance of unaccepted memory.

Model-only reduction of ``mm/memblock.c`` (v6.16) and the buddy allocator of
``mm/page_alloc.c``:

* :meth:`BootMemory.memblock_alloc` allocates top-down (the x86-64 default direction) from
  the guest's RAM below ``limit`` and accepts the range it returns, as
  ``memblock_alloc_range_nid`` does since v6.5 (``accept_memory(found, size)``,
  ``mm/memblock.c``); ``memblock_alloc_low`` is the same below 4 GiB
  (``ARCH_LOW_ADDRESS_LIMIT``).
* :meth:`BootMemory.alloc_pages` hands out ``2**order`` contiguous pages.  Memory reaches
  the page allocator in ``MAX_PAGE_ORDER`` blocks (4 MiB); a block that is still
  unaccepted is accepted when the allocator first takes it, as ``__accept_page`` does
  (``accept_memory(page_to_phys(page), PAGE_SIZE << MAX_PAGE_ORDER)``, v6.16).  Blocks
  are split into free lists per order; :meth:`BootMemory.free_pages` puts a block back on
  its order's list (no buddy merging: model choice, the scenarios free what they
  allocated with the same order).

Usable RAM is the guest's e820 RAM minus the launched image, the first MiB (reserved by
``trim_bios_range`` and the real-mode trampoline) and the ``reserved`` ranges the caller
passes (the machine's MMIO windows).  Every GPA here is in bytes.

RAM in a 2 MiB unit that is only partly RAM (an e820 map from a real log, whose ranges
end anywhere) has no bit in the unaccepted-memory bitmap: the EFI stub accepts such
pieces at once (``process_unaccepted_memory``, ``drivers/firmware/efi/libstub/
unaccepted_memory.c``: a head or tail shorter than a unit, or a range shorter than two
units, goes to ``arch_accept_memory`` straight away).  The model accepts each such piece
whole when an allocation first touches it (the same pages validated before use; model
choice: the stub's work is paid for only where the boot uses it).
"""

from __future__ import annotations

from snpsim.guest.kernel import GuestKernel
from snpsim.guest.unaccepted_memory import accept_memory, arch_accept_memory
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE, PMD_SIZE

__all__ = ["BootMemory", "MAX_PAGE_ORDER", "ARCH_LOW_ADDRESS_LIMIT", "get_order"]

#: ``include/linux/mmzone.h`` (x86-64 default ``CONFIG_ARCH_FORCE_MAX_ORDER`` unset): 10.
MAX_PAGE_ORDER = 10
#: ``include/linux/memblock.h`` default ``ARCH_LOW_ADDRESS_LIMIT`` (0xffffffff, inclusive),
#: the ceiling of ``memblock_alloc_low``; here as an exclusive end, 4 GiB.
ARCH_LOW_ADDRESS_LIMIT = 1 << 32
_FIRST_MB = 1 << 20


def get_order(size: int) -> int:
    """``get_order(size)`` (``include/asm-generic/getorder.h``): the smallest order whose
    ``PAGE_SIZE << order`` holds ``size`` bytes (``size`` >= 1)."""
    return max((size - 1) >> PAGE_SHIFT, 0).bit_length()


def _partial_unit_ram(ram: list[tuple[int, int]], image_start: int, image_end: int
                      ) -> list[tuple[int, int]]:
    """The [start, end) RAM pieces of ``ram`` ((GPA, bytes) ranges) that lie in 2 MiB
    units not wholly inside one range -- no unaccepted-memory bit covers them
    (``UnacceptedMemory.for_boot``) -- outside the launched image and the first MiB."""
    out: list[tuple[int, int]] = []
    for start, size in ram:
        end = start + size
        first, last = -(-start // PMD_SIZE) * PMD_SIZE, end // PMD_SIZE * PMD_SIZE
        pieces = [(start, end)] if first >= last else [(start, first), (last, end)]
        for s, e in pieces:
            s = max(s, _FIRST_MB)
            for lo, hi in ((s, min(e, image_start)), (max(s, image_end), e)):
                if lo < hi:
                    out.append((lo, hi))
    return out


class BootMemory:
    """The free guest RAM of a scenario (see the module doc).

    ``kernel``: the guest kernel (its ``boot`` parameters give RAM and the image);
    ``reserved``: (GPA, size) ranges that are not RAM for the guest (MMIO windows).
    ``allocated`` counts bytes handed out; ``accepted`` bytes this allocator accepted.
    """

    def __init__(self, kernel: GuestKernel, reserved: tuple[tuple[int, int], ...] = ()) -> None:
        self.kernel = kernel
        boot = kernel.boot
        holes = [(0, _FIRST_MB), (boot.image_start, boot.image_end - boot.image_start), *reserved]
        free: list[tuple[int, int]] = []
        for start, size in boot.e820_ram:
            pieces = [(start, start + size)]
            for h_start, h_size in holes:
                h_end = h_start + h_size
                cut: list[tuple[int, int]] = []
                for s, e in pieces:
                    if e <= h_start or s >= h_end:
                        cut.append((s, e))
                        continue
                    if s < h_start:
                        cut.append((s, h_start))
                    if e > h_end:
                        cut.append((h_end, e))
                pieces = cut
            free.extend(pieces)
        self.free = sorted(free)
        self.free_lists: dict[int, list[int]] = {}
        self.allocated = 0
        self.accepted = 0
        #: [start, end) RAM pieces of partial 2 MiB units the EFI stub would have
        #: accepted at once and that no allocation has touched yet (module doc).
        self.stub_pieces: list[tuple[int, int]] = (
            _partial_unit_ram(boot.e820_ram, boot.image_start, boot.image_end)
            if kernel.unaccepted is not None else [])

    def _take_top_down(self, size: int, align: int, limit: int) -> int | None:
        for i in range(len(self.free) - 1, -1, -1):
            s, e = self.free[i]
            top = min(e, limit)
            base = (top - size) // align * align
            if base < s or top <= s:
                continue
            pieces = []
            if s < base:
                pieces.append((s, base))
            if base + size < e:
                pieces.append((base + size, e))
            self.free[i : i + 1] = pieces
            return base
        return None

    def _accept(self, start: int, size: int) -> None:
        end = start + size
        if self.stub_pieces and any(s < end and start < e for s, e in self.stub_pieces):
            keep = []
            for s, e in self.stub_pieces:
                if s < end and start < e:
                    arch_accept_memory(self.kernel, s, e)
                else:
                    keep.append((s, e))
            self.stub_pieces = keep
        accept_memory(self.kernel, start, size)
        self.accepted += size

    def memblock_alloc(self, size: int, align: int = PAGE_SIZE, limit: int = 1 << 52) -> int | None:
        """``memblock_alloc_try_nid``: ``size`` bytes aligned to ``align`` below ``limit``,
        top-down, accepted; the GPA, or None (the C code's NULL) when nothing fits."""
        size = -(-size // PAGE_SIZE) * PAGE_SIZE
        base = self._take_top_down(size, align, limit)
        if base is None:
            return None
        self._accept(base, size)
        self.allocated += size
        return base

    def memblock_alloc_low(self, size: int, align: int = PAGE_SIZE) -> int | None:
        """``memblock_alloc_low``: :meth:`memblock_alloc` below ``ARCH_LOW_ADDRESS_LIMIT``."""
        return self.memblock_alloc(size, align, ARCH_LOW_ADDRESS_LIMIT)

    def alloc_pages(self, order: int) -> int | None:
        """``alloc_pages(gfp, order)``: GPA of ``2**order`` contiguous, accepted pages, or
        None when RAM is exhausted.  ``order`` <= ``MAX_PAGE_ORDER``."""
        assert 0 <= order <= MAX_PAGE_ORDER
        o = order
        while o <= MAX_PAGE_ORDER and not self.free_lists.get(o):
            o += 1
        if o > MAX_PAGE_ORDER:
            block_size = PAGE_SIZE << MAX_PAGE_ORDER
            base = self._take_top_down(block_size, block_size, 1 << 52)
            if base is None:
                return None
            # __accept_page: the block is accepted when the allocator takes it.
            self._accept(base, block_size)
            self.free_lists.setdefault(MAX_PAGE_ORDER, []).append(base)
            o = MAX_PAGE_ORDER
        block = self.free_lists[o].pop()
        while o > order:  # expand(): split, keep the low half, free the high half
            o -= 1
            self.free_lists.setdefault(o, []).append(block + (PAGE_SIZE << o))
        self.allocated += PAGE_SIZE << order
        return block

    def free_pages(self, gpa: int, order: int) -> None:
        """``__free_pages``: give back a block from :meth:`alloc_pages` (no merging)."""
        self.free_lists.setdefault(order, []).append(gpa)
        self.allocated -= PAGE_SIZE << order
