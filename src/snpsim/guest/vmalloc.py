# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The vmalloc area, reduced to ``vmap`` of given pages: the aliases CPA must follow.

Mirrors ``mm/vmalloc.c`` (``vmap``, ``is_vmalloc_addr``, ``vmalloc_to_pfn``) for 4-level
paging without KASLR, v6.16/6.17: ``VMALLOC_START`` 0xffffc90000000000, 32 TiB
(Documentation/arch/x86/x86_64/mm.rst; the constant is in ``spec/pgtable_64_types.py``).
A vmap'ed page has two kernel mappings: its vmalloc PTE and its direct-map PTE; ``__set_pages_state`` never builds 2M PSC entries for vmalloc addresses
and ``cpa_process_alias`` changes the direct-map alias too (linux-guest.md 2.3 item 6,
3.3).

Model choices: ``vmap`` takes GPAs rather than ``struct page`` pointers; the virtual
range comes from a bump allocator over the vmalloc area (no guard page, no freeing);
page-table pages come from the kernel's page allocator; mappings are 4 KiB with
``PAGE_KERNEL`` (C-bit set).
"""

from __future__ import annotations

from snpsim.spec.pgtable_64_types import VMALLOC_END, VMALLOC_START
from snpsim.spec.pgtable_types import (
    _KERNPG_TABLE_NOENC,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_RW,
    pgd_index,
    pmd_index,
    pte_index,
    pud_index,
)
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE
from snpsim.trace.record import traced

from .kernel import GuestKernel, __va, panic, this_cpu
from .set_memory import _PAGE_ENC, lookup_address, pte_pfn_mask

__all__ = ["is_vmalloc_addr", "vmalloc_to_pfn", "vmap"]

_PAGE_KERNEL_NOENC = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL | _PAGE_NX


def is_vmalloc_addr(x: int) -> bool:
    """``is_vmalloc_addr(x)``: GVA ``x`` lies in [VMALLOC_START, VMALLOC_END]."""
    return VMALLOC_START <= x <= VMALLOC_END


def vmalloc_to_pfn(kernel: GuestKernel, vmalloc_addr: int) -> int:
    """``vmalloc_to_pfn(addr)``: the PFN the vmalloc PTE of GVA ``vmalloc_addr`` maps
    (walks ``init_mm``).  Raises AssertionError (a model bug) if it is not mapped."""
    kpte, _level = lookup_address(kernel, vmalloc_addr)
    assert kpte is not None, f"vmalloc_to_pfn: {vmalloc_addr:#x} not mapped"
    return (this_cpu(kernel).read_u64(kpte) & pte_pfn_mask(kernel)) >> PAGE_SHIFT


def _table(kernel: GuestKernel, entry_va: int) -> int:
    """The direct-map GVA of the table an upper-level entry points to, allocating and
    installing a zeroed page-table page when the entry is empty."""
    cpu = this_cpu(kernel)
    e = cpu.read_u64(entry_va)
    if e & _PAGE_PRESENT:
        return __va(kernel, e & pte_pfn_mask(kernel))
    assert kernel.page_alloc is not None
    gpa = kernel.page_alloc.alloc_page()
    if gpa is None:
        panic(kernel, "vmap: out of memory for page tables")
        raise AssertionError("unreachable")
    cpu.write(__va(kernel, gpa), bytes(PAGE_SIZE))
    cpu.write_u64(entry_va, gpa | _KERNPG_TABLE_NOENC | _PAGE_ENC(kernel))
    return __va(kernel, gpa)


@traced("guest")
def vmap(kernel: GuestKernel, gpas: list[int], align: int = PAGE_SIZE) -> int:
    """``vmap(pages, count, VM_MAP, PAGE_KERNEL)`` (mm/vmalloc.c): map the 4 KiB pages at
    GPAs ``gpas`` (in order) at consecutive GVAs of the vmalloc area, starting at the
    next address aligned to ``align`` bytes; 4 KiB PTEs, C-bit set.  Returns the GVA."""
    cpu = this_cpu(kernel)
    start = -(-kernel.vmalloc_next // align) * align
    va = start
    for gpa in gpas:
        pud = _table(kernel, kernel.pgd + 8 * pgd_index(va))
        pmd = _table(kernel, pud + 8 * pud_index(va))
        pt = _table(kernel, pmd + 8 * pmd_index(va))
        cpu.write_u64(pt + 8 * pte_index(va), (gpa & ~(PAGE_SIZE - 1)) | _PAGE_KERNEL_NOENC | _PAGE_ENC(kernel))
        va += PAGE_SIZE
    kernel.vmalloc_next = va
    return start
