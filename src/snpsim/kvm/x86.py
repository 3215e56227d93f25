# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The generic x86 run loop and hypercalls: ``KVM_RUN`` and ``KVM_HC_MAP_GPA_RANGE``.

Mirrors ``arch/x86/kvm/x86.c`` (mainline >= v6.18: ``____kvm_emulate_hypercall`` and the
``__kvm_emulate_hypercall`` macro; kvm-qemu-host.md 5).  Return convention of the inner
functions: 1 = re-enter the guest, 0 = return to userspace with ``run->exit_reason`` set,
< 0 = ``KVM_RUN`` fails with that errno.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from snpsim.spec.exit_codes import SVM_EXIT_NPF
from snpsim.spec.kvm_uapi import (
    KVM_CAP_EXIT_HYPERCALL,
    KVM_EINVAL,
    KVM_ENOSYS,
    KVM_EPERM,
    KVM_EXIT_HLT,
    KVM_EXIT_HYPERCALL,
    KVM_EXIT_HYPERCALL_LONG_MODE,
    KVM_EXIT_HYPERCALL_VALID_MASK,
    KVM_EXIT_INTR,
    KVM_HC_MAP_GPA_RANGE,
)
from snpsim.spec.units import PAGE_SIZE, U64_MAX, u32, u64
from snpsim.trace.record import emit_instant, traced

from .kvm_host import KvmVcpu, KvmVm
from .uapi import KvmEnableCap

__all__ = [
    "kvm_arch_vcpu_ioctl_run",
    "vcpu_run",
    "vcpu_enter_guest",
    "user_exit_on_hypercall",
    "kvm_emulate_hypercall",
    "____kvm_emulate_hypercall",
    "complete_hypercall_exit",
    "kvm_vm_ioctl_enable_cap",
    "__kvm_emulate_halt",
    "kvm_vcpu_running",
    "vcpu_block",
]


def user_exit_on_hypercall(kvm: KvmVm, hc_nr: int) -> bool:
    """``user_exit_on_hypercall(kvm, nr)``: bit ``nr`` of ``hypercall_exit_enabled``."""
    return bool(kvm.hypercall_exit_enabled & (1 << hc_nr)) if 0 <= hc_nr < 64 else False


@traced("kvm")
def kvm_vm_ioctl_enable_cap(kvm: KvmVm, cap: KvmEnableCap) -> int:
    """``kvm_vm_ioctl_enable_cap`` for KVM_CAP_EXIT_HYPERCALL: ``args[0]`` outside
    KVM_EXIT_HYPERCALL_VALID_MASK (0x1000) -> -EINVAL, else it replaces the VM's bitmap.
    ``flags != 0`` and other capabilities -> -EINVAL.  Returns 0 or -EINVAL."""
    if cap.flags:
        return -errno.EINVAL
    if cap.cap == KVM_CAP_EXIT_HYPERCALL:
        if cap.args[0] & ~KVM_EXIT_HYPERCALL_VALID_MASK:
            return -errno.EINVAL
        kvm.hypercall_exit_enabled = cap.args[0]
        return 0
    return -errno.EINVAL


@traced("kvm")
def complete_hypercall_exit(vcpu: KvmVcpu) -> int:
    """``complete_hypercall_exit(vcpu)``: RAX = ``run->hypercall.ret`` (truncated to u32
    for a 32-bit hypercall; SEV-ES guests count as 64-bit), skip the instruction.
    Returns 1."""
    ret = vcpu.run.hypercall.ret
    if not _is_64_bit_hypercall(vcpu):
        ret = u32(ret)
    vcpu.regs["rax"] = u64(ret)
    return 1


def _is_64_bit_hypercall(vcpu: KvmVcpu) -> bool:
    # is_64_bit_hypercall(): with protected guest state (SEV-ES/SNP) KVM assumes 64-bit.
    # Model: non-ES guests are always in long mode too (CS is not modelled).
    return True


