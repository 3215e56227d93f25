# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""x86 exit handling of QEMU's KVM accelerator: ``kvm_arch_handle_exit``,
``kvm_handle_hypercall``, ``kvm_handle_hc_map_gpa_range``.

Mirrors QEMU ``target/i386/kvm/kvm.c`` (9.1-10.1 era, merged patch postings;
kvm-qemu-host.md 8.3).  A KVM_EXIT_SYSTEM_EVENT that ``kvm_cpu_exec`` does not handle
itself (SEV_TERM, an SEV-ES/SNP guest's termination request) reaches
``kvm_arch_handle_exit``.  Up to QEMU 10.0 that function has no case for it, so the VM
stops after "KVM: unknown exit reason 24"; QEMU 10.1 has a KVM_EXIT_SYSTEM_EVENT case
(added for TDX by "i386/tdx: Handle KVM_SYSTEM_EVENT_TDX_FATAL", commit 98dbfd6849f1,
posted 2025-05-08, after 10.0's April 2025 release) whose default returns -1 without a
message.  Either way ``kvm_cpu_exec`` then dumps the registers and the VM stops with
RUN_STATE_INTERNAL_ERROR.  Profile knob ``arch_system_event``.
"""

from __future__ import annotations

import errno

from snpsim.kvm.kvm_main import KvmPreFaultMemory, KvmRun
from snpsim.spec.kvm_uapi import (
    KVM_CAP_PRE_FAULT_MEMORY,
    KVM_CHECK_EXTENSION,
    KVM_EXIT_FAIL_ENTRY,
    KVM_EXIT_HYPERCALL,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_HC_MAP_GPA_RANGE,
    KVM_MAP_GPA_RANGE_ENCRYPTED,
    KVM_PRE_FAULT_MEMORY,
)
from snpsim.spec.units import u64
from snpsim.trace.record import traced

from .kvm_all import CPUState, kvm_convert_memory, kvm_vcpu_ioctl, kvm_vm_ioctl

__all__ = ["kvm_arch_handle_exit", "kvm_handle_hypercall", "kvm_handle_hc_map_gpa_range",
           "kvm_pre_fault_converted_range"]


@traced("vmm")
def kvm_handle_hc_map_gpa_range(cpu: CPUState, run: KvmRun) -> int:
    """``kvm_handle_hc_map_gpa_range(cpu, run)``: machine without guest_memfd -> -EINVAL;
    ``gpa = args[0]``, ``size = args[1] * 4096`` (bytes), ``to_private = args[2] & 0x10``
    (page-size bits ignored) -> ``kvm_convert_memory``.  Then, in QEMU >= 10.1 (profile
    knob ``pre_fault_after_conversion``) and only after a successful conversion,
    :func:`kvm_pre_fault_converted_range` over the same range; its outcome never changes
    the result.  Returns 0 or negative."""
    s = cpu.kvm_state
    if not s.require_guest_memfd:
        return -errno.EINVAL
    gpa = run.hypercall.args[0]
    size = u64(run.hypercall.args[1] * 4096)
    to_private = bool(run.hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED)
    ret = kvm_convert_memory(s, gpa, size, to_private)
    if ret or not s.profile.knob("pre_fault_after_conversion"):
        return ret
    kvm_pre_fault_converted_range(cpu, gpa, size)
    return 0


@traced("vmm")
def kvm_pre_fault_converted_range(cpu: CPUState, gpa: int, size: int) -> int:
    """The pre-fault step QEMU 10.1 added to ``kvm_handle_hc_map_gpa_range``
    (target/i386/kvm/kvm.c, "i386/kvm: Prefault memory on page state change", merged
    June 2025 for 10.1): when KVM reports KVM_CAP_PRE_FAULT_MEMORY (read once, as
    ``kvm_init`` does), issue KVM_PRE_FAULT_MEMORY on this vCPU for ``[gpa, gpa +
    size)`` (bytes) again and again while it returns 0 and leaves part of the range;
    the first error ends it silently (the guest's own fault will map the page).
    Returns the number of ioctls issued (model-only)."""
    s = cpu.kvm_state
    if s.pre_fault_memory_supported is None:
        s.pre_fault_memory_supported = kvm_vm_ioctl(s, KVM_CHECK_EXTENSION, KVM_CAP_PRE_FAULT_MEMORY) > 0
    if not s.pre_fault_memory_supported:
        return 0
    mem = KvmPreFaultMemory(gpa, size)
    n = 0
    while mem.size:
        n += 1
        if kvm_vcpu_ioctl(cpu, KVM_PRE_FAULT_MEMORY, mem):
            break
    return n


@traced("vmm")
def kvm_handle_hypercall(cpu: CPUState, run: KvmRun) -> int:
    """``kvm_handle_hypercall(run)``: nr 12 -> ``kvm_handle_hc_map_gpa_range``, else
    -EINVAL."""
    if run.hypercall.nr == KVM_HC_MAP_GPA_RANGE:
        return kvm_handle_hc_map_gpa_range(cpu, run)
    return -errno.EINVAL


@traced("vmm")
def kvm_arch_handle_exit(cpu: CPUState, run: KvmRun) -> int:
    """``kvm_arch_handle_exit(cs, run)`` (target/i386/kvm/kvm.c, the cases an SNP
    machine can reach):

    * KVM_EXIT_HYPERCALL -> ``kvm_handle_hypercall`` (with the ``write_hypercall_ret``
      knob: store the result in ``run->hypercall.ret`` and continue);
    * KVM_EXIT_FAIL_ENTRY -> "KVM: entry failed, hardware error 0x%" PRIx64 (the VMX
      invalid-guest-state hint is Intel-only), -1;
    * KVM_EXIT_SYSTEM_EVENT (types ``kvm_cpu_exec`` left to it): with the
      ``arch_system_event`` knob (QEMU 10.1) -> -1 and no message (TDX_FATAL is not
      modelled); without it (QEMU <= 10.0) the default below;
    * any other reason -> "KVM: unknown exit reason %d", -1.

    Returns 0 (re-enter), EXCP_* or -1."""
    s = cpu.kvm_state
    reason = run.exit_reason
    if reason == KVM_EXIT_HYPERCALL:
        ret = kvm_handle_hypercall(cpu, run)
        if s.profile.knob("write_hypercall_ret"):
            run.hypercall.ret = u64(ret)
            return 0
        return ret
    if reason == KVM_EXIT_FAIL_ENTRY:
        s.error_report("KVM: entry failed, hardware error "
                       f"0x{run.fail_entry.hardware_entry_failure_reason:x}")
        return -1
    if reason == KVM_EXIT_SYSTEM_EVENT and s.profile.knob("arch_system_event"):
        return -1
    s.error_report(f"KVM: unknown exit reason {reason}")
    return -1
