# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The CPA engine and the encryption entry points: ``set_memory_encrypted/decrypted``.

Mirrors ``arch/x86/mm/pat/set_memory.c`` (``set_memory_encrypted``,
``set_memory_decrypted``, ``__set_memory_enc_dec``, ``__set_memory_enc_pgtable``,
``cpa_flush``, ``__change_page_attr_set_clr``, ``__change_page_attr``,
``__should_split_large_page``, ``split_large_page``, ``cpa_process_alias``) and
``lookup_address`` (``arch/x86/mm/pat/set_memory.c``), with the 6.11+ int-returning
hooks (linux-guest.md 2.1-2.4).  The page tables are the guest's own, in guest memory,
read and written through the direct map; the C-bit is ``_PAGE_ENC`` = 1 << cbit.

``mem_enc_lock`` and ``set_memory_enc_stop_conversion`` (v6.11+, for kexec) are modelled.
Not modelled (documented): ``static_protections``/``verify_rwx`` (no text/rodata in
the model), ``kmap_flush_unused`` and
``vm_unmap_aliases`` (no kmaps, no lazily freed vmap areas).  vmalloc aliases are
followed (:mod:`snpsim.guest.vmalloc`).  The TLB-flush IPI is modelled by
flushing the TLB of every vCPU the kernel has brought up.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from snpsim.spec.page_64_types import PAGE_OFFSET, __START_KERNEL_map
from snpsim.spec.pgtable_types import (
    _KERNPG_TABLE_NOENC,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PSE,
    PG_LEVEL_1G,
    PG_LEVEL_2M,
    PG_LEVEL_4K,
    PTE_PFN_MASK,
    pmd_index,
    pte_index,
    pud_index,
)
from snpsim.spec.pgtable_types import pgd_index as _pgd_index
from snpsim.spec.tlb import tlb_single_page_flush_ceiling
from snpsim.spec.units import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PMD_SIZE, PTRS_PER_PMD, PUD_SIZE
from snpsim.trace.record import traced

from .kernel import GuestKernel, __va, overridable, this_cpu

__all__ = [
    "CpaData",
    "CPA_FLUSHTLB",
    "_PAGE_ENC",
    "pte_pfn_mask",
    "page_level_size",
    "lookup_address",
    "pg_level_to_pfn",
    "flush_tlb_all",
    "flush_tlb_one_kernel",
    "clflush_cache_range",
    "cpa_flush",
    "split_large_page",
    "__change_page_attr",
    "cpa_process_alias",
    "__change_page_attr_set_clr",
    "__set_memory_enc_pgtable",
    "__set_memory_enc_dec",
    "set_memory_enc_stop_conversion",
    "set_memory_encrypted",
    "set_memory_decrypted",
]

CPA_FLUSHTLB = 1
_LEVEL_SIZE = {PG_LEVEL_4K: PAGE_SIZE, PG_LEVEL_2M: PMD_SIZE, PG_LEVEL_1G: PUD_SIZE}
_CACHE_LINE = 64  # boot_cpu_data.x86_clflush_size


def _PAGE_ENC(kernel: GuestKernel) -> int:
    """``_PAGE_ENC`` (= ``sme_me_mask``): 1 << the C-bit position."""
    return 1 << this_cpu(kernel).cbit


def pte_pfn_mask(kernel: GuestKernel, level: int = PG_LEVEL_4K) -> int:
    """``PTE_PFN_MASK`` with the C-bit removed (``physical_mask`` drops it) and, for large
    leaves, the offset bits cleared: the physical-address bits of an entry."""
    return PTE_PFN_MASK & ~_PAGE_ENC(kernel) & ~(page_level_size(level) - 1)


def page_level_size(level: int) -> int:
    """``page_level_size(level)``: 4 KiB, 2 MiB or 1 GiB."""
    return _LEVEL_SIZE[level]


def _rd(kernel: GuestKernel, p: int) -> int:
    return this_cpu(kernel).read_u64(p)


def _wr(kernel: GuestKernel, p: int, v: int) -> None:
    this_cpu(kernel).write_u64(p, v)


