# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Recording: the tracer in force, the ``traced`` decorator, filters.

Model-only (no kernel twin).  Every layer imports this module; it imports only the
standard library and ``snpsim.spec``.

The tracer in force is a module global, not a ``contextvars.ContextVar``: guest and host
contexts are greenlets that switch into each other, and one recording must see all of
them.  The platform (``hw/world.py``) tells the recorder which context is running through
``set_context_resolver``.

Cost when off
-------------
The default tracer is ``NullTracer``.  While it is installed a ``traced`` function is
exactly the function that was decorated: ``traced`` returns it unchanged (with a
``__snpsim_traced__`` attribute) and records it in a registry, so a call costs nothing
extra.  Installing a tracer (``set_tracer`` with anything but a ``NullTracer``) arms
every registered function in place: its ``__code__`` becomes a small trampoline that
calls the recording wrapper, which calls a copy of the original function; turning
tracing off restores the original code.  Because the function object itself changes,
every reference to it -- module globals, names imported elsewhere, class attributes,
bound methods, override and profile tables -- records while tracing is on, with no
list of places to patch.  The trampoline's frame belongs to this file and is named
``wrapper``, like the recording wrapper's (``kernel_caller`` skips both).
``emit_instant`` and ``emit_switch`` test the module global ``_active`` first.  Callers
that would compute expensive arguments for ``emit_instant`` should test
``is_tracing()`` first.  See ``benchmarks/bench_trace.py``.

Filters
-------
``TraceFilter`` keeps an event when it passes every criterion that is set (AND):

- ``parties``: the event's party is in the set;
- ``funcs``: the event's name matches one of the ``fnmatch`` globs (case-sensitive);
- ``gpa_ranges``: one of the event's GPA-valued arguments falls in one of the
  half-open ranges ``[start, end)``.  GPA-valued arguments are, precisely: ints (not
  bools) whose argument name is ``gpa``, ``start`` or ends in ``_gpa``; and GFN-valued
  ints whose name is ``gfn`` or ends in ``_gfn``, which match when their 4 KiB page
  ``[gfn << 12, (gfn << 12) + 4096)`` overlaps a range.  Other addresses (GVAs, SPAs,
  PFNs) never match: they are in other address spaces.

