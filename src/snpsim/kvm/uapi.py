# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The argument and result structures of the KVM ioctls, as Python dataclasses.

Mirrors ``include/uapi/linux/kvm.h`` and ``arch/x86/include/uapi/asm/kvm.h`` (Linux
v6.18 / 7.0 layout; numbers in :mod:`snpsim.spec.kvm_uapi`).  Field names are the C
field names; every integer field is the C width (u8/u16/u32/u64) and is masked by KVM
where KVM holds it in that width.

Model choices:

* ``struct kvm_run`` is a C union of per-exit structs; here each member is its own
  object, always present (a VMM reads only the member ``exit_reason`` selects, as in C).
* ``kvm_run.io`` carries its data bytes in ``io.data`` instead of at ``data_offset``
  inside the mmap'd page.
* ``KvmSevSnpLaunchFinish.launch_digest`` is model-only: the firmware's 48-byte launch
  digest, which real KVM does not return (it is read from the attestation report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KvmRunHypercall",
    "KvmRunMemoryFault",
    "KvmRunSystemEvent",
    "KvmRunIo",
    "KvmRunInternal",
    "KvmRunMmio",
    "KvmRunHw",
    "KvmRunFailEntry",
    "KvmRun",
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
    "C_LAYOUT",
    "copy_from_user",
]


@dataclass
class KvmRunHypercall:
    """``kvm_run.hypercall``: u64 ``nr``, u64 ``args[6]``, u64 ``ret``, u64 ``flags``
    (userspace name ``longmode`` for its low u32; bit 0 = KVM_EXIT_HYPERCALL_LONG_MODE)."""

    nr: int = 0
    args: list[int] = field(default_factory=lambda: [0] * 6)
    ret: int = 0
    flags: int = 0


@dataclass
class KvmRunMemoryFault:
    """``kvm_run.memory_fault``: u64 ``flags`` (bit 3 = KVM_MEMORY_EXIT_FLAG_PRIVATE),
    u64 ``gpa`` (bytes, page aligned), u64 ``size`` (bytes)."""

    flags: int = 0
    gpa: int = 0
    size: int = 0


@dataclass
class KvmRunSystemEvent:
    """``kvm_run.system_event``: u32 ``type`` (KVM_SYSTEM_EVENT_*), u32 ``ndata``,
    u64 ``data[16]``.  For SEV_TERM, ``data[0]`` is the guest's GHCB MSR value (or GHCB
    GPA for the NAE form)."""

    type: int = 0
    ndata: int = 0
    data: list[int] = field(default_factory=lambda: [0] * 16)


@dataclass
class KvmRunIo:
    """``kvm_run.io``: u8 ``direction`` (0 in, 1 out), u8 ``size`` (bytes per item),
    u16 ``port``, u32 ``count``, and the data (model: ``data`` bytes, not ``data_offset``)."""

    direction: int = 0
    size: int = 0
    port: int = 0
    count: int = 0
    data: bytes = b""


@dataclass
class KvmRunInternal:
    """``kvm_run.internal``: u32 ``suberror``, u32 ``ndata``, u64 ``data[16]``."""

    suberror: int = 0
    ndata: int = 0
    data: list[int] = field(default_factory=lambda: [0] * 16)


@dataclass
class KvmRunMmio:
    """``kvm_run.mmio`` (KVM_EXIT_MMIO): u64 ``phys_addr`` (GPA, bytes), u8 ``data[8]``,
    u32 ``len`` (bytes, at most 8), u8 ``is_write``.  A read is answered by the VMM
    writing ``data`` before the next KVM_RUN."""

    phys_addr: int = 0
    data: bytes = bytes(8)
    len: int = 0
    is_write: int = 0


@dataclass
class KvmRunHw:
    """``kvm_run.hw`` (KVM_EXIT_UNKNOWN): u64 ``hardware_exit_reason``."""

    hardware_exit_reason: int = 0


@dataclass
class KvmRunFailEntry:
    """``kvm_run.fail_entry`` (KVM_EXIT_FAIL_ENTRY): u64
    ``hardware_entry_failure_reason``, u32 ``cpu``."""

    hardware_entry_failure_reason: int = 0
    cpu: int = 0


@dataclass
class KvmRun:
    """``struct kvm_run``, the page a VMM mmaps from a vCPU fd.

    ``exit_reason`` (u32, KVM_EXIT_*), ``immediate_exit`` (u8), and the exit members
    ``hypercall``, ``memory_fault``, ``system_event``, ``io``, ``internal``, ``mmio``,
    ``hw``, ``fail_entry`` (include/uapi/linux/kvm.h; a union in C, separate here)."""

    exit_reason: int = 0
    immediate_exit: int = 0
    hypercall: KvmRunHypercall = field(default_factory=KvmRunHypercall)
    memory_fault: KvmRunMemoryFault = field(default_factory=KvmRunMemoryFault)
    system_event: KvmRunSystemEvent = field(default_factory=KvmRunSystemEvent)
    io: KvmRunIo = field(default_factory=KvmRunIo)
    internal: KvmRunInternal = field(default_factory=KvmRunInternal)
    mmio: KvmRunMmio = field(default_factory=KvmRunMmio)
    hw: KvmRunHw = field(default_factory=KvmRunHw)
    fail_entry: KvmRunFailEntry = field(default_factory=KvmRunFailEntry)


