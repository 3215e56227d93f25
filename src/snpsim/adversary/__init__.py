# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Hypervisor and VMM misbehaviour as named variants, on the public scenario API.

A :class:`Variant` is the historical behaviour of one bug report
(``docs/bug-reports.md``) or one malicious hypervisor, written as hooks on
modelled functions by their real names (``hooks``: name -> ``hook(original, *args)``,
:meth:`snpsim.api.Scenario.hook`) plus knobs of the KVM and QEMU profiles
(``kvm_knobs``, ``qemu_knobs``) and, for R4/R5, the KVM profile it runs on
(``kvm_base``: "v6.17").  The fixed behaviour is always the default; a variant only
brings the old one back.  This package imports only :mod:`snpsim.api`,
:mod:`snpsim.spec` and :mod:`snpsim.trace` (an import-linter contract).

``VARIANTS`` maps a name to its variant (the CLI lists them as ``bug/<name>``)::

    from snpsim.adversary import VARIANTS
    from snpsim.api import Scenario

    sc = Scenario("R6 by hand", memory="64M")
    VARIANTS["R6"].apply(sc)          # the profile knobs and hooks of report R6
    res = sc.run()

Code that builds the model itself (a fake guest on ``Kvm`` and ``Machine``, an
``SnpSystem``) runs with the knob-only profiles :attr:`Variant.kvm` /
:attr:`Variant.qemu` and puts the hooks in force for a block::

    v = VARIANTS["R2"]
    with v.installed():
        kvm = Kvm(platform.host, v.kvm)

Variants: R1, R2, R3, R7 (KVM hooks), R6 (KVM knobs), R4/R5 (the KVM v6.17 scratch
handling: the base profile, no hooks), R12, R13 (VMM hooks), R15 (VMM knobs).  R14 has
tests against the default stack only.

