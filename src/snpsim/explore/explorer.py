# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""What one campaign run adds to a scenario: the drawn host behaviours, as hooks by
real function name and host events at points (:class:`Explorer`), and the invariants
watched while the run goes (:meth:`Explorer.watch`).

Everything goes through :mod:`snpsim.api` (``Scenario.hook``, ``Scenario.at``,
``Scenario.setup``/``after``, :class:`snpsim.api.Host`) and the malicious answers of
:mod:`snpsim.adversary.attacks`; nothing here reaches into the model's private names
(``tests/explore/test_public_api_only.py``).  A scenario file that ``snpsim explore``
writes for a failure calls the same methods with the same arguments, so ``snpsim run
FILE.py`` replays the run that failed (docs/explore.md).

Invariant names (:data:`INVARIANTS`) and where each is checked:

* ``private-access`` -- at every guest access the CPU lets through as private (a hook on
  ``check_rmp_guest_access``, after the hardware's own checks passed): the RMP entry of
  the page is assigned, to this VM's ASID, at that GPA, and validated.
* ``psc-stop`` -- at the return of ``set_memory_encrypted``/``set_memory_decrypted``/
  ``accept_memory``/``__page_state_change``: no vCPU returns normally from a call
  during which the host gave it a failed or inconsistent Page State Change answer.
* ``psc-honoured`` -- at the return of ``set_memory_encrypted``/``decrypted`` with 0:
  made private, every page is assigned to the ASID at its GPA and validated (any host);
  made shared, every page is shared in KVM's attributes, not assigned in the RMP and
  mapped without the C-bit (only when no PSC answer was rewritten and no host event
  touched the page: a host may lie about shared pages, which are its own).
* ``gmem-consistent`` -- after every host event, at each conversion's return and at
  the end of the run, for every page the guest converted and no host event touched: a
  page shared in KVM's attributes has no guest_memfd folio assigned in the RMP.
* ``no-plaintext`` -- at the same moments: neither the VMM's mapping nor a host read of
  the backing SPA shows any of the secrets the guest wrote privately.
* ``attack-stopped`` -- at the end of the run: every read back the workload checked
  gave what it wrote (a guest that went on with data it did not write means an
  attack got through).  The campaign adds which check stopped each attack
  (:func:`snpsim.explore.campaign.stopper`).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable
from typing import Any

from snpsim.adversary.attacks import (
    msr_psc_error,
    msr_psc_wrong_response,
    psc_answer_cur_entry_backwards,
    psc_answer_end_entry_grown,
    psc_answer_info2_error,
    psc_answer_inject_gp,
    psc_answer_inject_pf,
    psc_answer_malformed_input,
    psc_answer_reserved_set,
    psc_never_advance,
)
from snpsim.api import Host, Point, Scenario, ScenarioError, function, leave, vmm_exit
from snpsim.spec.kvm_uapi import KVM_MAP_GPA_RANGE_ENCRYPTED
from snpsim.spec.psc import PSC_HDR_SIZE, PscHdr
from snpsim.spec.units import PAGE_SIZE

__all__ = ["Explorer", "INVARIANTS", "STUCK_ENTRIES", "STUCK_LOG", "PSC_ANSWERS",
           "HONEST_PSC_ANSWERS", "MSR_ANSWERS", "MAP_GPA_ANSWERS",
           "HOST_ACTIONS"]

#: Invariant name -> one line (docs/explore.md has the long form).
INVARIANTS: dict[str, str] = {
    "private-access": "a page the guest accesses as private is assigned to its ASID at that "
                      "GPA and validated",
    "psc-stop": "the guest never continues past a failed or inconsistent PSC answer",
    "psc-honoured": "a conversion the guest saw succeed left the pages in the state it asked for",
    "gmem-consistent": "no page is shared in the attributes and populated private in guest_memfd",
    "no-plaintext": "no data the guest wrote privately is readable by the host in plaintext",
    "attack-stopped": "the guest never goes on with private data it did not write",
    "honest-completes": "with an honest host the guest completes its work",
    "model-error": "the model answers every request as the real system would (no Python "
                   "exception)",
}

#: PSC answer kinds (hooks on ``snp_complete_psc`` / ``snp_begin_psc``) -> (function
#: hooked, hook, the answer is failed or inconsistent by Linux's rules).
#: ``cur-entry-skip`` (:func:`psc_skip_first_entry`) is defined below.
PSC_ANSWERS: dict[str, tuple[str, Any, bool]] = {
    "info2-error": ("snp_complete_psc", psc_answer_info2_error, True),
    "malformed-input": ("snp_complete_psc", psc_answer_malformed_input, True),
    "inject-pf": ("snp_complete_psc", psc_answer_inject_pf, True),
    "inject-gp": ("snp_complete_psc", psc_answer_inject_gp, True),
    "reserved-set": ("snp_complete_psc", psc_answer_reserved_set, True),
    "end-entry-grown": ("snp_complete_psc", psc_answer_end_entry_grown, True),
    "cur-entry-backwards": ("snp_complete_psc", psc_answer_cur_entry_backwards, False),
    "never-advance": ("snp_begin_psc", psc_never_advance, False),
    "no-progress": ("snp_begin_psc", psc_never_advance, False),
    "cur-entry-skip": ("snp_begin_psc", None, False),
}
#: PSC answers a correct host may give: "no-progress" is ``never-advance`` once (the
#: request answered with no entry done, ``cur_entry`` where it was); the hypervisor may
#: return after part of the list and the guest issues the rest again
#: (hardware-and-ghcb.md, the PSC guest loop, step 3; Linux ``vmgexit_psc``).
HONEST_PSC_ANSWERS = ("no-progress",)

#: MSR-protocol PSC answer kinds (hooks on ``snp_complete_psc_msr``): all failed answers.
MSR_ANSWERS: dict[str, Callable[..., Any]] = {
    "error": msr_psc_error,
    "wrong-response": msr_psc_wrong_response,
}

#: The VMM's answers to KVM_HC_MAP_GPA_RANGE (hooks on ``kvm_handle_hc_map_gpa_range``):
#: "einval" (-EINVAL, nothing converted), "lie-done" (0, nothing converted), "first-page"
#: (only the first page converted, 0), "vmm-exit" (the VMM process exits, status 1).
MAP_GPA_ANSWERS = ("einval", "lie-done", "first-page", "vmm-exit")

#: Host actions of events: KVM_SET_MEMORY_ATTRIBUTES either way, a guest_memfd hole
#: punch, RMPUPDATE to hypervisor-owned, PSMASH of the 2 MiB unit, an NPT unmap, a
#: write through the VMM's mapping.
HOST_ACTIONS = ("attr-shared", "attr-private", "punch", "rmp-shared", "psmash", "npt-unmap",
                "host-write")

#: Guest entries in one KVM_RUN after which the run is stopped as if the VMM had sent a
#: signal (the KVM profile knob ``max_entries_per_run``): a schedule that holds a vCPU
#: another one spins waiting for (a TLB-flush IPI) would otherwise never end.  A run
#: stopped so is "stuck" (a host that never runs a vCPU again: denial of service, not a
#: broken guarantee).  A seed run has a few hundred entries in all.
STUCK_ENTRIES = 5000
#: The KVM log line of that stop (``kvm_arch_vcpu_ioctl_run`` model).
STUCK_LOG = "entries without exit (model stop)"

#: The guest functions whose calls convert pages (their return is where
#: ``psc-honoured`` is checked), and every guest function that issues a PSC
#: (``psc-stop``).  Each takes the guest kernel first.
_CONVERTING = ("set_memory_encrypted", "set_memory_decrypted")
_PSC_CALLERS = (*_CONVERTING, "accept_memory", "__page_state_change")


class Explorer:
    """The drawn host behaviours of one run and the invariants it is held to, on
    ``scenario`` (a :class:`snpsim.api.Scenario` not yet run).

    ``secrets``: byte strings the guest writes only into private pages (the built-in
    targets' payloads); the ``no-plaintext`` invariant looks for them in what the host
    can read.  Behaviour methods (:meth:`psc_answer`, :meth:`msr_answer`,
    :meth:`map_gpa`, :meth:`event`, :meth:`knob`) each act once, at the ``nth`` matching
    call or point, and are recorded in ``scenario.data["explore"]["fired"]`` when they
    did.  Call :meth:`watch` last (its hooks are then outermost and see the final
    answers).  Per-run state is reset when each run starts (``Scenario.setup``):
    ``state["pages"]`` (GPAs the guest asked to convert, in order), ``["touched"]``
    (GPAs a host event acted on), ``["bad"]`` (vCPU -> failed or inconsistent PSC
    answers given), ``["rewrote"]`` (some answer in the PSC path was rewritten),
    ``["steps"]`` (PSC-issuing calls returned)."""

    def __init__(self, scenario: Scenario, *, secrets: Iterable[bytes] = ()) -> None:
        self.sc = scenario
        self.secrets = tuple(secrets)
        self.host: Host | None = None
        self._counters: list[list[int]] = []
        self._watched = False
        self.state: dict[str, Any] = {}
        scenario.setup(self._setup)

    # -- per-run state -------------------------------------------------------------------
    def _setup(self, host: Host) -> None:
        self.host = host
        for c in self._counters:
            c[0] = 0
        self.state = {"pages": {}, "touched": set(), "bad": {}, "call": {}, "steps": 0,
                      "rewrote": False}
        self.sc.data["explore"] = {"fired": [], "violations": []}

    def _counter(self) -> list[int]:
        c = [0]
        self._counters.append(c)
        return c

    def _fired(self, what: str) -> None:
        self.sc.data["explore"]["fired"].append(what)

    def _violate(self, name: str, detail: str, where: str) -> None:
        """Record invariant ``name`` broken (the first time per run): ``detail`` (one
        line), ``where`` (the modelled function whose call or point the check ran at,
        or "end of run"), ``step`` (conversions and PSC calls returned so far)."""
        found = self.sc.data["explore"]["violations"]
        if any(v["invariant"] == name for v in found):
            return  # the first one of each invariant is the one to read
        found.append({"invariant": name, "detail": detail, "step": self.state["steps"],
                      "where": where})
        self.sc.data.setdefault("errors", []).append(f"invariant {name}: {detail}")

    def _bad_answer(self, vcpu_id: int) -> None:
        self.state["bad"][vcpu_id] = self.state["bad"].get(vcpu_id, 0) + 1

    # -- behaviours ----------------------------------------------------------------------
    def psc_answer(self, kind: str, nth: int = 1) -> None:
        """KVM's ``nth`` answer to a GHCB Page State Change is rewritten as ``kind`` (a
        key of :data:`PSC_ANSWERS`; the hooks of :mod:`snpsim.adversary.attacks`); every
        other answer is KVM's own.  ScenarioError for an unknown kind."""
        if kind not in PSC_ANSWERS:
            raise ScenarioError(f"unknown PSC answer {kind!r}: {', '.join(PSC_ANSWERS)}")
        name, attack, bad = PSC_ANSWERS[kind]
        attack = attack or psc_skip_first_entry
        count = self._counter()

        def hook(original: Callable[..., Any], vcpu: Any, *a: Any) -> Any:
            count[0] += 1
            if count[0] != nth:
                return original(vcpu, *a)
            self._fired(f"psc-answer {kind} #{nth}")
            if kind not in HONEST_PSC_ANSWERS:
                self.state["rewrote"] = True
            if bad:
                self._bad_answer(int(vcpu.vcpu_id))
            return attack(original, vcpu, *a)

        self.sc.hook(name, hook)

    def msr_answer(self, kind: str, nth: int = 1) -> None:
        """KVM's ``nth`` answer to an MSR-protocol Page State Change is rewritten as
        ``kind`` (:data:`MSR_ANSWERS`: a failed answer)."""
        if kind not in MSR_ANSWERS:
            raise ScenarioError(f"unknown MSR answer {kind!r}: {', '.join(MSR_ANSWERS)}")
        attack, count = MSR_ANSWERS[kind], self._counter()

        def hook(original: Callable[..., Any], vcpu: Any) -> Any:
            count[0] += 1
            if count[0] != nth:
                return original(vcpu)
            self._fired(f"msr-answer {kind} #{nth}")
            self.state["rewrote"] = True
            self._bad_answer(int(vcpu.vcpu_id))
            return attack(original, vcpu)

        self.sc.hook("snp_complete_psc_msr", hook)

    def map_gpa(self, kind: str, nth: int = 1) -> None:
        """The VMM's ``nth`` answer to KVM_HC_MAP_GPA_RANGE (QEMU
        ``kvm_handle_hc_map_gpa_range``) is ``kind`` (:data:`MAP_GPA_ANSWERS`)."""
        if kind not in MAP_GPA_ANSWERS:
            raise ScenarioError(f"unknown map-gpa answer {kind!r}: {', '.join(MAP_GPA_ANSWERS)}")
        count = self._counter()

        def hook(original: Callable[..., Any], cpu: Any, run: Any) -> Any:
            count[0] += 1
            if count[0] != nth:
                return original(cpu, run)
            self._fired(f"map-gpa {kind} #{nth}")
            self.state["rewrote"] = True
            if kind == "vmm-exit":
                vmm_exit(1, "explore: the VMM exits while converting")
            if kind == "einval":
                self._bad_answer(int(cpu.cpu_index))
                return -errno.EINVAL
            if kind == "first-page":
                gpa, attrs = run.hypercall.args[0], run.hypercall.args[2]
                function("kvm_convert_memory")(cpu.kvm_state, gpa, PAGE_SIZE,
                                               bool(attrs & KVM_MAP_GPA_RANGE_ENCRYPTED))
            return 0

        self.sc.hook("kvm_handle_hc_map_gpa_range", hook)

    def event(self, point: Point, action: str, page: int = 0) -> None:
        """At ``point`` (its ``nth`` time), the host does ``action`` (:data:`HOST_ACTIONS`)
        on the ``page``-th page the guest has converted so far (modulo their number;
        nothing when it has converted none).  Once per run."""
        if action not in HOST_ACTIONS:
            raise ScenarioError(f"unknown host action {action!r}: {', '.join(HOST_ACTIONS)}")
        done = self._counter()

        def act(h: Host) -> None:
            pages = list(self.state["pages"])
            if done[0] or not pages:
                return
            done[0] = 1
            gpa = pages[page % len(pages)]
            self.state["touched"].add(gpa)
            ret = _host_action(h, action, gpa)
            self._fired(f"event {action} {gpa:#x} at {point}: {ret}")
            self._check_pages(f"host event at {point.function}")

        self.sc.at(point, act)

    def knob(self, name: str, value: Any) -> None:
        """A KVM profile knob for the run (an honest behaviour, e.g. ``gmem_max_order``
        9: 2 MiB guest_memfd folios and 2 MiB RMP entries)."""
        self.sc.kvm_knobs[name] = value

    def schedule_done(self, h: Host) -> None:
        """The last step of a drawn schedule (``do(ex.schedule_done)``): every step was
        done.  A run whose schedule did not get here and did not complete was stopped
        by the schedule itself (a vCPU held while another waits for it: the host never
        running a vCPU again, a denial of service), and is "stuck", not a finding."""
        self.sc.data["explore"]["schedule_done"] = True

    # -- invariants ----------------------------------------------------------------------
    def watch(self) -> None:
        """Install the invariant checks (module docstring).  Call it once, after every
        behaviour."""
        if self._watched:
            raise ScenarioError("watch() was already called")
        self._watched = True
        self.sc.kvm_knobs.setdefault("max_entries_per_run", STUCK_ENTRIES)
        self.sc.hook("check_rmp_guest_access", self._on_access)
        for name in _PSC_CALLERS:
            self.sc.hook(name, self._psc_caller(name))
        for name in _CONVERTING:
            self.sc.at(*self._after_psc(name))
        self.sc.after(self._at_end)

    def _on_access(self, original: Callable[..., Any], rmp: Any, *a: Any, **k: Any) -> Any:
        ret = original(rmp, *a, **k)
        if not k.get("snp_active", True) or not (k.get("c_bit") or k.get("fetch")
                                                 or k.get("table_walk")):
            return ret
        h = self.host
        if h is None or h.vm is None:
            return ret
        e = h.rmp(int(k["pfn"]) << 12)
        gpa = int(k["gpa"])
        base = gpa & ~(0xFFF if e["pagesize"] == 0 else 0x1FFFFF)
        if not (e["assigned"] and e["asid"] == h.asid and e["gpa"] == base and e["validated"]):
            self._violate("private-access",
                          f"private access to GPA {gpa:#x} (SPA {int(k['pfn']) << 12:#x}) let "
                          f"through with RMP entry {e}", "check_rmp_guest_access")
        return ret

    def _psc_caller(self, name: str) -> Callable[..., Any]:
        """The guest-side hook on ``name``: notes the pages a conversion asks for, and
        checks ``psc-stop`` at the return (guest context: no host view is read here;
        the host-side checks run at the point ``leave(name)``, :meth:`_after_psc`)."""
        def hook(original: Callable[..., Any], kernel: Any, *a: Any, **k: Any) -> Any:
            vcpu = int(function("this_cpu")(kernel).vcpu_id)
            if name in _CONVERTING:
                addr, numpages = a[0], a[1] if len(a) > 1 else k.get("numpages", 1)
                first = int(function("__pa")(kernel, addr)) & ~0xFFF
                pages = [first + i * PAGE_SIZE for i in range(int(numpages))]
                for p in pages:
                    self.state["pages"].setdefault(p, None)
                self.state["call"][vcpu] = (pages, self.state["rewrote"])
            bad_before = self.state["bad"].get(vcpu, 0)
            ret = original(kernel, *a, **k)
            self.state["steps"] += 1
            if self.state["bad"].get(vcpu, 0) > bad_before:
                self._violate("psc-stop", f"vCPU {vcpu} returned from {name} (-> {ret!r}) "
                                          "after a failed or inconsistent PSC answer", name)
            return ret

        return hook

    def _after_psc(self, name: str) -> tuple[Any, Callable[[Host], None]]:
        """The point ``leave(name)`` (every time) with its host-context check:
        ``psc-honoured`` for a conversion that returned 0, then the page invariants."""
        last: dict[str, Any] = {}

        def where(args: dict[str, Any]) -> bool:
            vcpu = int(function("this_cpu")(args["kernel"]).vcpu_id)
            pages, rewrote_before = self.state["call"].pop(vcpu, ([], False))
            last["ret"], last["pages"], last["rewrote"] = args["return"], pages, rewrote_before
            return True

        def check(h: Host) -> None:
            self.host = h
            if last.get("ret") == 0:
                honest = not last["rewrote"] and not self.state["rewrote"]
                self._check_converted(name, last["pages"], honest)
            self._check_pages(name)

        return leave(name, where=where), check

    def _check_converted(self, name: str, pages: list[int], honest: bool) -> None:
        h = self.host
        assert h is not None
        for gpa in pages:
            if gpa in self.state["touched"]:
                continue
            st = h.page(gpa)
            self.state["pages"][gpa] = name
            r = st.rmp or {}
            if name == "set_memory_encrypted":
                ok = (r.get("assigned") and r.get("asid") == h.asid and r.get("validated")
                      and r.get("gpa") == gpa & ~(0xFFF if r.get("pagesize") == 0 else 0x1FFFFF))
                if ok and honest:
                    ok = st.attribute_private
                want = ("private as asked (RMP assigned to the ASID at the GPA, validated"
                        + (", attribute private)" if honest else ")"))
            elif not honest:
                continue
            else:
                ok = (not st.attribute_private and not r.get("assigned")
                      and st.pte_c_bit is False)
                want = "shared as asked (attribute shared, RMP not assigned, C-bit clear)"
            if not ok:
                self._violate("psc-honoured",
                              f"{name} returned 0 but GPA {gpa:#x} is not {want}: "
                              f"attribute {'private' if st.attribute_private else 'shared'}, "
                              f"C-bit {st.pte_c_bit}, RMP {st.rmp}", name)

    def _check_pages(self, when: str) -> None:
        h = self.host
        if h is None or h.vm is None:
            return
        for gpa in self.state["pages"]:
            st = h.page(gpa)
            for secret in self.secrets:
                for where, seen in (("the VMM's mapping", st.host_read),
                                    ("the backing SPA", st.spa_read)):
                    if seen is not None and secret[:len(seen)] and secret in seen:
                        self._violate("no-plaintext", f"{when}: {where} of GPA {gpa:#x} shows "
                                                      f"the guest's private data {secret!r}", when)
            if gpa in self.state["touched"] or st.attribute_private:
                continue
            folio = _gmem_folio(h, gpa)
            if folio is not None and h.rmp(folio << 12)["assigned"]:
                self._violate("gmem-consistent",
                              f"{when}: GPA {gpa:#x} is shared in KVM's attributes but its "
                              f"guest_memfd folio (PFN {folio:#x}) is assigned in the RMP", when)

    def _at_end(self, h: Host) -> None:
        self.host = h
        if h.vm is not None:
            self._check_pages("end of run")
        for v, ok in sorted(self.sc.data.get("explore_reads", {}).items()):
            if not ok:
                self._violate("attack-stopped", f"vCPU {v} read back private data it did "
                                                "not write and went on", "end of run")


def psc_skip_first_entry(original: Callable[..., Any], vcpu: Any) -> int:
    """Hook on ``snp_begin_psc``: before KVM reads the request, ``cur_entry`` in the
    GHCB's PSC header is moved one entry on, so the first pending entry is skipped and
    the answer says it is done (a wrong ``cur_entry`` the guest cannot tell from an
    honest one: Linux checks only that it did not go backwards or past
    ``end_entry + 1``, linux-guest.md 5.2).  Returns KVM's result."""
    sa, host = vcpu.sev_es.ghcb_sa, vcpu.kvm.host
    hdr = PscHdr.decode(sa.read(host, 0, PSC_HDR_SIZE))
    if hdr.cur_entry <= hdr.end_entry:
        sa.write(host, 0, PscHdr(hdr.cur_entry + 1, hdr.end_entry, hdr.reserved).encode())
    return int(original(vcpu))


def _gmem_folio(h: Host, gpa: int) -> int | None:
    """The PFN of the guest_memfd folio page behind ``gpa``, or None (no guest_memfd
    slot, or no folio there)."""
    gfn = gpa >> 12
    for slot in h.vm.memslots.values():
        if slot.contains(gfn) and slot.gmem_file is not None:
            got = slot.gmem_file.folio_at(slot.gmem_pgoff + gfn - slot.base_gfn)
            return None if got is None else int(got[0])
    return None


def _host_action(h: Host, action: str, gpa: int) -> Any:
    """Do host ``action`` on the page at ``gpa``: the call's return value."""
    if action == "attr-shared":
        return h.set_memory_attributes(gpa, PAGE_SIZE, private=False)
    if action == "attr-private":
        return h.set_memory_attributes(gpa, PAGE_SIZE, private=True)
    if action == "punch":
        return h.punch_hole(gpa, PAGE_SIZE)
    if action == "npt-unmap":
        return h.npt_unmap(gpa, PAGE_SIZE)
    if action == "host-write":
        h.write(gpa, b"written by the host")
        return 0
    spa = h.spa(gpa)
    if spa is None:
        return "not mapped"
    if action == "rmp-shared":
        return h.rmpupdate(spa, assigned=False)
    return h.psmash(spa)  # "psmash"