def lookup_address(kernel: GuestKernel, address: int) -> tuple[int | None, int]:
    """``lookup_address(address, &level)``: walk ``init_mm.pgd`` for GVA ``address``.

    Returns ``(kpte, level)``: ``kpte`` is the GVA (direct map) of the leaf entry, or None
    when an upper level is not present; ``level`` the level reached (PG_LEVEL_*)."""
    pgd = kernel.pgd + 8 * _pgd_index(address)
    e = _rd(kernel, pgd)
    if not e & _PAGE_PRESENT:
        return None, PG_LEVEL_1G + 1
    pud = __va(kernel, e & pte_pfn_mask(kernel)) + 8 * pud_index(address)
    e = _rd(kernel, pud)
    if not e & _PAGE_PRESENT or e & _PAGE_PSE:
        return (pud, PG_LEVEL_1G) if e & _PAGE_PRESENT else (None, PG_LEVEL_1G)
    pmd = __va(kernel, e & pte_pfn_mask(kernel)) + 8 * pmd_index(address)
    e = _rd(kernel, pmd)
    if not e & _PAGE_PRESENT or e & _PAGE_PSE:
        return (pmd, PG_LEVEL_2M) if e & _PAGE_PRESENT else (None, PG_LEVEL_2M)
    pte = __va(kernel, e & pte_pfn_mask(kernel)) + 8 * pte_index(address)
    return pte, PG_LEVEL_4K


def pg_level_to_pfn(kernel: GuestKernel, level: int, kpte: int) -> int:
    """``pg_level_to_pfn(level, kpte, NULL)`` (mem_encrypt_amd.c): the base PFN of the leaf
    (the large-page base for 2M/1G leaves)."""
    return (_rd(kernel, kpte) & pte_pfn_mask(kernel, level)) >> PAGE_SHIFT


# -- TLB and cache flushes -------------------------------------------------------------


def flush_tlb_all(kernel: GuestKernel) -> None:
    """``flush_tlb_all()``: every CPU flushes its whole TLB (model: the TLB of each vCPU
    the kernel brought up is flushed, standing in for the IPI)."""
    for cpu in kernel.cpus.values():
        cpu.flush_tlb_all()


def flush_tlb_one_kernel(kernel: GuestKernel, addr: int) -> None:
    """``flush_tlb_one_kernel(addr)`` run on each CPU by the CPA IPI: INVLPG ``addr``."""
    for cpu in kernel.cpus.values():
        cpu.invlpg(addr)


def clflush_cache_range(kernel: GuestKernel, vaddr: int, size: int) -> None:
    """``clflush_cache_range(vaddr, size)``: CLFLUSH(OPT) every 64-byte line."""
    cpu = this_cpu(kernel)
    for a in range(vaddr & ~(_CACHE_LINE - 1), vaddr + size, _CACHE_LINE):
        cpu.clflush(a)


@dataclass
class CpaData:
    """``struct cpa_data``: ``vaddr`` (GVA of the first page), ``numpages`` (4 KiB pages
    still to do in this step), ``mask_set``/``mask_clr`` (PTE bits), ``flags``,
    ``curpage``, ``force_flush_all``, ``pfn`` (the PFN of the page the last
    ``__change_page_attr`` step changed).  ``pgd`` is always ``init_mm.pgd`` here."""

    vaddr: int
    numpages: int
    mask_set: int = 0
    mask_clr: int = 0
    flags: int = 0
    curpage: int = 0
    force_flush_all: bool = False
    force_split: bool = False
    pfn: int = 0


def __cpa_addr(cpa: CpaData, idx: int) -> int:
    """``__cpa_addr(cpa, idx)``: GVA of page ``idx`` of the request (``vaddr`` page-aligned
    plus ``idx`` pages)."""
    return (cpa.vaddr & PAGE_MASK) + idx * PAGE_SIZE


def _with_masks(prot: int, cpa: CpaData) -> int:
    """Model-only: protection bits ``prot`` after the request's clear and set masks."""
    return (prot & ~cpa.mask_clr) | cpa.mask_set


@traced("guest")
@overridable
def cpa_flush(kernel: GuestKernel, cpa: CpaData, cache: int) -> None:
    """``cpa_flush(cpa, cache)`` (set_memory.c): TLB flush of the range -- the whole TLB
    if ``force_flush_all`` or more than ``tlb_single_page_flush_ceiling`` (33) pages, else
    one INVLPG per page on every CPU; then, if ``cache``, CLFLUSH every line of each page
    whose PTE is present.  (Every modelled CPU has CLFLUSH, so ``cpa_flush_all`` with
    WBINVD is never taken.)"""
    pages = [__cpa_addr(cpa, i) for i in range(cpa.numpages)]
    if cpa.force_flush_all or len(pages) > tlb_single_page_flush_ceiling:
        flush_tlb_all(kernel)
    else:
        for va in pages:
            flush_tlb_one_kernel(kernel, va)
    if not cache:
        return
    for va in pages:
        # CLFLUSH goes through the page tables, so an unmapped page has nothing to flush.
        kpte, _level = lookup_address(kernel, va)
        if kpte is not None and _rd(kernel, kpte) & _PAGE_PRESENT:
            clflush_cache_range(kernel, va, PAGE_SIZE)


