# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A malicious hypervisor: named misanswers and RMP-level attacks, as hooks on KVM
functions by their real names (:meth:`snpsim.api.Scenario.hook`,
:func:`snpsim.api.hooked`) on the default KVM profile.

Each attack wraps one KVM function: it lets KVM do the honest work (``original``) and
then lies, or does something a benign KVM never does.  The functions a hook calls come
from :func:`snpsim.api.function`.  Nothing here touches ``spec/`` or ``hw/``: the checks
that stop the attacks are the Linux guest's (``shared/reference/linux-guest.md`` 5.1,
5.2, 6, 7.1, 8.2) and the RMP's (``hardware-and-ghcb.md`` 1.4), unchanged.

Two families:

* **Protocol misanswers** -- the answer to a GHCB PSC (``sw_exit_info_1``/``_2``, the PSC
  header the hypervisor writes back), to an MSR-protocol PSC, to the GHCB GPA
  registration, to SEV_INFO and to the hypervisor-features request.  Hooks on
  ``snp_complete_psc`` (every answer to a GHCB PSC), ``snp_begin_psc``,
  ``snp_complete_psc_msr`` and ``sev_handle_vmgexit_msr_protocol``.
* **RMP-level attacks** on a page the guest made private with a GHCB PSC and then
  validated: remap its GPA in the NPT to another page, RMPUPDATE it to shared, write to
  it from the host.  Hooks on ``snp_begin_psc`` (note the victim) and
  ``svm_handle_exit`` (strike).  Model choice of the attacker: it strikes at the first
  #VMEXIT after that PSC that is not a nested page fault (a #NPF still belongs to the
  guest's own PVALIDATE of the page), so the guest must exit once more (a PAUSE, an
  I/O, a VMGEXIT) before it touches the page again; what it did is kept per VM in an
  :class:`AttackLog` (:func:`attack_log`).

Units: GFNs and PFNs are 4 KiB frame numbers, GPAs and SPAs bytes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snpsim.api import function
from snpsim.spec.exit_codes import (
    GHCB_ERR_INVALID_INPUT,
    SVM_EVTINJ_TYPE_EXEPT,
    SVM_EVTINJ_VALID,
    SVM_EXIT_MSR,
    SVM_EXIT_NPF,
)
from snpsim.spec.faults import X86_TRAP_GP, X86_TRAP_PF
from snpsim.spec.msr_protocol import (
    GHCB_HV_FT_SNP,
    GHCB_MSR_HV_FT_POS,
    GHCB_MSR_HV_FT_REQ,
    GHCB_MSR_HV_FT_RESP,
    GHCB_MSR_INFO_MASK,
    GHCB_MSR_PSC_RESP,
    GHCB_MSR_REG_GPA_REQ,
    GHCB_MSR_REG_GPA_RESP,
    GHCB_MSR_SEV_INFO,
    GHCB_MSR_SEV_INFO_REQ,
)
from snpsim.spec.pgtable_types import PG_LEVEL_4K
from snpsim.spec.psc import (
    PSC_ENTRY_SIZE,
    PSC_HDR_SIZE,
    VMGEXIT_PSC_ERROR_GENERIC,
    VMGEXIT_PSC_OP_PRIVATE,
    PscEntry,
    PscHdr,
)
from snpsim.spec.units import PAGE_SHIFT, u64

__all__ = [
    "AttackLog",
    "attack_log",
    "ATTACK_HOOKS",
    "PSC_INJECTED_PF",
    "PSC_INJECTED_GP",
    "MSR_PSC_ERROR_VALUE",
    "SEV_INFO_MAX_0",
    "SEV_INFO_MIN_3",
    "HOST_WRITE_DATA",
    "OTHER_GUEST_ASID_OFFSET",
]

Hook = Callable[..., Any]


# ---- per-VM record ------------------------------------------------------------------------------