@dataclass
class KvmUserspaceMemoryRegion2:
    """``struct kvm_userspace_memory_region2``: u32 ``slot``, u32 ``flags``
    (KVM_MEM_*), u64 ``guest_phys_addr`` (GPA, bytes), u64 ``memory_size`` (bytes),
    u64 ``userspace_addr`` (HVA), u64 ``guest_memfd_offset`` (bytes), u32 ``guest_memfd``
    (fd)."""

    slot: int
    flags: int
    guest_phys_addr: int
    memory_size: int
    userspace_addr: int
    guest_memfd_offset: int = 0
    guest_memfd: int = 0


@dataclass
class KvmMemoryAttributes:
    """``struct kvm_memory_attributes``: u64 ``address`` (GPA, bytes), u64 ``size``
    (bytes), u64 ``attributes`` (KVM_MEMORY_ATTRIBUTE_*), u64 ``flags`` (must be 0)."""

    address: int
    size: int
    attributes: int
    flags: int = 0


@dataclass
class KvmPreFaultMemory:
    """``struct kvm_pre_fault_memory`` (include/uapi/linux/kvm.h, v6.10+; 64 bytes): u64
    ``gpa`` and u64 ``size`` (bytes; KVM writes back what is left of the range), u64
    ``flags`` (must be 0), u64 ``padding[5]``."""

    gpa: int
    size: int
    flags: int = 0
    padding: list[int] = field(default_factory=lambda: [0] * 5)


@dataclass
class KvmCreateGuestMemfd:
    """``struct kvm_create_guest_memfd``: u64 ``size`` (bytes), u64 ``flags``."""

    size: int
    flags: int = 0


@dataclass
class KvmEnableCap:
    """``struct kvm_enable_cap``: u32 ``cap``, u32 ``flags``, u64 ``args[4]``."""

    cap: int
    flags: int = 0
    args: list[int] = field(default_factory=lambda: [0] * 4)


@dataclass
class KvmSevCmd:
    """``struct kvm_sev_cmd`` (KVM_MEMORY_ENCRYPT_OP): u32 ``id`` (KVM_SEV_*), ``data``
    (the command struct; a pointer in C), u32 ``error`` (firmware code, written by KVM),
    u32 ``sev_fd``."""

    id: int
    data: object = None
    error: int = 0
    sev_fd: int = 0


@dataclass
class KvmSevInit:
    """``struct kvm_sev_init`` (KVM_SEV_INIT2): u64 ``vmsa_features``, u32 ``flags``,
    u16 ``ghcb_version`` (0 = default 2)."""

    vmsa_features: int = 0
    flags: int = 0
    ghcb_version: int = 0


@dataclass
class KvmSevLaunchStart:
    """``struct kvm_sev_launch_start`` (KVM_SEV_LAUNCH_START, SEV / SEV-ES): u32
    ``handle`` (0 = new guest; KVM writes the firmware's handle back), u32 ``policy``,
    u64 ``dh_uaddr``/u32 ``dh_len``, u64 ``session_uaddr``/u32 ``session_len`` (the
    owner's Diffie-Hellman certificate and session blob: not modelled, must be 0)."""

    handle: int = 0
    policy: int = 0
    dh_uaddr: int = 0
    dh_len: int = 0
    session_uaddr: int = 0
    session_len: int = 0


@dataclass
class KvmSevLaunchUpdateData:
    """``struct kvm_sev_launch_update_data`` (KVM_SEV_LAUNCH_UPDATE_DATA): u64 ``uaddr``
    (HVA of guest memory to encrypt in place), u32 ``len`` (bytes)."""

    uaddr: int
    len: int


@dataclass
class KvmSevLaunchMeasure:
    """``struct kvm_sev_launch_measure`` (KVM_SEV_LAUNCH_MEASURE): u64 ``uaddr``, u32
    ``len``; model-only ``measurement``: the bytes KVM would copy to ``uaddr``."""

    uaddr: int = 0
    len: int = 0
    measurement: bytes = b""


@dataclass
class KvmSevSnpLaunchStart:
    """``struct kvm_sev_snp_launch_start``: u64 ``policy``, u8 ``gosvw[16]``, u16 ``flags``."""

    policy: int = 0x30000
    gosvw: bytes = bytes(16)
    flags: int = 0


