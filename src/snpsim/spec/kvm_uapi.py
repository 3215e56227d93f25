# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""KVM uAPI numbers: exit reasons, hypercalls, memory attributes, ioctls, SNP launch.

Sources (Linux):
- ``include/uapi/linux/kvm.h``: exit reasons 0-27 read in torvalds/linux (an old
  version, values unchanged since); 33-39 read in kvm.h diff context of LKML postings
  (``KVM_EXIT_X86_BUS_LOCK`` 33, ``KVM_EXIT_XEN`` 34, ``KVM_EXIT_NOTIFY`` 37,
  ``KVM_EXIT_MEMORY_FAULT`` 39); 29-32 from memory [unconfirmed].
  ``KVM_SYSTEM_EVENT_*`` incl. ``SEV_TERM`` 6, ``KVM_MEMORY_EXIT_FLAG_PRIVATE``
  ``(1ULL << 3)``, ``KVM_MEMORY_ATTRIBUTE_PRIVATE`` ``(1ULL << 3)``,
  ``KVM_SET_MEMORY_ATTRIBUTES`` ``_IOW(KVMIO, 0xd2, struct kvm_memory_attributes)``,
  ``KVM_CREATE_GUEST_MEMFD`` ``_IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)``,
  ``GUEST_MEMFD_FLAG_MMAP/INIT_SHARED``: read in LKML postings of those patches.
- ``include/uapi/asm-generic/ioctl.h``: ``_IOC`` = dir << 30 | size << 16 | type << 8 | nr.
  Computed numbers cross-checked against literals in public code (syzkaller programs,
  QEMU/Cloud Hypervisor tooling): KVM_SET_MEMORY_ATTRIBUTES 0x4020AED2,
  KVM_CREATE_GUEST_MEMFD 0xC040AED4, KVM_SET_USER_MEMORY_REGION2 0x40A0AE49,
  KVM_RUN 0xAE80, KVM_ENABLE_CAP 0x4068AEA3, KVM_PRE_FAULT_MEMORY 0xC040AED5.
- ``include/uapi/linux/kvm_para.h``: ``KVM_ENOSYS`` 1000, ``KVM_EFAULT`` = EFAULT,
  ``KVM_EINVAL`` = EINVAL, ``KVM_E2BIG`` = E2BIG, ``KVM_EPERM`` = EPERM,
  ``KVM_EOPNOTSUPP`` 95, ``KVM_HC_MAP_GPA_RANGE`` 12 (read).
- ``arch/x86/include/uapi/asm/kvm_para.h``: ``KVM_FEATURE_HC_MAP_GPA_RANGE`` 16,
  ``KVM_FEATURE_MIGRATION_CONTROL`` 17, ``MSR_KVM_MIGRATION_CONTROL`` 0x4b564d08,
  ``KVM_MIGRATION_READY``, ``KVM_MAP_GPA_RANGE_*`` (read).
- ``arch/x86/include/uapi/asm/kvm.h``: VM types (``KVM_X86_SNP_VM`` 4 seen in public
  code), ``KVM_SEV_SNP_PAGE_TYPE_*`` (reference kvm-qemu-host.md 1.9).
- ``enum sev_cmd_id`` (``KVM_SEV_INIT2`` 22, ``KVM_SEV_SNP_LAUNCH_START/UPDATE/FINISH``
  100-102), ``KVM_MEM_LOG_DIRTY_PAGES/READONLY/GUEST_MEMFD`` 1/2/4,
  ``KVM_INTERNAL_ERROR_EMULATION`` 1, ``KVM_EXIT_IO_IN/OUT`` 0/1: read in asm/kvm.h and
  kvm.h (torvalds/linux and kvm.h hunks of LKML postings).
- ``KVM_CAP_*``: reference kvm-qemu-host.md 1.6; ``KVM_CAP_PRE_FAULT_MEMORY`` 236 seen in
  public code; the others [unconfirmed beyond the reference].
