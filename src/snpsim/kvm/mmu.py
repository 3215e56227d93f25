# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The TDP MMU as SNP uses it: #NPF -> private or shared fault, the private/shared
mismatch exit (``KVM_EXIT_MEMORY_FAULT``), zapping on attribute changes and hole punches.

Mirrors ``arch/x86/kvm/mmu/mmu.c`` as merged with guest_memfd (Linux v6.8+; reconstructed
from the merged patch postings, kvm-qemu-host.md 6.3 and 11.1).  The NPT itself belongs to
the platform; KVM fills and zaps it through the host port (``npt_map``/``npt_unmap``).

Return convention of the fault path (``kvm_mmu_page_fault``): 1 = resume the guest (the
access is retried), 0 = exit to userspace, < 0 = ``KVM_RUN`` fails with that errno (the
memory-fault exit returns -EFAULT with ``run->exit_reason`` set).

Model choices: every mapping is 4 KiB (order-0 guest_memfd; shared memory mapped at 4 KiB
too); a GFN with no memslot is reported to userspace as ``KVM_EXIT_INTERNAL_ERROR``
(emulation failure) because MMIO emulation is not modelled.
"""

from __future__ import annotations

import enum
import errno
from dataclasses import dataclass
from typing import Any

from snpsim.spec.faults import (
    PFERR_FETCH_MASK,
    PFERR_GUEST_FINAL_MASK,
    PFERR_PRESENT_MASK,
    PFERR_PRIVATE_ACCESS,
    PFERR_RSVD_MASK,
    PFERR_WRITE_MASK,
)
from snpsim.spec.kvm_uapi import (
    KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_MEMORY_FAULT,
    KVM_INTERNAL_ERROR_EMULATION,
    KVM_MEM_READONLY,
    KVM_MEMORY_ATTRIBUTE_PRIVATE,
    KVM_MEMORY_EXIT_FLAG_PRIVATE,
    KVM_X86_SW_PROTECTED_VM,
)
from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K
from snpsim.spec.units import HPAGE_PMD_ORDER, PAGE_SHIFT, PAGE_SIZE, PTRS_PER_PMD
from snpsim.trace.record import emit_instant, traced

from .guest_memfd import kvm_gmem_get_pfn
from .kvm_host import KvmVcpu, KvmVm
from .virt_svm_sev import snp_lookup_rmpentry

__all__ = [
    "RetPf",
    "KvmPageFault",
    "kvm_mem_is_private",
    "kvm_mmu_page_fault",
    "kvm_tdp_page_fault",
    "page_fault_can_be_fast",
    "page_fault_can_be_fast_any_slot",
    "fast_page_fault",
    "kvm_mmu_faultin_pfn",
    "kvm_mmu_faultin_pfn_private",
    "kvm_prepare_memory_fault_exit",
    "kvm_unmap_gfn_range",
    "kvm_zap_gfn_range",
    "kvm_mmu_invalidate_begin",
    "kvm_mmu_invalidate_end",
    "kvm_tdp_map_page",
    "kvm_arch_vcpu_pre_fault_memory",
]

#: Model-only bound on RET_PF_RETRY rounds in ``kvm_tdp_map_page`` (KVM retries until the
#: fault sticks; an invalidation that never ends cannot happen in the model).
_PREFAULT_RETRY_LIMIT = 64


class RetPf(enum.IntEnum):
    """KVM-internal page-fault results (``enum`` in arch/x86/kvm/mmu/mmu_internal.h);
    not uAPI, so defined beside the code that uses them."""

    RET_PF_CONTINUE = 0
    RET_PF_RETRY = 1
    RET_PF_EMULATE = 2
    RET_PF_WRITE_PROTECTED = 3
    RET_PF_INVALID = 4
    RET_PF_FIXED = 5
    RET_PF_SPURIOUS = 6


@dataclass
class KvmPageFault:
    """``struct kvm_page_fault``: ``addr`` (GPA, bytes), ``error_code`` (u64 PFERR bits),
    ``gfn``, ``is_private``, ``write``, ``exec``, ``present``, ``rsvd``, ``prefetch``
    (KVM_PRE_FAULT_MEMORY), and the result ``pfn``/``max_level``/``goal_level`` (the
    level of the SPTE installed)."""

    addr: int
    error_code: int
    gfn: int
    is_private: bool
    write: bool
    exec: bool
    present: bool = False
    rsvd: bool = False
    pfn: int = -1
    max_level: int = PG_LEVEL_4K
    writable: bool = True
    mmu_seq: int = 0
    prefetch: bool = False
    goal_level: int = PG_LEVEL_4K


def kvm_mem_is_private(kvm: KvmVm, gfn: int) -> bool:
    """``kvm_mem_is_private(kvm, gfn)``: the PRIVATE bit of the GFN's attributes."""
    return bool(kvm.mem_attr_array.get(gfn) & KVM_MEMORY_ATTRIBUTE_PRIVATE)


