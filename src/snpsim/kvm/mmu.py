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
from .kvm_host import KvmMemorySlot, KvmVcpu, KvmVm
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
    "kvm_mmu_prepare_memory_fault_exit",
    "kvm_unmap_gfn_range",
    "kvm_zap_gfn_range",
    "kvm_mmu_invalidate_begin",
    "kvm_mmu_invalidate_range_add",
    "kvm_mmu_invalidate_end",
    "kvm_mmu_unmap_gfn_range",
    "mmu_invalidate_retry_gfn",
    "mmu_invalidate_retry_gfn_unsafe",
    "is_page_fault_stale",
    "kvm_mmu_max_mapping_level",
    "hugepage_has_attrs",
    "kvm_mmu_init_memslot_memory_attributes",
    "kvm_arch_pre_set_memory_attributes",
    "kvm_arch_post_set_memory_attributes",
    "INVALID_GPA",
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


def kvm_mmu_prepare_memory_fault_exit(vcpu: KvmVcpu, fault: KvmPageFault) -> None:
    """``kvm_mmu_prepare_memory_fault_exit(vcpu, fault)`` (arch/x86/kvm/mmu/mmu_internal.h,
    v6.8+): the memory-fault exit for the faulting page -- gpa ``fault.gfn << 12``, size
    4096, the access's write/exec/private bits (:func:`kvm_prepare_memory_fault_exit`)."""
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
        kvm_mmu_prepare_memory_fault_exit(vcpu, fault)
        return -errno.EFAULT
    r, pfn, max_order = kvm_gmem_get_pfn(kvm, slot, fault.gfn)
    if r:
        kvm_mmu_prepare_memory_fault_exit(vcpu, fault)
        return r
    fault.pfn = pfn
    # max_level = the level the folio allows, capped for SNP by the RMP level of the PFN
    # (kvm_max_private_mapping_level: only SEV's gmem_max_mapping_level has a say)
    gmem_level = PG_LEVEL_2M if max_order >= HPAGE_PMD_ORDER else PG_LEVEL_4K
    if kvm.sev.snp:
        gmem_level = min(gmem_level, sev_private_max_mapping_level(kvm, pfn))
    fault.max_level = gmem_level
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


def hugepage_has_attrs(kvm: KvmVm, gfn: int, attrs: int) -> bool:
    """``hugepage_has_attrs(kvm, slot, gfn, PG_LEVEL_2M, attrs)`` (arch/x86/kvm/mmu/mmu.c,
    v6.8+): every GFN of the 2 MiB range starting at ``gfn`` (2 MiB aligned) has exactly
    ``attrs`` (``kvm_range_has_memory_attributes`` with mask ~0)."""
    return kvm.mem_attr_array.all_equal(gfn, gfn + PTRS_PER_PMD, attrs)


def _lpage_in_slot(slot: KvmMemorySlot, h: int) -> bool:
    """Model-only: the 2 MiB range ``h`` lies wholly inside ``slot`` (else KVM's
    ``disallow_lpage`` count already forbids a 2 MiB mapping there)."""
    return slot.base_gfn <= h * PTRS_PER_PMD and (h + 1) * PTRS_PER_PMD <= slot.base_gfn + slot.npages


def _update_mixed(kvm: KvmVm, slot: KvmMemorySlot, h: int) -> None:
    base = h * PTRS_PER_PMD
    if hugepage_has_attrs(kvm, base, kvm.mem_attr_array.get(base)):
        slot.lpage_mixed.discard(h)
    else:
        slot.lpage_mixed.add(h)


