# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The public scenario API: describe a machine, give each vCPU its guest work, hook any
modelled function by its real name, choose the schedule, inject host events, run, read
the result.  ``docs/api.md`` is the guide; ``examples/`` holds scenario files that
``snpsim run FILE.py`` runs.

A scenario file::

    from snpsim.api import Scenario, do, leave, run

    scenario = Scenario("fault races an attribute change", memory="64M", vcpus=2)
    data = scenario.data

    @scenario.guest(vcpu=1)
    def touch(g):                       # g: Guest, runs in vCPU 1's guest context
        va = g.alloc_page()             # private, validated, not yet in the NPT
        data["gpa"] = g.pa(va)
        g.write(va, b"hello")           # the #NPF the schedule holds

    def mine(args):                     # the point's filter: the fault on that page
        return args["fault"].gfn == data.get("gpa", -1) >> 12

    scenario.schedule(
        run(1, until=leave("kvm_mmu_faultin_pfn", where=mine)),  # vCPU 1 held mid-fault
        do(lambda h: h.set_memory_attributes(data["gpa"], 4096, private=False)),
        run(1),                                                  # and released
    )

(``examples/fault_races_attributes.py`` is this file with its expected outcome.)

What each part models and where it comes from:

* :class:`Scenario` builds one :class:`snpsim.system.SnpSystem` (q35 machine, Linux
  guest profile, KVM profile, QEMU profile), as ``snpsim run`` does for built-in
  scenarios.
* :meth:`Scenario.hook` wraps or replaces a modelled function (KVM, QEMU, the CPU and
  firmware, or the Linux guest) by its real name (:func:`function`).  The hook is
  ``hook(original, *args, **kwargs)`` and its return value is the call's; every call of
  the function goes through it, from every caller, for the whole run (the function's
  code is swapped in place, the mechanism tracing uses: :mod:`snpsim.trace.record`).
* Points (:func:`enter`, :func:`leave`) name the moment a vCPU's host thread or guest
  context enters or leaves a function.  :meth:`Scenario.schedule` runs vCPU threads one
  at a time up to such points (:func:`run`) and calls host code between them
  (:func:`do`); :meth:`Scenario.at` calls host code whenever a point is reached.  Any
  interleaving of guest, KVM and VMM steps at function granularity can be written
  down and replays exactly; without a schedule the vCPU threads interleave by the
  seeded scheduler.
* :class:`Host` is the host side's controls and views (the VMM's ioctls, guest_memfd,
  the RMP instructions, the NPT, teardown); :class:`Guest` the guest kernel's.
* :class:`Result` is how the run ended (:class:`snpsim.system.RunOutcome`), the
  counters, what guest code wrote into ``g.result``, page states and the trace.

Errors: :class:`ScenarioError` (a ValueError) for a scenario the model cannot run: an
unknown function name or profile, a vCPU index out of range, a bad size.  A Python
exception raised by user code (a workload, a hook, an event) ends the run and is
reported in :attr:`Result.errors`; the model's own outcome is kept.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import inspect
import pkgutil
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from snpsim.hw.rmp import RmpConfig as _HwRmpConfig
from snpsim.spec.psc import (
    SNP_PAGE_STATE_PRIVATE,
    SNP_PAGE_STATE_PSMASH,
    SNP_PAGE_STATE_SHARED,
    SNP_PAGE_STATE_UNSMASH,
    PscEntry,
    PscHdr,
    SnpPscDesc,
)
from snpsim.system import (
    HOST_SPA_SIZE,
    MODES,
    PageState,
    RunObserver,
    RunOutcome,
    SnpSystem,
    TeardownCheck,
    format_size,
    parse_size,
)
from snpsim.trace.events import TraceEvent
from snpsim.trace.progress import Livelock
from snpsim.trace.record import HookHandle, Recorder, add_hook, remove_hook, tracing

__all__ = [
    "Scenario",
    "ScenarioError",
    "Guest",
    "Host",
    "Result",
    "Point",
    "Step",
    "enter",
    "leave",
    "run",
    "do",
    "function",
    "functions",
    "signature",
    "hooked",
    "kvm_profile",
    "qemu_profile",
    "vmm_exit",
    "load_scenario_file",
    "PageState",
    "RmpConfig",
    "RunOutcome",
    "TeardownCheck",
    "parse_size",
    "format_size",
    "SnpPscDesc",
    "PscHdr",
    "PscEntry",
    "SNP_PAGE_STATE_PRIVATE",
    "SNP_PAGE_STATE_SHARED",
    "SNP_PAGE_STATE_PSMASH",
    "SNP_PAGE_STATE_UNSMASH",
]


class ScenarioError(ValueError):
    """A scenario the model cannot run (bad name, index, size or profile)."""


class RmpConfig(_HwRmpConfig):
    """Where the BIOS put the RMP (:class:`snpsim.hw.rmp.RmpConfig`, same fields), for
    :meth:`Scenario.host_init`.  Its constructors :meth:`contiguous` and
    :meth:`segmented` check every value when called and raise :class:`ScenarioError`
    naming the argument and its allowed range (a misaligned RMP_BASE, ``covered`` not a
    positive multiple of 2 MiB, a segment shift outside the CPUID 0x80000025 bounds, a
    segment index outside 0..511, a negative ``mapped_gib``, a non-int).  The plain
    constructor takes raw MSR values unchecked, to model a BIOS that got them wrong."""

    @classmethod
    def contiguous(cls, rmp_base: int, covered: int) -> RmpConfig:
        """:meth:`snpsim.hw.rmp.RmpConfig.contiguous`; ScenarioError for a bad value."""
        try:
            return super().contiguous(rmp_base, covered)
        except (TypeError, ValueError) as e:
            raise ScenarioError(f"RmpConfig.contiguous: {e}") from None

    @classmethod
    def segmented(cls, rmp_base: int, segment_shift: int,
                  segments: dict[int, tuple[int, int]], **cpuid: int) -> RmpConfig:
        """:meth:`snpsim.hw.rmp.RmpConfig.segmented`; ScenarioError for a bad value."""
        try:
            return super().segmented(rmp_base, segment_shift, segments, **cpuid)
        except (TypeError, ValueError) as e:
            raise ScenarioError(f"RmpConfig.segmented: {e}") from None


# ---------------------------------------------------------------------------------------
# Modelled functions by their real names

_PACKAGES = {"snpsim.guest": "guest", "snpsim.kvm": "kvm", "snpsim.vmm": "vmm",
             "snpsim.hw": "cpu"}


@functools.cache
def _index() -> dict[str, tuple[tuple[str, types.FunctionType], ...]]:
    found: dict[str, list[tuple[str, types.FunctionType]]] = {}

    def add(fn: types.FunctionType, default_party: str) -> None:
        traced = getattr(fn, "__snpsim_traced__", None)
        party, name = traced if traced else (default_party, fn.__name__)
        if not traced and len(name) > 1 and name[0] == "_" and name[1].islower():
            return  # a model helper (``_x``), not a modelled function (``__va``, ``_PAGE_ENC``)
        entries = found.setdefault(name, [])
        if not any(f is fn for _p, f in entries):
            entries.append((party, fn))

    for pkg, party in _PACKAGES.items():
        mod = importlib.import_module(pkg)
        names = [pkg] + [info.name for info in pkgutil.iter_modules(mod.__path__, pkg + ".")]
        for modname in names:
            m = importlib.import_module(modname)
            for obj in vars(m).values():
                if isinstance(obj, types.FunctionType) and obj.__module__ == modname:
                    add(obj, party)
                elif isinstance(obj, type) and obj.__module__ == modname:
                    for member in vars(obj).values():
                        if isinstance(member, types.FunctionType) and hasattr(member, "__snpsim_traced__"):
                            add(member, party)
    return {k: tuple(v) for k, v in found.items()}


def functions(party: str | None = None) -> dict[str, str]:
    """Every modelled function that can be hooked, called or used in a point: real
    name -> party ("guest", "kvm", "vmm", "cpu"); with ``party``, only that party's.
    A name two parties share (e.g. ``pvalidate``) appears as ``party:name``."""
    out: dict[str, str] = {}
    for name, entries in _index().items():
        parties = {p for p, _f in entries}
        for p in sorted(parties):
            if party is None or p == party:
                out[name if len(parties) == 1 else f"{p}:{name}"] = p
    return dict(sorted(out.items()))


