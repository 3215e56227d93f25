# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""SEV-SNP launch in QEMU: ``sev_kvm_init`` (KVM_SEV_INIT2), ``kvm_enable_hypercall``,
``sev_snp_launch_start``, ``snp_launch_update_data``, ``sev_snp_launch_update``,
``sev_snp_launch_finish``; and the SEV / SEV-ES launch: ``sev_launch_start``,
``sev_launch_update_data``, ``sev_launch_get_measure`` (LAUNCH_UPDATE_VMSA for SEV-ES,
then LAUNCH_MEASURE), ``sev_launch_finish``.  QEMU enables the KVM_HC_MAP_GPA_RANGE
exit only in ``sev_snp_launch_start`` (kvm-qemu-host.md 8.1 [unconfirmed for SEV /
SEV-ES: no other enabling call is known]).

Mirrors QEMU ``target/i386/sev.c`` (9.1-10.1 era, merged patch postings;
kvm-qemu-host.md 8.1, 8.7).  Failures are ``error_report`` + ``exit(1)``
(:class:`QemuExit`), as in QEMU.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from snpsim.kvm.kvm_main import (
    KvmEnableCap,
    KvmSevCmd,
    KvmSevInit,
    KvmSevLaunchMeasure,
    KvmSevLaunchStart,
    KvmSevLaunchUpdateData,
    KvmSevSnpLaunchFinish,
    KvmSevSnpLaunchStart,
    KvmSevSnpLaunchUpdate,
)
from snpsim.spec.kvm_uapi import (
    KVM_CAP_EXIT_HYPERCALL,
    KVM_ENABLE_CAP,
    KVM_HC_MAP_GPA_RANGE,
    KVM_MEMORY_ENCRYPT_OP,
    KVM_SEV_INIT2,
    KVM_SEV_LAUNCH_FINISH,
    KVM_SEV_LAUNCH_MEASURE,
    KVM_SEV_LAUNCH_START,
    KVM_SEV_LAUNCH_UPDATE_DATA,
    KVM_SEV_LAUNCH_UPDATE_VMSA,
    KVM_SEV_SNP_LAUNCH_FINISH,
    KVM_SEV_SNP_LAUNCH_START,
    KVM_SEV_SNP_LAUNCH_UPDATE,
)
from snpsim.trace.record import traced

from .kvm_all import KVMState, QemuExit, kvm_set_memory_attributes_private, kvm_vm_ioctl

__all__ = [
    "SnpLaunchUpdateData",
    "sev_kvm_init",
    "kvm_enable_hypercall",
    "sev_snp_launch_start",
    "snp_launch_update_data",
    "sev_snp_launch_update",
    "sev_snp_launch_finish",
    "sev_launch_start",
    "sev_launch_update_data",
    "sev_launch_get_measure",
    "sev_launch_finish",
]


@dataclass
class SnpLaunchUpdateData:
    """``SevLaunchUpdateData``: ``gpa`` (bytes), ``hva`` (the source in QEMU's memory),
    ``len`` (bytes), ``type`` (KVM_SEV_SNP_PAGE_TYPE_*)."""

    gpa: int
    hva: int
    len: int
    type: int


def _sev_ioctl(s: KVMState, cmd_id: int, data: object) -> tuple[int, KvmSevCmd]:
    cmd = KvmSevCmd(cmd_id, data)
    return kvm_vm_ioctl(s, KVM_MEMORY_ENCRYPT_OP, cmd), cmd


@traced("vmm")
def sev_kvm_init(s: KVMState, ghcb_version: int = 0) -> int:
    """``sev_kvm_init`` / ``sev_init2_required``: KVM_SEV_INIT2 (ghcb_version 0 = KVM's
    default 2).  Failure -> exit(1)."""
    ret, cmd = _sev_ioctl(s, KVM_SEV_INIT2, KvmSevInit(ghcb_version=ghcb_version))
    if ret:
        s.error_report(f"sev_kvm_init: failed to initialize ret={ret} fw_error={cmd.error}")
        raise QemuExit(1, "KVM_SEV_INIT2 failed")
    return 0


@traced("vmm")
def kvm_enable_hypercall(s: KVMState, enable_mask: int) -> int:
    """``kvm_enable_hypercall(enable_mask)``: KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL,
    args[0] = mask).  Returns the ioctl result."""
    return kvm_vm_ioctl(s, KVM_ENABLE_CAP, KvmEnableCap(KVM_CAP_EXIT_HYPERCALL, 0,
                                                        [enable_mask, 0, 0, 0]))


@traced("vmm")
def sev_snp_launch_start(s: KVMState, policy: int = 0x30000) -> int:
    """``sev_snp_launch_start(sev_common)``: enable the MAP_GPA_RANGE hypercall exit
    (BIT(12)) first (failure aborts the launch), then KVM_SEV_SNP_LAUNCH_START.
    Failures -> exit(1)."""
    if kvm_enable_hypercall(s, 1 << KVM_HC_MAP_GPA_RANGE):
        s.error_report("Unable to enable hypercall exit for KVM_HC_MAP_GPA_RANGE")
        raise QemuExit(1, "kvm_enable_hypercall failed")
    ret, cmd = _sev_ioctl(s, KVM_SEV_SNP_LAUNCH_START, KvmSevSnpLaunchStart(policy))
    if ret:
        s.error_report(f"sev_snp_launch_start: SNP_LAUNCH_START ret={ret} fw_error={cmd.error}")
        raise QemuExit(1, "SNP_LAUNCH_START failed")
    return 0