# -- the CPA engine ---------------------------------------------------------------------


@traced("guest")
def split_large_page(kernel: GuestKernel, cpa: CpaData, kpte: int, address: int) -> int:
    """``split_large_page(cpa, kpte, address)``: allocate a page-table page, fill its 512
    entries with the old protection (4 KiB PTEs from a 2 MiB leaf, 2 MiB PMDs from a 1 GiB
    leaf), install it with ``_KERNPG_TABLE`` and ``flush_tlb_all``.  Returns 0, or -ENOMEM
    (-12) when the allocator is empty.  ``kpte`` is the GVA of the large entry."""
    found, level = lookup_address(kernel, address)
    assert found == kpte and level in (PG_LEVEL_2M, PG_LEVEL_1G)
    assert kernel.page_alloc is not None
    table_gpa = kernel.page_alloc.alloc_page()
    if table_gpa is None:
        return -errno.ENOMEM
    leaf = _rd(kernel, kpte)
    frame_bits = pte_pfn_mask(kernel, level)
    base = leaf & frame_bits
    prot = leaf & ~frame_bits
    if level == PG_LEVEL_2M:
        child_span, child_prot = PAGE_SIZE, prot & ~_PAGE_PSE  # PSE means nothing in a PTE
    else:
        child_span, child_prot = PMD_SIZE, prot  # the children are 2 MiB leaves themselves
    children = b"".join(((base + k * child_span) | child_prot).to_bytes(8, "little")
                        for k in range(PTRS_PER_PMD))
    this_cpu(kernel).write(__va(kernel, table_gpa), children)
    _wr(kernel, kpte, table_gpa | _KERNPG_TABLE_NOENC | _PAGE_ENC(kernel))
    # Intel's TLB application note leaves two translations of different size for one
    # address undefined, so every CPU drops the large one before any small entry changes.
    flush_tlb_all(kernel)
    return 0


def __should_split_large_page(kernel: GuestKernel, kpte: int, address: int, level: int,
                              cpa: CpaData) -> int:
    """``__should_split_large_page(kpte, address, cpa)`` (set_memory.c): decide for the
    large leaf at GVA ``kpte`` mapping GVA ``address`` at ``level``.  Narrows
    ``cpa.numpages`` to the pages left in the leaf and sets ``cpa.pfn``.  Returns 0 when
    the leaf stays large (unchanged, or rewritten whole with CPA_FLUSHTLB) and 1 when it
    must be split."""
    span = page_level_size(level)
    offset = address & (span - 1)
    pages_to_leaf_end = (span - offset) >> PAGE_SHIFT
    cpa.numpages = min(cpa.numpages, pages_to_leaf_end)
    leaf = _rd(kernel, kpte)
    frame_bits = pte_pfn_mask(kernel, level)
    cpa.pfn = ((leaf & frame_bits) + offset) >> PAGE_SHIFT
    prot = leaf & ~frame_bits
    wanted = _with_masks(prot, cpa)
    if wanted & _PAGE_PRESENT:
        wanted |= _PAGE_PSE
    if wanted == prot:
        return 0
    # A change to only part of the leaf needs small entries; a change to all of it can
    # be made in the large entry itself.
    if offset or cpa.numpages != pages_to_leaf_end:
        return 1
    _wr(kernel, kpte, (leaf & frame_bits) | wanted)
    cpa.flags |= CPA_FLUSHTLB
    return 0


