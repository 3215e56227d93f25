# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The AMD memory-encryption hooks, the KVM notification and the early page-table path.

Mirrors ``arch/x86/mm/mem_encrypt_amd.c`` at 0a2a98f6 (v6.14+, int hooks):
``amd_enc_status_change_prepare``, ``amd_enc_status_change_finish``,
``amd_enc_tlb_flush_required``, ``amd_enc_cache_flush_required``, ``enc_dec_hypercall``,
``early_set_memory_enc_dec``, ``__set_clr_pte_enc``, ``prepare_pte_enc``,
``set_pte_enc_mask``, ``early_set_memory_decrypted`` (linux-guest.md 2.1, 2.5, 9), and
``notify_page_enc_status_changed`` (the paravirt op, a no-op unless ``kvm_init_platform``
installed ``kvm_sev_hc_page_enc_status``).

Model gap: ``sme_early_encrypt/decrypt`` (the in-place copy through ``sme_early_buffer``,
which on SNP adds an MSR-protocol shared/private round trip per copy through
``snp_memcpy``) is reduced to its WBINVD; the only early conversions the model makes are
of freshly allocated GHCB pages, which ``init_ghcb`` zeroes right afterwards.
"""

from __future__ import annotations

from snpsim.spec.msr_index import MSR_AMD64_SEV_SNP_ENABLED
from snpsim.spec.pgtable_types import _PAGE_PRESENT, PG_LEVEL_4K
from snpsim.spec.units import PAGE_SHIFT
from snpsim.trace.record import traced

from .kernel import GuestKernel, __va, this_cpu
from .set_memory import (
    _PAGE_ENC,
    clflush_cache_range,
    flush_tlb_all,
    lookup_address,
    page_level_size,
    pg_level_to_pfn,
    pte_pfn_mask,
)

__all__ = [
    "amd_enc_tlb_flush_required",
    "amd_enc_cache_flush_required",
    "amd_enc_status_change_prepare",
    "amd_enc_status_change_finish",
    "notify_page_enc_status_changed",
    "enc_dec_hypercall",
    "prepare_pte_enc",
    "set_pte_enc_mask",
    "__set_clr_pte_enc",
    "kernel_physical_mapping_change",
    "early_set_memory_enc_dec",
    "early_set_memory_decrypted",
    "early_set_memory_encrypted",
]


def _snp(kernel: GuestKernel) -> bool:
    """``cc_platform_has(CC_ATTR_GUEST_SEV_SNP)``."""
    return bool(kernel.sev_status & MSR_AMD64_SEV_SNP_ENABLED)


def amd_enc_tlb_flush_required(kernel: GuestKernel, enc: bool) -> bool:
    """``amd_enc_tlb_flush_required(enc)``: always true."""
    return True


def amd_enc_cache_flush_required(kernel: GuestKernel) -> bool:
    """``amd_enc_cache_flush_required()``: true when X86_FEATURE_SME_COHERENT is absent."""
    return not kernel.config.sme_coherent


@traced("guest")
def amd_enc_status_change_prepare(kernel: GuestKernel, vaddr: int, npages: int, enc: bool) -> int:
    """``amd_enc_status_change_prepare(vaddr, npages, enc)``: for SNP and a decrypt,
    ``snp_set_memory_shared`` (rescind + PSC shared, while the PTEs still have C=1).
    Returns 0 (SNP failures terminate inside)."""
    from .sev_core import snp_set_memory_shared

    # Going shared, validation is rescinded and the RMP changed while the PTEs still map
    # the pages private, so no C=0 access reaches a page the RMP still gives the guest.
    if _snp(kernel) and not enc:
        snp_set_memory_shared(kernel, vaddr, npages)
    return 0


@traced("guest")
def amd_enc_status_change_finish(kernel: GuestKernel, vaddr: int, npages: int, enc: bool) -> int:
    """``amd_enc_status_change_finish(vaddr, npages, enc)``: for SNP and an encrypt,
    ``snp_set_memory_private`` (PSC private + PVALIDATE, after the C-bit was set); then,
    as not ``CC_ATTR_HOST_MEM_ENCRYPT``, ``enc_dec_hypercall(vaddr, npages << 12, enc)``.
    Returns 0."""
    from .sev_core import snp_set_memory_private

    # Going private, the RMP changes last, so that PVALIDATE runs through the new C=1
    # mapping.  SEV and SEV-ES guests have no RMP and only tell KVM.
    if _snp(kernel) and enc:
        snp_set_memory_private(kernel, vaddr, npages)
    enc_dec_hypercall(kernel, vaddr, npages << PAGE_SHIFT, enc)
    return 0


@traced("guest")
def notify_page_enc_status_changed(kernel: GuestKernel, pfn: int, npages: int, enc: bool) -> None:
    """``notify_page_enc_status_changed(pfn, npages, enc)`` (paravirt op, pv_ops.mmu):
    ``kvm_sev_hc_page_enc_status`` when ``kvm_init_platform`` installed it, else a no-op."""
    if kernel.kvm_pv_enc_status:
        from .kvm import kvm_sev_hc_page_enc_status

        kvm_sev_hc_page_enc_status(kernel, pfn, npages, enc)


def _mapped_leaf(kernel: GuestKernel, vaddr: int) -> tuple[int, int] | None:
    """Model-only: ``(kpte, level)`` of the present leaf mapping GVA ``vaddr``, or None
    when no present entry maps it."""
    kpte, level = lookup_address(kernel, vaddr)
    if kpte is None or not this_cpu(kernel).read_u64(kpte) & _PAGE_PRESENT:
        return None
    return kpte, level


def _next_leaf_start(vaddr: int, span: int) -> int:
    """Model-only: the GVA where the ``span``-byte leaf containing ``vaddr`` ends."""
    return (vaddr & ~(span - 1)) + span


@traced("guest")
def enc_dec_hypercall(kernel: GuestKernel, vaddr: int, size: int, enc: bool) -> None:
    """``enc_dec_hypercall(vaddr, size, enc)``: for each leaf over [vaddr, vaddr + size)
    (GVA, bytes) notify the hypervisor with the leaf's **base** PFN and its whole size in
    4 KiB pages.  A missing PTE WARNs (the kernel's text is "kpte lookup for vaddr") and
    stops.

    Linux quirk: a leaf whose base PFN is 0 makes the loop ``continue`` without advancing,
    i.e. spin forever.  Model-only: each such pass goes to the livelock watcher (loop
    ``enc_dec_hypercall``, state: GVA, PTE address, level and PTE value), which raises
    :class:`snpsim.trace.progress.Livelock` once the same state came back
    ``livelock_repeats`` times.
    """
    cpu = this_cpu(kernel)
    end = vaddr + size
    while vaddr < end:
        leaf = _mapped_leaf(kernel, vaddr)
        if leaf is None:
            kernel.warn(f"kpte lookup for vaddr {vaddr:#x}")
            return
        kpte, level = leaf
        base_pfn = pg_level_to_pfn(kernel, level, kpte)
        if base_pfn == 0:
            cpu.progress.watch("enc_dec_hypercall", cpu.vcpu_id, (vaddr, kpte, level, cpu.read_u64(kpte)),
                               lambda v=vaddr: f"the leaf of vaddr {v:#x} has PFN 0 (the loop never advances)")
            continue
        span = page_level_size(level)
        notify_page_enc_status_changed(kernel, base_pfn, span >> PAGE_SHIFT, enc)
        vaddr = _next_leaf_start(vaddr, span)


# -- the early page-table path (init_ghcb, .bss..decrypted) ------------------------------


def prepare_pte_enc(kernel: GuestKernel, kpte: int, level: int, enc: bool) -> tuple[int, int, int, int] | None:
    """``prepare_pte_enc(d)``: the leaf's PFN and the new protection with ``_PAGE_ENC`` set
    or cleared; None if nothing changes (or PFN 0).  Flushes the leaf from the caches
    (``clflush_cache_range`` over the level size).  Returns (pfn, new_prot, pa, size)."""
    pfn = pg_level_to_pfn(kernel, level, kpte)
    if not pfn:
        return None
    prot = this_cpu(kernel).read_u64(kpte) & ~pte_pfn_mask(kernel, level)
    c_bit = _PAGE_ENC(kernel)
    new_prot = prot | c_bit if enc else prot & ~c_bit
    if new_prot == prot:
        return None
    pa = pfn << PAGE_SHIFT
    size = page_level_size(level)
    # Cached lines are tagged with the key they were filled with; write them back now so
    # that nothing filled under the old C-bit is read back under the new one.
    clflush_cache_range(kernel, __va(kernel, pa), size)
    return pfn, new_prot, pa, size


def set_pte_enc_mask(kernel: GuestKernel, kpte: int, pfn: int, new_prot: int) -> None:
    """``set_pte_enc_mask(kpte, pfn, new_prot)``: the same PFN with the new protection,
    written with ``set_pte_atomic``."""
    this_cpu(kernel).write_u64(kpte, (pfn << PAGE_SHIFT) | new_prot)


@traced("guest")
def __set_clr_pte_enc(kernel: GuestKernel, kpte: int, level: int, enc: bool) -> None:
    """``__set_clr_pte_enc(kpte, level, enc)``: encrypt = PTE first, then
    ``early_snp_set_memory_private``; decrypt = ``early_snp_set_memory_shared`` (the RMP
    must change before the page table on SNP), then the PTE.  Quirk kept: the RMP change
    covers only the first 4 KiB of the leaf (npages hard-coded to 1)."""
    from .sev_startup import early_snp_set_memory_private, early_snp_set_memory_shared

    change = prepare_pte_enc(kernel, kpte, level, enc)
    if change is None:
        return
    pfn, new_prot, pa, _size = change
    va = __va(kernel, pa)
    # Model gap: Linux copies the contents through a bounce buffer here so they survive
    # the key change (sme_early_encrypt/decrypt); the model keeps only its WBINVD.
    this_cpu(kernel).wbinvd()
    # The RMP and the PTE change in the same order as at run time: shared before the C-bit
    # goes, private after it comes (one 4 KiB page, whatever the leaf size).
    if not enc:
        early_snp_set_memory_shared(kernel, va, pa, 1)
    set_pte_enc_mask(kernel, kpte, pfn, new_prot)
    if enc:
        early_snp_set_memory_private(kernel, va, pa, 1)


@traced("guest")
def kernel_physical_mapping_change(kernel: GuestKernel, vaddr: int, level: int) -> int:
    """``kernel_physical_mapping_change(__pa(vaddr & pmask), __pa((vaddr & pmask) + psize),
    split_page_size_mask)`` (arch/x86/mm/init_64.c), as ``early_set_memory_enc_dec`` uses
    it: remap the large leaf containing GVA ``vaddr`` one level down (1G -> 512 x 2M,
    2M -> 512 x 4K) with the same protection.  Returns 0 or -ENOMEM (-12).  Model: done
    with the CPA split helper (same resulting tables)."""
    from .set_memory import CpaData, split_large_page

    kpte, lvl = lookup_address(kernel, vaddr)
    assert kpte is not None and lvl == level
    return split_large_page(kernel, CpaData(vaddr, 1), kpte, vaddr)


@traced("guest")
def early_set_memory_enc_dec(kernel: GuestKernel, vaddr: int, size: int, enc: bool) -> int:
    """``early_set_memory_enc_dec(vaddr, size, enc)``: walk [vaddr, vaddr + size) (GVA,
    bytes); 4 KiB leaves get ``__set_clr_pte_enc``; a large leaf is changed whole when
    ``vaddr`` is aligned to it and the rest of the range covers it, else split and
    re-examined.  On success ``early_set_mem_enc_dec_hypercall`` (= ``enc_dec_hypercall``);
    always ``__flush_tlb_all``.  Returns 0, or 1 for a missing PTE, or -ENOMEM."""
    start, end = vaddr, vaddr + size
    ret = 0
    while vaddr < end:
        leaf = _mapped_leaf(kernel, vaddr)
        if leaf is None:
            ret = 1
            break
        kpte, level = leaf
        span = page_level_size(level)
        if level == PG_LEVEL_4K or (vaddr % span == 0 and end - vaddr >= span):
            __set_clr_pte_enc(kernel, kpte, level, enc)
            vaddr = _next_leaf_start(vaddr, span)
            continue
        ret = kernel_physical_mapping_change(kernel, vaddr, level)
        if ret:
            break
    if not ret:
        enc_dec_hypercall(kernel, start, size, enc)
        # model-only statistic: 4 KiB pages whose C-bit changed
        kernel.enc_dec_pages["private" if enc else "shared"] += -(-size // (1 << PAGE_SHIFT))
    # TLB: one flush for the whole walk, success or not.
    flush_tlb_all(kernel)
    return ret


def early_set_memory_decrypted(kernel: GuestKernel, vaddr: int, size: int) -> int:
    """``early_set_memory_decrypted(vaddr, size)``: ``early_set_memory_enc_dec(.., false)``."""
    return early_set_memory_enc_dec(kernel, vaddr, size, False)


def early_set_memory_encrypted(kernel: GuestKernel, vaddr: int, size: int) -> int:
    """``early_set_memory_encrypted(vaddr, size)``: ``early_set_memory_enc_dec(.., true)``."""
    return early_set_memory_enc_dec(kernel, vaddr, size, True)
