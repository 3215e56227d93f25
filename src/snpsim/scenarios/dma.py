# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Coherent DMA buffers of an SEV-SNP guest, and the ``dma`` scenario.

Mirrors, reduced to their page-state work, ``dma_direct_alloc`` and ``dma_direct_free``
(``kernel/dma/direct.c``, v6.16), which ``dma_alloc_coherent``/``dma_free_coherent``
reach for a device without an IOMMU (every virtio device of an SNP guest):

* allocation: ``size = PAGE_ALIGN(size)``, pages from the page allocator
  (``__dma_direct_alloc_pages``: ``get_order(size)``), then, because
  ``force_dma_unencrypted(dev)`` is true for every device of an SEV guest
  (``arch/x86/mm/mem_encrypt.c``), ``dma_set_decrypted`` ->
  ``set_memory_decrypted(vaddr, PFN_UP(size))``; on failure the pages are leaked (not
  freed: they may be in a mixed state) and the call returns NULL;
* free: ``dma_set_encrypted`` -> ``set_memory_encrypted(vaddr, PFN_UP(size))``; on
  failure the pages are leaked; else they go back to the page allocator.

Not modelled: the atomic pools used by non-blocking allocations
(``dma_direct_use_pool``), CMA, ``DMA_ATTR_NO_KERNEL_MAPPING``, remapping.  ``dev`` is not
an argument (every device is treated alike).

The ``dma`` scenario runs ``cycles`` rounds; each allocates one buffer of every size in
``sizes`` (in that order), writes to it, and frees them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from snpsim.guest.kernel import GuestKernel, __va
from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
from snpsim.hw.ports import GuestPort
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE
from snpsim.trace.record import traced

from .memblock import BootMemory, get_order

__all__ = ["DmaBuffer", "dma_alloc_coherent", "dma_free_coherent", "DMA_SIZES", "DmaResult",
           "dma_workload"]

#: Mixed buffer sizes of the ``dma`` scenario, bytes: a virtio control ring, a split ring
#: of 256 entries (6726 bytes), a 64 KiB and a 1 MiB buffer, and a 2 MiB-aligned 4 MiB
#: one (2M PSC entries).
DMA_SIZES: tuple[int, ...] = (1734, 6726, 64 << 10, 1 << 20, 4 << 20)


@dataclass
class DmaBuffer:
    """One coherent buffer: ``vaddr`` (direct-map GVA), ``gpa`` (the DMA address: no
    IOMMU), ``size`` as asked, ``order`` of the pages behind it."""

    vaddr: int
    gpa: int
    size: int
    order: int


def _page_align(size: int) -> int:
    return (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


@traced("guest")
def dma_alloc_coherent(kernel: GuestKernel, mem: BootMemory, size: int) -> DmaBuffer | None:
    """``dma_alloc_coherent(dev, size, &dma_handle, GFP_KERNEL)`` -> ``dma_direct_alloc``
    for an SEV guest (see the module doc).  ``mem`` is the page allocator.  Returns the
    buffer, or None (NULL) when no pages are left or ``set_memory_decrypted`` fails."""
    size = _page_align(size)
    order = get_order(size)
    gpa = mem.alloc_pages(order)
    if gpa is None:
        return None
    vaddr = int(__va(kernel, gpa))
    # dma_set_decrypted(): force_dma_unencrypted() is true for an SEV guest.
    if set_memory_decrypted(kernel, vaddr, size >> PAGE_SHIFT):
        return None  # out_leak_pages: the pages may be in a mixed state
    return DmaBuffer(vaddr, gpa, size, order)


@traced("guest")
def dma_free_coherent(kernel: GuestKernel, mem: BootMemory, buf: DmaBuffer) -> int:
    """``dma_free_coherent`` -> ``dma_direct_free`` for an SEV guest: re-encrypt with
    ``set_memory_encrypted(vaddr, PFN_UP(size))``, then free the pages; on failure the
    pages are leaked.  Returns the ``set_memory_encrypted`` result (0 or -errno)."""
    ret = set_memory_encrypted(kernel, buf.vaddr, _page_align(buf.size) >> PAGE_SHIFT)
    if ret:
        return ret  # leak the pages: they may be in a mixed state
    mem.free_pages(buf.gpa, buf.order)
    return 0


@dataclass
class DmaResult:
    """What the ``dma`` workload did: ``allocated`` and ``freed`` buffers, ``failed``
    allocations or frees, ``bytes_shared`` (sum of the buffer sizes made shared)."""

    allocated: int = 0
    freed: int = 0
    failed: int = 0
    bytes_shared: int = 0
    phase: str = ""
    errors: list[str] = field(default_factory=list)


def dma_workload(cycles: int, sizes: tuple[int, ...], result: DmaResult,
                 reserved: tuple[tuple[int, int], ...] = ()
                 ) -> Callable[[GuestKernel, GuestPort], None]:
    """The ``dma`` scenario's guest workload (see the module doc); results go to ``result``.
    ``reserved``: GPA ranges that are not RAM (the machine's MMIO windows)."""

    def workload(kernel: GuestKernel, cpu: GuestPort) -> None:
        mem = BootMemory(kernel, reserved)
        for cycle in range(cycles):
            result.phase = f"dma cycle {cycle + 1}/{cycles}"
            bufs: list[DmaBuffer] = []
            for size in sizes:
                buf = dma_alloc_coherent(kernel, mem, size)
                if buf is None:
                    result.failed += 1
                    result.errors.append(f"dma_alloc_coherent({size}) returned NULL")
                    continue
                cpu.write(buf.vaddr, b"dma buffer")
                bufs.append(buf)
                result.allocated += 1
                result.bytes_shared += buf.size
            for buf in bufs:
                if dma_free_coherent(kernel, mem, buf):
                    result.failed += 1
                    result.errors.append(f"dma_free_coherent({buf.gpa:#x}) failed")
                else:
                    result.freed += 1

    return workload