@traced("kvm")
def kvm_prepare_memory_fault_exit(vcpu: KvmVcpu, gpa: int, size: int, is_write: bool,
                                  is_exec: bool, is_private: bool) -> None:
    """``kvm_prepare_memory_fault_exit(vcpu, gpa, size, write, exec, private)``:
    ``run->exit_reason = KVM_EXIT_MEMORY_FAULT``, ``memory_fault`` {gpa (bytes), size
    (bytes), flags = KVM_MEMORY_EXIT_FLAG_PRIVATE (8) iff the access was private}."""
    run = vcpu.run
    run.exit_reason = KVM_EXIT_MEMORY_FAULT
    run.memory_fault.gpa = gpa
    run.memory_fault.size = size
    run.memory_fault.flags = KVM_MEMORY_EXIT_FLAG_PRIVATE if is_private else 0


def _memory_fault_exit(vcpu: KvmVcpu, fault: KvmPageFault) -> None:
    kvm_prepare_memory_fault_exit(vcpu, fault.gfn << PAGE_SHIFT, PAGE_SIZE, fault.write,
                                  fault.exec, fault.is_private)


@traced("kvm")
def kvm_mmu_faultin_pfn_private(vcpu: KvmVcpu, fault: KvmPageFault) -> int:
    """``kvm_mmu_faultin_pfn_private`` (later ``_gmem``): the slot must have a guest_memfd
    (else memory-fault exit, -EFAULT); ``kvm_gmem_get_pfn`` (error -> memory-fault exit and
    that error); mapping level 4 KiB.  Returns RET_PF_CONTINUE or -errno."""
    from .kvm_main import gfn_to_memslot

    kvm = vcpu.kvm
    slot = gfn_to_memslot(kvm, fault.gfn)
    if slot is None or slot.gmem_file is None:
        _memory_fault_exit(vcpu, fault)
        return -errno.EFAULT
    r, pfn, max_order = kvm_gmem_get_pfn(kvm, slot, fault.gfn)
    if r:
        _memory_fault_exit(vcpu, fault)
        return r
    fault.pfn = pfn
    # max_level = min(the level the folio allows, the RMP level of the PFN)
    gmem_level = PG_LEVEL_2M if max_order >= HPAGE_PMD_ORDER else PG_LEVEL_4K
    fault.max_level = min(gmem_level, sev_private_max_mapping_level(kvm, pfn))
    return RetPf.RET_PF_CONTINUE


def sev_private_max_mapping_level(kvm: KvmVm, pfn: int) -> int:
    """``sev_private_max_mapping_level(kvm, pfn)`` (arch/x86/kvm/svm/sev.c, v6.10;
    ``gmem_max_mapping_level`` later): the RMP level of ``pfn`` -- PG_LEVEL_2M when its
    2 MiB-aligned RMP entry is a 2 MiB entry, else PG_LEVEL_4K (also when the lookup
    fails or the page is unassigned).  kvm-qemu-host.md 6.3 item 3."""
    ret, assigned, level = snp_lookup_rmpentry(kvm, pfn)
    if ret or not assigned:
        return PG_LEVEL_4K
    return level


def kvm_hugepage_allowed(kvm: KvmVm, fault: KvmPageFault) -> bool:
    """Model of the per-slot hugepage "mixed attributes" tracking
    (``kvm_arch_post_set_memory_attributes``, ``hugepage_has_attrs``): a 2 MiB mapping is
    allowed only where the whole aligned 2 MiB GFN range has the same attributes and lies
    in one memslot.  kvm-qemu-host.md 6.1 step 7."""
    from .kvm_main import gfn_to_memslot

    base = fault.gfn & ~(PTRS_PER_PMD - 1)
    slot = gfn_to_memslot(kvm, fault.gfn)
    if slot is None or gfn_to_memslot(kvm, base) is not slot \
            or gfn_to_memslot(kvm, base + PTRS_PER_PMD - 1) is not slot:
        return False
    attrs = kvm.mem_attr_array.get(fault.gfn)
    return kvm.mem_attr_array.all_equal(base, base + PTRS_PER_PMD, attrs)