def kvm_mmu_init_memslot_memory_attributes(kvm: KvmVm, slot: KvmMemorySlot) -> None:
    """``kvm_mmu_init_memslot_memory_attributes(kvm, slot)`` (arch/x86/kvm/mmu/mmu.c,
    v6.8+), for a new slot of a VM with private memory: mark each 2 MiB range of the
    slot whose attributes are not all the same as mixed.  Cost: only ranges holding an
    attribute boundary can be mixed, so the work follows the attribute runs, not the
    slot's size."""
    slot.lpage_mixed.clear()
    end = slot.base_gfn + slot.npages
    for start, _e, _v in kvm.mem_attr_array.runs(slot.base_gfn, end):
        h = start // PTRS_PER_PMD
        if start % PTRS_PER_PMD and _lpage_in_slot(slot, h):
            _update_mixed(kvm, slot, h)


def kvm_arch_post_set_memory_attributes(kvm: KvmVm, slot: KvmMemorySlot, start: int,
                                        end: int, attrs: int) -> bool:
    """``kvm_arch_post_set_memory_attributes(kvm, range)`` (arch/x86/kvm/mmu/mmu.c,
    v6.8+), after GFNs ``[start, end)`` of ``slot`` got ``attrs``: the 2 MiB ranges at
    the two ends, partly covered, are mixed unless ``hugepage_has_attrs``; those wholly
    inside now all have ``attrs`` and are not mixed.  Ranges not wholly in the slot are
    skipped (``disallow_lpage`` forbids them anyway).  Returns False (no TLB flush)."""
    del attrs  # the end ranges are checked against what they hold now
    h0 = start // PTRS_PER_PMD
    h1 = (end - 1) // PTRS_PER_PMD
    inner_lo = h0 + (1 if start % PTRS_PER_PMD else 0)
    inner_hi = h1 - (1 if end % PTRS_PER_PMD else 0)
    if inner_lo <= inner_hi:
        if inner_hi - inner_lo + 1 > len(slot.lpage_mixed):
            slot.lpage_mixed -= {h for h in slot.lpage_mixed if inner_lo <= h <= inner_hi}
        else:
            slot.lpage_mixed.difference_update(range(inner_lo, inner_hi + 1))
    for h in {h0, h1}:
        if not inner_lo <= h <= inner_hi and _lpage_in_slot(slot, h):
            _update_mixed(kvm, slot, h)
    return False


