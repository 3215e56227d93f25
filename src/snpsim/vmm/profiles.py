# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""QEMU version profiles and named variants (override tables, as :mod:`snpsim.kvm.profiles`).

Knobs:

* ``write_hypercall_ret`` (default False): after ``kvm_handle_hypercall``, write its
  result into ``run->hypercall.ret`` and continue (the Dec-2024 patch "i386/kvm: Set
  return value after handling KVM_EXIT_HYPERCALL", bug report R6).  Mainline QEMU is
  believed never to write it (kvm-qemu-host.md 8.3, [unconfirmed]): a failed conversion
  then stops the VM.
* ``handle_memory_fault`` (default True): ``kvm_cpu_exec`` handles KVM_EXIT_MEMORY_FAULT
  (QEMU >= 9.0).  False models a VMM without the handler (R15): "unexpected exit".
* ``ram_discard_notify`` (default True): QEMU >= 10.1 notifies RamDiscardListeners
  between the attribute change and the discard (no listener is modelled).
* ``gmem_private_at_start`` (default True): ``kvm_set_phys_mem`` sets every guest_memfd
  memslot private when it is added (QEMU, kvm-qemu-host.md 8.1).  False models a VMM
  whose RAM starts shared and becomes private by implicit conversion (libkrun, R15).

* ``pre_fault_after_conversion`` (10.1: True; 9.1: False): after a successful
  ``kvm_convert_memory`` from KVM_HC_MAP_GPA_RANGE, KVM_PRE_FAULT_MEMORY over the
  converted range when KVM has KVM_CAP_PRE_FAULT_MEMORY (target/i386/kvm/kvm.c
  ``kvm_handle_hc_map_gpa_range``, "i386/kvm: Prefault memory on page state change",
  pulled 2025-06-06 for 10.1; not done for KVM_EXIT_MEMORY_FAULT conversions).

* ``arch_system_event`` (10.1: True; 10.0 and 9.1: False): ``kvm_arch_handle_exit``
  has a KVM_EXIT_SYSTEM_EVENT case whose default returns -1 silently, so an SEV-ES/SNP
  guest's termination (SEV_TERM) stops the VM with no message; before 10.1 it reaches
  the "KVM: unknown exit reason 24" default (target/i386/kvm/kvm.c; the case came with
  "i386/tdx: Handle KVM_SYSTEM_EVENT_TDX_FATAL", commit 98dbfd6849f1, May 2025).

Override points (function name -> replacement with the same signature):
``kvm_arch_handle_exit`` (``(cpu, run) -> int``) and ``kvm_handle_memory_fault``
(``(cpu, run) -> int``, the KVM_EXIT_MEMORY_FAULT case of ``kvm_cpu_exec``).
"""

from __future__ import annotations

from dataclasses import dataclass

from snpsim.spec.variant import VariantProfile

__all__ = ["QemuProfile", "QEMU_PROFILES", "DEFAULT_QEMU_PROFILE", "get_qemu_profile"]


@dataclass(frozen=True)
class QemuProfile(VariantProfile):
    """A QEMU version or variant (see :class:`snpsim.spec.variant.VariantProfile`);
    knobs in the module docstring."""



_KNOBS_9_1 = {"write_hypercall_ret": False, "handle_memory_fault": True,
              "ram_discard_notify": False, "gmem_private_at_start": True,
              "pre_fault_after_conversion": False, "arch_system_event": False}

QEMU_PROFILES: dict[str, QemuProfile] = {
    "10.1": QemuProfile("10.1", {**_KNOBS_9_1, "ram_discard_notify": True,
                                 "pre_fault_after_conversion": True,
                                 "arch_system_event": True}),
    # 10.0 (April 2025): none of the 10.1 changes above; as 9.1 for what is modelled.
    "10.0": QemuProfile("10.0", dict(_KNOBS_9_1)),
    "9.1": QemuProfile("9.1", dict(_KNOBS_9_1)),
}

DEFAULT_QEMU_PROFILE = QEMU_PROFILES["10.1"]


def get_qemu_profile(name: str) -> QemuProfile:
    """The QEMU profile called ``name`` (KeyError if unknown)."""
    return QEMU_PROFILES[name]
