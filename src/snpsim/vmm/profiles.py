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
"""

from __future__ import annotations

from dataclasses import dataclass

from snpsim.spec.variant import VariantProfile

__all__ = ["QemuProfile", "QEMU_PROFILES", "DEFAULT_QEMU_PROFILE"]


@dataclass(frozen=True)
class QemuProfile(VariantProfile):
    """A QEMU version or variant (see :class:`snpsim.spec.variant.VariantProfile`);
    knobs in the module docstring."""



QEMU_PROFILES: dict[str, QemuProfile] = {
    "10.1": QemuProfile("10.1", {"write_hypercall_ret": False, "handle_memory_fault": True,
                                 "ram_discard_notify": True}),
    "9.1": QemuProfile("9.1", {"write_hypercall_ret": False, "handle_memory_fault": True,
                               "ram_discard_notify": False}),
}

DEFAULT_QEMU_PROFILE = QEMU_PROFILES["10.1"]