def _resolve(name: str) -> list[types.FunctionType]:
    party, sep, bare = name.partition(":")
    if not sep:
        party, bare = "", name
    entries = _index().get(bare)
    if not entries:
        import difflib

        close = difflib.get_close_matches(bare, list(_index()), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ScenarioError(f"no modelled function is called {bare!r}{hint}")
    if party:
        chosen = [f for p, f in entries if p == party]
        if not chosen:
            raise ScenarioError(f"{bare!r} is not a {party} function "
                                f"(it is {', '.join(sorted({p for p, _f in entries}))})")
        return chosen
    parties = sorted({p for p, _f in entries})
    if len(parties) > 1:
        raise ScenarioError(f"{bare!r} names functions of several parties: write "
                            f"{' or '.join(f'{p}:{bare}' for p in parties)}")
    return [f for _p, f in entries]


def function(name: str) -> Callable[..., Any]:
    """The modelled function called ``name`` (``"snp_begin_psc"``, or ``"kvm:name"`` when
    several parties have one of that name), to call it from a hook, an event or guest
    code with the arguments it takes in the model (the C context argument first:
    ``vcpu``, ``kvm``, ``kernel``, ``s``...).  Raises :class:`ScenarioError` for an
    unknown or ambiguous name (several model functions of one name and party, e.g.
    methods of several classes, are all hooked by :meth:`Scenario.hook`, but
    ``function`` returns the first)."""
    return _resolve(name)[0]



def signature(name: str) -> str:
    """The arguments a hook on ``name`` receives after ``original`` (and a caller of
    :func:`function` passes), as one line: ``"snp_begin_psc(vcpu) -> int"``, with the
    module that models it (``"snpsim.kvm.svm_sev"``) in brackets.  Names as
    :func:`function` takes them; ScenarioError for an unknown or ambiguous name.  The
    function's own docstring (``help(snpsim.api.function(name))``) gives units, errors
    and its C source."""
    import inspect

    fns = _resolve(name)
    lines = []
    for f in fns:
        sig = inspect.signature(f)
        params = ", ".join(p.name if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                           else str(p).split(":")[0].split("=")[0].strip()
                           for p in sig.parameters.values())
        ret = sig.return_annotation
        ret_text = "" if ret is inspect.Signature.empty else f" -> {ret if isinstance(ret, str) else getattr(ret, '__name__', ret)}"
        lines.append(f"{f.__qualname__}({params}){ret_text}  [{f.__module__}]")
    return "\n".join(lines)


@contextlib.contextmanager
def hooked(hooks: Mapping[str, Callable[..., Any]]) -> Iterator[None]:
    """For the ``with`` block, every call of each modelled function named in ``hooks``
    (real name, as :func:`function` takes it -> ``hook(original, *args, **kwargs)``, as
    :meth:`Scenario.hook`) goes through its hook, from every caller; the hooks come off
    when the block ends, also on an exception.  For code that builds the model itself
    (a test's fake guest on ``Kvm`` and ``Machine``, an ``SnpSystem`` run directly); a
    :class:`Scenario` installs its own hooks for its run.  Unlike a scenario's hooks, an
    exception a hook raises goes to the caller unchanged.  Raises :class:`ScenarioError`
    for an unknown or ambiguous name, before any hook is installed."""
    targets = [(f, hook) for name, hook in hooks.items() for f in _resolve(name)]
    handles: list[HookHandle] = []
    try:
        for f, hook in targets:
            handles.append(add_hook(f, hook))
        yield
    finally:
        for h in reversed(handles):
            remove_hook(h)


def kvm_profile(base: Any = None, *, name: str | None = None,
                knobs: Mapping[str, Any] | None = None) -> Any:
    """A KVM profile (:class:`snpsim.kvm.profiles.KvmProfile`): ``base`` (a profile name
    such as "v6.17", a profile, or None for the default) with ``knobs`` changed, called
    ``name`` (default: the base's name).  Raises :class:`ScenarioError` for an unknown
    profile name."""
    from snpsim.kvm.profiles import DEFAULT_PROFILE, KVM_PROFILES

    return _profile(base, DEFAULT_PROFILE, KVM_PROFILES, name, knobs)


def qemu_profile(base: Any = None, *, name: str | None = None,
                 knobs: Mapping[str, Any] | None = None) -> Any:
    """A QEMU profile (:class:`snpsim.vmm.profiles.QemuProfile`), as :func:`kvm_profile`
    (``base`` e.g. "10.1"; None for the default)."""
    from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE, QEMU_PROFILES

    return _profile(base, DEFAULT_QEMU_PROFILE, QEMU_PROFILES, name, knobs)


def _profile(base: Any, default: Any, table: Mapping[str, Any], name: str | None,
             knobs: Mapping[str, Any] | None) -> Any:
    prof = default if base is None else base
    if isinstance(prof, str):
        if prof not in table:
            raise ScenarioError(f"unknown profile {prof!r}: {', '.join(table)}")
        prof = table[prof]
    if not knobs and (name is None or name == prof.name):
        return prof
    _check_knobs(knobs or {}, prof, type(prof).__name__.removesuffix("Profile").upper())
    return prof.derive(name or prof.name, knobs=knobs)


def vmm_exit(status: int, message: str) -> NoReturn:
    """From a VMM hook: the VMM process ends with exit status ``status`` (QEMU's
    ``exit(status)``; a Rust VMM that panics exits with 101) and ``message`` as its last
    error line.  The run's outcome is "qemu-exit" (``RunOutcome.vmm``).  Never returns."""
    from snpsim.vmm.kvm_all import QemuExit

    raise QemuExit(status, message)

# ---------------------------------------------------------------------------------------
# Points and schedule steps


@dataclass(frozen=True)
class Point:
    """A named point of a run: vCPU ``vcpu`` (None: any) ``when`` ("enter" or "leave")
    the function ``function`` (a real name, :func:`function`), the ``nth`` time
    (1-based) it does so with ``where(args)`` true.  ``args`` maps the function's
    parameter names to the call's values (and ``"return"`` to the result at "leave").
    A vCPU's point is reached in its host thread (the VMM's vCPU thread and KVM under
    it) or in its guest context."""

    function: str
    when: str = "enter"
    vcpu: int | None = None
    nth: int = 1
    where: Callable[[dict[str, Any]], bool] | None = None

    def __str__(self) -> str:
        who = "any vCPU" if self.vcpu is None else f"vCPU {self.vcpu}"
        nth = "" if self.nth == 1 else f" (time {self.nth})"
        return f"{who} {self.when}s {self.function}{nth}"


def enter(function: str, *, vcpu: int | None = None, nth: int = 1,
          where: Callable[[dict[str, Any]], bool] | None = None) -> Point:
    """The point where ``vcpu`` enters ``function`` (before its body runs)."""
    return Point(function, "enter", vcpu, nth, where)


def leave(function: str, *, vcpu: int | None = None, nth: int = 1,
          where: Callable[[dict[str, Any]], bool] | None = None) -> Point:
    """The point where ``vcpu`` returns from ``function`` (after its body ran)."""
    return Point(function, "leave", vcpu, nth, where)


@dataclass(frozen=True)
class Step:
    """One step of a deterministic schedule: ``run`` vCPU ``vcpu`` alone until ``until``
    (None: until its thread ends or parks at nothing else), or ``do`` ``action(host)``
    in the scheduler's host context."""

    kind: str
    vcpu: int | None = None
    until: Point | None = None
    action: Callable[[Host], Any] | None = None


def run(vcpu: int, until: Point | None = None) -> Step:
    """Schedule step: let vCPU ``vcpu``'s thread (its VMM vCPU thread, KVM under it and
    its guest context) run again.  With ``until``, the step lasts until that point is
    reached: every thread not held runs meanwhile, under the seeded scheduler, and at the
    point vCPU ``vcpu`` is held (it stops there) until a later ``run(vcpu...)`` step
    releases it.  Without ``until`` the vCPU is released and the next step follows at
    once; after the last step every thread still held is released."""
    if until is not None and until.vcpu is None:
        until = Point(until.function, until.when, vcpu, until.nth, until.where)
    elif until is not None and until.vcpu != vcpu:
        raise ScenarioError(f"run({vcpu}, until=...) waits for a point of vCPU {vcpu}, "
                            f"not {until.vcpu}")
    return Step("run", vcpu, until)


def do(action: Callable[[Host], Any]) -> Step:
    """Schedule step: call ``action(host)`` in the host's scheduler context (a VMM or
    host kernel thread that is not a vCPU's), e.g. an ioctl racing a stopped vCPU."""
    return Step("do", action=action)


# ---------------------------------------------------------------------------------------
# The guest and host sides, as a scenario sees them


class Guest:
    """The guest kernel on one vCPU, as a workload sees it (guest context only).

    ``vcpu``: the vCPU index; ``result``: a dict shared by every workload of the run
    (:attr:`Result.data`); ``kernel`` and ``cpu``: the model's guest kernel state and
    this vCPU's CPU port (the first argument of guest functions, and the
    :class:`snpsim.hw.ports.GuestPort` protocol).  Addresses: ``va``/``vaddr`` are GVAs
    (direct map), ``gpa`` GPAs; sizes in bytes, counts in 4 KiB pages.
    """

    def __init__(self, kernel: Any, cpu: Any, result: dict[str, Any]) -> None:
        self.kernel = kernel
        self.cpu = cpu
        self.vcpu: int = cpu.vcpu_id
        self.result = result
        self._last_exit: Any = None
        self._accesses = 0

    # addresses and memory
    def pa(self, va: int) -> int:
        """``__pa``: the GPA of direct-map address ``va``."""
        return int(function("__pa")(self.kernel, va))

    def va(self, gpa: int) -> int:
        """``__va``: the direct-map address of ``gpa``."""
        return int(function("__va")(self.kernel, gpa))

    def alloc_page(self) -> int:
        """A free 4 KiB page from the kernel's page allocator (private, validated):
        its direct-map GVA.  Raises ScenarioError when the pool is empty."""
        gpa = self.kernel.page_alloc.alloc_page()
        if gpa is None:
            raise ScenarioError("the guest's page allocator is empty")
        return self.va(int(gpa))

    def read(self, va: int, n: int) -> bytes:
        """``n`` bytes at GVA ``va`` through the page tables, C-bit, NPT and RMP checks.
        A workload that makes more than :data:`MAX_ACCESSES_WITHOUT_EXIT` reads and
        writes in a row with no VM exit between them ends the run as a named livelock
        (loop "guest workload"): a spin the host can never see."""
        self._count_access()
        return bytes(self.cpu.read(va, n))

    def write(self, va: int, data: bytes) -> None:
        """Write ``data`` at GVA ``va`` (same path and the same bound as :meth:`read`)."""
        self._count_access()
        self.cpu.write(va, data)

    def _count_access(self) -> None:
        """Model-only: counts this workload's reads and writes since the vCPU's last VM
        exit (the VMCB's exit record changes at every exit) and raises a livelock past
        :data:`MAX_ACCESSES_WITHOUT_EXIT`."""
        vmcb = getattr(self.cpu, "vmcb", None)
        last = vmcb.exit if vmcb is not None else None
        if last is not self._last_exit:
            self._last_exit, self._accesses = last, 0
        self._accesses += 1
        if self._accesses > MAX_ACCESSES_WITHOUT_EXIT:
            n, self._accesses = self._accesses, 0
            exc = Livelock("guest workload", self.vcpu,
                           f"{n} reads/writes by the scenario's workload without a VM exit", n)
            progress = getattr(self.cpu, "progress", None)
            if progress is not None and progress.tripped is None:
                progress.tripped = exc
            raise exc

    # conversions
    def set_memory_decrypted(self, va: int, numpages: int = 1) -> int:
        """``set_memory_decrypted(addr, numpages)``: make pages shared (0 or -errno)."""
        return int(function("set_memory_decrypted")(self.kernel, va, numpages))

    def set_memory_encrypted(self, va: int, numpages: int = 1) -> int:
        """``set_memory_encrypted(addr, numpages)``: make pages private (0 or -errno)."""
        return int(function("set_memory_encrypted")(self.kernel, va, numpages))

    def accept_memory(self, gpa: int, size: int) -> None:
        """``accept_memory(start, size)``: accept ``[gpa, gpa + size)`` (unaccepted RAM)."""
        function("accept_memory")(self.kernel, gpa, size)

    def unaccepted_gpa(self) -> int | None:
        """The GPA of the highest unaccepted unit (2 MiB) of RAM, or None."""
        u = self.kernel.unaccepted
        if u is None:
            return None
        for i in range(u.nbits - 1, -1, -1):
            if u.test(i):
                return int(u.phys_base + i * u.unit_size)
        return None

    # instructions and raw protocol
    def pvalidate(self, va: int, size: str = "4K", validate: bool = True) -> tuple[int, int]:
        """PVALIDATE the page at GVA ``va`` (``size`` "4K" or "2M"): (RAX, CF)."""
        if size not in ("4K", "2M"):
            raise ScenarioError(f"pvalidate size must be '4K' or '2M', not {size!r}")
        return self.cpu.pvalidate(va, 1 if size == "2M" else 0, validate)

    def set_c_bit(self, va: int, encrypted: bool) -> None:
        """Set or clear the C-bit of the 4 KiB direct-map PTE of ``va`` and INVLPG it,
        with no PSC and no PVALIDATE (what no Linux path does alone: an access through
        the other alias).  Raises ScenarioError if ``va`` has no 4 KiB PTE."""
        kpte, level = function("lookup_address")(self.kernel, va)
        if kpte is None or level != 1:
            raise ScenarioError(f"{va:#x} is not mapped by a 4 KiB PTE (split it first)")
        enc = function("_PAGE_ENC")(self.kernel)
        pte = self.cpu.read_u64(kpte)
        self.cpu.write_u64(kpte, pte | enc if encrypted else pte & ~enc)
        self.cpu.invlpg(va)

    def psc(self, desc: bytes, *, scratch_offset: int = 0x800, exit_info_2: int = 0,
            ghcb_va: int | None = None) -> dict[str, Any]:
        """One GHCB Page State Change VMGEXIT with ``desc`` (a ``struct snp_psc_desc``
        as bytes: :class:`SnpPscDesc`, re-exported here from :mod:`snpsim.spec.psc`)
        placed at ``scratch_offset`` bytes from the start of this CPU's GHCB page (the
        default 0x800 is the GHCB's shared buffer, ``ghcb->shared_buffer``; GHCB spec
        2.0 table 3), and ``exit_info_2``; none of Linux's answer checks.  Returns
        ``es_result``, ``sw_exit_info_1``, ``sw_exit_info_2`` and ``buffer_after``.
        ``ghcb_va``: the GVA of another (shared) page to use as the GHCB instead of the
        registered one (the GHCB MSR then holds its GPA for this VMGEXIT)."""
        from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC

        k = self.kernel
        get_ghcb, put_ghcb = function("__sev_get_ghcb"), function("__sev_put_ghcb")
        ghcb_state = _ghcb_state()
        ghcb = get_ghcb(k, ghcb_state)
        if ghcb_va is not None:
            ghcb = ghcb_va
        try:
            function("vc_ghcb_invalidate")(k, ghcb)
            self.cpu.write(ghcb + scratch_offset, desc)
            function("ghcb_set_field")(k, ghcb, "sw_scratch", self.pa(ghcb + scratch_offset))
            es = function("sev_es_ghcb_hv_call")(k, ghcb, _es_ctxt(self.cpu), SVM_VMGEXIT_PSC,
                                                 0, exit_info_2)
            after = self.cpu.read(ghcb + scratch_offset, min(len(desc), 4096 - scratch_offset))
            get = function("ghcb_get_field")
            return {"es_result": int(es), "sw_exit_info_1": get(k, ghcb, "sw_exit_info_1"),
                    "sw_exit_info_2": get(k, ghcb, "sw_exit_info_2"), "buffer_after": bytes(after)}
        finally:
            put_ghcb(k, ghcb_state)

    def guest_request(self, req_va: int, resp_va: int) -> tuple[int, int]:
        """``snp_issue_guest_request`` of an SNP guest request (SVM_VMGEXIT_GUEST_REQUEST,
        hardware-and-ghcb.md 7) whose message the caller wrote at ``req_va``, with the
        answer going to ``resp_va`` (each a shared page's direct-map GVA, e.g. from
        ``g.call("alloc_shared_pages", 4096)``).  Returns ``(ret, exitinfo2)``: 0 or
        -errno (core.c ``snp_issue_guest_request``) and the answer's ``sw_exit_info_2``
        (``(vmm_err << 32) | fw_err``)."""
        from snpsim.guest.sev_core import SnpGuestReq, SnpReqData

        req = SnpGuestReq(input=SnpReqData(self.pa(req_va), self.pa(resp_va)))
        ret = function("snp_issue_guest_request")(self.kernel, req)
        return int(ret), int(req.exitinfo2)

    # kexec and kdump
    def kexec(self) -> int:
        """``kernel_kexec()``: the kexec reboot (snpsim.guest.kexec): stop conversions
        (``snp_kexec_begin``), stop the other CPUs, make every shared page private again
        (``snp_kexec_finish``: direct map, ``.bss..decrypted``, the GHCBs last over the MSR
        protocol), then hand over to the next kernel, which is not modelled: this vCPU
        halts for good and the run ends with ``Result.outcome.kexec == "kexec"``.  Works
        from any vCPU; the others are stopped.  Returns only -EBUSY (-16), when another
        vCPU's kexec or kdump already holds ``kexec_lock`` (``kexec_trylock``)."""
        return int(function("kernel_kexec")(self.kernel))

    def crash_kexec(self) -> int:
        """``panic()`` -> ``__crash_kexec()`` with a crash kernel loaded (kdump): the other
        CPUs are shot down by NMI first, then ``snp_kexec_begin`` (a try-lock: a
        conversion in flight is reported, "Failed to stop shared<->private conversions",
        and left as it is) and ``snp_kexec_finish``; then the hand-over, as
        :meth:`kexec`, with ``Result.outcome.kexec == "kdump"``.  Returns only -EBUSY
        (-16), when another vCPU's kexec or kdump holds ``kexec_lock``."""
        return int(function("__crash_kexec")(self.kernel))

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the guest function ``name`` (real name) with the kernel as its first
        argument: ``g.call("snp_set_memory_shared", va, npages)``."""
        if ":" not in name and len({p for p, _f in _index().get(name, ())}) > 1:
            name = f"guest:{name}"
        return function(name)(self.kernel, *args, **kwargs)

    @property
    def warnings(self) -> list[str]:
        """The guest's WARN / pr_err lines so far."""
        return list(self.kernel.warnings)


def _ghcb_state() -> Any:
    from snpsim.guest.kernel import GhcbState  # the per-call GHCB save slot

    return GhcbState()


def _es_ctxt(cpu: Any) -> Any:
    from snpsim.guest.sev_vc import EsEmCtxt

    return EsEmCtxt(cpu.regs)


class Host:
    """The host side of one run: the VMM (QEMU model), KVM and the platform, as a
    scenario's events, hooks and result checks see them.  Host context only (a
    schedule's :func:`do`, :meth:`Scenario.at`, :meth:`Scenario.setup`, or after the run).

    ``system``: the :class:`snpsim.system.SnpSystem`; ``machine``: the VMM's
    :class:`snpsim.vmm.machine.Machine`; ``kvm``: the host kernel's syscall surface;
    ``vm``: KVM's ``struct kvm`` for the VM; ``platform``: CPU, RMP, memory.  GPAs and
    SPAs in bytes; sizes in bytes (multiples of 4 KiB).
    """

    def __init__(self, system: SnpSystem) -> None:
        self.system = system
        self.kvm = system.kvm
        self.platform = system.platform
        if system.machine is None:  # QEMU exited before the VM existed (model-only)
            self.machine: Any = None
            self.vm: Any = None
            self.asid: int = 0
            return
        self.machine = system.machine
        self.vm = system.kvm.vm(system.machine.s.vmfd)
        #: The VM's ASID (kept after a teardown frees it).
        self.asid = system.machine.asid

    @property
    def host_log(self) -> list[str]:
        """The host kernel's SNP initialisation lines (:meth:`Scenario.host_init`):
        arch/x86/virt/svm/sev.c ("SEV-SNP: RMP table physical range ...") then the SEV
        driver's; empty when the host started with SNP ready."""
        return self.system.host_log

    # VMM and KVM ioctls
    def vcpu(self, index: int) -> Any:
        """KVM's ``struct kvm_vcpu`` of vCPU ``index``.  Raises ScenarioError for an
        index that is not an int or not a vCPU of the VM."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise ScenarioError(f"a vCPU index is an int, not {index!r}")
        if not 0 <= index < len(self.vm.vcpus):
            raise ScenarioError(f"no vCPU {index} (the VM has {len(self.vm.vcpus)})")
        return self.vm.vcpus[index]

    def set_memory_attributes(self, gpa: int, size: int, private: bool) -> int:
        """KVM_SET_MEMORY_ATTRIBUTES on ``[gpa, gpa + size)`` (PRIVATE or none), as the
        VMM issues it (QEMU ``kvm_set_memory_attributes``): 0 or -errno."""
        name = "kvm_set_memory_attributes_private" if private else "kvm_set_memory_attributes_shared"
        return int(function(name)(self.machine.s, gpa, size))

    def convert(self, gpa: int, size: int, private: bool) -> int:
        """The VMM's whole conversion (QEMU ``kvm_convert_memory``): 0 or negative."""
        return int(function("kvm_convert_memory")(self.machine.s, gpa, size, private))

    def punch_hole(self, gpa: int, size: int) -> int:
        """fallocate(PUNCH_HOLE | KEEP_SIZE) on the guest_memfd backing ``[gpa, gpa +
        size)`` (QEMU ``ram_block_discard_guest_memfd_range``): the private pages are
        freed through guest_memfd's invalidation.  0 or negative; -EINVAL when the
        range is not in one guest_memfd-backed region."""
        for mr in self.machine.s.regions:
            rb = mr.ram_block
            if rb is not None and mr.addr <= gpa and gpa + size <= mr.addr + mr.size:
                if not mr.has_guest_memfd():
                    return -errno.EINVAL
                return int(function("ram_block_discard_guest_memfd_range")(
                    rb, mr.offset + gpa - mr.addr, size))
        return -errno.EINVAL

    # the platform
    def spa(self, gpa: int) -> int | None:
        """The SPA the NPT maps ``gpa`` to (None when not mapped)."""
        ent = self.vm.npt.lookup(gpa >> 12)
        return None if ent is None else (ent.pfn << 12) | (gpa & 0xFFF)

    def rmp_covered(self, spa: int) -> bool:
        """Whether the RMP has an entry for the page at ``spa`` (the RMP-Covered check,
        APM vol 2 15.36.10): a contiguous RMP covers SPA 0 up to its end, a segmented
        one each mapped segment (:meth:`Scenario.host_init`).  An uncovered page is
        hypervisor-owned for good: RMPUPDATE answers FAIL_INPUT, a private access #NPF."""
        return self.platform.rmp.covered(spa >> 12)

    def rmp(self, spa: int) -> dict[str, Any]:
        """The RMP entry governing the page at ``spa`` (APM vol 2, "RMP entry"): assigned,
        asid, gpa, pagesize (0 = 4K, 1 = 2M), validated, immutable, vmsa, and owner
        ("hypervisor", "guest" or "firmware", APM table 15-35)."""
        e = self.platform.rmp.lookup(spa >> 12)
        return {"assigned": bool(e.assigned), "asid": int(e.asid), "gpa": int(e.gpa),
                "pagesize": int(e.pagesize), "validated": bool(e.validated),
                "immutable": bool(e.immutable), "vmsa": bool(e.vmsa), "owner": e.owner}

    def vmsa(self, index: int) -> dict[str, Any]:
        """The VMSA vCPU ``index`` runs on (an SEV-ES/SNP VM), as a plain dict (index it:
        ``h.vmsa(1)["gpa"]``): ``spa`` (the VMCB's VMSA pointer; None when it has none,
        e.g. after an AP destroy), ``guest_vmsa`` (True while it runs on a page of guest
        memory an SNP AP creation gave it; False for KVM's own VMSA and for none),
        ``snp_has_guest_vmsa`` (KVM's flag of that name, which stays True after an AP
        destroy), ``gpa`` (the page's GPA in its RMP entry; KVM's initial VMSA is at
        0xFFFFFFFFF000; None without a page), ``rmp`` (:meth:`rmp` of the page: assigned, asid,
        validated, vmsa, ...; None without a page) and ``mp_state`` (KVM's: "runnable",
        "halted", "ap_reset_hold").  The VMSA of a vCPU whose VMRUN would fail its
        checks shows here as an ``rmp`` that is not assigned, of another ASID, with
        ``vmsa`` or ``validated`` False (docs/guest.md, "AP bring-up")."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise ScenarioError(f"a vCPU index is an int, not {index!r}")
        self.vcpu(index)  # ScenarioError for a vCPU the VM does not have
        return self.system.vmsa_state(index)

    def rmpupdate(self, spa: int, *, assigned: bool, asid: int = 0, gpa: int = 0,
                  pagesize: int = 0, immutable: bool = False) -> int:
        """RMPUPDATE of the page at ``spa`` to the given state (APM vol 3, RMPUPDATE):
        the instruction's return code (APM vol 3 RMPUPDATE: 0 success, 1 FAIL_INPUT, 2 FAIL_PERMISSION, 3
        FAIL_INUSE, 4 FAIL_OVERLAP)."""
        from snpsim.spec.rmp import RmpState

        state = RmpState(gpa=gpa, assigned=int(assigned), pagesize=pagesize,
                         immutable=int(immutable), asid=asid)
        return int(self.platform.host.rmpupdate(spa & ~0xFFF, state))

    def psmash(self, spa: int) -> int:
        """PSMASH the 2 MiB RMP entry at ``spa``: the instruction's return code."""
        return int(self.platform.host.psmash(spa & ~0x1FFFFF))

    def npt_unmap(self, gpa: int, size: int = 4096) -> int:
        """Remove the NPT mappings of ``[gpa, gpa + size)`` (a host changing the nested
        page table behind KVM's back): pages unmapped."""
        return int(self.platform.host.npt_unmap(self.vm.npt, gpa >> 12, (gpa + size) >> 12))

    def npt_map(self, gpa: int, spa: int, *, size: str = "4K") -> None:
        """Map ``gpa`` to ``spa`` in the NPT (``size`` "4K" or "2M")."""
        self.platform.host.npt_map(self.vm.npt, gpa >> 12, spa >> 12, 2 if size == "2M" else 1)

    # views
    def read(self, gpa: int, n: int) -> bytes:
        """What the VMM reads at ``gpa`` through its RAM mapping (shared backing)."""
        return self.machine.read_guest_ram(gpa, n)

    def write(self, gpa: int, data: bytes) -> None:
        """The VMM writes ``data`` at ``gpa`` through its RAM mapping (shared backing), as
        a device model's DMA does (QEMU ``address_space_write`` to guest RAM)."""
        self.machine.write_guest_ram(gpa, data)

    def page(self, gpa: int) -> PageState:
        """The page at ``gpa`` from every party (:class:`snpsim.system.PageState`)."""
        return self.system.page_state(gpa)

    @property
    def log(self) -> list[str]:
        """KVM's kernel log lines for this VM (pr_* / WARN)."""
        return list(self.vm.log)

    @property
    def vmm_errors(self) -> list[str]:
        """The VMM's error_report lines."""
        return list(self.machine.s.errors)

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the host function ``name`` (real name) with the given arguments (the C
        context argument first, e.g. ``host.vm`` or ``host.vcpu(0)``)."""
        return function(name)(*args, **kwargs)

    def teardown(self, order: str | Sequence[Any] | None = None) -> list[tuple[int, int]]:
        """Tear the VM down as QEMU's exit does (:meth:`snpsim.vmm.machine.Machine.teardown`):
        every vCPU stopped, then the process's KVM fds closed, which runs KVM's release
        paths -- guest_memfd's folios freed through ``sev_gmem_invalidate`` (private pages
        made shared again, PSMASH first where a 2 MiB entry is split), and with the last
        reference ``kvm_destroy_vm`` (VMSAs reclaimed, SNP_DECOMMISSION, the guest
        context page reclaimed from the firmware, ASID freed).  From a host event it
        stops the VM mid-run.

        ``order``: None or ``"exit"`` (process exit: fds closed in ascending order),
        ``"vm-first"`` (VM fd, vCPU fds, then the guest_memfds, which keep the VM alive
        until the last one goes), ``"gmem-first"`` (guest_memfds first, then vCPUs and
        VM), ``"punch-first"`` (every guest_memfd hole-punched whole, then exit), or a
        sequence of steps ``"kvm"``, ``"vm"``, ``"vcpus"``, ``"gmem"``, ``"punch"``,
        ``"exit"`` (a sequence may stop early; the next call goes on), or of fds.  A
        close that spins in the kernel (a livelock) ends the teardown there
        (:meth:`check_teardown` says which loop).  Raises ScenarioError for an unknown
        order or step, or one of the wrong type (e.g. ``teardown(42)``).  A named step
        repeated closes a closed fd again and gets -EBADF, as close(2) does.  Idempotent
        once every fd is closed.  Returns ``[(fd, result), ...]``: one pair per syscall,
        in order -- each close's result and each punch's fallocate result (0 or
        -errno)."""
        try:
            return self.machine.teardown(order)
        except ValueError as e:
            raise ScenarioError(str(e)) from None

    def check_teardown(self) -> TeardownCheck:
        """Every page checked (:class:`snpsim.system.TeardownCheck`): RMP entries still
        assigned to the VM's ASID, firmware pages not reclaimed, pages freed while still
        assigned, pages leaked or allocated and never freed, fds left open, and the
        teardown's livelock or oopses.  ``.clean`` is True for a teardown that left
        nothing behind; ``.problems()`` lists what it left, one line each."""
        return self.system.check_teardown()

    def assigned_to_guest(self) -> int:
        """How many RMP entries are still assigned to this VM's ASID (0 after a clean
        teardown)."""
        return sum(1 for pfn in self.platform.rmp.assigned_pfns()
                   if self.platform.rmp.lookup(pfn).asid == self.asid)


# ---------------------------------------------------------------------------------------
# The result


@dataclass
class Result:
    """How a scenario run ended.

    ``outcome``: the :class:`snpsim.system.RunOutcome` (VMM result, guest termination,
    livelock, counters, warnings, host oopses); ``data``: what guest code, hooks and
    events wrote into ``g.result`` / ``scenario.data`` (emptied when a run starts); ``errors``: exceptions of user
    code and schedule steps that could not be done (each one line); ``events``: the
    trace, when the run was traced; ``host``: the :class:`Host`, for reading page
    states and logs afterwards (or tearing the VM down); when QEMU exited before the VM
    existed (``outcome.vmm.result`` "qemu-exit") it has no ``machine`` or ``vm`` and only
    the host's own state (``host_log``, ``rmp``) can be read; ``config``: the machine
    used; ``system``: the :class:`snpsim.system.SnpSystem` that ran.
    """

    name: str
    outcome: RunOutcome
    data: dict[str, Any]
    errors: list[str]
    host: Host | None
    config: dict[str, Any]
    events: list[TraceEvent] = field(default_factory=list)
    system: SnpSystem | None = None

    @property
    def completed(self) -> bool:
        """The guest powered off normally and no user code failed."""
        return self.outcome.completed and not self.errors

    @property
    def livelock(self) -> str | None:
        """The named livelock the run ended in, if any."""
        return self.outcome.livelock

    @property
    def termination(self) -> tuple[int, int, str] | None:
        """(reason set, reason code, guest function) of a guest termination request."""
        return self.outcome.termination

    @property
    def counters(self) -> dict[str, int]:
        """Platform and KVM counters (``"RMPUPDATE"``, ``"kvm KVM_PRE_FAULT_MEMORY"``...)."""
        return self.outcome.counters

    def describe(self) -> str:
        """One line: the run's outcome."""
        return self.outcome.describe()

    def page(self, gpa: int) -> PageState:
        """The page at ``gpa`` after the run, from every party.  ScenarioError when the
        VM was never built."""
        if self.host is None or self.host.machine is None:
            raise ScenarioError("the VM was never built: " + self.describe())
        return self.host.page(gpa)


