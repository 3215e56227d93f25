# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Model-only: the registry of named checks, and the switch that removes one for a run.

Every check the attack catalogue (:data:`snpsim.adversary.ATTACKS`) or the mutation table
(docs/mutants.md) names -- a Linux guest check on a hypervisor answer, a KVM check on a
guest request, an RMP/CPU check on an access -- has a name in :data:`CHECKS`.  Its site
in the model is one condition of the form ``if <failure condition> and
check_enabled("<name>"):``: :func:`check_enabled` runs only once the failure condition
already holds, so a run without mutants pays one call per *firing*, never per page or
per request that passes.  It answers whether the check is in force and, if so, records
the firing in :data:`FIRED` (a counter bounded by the number of checks); a removed check
(a *mutant*) answers False, so the site behaves as if the condition never held.

Checks are removed for the process by :func:`disabled_checks` (a context manager), or
for a whole process by the environment variable ``SNPSIM_DISABLE_CHECKS`` (names
separated by commas), read at import: that is how a test subprocess runs under a mutant.

Sources of each check: the ``reference`` of its :class:`Check` (linux-guest.md,
kvm-qemu-host.md, hardware-and-ghcb.md sections; APM vol 2 15.36.10 table 15-39).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "Check",
    "CHECKS",
    "FIRED",
    "check_enabled",
    "disabled_checks",
    "active_mutants",
    "reset_fired",
    "ENV_VAR",
]

#: The environment variable a process reads at import: checks to remove, comma-separated.
ENV_VAR = "SNPSIM_DISABLE_CHECKS"


@dataclass(frozen=True)
class Check:
    """One named check.  ``name``: ``"<function>:<what>"`` (the modelled function holding
    it) or ``"rmp:<check>"`` for the hardware's RMP checks (APM table 15-39 names);
    ``layer``: "guest", "kvm" or "rmp"; ``site``: the model function that holds it;
    ``condition``: what makes it fire, in a few words; ``outcome``: what happens when it
    fires; ``reference``: where the real behaviour is described."""

    name: str
    layer: str
    site: str
    condition: str
    outcome: str
    reference: str


_L = "linux-guest.md"
_K = "kvm-qemu-host.md"
_H = "hardware-and-ghcb.md 1.4, APM vol 2 15.36.10 table 15-39"