@dataclass
class AttackLog:
    """Model-only: what an attack did in one VM.

    ``victims``: GFNs of the private entries of the last GHCB PSC (not yet struck);
    ``armed``: that PSC was seen, strike at the next exit that is not a #NPF of the vCPU
    that made it (``armed_vcpu``), after it validated the pages;
    ``struck``: ``(action, gfn, pfn)`` per strike ("remap" with the new PFN, "rmp-shared"
    and "host-write" with the page's PFN); ``exits``: ``(exit_code, exit_info_1,
    exit_info_2)`` of every #VMEXIT after the strike (hardware values, u64);
    ``host_faults``: ``(spa, error_code)`` of host #PFs the attack itself took."""

    victims: list[int] = field(default_factory=list)
    armed: bool = False
    armed_vcpu: int = -1
    struck: list[tuple[str, int, int]] = field(default_factory=list)
    exits: list[tuple[int, int, int]] = field(default_factory=list)
    host_faults: list[tuple[int, int]] = field(default_factory=list)


# Keyed by id(); the weak reference tells a reused id from the VM it was made for.
_LOGS: dict[int, tuple[weakref.ref[Any], AttackLog]] = {}


def attack_log(kvm: Any) -> AttackLog:
    """The :class:`AttackLog` of VM ``kvm`` (KVM's ``struct kvm``: ``Host.vm``; created
    empty on first use).  Model-only."""
    got = _LOGS.get(id(kvm))
    if got is not None and got[0]() is kvm:
        return got[1]
    log = AttackLog()
    key = id(kvm)

    def forget(_ref: weakref.ref[Any]) -> None:
        if _LOGS.get(key, (None,))[0] is _ref:
            del _LOGS[key]

    _LOGS[key] = (weakref.ref(kvm, forget), log)
    return log


# ---- GHCB PSC misanswers (linux-guest.md 5.2 and 6) ----------------------------------------------

#: EVENTINJ value of a #PF (vector 14) exception: VALID | TYPE_EXEPT | 14.  Linux's
#: ``verify_exception_info`` accepts only #GP/#UD, so this is ES_VMM_ERROR.
PSC_INJECTED_PF = SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_EXEPT | X86_TRAP_PF
#: EVENTINJ value of a #GP (vector 13): accepted by ``verify_exception_info``
#: (ES_EXCEPTION), still a PSC failure for ``vmgexit_psc``.
PSC_INJECTED_GP = SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_EXEPT | X86_TRAP_GP


def _hdr_write(vcpu: Any, hdr: PscHdr) -> None:
    vcpu.sev_es.ghcb_sa.write(vcpu.kvm.host, 0, hdr.encode())


def _hdr_read(vcpu: Any) -> PscHdr:
    return PscHdr.decode(vcpu.sev_es.ghcb_sa.read(vcpu.kvm.host, 0, PSC_HDR_SIZE))


def psc_answer_info2_error(original: Hook, vcpu: Any, psc_ret: int) -> None:
    """Hook on ``snp_complete_psc``: the PSC is done, but the answer says
    VMGEXIT_PSC_ERROR_GENERIC in ``sw_exit_info_2`` (info1 = 0).  Stopped by
    ``vmgexit_psc``'s ``exit_info_2`` check."""
    original(vcpu, psc_ret)
    function("svm_vmgexit_no_action")(vcpu, psc_ret or VMGEXIT_PSC_ERROR_GENERIC)


def psc_answer_malformed_input(original: Hook, vcpu: Any, psc_ret: int) -> None:
    """Hook on ``snp_complete_psc``: answer ``sw_exit_info_1`` = 2 (malformed input) with
    GHCB_ERR_INVALID_INPUT in ``sw_exit_info_2``.  Stopped by ``verify_exception_info``
    (ES_VMM_ERROR) in ``sev_es_ghcb_hv_call``."""
    original(vcpu, psc_ret)
    function("svm_vmgexit_bad_input")(vcpu, GHCB_ERR_INVALID_INPUT)


def psc_answer_vmm_error_no_info2(original: Hook, vcpu: Any, psc_ret: int) -> None:
    """Hook on ``snp_complete_psc``: the PSC is done, but the answer is ``sw_exit_info_1``
    = 2 (malformed input) with ``sw_exit_info_2`` = 0, so the only sign of failure is the
    ES_VMM_ERROR that ``verify_exception_info`` makes of it.  Stopped by
    ``vmgexit_psc``'s check of the call's result (!= ES_OK), and by nothing else: its
    ``exit_info_2`` check sees 0."""
    original(vcpu, psc_ret)
    function("svm_vmgexit_set_return_code")(vcpu, 2, 0)


