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

from snpsim.spec.exit_codes import (
    SVM_EVTINJ_TYPE_EXEPT,
    SVM_EVTINJ_VALID,
    SVM_EVTINJ_VALID_ERR,
    SVM_EXIT_NPF,
)
from snpsim.spec.faults import X86_TRAP_GP, X86_TRAP_UD
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
    KVM_EXIT_MMIO,
    KVM_HC_MAP_GPA_RANGE,
)
from snpsim.spec.units import PAGE_SIZE, U64_MAX, u32, u64
from snpsim.trace.record import emit_instant, traced

from .kvm_host import KvmVcpu, KvmVm
from .uapi import KvmEnableCap

__all__ = [
    "kvm_arch_vcpu_ioctl_run",
    "kvm_vcpu_reset",
    "kvm_vcpu_has_events",
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
    "kvm_queue_exception",
    "kvm_inject_gp",
    "kvm_complete_insn_gp",
    "kvm_emulate_as_nop",
    "kvm_emulate_invd",
    "kvm_emulate_wbinvd",
    "kvm_emulate_monitor",
    "kvm_emulate_mwait",
    "kvm_handle_invalid_op",
    "kvm_emulate_rdpmc",
    "KVM_MSR_DEFAULTS",
    "kvm_get_msr_common",
    "kvm_set_msr_common",
    "kvm_emulate_rdmsr",
    "kvm_emulate_wrmsr",
    "kvm_sev_es_mmio_read",
    "kvm_sev_es_mmio_write",
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
    """``vcpu_enter_guest(vcpu)``: first the pending requests the model knows --
    KVM_REQ_UPDATE_PROTECTED_GUEST_STATE: ``kvm_vcpu_reset(vcpu, true)`` and, if the
    vCPU is then not RUNNABLE, return 1 without entering (x86.c, v6.17) --; prepare the switch (SEV-ES: ``sev_es_unmap_ghcb``
    writes results back to the GHCB), ``svm_vcpu_run`` (VMRUN until the next #VMEXIT),
    then ``svm_handle_exit`` (profile override point ``svm_handle_exit``: a variant sees
    every #VMEXIT first).  Returns the handler's 1 / 0 / -errno.

    Model-only: an exit other than #NPF ends any #NPF retry the livelock watcher was
    following on this vCPU (``kvm_mmu_page_fault``, :mod:`snpsim.trace.progress`)."""
    from .svm import svm_handle_exit, svm_prepare_switch_to_guest, svm_vcpu_run
    from .svm_sev import KVM_REQ_UPDATE_PROTECTED_GUEST_STATE

    if KVM_REQ_UPDATE_PROTECTED_GUEST_STATE in vcpu.requests:
        vcpu.requests.discard(KVM_REQ_UPDATE_PROTECTED_GUEST_STATE)
        kvm_vcpu_reset(vcpu, True)
        if vcpu.mp_state != "runnable":
            return 1
    svm_prepare_switch_to_guest(vcpu)
    exit_ = svm_vcpu_run(vcpu)
    vcpu.exits += 1
    if exit_.exit_code != SVM_EXIT_NPF:
        vcpu.kvm.host.progress.progress("kvm_mmu_page_fault", vcpu.vcpu_id)
    return vcpu.kvm.profile.call("svm_handle_exit", svm_handle_exit)(vcpu, exit_)


@traced("kvm")
def kvm_vcpu_reset(vcpu: KvmVcpu, init_event: bool) -> None:
    """``kvm_vcpu_reset(vcpu, init_event)`` (arch/x86/kvm/x86.c) -> ``svm_vcpu_reset``
    (svm.c, v6.17), reduced to its SEV-SNP part: for an INIT event,
    ``sev_snp_init_protected_guest_state`` (:mod:`snpsim.kvm.svm_sev`).  Model: the
    rest of the register reset is not modelled (the guest state of an SEV-ES/SNP vCPU
    is in its VMSA)."""
    from .svm_sev import sev_snp_init_protected_guest_state

    if init_event:
        sev_snp_init_protected_guest_state(vcpu)


def kvm_vcpu_has_events(vcpu: KvmVcpu) -> bool:
    """``kvm_vcpu_has_events(vcpu)`` (arch/x86/kvm/x86.c, v6.17), reduced to the one event
    source the model has: a pending KVM_REQ_UPDATE_PROTECTED_GUEST_STATE (no interrupt,
    SIPI or timer is modelled)."""
    from .svm_sev import KVM_REQ_UPDATE_PROTECTED_GUEST_STATE

    return KVM_REQ_UPDATE_PROTECTED_GUEST_STATE in vcpu.requests


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
    only a pending event (:func:`kvm_vcpu_has_events`: an SNP AP creation's
    KVM_REQ_UPDATE_PROTECTED_GUEST_STATE, which makes a HALTED or AP_RESET_HOLD vCPU
    RUNNABLE and returns 1) or a signal ends the block.  Model choices: the signal QEMU sends with
    ``kvm_cpu_kick`` (SIG_IPI, which also sets ``run->immediate_exit``) is read from
    ``run->immediate_exit``; while blocked the host thread yields to the scheduler; when
    every vCPU of the VM is blocked nothing can ever wake one, so the last to block
    returns to userspace with KVM_EXIT_HLT (return 0) instead of sleeping forever.
    When a vCPU that is not blocked never runs either (its thread does not exist, or
    no other thread is scheduled), every pass finds the same state: the livelock
    watcher ends the run (loop ``vcpu_block``, :mod:`snpsim.trace.progress`).
    Returns 1 (an event), -EINTR with KVM_EXIT_INTR (signal), or 0 with KVM_EXIT_HLT
    (all halted).
    """
    kvm = vcpu.kvm
    watcher = kvm.host.progress
    vcpu.blocked = True
    try:
        while True:
            if kvm_vcpu_has_events(vcpu):
                # kvm_arch_vcpu_runnable: wake; HALTED / AP_RESET_HOLD -> RUNNABLE.
                if vcpu.mp_state in ("halted", "ap_reset_hold"):
                    vcpu.mp_state = "runnable"
                return 1
            if vcpu.run.immediate_exit:
                vcpu.run.exit_reason = KVM_EXIT_INTR
                return -errno.EINTR
            if all(v.blocked and not kvm_vcpu_has_events(v) for v in kvm.vcpus):
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


# ---- exceptions and simple instruction emulation (arch/x86/kvm/x86.c, v6.17) ----------------


def kvm_queue_exception(vcpu: KvmVcpu, vector: int, error_code: int | None = None) -> None:
    """``kvm_queue_exception[_e](vcpu, nr[, error_code])`` and, at the next entry,
    ``svm_inject_exception``: the VMCB's EVENTINJ = VALID | TYPE_EXEPT | ``vector``
    (| VALID_ERR when there is an error code).  The CPU delivers it to the guest before
    its next instruction (:meth:`snpsim.hw.cpu.GuestCpu._inject_event`)."""
    event = SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_EXEPT | vector
    if error_code is not None:
        event |= SVM_EVTINJ_VALID_ERR | ((error_code & 0xFFFFFFFF) << 32)
    vcpu.vmcb.event_inj = event
    emit_instant("kvm", "exception queued", vcpu=vcpu.vcpu_id, vector=vector)


def kvm_inject_gp(vcpu: KvmVcpu, error_code: int) -> None:
    """``kvm_inject_gp(vcpu, error_code)``: queue #GP(error_code)."""
    kvm_queue_exception(vcpu, X86_TRAP_GP, error_code)


def kvm_complete_insn_gp(vcpu: KvmVcpu, err: int) -> int:
    """``kvm_complete_insn_gp(vcpu, err)``: an error -> #GP(0); else skip the instruction
    (model: RIP is the guest's; for SEV-ES guests the guest advances it itself).
    Returns 1."""
    if err:
        kvm_inject_gp(vcpu, 0)
    return 1


@traced("kvm")
def kvm_emulate_as_nop(vcpu: KvmVcpu) -> int:
    """``kvm_emulate_as_nop(vcpu)``: skip the instruction and resume.  Returns 1."""
    return 1


@traced("kvm")
def kvm_emulate_invd(vcpu: KvmVcpu) -> int:
    """``kvm_emulate_invd(vcpu)``: INVD is treated as a NOP (writing back dirty lines
    is harmless, dropping them is not).  Returns 1."""
    return kvm_emulate_as_nop(vcpu)


@traced("kvm")
def kvm_emulate_wbinvd(vcpu: KvmVcpu) -> int:
    """``kvm_emulate_wbinvd(vcpu)``: ``kvm_emulate_wbinvd_noskip`` (a flush only with
    non-coherent DMA assigned: none in the model), then skip.  Returns 1."""
    return kvm_emulate_as_nop(vcpu)


def _kvm_emulate_monitor_mwait(vcpu: KvmVcpu, insn: str) -> int:
    # KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS is on unless userspace disables it (QEMU does
    # not), so KVM never checks the guest's MWAIT CPUID bit and emulates a NOP.
    vcpu.kvm.pr_once(f"kvm: {insn} instruction emulated as NOP!")
    return kvm_emulate_as_nop(vcpu)


@traced("kvm")
def kvm_emulate_monitor(vcpu: KvmVcpu) -> int:
    """``kvm_emulate_monitor(vcpu)`` -> ``kvm_emulate_monitor_mwait(vcpu, "MONITOR")``:
    with the default quirk KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS, ``pr_warn_once("%s
    instruction emulated as NOP!")`` and a NOP.  Returns 1."""
    return _kvm_emulate_monitor_mwait(vcpu, "MONITOR")


@traced("kvm")
def kvm_emulate_mwait(vcpu: KvmVcpu) -> int:
    """``kvm_emulate_mwait(vcpu)``: as :func:`kvm_emulate_monitor` for "MWAIT".
    Returns 1."""
    return _kvm_emulate_monitor_mwait(vcpu, "MWAIT")


@traced("kvm")
def kvm_handle_invalid_op(vcpu: KvmVcpu) -> int:
    """``kvm_handle_invalid_op(vcpu)`` (the SVM_EXIT_RDTSCP handler: RDTSCP is
    intercepted only when the guest's CPUID lacks it): queue #UD.  Returns 1."""
    kvm_queue_exception(vcpu, X86_TRAP_UD)
    return 1


@traced("kvm")
def kvm_emulate_rdpmc(vcpu: KvmVcpu) -> int:
    """``kvm_emulate_rdpmc(vcpu)``: ``kvm_pmu_rdpmc(vcpu, ECX)`` fails for a vCPU
    without a vPMU (``pmu->version`` 0; model: no vPMU is modelled, as with QEMU's
    default ``pmu=off`` CPU models) -> #GP(0); else EDX:EAX = the counter.  Returns 1."""
    kvm_inject_gp(vcpu, 0)
    return 1


# ---- MSRs (kvm_get_msr_common / kvm_set_msr_common) -----------------------------------------

#: Model choice: the MSRs the model's KVM emulates, with their values after vCPU reset
#: (``kvm_vcpu_reset``/``kvm_arch_vcpu_create``, v6.17): IA32_TSC 0x10 (model: 0),
#: IA32_APICBASE 0x1B (0xFEE00000 | ENABLE, | BSP on vCPU 0), IA32_UCODE_REV 0x8B
#: (``microcode_version`` 0x100000000), IA32_MISC_ENABLE 0x1A0 (PEBS_UNAVAIL |
#: BTS_UNAVAIL = 0x1800), IA32_CR_PAT 0x277 (0x0007040600070406), and
#: MSR_KVM_MIGRATION_CONTROL 0x4B564D08 (0; the model's CPUID advertises
#: KVM_FEATURE_MIGRATION_CONTROL).  Every other index is unknown: the access fails
#: (``ignore_msrs`` is off by default) and the guest gets #GP.
KVM_MSR_DEFAULTS: dict[int, int] = {
    0x10: 0,
    0x1B: 0xFEE00800,
    0x8B: 0x100000000,
    0x1A0: 0x1800,
    0x277: 0x0007040600070406,
    0x4B564D08: 0,
}

_MSR_APIC_BASE_BSP = 1 << 8


def kvm_get_msr_common(vcpu: KvmVcpu, msr: int) -> tuple[int, int]:
    """``kvm_get_msr_common(vcpu, msr_info)`` for the model's MSRs
    (:data:`KVM_MSR_DEFAULTS`): returns (0, value) or (1, 0) for an MSR KVM does not
    know."""
    if msr not in KVM_MSR_DEFAULTS:
        return 1, 0
    value = vcpu.msrs.get(msr, KVM_MSR_DEFAULTS[msr])
    if msr == 0x1B and vcpu.vcpu_id == 0 and msr not in vcpu.msrs:
        value |= _MSR_APIC_BASE_BSP
    return 0, value


def kvm_set_msr_common(vcpu: KvmVcpu, msr: int, data: int) -> int:
    """``kvm_set_msr_common(vcpu, msr_info)`` for the model's MSRs: a known MSR keeps the
    value (model: no per-MSR reserved-bit checks), an unknown one fails.  Returns 0 or
    1."""
    if msr not in KVM_MSR_DEFAULTS:
        return 1
    vcpu.msrs[msr] = u64(data)
    return 0


@traced("kvm")
def kvm_emulate_rdmsr(vcpu: KvmVcpu, complete: Callable[[KvmVcpu, int], int]) -> int:
    """``kvm_emulate_rdmsr(vcpu)``: ECX = the MSR; success -> EAX/EDX = the low/high
    halves; failure -> (no userspace MSR exit: QEMU enables them only for the MSRs it
    filters, none of them here) the vendor completion ``complete(vcpu, err)``
    (``svm_complete_emulated_msr``).  Returns its result."""
    msr = vcpu.regs.get("rcx", 0) & 0xFFFFFFFF
    err, value = kvm_get_msr_common(vcpu, msr)
    if not err:
        vcpu.regs.update(rax=value & 0xFFFFFFFF, rdx=value >> 32)
    else:
        emit_instant("kvm", "rdmsr failed", vcpu=vcpu.vcpu_id, msr=msr)
    return complete(vcpu, err)


@traced("kvm")
def kvm_emulate_wrmsr(vcpu: KvmVcpu, complete: Callable[[KvmVcpu, int], int]) -> int:
    """``kvm_emulate_wrmsr(vcpu)``: ECX = the MSR, EDX:EAX = the value;
    ``kvm_set_msr_common``, then ``complete(vcpu, err)``.  Returns its result."""
    regs = vcpu.regs
    msr = regs.get("rcx", 0) & 0xFFFFFFFF
    data = ((regs.get("rdx", 0) & 0xFFFFFFFF) << 32) | (regs.get("rax", 0) & 0xFFFFFFFF)
    err = kvm_set_msr_common(vcpu, msr, data)
    if err:
        emit_instant("kvm", "wrmsr failed", vcpu=vcpu.vcpu_id, msr=msr)
    return complete(vcpu, err)


# ---- SEV-ES MMIO (kvm_sev_es_mmio_read / _write) ---------------------------------------------


def _sev_es_mmio(vcpu: KvmVcpu, gpa: int, nbytes: int, data: object, is_write: bool) -> int:
    # No in-kernel MMIO device is modelled (read_write_mmio handles 0 bytes), so the
    # whole access goes to userspace, 8 bytes per KVM_EXIT_MMIO.
    host = vcpu.kvm.host
    state = {"gpa": gpa, "off": 0, "left": nbytes}

    def fill() -> None:
        run = vcpu.run
        n = min(8, state["left"])
        run.exit_reason = KVM_EXIT_MMIO
        run.mmio.phys_addr = state["gpa"]
        run.mmio.len = n
        run.mmio.is_write = int(is_write)
        run.mmio.data = (data.read(host, state["off"], n) if is_write else b"").ljust(8, b"\0")
        vcpu.complete_userspace_io = complete_sev_es_emulated_mmio

    def complete_sev_es_emulated_mmio(v: KvmVcpu) -> int:
        n = min(8, state["left"])
        if not is_write:
            data.write(host, state["off"], bytes(v.run.mmio.data[:n]))
        state["gpa"] += n
        state["off"] += n
        state["left"] -= n
        if state["left"] <= 0:
            return 1
        fill()
        return 0

    fill()
    return 0


@traced("kvm")
def kvm_sev_es_mmio_write(vcpu: KvmVcpu, gpa: int, nbytes: int, data: object) -> int:
    """``kvm_sev_es_mmio_write(vcpu, gpa, bytes, data)`` (x86.c, v6.17): no buffer ->
    -EINVAL; no in-kernel device claims the GPA (none is modelled), so KVM_EXIT_MMIO
    {phys_addr, len = min(8, left), is_write 1, data}, again after each KVM_RUN
    (``complete_sev_es_emulated_mmio``) until ``nbytes`` are done.  ``data`` is the
    scratch area (:class:`snpsim.kvm.svm_sev.Scratch`).  Returns 0 or -EINVAL."""
    if data is None:
        return -errno.EINVAL
    return _sev_es_mmio(vcpu, gpa, nbytes, data, True)


@traced("kvm")
def kvm_sev_es_mmio_read(vcpu: KvmVcpu, gpa: int, nbytes: int, data: object) -> int:
    """``kvm_sev_es_mmio_read(vcpu, gpa, bytes, data)`` (x86.c, v6.17): as
    :func:`kvm_sev_es_mmio_write` with is_write 0; each completion copies the bytes
    userspace put in ``run->mmio.data`` into the scratch area (written back to the guest
    when the GHCB is unmapped).  Returns 0 or -EINVAL."""
    if data is None:
        return -errno.EINVAL
    return _sev_es_mmio(vcpu, gpa, nbytes, data, False)