"""

from __future__ import annotations

import enum
import errno

__all__ = [
    "KvmExitReason",
    "KVM_EXIT_UNKNOWN",
    "KVM_EXIT_EXCEPTION",
    "KVM_EXIT_IO",
    "KVM_EXIT_HYPERCALL",
    "KVM_EXIT_DEBUG",
    "KVM_EXIT_HLT",
    "KVM_EXIT_MMIO",
    "KVM_EXIT_SHUTDOWN",
    "KVM_EXIT_FAIL_ENTRY",
    "KVM_EXIT_INTR",
    "KVM_EXIT_INTERNAL_ERROR",
    "KVM_EXIT_SYSTEM_EVENT",
    "KVM_EXIT_X86_RDMSR",
    "KVM_EXIT_X86_WRMSR",
    "KVM_EXIT_AP_RESET_HOLD",
    "KVM_EXIT_NOTIFY",
    "KVM_EXIT_MEMORY_FAULT",
    "KvmSystemEvent",
    "KVM_SYSTEM_EVENT_SHUTDOWN",
    "KVM_SYSTEM_EVENT_RESET",
    "KVM_SYSTEM_EVENT_CRASH",
    "KVM_SYSTEM_EVENT_WAKEUP",
    "KVM_SYSTEM_EVENT_SUSPEND",
    "KVM_SYSTEM_EVENT_SEV_TERM",
    "KVM_HC_MAP_GPA_RANGE",
    "KVM_MAP_GPA_RANGE_PAGE_SZ_4K",
    "KVM_MAP_GPA_RANGE_PAGE_SZ_2M",
    "KVM_MAP_GPA_RANGE_PAGE_SZ_1G",
    "KVM_MAP_GPA_RANGE_ENC_STAT",
    "KVM_MAP_GPA_RANGE_ENCRYPTED",
    "KVM_MAP_GPA_RANGE_DECRYPTED",
    "KVM_EXIT_HYPERCALL_LONG_MODE",
    "KVM_EXIT_HYPERCALL_VALID_MASK",
    "KvmHcErrno",
    "KVM_ENOSYS",
    "KVM_EFAULT",
    "KVM_EINVAL",
    "KVM_E2BIG",
    "KVM_EPERM",
    "KVM_EOPNOTSUPP",
    "KVM_FEATURE_HC_MAP_GPA_RANGE",
    "KVM_FEATURE_MIGRATION_CONTROL",
    "MSR_KVM_MIGRATION_CONTROL",
    "KVM_MIGRATION_READY",
    "KVM_MEMORY_ATTRIBUTE_PRIVATE",
    "KVM_MEMORY_EXIT_FLAG_PRIVATE",
    "GUEST_MEMFD_FLAG_MMAP",
    "GUEST_MEMFD_FLAG_INIT_SHARED",
    "KvmVmType",
    "KVM_X86_DEFAULT_VM",
    "KVM_X86_SW_PROTECTED_VM",
    "KVM_X86_SEV_VM",
    "KVM_X86_SEV_ES_VM",
    "KVM_X86_SNP_VM",
    "KVM_X86_TDX_VM",
    "KvmSevSnpPageType",
    "KVM_SEV_SNP_PAGE_TYPE_NORMAL",
    "KVM_SEV_SNP_PAGE_TYPE_VMSA",
    "KVM_SEV_SNP_PAGE_TYPE_ZERO",
    "KVM_SEV_SNP_PAGE_TYPE_UNMEASURED",
    "KVM_SEV_SNP_PAGE_TYPE_SECRETS",
    "KVM_SEV_SNP_PAGE_TYPE_CPUID",
    "SevCmdId",
    "KVM_SEV_INIT2",
    "KVM_SEV_LAUNCH_START",
    "KVM_SEV_LAUNCH_UPDATE_DATA",
    "KVM_SEV_LAUNCH_UPDATE_VMSA",
    "KVM_SEV_LAUNCH_MEASURE",
    "KVM_SEV_LAUNCH_FINISH",
    "KVM_SEV_SNP_LAUNCH_START",
    "KVM_SEV_SNP_LAUNCH_UPDATE",
    "KVM_SEV_SNP_LAUNCH_FINISH",
    "KVM_MEM_LOG_DIRTY_PAGES",
    "KVM_MEM_READONLY",
    "KVM_MEM_GUEST_MEMFD",
    "KVM_INTERNAL_ERROR_EMULATION",
    "KVM_EXIT_IO_IN",
    "KVM_EXIT_IO_OUT",
    "KVM_CAP_EXIT_HYPERCALL",
    "KVM_CAP_USER_MEMORY2",
    "KVM_CAP_MEMORY_FAULT_INFO",
    "KVM_CAP_MEMORY_ATTRIBUTES",
    "KVM_CAP_GUEST_MEMFD",
    "KVM_CAP_VM_TYPES",
    "KVM_CAP_PRE_FAULT_MEMORY",
    "KVM_CAP_READONLY_MEM",
    "IOC_NONE",
    "IOC_WRITE",
    "IOC_READ",
    "IOC",
    "IO",
    "IOR",
    "IOW",
    "IOWR",
    "KVMIO",
    "SIZEOF_KVM_USERSPACE_MEMORY_REGION",
    "SIZEOF_KVM_USERSPACE_MEMORY_REGION2",
    "SIZEOF_KVM_MEMORY_ATTRIBUTES",
    "SIZEOF_KVM_CREATE_GUEST_MEMFD",
    "SIZEOF_KVM_PRE_FAULT_MEMORY",
    "SIZEOF_KVM_ENABLE_CAP",
    "KVM_CREATE_VM",
    "KVM_CHECK_EXTENSION",
    "KVM_CREATE_VCPU",
    "KVM_SET_USER_MEMORY_REGION",
    "KVM_SET_USER_MEMORY_REGION2",
    "KVM_RUN",
    "KVM_ENABLE_CAP",
    "KVM_MEMORY_ENCRYPT_OP",
    "KVM_SET_MEMORY_ATTRIBUTES",
    "KVM_CREATE_GUEST_MEMFD",
    "KVM_PRE_FAULT_MEMORY",
]


class KvmExitReason(enum.IntEnum):
    """``kvm_run.exit_reason`` (u32) values used on x86.  include/uapi/linux/kvm.h."""

    KVM_EXIT_UNKNOWN = 0
    KVM_EXIT_EXCEPTION = 1
    KVM_EXIT_IO = 2
    KVM_EXIT_HYPERCALL = 3
    KVM_EXIT_DEBUG = 4
    KVM_EXIT_HLT = 5
    KVM_EXIT_MMIO = 6
    KVM_EXIT_IRQ_WINDOW_OPEN = 7
    KVM_EXIT_SHUTDOWN = 8
    KVM_EXIT_FAIL_ENTRY = 9
    KVM_EXIT_INTR = 10
    KVM_EXIT_SET_TPR = 11
    KVM_EXIT_TPR_ACCESS = 12
    KVM_EXIT_NMI = 16
    KVM_EXIT_INTERNAL_ERROR = 17
    KVM_EXIT_SYSTEM_EVENT = 24
    KVM_EXIT_IOAPIC_EOI = 26
    KVM_EXIT_HYPERV = 27
    KVM_EXIT_X86_RDMSR = 29
    KVM_EXIT_X86_WRMSR = 30
    KVM_EXIT_DIRTY_RING_FULL = 31
    KVM_EXIT_AP_RESET_HOLD = 32
    KVM_EXIT_X86_BUS_LOCK = 33
    KVM_EXIT_XEN = 34
    KVM_EXIT_NOTIFY = 37
    KVM_EXIT_MEMORY_FAULT = 39


KVM_EXIT_UNKNOWN = KvmExitReason.KVM_EXIT_UNKNOWN
KVM_EXIT_EXCEPTION = KvmExitReason.KVM_EXIT_EXCEPTION
KVM_EXIT_IO = KvmExitReason.KVM_EXIT_IO
KVM_EXIT_HYPERCALL = KvmExitReason.KVM_EXIT_HYPERCALL
KVM_EXIT_DEBUG = KvmExitReason.KVM_EXIT_DEBUG
KVM_EXIT_HLT = KvmExitReason.KVM_EXIT_HLT
KVM_EXIT_MMIO = KvmExitReason.KVM_EXIT_MMIO
KVM_EXIT_SHUTDOWN = KvmExitReason.KVM_EXIT_SHUTDOWN
KVM_EXIT_FAIL_ENTRY = KvmExitReason.KVM_EXIT_FAIL_ENTRY
KVM_EXIT_INTR = KvmExitReason.KVM_EXIT_INTR
KVM_EXIT_INTERNAL_ERROR = KvmExitReason.KVM_EXIT_INTERNAL_ERROR
KVM_EXIT_SYSTEM_EVENT = KvmExitReason.KVM_EXIT_SYSTEM_EVENT
KVM_EXIT_X86_RDMSR = KvmExitReason.KVM_EXIT_X86_RDMSR
KVM_EXIT_X86_WRMSR = KvmExitReason.KVM_EXIT_X86_WRMSR
KVM_EXIT_AP_RESET_HOLD = KvmExitReason.KVM_EXIT_AP_RESET_HOLD
KVM_EXIT_NOTIFY = KvmExitReason.KVM_EXIT_NOTIFY
KVM_EXIT_MEMORY_FAULT = KvmExitReason.KVM_EXIT_MEMORY_FAULT


class KvmSystemEvent(enum.IntEnum):
    """``kvm_run.system_event.type`` (u32).  kvm.h; SEV_TERM: data[0] = the GHCB GPA."""

    KVM_SYSTEM_EVENT_SHUTDOWN = 1
    KVM_SYSTEM_EVENT_RESET = 2
    KVM_SYSTEM_EVENT_CRASH = 3
    KVM_SYSTEM_EVENT_WAKEUP = 4
    KVM_SYSTEM_EVENT_SUSPEND = 5
    KVM_SYSTEM_EVENT_SEV_TERM = 6


KVM_SYSTEM_EVENT_SHUTDOWN = KvmSystemEvent.KVM_SYSTEM_EVENT_SHUTDOWN
KVM_SYSTEM_EVENT_RESET = KvmSystemEvent.KVM_SYSTEM_EVENT_RESET
KVM_SYSTEM_EVENT_CRASH = KvmSystemEvent.KVM_SYSTEM_EVENT_CRASH
KVM_SYSTEM_EVENT_WAKEUP = KvmSystemEvent.KVM_SYSTEM_EVENT_WAKEUP
KVM_SYSTEM_EVENT_SUSPEND = KvmSystemEvent.KVM_SYSTEM_EVENT_SUSPEND
KVM_SYSTEM_EVENT_SEV_TERM = KvmSystemEvent.KVM_SYSTEM_EVENT_SEV_TERM

#: Hypercall number of "map GPA range" (args: gpa, npages, attrs).  kvm_para.h.
KVM_HC_MAP_GPA_RANGE = 12
#: Page-size field of the attrs argument.  asm/kvm_para.h.
KVM_MAP_GPA_RANGE_PAGE_SZ_4K = 0
KVM_MAP_GPA_RANGE_PAGE_SZ_2M = 1 << 0
KVM_MAP_GPA_RANGE_PAGE_SZ_1G = 1 << 1


def KVM_MAP_GPA_RANGE_ENC_STAT(n: int) -> int:
    """Encryption status field of the attrs argument: ``n << 4``.  asm/kvm_para.h."""
    return n << 4


#: 0x10: the range becomes private (encrypted).
KVM_MAP_GPA_RANGE_ENCRYPTED = KVM_MAP_GPA_RANGE_ENC_STAT(1)
#: 0: the range becomes shared.
KVM_MAP_GPA_RANGE_DECRYPTED = KVM_MAP_GPA_RANGE_ENC_STAT(0)
#: ``kvm_run.hypercall.flags`` bit 0: the guest was in 64-bit mode.  kvm.h.
KVM_EXIT_HYPERCALL_LONG_MODE = 1 << 0
#: Bitmap of hypercalls forwarded to userspace with KVM_CAP_EXIT_HYPERCALL (bit 12).
KVM_EXIT_HYPERCALL_VALID_MASK = 1 << KVM_HC_MAP_GPA_RANGE


class KvmHcErrno(enum.IntEnum):
    """Hypercall return values (returned negated in RAX).  include/uapi/linux/kvm_para.h;
    the errno-valued ones take the x86 Linux errno numbers."""

    KVM_EPERM = errno.EPERM  # 1
    KVM_E2BIG = errno.E2BIG  # 7
    KVM_EFAULT = errno.EFAULT  # 14
    KVM_EINVAL = errno.EINVAL  # 22
    KVM_EOPNOTSUPP = 95
    KVM_ENOSYS = 1000


KVM_ENOSYS = KvmHcErrno.KVM_ENOSYS
KVM_EFAULT = KvmHcErrno.KVM_EFAULT
KVM_EINVAL = KvmHcErrno.KVM_EINVAL
KVM_E2BIG = KvmHcErrno.KVM_E2BIG
KVM_EPERM = KvmHcErrno.KVM_EPERM
KVM_EOPNOTSUPP = KvmHcErrno.KVM_EOPNOTSUPP

#: KVM CPUID leaf 0x40000001 EAX feature bits.  asm/kvm_para.h.
KVM_FEATURE_HC_MAP_GPA_RANGE = 16
KVM_FEATURE_MIGRATION_CONTROL = 17
MSR_KVM_MIGRATION_CONTROL = 0x4B564D08
KVM_MIGRATION_READY = 1 << 0

#: ``struct kvm_memory_attributes.attributes`` bit: private.  kvm.h ``(1ULL << 3)``.
KVM_MEMORY_ATTRIBUTE_PRIVATE = 1 << 3
#: ``kvm_run.memory_fault.flags`` bit: the faulting access was private.  kvm.h ``(1ULL << 3)``.
KVM_MEMORY_EXIT_FLAG_PRIVATE = 1 << 3
#: ``struct kvm_create_guest_memfd.flags`` (v6.18+/7.0; not used by SNP).  kvm.h.
GUEST_MEMFD_FLAG_MMAP = 1 << 0
GUEST_MEMFD_FLAG_INIT_SHARED = 1 << 1


class KvmVmType(enum.IntEnum):
    """``KVM_CREATE_VM`` machine types on x86.  arch/x86/include/uapi/asm/kvm.h."""

    KVM_X86_DEFAULT_VM = 0
    KVM_X86_SW_PROTECTED_VM = 1
    KVM_X86_SEV_VM = 2
    KVM_X86_SEV_ES_VM = 3
    KVM_X86_SNP_VM = 4
    KVM_X86_TDX_VM = 5


KVM_X86_DEFAULT_VM = KvmVmType.KVM_X86_DEFAULT_VM
KVM_X86_SW_PROTECTED_VM = KvmVmType.KVM_X86_SW_PROTECTED_VM
KVM_X86_SEV_VM = KvmVmType.KVM_X86_SEV_VM
KVM_X86_SEV_ES_VM = KvmVmType.KVM_X86_SEV_ES_VM
KVM_X86_SNP_VM = KvmVmType.KVM_X86_SNP_VM
KVM_X86_TDX_VM = KvmVmType.KVM_X86_TDX_VM


class KvmSevSnpPageType(enum.IntEnum):
    """``kvm_sev_snp_launch_update.type`` (u8).  asm/kvm.h; equal to the firmware's
    ``SNP_PAGE_TYPE_*`` (include/linux/psp-sev.h).  VMSA (2) appeared only in early
    patches; upstream KVM launches VMSAs itself in LAUNCH_FINISH."""

    KVM_SEV_SNP_PAGE_TYPE_NORMAL = 1
    KVM_SEV_SNP_PAGE_TYPE_VMSA = 2
    KVM_SEV_SNP_PAGE_TYPE_ZERO = 3
    KVM_SEV_SNP_PAGE_TYPE_UNMEASURED = 4
    KVM_SEV_SNP_PAGE_TYPE_SECRETS = 5
    KVM_SEV_SNP_PAGE_TYPE_CPUID = 6


KVM_SEV_SNP_PAGE_TYPE_NORMAL = KvmSevSnpPageType.KVM_SEV_SNP_PAGE_TYPE_NORMAL
KVM_SEV_SNP_PAGE_TYPE_VMSA = KvmSevSnpPageType.KVM_SEV_SNP_PAGE_TYPE_VMSA
KVM_SEV_SNP_PAGE_TYPE_ZERO = KvmSevSnpPageType.KVM_SEV_SNP_PAGE_TYPE_ZERO
KVM_SEV_SNP_PAGE_TYPE_UNMEASURED = KvmSevSnpPageType.KVM_SEV_SNP_PAGE_TYPE_UNMEASURED
KVM_SEV_SNP_PAGE_TYPE_SECRETS = KvmSevSnpPageType.KVM_SEV_SNP_PAGE_TYPE_SECRETS
KVM_SEV_SNP_PAGE_TYPE_CPUID = KvmSevSnpPageType.KVM_SEV_SNP_PAGE_TYPE_CPUID



class SevCmdId(enum.IntEnum):
    """``enum sev_cmd_id`` of ``KVM_MEMORY_ENCRYPT_OP`` (the ones the model implements).
    arch/x86/include/uapi/asm/kvm.h (read): ``KVM_SEV_INIT`` 0 ... ``KVM_SEV_SEND_CANCEL``
    21 counted in order, then ``KVM_SEV_INIT2`` 22; ``KVM_SEV_SNP_LAUNCH_START = 100``,
    UPDATE 101, FINISH 102.  The SEV / SEV-ES launch commands (``KVM_SEV_LAUNCH_START``
    2, ``_UPDATE_DATA`` 3, ``_UPDATE_VMSA`` 4, ``_MEASURE`` 6, ``_FINISH`` 7) re-read in
    the enum as printed in kvm.h (include/uapi/linux/kvm.h before v6.9, asm/kvm.h since)."""

    KVM_SEV_LAUNCH_START = 2
    KVM_SEV_LAUNCH_UPDATE_DATA = 3
    KVM_SEV_LAUNCH_UPDATE_VMSA = 4
    KVM_SEV_LAUNCH_MEASURE = 6
    KVM_SEV_LAUNCH_FINISH = 7
    KVM_SEV_INIT2 = 22
    KVM_SEV_SNP_LAUNCH_START = 100
    KVM_SEV_SNP_LAUNCH_UPDATE = 101
    KVM_SEV_SNP_LAUNCH_FINISH = 102


KVM_SEV_LAUNCH_START = SevCmdId.KVM_SEV_LAUNCH_START
KVM_SEV_LAUNCH_UPDATE_DATA = SevCmdId.KVM_SEV_LAUNCH_UPDATE_DATA
KVM_SEV_LAUNCH_UPDATE_VMSA = SevCmdId.KVM_SEV_LAUNCH_UPDATE_VMSA
KVM_SEV_LAUNCH_MEASURE = SevCmdId.KVM_SEV_LAUNCH_MEASURE
KVM_SEV_LAUNCH_FINISH = SevCmdId.KVM_SEV_LAUNCH_FINISH
KVM_SEV_INIT2 = SevCmdId.KVM_SEV_INIT2
KVM_SEV_SNP_LAUNCH_START = SevCmdId.KVM_SEV_SNP_LAUNCH_START
KVM_SEV_SNP_LAUNCH_UPDATE = SevCmdId.KVM_SEV_SNP_LAUNCH_UPDATE
KVM_SEV_SNP_LAUNCH_FINISH = SevCmdId.KVM_SEV_SNP_LAUNCH_FINISH

#: ``kvm_userspace_memory_region{,2}.flags`` bits.  include/uapi/linux/kvm.h ``(1UL << n)``
#: (read).
KVM_MEM_LOG_DIRTY_PAGES = 1 << 0
KVM_MEM_READONLY = 1 << 1
KVM_MEM_GUEST_MEMFD = 1 << 2

#: ``kvm_run.internal.suberror`` of KVM_EXIT_INTERNAL_ERROR: emulation failed.  kvm.h (read).
KVM_INTERNAL_ERROR_EMULATION = 1

#: ``kvm_run.io.direction`` of KVM_EXIT_IO.  kvm.h (read).
KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1

#: KVM_CHECK_EXTENSION: read-only memslots (KVM_MEM_READONLY) allowed.  kvm.h.
KVM_CAP_READONLY_MEM = 31
KVM_CAP_EXIT_HYPERCALL = 201
KVM_CAP_USER_MEMORY2 = 231
KVM_CAP_MEMORY_FAULT_INFO = 232
KVM_CAP_MEMORY_ATTRIBUTES = 233
KVM_CAP_GUEST_MEMFD = 234
KVM_CAP_VM_TYPES = 235
KVM_CAP_PRE_FAULT_MEMORY = 236

# ---- ioctl numbers (include/uapi/asm-generic/ioctl.h) --------------------------------
IOC_NONE = 0
IOC_WRITE = 1
IOC_READ = 2
_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30


def IOC(direction: int, type_: int, nr: int, size: int) -> int:
    """``_IOC(dir, type, nr, size)``: dir [31:30], size [29:16] (14 bits), type [15:8], nr [7:0]."""
    return (
        (direction << _IOC_DIRSHIFT)
        | ((size & 0x3FFF) << _IOC_SIZESHIFT)
        | ((type_ & 0xFF) << _IOC_TYPESHIFT)
        | ((nr & 0xFF) << _IOC_NRSHIFT)
    )


def IO(type_: int, nr: int) -> int:
    """``_IO``: no argument."""
    return IOC(IOC_NONE, type_, nr, 0)


def IOR(type_: int, nr: int, size: int) -> int:
    """``_IOR``: the kernel writes ``size`` bytes back."""
    return IOC(IOC_READ, type_, nr, size)


def IOW(type_: int, nr: int, size: int) -> int:
    """``_IOW``: the kernel reads ``size`` bytes."""
    return IOC(IOC_WRITE, type_, nr, size)


def IOWR(type_: int, nr: int, size: int) -> int:
    """``_IOWR``: both directions."""
    return IOC(IOC_READ | IOC_WRITE, type_, nr, size)


#: ioctl type of /dev/kvm.  kvm.h.
KVMIO = 0xAE
#: Argument struct sizes in bytes (x86-64 layout of the kvm.h structs).
SIZEOF_KVM_USERSPACE_MEMORY_REGION = 32
SIZEOF_KVM_USERSPACE_MEMORY_REGION2 = 160
SIZEOF_KVM_MEMORY_ATTRIBUTES = 32
SIZEOF_KVM_CREATE_GUEST_MEMFD = 64
SIZEOF_KVM_PRE_FAULT_MEMORY = 64
SIZEOF_KVM_ENABLE_CAP = 104

KVM_CREATE_VM = IO(KVMIO, 0x01)
KVM_CHECK_EXTENSION = IO(KVMIO, 0x03)
KVM_CREATE_VCPU = IO(KVMIO, 0x41)
KVM_SET_USER_MEMORY_REGION = IOW(KVMIO, 0x46, SIZEOF_KVM_USERSPACE_MEMORY_REGION)
KVM_SET_USER_MEMORY_REGION2 = IOW(KVMIO, 0x49, SIZEOF_KVM_USERSPACE_MEMORY_REGION2)
KVM_RUN = IO(KVMIO, 0x80)
KVM_ENABLE_CAP = IOW(KVMIO, 0xA3, SIZEOF_KVM_ENABLE_CAP)
#: ``_IOWR(KVMIO, 0xba, unsigned long)``; the SEV command struct is behind the pointer.
KVM_MEMORY_ENCRYPT_OP = IOWR(KVMIO, 0xBA, 8)
KVM_SET_MEMORY_ATTRIBUTES = IOW(KVMIO, 0xD2, SIZEOF_KVM_MEMORY_ATTRIBUTES)
KVM_CREATE_GUEST_MEMFD = IOWR(KVMIO, 0xD4, SIZEOF_KVM_CREATE_GUEST_MEMFD)
KVM_PRE_FAULT_MEMORY = IOWR(KVMIO, 0xD5, SIZEOF_KVM_PRE_FAULT_MEMORY)
