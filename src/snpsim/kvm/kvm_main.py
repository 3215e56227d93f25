# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The KVM ioctl surface and the host syscalls a VMM uses: what userspace sees.

Mirrors ``virt/kvm/kvm_main.c`` (mainline >= v6.18 for memory attributes,
kvm-qemu-host.md 6.1) and the syscall entry points of the host kernel the VMM needs
(``open``, ``ioctl``, ``mmap`` of anonymous memory and of the vCPU's ``kvm_run``,
``madvise``, ``fallocate`` on a guest_memfd, ``close``).  The VMM (``snpsim.vmm``) imports
only this module.

Shape (Pythonic but faithful; documented in docs/host.md):

* :class:`Kvm` is the host kernel as one process sees it: a file table of int fds.
  ``kvm = Kvm(host_port)``; ``sys_fd = kvm.open("/dev/kvm")``.
* ``kvm.ioctl(fd, request, arg) -> int``: ``request`` is the ioctl number from
  :mod:`snpsim.spec.kvm_uapi` (``KVM_CREATE_VM``, ``KVM_SET_MEMORY_ATTRIBUTES``, ...),
  ``arg`` an int or the argument dataclass from :mod:`snpsim.kvm.uapi`.  Returns >= 0
  (a new fd, or 0) on success and ``-errno`` (stdlib :mod:`errno` numbers) on failure,
  as the raw syscall does.  KVM writes outputs back into the dataclass, as it would into
  user memory.
* ``kvm.mmap_vcpu_run(vcpu_fd) -> KvmRun`` is the mmap of the vCPU fd.
* ``kvm.mmap(length) -> hva``, ``kvm.madvise(hva, len, advice)``,
  ``kvm.fallocate(fd, mode, offset, len)``, ``kvm.read_user(hva, n)``,
  ``kvm.write_user(hva, data)``: anonymous memory of the VMM process (its RAM backing).

Nothing here raises for bad input: each argument is checked where KVM (or the VFS, or
mm) checks it and answered with its errno (a bad fd -EBADF; an unknown request -ENOTTY
on a VM, -EINVAL on /dev/kvm and vCPUs).  Argument types, which the C interface cannot
get wrong, are a model choice (see :meth:`Kvm.ioctl`): a struct that cannot be read is
-EFAULT, as ``copy_from_user`` of a bad pointer; a scalar that is not an int is -EINVAL
(-EBADF for an fd); ints are taken as the C value of their width.  A host fault inside
the kernel under any entry point is a recorded oops (:meth:`Kvm._host_fault`).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from snpsim.spec.falloc import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
from snpsim.spec.kvm_uapi import (
    KVM_CAP_EXIT_HYPERCALL,
    KVM_CAP_GUEST_MEMFD,
    KVM_CAP_MEMORY_ATTRIBUTES,
    KVM_CAP_MEMORY_FAULT_INFO,
    KVM_CAP_PRE_FAULT_MEMORY,
    KVM_CAP_READONLY_MEM,
    KVM_CAP_USER_MEMORY2,
    KVM_CAP_VM_TYPES,
    KVM_CHECK_EXTENSION,
    KVM_CREATE_GUEST_MEMFD,
    KVM_CREATE_VCPU,
    KVM_CREATE_VM,
    KVM_ENABLE_CAP,
    KVM_EXIT_HYPERCALL_VALID_MASK,
    KVM_MEM_GUEST_MEMFD,
    KVM_MEM_LOG_DIRTY_PAGES,
    KVM_MEM_READONLY,
    KVM_MEMORY_ATTRIBUTE_PRIVATE,
    KVM_MEMORY_ENCRYPT_OP,
    KVM_PRE_FAULT_MEMORY,
    KVM_RUN,
    KVM_SET_MEMORY_ATTRIBUTES,
    KVM_SET_USER_MEMORY_REGION2,
    KVM_X86_DEFAULT_VM,
    KVM_X86_SEV_ES_VM,
    KVM_X86_SEV_VM,
    KVM_X86_SNP_VM,
    KVM_X86_SW_PROTECTED_VM,
)
from snpsim.spec.mman import MADV_DONTNEED, MADV_REMOVE
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE, U64_MAX
from snpsim.trace.record import emit_instant, traced

from .guest_memfd import (
    GmemFile,
    kvm_gmem_bind,
    kvm_gmem_create,
    kvm_gmem_fallocate,
    kvm_gmem_preassign,
    kvm_gmem_release,
    kvm_gmem_truncate_all,
    kvm_gmem_unbind,
)
from .host_mm import HostMm, PageAllocator
from .kvm_host import KvmMemorySlot, KvmVcpu, KvmVm
from .mmu import (
    kvm_arch_post_set_memory_attributes,
    kvm_arch_pre_set_memory_attributes,
    kvm_mmu_init_memslot_memory_attributes,
    kvm_mmu_invalidate_begin,
    kvm_mmu_invalidate_end,
    kvm_mmu_invalidate_range_add,
    kvm_mmu_unmap_gfn_range,
)
from .profiles import DEFAULT_PROFILE, KVM_PROFILES, KvmProfile
from .uapi import (
    KvmCreateGuestMemfd,
    KvmEnableCap,
    KvmMemoryAttributes,
    KvmPreFaultMemory,
    KvmRun,
    KvmRunHypercall,
    KvmRunInternal,
    KvmRunIo,
    KvmRunMemoryFault,
    KvmRunSystemEvent,
    KvmSevCmd,
    KvmSevInit,
    KvmSevLaunchMeasure,
    KvmSevLaunchStart,
    KvmSevLaunchUpdateData,
    KvmSevSnpLaunchFinish,
    KvmSevSnpLaunchStart,
    KvmSevSnpLaunchUpdate,
    KvmUserspaceMemoryRegion2,
    copy_from_user,
)