``ATTACKS`` maps a name to a malicious-hypervisor variant (``kind == "attack"``,
:mod:`snpsim.adversary.attacks`): a misanswer the Linux guest checks, or an RMP-level
attack the hardware stops; ``check`` names the check that stops it.  One lookup for
both registries: :func:`get_variant` (``"R6"``, ``"bug/R6"``, ``"psc-reserved-set"``,
``"attack/psc-reserved-set"``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from snpsim.api import Scenario, hooked, kvm_profile, qemu_profile

from .attacks import ATTACK_HOOKS
from .kvm_bugs import R1_HOOKS, R2_HOOKS, R3_HOOKS, R6_KNOBS, R7_HOOKS
from .vmm_bugs import R12_HOOKS, R13_HOOKS, R15_KNOBS

__all__ = ["Variant", "VARIANTS", "ATTACKS", "get_variant", "all_variants"]


@dataclass(frozen=True, eq=False)
class Variant:
    """A named historical or malicious behaviour.

    ``name`` (the registry key), ``report`` (its id in bug-reports.md; "" for an
    attack), ``description`` (one line: what goes wrong), ``component`` ("kvm" or
    "vmm": the side that differs from the default); ``kind`` ("bug": a historical
    behaviour from bug-reports.md; "attack": a malicious hypervisor); ``check``
    (attacks: the guest or RMP check that stops it, with its reference section);
    ``hooks`` (real function name -> ``hook(original, *args, **kwargs)``);
    ``kvm_knobs`` / ``qemu_knobs`` (profile knobs, :mod:`snpsim.kvm.profiles`,
    :mod:`snpsim.vmm.profiles`); ``kvm_base`` (the KVM profile name to run on; None:
    whatever the scenario chose, by default the default profile)."""

    name: str
    report: str
    description: str
    component: str
    kind: str = "bug"
    check: str = ""
    hooks: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    kvm_knobs: Mapping[str, Any] = field(default_factory=dict)
    qemu_knobs: Mapping[str, Any] = field(default_factory=dict)
    kvm_base: str | None = None

    @functools.cached_property
    def kvm(self) -> Any:
        """The knob-only KVM profile of the variant (``kvm_base`` or the default, with
        ``kvm_knobs``), called ``<kind>/<name>`` when KVM is the side that differs; the
        hooks are not in it (:meth:`installed`, :meth:`apply`)."""
        if self.component != "kvm":
            return kvm_profile(self.kvm_base, knobs=self.kvm_knobs)
        return kvm_profile(self.kvm_base, name=f"{self.kind}/{self.name}", knobs=self.kvm_knobs)

    @functools.cached_property
    def qemu(self) -> Any:
        """The knob-only QEMU profile of the variant (the default with ``qemu_knobs``),
        called ``<kind>/<name>`` when the VMM is the side that differs."""
        if self.component != "vmm":
            return qemu_profile(knobs=self.qemu_knobs)
        return qemu_profile(name=f"{self.kind}/{self.name}", knobs=self.qemu_knobs)

    def apply(self, scenario: Scenario) -> Scenario:
        """Install the variant on ``scenario`` (a :class:`snpsim.api.Scenario` not yet
        run): its KVM base profile (if it has one), its knobs on top of the scenario's,
        and its hooks (after the scenario's own: outermost).  Returns ``scenario``.
        Raises :class:`snpsim.api.ScenarioError` if a hooked name is unknown."""
        if self.kvm_base is not None:
            scenario.kvm = self.kvm_base
        scenario.kvm_knobs.update(self.kvm_knobs)
        scenario.qemu_knobs.update(self.qemu_knobs)
        for name, hook in self.hooks.items():
            scenario.hook(name, hook)
        return scenario

    def installed(self) -> AbstractContextManager[None]:
        """A context manager: the variant's hooks in force for the ``with`` block
        (:func:`snpsim.api.hooked`), for code that builds the model itself with
        :attr:`kvm` and :attr:`qemu`."""
        return hooked(self.hooks)


def _kvm(name: str, report: str, description: str, *, base: str | None = None,
         knobs: dict | None = None, hooks: dict | None = None) -> Variant:
    return Variant(name, report, description, "kvm", hooks=dict(hooks or {}),
                   kvm_knobs=dict(knobs or {}), kvm_base=base)


def _vmm(name: str, report: str, description: str, *, knobs: dict | None = None,
         hooks: dict | None = None) -> Variant:
    return Variant(name, report, description, "vmm", hooks=dict(hooks or {}),
                   qemu_knobs=dict(knobs or {}))


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    _kvm("R1", "R1", "KVM's snp_begin_psc before the SMASH/UNSMASH and partial-update fix: "
         "a trailing PSMASH hint converted to shared, a done entry merged and converted "
         "again, cur_page 1 for a partly done 2M entry", hooks=R1_HOOKS),
    _kvm("R2", "R2", "KVM handles an RMP #NPF even after a KVM_EXIT_MEMORY_FAULT "
         "(return code < 0 misread): warnings and PSMASH before the userspace exit",
         hooks=R2_HOOKS),
    _kvm("R3", "R3", "KVM's fast page-fault path takes a private/shared mismatch fault "
         "as spurious: the guest spins in #NPF, no userspace exit (a livelock in "
         "kvm_mmu_page_fault)", hooks=R3_HOOKS),
    _kvm("R4", "R4", "KVM v6.17 takes the PSC scratch length from SW_EXITINFO2: a "
         "valid buffer with exit_info_2 = 0xffffffff is refused", base="v6.17"),
    _kvm("R5", "R5", "KVM v6.17 bounds PSC entries by 253, not by the scratch left in "
         "the GHCB: reads run past the shared buffer", base="v6.17"),
    _kvm("R6", "R6", "KVM leaves -KVM_ENOSYS in hypercall.ret and the VMM never writes "
         "it: a successful conversion reaches the guest as PSC GENERIC error", knobs=R6_KNOBS),
    _kvm("R7", "R7", "KVM's __snp_handle_guest_req returns on a firmware error before "
         "reclaiming the response page: it stays firmware-owned and the next guest "
         "request's host write to it takes an RMP #PF (host oops, VM stopped)",
         hooks=R7_HOOKS),
    _vmm("R12", "R12", "the VMM treats a shared access to private RAM as an MMIO "
         "emulation failure and crashes", hooks=R12_HOOKS),
    _vmm("R13", "R13", "the VMM panics on the guest's termination request instead of "
         "reporting its reason", hooks=R13_HOOKS),
    _vmm("R15", "R15", "the VMM's RAM starts shared and it has no KVM_EXIT_MEMORY_FAULT "
         "handler: the first private access stops the VM", knobs=R15_KNOBS),
)}


def _attack(name: str, description: str, check: str) -> Variant:
    return Variant(name, "", description, "kvm", "attack", check, hooks=ATTACK_HOOKS[name])


_L52 = "linux-guest.md 5.2"
_L6 = "linux-guest.md 6"
_L71 = "linux-guest.md 7.1"
_RMP = "hardware-and-ghcb.md 1.4"

