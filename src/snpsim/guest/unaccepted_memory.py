# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Unaccepted memory: the bitmap in 2 MiB units and ``accept_memory``.

Mirrors ``mm/unaccepted_memory.c`` (``accept_memory``, ``range_contains_unaccepted_memory``,
the ``accepting_list`` that keeps two CPUs from accepting the same unit) and
``arch/x86/include/asm/unaccepted_memory.h`` (``arch_accept_memory`` -> ``snp_accept_memory``
for SNP), v6.16/6.17 (linux-guest.md 8.1).  The EFI stub's ``unit_size`` is 2 MiB
(``PMD_SIZE``).

Model choice: Linux's overlap wait spins (``goto retry``) while another CPU accepts;
in the model a guest context runs until it exits, so each retry goes through
:func:`snpsim.guest.smp.cpu_relax` (a PAUSE exit when the platform offers one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snpsim.spec.units import PMD_SIZE
from snpsim.trace.record import traced

from .kernel import BootParams, GuestKernel, __va, overridable, this_cpu
from .smp import cpu_relax

__all__ = [
    "UnacceptedMemory",
    "arch_accept_memory",
    "accept_memory",
    "range_contains_unaccepted_memory",
    "reserve_and_init",
]


@dataclass
class UnacceptedMemory:
    """``struct efi_unaccepted_memory``: ``unit_size`` (bytes), ``phys_base`` (GPA),
    ``bitmap`` (one bit per unit, set = unaccepted) and the ``accepting_list`` of unit
    ranges [start, end) being accepted."""

    unit_size: int
    phys_base: int
    nbits: int
    bitmap: bytearray
    accepting_list: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def for_boot(cls, boot: BootParams) -> UnacceptedMemory:
        """The bitmap the EFI stub hands over (``allocate_unaccepted_bitmap`` /
        ``process_unaccepted_memory``, drivers/firmware/efi/libstub/unaccepted_memory.c):
        ``phys_base`` 0, one bit per 2 MiB unit up to the end of the highest e820 RAM
        range (so its size follows the GPA span in units, 64 KiB per TiB), a bit set for
        each unit wholly inside an e820 RAM range and outside the launched
        (pre-validated) image.  Units that are not wholly RAM -- holes, MMIO, the legacy
        area below 1 MiB -- never get a bit, so nothing there is ever accepted.  (The
        stub accepts the RAM part of such a unit at once; the model leaves it
        unvalidated and unused: with the q35 layout only the first 2 MiB is such a
        unit.)"""
        ram = boot.e820_ram or [(0, boot.ram_size)]
        top = max(s + n for s, n in ram)
        nbits = -(-top // PMD_SIZE)
        bm = bytearray((nbits + 7) // 8)
        img0, img1 = boot.image_start // PMD_SIZE, -(-boot.image_end // PMD_SIZE)
        for start, size in ram:
            first, last = -(-start // PMD_SIZE), (start + size) // PMD_SIZE
            for lo, hi in ((first, min(last, img0)), (max(first, img1), last)):
                _set_bits(bm, lo, hi)
        return cls(PMD_SIZE, 0, nbits, bm)

    def test(self, i: int) -> bool:
        """Bit ``i`` is set (unit unaccepted)."""
        return bool(self.bitmap[i // 8] >> (i % 8) & 1)

    def clear(self, i: int) -> None:
        """Clear bit ``i`` (unit accepted)."""
        self.bitmap[i // 8] &= ~(1 << (i % 8)) & 0xFF


def _set_bits(bm: bytearray, lo: int, hi: int) -> None:
    """Set bits ``[lo, hi)`` of ``bm`` (whole bytes at once)."""
    if lo >= hi:
        return
    while lo < hi and lo % 8:
        bm[lo // 8] |= 1 << (lo % 8)
        lo += 1
    while hi > lo and hi % 8:
        hi -= 1
        bm[hi // 8] |= 1 << (hi % 8)
    if lo < hi:
        bm[lo // 8 : hi // 8] = b"\xff" * ((hi - lo) // 8)


@traced("guest")
def arch_accept_memory(kernel: GuestKernel, start: int, end: int) -> None:
    """``arch_accept_memory(start, end)``: for SNP, ``snp_accept_memory`` over GPAs
    [start, end)."""
    from .sev_core import snp_accept_memory

    snp_accept_memory(kernel, start, end)


def range_contains_unaccepted_memory(kernel: GuestKernel, start: int, size: int) -> bool:
    """``range_contains_unaccepted_memory(start, size)``: any unit of GPAs
    [start, start + size) still unaccepted."""
    u: UnacceptedMemory | None = kernel.unaccepted
    if u is None:
        return False
    first = (start - u.phys_base) // u.unit_size
    last = -(-(start + size - u.phys_base) // u.unit_size)
    return any(u.test(i) for i in range(max(first, 0), min(last, u.nbits)))


@traced("guest")
def accept_memory(kernel: GuestKernel, start: int, size: int) -> None:
    """``accept_memory(start, size)`` (drivers/firmware/efi/unaccepted_memory.c; 6.12+
    takes a size): accept every unaccepted 2 MiB unit touching GPAs
    [start, start + size) -- plus the next unit when the range ends on a unit boundary
    (the ``load_unaligned_zeropad`` guard) -- clamped to the bitmap: wait while another
    CPU's accepting range overlaps (Linux drops the lock and retries; the model's retry
    is :func:`~snpsim.guest.smp.cpu_relax`), add ours to ``accepting_list``, call
    ``arch_accept_memory`` for each run of set bits (lock dropped, IRQs still off), clear
    the bits, remove our range.  Two CPUs therefore never accept the same unit twice."""
    u: UnacceptedMemory | None = kernel.unaccepted
    if u is None:
        return
    end = start + size
    # Memory below the bitmap's base was never unaccepted: clip it off.
    start = max(start, u.phys_base)
    if end < u.phys_base:
        return
    # Work in byte offsets from the bitmap's base.
    start -= u.phys_base
    end -= u.phys_base
    # load_unaligned_zeropad() can read across a page boundary: a range that ends on a
    # unit boundary also accepts the next unit (the "guard" unit).
    if not end % u.unit_size:
        end += u.unit_size
    # The guard unit, or a range past the end, must not reach beyond the last bit.
    end = min(end, u.nbits * u.unit_size)
    range_start = start // u.unit_size
    range_end = -(-end // u.unit_size)
    if range_start >= range_end:
        return
    # Wait while another CPU's in-flight acceptance shares a unit with ours (ranges are
    # compared in whole units).
    while any(e > range_start and s < range_end for s, e in u.accepting_list):
        # Model: spin (PAUSE) and look again; Linux drops the lock while it waits.
        kernel.accept_waits += 1
        cpu_relax(kernel)
    rng = (range_start, range_end)
    u.accepting_list.append(rng)
    i = range_start
    while i < range_end:
        if not u.test(i):
            i += 1
            continue
        j = i
        while j < range_end and u.test(j):
            j += 1
        phys_start = i * u.unit_size + u.phys_base
        phys_end = j * u.unit_size + u.phys_base
        arch_accept_memory(kernel, phys_start, phys_end)
        for b in range(i, j):
            u.clear(b)
        i = j
    u.accepting_list.remove(rng)


@traced("guest")
@overridable
def reserve_and_init(kernel: GuestKernel, gpa: int, data: bytes) -> None:
    """Model-only: a boot-time consumer of RAM that may still be unaccepted reserves GPAs
    ``[gpa, gpa + len(data))`` and initialises them with ``data`` through the direct map
    -- the shape of Linux's page allocator, which accepts a page before handing it out
    (``accept_page``/``cond_accept_memory``, mm/page_alloc.c), and of OVMF's
    ``ReserveEmuVariableNvStore`` in bug report R11.  Correct order: ``accept_memory``,
    then the write.  Override point (``"R11-buggy"`` writes first)."""
    accept_memory(kernel, gpa, len(data))
    this_cpu(kernel).write(__va(kernel, gpa), data)