@traced("kvm")
def ____kvm_emulate_hypercall(vcpu: KvmVcpu, cpl: int, complete: Callable[[KvmVcpu], int]) -> int:
    """``____kvm_emulate_hypercall(vcpu, cpl, complete)`` (kvm-qemu-host.md 5).

    nr = RAX, a0..a3 = RBX, RCX, RDX, RSI.  CPL != 0 -> -KVM_EPERM.  MAP_GPA_RANGE (12):
    exit not enabled -> -KVM_ENOSYS (-1000); GPA not 4 KiB aligned, ``npages`` 0 or
    ``gfn + npages`` wrapping -> -KVM_EINVAL (-22); attrs not validated; otherwise
    KVM_EXIT_HYPERCALL {nr, args gpa/npages/attrs, ret 0, flags LONG_MODE} and return 0.
    Other numbers -> -KVM_ENOSYS.  Errors are stored in ``run->hypercall.ret`` and 1 is
    returned (the caller then runs ``complete``).
    """
    regs = vcpu.regs
    nr = regs.get("rax", 0)
    a0, a1, a2 = regs.get("rbx", 0), regs.get("rcx", 0), regs.get("rdx", 0)
    op_64_bit = _is_64_bit_hypercall(vcpu)
    if not op_64_bit:
        nr, a0, a1, a2 = u32(nr), u32(a0), u32(a1), u32(a2)
    if cpl != 0:
        ret = -KVM_EPERM
    else:
        ret = -KVM_ENOSYS
        if nr == KVM_HC_MAP_GPA_RANGE:
            gpa, npages, attrs = a0, a1, a2
            if not user_exit_on_hypercall(vcpu.kvm, KVM_HC_MAP_GPA_RANGE):
                pass
            elif (gpa & (PAGE_SIZE - 1) or npages == 0
                  or ((gpa >> 12) + npages) & U64_MAX <= (gpa >> 12)):
                ret = -KVM_EINVAL
            else:
                run = vcpu.run
                run.exit_reason = KVM_EXIT_HYPERCALL
                run.hypercall.nr = KVM_HC_MAP_GPA_RANGE
                run.hypercall.args[0] = gpa
                run.hypercall.args[1] = npages
                run.hypercall.args[2] = attrs
                run.hypercall.ret = 0
                run.hypercall.flags = KVM_EXIT_HYPERCALL_LONG_MODE if op_64_bit else 0
                vcpu.complete_userspace_io = complete
                return 0
    vcpu.run.hypercall.ret = u64(ret)
    return 1


@traced("kvm")
def kvm_emulate_hypercall(vcpu: KvmVcpu) -> int:
    """``kvm_emulate_hypercall(vcpu)`` -> ``__kvm_emulate_hypercall(vcpu, cpl,
    complete_hypercall_exit)``: if the inner function returned > 0, complete at once."""
    r = ____kvm_emulate_hypercall(vcpu, vcpu.cpl, complete_hypercall_exit)
    if r > 0:
        return complete_hypercall_exit(vcpu)
    return r


@traced("kvm")
def vcpu_enter_guest(vcpu: KvmVcpu) -> int:
    """``vcpu_enter_guest(vcpu)``: prepare the switch (SEV-ES: ``sev_es_unmap_ghcb``
    writes results back to the GHCB), ``svm_vcpu_run`` (VMRUN until the next #VMEXIT),
    then ``svm_handle_exit`` (profile override point ``svm_handle_exit``: a variant sees
    every #VMEXIT first).  Returns the handler's 1 / 0 / -errno.

    Model-only: an exit other than #NPF ends any #NPF retry the livelock watcher was
    following on this vCPU (``kvm_mmu_page_fault``, :mod:`snpsim.trace.progress`)."""
    from .svm import svm_handle_exit, svm_prepare_switch_to_guest, svm_vcpu_run

    svm_prepare_switch_to_guest(vcpu)
    exit_ = svm_vcpu_run(vcpu)
    vcpu.exits += 1
    if exit_.exit_code != SVM_EXIT_NPF:
        vcpu.kvm.host.progress.progress("kvm_mmu_page_fault", vcpu.vcpu_id)
    return vcpu.kvm.profile.call("svm_handle_exit", svm_handle_exit)(vcpu, exit_)


def __kvm_emulate_halt(vcpu: KvmVcpu, state: str, reason: int) -> int:
    """``__kvm_emulate_halt(vcpu, state, reason)`` (arch/x86/kvm/x86.c, v6.17): with the
    local APIC in the kernel (QEMU's default ``kernel-irqchip``), set ``mp_state`` to
    ``state`` (``"halted"`` or ``"ap_reset_hold"``) and return 1: ``vcpu_run`` then blocks
    the vCPU (``vcpu_block``) instead of re-entering the guest.  ``reason`` (KVM_EXIT_HLT
    or KVM_EXIT_AP_RESET_HOLD) is what a VM without an in-kernel APIC would see; the
    model always has one.  Returns 1."""
    vcpu.mp_state = state
    emit_instant("kvm", "vcpu halted", vcpu=vcpu.vcpu_id, state=state, reason=reason)
    return 1


def kvm_vcpu_running(vcpu: KvmVcpu) -> bool:
    """``kvm_vcpu_running(vcpu)``: ``mp_state`` is RUNNABLE (not halted, not in an AP
    reset hold)."""
    return vcpu.mp_state == "runnable"


def _block_state(vcpu: KvmVcpu) -> tuple:
    """Model-only: what can wake a blocked vCPU -- its own signal (``immediate_exit``),
    whether another host thread ran since the last pass (the host port's
    ``thread_changes``) and, for each vCPU of the VM, whether it sleeps, its state and
    how many exits it has taken."""
    return (vcpu.run.immediate_exit, vcpu.kvm.host.thread_changes,
            tuple((v.blocked, v.mp_state, v.exits) for v in vcpu.kvm.vcpus))


def _block_text(vcpu: KvmVcpu) -> str:
    """Model-only: why nothing can wake ``vcpu`` (for the livelock report)."""
    others = []
    for v in vcpu.kvm.vcpus:
        if v is vcpu or v.blocked:
            continue
        others.append(f"vCPU {v.vcpu_id} never entered" if v.exits == 0
                      else f"vCPU {v.vcpu_id} does not run")
    why = ", ".join(others) if others else "no signal pending"
    return f"nothing can wake it ({why})"


