# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``/dev/mem`` reads of guest-physical memory, from a user task or from the kernel.

Mirrors ``drivers/char/mem.c`` (``read_mem`` / ``mmap_mem``) with x86's
``phys_mem_access_encrypted`` -> ``arch_memremap_can_ram_remap`` ->
``memremap_should_map_decrypted`` (``arch/x86/mm/ioremap.c``): in an SEV guest, E820
reserved, ACPI and NVS areas -- such as the BIOS area at 0xFE000 -- are mapped
*encrypted* (C=1), v6.16/6.17.  If that memory was never validated, the access raises
#VC 0x404; from user mode the #VC handler sends SIGBUS (BUS_OBJERR), from kernel mode it
terminates the guest (bug report R16).

Model choices: the access goes through the direct map with C=1 (the C-bit is what
matters, not which kernel or user PTE holds it); user mode is CPL 3 on the vCPU for the
duration of the access; the task's death is the :class:`~snpsim.guest.sev_vc.UserSignal`
the handler raises, returned here instead of the data.
"""

from __future__ import annotations

from snpsim.trace.record import traced

from .kernel import GuestKernel, __va, this_cpu
from .sev_vc import UserSignal

__all__ = ["devmem_read"]


@traced("guest")
def devmem_read(kernel: GuestKernel, paddr: int, n: int, user: bool = True) -> bytes | UserSignal:
    """Read ``n`` bytes of guest-physical memory at GPA ``paddr`` through ``/dev/mem``,
    mapped encrypted as an SEV guest maps reserved areas; ``user``: from a user task
    (CPL 3), else from kernel mode.  Returns the bytes, or the :class:`UserSignal`
    (SIGBUS, BUS_OBJERR) the user task got.  A kernel-mode #VC it cannot handle
    terminates the guest (never returns)."""
    cpu = this_cpu(kernel)
    old = getattr(cpu, "cpl", 0)
    if user:
        cpu.cpl = 3  # type: ignore[attr-defined]  # sysret to the task
    try:
        return cpu.read(__va(kernel, paddr), n)
    except UserSignal as sig:
        return sig
    finally:
        if user:
            cpu.cpl = old  # type: ignore[attr-defined]