# ---------------------------------------------------------------------------------------
# The scenario


def _size(value: int | str, what: str) -> int:
    if isinstance(value, str):
        try:
            return parse_size(value)
        except ValueError as e:
            raise ScenarioError(f"{what}: {e}") from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ScenarioError(f"{what} must be bytes or a size like '64M', not {value!r}")
    return value


#: Guest RAM a scenario may have: 32 MiB .. 1 TiB, in whole 2 MiB units (the guest's
#: ``GuestConfig.ram_size`` rule; the same bounds as ``snpsim run --memory``).
MIN_MEMORY, MAX_MEMORY = 32 << 20, 1 << 40


def _memory(value: int | str) -> int:
    """``value`` (bytes or "64M") as the scenario's RAM size; ScenarioError outside
    :data:`MIN_MEMORY`..:data:`MAX_MEMORY` or not a multiple of 2 MiB."""
    from snpsim.system import format_size

    n = _size(value, "memory")
    if not MIN_MEMORY <= n <= MAX_MEMORY:
        raise ScenarioError(f"memory must be 32M..1T, not {format_size(n)}")
    if n % (2 << 20):
        raise ScenarioError(f"memory must be a multiple of 2M, not {format_size(n)}")
    return n


def _check_seed(seed: Any) -> None:
    """``seed`` is an integer 0..2**64-1 (what ``--seed`` takes); else ScenarioError."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 1 << 64:
        raise ScenarioError(f"seed must be an integer 0..2**64-1, not {seed!r}")


def _check_profile(value: Any, table: Mapping[str, Any], what: str, cls: type) -> None:
    """``value`` is None, a name in ``table`` or a ``cls`` instance; else ScenarioError
    naming the choices."""
    if value is None or isinstance(value, cls):
        return
    if not isinstance(value, str) or value not in table:
        raise ScenarioError(f"unknown {what} profile {value!r}: choose one of {', '.join(table)}")


def _check_knobs(knobs: Mapping[str, Any], base: Any, what: str) -> None:
    """Every name in ``knobs`` is a knob of profile ``base``; else ScenarioError listing
    the valid ones (a misspelt knob would otherwise change nothing, silently)."""
    unknown = sorted(set(knobs) - set(base.knobs))
    if unknown:
        raise ScenarioError(f"unknown {what} knob{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(map(repr, unknown))}: the {base.name} profile has "
                            f"{', '.join(sorted(base.knobs))}")
    from snpsim.kvm.profiles import KNOB_VALUES, KvmProfile

    values = KNOB_VALUES if isinstance(base, KvmProfile) else {}
    for name, value in knobs.items():
        allowed = values.get(name)
        default = base.knobs[name]
        if allowed is not None:
            ok, text = allowed
            if not ok(value):
                raise ScenarioError(f"{what} knob {name!r} must be {text}, not {value!r}")
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise ScenarioError(f"{what} knob {name!r} must be True or False, not {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise ScenarioError(f"{what} knob {name!r} must be a string, not {value!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)




def _guest_option_names() -> frozenset[str]:
    """The extra keyword arguments :class:`Scenario` passes on: the fields of
    :class:`snpsim.guest.kernel.GuestConfig` the machine does not set itself, and
    ``livelock_repeats``."""
    import dataclasses

    from snpsim.guest.kernel import GuestConfig

    names = {f.name for f in dataclasses.fields(GuestConfig)} - {"ram_size", "nr_cpus"}
    return frozenset(names | {"livelock_repeats"})


class Scenario:
    """One machine, its guest work, hooks, schedule and host events.

    ``name``: shown in summaries; ``memory`` (bytes or "64M"/"4G"), ``vcpus`` (1..64),
    ``kernel`` (guest profile: "6.17", "6.16", "6.4"), ``kvm`` (a KVM profile name, e.g.
    "v7.0.12"), ``qemu`` ("10.1", "9.1"), ``mode`` ("snp", "sev-es", "sev"), ``seed``
    (the scheduler's and keys' seed); ``kvm_knobs`` / ``qemu_knobs`` change profile knobs
    (``snpsim.kvm.profiles``, ``snpsim.vmm.profiles``); ``guest_options`` are
    :class:`snpsim.guest.kernel.GuestConfig` fields, and ``livelock_repeats`` (the
    livelock watcher's knob, :class:`snpsim.system.SnpSystem`).  Nothing is built until
    :meth:`run`; each run builds a fresh machine.  Raises :class:`ScenarioError` for a
    value the machine cannot take.
    """

    def __init__(self, name: str = "scenario", *, memory: int | str = 64 << 20, vcpus: int = 1,
                 kernel: str = "6.17", kvm: Any = None, qemu: Any = None, mode: str = "snp",
                 seed: int = 0, kvm_knobs: dict[str, Any] | None = None,
                 qemu_knobs: dict[str, Any] | None = None, description: str = "",
                 **guest_options: Any) -> None:
        from snpsim.guest.kernel import PROFILES as KERNEL_PROFILES
        from snpsim.kvm.profiles import DEFAULT_PROFILE, KVM_PROFILES, KvmProfile
        from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE, QEMU_PROFILES, QemuProfile

        self.name = name
        self.description = description
        self.memory = _memory(memory)
        if not isinstance(vcpus, int) or isinstance(vcpus, bool) or not 1 <= vcpus <= 64:
            raise ScenarioError(f"vcpus must be 1..64, not {vcpus!r}")
        if mode not in MODES:
            raise ScenarioError(f"unknown mode {mode!r}: {', '.join(MODES)}")
        if kernel not in KERNEL_PROFILES:
            raise ScenarioError(f"unknown kernel profile {kernel!r}: choose one of "
                                f"{', '.join(KERNEL_PROFILES)}")
        _check_seed(seed)
        _check_profile(kvm, KVM_PROFILES, "KVM", KvmProfile)
        _check_profile(qemu, QEMU_PROFILES, "QEMU", QemuProfile)
        _check_knobs(kvm_knobs or {}, KVM_PROFILES[kvm] if isinstance(kvm, str)
                     else kvm or DEFAULT_PROFILE, "KVM")
        _check_knobs(qemu_knobs or {}, QEMU_PROFILES[qemu] if isinstance(qemu, str)
                     else qemu or DEFAULT_QEMU_PROFILE, "QEMU")
        unknown = sorted(set(guest_options) - _guest_option_names())
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], [
                "memory", "vcpus", "kernel", "kvm", "qemu", "mode", "seed", "kvm_knobs",
                "qemu_knobs", "description", *_guest_option_names()], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ScenarioError(f"Scenario has no option {unknown[0]!r}{hint}; the guest "
                                f"options are {', '.join(sorted(_guest_option_names()))}")
        repeats = guest_options.get("livelock_repeats")
        if repeats is not None and (not _is_int(repeats) or repeats < 2):
            raise ScenarioError(f"livelock_repeats must be an int >= 2, not {repeats!r}")
        self.vcpus = vcpus
        self.kernel = kernel
        self.kvm = kvm
        self.qemu = qemu
        self.mode = mode
        self.seed = seed
        self.kvm_knobs = dict(kvm_knobs or {})
        self.qemu_knobs = dict(qemu_knobs or {})
        self.guest_options = guest_options
        self.data: dict[str, Any] = {}
        self.regions: list[Any] = []
        self.preassigned: list[tuple[int, str, int, int]] = []
        self.host_boot: dict[str, Any] | None = None
        self._workloads: dict[int, Callable[[Guest], Any]] = {}
        self._hooks: list[tuple[str, Callable[..., Any]]] = []
        self._steps: list[Step] = []
        self._at: list[tuple[Point, Callable[[Host], Any]]] = []
        self._setup: list[Callable[[Host], Any]] = []
        self._after: list[Callable[[Host], Any]] = []

    # -- building ------------------------------------------------------------------------
    def region(self, name: str, gpa: int, size: int | str, kind: str = "ram", *,
               guest_memfd: bool = True, alias_of: str | None = None, offset: int = 0,
               block_size: int | str = 0) -> None:
        """Add a guest-physical region to the q35 machine, as a QEMU board adds one
        (:class:`snpsim.vmm.machine.RegionSpec`): ``kind`` "ram" (its own RAMBlock and
        memslot; ``guest_memfd`` False: RAM that can only be shared), "rom" (a read-only
        slot where KVM allows one; KVM refuses KVM_MEM_READONLY for SEV-ES/SNP VMs, so
        QEMU maps it writable there), "mmio" (no memslot); ``alias_of`` a RAMBlock's name
        (e.g. "pc.ram") maps its bytes ``[offset, offset + size)`` as one more memslot.
        RAM is reported to the guest in e820 (ROM as reserved).  GPA and size 4 KiB
        aligned.  Raises ScenarioError for a bad kind, alignment or size; an overlap
        with another region is QEMU's abort at :meth:`run` (KVM answers -EEXIST)."""
        from snpsim.vmm.machine import RegionSpec

        spec = RegionSpec(name, gpa, _size(size, "region size"), kind, guest_memfd, alias_of,
                          offset, _size(block_size, "block_size"))
        try:
            spec.check()
        except ValueError as e:
            raise ScenarioError(str(e)) from None
        self.regions.append(spec)

    def preassign(self, gpa: int, owner: str, *, asid: int = 0, rmp_gpa: int = 0) -> None:
        """The host page guest_memfd will hand out for GPA ``gpa`` starts out owned by
        someone else in the RMP: ``owner`` "firmware" (assigned, ASID 0, immutable),
        "guest" (another guest: ``asid``, at ``rmp_gpa``) or "hv-fixed" (immutable,
        not assigned).  What KVM then does is ``sev_gmem_prepare``'s answer
        (docs/host.md, "Pre-owned pages").  Raises ScenarioError for another owner."""
        if owner not in ("firmware", "guest", "hv-fixed"):
            raise ScenarioError(f"owner must be 'firmware', 'guest' or 'hv-fixed', not {owner!r}")
        self.preassigned.append((gpa, owner, asid, rmp_gpa))

    def host_init(self, rmp: RmpConfig, *, ram: int | str = 64 << 30,
                  e820: tuple[tuple[int, int, int], ...] | None = None,
                  hv_fixed_2m: int = 0) -> None:
        """The host boots through SNP initialisation (the host's initial state before
        any VM): ``rmp`` where the BIOS put the RMP -- ``RmpConfig.contiguous(base,
        covered)`` or ``RmpConfig.segmented(base, shift, {index: (segment_spa,
        mapped_gib)})``; ``ram`` the host's RAM; ``e820`` its memory map ((SPA, size,
        E820_TYPE_*) triples; default: the legacy hole and the RMP's memory reserved);
        ``hv_fixed_2m`` 2 MiB HV-Fixed allocations made before SNP_INIT.  At
        :meth:`run`, Linux's ``snp_rmptable_init`` and the SEV driver's
        ``__sev_snp_init_locked`` run first: the RMP's own pages become
        firmware-owned, the e820 reserved ranges HV-Fixed (docs/host.md, "Host SNP
        initialisation").  If that fails, KVM offers no SNP VM and the run ends
        ``qemu-exit`` with QEMU's "KVM_CREATE_VM failed: -22"; ``h.host_log`` has
        the kernel's lines either way.  Without this call the host starts with SNP
        ready and an RMP covering all memory.  Raises ScenarioError for a second call
        (one host boot per scenario), a ``ram`` that is not a size, not positive, above
        the host's SPA space or smaller than the guest's memory, an ``rmp`` that is not
        an RmpConfig, malformed ``e820`` triples (a type that is not a u32 >= 1, or less
        type-1 RAM than the guest's memory; overlaps are left to Linux's sanitising, not
        modelled) or ``hv_fixed_2m`` outside 0..64."""
        if self.host_boot is not None:
            raise ScenarioError("host_init was called already: a scenario's host boots once")
        if not isinstance(rmp, _HwRmpConfig):
            raise ScenarioError(f"rmp must be an RmpConfig, not {rmp!r}")
        ram_bytes = _size(ram, "ram")
        if ram_bytes % 4096:
            raise ScenarioError(f"ram must be a whole number of 4 KiB pages, not {ram!r}")
        if not self.memory <= ram_bytes <= HOST_SPA_SIZE:
            raise ScenarioError(f"ram must be {format_size(self.memory)} (the guest's memory) .. "
                                f"{format_size(HOST_SPA_SIZE)} (the host's SPA space), not {ram!r}")
        if not 0 <= rmp.rmp_base <= HOST_SPA_SIZE - 0x5000 or not 0 <= rmp.rmp_end < HOST_SPA_SIZE:
            raise ScenarioError(f"the RMP must lie in the host's {HOST_SPA_SIZE:#x} bytes of SPA")
        if not isinstance(hv_fixed_2m, int) or not 0 <= hv_fixed_2m <= 64:
            raise ScenarioError(f"hv_fixed_2m must be 0..64, not {hv_fixed_2m!r}")
        if e820 is not None:
            try:
                e820 = tuple((int(a), int(n), int(t)) for a, n, t in e820)
            except (TypeError, ValueError):
                raise ScenarioError("e820 must be (SPA, size, E820_TYPE_*) triples") from None
            if any(a < 0 or n < 0 for a, n, _t in e820):
                raise ScenarioError("e820 addresses and sizes must not be negative")
            if any(not 1 <= t <= 0xFFFFFFFF for _a, _n, t in e820):
                raise ScenarioError("e820 types are u32 values >= 1 (E820_TYPE_RAM = 1, ...; "
                                    "Linux keeps an unknown type as not-RAM)")
            usable = sum(n for _a, n, t in e820 if t == 1)
            if usable < self.memory:
                raise ScenarioError(f"the e820 map has {format_size(usable)} of RAM (type 1), "
                                    f"less than the guest's memory {format_size(self.memory)}")
        self.host_boot = {"rmp": rmp, "ram": ram_bytes, "e820": e820,
                          "hv_fixed_2m": hv_fixed_2m}

    def guest(self, fn: Callable[[Guest], Any] | None = None, *, vcpu: int = 0) -> Any:
        """Decorator: ``fn(g)`` is vCPU ``vcpu``'s guest work (after boot; vCPU 0 then
        powers the guest off once every AP's work is done).  One workload per vCPU."""
        def register(f: Callable[[Guest], Any]) -> Callable[[Guest], Any]:
            self._check_vcpu(vcpu)
            if vcpu in self._workloads:
                raise ScenarioError(f"vCPU {vcpu} already has a workload")
            self._workloads[vcpu] = f
            return f

        return register(fn) if fn is not None else register

    def hook(self, name: str, fn: Callable[..., Any] | None = None) -> Any:
        """Decorator: route every call of the modelled function ``name`` through
        ``fn(original, *args, **kwargs)`` for the run (wrap: call ``original``; replace:
        do not).  Hooks on one function nest, the last added outermost.  Raises
        :class:`ScenarioError` for an unknown or ambiguous name."""
        _resolve(name)

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            self._hooks.append((name, f))
            return f

        return register(fn) if fn is not None else register

    def at(self, point: Point, action: Callable[[Host], Any] | None = None) -> Any:
        """Decorator: each time ``point`` is reached (every ``nth`` matching time: the
        point's own count), stop that vCPU, call ``action(host)`` in the scheduler's
        host context, then let the vCPU go on."""
        _resolve(point.function)

        def register(f: Callable[[Host], Any]) -> Callable[[Host], Any]:
            self._at.append((point, f))
            return f

        return register(action) if action is not None else register

    def setup(self, fn: Callable[[Host], Any]) -> Callable[[Host], Any]:
        """Decorator: ``fn(host)`` runs once the VM is built and launched, before any
        vCPU runs (the host's initial state: pre-owned pages, extra RMP entries...)."""
        self._setup.append(fn)
        return fn

    def after(self, fn: Callable[[Host], Any]) -> Callable[[Host], Any]:
        """Decorator: ``fn(host)`` runs after the VM stopped (checks, teardown)."""
        self._after.append(fn)
        return fn

    def schedule(self, *steps: Step) -> None:
        """The deterministic schedule (:func:`run`, :func:`do` steps), replacing any
        earlier one.  After its last step the vCPUs still running go on under the seeded
        scheduler."""
        for st in steps:
            if not isinstance(st, Step):
                raise ScenarioError(f"a schedule step must come from run() or do(), not {st!r}")
            if st.kind == "run":
                assert st.vcpu is not None
                self._check_vcpu(st.vcpu)
                if st.until is not None:
                    _resolve(st.until.function)
        self._steps = list(steps)

    def _check_vcpu(self, vcpu: int) -> None:
        if not isinstance(vcpu, int) or not 0 <= vcpu < self.vcpus:
            raise ScenarioError(f"vCPU {vcpu!r} out of range (the scenario has {self.vcpus})")

    # -- running -----------------------------------------------------------------------
    def build(self) -> SnpSystem:
        """A fresh :class:`snpsim.system.SnpSystem` for this scenario (not run)."""
        from snpsim.kvm.profiles import DEFAULT_PROFILE, KVM_PROFILES
        from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE, QEMU_PROFILES

        kvm = self.kvm if self.kvm is not None else DEFAULT_PROFILE
        qemu = self.qemu if self.qemu is not None else DEFAULT_QEMU_PROFILE
        try:
            if isinstance(kvm, str):
                kvm = KVM_PROFILES[kvm]
            if isinstance(qemu, str):
                qemu = QEMU_PROFILES[qemu]
        except KeyError as e:
            raise ScenarioError(f"unknown profile {e.args[0]!r}") from None
        if self.kvm_knobs:
            kvm = kvm.derive(kvm.name, knobs=self.kvm_knobs)
        if self.qemu_knobs:
            qemu = qemu.derive(qemu.name, knobs=self.qemu_knobs)
        try:
            system = SnpSystem(self.memory, self.vcpus, kernel=self.kernel, kvm=kvm, qemu=qemu,
                               seed=self.seed, mode=self.mode, regions=self.regions,
                               **self.guest_options)
            for gpa, owner, asid, rmp_gpa in self.preassigned:
                system.preassign(gpa, owner, asid, rmp_gpa)
            if self.host_boot is not None:  # runs when the run starts, under its hooks
                system.host_init(**self.host_boot, defer=True)
            return system
        except (ValueError, TypeError) as e:
            raise ScenarioError(str(e)) from None

    def run(self, *, observer: RunObserver | None = None, trace: Any = None,
            trace_clock: str = "modelled") -> Result:
        """Build the machine and run the scenario; returns the :class:`Result`.

        ``observer``: a :class:`snpsim.system.RunObserver` (counts, memory picture);
        ``trace``: True to record the call graph (``Result.events``), or a tracer (e.g.
        a :class:`snpsim.trace.record.Recorder` or a streaming exporter);
        ``trace_clock``: the events' timestamps, ``"modelled"`` (the machine's modelled
        time on the event's vCPU or host lane, docs/costs.md) or ``"wall"`` (the
        simulator's).  Raises ScenarioError for another ``trace_clock``."""
        if trace_clock not in ("modelled", "wall"):
            raise ScenarioError(f"trace_clock must be 'modelled' or 'wall', not {trace_clock!r}")
        return _Run(self).go(observer, trace, trace_clock)

    def config(self) -> dict[str, Any]:
        """The machine as plain data (for summaries)."""
        return {"scenario": self.name, "mode": self.mode, "memory": self.memory,
                "vcpus": self.vcpus, "kernel": self.kernel,
                "kvm": getattr(self.kvm, "name", self.kvm) or "default",
                "qemu": getattr(self.qemu, "name", self.qemu) or "default", "seed": self.seed}

    def override(self, *, memory: int | str | None = None, vcpus: int | None = None,
                 kernel: str | None = None, kvm: Any = None, mode: str | None = None,
                 seed: int | None = None) -> None:
        """Replace the machine values given (None: keep the scenario's own), checked as
        the constructor checks them; ``snpsim run FILE.py`` uses it for the options a
        user gives on the command line.  A smaller ``vcpus`` must still hold every vCPU
        the scenario names (workloads, schedule steps, points), and ``memory`` must fit
        the host RAM :meth:`host_init` gave.  Raises
        :class:`ScenarioError` and changes nothing when a value is refused."""
        from snpsim.guest.kernel import PROFILES as KERNEL_PROFILES
        from snpsim.kvm.profiles import KVM_PROFILES, KvmProfile

        new_memory = self.memory if memory is None else _memory(memory)
        if self.host_boot is not None and new_memory > self.host_boot["ram"]:
            raise ScenarioError(f"memory {format_size(new_memory)} is more than the host's RAM "
                                f"({format_size(self.host_boot['ram'])}, host_init)")
        if kernel is not None and kernel not in KERNEL_PROFILES:
            raise ScenarioError(f"unknown kernel profile {kernel!r}: choose one of "
                                f"{', '.join(KERNEL_PROFILES)}")
        if seed is not None:
            _check_seed(seed)
        _check_profile(kvm, KVM_PROFILES, "KVM", KvmProfile)
        if kvm is not None:
            _check_knobs(self.kvm_knobs, KVM_PROFILES[kvm] if isinstance(kvm, str) else kvm,
                         "KVM")
        new_vcpus = self.vcpus if vcpus is None else vcpus
        if not isinstance(new_vcpus, int) or not 1 <= new_vcpus <= 64:
            raise ScenarioError(f"vcpus must be 1..64, not {new_vcpus!r}")
        if mode is not None and mode not in MODES:
            raise ScenarioError(f"unknown mode {mode!r}: {', '.join(MODES)}")
        named = set(self._workloads)
        named |= {st.vcpu for st in self._steps if st.kind == "run" and st.vcpu is not None}
        named |= {p.vcpu for p, _a in self._at if p.vcpu is not None}
        if named and max(named) >= new_vcpus:
            raise ScenarioError(f"the scenario uses vCPU {max(named)}: it needs at least "
                                f"{max(named) + 1} vCPUs, not {new_vcpus}")
        self.memory, self.vcpus = new_memory, new_vcpus
        if kernel is not None:
            self.kernel = kernel
        if kvm is not None:
            self.kvm = kvm
        if mode is not None:
            self.mode = mode
        if seed is not None:
            self.seed = seed


class _Run:
    """One run of a scenario: the hooks in force, the point watchers, the driver."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.errors: list[str] = []
        self.handles: list[HookHandle] = []
        self.host: Host | None = None
        self.system: SnpSystem | None = None
        self.target: Point | None = None  # the point the current run() step waits for
        self.reached = False
        self.counts: dict[Point, int] = {}

    # user code runs through these: an exception is reported, not propagated into the model
    def _guard(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except _StopRun:
            raise
        except Exception as e:  # noqa: BLE001 - user code: report it, end the run
            self.errors.append(f"{what} raised {type(e).__name__}: {e}")
            return None

    def _workload(self, fn: Callable[[Guest], Any]) -> Callable[[Any, Any], Any]:
        def workload(kernel: Any, cpu: Any) -> Any:
            try:
                return fn(Guest(kernel, cpu, self.sc.data))
            except Exception as e:
                if type(e).__module__.startswith("snpsim.") and not isinstance(e, ScenarioError):
                    raise  # the model's own unwinding (GuestStop: panic, livelock), _StopRun
                self.errors.append(f"guest work of vCPU {cpu.vcpu_id} raised "
                                   f"{type(e).__name__}: {e}")
                return None

        return workload

    def _point_hook(self, fn: types.FunctionType, points: list[Point]) -> Callable[..., Any]:
        sig = inspect.signature(fn)
        world = None

        def args_of(a: tuple[Any, ...], k: dict[str, Any]) -> dict[str, Any]:
            try:
                ba = sig.bind(*a, **k)
            except TypeError:
                return {}
            ba.apply_defaults()
            return dict(ba.arguments)

        def check(when: str, a: tuple[Any, ...], k: dict[str, Any], ret: Any = None) -> None:
            nonlocal world
            if world is None:
                assert self.system is not None
                world = self.system.platform.world
            thread = world.current_thread()
            for p in points:
                if p.when != when or (p.vcpu is not None and p.vcpu != thread):
                    continue
                if p.where is not None:
                    args = args_of(a, k)
                    if when == "leave":
                        args["return"] = ret
                    if not self._guard(f"where() of point {p}", p.where, args):
                        continue
                n = self.counts.get(p, 0) + 1
                self.counts[p] = n
                if n < p.nth:
                    continue
                if p is self.target:
                    self.reached = True
                    world.park()
                for ap, action in self.sc._at:
                    if ap is p:
                        self.counts[p] = 0
                        world.pending.append(lambda action=action: self._event(action))
                        world.park()

        def hook(original: Callable[..., Any], *a: Any, **k: Any) -> Any:
            check("enter", a, k)
            ret = original(*a, **k)
            check("leave", a, k, ret)
            return ret

        return hook

    def _event(self, action: Callable[[Host], Any]) -> None:
        assert self.host is not None
        failed = len(self.errors)
        self._guard("host event", action, self.host)
        if len(self.errors) > failed:  # a failed event or do() step ends the run
            raise _StopRun(self.errors[-1])

    def _install(self) -> None:
        points: dict[int, tuple[types.FunctionType, list[Point]]] = {}
        wanted = [st.until for st in self.sc._steps if st.kind == "run" and st.until is not None]
        wanted += [p for p, _a in self.sc._at]
        for p in wanted:
            for f in _resolve(p.function):
                points.setdefault(id(f), (f, []))[1].append(p)
        # a point hook reads its function's signature (for where()) before any hook has
        # swapped the function's code; it is added last, so it runs first (outermost)
        point_hooks = [(f, self._point_hook(f, ps)) for f, ps in points.values()]
        for name, fn in self.sc._hooks:
            for f in _resolve(name):
                self.handles.append(add_hook(f, self._user_hook(name, fn)))
        for f, hook in point_hooks:
            self.handles.append(add_hook(f, hook))

    def _user_hook(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def hook(original: Callable[..., Any], *a: Any, **k: Any) -> Any:
            try:
                return fn(original, *a, **k)
            except (_StopRun, GeneratorExit):
                raise
            except Exception as e:
                if type(e).__module__.startswith("snpsim.") and not isinstance(e, ScenarioError):
                    raise  # the model's own control flow (GuestStop, QemuExit...)
                self.errors.append(f"hook on {name} raised {type(e).__name__}: {e}")
                raise _StopRun(str(e)) from e

        return hook

    def _driver(self) -> None:
        assert self.system is not None
        world = self.system.platform.world
        held: set[int] = set()
        for st in self.sc._steps:
            if st.kind == "do":
                assert st.action is not None
                self._event(st.action)
                continue
            assert st.vcpu is not None
            held.discard(st.vcpu)
            if st.until is None:
                continue
            if not world.thread_alive(st.vcpu):
                self.errors.append(f"schedule: vCPU {st.vcpu}'s thread has ended; "
                                   f"{st.until} cannot be reached")
                return
            self.target, self.reached = st.until, False
            try:
                world.run_until(held, lambda: self.reached)
            finally:
                self.target = None
            if not self.reached:
                self.errors.append(f"schedule: {st.until} was never reached "
                                   "(every other thread ended or waits)")
                return
            held.add(st.vcpu)

    def _before_run(self) -> None:
        assert self.system is not None
        self.host = Host(self.system)
        for fn in self.sc._setup:
            self._guard("setup", fn, self.host)

    def go(self, observer: RunObserver | None, trace: Any, trace_clock: str = "modelled") -> Result:
        sc = self.sc
        sc.data.clear()
        self.system = system = sc.build()
        bsp = sc._workloads.get(0)
        aps = {v: self._workload(f) for v, f in sc._workloads.items() if v != 0}
        recorder = None
        if trace is True:
            recorder = Recorder()
        elif trace is not None and trace is not False:
            recorder = trace  # a tracer, even an empty Recorder (its len() is 0)
        try:
            self._install()
            # host events need the scheduler even with one vCPU and no schedule
            driver = self._driver if sc._steps or sc._at else None
            if recorder is not None:
                stamp = system.clock.now_ns if trace_clock == "modelled" else None
                with tracing(recorder, clock=stamp):
                    outcome = self._run(system, bsp, aps, observer, driver)
            else:
                outcome = self._run(system, bsp, aps, observer, driver)
        finally:
            for h in reversed(self.handles):
                remove_hook(h)
        if self.host is None:  # the VM was never built (QEMU exited)
            self.host = Host(system)
        for fn in sc._after:
            self._guard("after", fn, self.host)
        events = list(recorder.events) if isinstance(recorder, Recorder) else []
        return Result(sc.name, outcome, sc.data, self.errors, self.host, sc.config(), events,
                      system)

    def _run(self, system: SnpSystem, bsp: Callable[[Guest], Any] | None,
             aps: dict[int, Callable[[Any, Any], Any]], observer: RunObserver | None,
             driver: Callable[[], None] | None) -> RunOutcome:
        try:
            return system.run(self._workload(bsp) if bsp is not None else None, observer,
                              ap_workloads=aps, driver=driver, before_run=self._before_run)
        except _StopRun:
            return _stopped_outcome(system)
        except Livelock as lock:  # host code of a do() step or event could not progress
            from snpsim.vmm.machine import RunResult

            return RunOutcome(RunResult("livelock", "paused", livelock=lock))


class _StopRun(Exception):
    """A user hook failed: the run ends (model-only)."""


def _stopped_outcome(system: SnpSystem) -> RunOutcome:
    from snpsim.vmm.machine import RunResult

    return RunOutcome(RunResult("stopped", "paused", errors=["scenario code failed"]))


#: Reads and writes a workload may make through :class:`Guest` in a row without a VM exit
#: before the run ends as a livelock (a Python loop the host never sees; at ~5 us an
#: access, about a minute).
MAX_ACCESSES_WITHOUT_EXIT = 10_000_000

#: How long (seconds) :func:`load_scenario_file` lets a file run before it gives up.
LOAD_SECONDS = 60.0


def load_scenario_file(path: str) -> Scenario:
    """Run the Python file ``path`` and return the :class:`Scenario` it defines as the
    module-level name ``scenario``.  Raises ScenarioError (no such name, not a
    Scenario) or the file's own exception (SyntaxError, ImportError...).  A file that
    does not finish loading within :data:`LOAD_SECONDS` seconds (a loop at module level)
    is a ScenarioError too, when loaded on the main thread (a POSIX interval timer)."""
    import runpy
    import signal
    import threading

    timed = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not timed:
        ns = runpy.run_path(path, run_name="__snpsim_scenario__")
    else:
        def too_long(signum: int, frame: Any) -> None:
            raise ScenarioError(f"{path} did not finish loading within {LOAD_SECONDS:g} s "
                                "(a loop at module level?)")

        before = signal.signal(signal.SIGALRM, too_long)
        signal.setitimer(signal.ITIMER_REAL, LOAD_SECONDS)
        try:
            ns = runpy.run_path(path, run_name="__snpsim_scenario__")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, before)
    sc = ns.get("scenario")
    if not isinstance(sc, Scenario):
        raise ScenarioError(f"{path} defines no 'scenario = Scenario(...)' at module level")
    return sc