@traced("kvm")
def vcpu_block(vcpu: KvmVcpu) -> int:
    """``vcpu_block(vcpu)`` -> ``kvm_vcpu_halt`` / ``kvm_vcpu_block`` (arch/x86/kvm/x86.c,
    virt/kvm/kvm_main.c, v6.17): sleep until an event makes the vCPU runnable or a signal
    is pending.

    The model has no interrupt source (no LAPIC timer, IPI or SIPI is modelled), so
    only a signal ends the block.  Model choices: the signal QEMU sends with
    ``kvm_cpu_kick`` (SIG_IPI, which also sets ``run->immediate_exit``) is read from
    ``run->immediate_exit``; while blocked the host thread yields to the scheduler; when
    every vCPU of the VM is blocked nothing can ever wake one, so the last to block
    returns to userspace with KVM_EXIT_HLT (return 0) instead of sleeping forever.
    When a vCPU that is not blocked never runs either (its thread does not exist, or
    no other thread is scheduled), every pass finds the same state: the livelock
    watcher ends the run (loop ``vcpu_block``, :mod:`snpsim.trace.progress`).
    Returns -EINTR with KVM_EXIT_INTR (signal), or 0 with KVM_EXIT_HLT (all halted).
    """
    kvm = vcpu.kvm
    watcher = kvm.host.progress
    vcpu.blocked = True
    try:
        while True:
            if vcpu.run.immediate_exit:
                vcpu.run.exit_reason = KVM_EXIT_INTR
                return -errno.EINTR
            if all(v.blocked for v in kvm.vcpus):
                emit_instant("kvm", "all vCPUs halted", vcpu=vcpu.vcpu_id)
                vcpu.run.exit_reason = KVM_EXIT_HLT
                return 0
            watcher.watch("vcpu_block", vcpu.vcpu_id, _block_state(vcpu),
                          lambda: _block_text(vcpu))
            kvm.host.yield_point()
    finally:
        vcpu.blocked = False
        watcher.progress("vcpu_block", vcpu.vcpu_id)


@traced("kvm")
def vcpu_run(vcpu: KvmVcpu) -> int:
    """``vcpu_run(vcpu)``: enter the guest while the vCPU is runnable, block it while it
    is halted (``vcpu_block``), until a step returns <= 0; after each step a pending
    signal (model: ``run->immediate_exit``, set by QEMU's ``kvm_cpu_kick``) ends the
    run with KVM_EXIT_INTR and -EINTR (``xfer_to_guest_mode_handle_work`` ->
    ``kvm_handle_signal_exit``).  No count of entries stops a run: a loop that makes no
    progress is caught by the livelock watcher (:mod:`snpsim.trace.progress`).  The
    KVM profile knob ``max_entries_per_run`` (default None) is an opt-in model stop:
    after that many guest entries -EINTR, as if the VMM had sent a signal."""
    limit = vcpu.kvm.profile.knob("max_entries_per_run")
    entries = 0
    while True:
        if kvm_vcpu_running(vcpu):
            if limit is not None and entries >= limit:
                vcpu.kvm.pr(f"vcpu{vcpu.vcpu_id}: {limit} entries without exit (model stop)")
                vcpu.run.exit_reason = KVM_EXIT_INTR
                return -errno.EINTR
            entries += 1
            r = vcpu_enter_guest(vcpu)
        else:
            r = vcpu_block(vcpu)
        if r <= 0:
            return r
        if vcpu.run.immediate_exit:
            vcpu.run.exit_reason = KVM_EXIT_INTR
            return -errno.EINTR


@traced("kvm")
def kvm_arch_vcpu_ioctl_run(vcpu: KvmVcpu) -> int:
    """``kvm_arch_vcpu_ioctl_run(vcpu)`` (KVM_RUN): first finish the previous userspace
    exit (``complete_userspace_io``, e.g. ``snp_complete_one_psc``), then ``vcpu_run``.

    Returns 0 (``run->exit_reason`` says why), or -errno: -EFAULT with
    KVM_EXIT_MEMORY_FAULT, -EINVAL (unregistered GHCB, unsupported event), -EIO (VM
    bugged), -EINTR (``immediate_exit``).  A scheduler yield point on entry and exit.
    """
    host = vcpu.kvm.host
    host.yield_point()
    try:
        if vcpu.kvm.bugged:
            return -errno.EIO
        if vcpu.run.immediate_exit:
            return -errno.EINTR
        cui = vcpu.complete_userspace_io
        if cui is not None:
            vcpu.complete_userspace_io = None
            r = cui(vcpu)
            if r <= 0:
                return r
        r = vcpu_run(vcpu)
        emit_instant("kvm", "KVM_RUN returns to userspace", ret=r,
                     exit_reason=vcpu.run.exit_reason)
        return r
    finally:
        host.yield_point()