def snp_launch_update_data(queue: list[SnpLaunchUpdateData], gpa: int, hva: int, length: int,
                           page_type: int) -> int:
    """``snp_launch_update_data(gpa, hva, len, type)``: queue a region for launch finish."""
    queue.append(SnpLaunchUpdateData(gpa, hva, length, page_type))
    return 0


@traced("vmm")
def sev_snp_launch_update(s: KVMState, data: SnpLaunchUpdateData) -> int:
    """``sev_snp_launch_update(sev_snp, data)`` (8.7): reject a null HVA or length; set
    the GPA range private; KVM_SEV_SNP_LAUNCH_UPDATE until ``len`` is 0 (retrying on
    -EAGAIN, any other error fails); check ``gfn_start << 12 == gpa + len``, else -EIO.
    Returns 0 or negative (the caller exits)."""
    if not data.hva or not data.len:
        s.error_report("SNP_LAUNCH_UPDATE called with invalid address / length")
        return -errno.EINVAL
    ret = kvm_set_memory_attributes_private(s, data.gpa, data.len)
    if ret:
        return ret
    upd = KvmSevSnpLaunchUpdate(gfn_start=data.gpa >> 12, uaddr=data.hva, len=data.len,
                                type=data.type)
    while upd.len:
        ret, cmd = _sev_ioctl(s, KVM_SEV_SNP_LAUNCH_UPDATE, upd)
        if ret == -errno.EAGAIN:
            continue
        if ret:
            s.error_report(f"SNP_LAUNCH_UPDATE ret={ret} fw_error={cmd.error} gpa=0x{data.gpa:x}")
            return ret
    if upd.gfn_start << 12 != data.gpa + data.len:
        s.error_report("SNP_LAUNCH_UPDATE: expected GPA range was not processed")
        return -errno.EIO
    return 0


@traced("vmm")
def sev_snp_launch_finish(s: KVMState, queue: list[SnpLaunchUpdateData]) -> bytes:
    """``sev_snp_launch_finish(sev_common)``: process the queued updates (each failure ->
    exit(1)), then KVM_SEV_SNP_LAUNCH_FINISH; returns the launch digest (model)."""
    for data in queue:
        if sev_snp_launch_update(s, data):
            raise QemuExit(1, "SNP_LAUNCH_UPDATE failed")
    queue.clear()
    fin = KvmSevSnpLaunchFinish()
    ret, cmd = _sev_ioctl(s, KVM_SEV_SNP_LAUNCH_FINISH, fin)
    if ret:
        s.error_report(f"SNP_LAUNCH_FINISH ret={ret} fw_error={cmd.error}")
        raise QemuExit(1, "SNP_LAUNCH_FINISH failed")
    return fin.launch_digest


# ---- SEV / SEV-ES launch ------------------------------------------------------------------


@traced("vmm")
def sev_launch_start(s: KVMState, policy: int = 0) -> int:
    """``sev_launch_start(sev_common)``: KVM_SEV_LAUNCH_START with ``policy`` (no DH
    certificate or session blob).  No hypercall exit is enabled.  Failure -> exit(1)."""
    ret, cmd = _sev_ioctl(s, KVM_SEV_LAUNCH_START, KvmSevLaunchStart(policy=policy))
    if ret:
        s.error_report(f"sev_launch_start: LAUNCH_START ret={ret} fw_error={cmd.error}")
        raise QemuExit(1, "LAUNCH_START failed")
    return 0


@traced("vmm")
def sev_launch_update_data(s: KVMState, addr: int, length: int) -> int:
    """``sev_launch_update_data(sev_common, gpa, addr, len)``: KVM_SEV_LAUNCH_UPDATE_DATA
    of ``length`` bytes at HVA ``addr`` (encrypted in place).  Returns 0 or the ioctl
    error (the caller exits)."""
    if not addr or not length:
        return 1
    ret, cmd = _sev_ioctl(s, KVM_SEV_LAUNCH_UPDATE_DATA, KvmSevLaunchUpdateData(addr, length))
    if ret:
        s.error_report(f"sev_launch_update_data: LAUNCH_UPDATE ret={ret} fw_error={cmd.error}")
    return ret


@traced("vmm")
def sev_launch_get_measure(s: KVMState, sev_es: bool) -> bytes:
    """``sev_launch_get_measure`` (machine-done notifier): for SEV-ES, LAUNCH_UPDATE_VMSA
    first (failure -> exit(1)); then KVM_SEV_LAUNCH_MEASURE.  Returns the measurement
    (model: the launch digest)."""
    if sev_es:
        ret, cmd = _sev_ioctl(s, KVM_SEV_LAUNCH_UPDATE_VMSA, None)
        if ret:
            s.error_report(f"sev_launch_update_vmsa: LAUNCH_UPDATE_VMSA ret={ret} "
                           f"fw_error={cmd.error}")
            raise QemuExit(1, "LAUNCH_UPDATE_VMSA failed")
    m = KvmSevLaunchMeasure()
    ret, cmd = _sev_ioctl(s, KVM_SEV_LAUNCH_MEASURE, m)
    if ret:
        s.error_report(f"sev_launch_get_measure: LAUNCH_MEASURE ret={ret} fw_error={cmd.error}")
        raise QemuExit(1, "LAUNCH_MEASURE failed")
    return m.measurement


@traced("vmm")
def sev_launch_finish(s: KVMState) -> int:
    """``sev_launch_finish(sev_common)``: KVM_SEV_LAUNCH_FINISH.  Failure -> exit(1)."""
    ret, cmd = _sev_ioctl(s, KVM_SEV_LAUNCH_FINISH, None)
    if ret:
        s.error_report(f"sev_launch_finish: LAUNCH_FINISH ret={ret} fw_error={cmd.error}")
        raise QemuExit(1, "LAUNCH_FINISH failed")
    return 0