``Switch`` events have no party, name or arguments and are always kept (exporters need
them to nest host frames under the guest's exit).  A ``Leave`` is kept exactly when
``Recorder`` kept its ``Enter`` (the recorder tracks this per context), so the kept
events stay balanced; a ``Leave`` whose ``Enter`` was not seen is judged on party and
name only.

Filter strings (``parse_filter``): clauses separated by ``;``, each ``key=v1,v2,...``::

    party=guest,kvm;func=snp_*,vmgexit_*;gpa=0x100000-0x200000

``party`` takes party names (``guest``, ``cpu``, ``kvm``, ``vmm``); ``func`` takes
globs; ``gpa`` takes ranges ``START-END`` (END exclusive) or single addresses ``ADDR``
(meaning ``[ADDR, ADDR+1)``), in any base ``int(x, 0)`` accepts.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import itertools
import re
import time
import types
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar, runtime_checkable

from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE

from .events import (
    PARTIES,
    ArgValue,
    Enter,
    Instant,
    Leave,
    Switch,
    TraceEvent,
    to_arg_value,
)

__all__ = [
    "Tracer",
    "NullTracer",
    "Recorder",
    "TraceFilter",
    "parse_filter",
    "set_tracer",
    "get_tracer",
    "is_tracing",
    "tracing",
    "set_context_resolver",
    "current_ctx",
    "traced",
    "emit_instant",
    "emit_switch",
    "HookHandle",
    "hookable",
    "add_hook",
    "remove_hook",
    "registered_functions",
]


@runtime_checkable
class Tracer(Protocol):
    """Anything that receives trace events, one at a time, in the order they happen."""

    def record(self, event: TraceEvent) -> None:
        """Receive one event.  Must not raise for any well-formed event."""
        ...


class NullTracer:
    """The default tracer: discards everything.  Installing it turns tracing off."""

    def record(self, event: TraceEvent) -> None:
        """Discard ``event``."""


# ---------------------------------------------------------------------------------------
# Filters


_GPA_NAME = re.compile(r"^(gpa|start|.*_gpa)$")
_GFN_NAME = re.compile(r"^(gfn|.*_gfn)$")


@dataclass(frozen=True)
class TraceFilter:
    """Which events to keep; ``None`` for a criterion means "any" (see the module doc).

    ``gpa_ranges`` holds half-open ``(start, end)`` GPA ranges in bytes.
    """

    parties: frozenset[str] | None = None
    funcs: tuple[str, ...] | None = None
    gpa_ranges: tuple[tuple[int, int], ...] | None = None

    def __call__(self, event: TraceEvent) -> bool:
        """Whether ``event`` passes every criterion that is set."""
        if isinstance(event, Switch):
            return True
        if self.parties is not None and event.party not in self.parties:
            return False
        if self.funcs is not None and not any(
            fnmatch.fnmatchcase(event.name, pat) for pat in self.funcs
        ):
            return False
        if self.gpa_ranges is not None:
            if isinstance(event, Leave):
                return True  # no arguments: judged with its Enter (see Recorder)
            return self.matches_gpa(event.args)
        return True

    def matches_gpa(self, args: Any) -> bool:
        """Whether one GPA-valued argument in ``args`` falls in ``gpa_ranges``."""
        ranges = self.gpa_ranges or ()
        for key, value in args.items():
            if not isinstance(value, int) or isinstance(value, bool):
                continue
            if _GPA_NAME.match(key):
                lo, hi = value, value + 1
            elif _GFN_NAME.match(key):
                lo = value << PAGE_SHIFT
                hi = lo + PAGE_SIZE
            else:
                continue
            for start, end in ranges:
                if lo < end and start < hi:
                    return True
        return False


_FILTER_KEYS = ("party", "func", "gpa")


def _parse_int(text: str, clause: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(
            f"trace filter: bad address {text!r} in {clause!r} (use e.g. 0x100000)"
        ) from None


def parse_filter(spec: str) -> TraceFilter:
    """Parse a ``--trace-filter`` string such as ``party=guest,kvm;func=snp_*;gpa=0x0-0x1000``.

    An empty string gives a filter that keeps everything.  Raises ``ValueError`` naming
    the offending clause for: a clause without ``=``, an unknown key, a key given twice,
    an empty value, an unknown party, an address that is not an integer, or a range
    whose end is not above its start.
    """
    parties: frozenset[str] | None = None
    funcs: tuple[str, ...] | None = None
    ranges: tuple[tuple[int, int], ...] | None = None
    seen: set[str] = set()
    for raw in spec.split(";"):
        clause = raw.strip()
        if not clause:
            continue
        key, eq, value = clause.partition("=")
        key = key.strip()
        if not eq:
            raise ValueError(
                f"trace filter: clause {clause!r} has no '=' (expected key=value; "
                f"keys: {', '.join(_FILTER_KEYS)})"
            )
        if key not in _FILTER_KEYS:
            raise ValueError(
                f"trace filter: unknown key {key!r} in {clause!r} (keys: {', '.join(_FILTER_KEYS)})"
            )
        if key in seen:
            raise ValueError(f"trace filter: key {key!r} given twice")
        seen.add(key)
        items = [v.strip() for v in value.split(",")]
        if not any(items) or not all(items):
            raise ValueError(f"trace filter: empty value in {clause!r}")
        if key == "party":
            bad = [p for p in items if p not in PARTIES]
            if bad:
                raise ValueError(
                    f"trace filter: unknown party {bad[0]!r} in {clause!r} "
                    f"(parties: {', '.join(PARTIES)})"
                )
            parties = frozenset(items)
        elif key == "func":
            funcs = tuple(items)
        else:
            out = []
            for item in items:
                lo_text, dash, hi_text = item.partition("-")
                lo = _parse_int(lo_text.strip(), clause)
                hi = _parse_int(hi_text.strip(), clause) if dash else lo + 1
                if lo < 0 or hi <= lo:
                    raise ValueError(
                        f"trace filter: empty or negative range {item!r} in {clause!r} "
                        "(START-END, END exclusive and above START)"
                    )
                out.append((lo, hi))
            ranges = tuple(out)
    return TraceFilter(parties=parties, funcs=funcs, gpa_ranges=ranges)


# ---------------------------------------------------------------------------------------
# Recorder


class Recorder:
    """Keeps events in ``events``, optionally filtered and capped.

    ``filter`` is a ``TraceFilter`` or any predicate on events; ``max_events`` caps the
    number kept (``None``: no cap).  ``filtered`` counts events the filter rejected,
    ``dropped`` counts events lost to the cap.  A ``Leave`` follows its ``Enter``: it is
    kept, filtered or dropped as its ``Enter`` was, so the kept events stay balanced per
    context.  Consequently the cap can be exceeded by the ``Leave`` events of frames
    that were open when it was reached (at most the stack depth of each context), so
    every kept frame is closed.  Raises ``ValueError`` for a negative ``max_events``.
    """

    def __init__(
        self,
        filter: Callable[[TraceEvent], bool] | None = None,
        max_events: int | None = None,
    ) -> None:
        if max_events is not None and max_events < 0:
            raise ValueError(f"max_events must be >= 0, not {max_events}")
        self.events: list[TraceEvent] = []
        self.filter = filter
        self.max_events = max_events
        self.filtered = 0
        self.dropped = 0
        # per context: for each open frame, 0 kept, 1 filtered, 2 dropped
        self._open: dict[str, list[int]] = {}

    def record(self, event: TraceEvent) -> None:
        """Keep ``event`` unless the filter rejects it or the cap is reached."""
        if isinstance(event, Leave):
            stack = self._open.get(event.ctx)
            verdict = stack.pop() if stack else self._judge(event)
        else:
            verdict = self._judge(event)
            if isinstance(event, Enter):
                self._open.setdefault(event.ctx, []).append(verdict)
        if verdict == 0:
            self.events.append(event)
        elif verdict == 1:
            self.filtered += 1
        else:
            self.dropped += 1

    def _judge(self, event: TraceEvent) -> int:
        if self.filter is not None and not self.filter(event):
            return 1
        if self.max_events is not None and len(self.events) >= self.max_events:
            return 2
        return 0

    def clear(self) -> None:
        """Forget all events and counters."""
        self.events.clear()
        self._open.clear()
        self.filtered = self.dropped = 0

    def __len__(self) -> int:
        """Number of events kept."""
        return len(self.events)

    def __iter__(self) -> Iterator[TraceEvent]:
        """The events kept, in order."""
        return iter(self.events)


# ---------------------------------------------------------------------------------------
# The tracer in force, the clock, the context resolver

_null = NullTracer()
_tracer: Tracer = _null
_active: Tracer | None = None  # None while the NullTracer is installed: the fast path
_seq: Iterator[int] = itertools.count()
_clock: Callable[[], int] = time.perf_counter_ns
_t0 = 0


def _default_ctx() -> str:
    return "host0"


_resolver: Callable[[], str] = _default_ctx


def set_tracer(tracer: Tracer | None, *, clock: Callable[[], int] | None = None) -> Tracer:
    """Install ``tracer`` (``None`` = ``NullTracer``) and return the one it replaces.

    Installing restarts ``seq`` at 0 and ``ts_ns`` at 0.  ``clock`` returns nanoseconds
    (default ``time.perf_counter_ns``); pass a deterministic one for golden traces.
    """
    global _tracer, _active, _seq, _clock, _t0
    previous = _tracer
    _tracer = tracer if tracer is not None else _null
    _active = None if isinstance(_tracer, NullTracer) else _tracer
    _arm(_active is not None)
    _seq = itertools.count()
    _clock = clock if clock is not None else time.perf_counter_ns
    _t0 = _clock()
    return previous


def get_tracer() -> Tracer:
    """The tracer in force (a ``NullTracer`` when tracing is off)."""
    return _tracer


def is_tracing() -> bool:
    """Whether a tracer other than ``NullTracer`` is installed."""
    return _active is not None


@contextmanager
def tracing(
    tracer: Tracer | None = None, *, clock: Callable[[], int] | None = None
) -> Iterator[Tracer]:
    """Install ``tracer`` (default: a new ``Recorder``) for the ``with`` block, then restore.

    Yields the installed tracer.  See ``set_tracer`` for ``clock``.
    """
    t = tracer if tracer is not None else Recorder()
    previous = set_tracer(t, clock=clock)
    try:
        yield t
    finally:
        set_tracer(previous)


def set_context_resolver(fn: Callable[[], str] | None) -> Callable[[], str]:
    """Register the function that names the running context; return the previous one.

    The platform (``hw/world.py``) registers one returning ``"vcpu0"``, ``"host0"``...;
    ``None`` restores the default, which always returns ``"host0"``.
    """
    global _resolver
    previous = _resolver
    _resolver = fn if fn is not None else _default_ctx
    return previous


def current_ctx() -> str:
    """The running context's id, from the registered resolver."""
    return _resolver()


def _stamp() -> tuple[int, int]:
    return next(_seq), _clock() - _t0


# ---------------------------------------------------------------------------------------
# Arming: swapping the recording trampoline into traced functions while a tracer is in
# force (see "Cost when off" in the module docstring)

_W = "__snpsim_trace_wrapper__"  # keyword-only parameter of the trampoline


@dataclass(eq=False)
class _Armable:
    """One traced function's original code and keyword defaults, and the trampoline
    code and keyword defaults that route calls to its recording wrapper."""

    code: types.CodeType
    kwdefaults: dict[str, Any] | None
    tramp: types.CodeType
    tramp_kwdefaults: dict[str, Any]
    token: int = 0


# Traced functions, held weakly: a function traced at run time (a closure decorated per
# call) leaves the registry when it is garbage, so the registry does not grow with calls.
_registry: weakref.WeakKeyDictionary[types.FunctionType, _Armable] = weakref.WeakKeyDictionary()
_armed = False
# Hooks in force (see ``add_hook``), per registered function's token, outermost first.
_hooks: dict[int, list[Callable[..., Any]]] = {}
_tokens: Iterator[int] = itertools.count(1)


def _trampoline_code(freevars: tuple[str, ...]) -> types.CodeType:
    """Code of ``wrapper(*args, <_W>, **kwargs)`` that calls ``<_W>(*args, **kwargs)`` and
    has exactly the free variables ``freevars`` (a function's code may only be replaced
    by code with the same free variables; they are loaded and ignored)."""
    names = ", ".join(freevars)
    lines = ["def _outer():"]
    if freevars:
        lines.append(f"    {names} = {', '.join(['None'] * len(freevars))}")
    lines.append(f"    def wrapper(*args, {_W}, **kwargs):")
    if freevars:
        lines.append(f"        ({names},)")
    lines.append(f"        return {_W}(*args, **kwargs)")
    lines.append("    return wrapper")
    ns: dict[str, Any] = {}
    exec(compile("\n".join(lines), __file__, "exec"), ns)  # noqa: S102 - fixed template
    code = ns["_outer"]().__code__
    assert code.co_freevars == freevars
    return code


def _arm_one(fn: types.FunctionType, a: _Armable, on: bool) -> None:
    if on:
        fn.__code__ = a.tramp
        fn.__kwdefaults__ = a.tramp_kwdefaults
    else:
        fn.__code__ = a.code
        fn.__kwdefaults__ = a.kwdefaults


def _arm(on: bool) -> None:
    """Arm (``on``) or disarm every traced function; idempotent.  A hooked function
    stays armed while tracing is off (its hooks need the trampoline)."""
    global _armed
    if on == _armed:
        return
    for fn, a in list(_registry.items()):
        _arm_one(fn, a, on or a.token in _hooks)
    _armed = on


# ---------------------------------------------------------------------------------------
# Hooks: replacing or wrapping a modelled function wherever it is called from


@dataclass(eq=False)
class HookHandle:
    """What ``add_hook`` returns; give it to ``remove_hook``."""

    function: types.FunctionType
    hook: Callable[..., Any]


def hookable(fn: types.FunctionType) -> types.FunctionType:
    """Register the plain function ``fn`` for hooking if it is not registered yet (a
    ``traced`` function already is); returns ``fn``.  A function registered here is not
    recorded by the tracer (only ``traced`` ones are).  Raises TypeError for anything
    but a plain Python function."""
    if not isinstance(fn, types.FunctionType):
        raise TypeError(f"only plain Python functions can be hooked, not {type(fn).__name__}")
    if fn not in _registry:
        _register(fn, None, fn.__name__, frozenset())
    return fn


def add_hook(fn: types.FunctionType, hook: Callable[..., Any]) -> HookHandle:
    """Route every call of ``fn`` through ``hook(original, *args, **kwargs)``, whose
    result is the call's result; ``original`` calls the next hook in, then the function's
    own code.  The hook added last runs first.  Works for every reference to ``fn``
    (module globals, imported names, profile tables, bound methods), because ``fn``'s
    code is swapped for the trampoline, as for tracing.  Raises TypeError as
    ``hookable``.  Model-only (no kernel twin)."""
    hookable(fn)
    a = _registry[fn]
    _hooks.setdefault(a.token, []).insert(0, hook)
    _arm_one(fn, a, True)
    return HookHandle(fn, hook)


def remove_hook(handle: HookHandle) -> None:
    """Undo one ``add_hook`` (a handle already removed is ignored)."""
    a = _registry.get(handle.function)
    if a is None:
        return
    chain = _hooks.get(a.token, [])
    for i, h in enumerate(chain):
        if h is handle.hook:
            del chain[i]
            break
    if not chain:
        _hooks.pop(a.token, None)
        _arm_one(handle.function, a, _armed)


def registered_functions() -> list[types.FunctionType]:
    """Every function registered for tracing or hooking (live ones only)."""
    return list(_registry.keys())


def _chain(fn: Callable[..., Any], token: int) -> Callable[..., Any]:
    """The callable a call of a hooked function runs: its hooks around ``fn``."""
    call = fn
    for h in reversed(_hooks[token]):
        call = functools.partial(h, call)
    return call


# ---------------------------------------------------------------------------------------
# Emitting

P = ParamSpec("P")
R = TypeVar("R")

_BIND_FAILED = object()
# values that are plain data for the "skip the first parameter" rule
_PLAIN = (type(None), bool, int, float, str, bytes, bytearray, memoryview, tuple, list)


def traced(
    party: str, name: str | None = None, *, skip: Iterable[str] = ()
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a modelled function so that calls are recorded as ``Enter``/``Leave``.

    ``party`` is whose code it is (one of ``PARTIES``); ``name`` defaults to the
    function's ``__name__`` (module-level kernel names such as ``__set_pages_state``
    work as they are).  ``Enter.args`` holds the bound arguments in signature order,
    defaults applied, converted by ``to_arg_value(..., objects="type")``; omitted are
    the names in ``skip``, and the first parameter when its value is not plain data
    (the C context argument ``vcpu``, ``svm``, ``kvm``... of STYLE 2.1, or ``self``).
    ``**kwargs`` are recorded one by one.  ``Leave.result`` is the converted return
    value, or ``"raised <ExcName>"`` when the call raises; the exception propagates.

    Returns the decorated function itself (a copy when it is already traced under
    another name): with tracing off a call costs nothing extra; while a tracer is
    installed the function is armed (see the module docstring).  Only plain Python
    functions can be traced.  Raises ``ValueError`` at decoration time for an unknown
    party.
    """
    if party not in PARTIES:
        raise ValueError(f"traced: unknown party {party!r} (parties: {', '.join(PARTIES)})")
    skipped = frozenset(skip)

    def decorate(target: Callable[P, R]) -> Callable[P, R]:
        assert isinstance(target, types.FunctionType), "traced: a plain function is needed"
        return _register(target, party, name, skipped)  # type: ignore[return-value]

    return decorate


def _register(target: types.FunctionType, party: str | None, name: str | None,
              skipped: frozenset[str]) -> types.FunctionType:
    """Put ``target`` in the registry (recorded as ``party``'s ``name``; ``party`` None:
    never recorded, hooks only) and return it, or a copy when it is already traced."""
    code = target.__code__
    kwdefaults = target.__kwdefaults__
    a = _registry.get(target)
    if a is not None:  # traced twice: trace a copy under the new name
        code, kwdefaults = a.code, a.kwdefaults
        copy = types.FunctionType(code, target.__globals__, target.__name__,
                                  target.__defaults__, target.__closure__)
        copy.__kwdefaults__ = None if kwdefaults is None else dict(kwdefaults)
        copy.__dict__.update(target.__dict__)
        copy.__qualname__ = target.__qualname__
        target = copy
    # ``fn`` runs the original code whatever ``target`` is armed with.
    fn = types.FunctionType(code, target.__globals__, target.__name__,
                            target.__defaults__, target.__closure__)
    fn.__kwdefaults__ = None if kwdefaults is None else dict(kwdefaults)
    fn.__qualname__ = target.__qualname__
    fn.__dict__.update(target.__dict__)  # ``__wrapped__`` of an inner decorator: its signature
    fname = name if name is not None else fn.__name__
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    kinds = {p.kind for p in params}
    simple = not kinds & {
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_ONLY,
    }
    names = [p.name for p in params]
    nameset = frozenset(names)
    defaults = [p.default for p in params]
    first = (
        names[0]
        if params
        and params[0].kind != inspect.Parameter.VAR_POSITIONAL
        and params[0].kind != inspect.Parameter.VAR_KEYWORD
        else None
    )
    var_kw = next((p.name for p in params if p.kind == inspect.Parameter.VAR_KEYWORD), None)
    empty = inspect.Parameter.empty

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | object:
        if simple and len(args) <= len(names) and kwargs.keys() <= nameset:
            bound: dict[str, Any] = {}
            n = len(args)
            for i, pname in enumerate(names):
                if i < n:
                    bound[pname] = args[i]
                elif pname in kwargs:
                    bound[pname] = kwargs[pname]
                elif defaults[i] is not empty:
                    bound[pname] = defaults[i]
                else:
                    return _BIND_FAILED
            if n and any(pname in kwargs for pname in names[:n]):
                return _BIND_FAILED
            return bound
        try:
            ba = sig.bind(*args, **kwargs)
        except TypeError:
            return _BIND_FAILED
        ba.apply_defaults()
        out = dict(ba.arguments)
        if var_kw is not None and var_kw in out:
            extra = out.pop(var_kw)
            out.update(extra)
        return out

    def convert(bound: dict[str, Any]) -> dict[str, ArgValue]:
        out: dict[str, ArgValue] = {}
        for key, value in bound.items():
            if key in skipped:
                continue
            if key == first and not isinstance(value, _PLAIN):
                continue
            out[key] = to_arg_value(value, objects="type")
        return out

    token = next(_tokens)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = fn if token not in _hooks else _chain(fn, token)
        tracer = _active
        if tracer is None or party is None:  # hooked only, or a tracer removed mid-call
            return call(*args, **kwargs)
        bound = bind(args, kwargs)
        if bound is _BIND_FAILED:
            return call(*args, **kwargs)  # let Python raise its own TypeError
        ctx = _resolver()
        seq, ts = _stamp()
        tracer.record(Enter(seq, ts, ctx, party, fname, convert(bound)))  # type: ignore[arg-type]
        try:
            result = call(*args, **kwargs)
        except BaseException as exc:
            tracer = _active
            if tracer is not None:
                seq, ts = _stamp()
                tracer.record(Leave(seq, ts, ctx, party, fname, f"raised {type(exc).__name__}"))
            raise
        tracer = _active
        if tracer is not None:
            seq, ts = _stamp()
            tracer.record(
                Leave(seq, ts, ctx, party, fname, to_arg_value(result, objects="type"))
            )
        return result

    if party is not None:
        target.__snpsim_traced__ = (party, fname)  # type: ignore[attr-defined]
    armable = _Armable(code, kwdefaults, _trampoline_code(code.co_freevars), {_W: wrapper},
                       token)
    _registry[target] = armable
    if _armed:
        _arm_one(target, armable, True)
    return target


def emit_instant(party: str, name: str, /, **args: object) -> None:
    """Record a point event ``name`` of ``party`` in the running context.

    ``args`` are converted with ``to_arg_value`` (``repr`` for objects).  Does nothing
    when tracing is off.
    """
    tracer = _active
    if tracer is None:
        return
    converted = {k: to_arg_value(v) for k, v in args.items()}
    seq, ts = _stamp()
    tracer.record(Instant(seq, ts, _resolver(), party, name, converted))


def emit_switch(from_ctx: str, to_ctx: str, reason: str) -> None:
    """Record a world switch from ``from_ctx`` to ``to_ctx``; call it just before switching.

    ``reason`` is what caused it: ``"VMRUN"`` (entering a guest context), or the exit
    (``"VMGEXIT"``, ``"VMMCALL"``, ``"NPF"``, ...).  Does nothing when tracing is off.
    """
    tracer = _active
    if tracer is None:
        return
    seq, ts = _stamp()
    tracer.record(Switch(seq, ts, from_ctx, to_ctx, reason))