def psc_answer_inject_pf(original: Hook, vcpu: Any, psc_ret: int) -> None:
    """Hook on ``snp_complete_psc``: answer ``sw_exit_info_1`` = 1 (issue an exception)
    with a #PF in ``sw_exit_info_2``.  Stopped by ``verify_exception_info``: only #GP/#UD
    are accepted, so ES_VMM_ERROR."""
    original(vcpu, psc_ret)
    function("svm_vmgexit_set_return_code")(vcpu, 1, PSC_INJECTED_PF)


def psc_answer_inject_gp(original: Hook, vcpu: Any, psc_ret: int) -> None:
    """Hook on ``snp_complete_psc``: ``sw_exit_info_1`` = 1 with a #GP:
    ``verify_exception_info`` returns ES_EXCEPTION, which ``vmgexit_psc`` treats as a
    failed PSC like any non-OK result."""
    original(vcpu, psc_ret)
    function("svm_vmgexit_set_return_code")(vcpu, 1, PSC_INJECTED_GP)


def psc_answer_reserved_set(original: Hook, vcpu: Any, psc_ret: int) -> None:
    """Hook on ``snp_complete_psc``: KVM's answer, with the PSC header's ``reserved`` u32
    set to 1.  Stopped by ``vmgexit_psc``'s reserved check."""
    original(vcpu, psc_ret)
    h = _hdr_read(vcpu)
    _hdr_write(vcpu, PscHdr(h.cur_entry, h.end_entry, 1))


def psc_answer_end_entry_grown(original: Hook, vcpu: Any, psc_ret: int) -> None:
    """Hook on ``snp_complete_psc``: KVM's answer, with ``end_entry`` one past what the
    guest wrote.  Stopped by ``vmgexit_psc``'s "going backward" check (``end_entry`` >
    its initial value)."""
    original(vcpu, psc_ret)
    h = _hdr_read(vcpu)
    _hdr_write(vcpu, PscHdr(h.cur_entry, (h.end_entry + 1) & 0xFFFF, h.reserved))


def psc_answer_end_entry_grown_once(original: Hook, vcpu: Any, psc_ret: int) -> None:
    """Hook on ``snp_complete_psc``: the first answer in the VM has ``end_entry`` one past
    what the guest wrote (the entry after the last is zero: operation 0, which KVM
    completes with no action); later answers are KVM's.  Only ``vmgexit_psc``'s "going
    backward" check stops it: growing it once stays far below the entries KVM's header
    check allows.  Noted in the VM's :class:`AttackLog` (``struck``: ("end-entry", 0,
    0))."""
    original(vcpu, psc_ret)
    log = attack_log(vcpu.kvm)
    if not log.struck:
        log.struck.append(("end-entry", 0, 0))
        h = _hdr_read(vcpu)
        _hdr_write(vcpu, PscHdr(h.cur_entry, (h.end_entry + 1) & 0xFFFF, h.reserved))


def psc_answer_cur_entry_backwards(original: Hook, vcpu: Any, psc_ret: int) -> None:
    """Hook on ``snp_complete_psc``: the entries are done (their ``cur_page`` is set) but
    ``cur_entry`` is put back to 0.  Linux compares with the *initial* ``cur_entry`` (0),
    so this passes its check and the guest re-issues the same request forever
    (linux-guest.md 5.2): the run ends as a livelock in ``vmgexit_psc``."""
    original(vcpu, psc_ret)
    h = _hdr_read(vcpu)
    _hdr_write(vcpu, PscHdr(0, h.end_entry, h.reserved))


def psc_never_advance(original: Hook, vcpu: Any) -> int:
    """Hook on ``snp_begin_psc`` (replaces it): answer success at once, converting
    nothing and leaving ``cur_entry`` where it is.  Linux has no forward-progress check
    (linux-guest.md 5.2): the guest spins; the run ends as a livelock in ``vmgexit_psc``.
    Returns 1."""
    function("snp_complete_psc")(vcpu, 0)
    return 1


