# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""x86 exit handling of QEMU's KVM accelerator: ``kvm_arch_handle_exit``,
``kvm_handle_hypercall``, ``kvm_handle_hc_map_gpa_range``.

Mirrors QEMU ``target/i386/kvm/kvm.c`` (9.1-10.1 era, merged patch postings;
kvm-qemu-host.md 8.3).  ``kvm_arch_handle_exit`` has no case for
KVM_EXIT_SYSTEM_EVENT, so an SNP guest's termination request (SEV_TERM) ends in
"KVM: unknown exit reason 24" and ``vm_stop(RUN_STATE_INTERNAL_ERROR)``, as in QEMU.
"""

from __future__ import annotations

import errno

from snpsim.kvm.kvm_main import KvmRun
from snpsim.spec.kvm_uapi import (
    KVM_EXIT_HYPERCALL,
    KVM_HC_MAP_GPA_RANGE,
    KVM_MAP_GPA_RANGE_ENCRYPTED,
)
from snpsim.spec.units import u64
from snpsim.trace.record import traced

from .kvm_all import CPUState, kvm_convert_memory

__all__ = ["kvm_arch_handle_exit", "kvm_handle_hypercall", "kvm_handle_hc_map_gpa_range"]


@traced("vmm")
def kvm_handle_hc_map_gpa_range(cpu: CPUState, run: KvmRun) -> int:
    """``kvm_handle_hc_map_gpa_range(cpu, run)``: machine without guest_memfd -> -EINVAL;
    ``gpa = args[0]``, ``size = args[1] * 4096`` (bytes), ``to_private = args[2] & 0x10``
    (page-size bits ignored) -> ``kvm_convert_memory``.  KVM_PRE_FAULT_MEMORY afterwards is
    skipped (KVM reports no KVM_CAP_PRE_FAULT_MEMORY).  Returns 0 or negative."""
    s = cpu.kvm_state
    if not s.require_guest_memfd:
        return -errno.EINVAL
    gpa = run.hypercall.args[0]
    size = u64(run.hypercall.args[1] * 4096)
    to_private = bool(run.hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED)
    return kvm_convert_memory(s, gpa, size, to_private)


@traced("vmm")
def kvm_handle_hypercall(cpu: CPUState, run: KvmRun) -> int:
    """``kvm_handle_hypercall(run)``: nr 12 -> ``kvm_handle_hc_map_gpa_range``, else
    -EINVAL."""
    if run.hypercall.nr == KVM_HC_MAP_GPA_RANGE:
        return kvm_handle_hc_map_gpa_range(cpu, run)
    return -errno.EINVAL


@traced("vmm")
def kvm_arch_handle_exit(cpu: CPUState, run: KvmRun) -> int:
    """``kvm_arch_handle_exit(cs, run)``: KVM_EXIT_HYPERCALL -> ``kvm_handle_hypercall``
    (with the ``write_hypercall_ret`` knob: store the result in ``run->hypercall.ret`` and
    continue); any other reason -> "KVM: unknown exit reason N", -1."""
    s = cpu.kvm_state
    if run.exit_reason == KVM_EXIT_HYPERCALL:
        ret = kvm_handle_hypercall(cpu, run)
        if s.profile.knob("write_hypercall_ret"):
            run.hypercall.ret = u64(ret)
            return 0
        return ret
    s.error_report(f"KVM: unknown exit reason {run.exit_reason}")
    return -1