@traced("guest")
def __change_page_attr(kernel: GuestKernel, cpa: CpaData, primary: int) -> int:
    """``__change_page_attr(cpa, primary)``: change the leaf at ``cpa.vaddr + curpage``;
    sets ``cpa.numpages`` to the pages processed.  A 4 KiB leaf is rewritten with
    (old & ~mask_clr) | mask_set on the same PFN; a large leaf is kept, rewritten whole or
    split (then the lookup repeats).  Returns 0, -EFAULT (-14) for an unmapped address
    (after the WARN of ``__cpa_process_fault``, "CPA: called for zero pte. vaddr = %lx"),
    -ENOMEM (-12) when a split cannot allocate.  Model: a non-primary request gets
    -EFAULT too (Linux ignores unmapped aliases); see ``cpa_process_alias``."""
    address = __cpa_addr(cpa, cpa.curpage)
    while True:
        kpte, level = lookup_address(kernel, address)
        leaf = _rd(kernel, kpte) if kpte is not None else 0
        if not leaf & _PAGE_PRESENT:
            kernel.warn(f"CPA: called for zero pte. vaddr = {address:#x}")
            return -errno.EFAULT
        if level == PG_LEVEL_4K:
            frame_bits = pte_pfn_mask(kernel)
            cpa.pfn = (leaf & frame_bits) >> PAGE_SHIFT
            updated = (leaf & frame_bits) | _with_masks(leaf & ~frame_bits, cpa)
            if updated != leaf:
                _wr(kernel, kpte, updated)
                cpa.flags |= CPA_FLUSHTLB
            cpa.numpages = 1
            return 0
        verdict = __should_split_large_page(kernel, kpte, address, level, cpa)
        if verdict <= 0:
            return verdict
        err = split_large_page(kernel, cpa, kpte, address)
        if err:
            return err
        # The address is now mapped one level down: walk again and change that entry.


@traced("guest")
def cpa_process_alias(kernel: GuestKernel, cpa: CpaData) -> int:
    """``cpa_process_alias(cpa)`` (set_memory.c): after a primary step, (1) if the primary
    GVA is outside the direct map (vmalloc, the kernel image), apply the same change to
    the direct-map alias of ``cpa.pfn`` for the pages just processed (NX left alone),
    and (2) if the primary GVA is not in the kernel image alias but the PFN is inside the
    image, to its ``__START_KERNEL_map`` alias; both set ``force_flush_all``.  Returns 0
    or the alias change's error.  Model: the image alias is changed only where it is
    mapped, for the pages inside the image, and its error is returned (Linux ignores
    it)."""
    primary_va = __cpa_addr(cpa, cpa.curpage)
    boot = kernel.boot
    pa = cpa.pfn << PAGE_SHIFT
    if not boot.pfn_range_is_mapped(cpa.pfn, cpa.pfn + 1):
        return 0  # the frame has no direct-map address

    # DIRECT-MAP ALIAS: the same frames are also mapped at PAGE_OFFSET + pa.  The NX bit
    # is not carried over: the direct map never executes.
    if not PAGE_OFFSET <= primary_va < PAGE_OFFSET + (boot.max_pfn_mapped << PAGE_SHIFT):
        alias = CpaData(__va(kernel, pa), cpa.numpages, cpa.mask_set & ~_PAGE_NX,
                        cpa.mask_clr & ~_PAGE_NX, cpa.flags)
        cpa.force_flush_all = True
        ret = __change_page_attr_set_clr(kernel, alias, 0)
        if ret:
            return ret

    # IMAGE ALIAS: frames of the kernel image are mapped a third time at
    # __START_KERNEL_map + pa, unless that is where the primary request already was.
    if primary_va >= __START_KERNEL_map or not boot.image_start <= pa < boot.image_end:
        return 0
    image_va = __START_KERNEL_map + pa
    kpte, _level = lookup_address(kernel, image_va)
    if kpte is None or not _rd(kernel, kpte) & _PAGE_PRESENT:
        return 0
    npages = min(cpa.numpages, (boot.image_end - pa) >> PAGE_SHIFT)
    cpa.force_flush_all = True
    return __change_page_attr_set_clr(kernel, CpaData(image_va, npages, cpa.mask_set, cpa.mask_clr,
                                                      cpa.flags), 0)


@traced("guest")
def __change_page_attr_set_clr(kernel: GuestKernel, cpa: CpaData, primary: int) -> int:
    """``__change_page_attr_set_clr(cpa, primary)``: loop ``__change_page_attr`` over the
    range (and, when primary, ``cpa_process_alias``) until every page is done; restores
    ``cpa.numpages``.  Returns 0 or the first error (negative errno)."""
    if not (cpa.mask_set or cpa.mask_clr or cpa.force_split):
        return 0
    requested = cpa.numpages
    remaining = requested
    ret = 0
    while remaining:
        # Each step handles one leaf and reports in cpa.numpages how many pages that was.
        cpa.numpages = remaining
        ret = __change_page_attr(kernel, cpa, primary)
        if not ret and primary:
            ret = cpa_process_alias(kernel, cpa)
        if ret:
            break
        assert 0 < cpa.numpages <= remaining, "CPA processed count out of range"
        remaining -= cpa.numpages
        cpa.curpage += cpa.numpages
    cpa.numpages = requested
    return ret