__all__ = [
    "Kvm",
    "KvmProfile",
    "KVM_PROFILES",
    "DEFAULT_PROFILE",
    # uAPI structs re-exported for the VMM
    "KvmRun",
    "KvmRunHypercall",
    "KvmRunMemoryFault",
    "KvmRunSystemEvent",
    "KvmRunIo",
    "KvmRunInternal",
    "KvmUserspaceMemoryRegion2",
    "KvmMemoryAttributes",
    "KvmCreateGuestMemfd",
    "KvmPreFaultMemory",
    "KvmEnableCap",
    "KvmSevCmd",
    "KvmSevInit",
    "KvmSevLaunchStart",
    "KvmSevLaunchUpdateData",
    "KvmSevLaunchMeasure",
    "KvmSevSnpLaunchStart",
    "KvmSevSnpLaunchUpdate",
    "KvmSevSnpLaunchFinish",
    "KVM_MEM_GUEST_MEMFD",
    "KVM_MEM_READONLY",
    "KVM_MEM_LOG_DIRTY_PAGES",
    "FALLOC_FL_KEEP_SIZE",
    "FALLOC_FL_PUNCH_HOLE",
    "MADV_DONTNEED",
    "MADV_REMOVE",
    # kernel functions
    "gfn_to_memslot",
    "gfn_to_hva_memslot",
    "kvm_vcpu_map",
    "kvm_read_guest",
    "kvm_write_guest",
    "kvm_vm_ioctl_set_mem_attributes",
    "kvm_vm_set_mem_attributes",
    "kvm_supported_mem_attributes",
    "kvm_set_memory_region",
    "kvm_vcpu_pre_fault_memory",
    "check_memory_region_flags",
    "kvm_arch_has_readonly_mem",
    "kvm_get_kvm",
    "kvm_put_kvm",
    "kvm_destroy_vm",
    "vfs_fallocate",
    "access_ok",
    "KVM_USER_MEM_SLOTS",
]

class _DevKvm:
    """The open /dev/kvm file (system fd)."""


# ---- memslots and guest memory (kvm_main.c) ----------------------------------------------


def gfn_to_memslot(kvm: KvmVm, gfn: int) -> KvmMemorySlot | None:
    """``gfn_to_memslot(kvm, gfn)``: the memslot containing ``gfn``, or None."""
    for slot in kvm.memslots.values():
        if slot.contains(gfn):
            return slot
    return None


def gfn_to_hva_memslot(slot: KvmMemorySlot, gfn: int) -> int:
    """``__gfn_to_hva_memslot(slot, gfn)``: the HVA (bytes) of ``gfn`` in the slot's
    shared (userspace) backing."""
    return slot.userspace_addr + ((gfn - slot.base_gfn) << PAGE_SHIFT)


@dataclass
class HostMap:
    """A kernel mapping of one guest page (``struct kvm_host_map``): ``gfn`` and the
    ``pfn`` backing it; ``spa`` the page's SPA (bytes)."""

    gfn: int
    pfn: int

    @property
    def spa(self) -> int:
        """SPA of the mapped page (bytes)."""
        return self.pfn << PAGE_SHIFT


def kvm_vcpu_map(vcpu: KvmVcpu, gfn: int) -> HostMap | None:
    """``kvm_vcpu_map(vcpu, gfn, &map)``: map the guest page ``gfn`` into the kernel
    through its memslot's userspace (shared) backing.  None (C: -EFAULT/-EINVAL) when no
    memslot covers ``gfn``.  Note: a private GFN maps its *shared* backing page, as in
    Linux (the HVA path never sees guest_memfd)."""
    kvm = vcpu.kvm
    slot = gfn_to_memslot(kvm, gfn)
    if slot is None:
        return None
    pfn = kvm.mm.get_user_page(gfn_to_hva_memslot(slot, gfn), write=True)
    if pfn < 0:
        return None
    return HostMap(gfn, pfn)


def kvm_read_guest(kvm: KvmVm, gpa: int, n: int) -> bytes | None:
    """``kvm_read_guest(kvm, gpa, data, len)``: read ``n`` bytes at GPA ``gpa`` through
    the memslots' HVAs.  None (C: -EFAULT) when a page has no memslot or its HVA is not
    mapped in the VMM (KVM accepts such a memslot; the copy faults)."""
    out = bytearray()
    while n > 0:
        gfn = gpa >> PAGE_SHIFT
        slot = gfn_to_memslot(kvm, gfn)
        if slot is None:
            return None
        take = min(n, PAGE_SIZE - (gpa & (PAGE_SIZE - 1)))
        if kvm.mm.get_user_page(gfn_to_hva_memslot(slot, gfn), write=False) < 0:
            return None  # __copy_from_user faults: -EFAULT
        out += kvm.mm.read_user(gfn_to_hva_memslot(slot, gfn) + (gpa & (PAGE_SIZE - 1)), take)
        gpa += take
        n -= take
    return bytes(out)


def kvm_write_guest(kvm: KvmVm, gpa: int, data: bytes) -> int:
    """``kvm_write_guest(kvm, gpa, data, len)``: write through the memslots' HVAs.
    Returns 0 or -EFAULT (no memslot, or an HVA the VMM has not mapped)."""
    pos = 0
    while pos < len(data):
        gfn = (gpa + pos) >> PAGE_SHIFT
        slot = gfn_to_memslot(kvm, gfn)
        if slot is None:
            return -errno.EFAULT
        off = (gpa + pos) & (PAGE_SIZE - 1)
        take = min(len(data) - pos, PAGE_SIZE - off)
        if kvm.mm.get_user_page(gfn_to_hva_memslot(slot, gfn), write=True) < 0:
            return -errno.EFAULT  # __copy_to_user faults
        kvm.mm.write_user(gfn_to_hva_memslot(slot, gfn) + off, data[pos : pos + take])
        pos += take
    return 0


# ---- memory attributes (kvm_main.c, kvm-qemu-host.md 6.1) ------------------------------------


def kvm_supported_mem_attributes(kvm: KvmVm) -> int:
    """``kvm_supported_mem_attributes(kvm)``: PRIVATE (8) for VMs with private memory."""
    return KVM_MEMORY_ATTRIBUTE_PRIVATE if kvm.has_private_mem else 0


@traced("kvm")
def kvm_pre_set_memory_attributes(kvm: KvmVm, slot: KvmMemorySlot, start: int, end: int,
                                  attributes: int) -> bool:
    """``kvm_pre_set_memory_attributes(kvm, range)`` (virt/kvm/kvm_main.c, v6.8+), for
    the GFNs ``[start, end)`` of ``slot``: add them to the invalidation whatever the
    change, then ``kvm_arch_pre_set_memory_attributes`` (which may widen the
    invalidation to the 2 MiB ranges at the ends, and zaps).  Returns True when
    something was zapped (TLB flush)."""
    kvm_mmu_invalidate_range_add(kvm, start, end)
    return kvm_arch_pre_set_memory_attributes(kvm, slot, start, end, attributes)