@traced("kvm")
def kvm_arch_pre_set_memory_attributes(kvm: KvmVm, slot: KvmMemorySlot, start: int,
                                       end: int, attrs: int) -> bool:
    """``kvm_arch_pre_set_memory_attributes(kvm, range)`` (arch/x86/kvm/mmu/mmu.c,
    v6.15+ with commit 9129633d568e "Prevent installing hugepages when mem attributes
    are changing"), for GFNs ``[start, end)`` of ``slot`` about to get ``attrs``: the
    2 MiB ranges at the head and at the tail that the update only partly covers, lie
    wholly in the slot and are not marked mixed are added to the invalidation too (so
    no fault installs a 2 MiB mapping there until the update ends); then the SPTEs of
    ``[start, end)`` are zapped.  ``end <= start`` is a WARN (nothing done).  Returns
    True when something was zapped (TLB flush)."""
    del attrs  # only the zap's filter depends on it, and SNP has no mirror roots
    if end <= start:
        kvm.pr("WARN: kvm_arch_pre_set_memory_attributes with an empty range")
        return False
    slot_end = slot.base_gfn + slot.npages
    head = start & ~(PTRS_PER_PMD - 1)
    tail = (end - 1) & ~(PTRS_PER_PMD - 1)
    if ((head != start or head + PTRS_PER_PMD > end) and head >= slot.base_gfn
            and head + PTRS_PER_PMD <= slot_end
            and head // PTRS_PER_PMD not in slot.lpage_mixed):
        kvm_mmu_invalidate_range_add(kvm, head, head + PTRS_PER_PMD)
    if (tail != head and tail + PTRS_PER_PMD > end and tail + PTRS_PER_PMD <= slot_end
            and tail // PTRS_PER_PMD not in slot.lpage_mixed):
        kvm_mmu_invalidate_range_add(kvm, tail, tail + PTRS_PER_PMD)
    return bool(kvm_unmap_gfn_range(kvm, start, end))


def kvm_mmu_max_mapping_level(kvm: KvmVm, fault: KvmPageFault) -> int:
    """The 2 MiB half of ``kvm_mmu_max_mapping_level`` (arch/x86/kvm/mmu/mmu.c, v6.18):
    PG_LEVEL_2M when the fault's 2 MiB range lies in one memslot and is not marked
    mixed (``KVM_LPAGE_MIXED_FLAG``: see :func:`kvm_arch_post_set_memory_attributes`),
    capped by ``fault.max_level`` (the guest_memfd folio order and, for SNP, the RMP
    level); else PG_LEVEL_4K.  Model choice: a shared fault always maps 4 KiB."""
    from .kvm_main import gfn_to_memslot

    if not fault.is_private or fault.max_level < PG_LEVEL_2M:
        return PG_LEVEL_4K
    slot = gfn_to_memslot(kvm, fault.gfn)
    h = fault.gfn // PTRS_PER_PMD
    if slot is None or not _lpage_in_slot(slot, h) or h in slot.lpage_mixed:
        return PG_LEVEL_4K
    return PG_LEVEL_2M


@traced("kvm")
def kvm_mmu_faultin_pfn(vcpu: KvmVcpu, fault: KvmPageFault) -> int:
    """``kvm_mmu_faultin_pfn(vcpu, fault, access)`` (arch/x86/kvm/mmu/mmu.c, v6.18):
    sample ``mmu_invalidate_seq``; a private/shared mismatch with the GFN's attributes ->
    memory-fault exit, -EFAULT; no memslot -> RET_PF_EMULATE (a private access without
    a memslot -> memory-fault exit, -EFAULT: ``kvm_handle_noslot_fault``); a relevant
    invalidation (:func:`mmu_invalidate_retry_gfn_unsafe`) -> RET_PF_RETRY, checked
    before and again after the PFN is looked up; private -> guest_memfd; shared -> the
    memslot's HVA page (``hva_to_pfn``).  Returns RET_PF_CONTINUE, RET_PF_RETRY,
    RET_PF_EMULATE or -errno."""
    from .kvm_main import gfn_to_hva_memslot, gfn_to_memslot

    kvm = vcpu.kvm
    fault.mmu_seq = kvm.mmu_invalidate_seq
    if fault.is_private != kvm_mem_is_private(kvm, fault.gfn):
        kvm_mmu_prepare_memory_fault_exit(vcpu, fault)
        return -errno.EFAULT
    slot = gfn_to_memslot(kvm, fault.gfn)
    if slot is None:
        if fault.is_private:
            kvm_mmu_prepare_memory_fault_exit(vcpu, fault)
            return -errno.EFAULT
        return RetPf.RET_PF_EMULATE
    if mmu_invalidate_retry_gfn_unsafe(kvm, fault.mmu_seq, fault.gfn):
        return RetPf.RET_PF_RETRY
    if fault.is_private:
        r = kvm_mmu_faultin_pfn_private(vcpu, fault)
        if r != RetPf.RET_PF_CONTINUE:
            return r
    else:
        hva = gfn_to_hva_memslot(slot, fault.gfn)
        pfn = kvm.mm.get_user_page(hva, write=fault.write)
        if pfn < 0:
            # hva_to_pfn failed (the VMM never mapped the slot's HVA): kvm_handle_error_pfn
            # prepares a memory-fault exit and returns -EFAULT (arch/x86/kvm/mmu/mmu.c, v6.8+)
            kvm_mmu_prepare_memory_fault_exit(vcpu, fault)
            return -errno.EFAULT
        fault.pfn = pfn
        fault.writable = not slot.flags & KVM_MEM_READONLY
    if mmu_invalidate_retry_gfn_unsafe(kvm, fault.mmu_seq, fault.gfn):
        return RetPf.RET_PF_RETRY
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
    and install an SPTE unless :func:`is_page_fault_stale` (RET_PF_RETRY): at the level
    :func:`kvm_mmu_max_mapping_level` allows (2 MiB only for a private fault whose
    folio, RMP level and unmixed attributes allow it), else 4 KiB.
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
    if is_page_fault_stale(vcpu, fault):
        emit_instant("kvm", "page fault stale: retry", gfn=fault.gfn)
        return RetPf.RET_PF_RETRY
    level = kvm_mmu_max_mapping_level(kvm, fault)
    if level == PG_LEVEL_2M and (fault.gfn ^ fault.pfn) & (PTRS_PER_PMD - 1):
        level = PG_LEVEL_4K  # model: KVM VM_BUG_ONs here; guest_memfd aligns its folios
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
    userspace) or -errno (e.g. -EFAULT with KVM_EXIT_MEMORY_FAULT set).

    A software-protected VM (``KVM_X86_SW_PROTECTED_VM``) has no hardware that reports
    private accesses: unless the fault is a reserved-bit (MMIO) fault, KVM adds
    PFERR_PRIVATE_ACCESS itself when the GFN's attributes say PRIVATE at this moment, so
    the guest's access is private exactly where the VMM set the attribute (v6.10+,
    ``kvm_mmu_page_fault``).  A private reserved-bit fault is -EFAULT (WARN)."""
    kvm = vcpu.kvm
    if (kvm.vm_type == KVM_X86_SW_PROTECTED_VM and not error_code & PFERR_RSVD_MASK
            and kvm_mem_is_private(kvm, cr2_or_gpa >> PAGE_SHIFT)):
        error_code |= int(PFERR_PRIVATE_ACCESS)
    if error_code & PFERR_RSVD_MASK and error_code & PFERR_PRIVATE_ACCESS:
        kvm.pr("WARN: private access with a reserved-bit fault")
        return -errno.EFAULT
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


#: ``INVALID_GPA`` (include/linux/kvm_types.h): ``~0`` as a u64; the "no range yet"
#: value of ``mmu_invalidate_range_start``/``_end``.
INVALID_GPA = (1 << 64) - 1


def kvm_mmu_invalidate_begin(kvm: KvmVm) -> None:
    """``kvm_mmu_invalidate_begin(kvm)`` (virt/kvm/kvm_main.c, v6.8+): one more
    invalidation in progress; the first one resets the range to ``INVALID_GPA`` (a
    ``kvm_mmu_invalidate_range_add`` must follow).  The sequence is not bumped here."""
    kvm.mmu_invalidate_in_progress += 1
    if kvm.mmu_invalidate_in_progress == 1:
        kvm.mmu_invalidate_range_start = INVALID_GPA
        kvm.mmu_invalidate_range_end = INVALID_GPA


def kvm_mmu_invalidate_range_add(kvm: KvmVm, start: int, end: int) -> None:
    """``kvm_mmu_invalidate_range_add(kvm, start, end)`` (virt/kvm/kvm_main.c, v6.8+):
    widen the in-progress range to cover GFNs ``[start, end)`` (the first call sets it).
    Outside an invalidation it is a KVM WARN (logged)."""
    if not kvm.mmu_invalidate_in_progress:
        kvm.pr("WARN: kvm_mmu_invalidate_range_add outside an invalidation")
    if kvm.mmu_invalidate_range_start == INVALID_GPA:
        kvm.mmu_invalidate_range_start = start
        kvm.mmu_invalidate_range_end = end
    else:
        kvm.mmu_invalidate_range_start = min(kvm.mmu_invalidate_range_start, start)
        kvm.mmu_invalidate_range_end = max(kvm.mmu_invalidate_range_end, end)


def kvm_mmu_invalidate_end(kvm: KvmVm) -> None:
    """``kvm_mmu_invalidate_end(kvm)`` (virt/kvm/kvm_main.c, v6.8+): bump
    ``mmu_invalidate_seq`` (a fault that sampled the old value will retry), then one
    invalidation fewer in progress.  Going below zero is a KVM_BUG_ON (the VM is marked
    bugged); ending with no range added is a WARN (logged)."""
    kvm.mmu_invalidate_seq += 1
    kvm.mmu_invalidate_in_progress -= 1
    if kvm.mmu_invalidate_in_progress < 0:
        kvm.bugged = True
        kvm.pr("KVM_BUG_ON: mmu_invalidate_in_progress < 0")
    if kvm.mmu_invalidate_range_start == INVALID_GPA:
        kvm.pr("WARN: kvm_mmu_invalidate_end with no range added")


def mmu_invalidate_retry_gfn(kvm: KvmVm, mmu_seq: int, gfn: int) -> bool:
    """``mmu_invalidate_retry_gfn(kvm, mmu_seq, gfn)`` (include/linux/kvm_host.h, v6.8+),
    asked under ``mmu_lock`` before a fault installs an SPTE: True (retry the fault) when
    an invalidation is in progress and ``gfn`` is in ``[range_start, range_end)`` -- or
    its range is still ``INVALID_GPA`` (KVM WARNs and retries) -- or when
    ``mmu_invalidate_seq`` is no longer ``mmu_seq`` (an invalidation ended since the
    fault sampled it)."""
    if kvm.mmu_invalidate_in_progress:
        if (kvm.mmu_invalidate_range_start == INVALID_GPA
                or kvm.mmu_invalidate_range_end == INVALID_GPA):
            kvm.pr("WARN: mmu_invalidate_retry_gfn with no invalidation range")
            return True
        if kvm.mmu_invalidate_range_start <= gfn < kvm.mmu_invalidate_range_end:
            return True
    return kvm.mmu_invalidate_seq != mmu_seq


def mmu_invalidate_retry_gfn_unsafe(kvm: KvmVm, mmu_seq: int, gfn: int) -> bool:
    """``mmu_invalidate_retry_gfn_unsafe(kvm, mmu_seq, gfn)`` (include/linux/kvm_host.h,
    v6.8+): the same test without ``mmu_lock`` (so without the WARN), which
    ``kvm_mmu_faultin_pfn`` makes before and after looking the PFN up."""
    if (kvm.mmu_invalidate_in_progress
            and kvm.mmu_invalidate_range_start <= gfn < kvm.mmu_invalidate_range_end):
        return True
    return kvm.mmu_invalidate_seq != mmu_seq


def is_page_fault_stale(vcpu: KvmVcpu, fault: KvmPageFault) -> bool:
    """``is_page_fault_stale(vcpu, fault)`` (arch/x86/kvm/mmu/mmu.c, v6.8+), under
    ``mmu_lock`` just before the SPTE is installed: with a memslot, a relevant
    invalidation since the fault sampled ``mmu_invalidate_seq``
    (:func:`mmu_invalidate_retry_gfn`).  The model has no obsolete roots."""
    from .kvm_main import gfn_to_memslot

    return (gfn_to_memslot(vcpu.kvm, fault.gfn) is not None
            and mmu_invalidate_retry_gfn(vcpu.kvm, fault.mmu_seq, fault.gfn))


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
    inside an invalidation of that range (begin, range_add, end)."""
    kvm_mmu_invalidate_begin(kvm)
    kvm_mmu_invalidate_range_add(kvm, gfn_start, gfn_end)
    kvm.host.npt_unmap(kvm.npt, gfn_start, gfn_end)
    kvm_mmu_invalidate_end(kvm)


@traced("kvm")
def kvm_mmu_unmap_gfn_range(kvm: KvmVm, start: int, end: int, attr_filter: str = "all") -> int:
    """``kvm_mmu_unmap_gfn_range(kvm, range)`` (virt/kvm/kvm_main.c, v6.8+): add
    ``[start, end)`` to the invalidation in progress, then :func:`kvm_unmap_gfn_range`.
    Returns what that returns."""
    kvm_mmu_invalidate_range_add(kvm, start, end)
    return kvm_unmap_gfn_range(kvm, start, end, attr_filter)


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