@traced("kvm")
def kvm_mmu_faultin_pfn(vcpu: KvmVcpu, fault: KvmPageFault) -> int:
    """``kvm_mmu_faultin_pfn(vcpu, fault, access)``: record ``mmu_invalidate_seq``; a
    private/shared mismatch with the GFN's attributes -> memory-fault exit, -EFAULT;
    private -> guest_memfd; shared -> the memslot's HVA page (``hva_to_pfn``).
    Returns RET_PF_CONTINUE, RET_PF_EMULATE (no memslot) or -errno."""
    from .kvm_main import gfn_to_hva_memslot, gfn_to_memslot

    kvm = vcpu.kvm
    fault.mmu_seq = kvm.mmu_invalidate_seq
    if fault.is_private != kvm_mem_is_private(kvm, fault.gfn):
        _memory_fault_exit(vcpu, fault)
        return -errno.EFAULT
    if fault.is_private:
        return kvm_mmu_faultin_pfn_private(vcpu, fault)
    slot = gfn_to_memslot(kvm, fault.gfn)
    if slot is None:
        return RetPf.RET_PF_EMULATE
    hva = gfn_to_hva_memslot(slot, fault.gfn)
    pfn = kvm.mm.get_user_page(hva, write=fault.write)
    if pfn < 0:
        # hva_to_pfn failed (the VMM never mapped the slot's HVA): kvm_handle_error_pfn
        # prepares a memory-fault exit and returns -EFAULT (arch/x86/kvm/mmu/mmu.c, v6.8+)
        _memory_fault_exit(vcpu, fault)
        return -errno.EFAULT
    fault.pfn = pfn
    fault.writable = not slot.flags & KVM_MEM_READONLY
    return RetPf.RET_PF_CONTINUE


def page_fault_can_be_fast_any_slot(kvm: KvmVm, fault: KvmPageFault) -> bool:
    """The slot-independent rules of ``page_fault_can_be_fast`` (arch/x86/kvm/mmu/mmu.c,
    v6.9): not with reserved bits (MMIO SPTEs); a not-present fault only when KVM
    disabled A/D bits (never with NPT, which has them); a present fault only for a write
    (a write-protection fault).  This alone is the pre-fix test of bug report R3."""
    if fault.rsvd:
        return False
    if not fault.present:
        return False  # !kvm_ad_enabled: NPT has A/D bits
    return fault.write


def page_fault_can_be_fast(kvm: KvmVm, fault: KvmPageFault) -> bool:
    """``page_fault_can_be_fast(kvm, fault)`` (arch/x86/kvm/mmu/mmu.c, v6.10+): never for
    a VM with private memory other than a software-protected VM (bug report R3's fix,
    "[PATCH 21/20] KVM: MMU: Disable fast path for private memslots"; the merged text
    may test the private/shared mismatch instead [unconfirmed], which gives the same
    answer for every fault that needs KVM_EXIT_MEMORY_FAULT), else the rules of
    :func:`page_fault_can_be_fast_any_slot`.  Returns a bool."""
    if kvm.has_private_mem and kvm.vm_type != KVM_X86_SW_PROTECTED_VM:
        return False
    return page_fault_can_be_fast_any_slot(kvm, fault)


@traced("kvm")
def fast_page_fault(vcpu: KvmVcpu, fault: KvmPageFault) -> int:
    """``fast_page_fault(vcpu, fault)`` (arch/x86/kvm/mmu/mmu.c), lockless: if the SPTE
    for the GFN is present and already allows the access, the fault is taken as
    spurious (another vCPU fixed it) -> RET_PF_SPURIOUS, the guest is re-entered.  The
    model has no write-protected or access-tracked SPTEs, so anything else is
    RET_PF_INVALID (take the slow path)."""
    spte = vcpu.kvm.host.npt_lookup(vcpu.kvm.npt, fault.gfn)
    if spte is not None and (spte.writable or not fault.write):
        emit_instant("kvm", "fast page fault: spurious", gfn=fault.gfn)
        return RetPf.RET_PF_SPURIOUS
    return RetPf.RET_PF_INVALID


