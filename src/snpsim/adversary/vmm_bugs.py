# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Historical VMM behaviour from public bug reports (other VMMs than QEMU included), as
override functions and knob sets merged onto a QEMU profile
(:meth:`snpsim.vmm.profiles.QemuProfile.derive`).

Each function has the signature of the override point it replaces (``kvm_arch_handle_exit``
or ``kvm_handle_memory_fault``: ``(cpu, run) -> int``) and names its report in
``shared/reference/bug-reports.md``.
"""

from __future__ import annotations

from typing import Any

from snpsim.kvm.kvm_main import KvmRun
from snpsim.spec.kvm_uapi import (
    KVM_EXIT_SYSTEM_EVENT,
    KVM_MEMORY_EXIT_FLAG_PRIVATE,
    KVM_SYSTEM_EVENT_SEV_TERM,
)
from snpsim.vmm.i386_kvm import kvm_arch_handle_exit
from snpsim.vmm.kvm_all import CPUState, QemuExit, kvm_handle_memory_fault, memory_region_find

__all__ = [
    "RUST_PANIC_EXIT_STATUS",
    "handle_memory_fault_r12",
    "arch_handle_exit_r13",
    "R12_OVERRIDES",
    "R13_OVERRIDES",
    "R15_KNOBS",
    "kvm_handle_memory_fault_ignored",
    "IGNORE_MEMORY_FAULT_OVERRIDES",
]

#: Exit status of a Rust program that panics (Cloud Hypervisor, libkrun, OpenVMM).
RUST_PANIC_EXIT_STATUS = 101


def handle_memory_fault_r12(cpu: CPUState, run: KvmRun) -> int:
    """Bug report R12 (microsoft/openvmm#1340 / #1764, 2025): a guest access to RAM through
    the opposite visibility (here the shared alias of a private page: a memory fault
    without KVM_MEMORY_EXIT_FLAG_PRIVATE on a guest_memfd region) was treated as an MMIO
    emulation failure and the paravisor crashed.  Logs the report's line and exits with a
    panic (:class:`QemuExit`, status 101).  Other faults are handled as QEMU does."""
    s = cpu.kvm_state
    mf = run.memory_fault
    mr, _off = memory_region_find(s, mf.gpa, mf.size)
    if not mf.flags & KVM_MEMORY_EXIT_FLAG_PRIVATE and mr is not None and mr.has_guest_memfd():
        s.error_report(f"guest accessed inaccessible gpa, emulation failed gpa={mf.gpa:#x} "
                       f"is_shared=false")
        raise QemuExit(RUST_PANIC_EXIT_STATUS, f"emulation failure at gpa {mf.gpa:#x}")
    return kvm_handle_memory_fault(cpu, run)


def arch_handle_exit_r13(cpu: CPUState, run: KvmRun) -> int:
    """Bug report R13 (cloud-hypervisor#7934, 2026-03): the VMM had no handler for the
    guest's termination request and panicked instead of reporting the reason.  A
    KVM_EXIT_SYSTEM_EVENT of type SEV_TERM ends the VMM with a panic (status 101); other
    exits go to QEMU's ``kvm_arch_handle_exit``."""
    if run.exit_reason == KVM_EXIT_SYSTEM_EVENT and run.system_event.type == KVM_SYSTEM_EVENT_SEV_TERM:
        raise QemuExit(RUST_PANIC_EXIT_STATUS,
                       f"panicked: unhandled VMGEXIT termination request "
                       f"{run.system_event.data[0]:#x}")
    return kvm_arch_handle_exit(cpu, run)


R12_OVERRIDES: dict[str, Any] = {"kvm_handle_memory_fault": handle_memory_fault_r12}
R13_OVERRIDES: dict[str, Any] = {"kvm_arch_handle_exit": arch_handle_exit_r13}

#: Bug report R15 (libkrun#243 / #296): the VMM's RAM starts shared and its vCPU loop has
#: no KVM_EXIT_MEMORY_FAULT handler ("Unexpected exit reason on vcpu run: MemoryFault").
R15_KNOBS: dict[str, Any] = {"gmem_private_at_start": False, "handle_memory_fault": False}


def kvm_handle_memory_fault_ignored(cpu: CPUState, run: KvmRun) -> int:
    """A VMM that answers KVM_EXIT_MEMORY_FAULT with nothing: no conversion, 0 (carry on),
    so KVM_RUN re-enters the guest, which faults again at the same GPA.  Issue 12's
    example of a VMM loop the real system spins in forever; the model ends it as a
    livelock in ``kvm_cpu_exec``."""
    return 0


#: The override that makes a QEMU profile ignore memory faults (see above).
IGNORE_MEMORY_FAULT_OVERRIDES: dict[str, Any] = {"kvm_handle_memory_fault": kvm_handle_memory_fault_ignored}
