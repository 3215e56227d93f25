# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

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

Variants: R1, R2, R3, R6 (KVM), R12, R13, R15 (VMM), and R4/R5 (the KVM v6.17 scratch
handling; no new code), R7 (KVM's guest-request handler without the reclaim on the
error path).  R14 has tests against the default stack only.

``ATTACKS`` maps a name to a malicious-hypervisor variant (``kind == "attack"``,
:mod:`snpsim.adversary.attacks`): a misanswer the Linux guest checks, or an RMP-level
attack the hardware stops; ``check`` names the check that stops it.  One lookup for
both registries: :func:`get_variant` (``"R6"``, ``"bug/R6"``, ``"psc-reserved-set"``,
``"attack/psc-reserved-set"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from snpsim.kvm.profiles import DEFAULT_PROFILE, KVM_PROFILES, KvmProfile
from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE, QemuProfile

from .attacks import ATTACK_OVERRIDES
from .kvm_bugs import R1_OVERRIDES, R2_OVERRIDES, R3_OVERRIDES, R6_KNOBS, R7_OVERRIDES
from .vmm_bugs import R12_OVERRIDES, R13_OVERRIDES, R15_KNOBS

__all__ = ["Variant", "VARIANTS", "ATTACKS", "get_variant", "all_variants"]


@dataclass(frozen=True)
class Variant:
    """A named historical behaviour: ``name`` (the registry key), ``report`` (its id in
    bug-reports.md), ``description`` (one line: what goes wrong), ``kvm`` and ``qemu``
    (the profiles to run with), ``component`` ("kvm" or "vmm": the side that differs
    from the default); ``kind`` ("bug": a historical behaviour from bug-reports.md;
    "attack": a malicious hypervisor); ``check`` (attacks: the guest or RMP check that
    stops it, with its reference section)."""

    name: str
    report: str
    description: str
    kvm: KvmProfile
    qemu: QemuProfile
    component: str
    kind: str = "bug"
    check: str = ""


def _kvm(name: str, report: str, description: str, *, base: KvmProfile = DEFAULT_PROFILE,
         knobs: dict | None = None, overrides: dict | None = None) -> Variant:
    prof = base.derive(f"bug/{name}", knobs=knobs, overrides=overrides)
    return Variant(name, report, description, prof, DEFAULT_QEMU_PROFILE, "kvm")


def _vmm(name: str, report: str, description: str, *, knobs: dict | None = None,
         overrides: dict | None = None) -> Variant:
    prof = DEFAULT_QEMU_PROFILE.derive(f"bug/{name}", knobs=knobs, overrides=overrides)
    return Variant(name, report, description, DEFAULT_PROFILE, prof, "vmm")


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    _kvm("R1", "R1", "KVM's snp_begin_psc before the SMASH/UNSMASH and partial-update fix: "
         "a trailing PSMASH hint converted to shared, a done entry merged and converted "
         "again, cur_page 1 for a partly done 2M entry", overrides=R1_OVERRIDES),
    _kvm("R2", "R2", "KVM handles an RMP #NPF even after a KVM_EXIT_MEMORY_FAULT "
         "(return code < 0 misread): warnings and PSMASH before the userspace exit",
         overrides=R2_OVERRIDES),
    _kvm("R3", "R3", "KVM's fast page-fault path takes a private/shared mismatch fault "
         "as spurious: the guest spins in #NPF, no userspace exit (a livelock in "
         "kvm_mmu_page_fault)", overrides=R3_OVERRIDES),
    _kvm("R4", "R4", "KVM v6.17 takes the PSC scratch length from SW_EXITINFO2: a "
         "valid buffer with exit_info_2 = 0xffffffff is refused", base=KVM_PROFILES["v6.17"]),
    _kvm("R5", "R5", "KVM v6.17 bounds PSC entries by 253, not by the scratch left in "
         "the GHCB: reads run past the shared buffer", base=KVM_PROFILES["v6.17"]),
    _kvm("R6", "R6", "KVM leaves -KVM_ENOSYS in hypercall.ret and the VMM never writes "
         "it: a successful conversion reaches the guest as PSC GENERIC error", knobs=R6_KNOBS),
    _kvm("R7", "R7", "KVM's __snp_handle_guest_req returns on a firmware error before "
         "reclaiming the response page: it stays firmware-owned and the next guest "
         "request's host write to it takes an RMP #PF (host oops, VM stopped)",
         overrides=R7_OVERRIDES),
    _vmm("R12", "R12", "the VMM treats a shared access to private RAM as an MMIO "
         "emulation failure and crashes", overrides=R12_OVERRIDES),
    _vmm("R13", "R13", "the VMM panics on the guest's termination request instead of "
         "reporting its reason", overrides=R13_OVERRIDES),
    _vmm("R15", "R15", "the VMM's RAM starts shared and it has no KVM_EXIT_MEMORY_FAULT "
         "handler: the first private access stops the VM", knobs=R15_KNOBS),
)}


def _attack(name: str, description: str, check: str) -> Variant:
    prof = DEFAULT_PROFILE.derive(f"attack/{name}", overrides=ATTACK_OVERRIDES[name])
    return Variant(name, "", description, prof, DEFAULT_QEMU_PROFILE, "kvm", "attack", check)


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
    _attack("psc-inject-pf", "PSC answered sw_exit_info_1 = 1 with a #PF to inject: stopped by "
            "verify_exception_info (only #GP/#UD accepted: ES_VMM_ERROR), terminate (1, 1)",
            f"verify_exception_info: exception not #GP/#UD -> ES_VMM_ERROR ({_L6})"),
    _attack("psc-inject-gp", "PSC answered sw_exit_info_1 = 1 with a #GP to inject: "
            "verify_exception_info accepts it (ES_EXCEPTION), vmgexit_psc fails the PSC "
            "anyway, terminate (1, 1)",
            f"vmgexit_psc: sev_es_ghcb_hv_call result != ES_OK ({_L52}, {_L6})"),
    _attack("psc-reserved-set", "PSC answered with the header's reserved field set: stopped "
            "by vmgexit_psc's reserved check, terminate (1, 1)",
            f"vmgexit_psc: hdr.reserved != 0 ({_L52})"),
    _attack("psc-end-entry-grown", "PSC answered with end_entry grown by one: stopped by "
            "vmgexit_psc's going-backward check, terminate (1, 1)",
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
    _attack("npt-remap-validated", "the host remaps a validated private GPA in the NPT to a "
            "fresh page it assigned at that GPA: the RMP Validated check stops the next "
            "private access with #VC 0x404, the guest terminates (0, 0)",
            f"RMP Validated check -> #VC 0x404 ({_RMP})"),
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