def vc_msr_inject_pf(original: Hook, vcpu: Any) -> int:
    """Hook on ``sev_handle_vmgexit``: KVM's handling, then for a GHCB-protocol
    SVM_EXIT_MSR (the guest's #VC on an intercepted RDMSR/WRMSR) the answer replaced by
    ``sw_exit_info_1`` = 1 with a #PF in ``sw_exit_info_2`` (:data:`PSC_INJECTED_PF`).
    Stopped by ``verify_exception_info``'s event check (only #GP/#UD: ES_VMM_ERROR), the
    #VC handler terminates (0, 0).  Returns KVM's result."""
    ret = original(vcpu)
    if not vcpu.vmcb.ghcb_gpa & GHCB_MSR_INFO_MASK and vcpu.exit_code == SVM_EXIT_MSR:
        function("svm_vmgexit_set_return_code")(vcpu, 1, PSC_INJECTED_PF)
    return int(ret)


# ---- MSR-protocol misanswers (linux-guest.md 5.1, 6, 7.1, 8.2) --------------------------------------

#: The MSR-protocol PSC answer with a non-zero error: response code 0x015, error 1 in
#: bits 63:32.
MSR_PSC_ERROR_VALUE = (1 << 32) | GHCB_MSR_PSC_RESP
#: SEV_INFO answer with max version 0 (< GHCB_PROTOCOL_MIN = 1), min 0, C-bit 51.
SEV_INFO_MAX_0 = GHCB_MSR_SEV_INFO(0, 0, 51)
#: SEV_INFO answer with min version 3 (> GHCB_PROTOCOL_MAX = 2), max 3, C-bit 51.
SEV_INFO_MIN_3 = GHCB_MSR_SEV_INFO(3, 3, 51)


def _msr_rewrite(name: str, request: int, rewrite: Callable[[Any, int], int]) -> Hook:
    """A hook on ``sev_handle_vmgexit_msr_protocol``: KVM's handler, then for the MSR
    request ``request`` (bits 11:0) the GHCB MSR is replaced by ``rewrite(vcpu, answer)``."""

    def hook(original: Hook, vcpu: Any) -> int:
        req = vcpu.vmcb.ghcb_gpa & GHCB_MSR_INFO_MASK
        ret = original(vcpu)
        if req == request:
            vcpu.vmcb.ghcb_gpa = u64(rewrite(vcpu, vcpu.vmcb.ghcb_gpa))
        return int(ret)

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = (f"Hook on ``sev_handle_vmgexit_msr_protocol`` ({name}): KVM's answer, "
                    f"rewritten for request {request:#x}.  Returns KVM's result.")
    return hook


msr_reg_gpa_other_gfn = _msr_rewrite(
    "msr_reg_gpa_other_gfn", GHCB_MSR_REG_GPA_REQ,
    lambda v, ans: (((ans >> PAGE_SHIFT) + 1) << PAGE_SHIFT) | GHCB_MSR_REG_GPA_RESP)
msr_sev_info_max_0 = _msr_rewrite("msr_sev_info_max_0", GHCB_MSR_SEV_INFO_REQ,
                                  lambda v, ans: SEV_INFO_MAX_0)
msr_sev_info_min_3 = _msr_rewrite("msr_sev_info_min_3", GHCB_MSR_SEV_INFO_REQ,
                                  lambda v, ans: SEV_INFO_MIN_3)
msr_hv_features_no_snp = _msr_rewrite(
    "msr_hv_features_no_snp", GHCB_MSR_HV_FT_REQ,
    lambda v, ans: (ans & ~(GHCB_HV_FT_SNP << GHCB_MSR_HV_FT_POS) & ~GHCB_MSR_INFO_MASK)
    | GHCB_MSR_HV_FT_RESP)


def _hv_features_no_snp_at(name: str, first: bool) -> Hook:
    """A hook on ``sev_handle_vmgexit_msr_protocol``: KVM's answers, except that the first
    hypervisor-features answer in the VM (``first``; the decompressor's ``sev_enable``
    asks first) or every later one (the kernel proper's ``sev_es_init_vc_handling``)
    lacks GHCB_HV_FT_SNP.  Each request is noted in the VM's :class:`AttackLog`
    (``struck``: ("hv-features", 0, 0))."""

    def hook(original: Hook, vcpu: Any) -> int:
        req = vcpu.vmcb.ghcb_gpa & GHCB_MSR_INFO_MASK
        ret = original(vcpu)
        if req == GHCB_MSR_HV_FT_REQ:
            log = attack_log(vcpu.kvm)
            earlier = any(a == "hv-features" for a, _g, _p in log.struck)
            if earlier != first:
                ans = vcpu.vmcb.ghcb_gpa
                vcpu.vmcb.ghcb_gpa = u64((ans & ~(GHCB_HV_FT_SNP << GHCB_MSR_HV_FT_POS)
                                          & ~GHCB_MSR_INFO_MASK) | GHCB_MSR_HV_FT_RESP)
            log.struck.append(("hv-features", 0, 0))
        return int(ret)

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = (f"Hook on ``sev_handle_vmgexit_msr_protocol`` ({name}): GHCB_HV_FT_SNP "
                    f"cleared from the {'first' if first else 'later'} hypervisor-features "
                    "answer(s).  Returns KVM's result.")
    return hook