@traced("kvm")
def kvm_handle_gfn_range(kvm: KvmVm, start: int, end: int, attributes: int, *,
                         post: bool) -> bool:
    """``kvm_handle_gfn_range(kvm, range)`` (virt/kvm/kvm_main.c, v6.8+) for the two
    ranges of :func:`kvm_vm_set_mem_attributes`: for each memslot overlapping GFNs
    ``[start, end)``, on the first one take ``mmu_lock`` and call the ``on_lock``
    step -- ``kvm_mmu_invalidate_begin`` before the update (``post`` False),
    ``kvm_mmu_invalidate_end`` after it (``post`` True) -- then the handler on the
    slot's part of the range (:func:`kvm_pre_set_memory_attributes` /
    ``kvm_arch_post_set_memory_attributes``).  No overlapping memslot: nothing at all
    (no invalidation).  Returns True when a handler asked for a TLB flush."""
    found = False
    flush = False
    for slot in sorted(kvm.memslots.values(), key=lambda sl: sl.base_gfn):
        s = max(start, slot.base_gfn)
        e = min(end, slot.base_gfn + slot.npages)
        if s >= e:
            continue
        if not found:
            found = True
            if post:
                kvm_mmu_invalidate_end(kvm)
            else:
                kvm_mmu_invalidate_begin(kvm)
        if post:
            flush |= kvm_arch_post_set_memory_attributes(kvm, slot, s, e, attributes)
        else:
            flush |= kvm_pre_set_memory_attributes(kvm, slot, s, e, attributes)
    return flush


@traced("kvm")
def kvm_vm_set_mem_attributes(kvm: KvmVm, start: int, end: int, attributes: int) -> int:
    """``kvm_vm_set_mem_attributes(kvm, start, end, attributes)`` (virt/kvm/kvm_main.c,
    v6.8+): GFNs ``[start, end)``.

    No-op (0, no zap) when every GFN already has exactly ``attributes``.  Otherwise,
    in three steps a fault can run between: (1) ``kvm_handle_gfn_range`` with the
    pre-set range -- ``kvm_mmu_invalidate_begin``, then per overlapping memslot the
    range is added to the invalidation and its SPTEs zapped; (2) the new value is
    stored; (3) ``kvm_handle_gfn_range`` with the post-set range --
    ``kvm_mmu_invalidate_end`` (``mmu_invalidate_seq`` + 1), then per memslot the
    2 MiB mixed-attribute flags are recomputed.  A fault on a GFN of the range between
    (1) and (3) retries (:func:`snpsim.kvm.mmu.mmu_invalidate_retry_gfn`).  Returns 0.
    """
    if kvm.mem_attr_array.all_equal(start, end, attributes):
        emit_instant("kvm", "mem attributes unchanged", start=start, end=end)
        return 0
    kvm_handle_gfn_range(kvm, start, end, attributes, post=False)
    kvm.mem_attr_array.set(start, end, attributes)
    kvm_handle_gfn_range(kvm, start, end, attributes, post=True)
    return 0


@traced("kvm")
def kvm_vm_ioctl_set_mem_attributes(kvm: KvmVm, attrs: KvmMemoryAttributes) -> int:
    """``kvm_vm_ioctl_set_mem_attributes(kvm, attrs)`` (KVM_SET_MEMORY_ATTRIBUTES).

    Checks in order: ``flags != 0`` -> -EINVAL; unsupported attribute bits -> -EINVAL;
    ``size == 0`` or ``address + size`` wraps a u64 -> -EINVAL; address or size not 4 KiB
    aligned -> -EINVAL.  Then ``kvm_vm_set_mem_attributes(address >> 12, (address + size)
    >> 12)``.  Ranges need not be covered by memslots.
    """
    if attrs.flags:
        return -errno.EINVAL
    if attrs.attributes & ~kvm_supported_mem_attributes(kvm):
        return -errno.EINVAL
    if attrs.size == 0 or attrs.address + attrs.size > U64_MAX:
        return -errno.EINVAL
    if attrs.address & (PAGE_SIZE - 1) or attrs.size & (PAGE_SIZE - 1):
        return -errno.EINVAL
    start = attrs.address >> PAGE_SHIFT
    end = (attrs.address + attrs.size) >> PAGE_SHIFT
    return kvm_vm_set_mem_attributes(kvm, start, end, attrs.attributes)


# ---- KVM_PRE_FAULT_MEMORY (kvm_main.c, v6.10+) ---------------------------------------------------


@traced("kvm")
def kvm_vcpu_pre_fault_memory(vcpu: KvmVcpu, range_: KvmPreFaultMemory) -> int:
    """``kvm_vcpu_pre_fault_memory(vcpu, range)`` (virt/kvm/kvm_main.c, v6.11+): map the
    pages of ``[range.gpa, range.gpa + range.size)`` into the NPT ahead of the guest,
    advancing ``range.gpa``/``range.size`` (bytes) past what was mapped, which the ioctl
    copies back to userspace.

    Checks in order: ``flags`` != 0 -> -EINVAL; ``gpa`` or ``size`` not 4 KiB aligned, or
    ``gpa + size`` <= ``gpa`` as u64 (so also ``size`` 0) -> -EINVAL.  Then, page (or
    2 MiB mapping) by page, ``kvm_arch_vcpu_pre_fault_memory``; a pending signal
    (``run->immediate_exit``) stops with -EINTR; a result of 0 or -EIO is a kernel WARN
    and stops; any other error stops.  Returns 0 when at least one page was mapped,
    else the error that stopped the first step.  Counted in ``kvm.stat``.
    """
    from .mmu import kvm_arch_vcpu_pre_fault_memory

    if range_.flags:
        return -errno.EINVAL
    if range_.gpa & (PAGE_SIZE - 1) or range_.size & (PAGE_SIZE - 1):
        return -errno.EINVAL
    if (range_.gpa + range_.size) & U64_MAX <= range_.gpa:
        return -errno.EINVAL
    kvm = vcpu.kvm
    kvm.stat["KVM_PRE_FAULT_MEMORY"] += 1
    full_size = range_.size
    r = 0
    while True:
        if vcpu.run.immediate_exit:
            r = -errno.EINTR
            break
        r = kvm_arch_vcpu_pre_fault_memory(vcpu, range_)
        if r == 0 or r == -errno.EIO:
            kvm.pr(f"WARN: kvm_arch_vcpu_pre_fault_memory returned {r}")
            break
        if r < 0:
            break
        kvm.stat["pre_fault_pages"] += r >> PAGE_SHIFT
        range_.size -= r
        range_.gpa += r
        if not range_.size:
            break
    return r if full_size == range_.size else 0


# ---- memslots ----------------------------------------------------------------------------------