@dataclass
class KvmSevSnpLaunchUpdate:
    """``struct kvm_sev_snp_launch_update``: u64 ``gfn_start``, u64 ``uaddr`` (HVA of the
    source), u64 ``len`` (bytes), u8 ``type`` (KVM_SEV_SNP_PAGE_TYPE_*), u16 ``flags``.
    KVM writes its progress back into ``gfn_start``, ``uaddr`` and ``len``."""

    gfn_start: int
    uaddr: int
    len: int
    type: int
    flags: int = 0


@dataclass
class KvmSevSnpLaunchFinish:
    """``struct kvm_sev_snp_launch_finish``: u64 ``id_block_uaddr``, u64 ``id_auth_uaddr``,
    u8 ``id_block_en``, u8 ``auth_key_en``, u8 ``vcek_disabled``, u8 ``host_data[32]``,
    u16 ``flags``; plus the model-only ``launch_digest`` written by KVM."""

    id_block_uaddr: int = 0
    id_auth_uaddr: int = 0
    id_block_en: int = 0
    auth_key_en: int = 0
    vcek_disabled: int = 0
    host_data: bytes = bytes(32)
    flags: int = 0
    launch_digest: bytes = b""


# ---- reading a struct from "user memory" ---------------------------------------------------------

#: The C layout of each argument struct: (field, width in bits) for integer fields,
#: (field, -n) for a ``u8[n]`` byte array, (field, ("list", n, bits)) for ``uNN[n]``.
#: From include/uapi/linux/kvm.h (v6.18 / 7.0).
C_LAYOUT: dict[type, tuple[tuple[str, Any], ...]] = {
    KvmUserspaceMemoryRegion2: (("slot", 32), ("flags", 32), ("guest_phys_addr", 64),
                                ("memory_size", 64), ("userspace_addr", 64),
                                ("guest_memfd_offset", 64), ("guest_memfd", 32)),
    KvmMemoryAttributes: (("address", 64), ("size", 64), ("attributes", 64), ("flags", 64)),
    KvmPreFaultMemory: (("gpa", 64), ("size", 64), ("flags", 64), ("padding", ("list", 5, 64))),
    KvmCreateGuestMemfd: (("size", 64), ("flags", 64)),
    KvmEnableCap: (("cap", 32), ("flags", 32), ("args", ("list", 4, 64))),
    KvmSevCmd: (("id", 32), ("error", 32), ("sev_fd", 32)),
    KvmSevInit: (("vmsa_features", 64), ("flags", 32), ("ghcb_version", 16)),
    KvmSevLaunchStart: (("handle", 32), ("policy", 32), ("dh_uaddr", 64), ("dh_len", 32),
                        ("session_uaddr", 64), ("session_len", 32)),
    KvmSevLaunchUpdateData: (("uaddr", 64), ("len", 32)),
    KvmSevLaunchMeasure: (("uaddr", 64), ("len", 32)),
    KvmSevSnpLaunchStart: (("policy", 64), ("gosvw", -16), ("flags", 16)),
    KvmSevSnpLaunchUpdate: (("gfn_start", 64), ("uaddr", 64), ("len", 64), ("type", 8),
                            ("flags", 16)),
    KvmSevSnpLaunchFinish: (("id_block_uaddr", 64), ("id_auth_uaddr", 64), ("id_block_en", 8),
                            ("auth_key_en", 8), ("vcek_disabled", 8), ("host_data", -32),
                            ("flags", 16)),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int)


def copy_from_user(arg: Any, cls: type) -> bool:
    """Model of ``copy_from_user(&params, argp, sizeof(params))`` for an argument
    dataclass: True when ``arg`` is a ``cls`` whose every field holds a value its C field
    can hold.  Model choice (the C interface has no types to get wrong): a non-``cls``
    argument or a field of the wrong Python type (not an int, a byte array of the wrong
    length, a list of the wrong length) is a struct KVM cannot read, False, and the
    caller answers -EFAULT as for an unreadable pointer.  An int field is stored as C
    stores it: masked to the field's width (so -1 in a u64 is 2**64 - 1), written back
    into ``arg``, so that what KVM later writes back starts from the C value.
    ``KvmSevCmd.data`` is checked by the command that reads it."""
    if not isinstance(arg, cls):
        return False
    for name, width in C_LAYOUT[cls]:
        v = getattr(arg, name, None)
        if isinstance(width, int) and width > 0:
            if not _is_int(v):
                return False
            setattr(arg, name, int(v) & ((1 << width) - 1))
        elif isinstance(width, int):
            if not isinstance(v, (bytes, bytearray)) or len(v) != -width:
                return False
        else:
            _kind, n, bits = width
            if not isinstance(v, list) or len(v) != n or not all(_is_int(x) for x in v):
                return False
            setattr(arg, name, [int(x) & ((1 << bits) - 1) for x in v])
    return True