ATTACKS: dict[str, Variant] = {v.name: v for v in (
    _attack("psc-info2-error", "PSC done but answered with VMGEXIT_PSC_ERROR_GENERIC in "
            "sw_exit_info_2: stopped by vmgexit_psc's exit_info_2 check, terminate (1, 1)",
            f"vmgexit_psc: sw_exit_info_2 != 0 ({_L52})"),
    _attack("psc-malformed-input", "PSC answered sw_exit_info_1 = 2 (malformed input): stopped "
            "by verify_exception_info (ES_VMM_ERROR) in sev_es_ghcb_hv_call, terminate (1, 1)",
            f"verify_exception_info: info1 low 32 bits = 2 -> ES_VMM_ERROR ({_L6})"),
    _attack("psc-vmm-error-no-info2", "PSC done but answered sw_exit_info_1 = 2 with "
            "sw_exit_info_2 = 0: verify_exception_info makes it ES_VMM_ERROR, and only "
            "vmgexit_psc's result check stops it, terminate (1, 1)",
            f"vmgexit_psc: sev_es_ghcb_hv_call result != ES_OK ({_L52}, {_L6})"),
    _attack("psc-inject-pf", "PSC answered sw_exit_info_1 = 1 with a #PF to inject: stopped by "
            "verify_exception_info (only #GP/#UD accepted: ES_VMM_ERROR), terminate (1, 1)",
            f"verify_exception_info: exception not #GP/#UD -> ES_VMM_ERROR ({_L6})"),
    _attack("psc-inject-gp", "PSC answered sw_exit_info_1 = 1 with a #GP to inject: "
            "verify_exception_info accepts it (ES_EXCEPTION), vmgexit_psc fails the PSC "
            "anyway, terminate (1, 1)",
            f"vmgexit_psc: sev_es_ghcb_hv_call result != ES_OK ({_L52}, {_L6})"),
    _attack("vc-msr-inject-pf", "the answer to a #VC-emulated RDMSR asks for a #PF: "
            "stopped by verify_exception_info (only #GP/#UD accepted: ES_VMM_ERROR), the #VC "
            "handler terminates (0, 0)",
            f"verify_exception_info: exception not #GP/#UD -> ES_VMM_ERROR ({_L6})"),
    _attack("psc-reserved-set", "PSC answered with the header's reserved field set: stopped "
            "by vmgexit_psc's reserved check, terminate (1, 1)",
            f"vmgexit_psc: hdr.reserved != 0 ({_L52})"),
    _attack("psc-end-entry-grown", "PSC answered with end_entry grown by one: stopped by "
            "vmgexit_psc's going-backward check, terminate (1, 1)",
            f"vmgexit_psc: end_entry > initial end_entry ({_L52})"),
    _attack("psc-end-entry-grown-once", "the first PSC answer has end_entry grown by one "
            "(later answers honest): stopped only by vmgexit_psc's going-backward check, "
            "terminate (1, 1)",
            f"vmgexit_psc: end_entry > initial end_entry ({_L52})"),
    _attack("psc-cur-entry-backwards", "PSC done but cur_entry put back to 0: passes Linux's "
            "check (it compares with the initial 0), the guest re-issues forever: ends as a "
            "livelock in vmgexit_psc",
            f"none in Linux: vmgexit_psc compares cur_entry with its initial value ({_L52}); "
            "model-only livelock watcher (loop vmgexit_psc)"),
    _attack("psc-never-advance", "PSC answered success without converting or advancing "
            "cur_entry: Linux has no forward-progress check, the guest spins: ends as a "
            "livelock in vmgexit_psc",
            f"none in Linux: no forward-progress check ({_L52}); model-only livelock watcher "
            "(loop vmgexit_psc)"),
    _attack("msr-psc-error", "MSR-protocol PSC done but answered with error 1 in bits 63:32: "
            "stopped by __page_state_change, terminate (1, 1)",
            f"__page_state_change: GHCB_MSR_PSC_RESP_VAL != 0 ({_L71})"),
    _attack("msr-psc-wrong-response", "MSR-protocol PSC answered with the request left in "
            "the MSR (code 0x014, not 0x015): stopped by __page_state_change, terminate (1, 1)",
            f"__page_state_change: response code != 0x015 ({_L71})"),
    _attack("msr-register-other-gfn", "GHCB GPA registration answered with the next GFN: "
            "stopped by snp_register_ghcb_early, terminate (1, 0) GHCB_TERM_REGISTER",
            "snp_register_ghcb_early: response GFN != requested GFN (linux-guest.md 5.1)"),
    _attack("msr-sev-info-max-0", "SEV_INFO answered with max protocol version 0: stopped by "
            "sev_es_negotiate_protocol in the decompressor's sev_enable, terminate (0, 1)",
            "sev_es_negotiate_protocol: max < GHCB_PROTOCOL_MIN (linux-guest.md 6, 8.2)"),
    _attack("msr-sev-info-min-3", "SEV_INFO answered with min protocol version 3: stopped by "
            "sev_es_negotiate_protocol in the decompressor's sev_enable, terminate (0, 1)",
            "sev_es_negotiate_protocol: min > GHCB_PROTOCOL_MAX (linux-guest.md 6, 8.2)"),
    _attack("msr-hv-features-no-snp", "hypervisor features answered without GHCB_HV_FT_SNP: "
            "stopped by sev_enable's feature check, terminate (0, 2) GHCB_SNP_UNSUPPORTED",
            "sev_enable: GHCB_HV_FT_SNP missing (linux-guest.md 8.2)"),
    _attack("msr-hv-features-no-snp-early", "hypervisor features answered without "
            "GHCB_HV_FT_SNP to the decompressor only: stopped by sev_enable's feature check, "
            "terminate (0, 2) GHCB_SNP_UNSUPPORTED",
            "sev_enable: GHCB_HV_FT_SNP missing (linux-guest.md 8.2)"),
    _attack("msr-hv-features-no-snp-late", "hypervisor features answered with "
            "GHCB_HV_FT_SNP to the decompressor, without it to the kernel proper: stopped by "
            "sev_es_init_vc_handling's feature check, terminate (0, 2) GHCB_SNP_UNSUPPORTED",
            "sev_es_init_vc_handling: GHCB_HV_FT_SNP missing (linux-guest.md 8.2)"),
    _attack("npt-remap-validated", "the host remaps a validated private GPA in the NPT to a "
            "fresh page it assigned at that GPA: the RMP Validated check stops the next "
            "private access with #VC 0x404, the guest terminates (0, 0)",
            f"RMP Validated check -> #VC 0x404 ({_RMP})"),
    _attack("npt-remap-other-guest", "the host remaps a validated private GPA in the NPT "
            "to a page another SNP guest validated at the same GPA: Reverse-Map and Validated "
            "pass, the RMP Guest-Owned check (ASID) stops the access with #NPF (RMP bit)",
            f"RMP Guest-Owned check -> #NPF PFERR_GUEST_RMP ({_RMP})"),
    _attack("npt-remap-other-gpa", "the host remaps a validated private GPA in the NPT to "
            "another validated private page of the same guest: Guest-Owned and Validated "
            "pass, the RMP Reverse-Map check (the entry's GPA) stops the access with #NPF "
            "(RMP bit)", f"RMP Reverse-Map check -> #NPF PFERR_GUEST_RMP ({_RMP})"),
    _attack("rmp-make-shared-under-guest", "the host RMPUPDATEs a validated guest page to "
            "hypervisor-owned: the RMP Guest-Owned check stops the next private access with "
            "#NPF (RMP bit); KVM's fault path re-assigns the page unvalidated, then #VC 0x404, "
            "the guest terminates (0, 0)",
            f"RMP Guest-Owned check -> #NPF PFERR_GUEST_RMP, then Validated -> #VC 0x404 ({_RMP})"),
    _attack("host-write-private", "the host kernel writes to a guest-private page: the RMP "
            "Hypervisor-Owned check stops the write with a host #PF (X86_PF_RMP), a host "
            "oops; the guest page is untouched",
            f"RMP Hypervisor-Owned check -> host #PF with bit 31 ({_RMP})"),
)}


def all_variants() -> dict[str, Variant]:
    """Every variant: the bug reports (:data:`VARIANTS`) and then the attacks
    (:data:`ATTACKS`), by name (the two name sets do not overlap)."""
    return {**VARIANTS, **ATTACKS}


def get_variant(name: str) -> Variant:
    """The variant called ``name``: a bug report (``"R6"`` or ``"bug/R6"``) or an attack
    (``"psc-reserved-set"`` or ``"attack/psc-reserved-set"``); KeyError if unknown."""
    if name.startswith("bug/"):
        return VARIANTS[name.removeprefix("bug/")]
    if name.startswith("attack/"):
        return ATTACKS[name.removeprefix("attack/")]
    if name in VARIANTS:
        return VARIANTS[name]
    return ATTACKS[name]