def kvm_arch_has_readonly_mem(kvm: KvmVm) -> bool:
    """x86 ``kvm_arch_has_readonly_mem(kvm)`` (arch/x86/include/asm/kvm_host.h, v6.11+):
    ``!kvm->arch.has_protected_state``, which ``svm_vm_init`` sets for SEV-ES and SNP
    VMs (their register state is encrypted, so KVM cannot emulate the MMIO a write to a
    read-only slot needs).  Also KVM_CHECK_EXTENSION(KVM_CAP_READONLY_MEM) on the VM."""
    return kvm.vm_type not in (KVM_X86_SEV_ES_VM, KVM_X86_SNP_VM)


def check_memory_region_flags(kvm: KvmVm, mem: KvmUserspaceMemoryRegion2) -> int:
    """``check_memory_region_flags(kvm, mem)`` (virt/kvm/kvm_main.c, v6.11+): allowed are
    KVM_MEM_LOG_DIRTY_PAGES; KVM_MEM_GUEST_MEMFD on a VM with private memory (and then
    no dirty logging); KVM_MEM_READONLY only when the VM has read-only memory
    (:func:`kvm_arch_has_readonly_mem`) and the slot is not a guest_memfd slot.  Any
    other bit -> -EINVAL.  So an SNP (or SEV-ES) VM gets -EINVAL for every read-only
    slot, guest_memfd or not."""
    valid = KVM_MEM_LOG_DIRTY_PAGES
    if kvm.has_private_mem:
        valid |= KVM_MEM_GUEST_MEMFD
    if mem.flags & KVM_MEM_GUEST_MEMFD:
        valid &= ~KVM_MEM_LOG_DIRTY_PAGES
    if kvm_arch_has_readonly_mem(kvm) and not mem.flags & KVM_MEM_GUEST_MEMFD:
        valid |= KVM_MEM_READONLY
    return -errno.EINVAL if mem.flags & ~valid else 0


#: ``KVM_MEM_SLOTS_NUM`` (SHRT_MAX) minus x86's ``KVM_INTERNAL_MEM_SLOTS`` (3):
#: include/linux/kvm_host.h, arch/x86/include/asm/kvm_host.h.
KVM_USER_MEM_SLOTS = 0x7FFF - 3
#: ``KVM_MEM_MAX_NR_PAGES`` ((1 << 31) - 1), include/linux/kvm_host.h.
KVM_MEM_MAX_NR_PAGES = (1 << 31) - 1
#: x86-64 ``TASK_SIZE_MAX`` with 4-level paging ((1 << 47) - PAGE_SIZE): the end of user
#: space that ``access_ok`` checks against (arch/x86/include/asm/page_64_types.h).
TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE
#: Model: MAXPHYADDR 52, so ``kvm_mmu_max_gfn()`` (arch/x86/kvm/mmu.h) is 2**40 - 1.
KVM_MMU_MAX_GFN = (1 << (52 - PAGE_SHIFT)) - 1


def access_ok(addr: int, size: int) -> bool:
    """x86-64 ``access_ok(addr, size)`` (arch/x86/include/asm/uaccess_64.h, v6.12+): the
    range ``[addr, addr + size)`` (u64, no wrap) ends at or below :data:`TASK_SIZE_MAX`."""
    end = addr + size
    return end <= U64_MAX and end <= TASK_SIZE_MAX


@traced("kvm")
def kvm_set_memory_region(kvm: KvmVm, mem: KvmUserspaceMemoryRegion2, gmem: Any) -> int:
    """``kvm_set_memory_region`` (virt/kvm/kvm_main.c, v6.18.38) for
    KVM_SET_USER_MEMORY_REGION2, with x86's ``kvm_arch_prepare_memory_region``.
    ``mem`` holds C values (u32/u64); ``gmem`` is what ``mem.guest_memfd`` names in the
    file table (None when no such fd).

    Checks in KVM's order, each -EINVAL unless said: ``check_memory_region_flags``;
    ``memory_size`` or ``guest_phys_addr`` not 4 KiB aligned; ``userspace_addr`` not
    aligned or ``[userspace_addr, + memory_size)`` failing :func:`access_ok`; for a
    guest_memfd slot ``guest_memfd_offset`` unaligned or ``offset + size`` wrapping; the
    address space (``slot >> 16``) not 0 (model: the SMM address space is not
    modelled) or slot id >= KVM_MEM_SLOTS_NUM; ``gpa + size`` wrapping; more than
    KVM_MEM_MAX_NR_PAGES pages.  ``memory_size`` 0 deletes the slot (no such slot ->
    -EINVAL).  An existing slot may only be moved or have its dirty-logging flag
    changed: a guest_memfd slot, another HVA, size or READONLY -> -EINVAL; the same
    values -> 0 (nothing to do).  A new or moved slot overlapping another -> -EEXIST,
    ending above ``kvm_mmu_max_gfn()`` -> -EINVAL; a guest_memfd slot is then bound
    (``kvm_gmem_bind``: -EBADF, -EINVAL).  Returns 0 or -errno.

    An HVA range the VMM never mapped is accepted, as by KVM: a later access through it
    gets -EFAULT (``kvm_read_guest``) or a KVM_EXIT_MEMORY_FAULT (the fault path).
    """
    r = check_memory_region_flags(kvm, mem)
    if r:
        return r
    as_id, sid = mem.slot >> 16, mem.slot & 0xFFFF
    if mem.memory_size & (PAGE_SIZE - 1) or mem.guest_phys_addr & (PAGE_SIZE - 1):
        return -errno.EINVAL
    if mem.userspace_addr & (PAGE_SIZE - 1) or not access_ok(mem.userspace_addr, mem.memory_size):
        return -errno.EINVAL
    if mem.flags & KVM_MEM_GUEST_MEMFD and (
            mem.guest_memfd_offset & (PAGE_SIZE - 1)
            or mem.guest_memfd_offset + mem.memory_size > U64_MAX):
        return -errno.EINVAL
    if as_id != 0 or sid >= 0x7FFF:
        return -errno.EINVAL
    if mem.guest_phys_addr + mem.memory_size > U64_MAX:
        return -errno.EINVAL
    if sid < KVM_USER_MEM_SLOTS and mem.memory_size >> PAGE_SHIFT > KVM_MEM_MAX_NR_PAGES:
        return -errno.EINVAL
    old = kvm.memslots.get(sid)
    if mem.memory_size == 0:
        if old is None:
            return -errno.EINVAL
        kvm_mmu_invalidate_begin(kvm)
        kvm_mmu_unmap_gfn_range(kvm, old.base_gfn, old.base_gfn + old.npages)
        kvm_mmu_invalidate_end(kvm)
        kvm_gmem_unbind(old)
        del kvm.memslots[sid]
        return 0
    base = mem.guest_phys_addr >> PAGE_SHIFT
    npages = mem.memory_size >> PAGE_SHIFT
    if old is not None:
        if (mem.flags & KVM_MEM_GUEST_MEMFD or mem.userspace_addr != old.userspace_addr
                or npages != old.npages or (mem.flags ^ old.flags) & KVM_MEM_READONLY):
            return -errno.EINVAL
        if base == old.base_gfn:
            old.flags = mem.flags  # KVM_MR_FLAGS_ONLY (dirty logging), or nothing
            return 0
    for s in kvm.memslots.values():
        if s is not old and s.base_gfn < base + npages and base < s.base_gfn + s.npages:
            return -errno.EEXIST
    if base + npages - 1 > KVM_MMU_MAX_GFN:
        return -errno.EINVAL
    if old is not None:  # KVM_MR_MOVE: the old range's mappings go
        kvm_mmu_invalidate_begin(kvm)
        kvm_mmu_unmap_gfn_range(kvm, old.base_gfn, old.base_gfn + old.npages)
        old.base_gfn = base
        if kvm.has_private_mem:  # new metadata for the moved slot (kvm_alloc_memslot_metadata)
            kvm_mmu_init_memslot_memory_attributes(kvm, old)
        kvm_mmu_invalidate_end(kvm)
        return 0
    slot = KvmMemorySlot(sid, base, npages, mem.userspace_addr, mem.flags)
    if mem.flags & KVM_MEM_GUEST_MEMFD:
        r = kvm_gmem_bind(kvm, slot, gmem, mem.guest_memfd_offset)
        if r:
            return r
    if kvm.has_private_mem:
        kvm_mmu_init_memslot_memory_attributes(kvm, slot)
    kvm.memslots[sid] = slot
    return 0