@traced("kvm")
def kvm_tdp_page_fault(vcpu: KvmVcpu, fault: KvmPageFault) -> int:
    """``kvm_tdp_page_fault`` -> ``kvm_tdp_mmu_page_fault``: the lockless fast path when
    ``page_fault_can_be_fast`` (profile override point) allows it, else fault the PFN in
    and install an SPTE unless an invalidation ran meanwhile (RET_PF_RETRY): 2 MiB for a
    private fault whose ``max_level`` (folio order and RMP level) and the hugepage
    attribute check allow it and whose GFN and PFN are equally aligned, else 4 KiB.
    Returns a RET_PF_* value or -errno."""
    kvm = vcpu.kvm
    if kvm.profile.call("page_fault_can_be_fast", page_fault_can_be_fast)(kvm, fault):
        r = fast_page_fault(vcpu, fault)
        if r != RetPf.RET_PF_INVALID:
            return r
    r = kvm_mmu_faultin_pfn(vcpu, fault)
    if r != RetPf.RET_PF_CONTINUE:
        return r
    kvm = vcpu.kvm
    if fault.mmu_seq != kvm.mmu_invalidate_seq:
        return RetPf.RET_PF_RETRY
    level = PG_LEVEL_4K
    if (fault.is_private and fault.max_level >= PG_LEVEL_2M
            and (fault.gfn ^ fault.pfn) & (PTRS_PER_PMD - 1) == 0
            and kvm_hugepage_allowed(kvm, fault)):
        level = PG_LEVEL_2M
    mask = ~(PTRS_PER_PMD - 1) if level == PG_LEVEL_2M else ~0
    fault.goal_level = level
    kvm.host.npt_map(kvm.npt, fault.gfn & mask, fault.pfn & mask, level, fault.writable)
    emit_instant("kvm", "spte installed", gfn=fault.gfn & mask, pfn=fault.pfn & mask,
                 private=fault.is_private, level=int(level))
    return RetPf.RET_PF_FIXED


@traced("kvm")
def kvm_mmu_page_fault(vcpu: KvmVcpu, cr2_or_gpa: int, error_code: int) -> int:
    """``kvm_mmu_page_fault(vcpu, cr2_or_gpa, error_code, insn, insn_len)``: handle an
    #NPF at GPA ``cr2_or_gpa`` (bytes).  ``error_code`` (u64) carries PFERR_PRIVATE_ACCESS
    (bit 49) for private accesses.  Returns 1 (resume; the access is retried), 0 (exit to
    userspace) or -errno (e.g. -EFAULT with KVM_EXIT_MEMORY_FAULT set)."""
    fault = KvmPageFault(
        addr=cr2_or_gpa,
        error_code=error_code,
        gfn=cr2_or_gpa >> PAGE_SHIFT,
        is_private=bool(error_code & PFERR_PRIVATE_ACCESS),
        write=bool(error_code & PFERR_WRITE_MASK),
        exec=bool(error_code & PFERR_FETCH_MASK),
        present=bool(error_code & PFERR_PRESENT_MASK),
        rsvd=bool(error_code & PFERR_RSVD_MASK),
    )
    r = kvm_tdp_page_fault(vcpu, fault)
    if r < 0:
        return r
    if r == RetPf.RET_PF_EMULATE:
        # Model: MMIO emulation is not modelled -> emulation failure to userspace.
        run = vcpu.run
        run.exit_reason = KVM_EXIT_INTERNAL_ERROR
        run.internal.suberror = KVM_INTERNAL_ERROR_EMULATION
        run.internal.ndata = 1
        run.internal.data[0] = cr2_or_gpa
        return 0
    return 1


def kvm_mmu_invalidate_begin(kvm: KvmVm) -> None:
    """``kvm_mmu_invalidate_begin``: faults racing with the invalidation will retry."""
    kvm.mmu_invalidate_seq += 1


def kvm_mmu_invalidate_end(kvm: KvmVm) -> None:
    """``kvm_mmu_invalidate_end``: bump the sequence again (faults see a new value)."""
    kvm.mmu_invalidate_seq += 1


@traced("kvm")
def kvm_unmap_gfn_range(kvm: KvmVm, start: int, end: int, attr_filter: str = "all") -> int:
    """``kvm_unmap_gfn_range(kvm, range)``: zap the SPTEs of GFNs ``[start, end)``;
    returns how many leaves were zapped (non-zero means a TLB flush).  For SNP the
    ``attr_filter`` has no effect (no mirror roots): every SPTE in the range is zapped
    (kvm-qemu-host.md 6.1 step 5, [unconfirmed])."""
    return kvm.host.npt_unmap(kvm.npt, start, end)