CHECKS: dict[str, Check] = {c.name: c for c in (
    # -- Linux guest, on the hypervisor's answers
    Check("vmgexit_psc:result", "guest", "snpsim.guest.sev_core.vmgexit_psc",
          "sev_es_ghcb_hv_call result != ES_OK", "WARN, 1: caller terminates (1, 1)", f"{_L} 5.2, 6"),
    Check("vmgexit_psc:exit_info_2", "guest", "snpsim.guest.sev_core.vmgexit_psc",
          "sw_exit_info_2 != 0", "WARN, 1: caller terminates (1, 1)", f"{_L} 5.2"),
    Check("vmgexit_psc:reserved", "guest", "snpsim.guest.sev_core.vmgexit_psc",
          "PSC header reserved != 0", "WARN, 1: caller terminates (1, 1)", f"{_L} 5.2"),
    Check("vmgexit_psc:going-backward", "guest", "snpsim.guest.sev_core.vmgexit_psc",
          "end_entry above, or cur_entry below, its initial value",
          "WARN, 1: caller terminates (1, 1)", f"{_L} 5.2"),
    Check("verify_exception_info:status", "guest", "snpsim.guest.sev_vc.verify_exception_info",
          "sw_exit_info_1 low 32 bits not 0 or 1", "ES_VMM_ERROR", f"{_L} 6"),
    Check("verify_exception_info:event", "guest", "snpsim.guest.sev_vc.verify_exception_info",
          "status 1 without a valid #GP/#UD event", "ES_VMM_ERROR", f"{_L} 6"),
    Check("__page_state_change:response", "guest", "snpsim.guest.sev_startup._msr_psc_exchange",
          "MSR response code != 0x015 or GHCB_MSR_PSC_RESP_VAL != 0",
          "terminate (1, 1) GHCB_TERM_PSC", f"{_L} 7.1"),
    Check("snp_register_ghcb_early:gfn", "guest", "snpsim.guest.sev_vc.snp_register_ghcb_early",
          "response code != 0x013 or GFN != requested", "terminate (1, 0) GHCB_TERM_REGISTER",
          f"{_L} 5.1"),
    Check("sev_es_negotiate_protocol:version", "guest",
          "snpsim.guest.sev_vc.sev_es_negotiate_protocol",
          "hypervisor max < 1 or min > 2", "false: sev_enable terminates (0, 1)", f"{_L} 6, 8.2"),
    Check("sev_enable:hv_ft_snp", "guest", "snpsim.guest.boot.sev_enable",
          "GHCB_HV_FT_SNP missing from the hypervisor features", "terminate (0, 2)", f"{_L} 8.2"),
    Check("sev_es_init_vc_handling:hv_ft_snp", "guest", "snpsim.guest.boot.sev_es_init_vc_handling",
          "GHCB_HV_FT_SNP missing from the hypervisor features (the kernel proper asks again)",
          "terminate (0, 2)", f"{_L} 5.1"),
    Check("exc_vmm_communication:terminate", "guest", "snpsim.guest.sev_vc.exc_vmm_communication",
          "kernel-mode #VC the handler cannot handle (ES_UNSUPPORTED, ES_VMM_ERROR)",
          "pr_err, terminate (0, 0) GHCB_SEV_ES_GEN_REQ",
          "vc-handle.c exc_vmm_communication; bug-reports.md R16"),
    Check("pvalidate_4k_page:failure", "guest", "snpsim.guest.sev_startup.pvalidate_4k_page",
          "PVALIDATE returned non-zero", "terminate (1, 2) GHCB_TERM_PVALIDATE", f"{_L} 4.4"),
    Check("pval_pages:failure", "guest", "snpsim.guest.sev_core.pval_pages",
          "PVALIDATE failed (other than a 2M size mismatch, which is retried as 4K)",
          "__pval_terminate: terminate (1, 2) GHCB_TERM_PVALIDATE", f"{_L} 4.2"),
    # -- KVM, on the guest's requests
    Check("sev_es_validate_vmgexit:fields", "kvm", "snpsim.kvm.svm_sev.sev_es_validate_vmgexit",
          "ghcb_usage != 0, required fields not valid, unknown exit code",
          "sw_exit_info_1 = 2 with the reason", f"{_K} 2.2"),
    Check("setup_vmgexit_scratch:window", "kvm", "snpsim.kvm.svm_sev.setup_vmgexit_scratch",
          "scratch not set, wraps, or outside the GHCB shared buffer",
          "GHCB_ERR_INVALID_SCRATCH_AREA", f"{_K} 2.3"),
    Check("snp_begin_psc:header", "kvm", "snpsim.kvm.svm_sev.snp_begin_psc",
          "end_entry >= entries the scratch holds", "VMGEXIT_PSC_ERROR_INVALID_HDR", f"{_K} 3.4, 3.6"),
    Check("snp_begin_psc:entry", "kvm", "snpsim.kvm.svm_sev.snp_begin_psc",
          "cur_page > npages or GFN not aligned to npages", "VMGEXIT_PSC_ERROR_INVALID_ENTRY",
          f"{_K} 3.4"),
    # -- RMP checks of the CPU (APM table 15-39)
    Check("rmp:guest-owned", "rmp", "snpsim.hw.npt.check_rmp_guest_access",
          "private access to a page not assigned to the guest's ASID", "#NPF with the RMP bit", _H),
    Check("rmp:reverse-map", "rmp", "snpsim.hw.npt.check_rmp_guest_access",
          "private access at a GPA other than the RMP entry's", "#NPF with the RMP bit", _H),
    Check("rmp:page-size", "rmp", "snpsim.hw.npt.check_rmp_guest_access",
          "NPT leaf size differs from the RMP entry's Page_Size", "#NPF with the RMP bit", _H),
    Check("rmp:validated", "rmp", "snpsim.hw.npt.check_rmp_guest_access",
          "private access to a page whose Validated bit is clear", "#VC 0x404", _H),
    Check("rmp:hypervisor-owned", "rmp", "snpsim.hw.npt.check_rmp_guest_access, snpsim.hw.cpu.Host.write",
          "shared guest write or host write to an assigned page",
          "#NPF with the RMP bit (guest), host #PF with X86_PF_RMP (host)", _H),
)}

#: How often each check fired, in force, in this process since :func:`reset_fired`
#: (name -> count); :meth:`snpsim.system.SnpSystem.run` resets it and copies it into
#: ``RunOutcome.checks``.
FIRED: Counter[str] = Counter()

_disabled: frozenset[str] = frozenset(
    n for n in os.environ.get(ENV_VAR, "").split(",") if n)


def check_enabled(name: str) -> bool:
    """Called at a check's site once its failure condition holds: True when the check
    ``name`` is in force (it stops what it checks; the firing is counted in
    :data:`FIRED`), False when it has been removed (a mutant: the site goes on as if the
    condition were false, and nothing is counted).  ``name`` is a key of :data:`CHECKS` (not checked here: the test suite checks
    every site's name)."""
    if name in _disabled:
        return False
    FIRED[name] += 1
    return True


def active_mutants() -> frozenset[str]:
    """The names of the checks removed in this process now."""
    return _disabled


def reset_fired() -> None:
    """Forget the firings counted so far (:data:`FIRED` emptied)."""
    FIRED.clear()


@contextmanager
def disabled_checks(names: Iterable[str]) -> Iterator[None]:
    """Remove the checks ``names`` (keys of :data:`CHECKS`) for the ``with`` block, on top
    of those already removed; the previous set comes back on exit.  Raises KeyError for
    an unknown name."""
    global _disabled
    names = frozenset(names)
    unknown = names - CHECKS.keys()
    if unknown:
        raise KeyError(f"unknown check(s): {', '.join(sorted(unknown))}")
    before = _disabled
    _disabled = before | names
    try:
        yield
    finally:
        _disabled = before