# ---- fallocate(2) (fs/open.c) -----------------------------------------------------------------

#: ``FALLOC_FL_MODE_MASK`` (include/linux/falloc.h, v6.15+): PUNCH_HOLE 0x02,
#: COLLAPSE_RANGE 0x08, ZERO_RANGE 0x10, INSERT_RANGE 0x20, UNSHARE_RANGE 0x40,
#: WRITE_ZEROES 0x80 (ALLOCATE_RANGE is 0).
FALLOC_FL_MODE_MASK = 0x02 | 0x08 | 0x10 | 0x20 | 0x40 | 0x80
_LLONG_MAX = (1 << 63) - 1


def _s64(v: int) -> int:
    """A u64 register value as the signed ``loff_t`` the syscall declares."""
    v &= U64_MAX
    return v - (1 << 64) if v >> 63 else v


def vfs_fallocate(file: Any, mode: int, offset: int, length: int) -> int:
    """``vfs_fallocate(file, mode, offset, len)`` (fs/open.c, mainline 2025-26): the
    generic checks before the file's own ``fallocate``, in order: ``offset`` < 0 or
    ``len`` <= 0 -> -EINVAL; bits outside FALLOC_FL_MODE_MASK | KEEP_SIZE -> -EOPNOTSUPP;
    PUNCH_HOLE without KEEP_SIZE, COLLAPSE/INSERT/WRITE_ZEROES with KEEP_SIZE, or two
    modes at once -> -EOPNOTSUPP; a file that is not a regular file (a /dev/kvm, VM or
    vCPU fd: anonymous inodes) -> -ENODEV; ``offset + len`` past LLONG_MAX -> -EFBIG.
    ``mode`` is a C int, ``offset``/``length`` ``loff_t``.  Then a guest_memfd goes to
    :func:`kvm_gmem_fallocate`.  Returns 0 or -errno."""
    mode &= 0xFFFF_FFFF
    offset, length = _s64(offset), _s64(length)
    if offset < 0 or length <= 0:
        return -errno.EINVAL
    if mode & ~(FALLOC_FL_MODE_MASK | FALLOC_FL_KEEP_SIZE):
        return -errno.EOPNOTSUPP
    kind = mode & FALLOC_FL_MODE_MASK
    if kind == FALLOC_FL_PUNCH_HOLE:
        if not mode & FALLOC_FL_KEEP_SIZE:
            return -errno.EOPNOTSUPP
    elif kind in (0x08, 0x20, 0x80):
        if mode & FALLOC_FL_KEEP_SIZE:
            return -errno.EOPNOTSUPP
    elif kind not in (0, 0x10, 0x40):
        return -errno.EOPNOTSUPP
    if not isinstance(file, GmemFile):
        return -errno.ENODEV
    if offset + length > _LLONG_MAX:
        return -errno.EFBIG
    return kvm_gmem_fallocate(file, mode, offset, length)


# ---- VM lifetime (kvm_main.c) ----------------------------------------------------------------------


def kvm_get_kvm(kvm: KvmVm) -> None:
    """``kvm_get_kvm(kvm)``: take a reference (``users_count``)."""
    kvm.users_count += 1


def kvm_put_kvm(sys: Any, kvm: KvmVm) -> None:
    """``kvm_put_kvm(kvm)``: drop a reference; the last one runs ``kvm_destroy_vm``.
    ``sys``: the :class:`Kvm` (the model's host, which holds the ASID bookkeeping)."""
    kvm.users_count -= 1
    if kvm.users_count == 0:
        kvm_destroy_vm(sys, kvm)


@traced("kvm")
def kvm_destroy_vm(sys: Any, kvm: KvmVm) -> None:
    """``kvm_destroy_vm(kvm)`` (virt/kvm/kvm_main.c) -> ``kvm_arch_destroy_vm``
    (arch/x86/kvm/x86.c, v6.14+: vCPUs are freed before VM state, commit 17bcd7144263):

    1. ``kvm_destroy_vcpus``: each vCPU's ``svm_vcpu_free`` -> ``sev_free_vcpu`` (SNP:
       VMSA made shared, or leaked on failure);
    2. ``svm_vm_destroy`` -> ``sev_vm_destroy`` (SNP: guest-request pages freed,
       SNP_DECOMMISSION, ASID freed);
    3. ``kvm_free_memslots``: every slot's NPT mappings go (the TDP MMU is torn down)
       and guest_memfd slots are unbound (``kvm_gmem_unbind``).

    The guest's private pages are not touched here: they are guest_memfd folios,
    reclaimed when the guest_memfd is freed (``sev_gmem_invalidate``), which the file's
    own reference on the VM orders before or after this (see :meth:`Kvm.close`)."""
    from .svm_sev import sev_free_vcpu, sev_vm_destroy

    for vcpu in kvm.vcpus:
        sev_free_vcpu(vcpu)
    kvm.vcpus.clear()
    sev_vm_destroy(sys, kvm)
    slots = list(kvm.memslots.values())
    if slots:
        kvm_mmu_invalidate_begin(kvm)
    for slot in slots:
        kvm_mmu_unmap_gfn_range(kvm, slot.base_gfn, slot.base_gfn + slot.npages)
        kvm_gmem_unbind(slot)
    if slots:
        kvm_mmu_invalidate_end(kvm)
    kvm.memslots.clear()
    kvm.destroyed = True
    emit_instant("kvm", "kvm_destroy_vm", asid=kvm.sev.asid)


