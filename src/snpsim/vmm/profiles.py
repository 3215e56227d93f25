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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["QemuProfile", "QEMU_PROFILES", "DEFAULT_QEMU_PROFILE"]


@dataclass(frozen=True)
class QemuProfile:
    """A QEMU version or variant: ``name``, ``knobs``, ``overrides`` (function name ->
    replacement with the same signature)."""

    name: str
    knobs: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def knob(self, name: str) -> Any:
        """The value of knob ``name``."""
        return self.knobs[name]

    def call(self, name: str, default: Callable[..., Any]) -> Callable[..., Any]:
        """The function in force for ``name``."""
        return self.overrides.get(name, default)

    def derive(self, name: str, *, knobs: Mapping[str, Any] | None = None,
               overrides: Mapping[str, Callable[..., Any]] | None = None) -> QemuProfile:
        """This profile with ``knobs``/``overrides`` merged on top."""
        return QemuProfile(name, {**self.knobs, **(knobs or {})},
                           {**self.overrides, **(overrides or {})})


QEMU_PROFILES: dict[str, QemuProfile] = {
    "10.1": QemuProfile("10.1", {"write_hypercall_ret": False, "handle_memory_fault": True,
                                 "ram_discard_notify": True}),
    "9.1": QemuProfile("9.1", {"write_hypercall_ret": False, "handle_memory_fault": True,
                               "ram_discard_notify": False}),
}

DEFAULT_QEMU_PROFILE = QEMU_PROFILES["10.1"]