# -- the encryption entry points -----------------------------------------------------------


@traced("guest")
def __set_memory_enc_pgtable(kernel: GuestKernel, addr: int, numpages: int, enc: bool) -> int:
    """``__set_memory_enc_pgtable(addr, numpages, enc)`` (set_memory.c, 6.11+ hooks):
    pre-flush (TLB, plus caches without SME_COHERENT), ``enc_status_change_prepare``,
    change the C-bit in the PTEs (``__change_page_attr_set_clr``), post-flush (TLB only,
    even after a failure), and -- only if the PTE change succeeded --
    ``enc_status_change_finish``.  No rollback.  Returns 0 or a negative errno (the
    hook's error, after the kernel's warning, quoted from set_memory.c: "CPA VMM failure
    to convert memory (addr=%p, numpages=%d) to %s.").  A misaligned ``addr`` is
    WARNed ("misaligned address: %#lx") and aligned down.  ``addr`` is a GVA,
    ``numpages`` 4 KiB pages."""
    from .mem_encrypt_amd import (
        amd_enc_cache_flush_required,
        amd_enc_status_change_finish,
        amd_enc_status_change_prepare,
        amd_enc_tlb_flush_required,
    )

    if addr & ~PAGE_MASK:
        kernel.warn(f"misaligned address: {addr:#x}")
        addr &= PAGE_MASK
    c_bit = _PAGE_ENC(kernel)
    cpa = CpaData(addr, numpages, mask_set=c_bit if enc else 0, mask_clr=0 if enc else c_bit)

    # FLUSH BEFORE: no line or translation made with the old C-bit may outlive it.
    if amd_enc_tlb_flush_required(kernel, enc):
        cpa_flush(kernel, cpa, amd_enc_cache_flush_required(kernel))

    # PREPARE: on SNP, pages going shared are rescinded and converted here, while the
    # PTEs still say private.
    ret = amd_enc_status_change_prepare(kernel, addr, numpages, enc)
    if ret:
        return _vmm_fail(kernel, addr, numpages, enc, ret)

    # PAGE TABLES: set or clear the C-bit, then a TLB-only flush, which runs even when
    # the change failed part-way so that no half-changed range stays cached.
    ret = __change_page_attr_set_clr(kernel, cpa, 1)
    cpa_flush(kernel, cpa, 0)
    if ret:
        return ret

    # FINISH: on SNP, pages going private are converted and validated now that the PTEs
    # say private; then the hypervisor's view is updated (KVM hypercall).
    ret = amd_enc_status_change_finish(kernel, addr, numpages, enc)
    if ret:
        return _vmm_fail(kernel, addr, numpages, enc, ret)
    kernel.enc_dec_pages["private" if enc else "shared"] += numpages  # model-only statistic
    return 0


def _vmm_fail(kernel: GuestKernel, addr: int, numpages: int, enc: bool, ret: int) -> int:
    """Model-only: log the kernel's conversion-failure warning and pass ``ret`` on."""
    kernel.warn(f"CPA VMM failure to convert memory (addr={addr:#x}, numpages={numpages}) "
                f"to {'private' if enc else 'shared'}.")
    return ret


def _mem_enc_read_trylock(kernel: GuestKernel, cpu: int) -> bool:
    """Model-only: ``down_read_trylock(&mem_enc_lock)`` for CPU ``cpu``: False once the
    write side is taken (kexec), else one more read hold by that CPU."""
    if kernel.mem_enc_stopped:
        return False
    kernel.mem_enc_readers[cpu] = kernel.mem_enc_readers.get(cpu, 0) + 1
    return True


def _mem_enc_read_unlock(kernel: GuestKernel, cpu: int) -> None:
    """Model-only: ``up_read(&mem_enc_lock)`` for CPU ``cpu``."""
    left = kernel.mem_enc_readers.get(cpu, 0) - 1
    if left > 0:
        kernel.mem_enc_readers[cpu] = left
    else:
        kernel.mem_enc_readers.pop(cpu, None)