msr_hv_features_no_snp_early = _hv_features_no_snp_at("msr_hv_features_no_snp_early", True)
msr_hv_features_no_snp_late = _hv_features_no_snp_at("msr_hv_features_no_snp_late", False)


def msr_psc_error(original: Hook, vcpu: Any) -> int:
    """Hook on ``snp_complete_psc_msr``: the conversion is done, but the answer carries
    error 1 in bits 63:32 (:data:`MSR_PSC_ERROR_VALUE`).  Stopped by
    ``__page_state_change``'s ``GHCB_MSR_PSC_RESP_VAL`` check.  Returns 1."""
    original(vcpu)
    vcpu.vmcb.ghcb_gpa = MSR_PSC_ERROR_VALUE
    return 1


def msr_psc_wrong_response(original: Hook, vcpu: Any) -> int:
    """Hook on ``snp_complete_psc_msr``: the conversion is done, but the GHCB MSR is left
    holding the guest's request (response code 0x014, not 0x015).  Stopped by
    ``__page_state_change``'s response-code check.  Returns 1."""
    request = vcpu.vmcb.ghcb_gpa
    original(vcpu)
    vcpu.vmcb.ghcb_gpa = request
    return 1


# ---- RMP-level attacks (hardware-and-ghcb.md 1.4) ---------------------------------------------------


