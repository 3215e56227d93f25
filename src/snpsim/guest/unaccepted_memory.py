"""Unaccepted memory: the bitmap in 2 MiB units and ``accept_memory``.

Mirrors ``mm/unaccepted_memory.c`` (``accept_memory``, ``range_contains_unaccepted_memory``,
the ``accepting_list`` that keeps two CPUs from accepting the same unit) and
``arch/x86/include/asm/unaccepted_memory.h`` (``arch_accept_memory`` -> ``snp_accept_memory``
for SNP), v6.16/6.17 (linux-guest.md 8.1).  The EFI stub's ``unit_size`` is 2 MiB
(``PMD_SIZE``).

Model choice: ``cpu_relax()`` in the overlap wait is a HLT, the only way a vCPU context
can let another one run in the model; Linux spins with PAUSE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snpsim.spec.units import PMD_SIZE
from snpsim.trace.record import traced

from .kernel import BootParams, GuestKernel, this_cpu

__all__ = ["UnacceptedMemory", "arch_accept_memory", "accept_memory", "range_contains_unaccepted_memory"]


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
        """All RAM units outside the launched (pre-validated) image are unaccepted."""
        nbits = boot.ram_size // PMD_SIZE
        bm = bytearray((nbits + 7) // 8)
        for i in range(nbits):
            a = i * PMD_SIZE
            if not boot.image_start <= a < boot.image_end:
                bm[i // 8] |= 1 << (i % 8)
        return cls(PMD_SIZE, 0, nbits, bm)

    def test(self, i: int) -> bool:
        """Bit ``i`` is set (unit unaccepted)."""
        return bool(self.bitmap[i // 8] >> (i % 8) & 1)

    def clear(self, i: int) -> None:
        """Clear bit ``i`` (unit accepted)."""
        self.bitmap[i // 8] &= ~(1 << (i % 8)) & 0xFF


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
    """``accept_memory(start, size)``: accept every unaccepted 2 MiB unit touching GPAs
    [start, start + size): wait while another CPU's accepting range overlaps, add ours to
    ``accepting_list``, call ``arch_accept_memory`` for each run of set bits (with the
    lock dropped), clear the bits, remove our range."""
    u: UnacceptedMemory | None = kernel.unaccepted
    if u is None:
        return
    end = start + size
    range_start = max((start - u.phys_base) // u.unit_size, 0)
    range_end = min(-(-(end - u.phys_base) // u.unit_size), u.nbits)
    if range_start >= range_end:
        return
    # Check if anybody works on accepting the same range of the memory.
    while any(s < range_end and range_start < e for s, e in u.accepting_list):
        this_cpu(kernel).hlt()  # cpu_relax(); goto retry
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