@traced("guest")
def set_memory_enc_stop_conversion(kernel: GuestKernel) -> bool:
    """``set_memory_enc_stop_conversion()`` (arch/x86/mm/pat/set_memory.c, v6.11+, the
    TDX kexec series; argument-less in mainline): take ``mem_enc_lock`` for write and
    keep it, so every later ``set_memory_encrypted/decrypted`` returns -EBUSY.  With
    ``oops_in_progress`` (the crash path) only a try-lock: False when a conversion holds
    the lock for read (or the write side is already taken).  Otherwise ``down_write``:
    the writer queues at once -- ``RWSEM_FLAG_WAITERS`` is in ``RWSEM_READ_FAILED_MASK``
    (kernel/locking/rwsem.c), so from then on ``down_read_trylock`` fails and new
    conversions get -EBUSY -- and waits for the conversions in flight: model: the
    waiting CPU spins with :func:`snpsim.guest.smp.cpu_relax` while another CPU holds a
    read lock.  A read hold of the waiting CPU itself, or a write side already taken,
    can never go away (Linux hangs in ``down_write``): the watcher ends that wait as the
    named livelock ``set_memory_enc_stop_conversion``.  Returns True when the lock was
    taken."""
    from .smp import cpu_relax

    if kernel.oops_in_progress:
        if kernel.mem_enc_stopped or kernel.mem_enc_readers:
            return False
        kernel.mem_enc_stopped = True
        return True
    cpu = this_cpu(kernel)
    watcher = cpu.progress
    held_by_writer = kernel.mem_enc_stopped
    kernel.mem_enc_stopped = True  # queued writer: readers are refused from here on
    while held_by_writer or kernel.mem_enc_readers:
        mine = kernel.mem_enc_readers.get(cpu.vcpu_id, 0)
        if held_by_writer or mine:
            # Nothing another CPU does can release this: the same state every pass.
            watcher.watch("set_memory_enc_stop_conversion", cpu.vcpu_id, (mine, held_by_writer),
                          "down_write(&mem_enc_lock) waits for a lock that is never released")
            continue
        cpu_relax(kernel)
    watcher.progress("set_memory_enc_stop_conversion", cpu.vcpu_id)
    return True


@traced("guest")
def __set_memory_enc_dec(kernel: GuestKernel, addr: int, numpages: int, enc: bool) -> int:
    """``__set_memory_enc_dec(addr, numpages, enc)`` (v6.11+): when
    ``cc_platform_has(CC_ATTR_MEM_ENCRYPT)`` (AMD: ``sme_me_mask`` != 0, always for an
    SEV guest), ``down_read_trylock(&mem_enc_lock)`` -- -EBUSY (-16) once kexec stopped
    conversions (:func:`set_memory_enc_stop_conversion`) -- then
    ``__set_memory_enc_pgtable`` and ``up_read``.  Returns 0 or a negative errno.  Model:
    the read hold is per CPU (``kernel.mem_enc_readers``), so a crash on one CPU sees the
    conversions other CPUs had in flight."""
    cpu = this_cpu(kernel).vcpu_id
    if not _mem_enc_read_trylock(kernel, cpu):
        return -errno.EBUSY
    try:
        return __set_memory_enc_pgtable(kernel, addr, numpages, enc)
    finally:
        # A crash that stops this CPU mid-conversion never comes back here: the model's
        # stop (an endless HLT) does not unwind, so the read hold stays, as on Linux.
        _mem_enc_read_unlock(kernel, cpu)


@traced("guest")
def set_memory_encrypted(kernel: GuestKernel, addr: int, numpages: int) -> int:
    """``set_memory_encrypted(addr, numpages)``: make ``numpages`` 4 KiB pages at GVA
    ``addr`` private (C-bit set, PSC private, PVALIDATE).  Returns 0 or a negative errno;
    SNP failures terminate the guest instead of returning."""
    return __set_memory_enc_dec(kernel, addr, numpages, True)


@traced("guest")
def set_memory_decrypted(kernel: GuestKernel, addr: int, numpages: int) -> int:
    """``set_memory_decrypted(addr, numpages)``: make ``numpages`` 4 KiB pages at GVA
    ``addr`` shared (PVALIDATE rescind, PSC shared, C-bit cleared).  Returns 0 or a
    negative errno; SNP failures terminate the guest instead of returning."""
    return __set_memory_enc_dec(kernel, addr, numpages, False)
