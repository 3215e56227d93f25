"""Hypervisor and VMM misbehaviour as named variants of the KVM and VMM models.

A :class:`Variant` is a pair of profiles -- a KVM profile and a QEMU profile, each the
default one with the historical behaviour's knobs and override functions merged on top
(py-evm style, :meth:`snpsim.spec.variant.VariantProfile.derive`) -- with the bug report
it reproduces (``shared/reference/bug-reports.md``) and a one-line description.  The
fixed behaviour is always the default; a variant only brings the old one back.

``VARIANTS`` maps a name to its variant (the CLI lists them as ``bug/<name>``)::

    from snpsim.adversary import VARIANTS
    v = VARIANTS["R6"]
    kvm = Kvm(platform.host, v.kvm)                 # snpsim.kvm.kvm_main.Kvm
    m = Machine(kvm, ram_size, vcpus, profile=v.qemu)   # snpsim.vmm.machine.Machine

Variants: R2, R3, R6 (KVM), R12, R13, R15 (VMM), and R4/R5 (the KVM v6.17 scratch
handling; no new code).  R1 and R14 have tests against the default stack only; R7
needs firmware commands the platform does not model (SNP_GUEST_REQUEST,
SNP_PAGE_RECLAIM).
"""

from __future__ import annotations

from dataclasses import dataclass

from snpsim.kvm.profiles import DEFAULT_PROFILE, KVM_PROFILES, KvmProfile
from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE, QemuProfile

from .kvm_bugs import R2_OVERRIDES, R3_OVERRIDES, R6_KNOBS
from .vmm_bugs import R12_OVERRIDES, R13_OVERRIDES, R15_KNOBS

__all__ = ["Variant", "VARIANTS", "get_variant"]


@dataclass(frozen=True)
class Variant:
    """A named historical behaviour: ``name`` (the registry key), ``report`` (its id in
    bug-reports.md), ``description`` (one line: what goes wrong), ``kvm`` and ``qemu``
    (the profiles to run with), ``component`` ("kvm" or "vmm": the side that differs
    from the default)."""

    name: str
    report: str
    description: str
    kvm: KvmProfile
    qemu: QemuProfile
    component: str


def _kvm(name: str, report: str, description: str, *, base: KvmProfile = DEFAULT_PROFILE,
         knobs: dict | None = None, overrides: dict | None = None) -> Variant:
    prof = base.derive(f"bug/{name}", knobs=knobs, overrides=overrides)
    return Variant(name, report, description, prof, DEFAULT_QEMU_PROFILE, "kvm")


def _vmm(name: str, report: str, description: str, *, knobs: dict | None = None,
         overrides: dict | None = None) -> Variant:
    prof = DEFAULT_QEMU_PROFILE.derive(f"bug/{name}", knobs=knobs, overrides=overrides)
    return Variant(name, report, description, DEFAULT_PROFILE, prof, "vmm")


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    _kvm("R2", "R2", "KVM handles an RMP #NPF even after a KVM_EXIT_MEMORY_FAULT "
         "(return code < 0 misread): warnings and PSMASH before the userspace exit",
         overrides=R2_OVERRIDES),
    _kvm("R3", "R3", "KVM's fast page-fault path takes a private/shared mismatch fault "
         "as spurious: the guest spins in #NPF, no userspace exit", overrides=R3_OVERRIDES),
    _kvm("R4", "R4", "KVM v6.17 takes the PSC scratch length from SW_EXITINFO2: a "
         "valid buffer with exit_info_2 = 0xffffffff is refused", base=KVM_PROFILES["v6.17"]),
    _kvm("R5", "R5", "KVM v6.17 bounds PSC entries by 253, not by the scratch left in "
         "the GHCB: reads run past the shared buffer", base=KVM_PROFILES["v6.17"]),
    _kvm("R6", "R6", "KVM leaves -KVM_ENOSYS in hypercall.ret and the VMM never writes "
         "it: a successful conversion reaches the guest as PSC GENERIC error", knobs=R6_KNOBS),
    _vmm("R12", "R12", "the VMM treats a shared access to private RAM as an MMIO "
         "emulation failure and crashes", overrides=R12_OVERRIDES),
    _vmm("R13", "R13", "the VMM panics on the guest's termination request instead of "
         "reporting its reason", overrides=R13_OVERRIDES),
    _vmm("R15", "R15", "the VMM's RAM starts shared and it has no KVM_EXIT_MEMORY_FAULT "
         "handler: the first private access stops the VM", knobs=R15_KNOBS),
)}


def get_variant(name: str) -> Variant:
    """The variant called ``name`` (``"R6"`` or ``"bug/R6"``); KeyError if unknown."""
    return VARIANTS[name.removeprefix("bug/")]