# ---- the host kernel as one process sees it --------------------------------------------------------


_VM_TYPES = (KVM_X86_DEFAULT_VM, KVM_X86_SW_PROTECTED_VM, KVM_X86_SEV_VM, KVM_X86_SEV_ES_VM,
             KVM_X86_SNP_VM)


class Kvm:
    """The host kernel with KVM loaded, seen from one VMM process.

    ``host``: the platform's host port; ``profile``: the KVM version profile (a
    :class:`KvmProfile` or its name; default ``"v7.0.12"``).  Holds the process's file
    table (int fds), its anonymous memory (``mm``) and the page allocator.  ``oopses``
    lists host kernel oopses (a host #PF with X86_PF_RMP inside KVM), model-only.
    """

    def __init__(self, host: Any, profile: KvmProfile | str = DEFAULT_PROFILE) -> None:
        self.host = host
        self.profile = KVM_PROFILES[profile] if isinstance(profile, str) else profile
        self.allocator = PageAllocator(host)
        self.mm = HostMm(host, self.allocator)
        self.files: dict[int, Any] = {}
        self._next_fd = 3
        self.next_asid = 1
        self.asids_in_use: set[int] = set()
        self._vms_by_fd: dict[int, KvmVm] = {}
        self.oopses: list[str] = []
        # Files in use by a syscall (id -> count: fdget) and files whose fd was closed
        # while in use, released at the last fdput (model of the file reference count).
        self._in_use: dict[int, int] = {}
        self._deferred: dict[int, Any] = {}

    # -- file table -------------------------------------------------------------------
    def _install(self, obj: Any) -> int:
        fd = self._next_fd
        self._next_fd += 1
        self.files[fd] = obj
        return fd

    def open(self, path: str = "/dev/kvm") -> int:
        """``open(path, O_RDWR)``: only ``/dev/kvm`` exists; else -ENOENT."""
        if path != "/dev/kvm":
            return -errno.ENOENT
        return self._install(_DevKvm())

    # -- host faults under any entry point ---------------------------------------------------
    def _host_fault(self, f: BaseException, entry: str) -> int:
        """A host #PF (X86_PF_RMP) or a :class:`~snpsim.kvm.kvm_host.KernelOops` raised
        inside the host kernel under ``entry`` (ioctl, fallocate, close, mmap, madvise):
        a kernel oops.  Recorded in ``oopses`` and traced the same way from every entry
        point; the syscall returns -EFAULT (model choice: the real task is killed).
        Recognised by its architectural attribute (``delivered_to == "host"``,
        hw/faults.py) so that the syscall surface does not import hw/ (the VMM's layering
        contract forbids even indirect imports of hw).  Anything else is re-raised."""
        if getattr(f, "delivered_to", None) != "host":
            raise f
        self.oopses.append(str(f))
        emit_instant("kvm", "host oops", fault=str(f), entry=entry)
        return -errno.EFAULT

    @traced("kvm")
    def close(self, fd: int) -> int:
        """``close(fd)``: the fd leaves the file table and the file's reference goes (the
        model has no dup).  When no syscall is using the file, its release runs now
        (:meth:`_release`); when one is (a vCPU thread inside KVM_RUN on it: ``fdget``
        holds the file), the release runs when that syscall returns (``fput``), as in
        the kernel.  Returns 0 or -EBADF (no such fd, or not an int); a host fault
        during the release is an oops (:meth:`_host_fault`, -EFAULT)."""
        if not isinstance(fd, int):
            return -errno.EBADF
        obj = self.files.pop(fd, None)
        if obj is None:
            return -errno.EBADF
        if self._in_use.get(id(obj)):
            self._deferred[id(obj)] = obj
            emit_instant("kvm", "release deferred to fput", fd=fd)
            return 0
        return self._release(obj, "close")

    def _release(self, obj: Any, entry: str) -> int:
        """The file's ``release``: a VM fd -> ``kvm_vm_release`` (``kvm_put_kvm``); a vCPU
        fd -> ``kvm_vcpu_release`` (``kvm_put_kvm``); a guest_memfd -> ``kvm_gmem_release``
        (zap and unbind its slots), ``kvm_put_kvm``, then the inode's folios are freed
        (``kvm_gmem_free_folio`` -> ``sev_gmem_invalidate``).  The VM and every vCPU fd
        and guest_memfd hold a reference on the VM; the last ``kvm_put_kvm`` runs
        ``kvm_destroy_vm``.  Returns 0, or -EFAULT for a host fault (an oops)."""
        try:
            if isinstance(obj, (KvmVm, KvmVcpu)):
                kvm_put_kvm(self, obj if isinstance(obj, KvmVm) else obj.kvm)
            elif isinstance(obj, GmemFile):
                kvm_gmem_release(obj)
                kvm_put_kvm(self, obj.kvm)
                kvm_gmem_truncate_all(obj)
        except Exception as f:
            return self._host_fault(f, entry)
        return 0

    def preassign(self, gmem_fd: int, offset: int, owner: str, asid: int = 0, gpa: int = 0) -> int:
        """Model-only host set-up: the page guest_memfd ``gmem_fd`` will hold at byte
        ``offset`` comes from the allocator still owned by someone else in the RMP --
        ``owner`` ``"firmware"`` (Firmware state), ``"guest"`` (another guest's, ASID
        ``asid``, at ``gpa``) or ``"hv-fixed"`` (HV-Fixed).  KVM then meets it on its
        real path (``sev_gmem_prepare``, ``kvm_gmem_populate``, ``sev_gmem_invalidate``).
        Returns 0, -EBADF (not a guest_memfd) or -EINVAL (see
        :func:`snpsim.kvm.guest_memfd.kvm_gmem_preassign`)."""
        f = self.files.get(gmem_fd)
        if not isinstance(f, GmemFile):
            return -errno.EBADF
        return kvm_gmem_preassign(f, offset, owner, asid, gpa)

    # -- ioctl --------------------------------------------------------------------------------
    def ioctl(self, fd: int, request: int, arg: Any = 0) -> int:
        """``ioctl(fd, request, arg)``: dispatch to the /dev/kvm, VM, vCPU or guest_memfd
        file.  Returns >= 0 or -errno.  -EBADF: no such fd (or ``fd`` not an int).  An
        unknown request: -EINVAL on /dev/kvm (``kvm_arch_dev_ioctl``) and on a vCPU
        (``kvm_arch_vcpu_ioctl``), -ENOTTY on a VM (``kvm_arch_vm_ioctl``) and on a
        guest_memfd (no ``unlocked_ioctl``: ``vfs_ioctl``).  A VM or vCPU ioctl on a VM
        that KVM_BUG_ON killed -> -EIO (``kvm_vm_ioctl``/``kvm_vcpu_ioctl``: vm_dead).

        Argument types (model choice, the C interface has none to get wrong): a struct
        ioctl whose ``arg`` is not the struct, or a struct with a field no C value can
        be (:func:`snpsim.kvm.uapi.copy_from_user`), -> -EFAULT, as ``copy_from_user``
        of a bad pointer; an integer ioctl (KVM_CREATE_VM, KVM_CREATE_VCPU,
        KVM_CHECK_EXTENSION, KVM_RUN) whose ``arg`` is not an int -> -EINVAL; ints are
        taken as the u64 register value.  A host fault inside KVM is an oops
        (:meth:`_host_fault`, -EFAULT)."""
        if not isinstance(fd, int):
            return -errno.EBADF
        obj = self.files.get(fd)
        if obj is None:
            return -errno.EBADF
        if not isinstance(request, int):
            return -errno.ENOTTY if isinstance(obj, (KvmVm, GmemFile)) else -errno.EINVAL
        key = id(obj)
        self._in_use[key] = self._in_use.get(key, 0) + 1  # fdget
        try:
            if isinstance(obj, _DevKvm):
                return self._dev_ioctl(request, arg)
            if isinstance(obj, KvmVm):
                if obj.bugged:
                    return -errno.EIO
                return self._vm_ioctl(obj, request, arg)
            if isinstance(obj, KvmVcpu):
                if obj.kvm.bugged:
                    return -errno.EIO
                return self._vcpu_ioctl(obj, request, arg)
            return -errno.ENOTTY
        except Exception as f:
            return self._host_fault(f, "ioctl")
        finally:
            self._fdput(key)

    def _fdput(self, key: int) -> None:
        """``fdput`` at the end of a syscall: the last user of a file whose fd was closed
        meanwhile runs its release (``fput`` -> ``__fput``)."""
        n = self._in_use[key] - 1
        if n:
            self._in_use[key] = n
            return
        del self._in_use[key]
        obj = self._deferred.pop(key, None)
        if obj is not None:
            self._release(obj, "fput")

    def _dev_ioctl(self, request: int, arg: Any) -> int:
        if request == KVM_CREATE_VM:
            if not isinstance(arg, int):
                return -errno.EINVAL
            return self._create_vm(arg & U64_MAX)
        if request == KVM_CHECK_EXTENSION:
            if not isinstance(arg, int):
                return -errno.EINVAL
            return self._check_extension(None, arg & U64_MAX)
        return -errno.EINVAL

    def _check_extension(self, kvm: KvmVm | None, cap: int) -> int:
        if cap == KVM_CAP_EXIT_HYPERCALL:
            return KVM_EXIT_HYPERCALL_VALID_MASK
        if cap == KVM_CAP_MEMORY_ATTRIBUTES:
            return KVM_MEMORY_ATTRIBUTE_PRIVATE if kvm is None or kvm.has_private_mem else 0
        if cap in (KVM_CAP_GUEST_MEMFD, KVM_CAP_USER_MEMORY2, KVM_CAP_MEMORY_FAULT_INFO):
            return 1
        if cap == KVM_CAP_VM_TYPES:
            return sum(1 << t for t in _VM_TYPES)
        if cap == KVM_CAP_PRE_FAULT_MEMORY:
            return 1  # kvm_vm_ioctl_check_extension: tdp_enabled (NPT is always on)
        if cap == KVM_CAP_READONLY_MEM:
            return int(kvm_arch_has_readonly_mem(kvm)) if kvm is not None else 1
        return 0

    @traced("kvm")
    def _create_vm(self, vm_type: int) -> int:
        """``kvm_dev_ioctl_create_vm(type)`` -> ``kvm_create_vm`` / ``kvm_arch_init_vm``:
        returns the VM fd, or -EINVAL for an unknown type."""
        if vm_type not in _VM_TYPES:
            return -errno.EINVAL
        kvm = KvmVm(
            host=self.host, mm=self.mm, allocator=self.allocator, vm_type=vm_type,
            profile=self.profile, npt=self.host.npt_create(),
        )
        kvm.has_private_mem = vm_type in (KVM_X86_SW_PROTECTED_VM, KVM_X86_SNP_VM)
        # kvm_arch_init_vm allows it for default and software-protected VMs; svm_vm_init
        # for SEV/SEV-ES VMs (no private memory); an SNP VM waits for SNP_LAUNCH_FINISH.
        kvm.pre_fault_allowed = vm_type != KVM_X86_SNP_VM
        kvm_fd = self._install(kvm)
        self._vms_by_fd[kvm_fd] = kvm
        return kvm_fd

    def _vm_ioctl(self, kvm: KvmVm, request: int, arg: Any) -> int:
        from .svm_sev import sev_mem_enc_ioctl
        from .x86 import kvm_vm_ioctl_enable_cap

        if request == KVM_CREATE_VCPU:
            if not isinstance(arg, int):
                return -errno.EINVAL
            return self._create_vcpu(kvm, arg & U64_MAX)
        if request == KVM_SET_USER_MEMORY_REGION2:
            if not copy_from_user(arg, KvmUserspaceMemoryRegion2):
                return -errno.EFAULT
            # kvm_vm_ioctl_set_memory_region: user slots only
            if arg.slot & 0xFFFF >= KVM_USER_MEM_SLOTS:
                return -errno.EINVAL
            gmem = self.files.get(arg.guest_memfd) if arg.flags & KVM_MEM_GUEST_MEMFD else None
            return kvm_set_memory_region(kvm, arg, gmem)
        if request == KVM_CREATE_GUEST_MEMFD:
            if not copy_from_user(arg, KvmCreateGuestMemfd):
                return -errno.EFAULT
            f = kvm_gmem_create(kvm, arg.size, arg.flags)
            if isinstance(f, int):
                return f
            kvm_get_kvm(kvm)
            return self._install(f)
        if request == KVM_SET_MEMORY_ATTRIBUTES:
            if not copy_from_user(arg, KvmMemoryAttributes):
                return -errno.EFAULT
            return kvm_vm_ioctl_set_mem_attributes(kvm, arg)
        if request == KVM_ENABLE_CAP:
            if not copy_from_user(arg, KvmEnableCap):
                return -errno.EFAULT
            return kvm_vm_ioctl_enable_cap(kvm, arg)
        if request == KVM_CHECK_EXTENSION:
            if not isinstance(arg, int):
                return -errno.EINVAL
            return self._check_extension(kvm, arg & U64_MAX)
        if request == KVM_MEMORY_ENCRYPT_OP:
            if arg is None or (isinstance(arg, int) and arg == 0):
                return 0  # sev_mem_enc_ioctl: a NULL argp is a successful probe
            if not copy_from_user(arg, KvmSevCmd):
                return -errno.EFAULT
            return sev_mem_enc_ioctl(self, kvm, arg)
        return -errno.ENOTTY

    @traced("kvm")
    def _create_vcpu(self, kvm: KvmVm, vcpu_id: int) -> int:
        """``kvm_vm_ioctl_create_vcpu(kvm, id)``: returns the vCPU fd; -EINVAL for an id
        already used or above 1023; -EINVAL for an SEV VM not initialised yet
        (KVM_SEV_INIT2 must come first).  SEV-ES/SNP vCPUs get a VMSA page."""
        from .svm_sev import sev_vcpu_create

        if not 0 <= vcpu_id < 1024 or any(v.vcpu_id == vcpu_id for v in kvm.vcpus):
            return -errno.EINVAL
        if kvm.vm_type in (KVM_X86_SEV_VM, KVM_X86_SEV_ES_VM, KVM_X86_SNP_VM) and not kvm.sev.active:
            return -errno.EINVAL
        vcpu = sev_vcpu_create(kvm, vcpu_id)
        kvm.vcpus.append(vcpu)
        kvm_get_kvm(kvm)
        return self._install(vcpu)

    def _vcpu_ioctl(self, vcpu: KvmVcpu, request: int, arg: Any) -> int:
        from .x86 import kvm_arch_vcpu_ioctl_run

        if request == KVM_RUN:
            if not isinstance(arg, int) or arg:
                return -errno.EINVAL
            return kvm_arch_vcpu_ioctl_run(vcpu)
        if request == KVM_PRE_FAULT_MEMORY:
            if not copy_from_user(arg, KvmPreFaultMemory):
                return -errno.EFAULT
            return kvm_vcpu_pre_fault_memory(vcpu, arg)
        return -errno.EINVAL

    # -- mmap / memory syscalls --------------------------------------------------------------
    def mmap_vcpu_run(self, vcpu_fd: int) -> KvmRun | int:
        """``mmap(vcpu_fd, 0)``: the vCPU's ``struct kvm_run``; -EBADF (no such fd),
        -ENODEV (a file without ``mmap``: /dev/kvm, a VM fd, a guest_memfd that does not
        support it, ``do_mmap``)."""
        if not isinstance(vcpu_fd, int):
            return -errno.EBADF
        obj = self.files.get(vcpu_fd)
        if obj is None:
            return -errno.EBADF
        if not isinstance(obj, KvmVcpu):
            return -errno.ENODEV
        return obj.run

    def mmap(self, length: int) -> int:
        """Anonymous shared mmap of ``length`` bytes (``do_mmap``, mm/mmap.c): the HVA,
        -EINVAL (``length`` 0 or not an int), or -ENOMEM (``length`` page-aligned wraps
        or is larger than user space)."""
        if not isinstance(length, int):
            return -errno.EINVAL
        length &= U64_MAX
        if length == 0:
            return -errno.EINVAL
        if (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) > TASK_SIZE_MAX:
            return -errno.ENOMEM
        try:
            return self.mm.mmap(length)
        except Exception as f:
            return self._host_fault(f, "mmap")

    def madvise(self, hva: int, length: int, advice: int) -> int:
        """``madvise(hva, length, advice)`` (MADV_DONTNEED, MADV_REMOVE): 0 or -errno
        (:meth:`snpsim.kvm.host_mm.HostMm.madvise`; an argument that is not an int
        -> -EINVAL).  A host fault inside is an oops (:meth:`_host_fault`)."""
        if not all(isinstance(v, int) for v in (hva, length, advice)):
            return -errno.EINVAL
        try:
            return self.mm.madvise(hva & U64_MAX, length & U64_MAX, advice & 0xFFFF_FFFF)
        except Exception as f:
            return self._host_fault(f, "madvise")

    def fallocate(self, fd: int, mode: int, offset: int, length: int) -> int:
        """``fallocate(fd, mode, offset, len)`` (``ksys_fallocate`` -> :func:`vfs_fallocate`
        -> ``kvm_gmem_fallocate``): 0 or -errno; -EBADF for no such fd (or ``fd`` not an
        int), -EINVAL for another argument that is not an int.  A host fault inside (e.g.
        under ``sev_gmem_invalidate`` of a hole punch) is an oops (:meth:`_host_fault`)."""
        if not isinstance(fd, int):
            return -errno.EBADF
        obj = self.files.get(fd)
        if obj is None:
            return -errno.EBADF
        if not all(isinstance(v, int) for v in (mode, offset, length)):
            return -errno.EINVAL
        try:
            return vfs_fallocate(obj, mode, offset, length)
        except Exception as f:
            return self._host_fault(f, "fallocate")

    def read_user(self, hva: int, n: int) -> bytes:
        """The process's own load of ``n`` bytes at ``hva``."""
        return self.mm.read_user(hva, n)

    def write_user(self, hva: int, data: bytes) -> None:
        """The process's own store of ``data`` at ``hva``."""
        self.mm.write_user(hva, data)

    # -- model-only introspection (what debugfs / dmesg would show) ---------------------------
    def vm(self, vm_fd: int) -> KvmVm:
        """Model-only: the ``struct kvm`` behind ``vm_fd`` (tests, system.py); still
        answers after the fd was closed (the VM, destroyed or not, for inspection)."""
        obj = self.files.get(vm_fd)
        if obj is None:
            obj = self._vms_by_fd[vm_fd]
        assert isinstance(obj, KvmVm)
        return obj

    def vcpu(self, vcpu_fd: int) -> KvmVcpu:
        """Model-only: the ``struct kvm_vcpu`` behind ``vcpu_fd``."""
        obj = self.files[vcpu_fd]
        assert isinstance(obj, KvmVcpu)
        return obj

    def vm_asid(self, vm_fd: int) -> int:
        """Model-only: the ASID KVM gave the VM (0 before KVM_SEV_INIT2)."""
        return self.vm(vm_fd).sev.asid
