# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The kernel's MSR accessors and the exception-table fixup their #GP takes.

Mirrors ``arch/x86/include/asm/msr.h`` (``native_read_msr``, ``native_read_msr_safe``,
``native_write_msr``, ``native_write_msr_safe``: RDMSR/WRMSR with an exception-table
entry of type EX_TYPE_RDMSR / EX_TYPE_WRMSR, or the ``_SAFE`` types) and
``arch/x86/mm/extable.c`` (``ex_handler_msr``), v6.17.

A #GP on the instruction -- under SEV-ES/SNP the one the hypervisor asks for through
the GHCB, forwarded by the #VC handler -- is fixed up, never fatal: the plain forms
warn once ("unchecked MSR access error: RDMSR from 0x%x at rIP: ...", without the
address, which the model does not have) and go on, a read giving 0; the ``_safe``
forms return -EIO (a read's value 0).  Model: the instruction being executed is in
``kernel.pending_insn`` as ``("rdmsr"|"wrmsr", msr, safe)``, and the fixup records the
fault in ``kernel.msr_faulted``.
"""

from __future__ import annotations

import errno

from snpsim.trace.record import traced

from .kernel import GuestKernel, this_cpu

__all__ = [
    "native_read_msr",
    "native_read_msr_safe",
    "native_write_msr",
    "native_write_msr_safe",
    "ex_handler_msr",
    "NO_EXTABLE",
]

#: Model: third field of a ``pending_insn`` MSR entry for an RDMSR/WRMSR without an
#: exception-table entry (0 = EX_TYPE_RDMSR/WRMSR, 1 = the ``_SAFE`` types).
NO_EXTABLE = 2


def _rdmsr(kernel: GuestKernel, msr: int, safe: bool) -> tuple[int, bool]:
    cpu = this_cpu(kernel)
    kernel.pending_insn[cpu.vcpu_id] = ("rdmsr", msr, int(safe))
    kernel.msr_faulted.pop(cpu.vcpu_id, None)
    try:
        value = cpu.rdmsr(msr)
    finally:
        kernel.pending_insn.pop(cpu.vcpu_id, None)
    faulted = kernel.msr_faulted.pop(cpu.vcpu_id, False)
    return (0 if faulted else value), faulted


def _wrmsr(kernel: GuestKernel, msr: int, value: int, safe: bool) -> bool:
    cpu = this_cpu(kernel)
    kernel.pending_insn[cpu.vcpu_id] = ("wrmsr", msr, int(safe))
    kernel.msr_faulted.pop(cpu.vcpu_id, None)
    try:
        cpu.wrmsr(msr, value)
    finally:
        kernel.pending_insn.pop(cpu.vcpu_id, None)
    return kernel.msr_faulted.pop(cpu.vcpu_id, False)


@traced("guest")
def native_read_msr(kernel: GuestKernel, msr: int) -> int:
    """``native_read_msr(msr)``: RDMSR; a #GP warns once and reads 0.  Returns the u64."""
    return _rdmsr(kernel, msr, False)[0]


@traced("guest")
def native_read_msr_safe(kernel: GuestKernel, msr: int) -> tuple[int, int]:
    """``native_read_msr_safe(msr, &err)``: RDMSR; returns (value, 0), or (0, -EIO)
    after a #GP."""
    value, faulted = _rdmsr(kernel, msr, True)
    return value, (-errno.EIO if faulted else 0)


@traced("guest")
def native_write_msr(kernel: GuestKernel, msr: int, value: int) -> None:
    """``native_write_msr(msr, low, high)``: WRMSR; a #GP warns once and is ignored."""
    _wrmsr(kernel, msr, value, False)


@traced("guest")
def native_write_msr_safe(kernel: GuestKernel, msr: int, value: int) -> int:
    """``native_write_msr_safe(msr, low, high)``: WRMSR; returns 0, or -EIO after a #GP."""
    return -errno.EIO if _wrmsr(kernel, msr, value, True) else 0


@traced("guest")
def ex_handler_msr(kernel: GuestKernel, regs: dict[str, int]) -> bool:
    """``fixup_exception`` -> ``ex_handler_msr`` (arch/x86/mm/extable.c): the #GP hit an
    MSR instruction with an exception-table entry (``kernel.pending_insn`` of this CPU)?
    Then: the unsafe forms ``pr_warn_once`` "unchecked MSR access error: RDMSR from
    0x%x" / "WRMSR to 0x%x (tried to write 0x%016llx)"; a read's EDX:EAX become 0; the
    fault is recorded for the ``_safe`` forms' -EIO.  Returns True (fixed up) or False
    (no entry: the #GP is fatal)."""
    cpu = this_cpu(kernel)
    insn = kernel.pending_insn.get(cpu.vcpu_id)
    if insn is None or insn[0] not in ("rdmsr", "wrmsr"):
        return False
    kind, msr, safe = insn
    if safe == NO_EXTABLE:
        return False
    if not safe:
        if kind == "rdmsr":
            line = f"unchecked MSR access error: RDMSR from {msr:#x}"
        else:
            value = ((regs.get("rdx", 0) & 0xFFFFFFFF) << 32) | (regs.get("rax", 0) & 0xFFFFFFFF)
            line = f"unchecked MSR access error: WRMSR to {msr:#x} (tried to write {value:#018x})"
        if line not in kernel.warnings:
            kernel.warn(line)
    if kind == "rdmsr":
        regs.update(rax=0, rdx=0)
    kernel.msr_faulted[cpu.vcpu_id] = True
    return True