def note_private_victims(original: Hook, vcpu: Any) -> int:
    """Hook on ``snp_begin_psc``: note the GFNs of the private entries from ``cur_entry``
    to ``end_entry`` (4K and 2M heads) as victims and arm the strike, then KVM's
    ``snp_begin_psc``.  A later range of the same request (``snp_begin_psc`` again from
    ``snp_complete_one_psc``) notes the private entries still to do.  Returns KVM's
    result."""
    h = _hdr_read(vcpu)
    log = attack_log(vcpu.kvm)
    sa = vcpu.sev_es.ghcb_sa
    victims = []
    last = min(h.end_entry, (vcpu.sev_es.ghcb_sa_len - PSC_HDR_SIZE) // PSC_ENTRY_SIZE - 1)
    for i in range(h.cur_entry, last + 1):
        e = PscEntry.decode(sa.read(vcpu.kvm.host, PSC_HDR_SIZE + i * PSC_ENTRY_SIZE, PSC_ENTRY_SIZE))
        if e.operation == VMGEXIT_PSC_OP_PRIVATE:
            victims.append(e.gfn)
    if victims:
        log.victims = victims
        log.armed = True
        log.armed_vcpu = vcpu.vcpu_id
    return int(original(vcpu))


def _striker(name: str, strike: Callable[[Any, int, AttackLog], None]) -> Hook:
    """A hook on ``svm_handle_exit``: once armed, at the first exit of the arming vCPU
    that is not a #NPF, ``strike(vcpu, victim_gfn, log)`` on the first victim (other
    vCPUs' exits, e.g. an AP's HLT, do not trigger it); every exit after the strike is
    recorded in the log; then KVM's ``svm_handle_exit``."""

    def hook(original: Hook, vcpu: Any, exit_: Any) -> int:
        log = attack_log(vcpu.kvm)
        if log.struck:
            log.exits.append((exit_.exit_code, exit_.exit_info_1, exit_.exit_info_2))
        elif log.armed and vcpu.vcpu_id == log.armed_vcpu and exit_.exit_code != SVM_EXIT_NPF:
            log.armed = False
            strike(vcpu, log.victims[0], log)
        return int(original(vcpu, exit_))

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = (f"Hook on ``svm_handle_exit`` ({name}): strike once at the first non-#NPF "
                    "exit after a private PSC, then KVM's handler.  Returns its result.")
    return hook


def _npt_pfn(vcpu: Any, gfn: int) -> int | None:
    ent = vcpu.kvm.host.npt_lookup(vcpu.kvm.npt, gfn)
    return None if ent is None else int(ent.pfn)


def strike_npt_remap(vcpu: Any, gfn: int, log: AttackLog) -> None:
    """Remap the validated ``gfn`` in the NPT to a fresh host page the host assigns to
    the guest at the same GPA (``rmp_make_private``: assigned, this ASID, 4K; the
    hardware leaves Validated clear).  The guest's next private access passes the
    Reverse-Map check and fails the Validated check: #VC 0x404."""
    kvm = vcpu.kvm
    new = kvm.allocator.alloc_page()
    function("rmp_make_private")(kvm, new, gfn << PAGE_SHIFT, PG_LEVEL_4K, kvm.sev.asid, False)
    kvm.host.npt_unmap(kvm.npt, gfn, gfn + 1)
    kvm.host.npt_map(kvm.npt, gfn, new)
    log.struck.append(("remap", gfn, new))


def strike_rmp_make_shared(vcpu: Any, gfn: int, log: AttackLog) -> None:
    """RMPUPDATE the page backing ``gfn`` to hypervisor-owned (``rmp_make_shared``) under
    the guest, leaving KVM's memory attribute private.  The guest's next private access
    fails the Guest-Owned check: #NPF with the RMP bit to KVM."""
    pfn = _npt_pfn(vcpu, gfn)
    assert pfn is not None, "the victim was validated, so it is mapped"
    function("rmp_make_shared")(vcpu.kvm, pfn, PG_LEVEL_4K)
    log.struck.append(("rmp-shared", gfn, pfn))


#: How far above the victim VM's ASID :func:`strike_npt_remap_other_guest` puts the
#: other guest (model choice: any other ASID does).
OTHER_GUEST_ASID_OFFSET = 1


def strike_npt_remap_other_guest(vcpu: Any, gfn: int, log: AttackLog) -> None:
    """Remap the validated ``gfn`` in the NPT to a page of *another* SNP guest that this
    guest's GPA also holds there, validated (ASID + :data:`OTHER_GUEST_ASID_OFFSET`, same
    GPA).  The other guest is not modelled: its page's RMP entry is written as that guest
    would have left it (``rmp_set_page_state``, "guest", validated; model-only, the
    host's history).  Reverse-Map, Page-Size and Validated all pass; only the Guest-Owned
    check (the entry's ASID) stops the access: #NPF with the RMP bit."""
    kvm = vcpu.kvm
    new = kvm.allocator.alloc_page()
    kvm.host.rmp_set_page_state(new << PAGE_SHIFT, "guest", asid=kvm.sev.asid + OTHER_GUEST_ASID_OFFSET,
                                gpa=gfn << PAGE_SHIFT, validated=True)
    kvm.host.npt_unmap(kvm.npt, gfn, gfn + 1)
    kvm.host.npt_map(kvm.npt, gfn, new)
    log.struck.append(("remap-other-guest", gfn, new))


def strike_npt_remap_other_gpa(vcpu: Any, gfn: int, log: AttackLog) -> None:
    """Remap the validated ``gfn`` in the NPT to another page of the *same* guest: the
    nearest mapped page below it that the RMP holds as assigned to this ASID, 4K and
    validated, at its own GPA (a swap of two private pages).  Guest-Owned, Page-Size
    and Validated all pass; only the Reverse-Map check (the entry's GPA) stops the
    access: #NPF with the RMP bit.  Nothing is done when no such page is mapped."""
    kvm = vcpu.kvm
    for other in range(gfn - 1, max(gfn - 4096, -1), -1):
        pfn = _npt_pfn(vcpu, other)
        if pfn is None:
            continue
        rc, e = kvm.host.rmpread(pfn << PAGE_SHIFT)
        if (rc == 0 and e is not None and e.assigned and e.asid == kvm.sev.asid and e.validated
                and not e.pagesize and e.gpa == other << PAGE_SHIFT):
            kvm.host.npt_unmap(kvm.npt, gfn, gfn + 1)
            kvm.host.npt_map(kvm.npt, gfn, pfn)
            log.struck.append(("remap-other-gpa", gfn, pfn))
            return


#: What the host writes into the guest's page in :func:`strike_host_write`.
HOST_WRITE_DATA = b"written by the host"


def strike_host_write(vcpu: Any, gfn: int, log: AttackLog) -> None:
    """Write :data:`HOST_WRITE_DATA` from the host kernel into the page backing ``gfn``
    (guest-owned in the RMP).  The Hypervisor-Owned check fails: host #PF with
    X86_PF_RMP, recorded in the log and delivered to the host kernel (an oops)."""
    pfn = _npt_pfn(vcpu, gfn)
    assert pfn is not None, "the victim was validated, so it is mapped"
    log.struck.append(("host-write", gfn, pfn))
    try:
        vcpu.kvm.host.write(pfn << PAGE_SHIFT, HOST_WRITE_DATA)
    except Exception as f:  # the hardware's host #PF: recorded, then delivered as raised
        if getattr(f, "delivered_to", None) == "host":
            log.host_faults.append((getattr(f, "spa", -1), getattr(f, "error_code", 0)))
        raise


#: Hook tables (real function name -> hook), by attack name (:data:`snpsim.adversary.ATTACKS`).
ATTACK_HOOKS: dict[str, dict[str, Hook]] = {
    "psc-info2-error": {"snp_complete_psc": psc_answer_info2_error},
    "psc-malformed-input": {"snp_complete_psc": psc_answer_malformed_input},
    "psc-vmm-error-no-info2": {"snp_complete_psc": psc_answer_vmm_error_no_info2},
    "psc-inject-pf": {"snp_complete_psc": psc_answer_inject_pf},
    "psc-inject-gp": {"snp_complete_psc": psc_answer_inject_gp},
    "vc-msr-inject-pf": {"sev_handle_vmgexit": vc_msr_inject_pf},
    "psc-reserved-set": {"snp_complete_psc": psc_answer_reserved_set},
    "psc-end-entry-grown": {"snp_complete_psc": psc_answer_end_entry_grown},
    "psc-end-entry-grown-once": {"snp_complete_psc": psc_answer_end_entry_grown_once},
    "psc-cur-entry-backwards": {"snp_complete_psc": psc_answer_cur_entry_backwards},
    "psc-never-advance": {"snp_begin_psc": psc_never_advance},
    "msr-hv-features-no-snp-early": {"sev_handle_vmgexit_msr_protocol": msr_hv_features_no_snp_early},
    "msr-hv-features-no-snp-late": {"sev_handle_vmgexit_msr_protocol": msr_hv_features_no_snp_late},
    "msr-psc-error": {"snp_complete_psc_msr": msr_psc_error},
    "msr-psc-wrong-response": {"snp_complete_psc_msr": msr_psc_wrong_response},
    "msr-register-other-gfn": {"sev_handle_vmgexit_msr_protocol": msr_reg_gpa_other_gfn},
    "msr-sev-info-max-0": {"sev_handle_vmgexit_msr_protocol": msr_sev_info_max_0},
    "msr-sev-info-min-3": {"sev_handle_vmgexit_msr_protocol": msr_sev_info_min_3},
    "msr-hv-features-no-snp": {"sev_handle_vmgexit_msr_protocol": msr_hv_features_no_snp},
    "npt-remap-validated": {"snp_begin_psc": note_private_victims,
                            "svm_handle_exit": _striker("svm_handle_exit_npt_remap", strike_npt_remap)},
    "npt-remap-other-guest": {
        "snp_begin_psc": note_private_victims,
        "svm_handle_exit": _striker("svm_handle_exit_npt_remap_other", strike_npt_remap_other_guest)},
    "npt-remap-other-gpa": {
        "snp_begin_psc": note_private_victims,
        "svm_handle_exit": _striker("svm_handle_exit_npt_remap_gpa", strike_npt_remap_other_gpa)},
    "rmp-make-shared-under-guest": {
        "snp_begin_psc": note_private_victims,
        "svm_handle_exit": _striker("svm_handle_exit_rmp_shared", strike_rmp_make_shared)},
    "host-write-private": {"snp_begin_psc": note_private_victims,
                           "svm_handle_exit": _striker("svm_handle_exit_host_write", strike_host_write)},
}