@traced("kvm")
def kvm_zap_gfn_range(kvm: KvmVm, gfn_start: int, gfn_end: int) -> None:
    """``kvm_zap_gfn_range(kvm, gfn_start, gfn_end)``: zap SPTEs in ``[start, end)``
    under an invalidation."""
    kvm_mmu_invalidate_begin(kvm)
    kvm.host.npt_unmap(kvm.npt, gfn_start, gfn_end)
    kvm_mmu_invalidate_end(kvm)


@traced("kvm")
def kvm_tdp_map_page(vcpu: KvmVcpu, gpa: int, error_code: int) -> tuple[int, int]:
    """``kvm_tdp_map_page(vcpu, gpa, error_code, &level)`` (arch/x86/kvm/mmu/mmu.c,
    v6.11+): fault ``gpa`` in as a prefetch, repeating while the fault path asks for a
    retry.  Returns ``(r, level)``: r 0 when an SPTE is there (RET_PF_FIXED, _SPURIOUS,
    _WRITE_PROTECTED), -ENOENT for RET_PF_EMULATE (no memslot: MMIO), the fault path's
    -errno (e.g. -EFAULT after a private/shared mismatch, which also fills
    ``run->memory_fault``), -EINTR on a pending signal (``run->immediate_exit``), or
    -EIO for anything else (KVM WARNs).  ``level`` is the level mapped."""
    for _ in range(_PREFAULT_RETRY_LIMIT):
        if vcpu.run.immediate_exit:
            return -errno.EINTR, PG_LEVEL_4K
        fault = KvmPageFault(
            addr=gpa, error_code=error_code, gfn=gpa >> PAGE_SHIFT,
            is_private=bool(error_code & PFERR_PRIVATE_ACCESS),
            write=bool(error_code & PFERR_WRITE_MASK), exec=bool(error_code & PFERR_FETCH_MASK),
            present=bool(error_code & PFERR_PRESENT_MASK), prefetch=True,
        )
        r = kvm_tdp_page_fault(vcpu, fault)
        if r != RetPf.RET_PF_RETRY:
            break
    if r < 0:
        return r, PG_LEVEL_4K
    if r in (RetPf.RET_PF_FIXED, RetPf.RET_PF_SPURIOUS, RetPf.RET_PF_WRITE_PROTECTED):
        level = fault.goal_level
        if r != RetPf.RET_PF_FIXED:
            spte = vcpu.kvm.host.npt_lookup(vcpu.kvm.npt, fault.gfn)
            level = spte.level if spte is not None else PG_LEVEL_4K
        return 0, level
    if r == RetPf.RET_PF_EMULATE:
        return -errno.ENOENT, PG_LEVEL_4K
    vcpu.kvm.pr("WARN: could not fix page fault during prefault")
    return -errno.EIO, PG_LEVEL_4K


@traced("kvm")
def kvm_arch_vcpu_pre_fault_memory(vcpu: KvmVcpu, range_: Any) -> int:
    """``kvm_arch_vcpu_pre_fault_memory(vcpu, range)`` (arch/x86/kvm/mmu/mmu.c, v6.11+):
    map the page at ``range.gpa`` as the guest would fault it (private when the GFN's
    attribute is PRIVATE on a VM with private memory) and return how many bytes of the
    range that mapping covers (up to the end of its 4 KiB or 2 MiB page, at most
    ``range.size``).  Errors: -EOPNOTSUPP while ``pre_fault_allowed`` is false (an SNP
    VM before SNP_LAUNCH_FINISH), else those of :func:`kvm_tdp_map_page`."""
    kvm = vcpu.kvm
    if not kvm.pre_fault_allowed:
        return -errno.EOPNOTSUPP
    gfn = range_.gpa >> PAGE_SHIFT
    error_code = int(PFERR_GUEST_FINAL_MASK)
    if kvm.has_private_mem and kvm_mem_is_private(kvm, gfn):
        error_code |= int(PFERR_PRIVATE_ACCESS)
    r, level = kvm_tdp_map_page(vcpu, range_.gpa, error_code)
    if r < 0:
        return r
    span = (PTRS_PER_PMD if level == PG_LEVEL_2M else 1) << PAGE_SHIFT
    end = (range_.gpa & ~(span - 1)) + span
    return min(range_.size, end - range_.gpa)
