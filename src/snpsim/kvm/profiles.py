# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""KVM version profiles and named variants, as override tables merged onto a base
(STYLE.md: py-evm forks; ARCHITECTURE.md ``adversary/`` will add more variants).

A :class:`KvmProfile` is a name, a table of *knobs* (plain values the code tests, e.g.
which ``setup_vmgexit_scratch`` is in force) and a table of *overrides* (kernel function
name -> replacement function with the same signature).  KVM code looks a function up
with ``kvm.profile.call(name, default)`` at the points where versions differ, so a
variant replaces exactly one step of the protocol.

Profiles (kvm-qemu-host.md section 10):

* ``"v7.0.12"`` (default): the 7.0.12 stable PSC/scratch hardening (2.3b, 3.6); v7.0
  guest_memfd (prepare hook on every ``kvm_gmem_get_pfn``).
* ``"v6.17"``: the original ``setup_vmgexit_scratch`` (2.3a) and ``snp_begin_psc`` bound
  of 253 entries; guest_memfd prepares once.

Variants are made with :meth:`KvmProfile.derive`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from snpsim.spec.variant import VariantProfile

__all__ = ["KvmProfile", "KVM_PROFILES", "DEFAULT_PROFILE", "get_profile", "KNOB_VALUES"]


@dataclass(frozen=True)
class KvmProfile(VariantProfile):
    """A KVM version or variant (see :class:`snpsim.spec.variant.VariantProfile`).

    Knobs: ``scratch`` ("hardened" | "original"); ``gmem_prepare_every_get`` (bool);
    ``zero_hypercall_ret`` (bool: ``snp_begin_psc``/``snp_begin_psc_msr`` zero
    ``run->hypercall.ret`` before the exit, kvm-qemu-host.md 3.4 / 10);
    ``stale_hypercall_ret`` (None, or the u64 a KVM that does not zero ``ret`` leaves
    there: bug report R6's leftover -KVM_ENOSYS); ``gmem_max_order`` (0: order-0 folios
    as in current kernels; 9: 2 MiB folios, as the pending guest_memfd huge-page work
    would give, so ``sev_gmem_prepare`` makes 2 MiB RMP entries); ``max_entries_per_run``
    (model-only, opt-in, default None: guest entries in one ``KVM_RUN`` before it
    returns -EINTR as if signalled; loops are caught by the livelock watcher,
    :mod:`snpsim.trace.progress`, not by this count);
    ``psc_coalesce_base`` ("entry": ``snp_begin_psc`` joins a following entry when its GFN
    equals the first entry's *original* GFN plus the pages gathered, as upstream KVM does,
    docs/findings.md F1; "range": against the start of the range actually converted, the
    fixed form).

    Override points (function name -> replacement with the same signature):
    ``setup_vmgexit_scratch``, ``snp_begin_psc``, ``snp_complete_psc_answer``,
    ``sev_gmem_prepare``, ``sev_gmem_invalidate``, ``npf_rmp_fault_gate``,
    ``ghcb_not_registered``, ``page_fault_can_be_fast``, ``svm_handle_exit`` (every
    #VMEXIT, ``(vcpu, exit) -> int``), ``sev_handle_vmgexit_msr_protocol`` (every GHCB
    MSR-protocol request, ``(vcpu) -> int``), ``snp_complete_psc_msr`` (the completion
    of an MSR-protocol PSC, ``(vcpu) -> int``).  Those three exist for the malicious
    hypervisors of :mod:`snpsim.adversary.attacks`.  ``__snp_handle_guest_req`` (an SNP
    guest request, ``(kvm, req_gpa, resp_gpa) -> (ret, fw_err)``; bug report R7).
    """


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: The values each knob may take where its default's type says too little (see the
#: class docstring): knob -> (test, what a refusal says).  :func:`snpsim.api.kvm_profile`
#: and :class:`snpsim.api.Scenario` refuse other values with ScenarioError.
KNOB_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "scratch": (lambda v: v in ("hardened", "original"), "'hardened' or 'original'"),
    "psc_coalesce_base": (lambda v: v in ("entry", "range"), "'entry' or 'range'"),
    "gmem_max_order": (lambda v: _is_int(v) and 0 <= v <= 9, "a folio order 0..9 (9: 2 MiB)"),
    "max_entries_per_run": (lambda v: v is None or (_is_int(v) and v >= 1),
                            "None or an int >= 1"),
    "stale_hypercall_ret": (lambda v: v is None or (_is_int(v) and 0 <= v < 1 << 64),
                            "None or a u64"),
}

_BASE_KNOBS: dict[str, Any] = {
    "scratch": "hardened",
    "gmem_prepare_every_get": True,
    "zero_hypercall_ret": True,
    "stale_hypercall_ret": None,
    "gmem_max_order": 0,
    "max_entries_per_run": None,
    "psc_coalesce_base": "entry",
}

KVM_PROFILES: dict[str, KvmProfile] = {
    "v7.0.12": KvmProfile("v7.0.12", dict(_BASE_KNOBS)),
    "v6.17": KvmProfile("v6.17", {**_BASE_KNOBS, "scratch": "original",
                                  "gmem_prepare_every_get": False}),
}

DEFAULT_PROFILE = KVM_PROFILES["v7.0.12"]


def get_profile(name: str) -> KvmProfile:
    """The profile called ``name`` (KeyError if unknown)."""
    return KVM_PROFILES[name]
