# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Historical VMM behaviour from public bug reports (other VMMs than QEMU included), as
hooks on QEMU functions by their real names (:meth:`snpsim.api.Scenario.hook`) and
knob sets of a QEMU profile.

Each hook wraps the QEMU function it names (``kvm_handle_memory_fault`` or
``kvm_arch_handle_exit``: ``(cpu, run) -> int``) and names its report in
``docs/bug-reports.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snpsim.api import function, vmm_exit
from snpsim.spec.kvm_uapi import (
    KVM_EXIT_SYSTEM_EVENT,
    KVM_MEMORY_EXIT_FLAG_PRIVATE,
    KVM_SYSTEM_EVENT_SEV_TERM,
)

__all__ = [
    "RUST_PANIC_EXIT_STATUS",
    "handle_memory_fault_r12",
    "arch_handle_exit_r13",
    "R12_HOOKS",
    "R13_HOOKS",
    "R15_KNOBS",
    "kvm_handle_memory_fault_ignored",
    "IGNORE_MEMORY_FAULT_OVERRIDES",
]

#: Exit status of a Rust program that panics (Cloud Hypervisor, libkrun, OpenVMM).
RUST_PANIC_EXIT_STATUS = 101


def handle_memory_fault_r12(original: Callable[..., int], cpu: Any, run: Any) -> int:
    """Hook on ``kvm_handle_memory_fault``, bug report R12 (microsoft/openvmm#1340 /
    #1764, 2025): a guest access to RAM through the opposite visibility (here the shared
    alias of a private page: a memory fault without KVM_MEMORY_EXIT_FLAG_PRIVATE on a
    guest_memfd region) was treated as an MMIO emulation failure and the paravisor
    crashed.  Logs the report's line and ends the VMM with a panic (status 101,
    :func:`snpsim.api.vmm_exit`).  Other faults go to QEMU's handler; returns its
    result."""
    s = cpu.kvm_state
    mf = run.memory_fault
    mr, _off = function("memory_region_find")(s, mf.gpa, mf.size)
    if not mf.flags & KVM_MEMORY_EXIT_FLAG_PRIVATE and mr is not None and mr.has_guest_memfd():
        s.error_report(f"guest accessed inaccessible gpa, emulation failed gpa={mf.gpa:#x} "
                       f"is_shared=false")
        vmm_exit(RUST_PANIC_EXIT_STATUS, f"emulation failure at gpa {mf.gpa:#x}")
    return int(original(cpu, run))


def arch_handle_exit_r13(original: Callable[..., int], cpu: Any, run: Any) -> int:
    """Hook on ``kvm_arch_handle_exit``, bug report R13 (cloud-hypervisor#7934, 2026-03):
    the VMM had no handler for the guest's termination request and panicked instead of
    reporting the reason.  A KVM_EXIT_SYSTEM_EVENT of type SEV_TERM ends the VMM with a
    panic (status 101); other exits go to QEMU's handler, whose result it returns."""
    if run.exit_reason == KVM_EXIT_SYSTEM_EVENT and run.system_event.type == KVM_SYSTEM_EVENT_SEV_TERM:
        vmm_exit(RUST_PANIC_EXIT_STATUS,
                 f"panicked: unhandled VMGEXIT termination request {run.system_event.data[0]:#x}")
    return int(original(cpu, run))


R12_HOOKS: dict[str, Callable[..., Any]] = {"kvm_handle_memory_fault": handle_memory_fault_r12}
R13_HOOKS: dict[str, Callable[..., Any]] = {"kvm_arch_handle_exit": arch_handle_exit_r13}

#: Bug report R15 (libkrun#243 / #296): the VMM's RAM starts shared and its vCPU loop has
#: no KVM_EXIT_MEMORY_FAULT handler ("Unexpected exit reason on vcpu run: MemoryFault").
R15_KNOBS: dict[str, Any] = {"gmem_private_at_start": False, "handle_memory_fault": False}


def kvm_handle_memory_fault_ignored(cpu: Any, run: Any) -> int:
    """A VMM that answers KVM_EXIT_MEMORY_FAULT with nothing: no conversion, 0 (carry on),
    so KVM_RUN re-enters the guest, which faults again at the same GPA.  Issue 12's
    example of a VMM loop the real system spins in forever; the model ends it as a
    livelock in ``kvm_cpu_exec``."""
    return 0


#: The override that makes a QEMU profile ignore memory faults (see above).
IGNORE_MEMORY_FAULT_OVERRIDES: dict[str, Any] = {"kvm_handle_memory_fault": kvm_handle_memory_fault_ignored}
