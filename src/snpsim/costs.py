# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Modelled time: the cost table and the virtual clock (docs/costs.md).

Model-only (no kernel twin).  Two clocks run during a :meth:`snpsim.system.SnpSystem.run`:
the simulator's wall time (how long Python took) and the modelled time kept here, what the
same work would take on an SNP machine, from a documented table of per-operation costs
(``snpsim/data/costs.toml``).

The cost table
--------------
:func:`load_costs` reads the packaged table, or a user's table merged onto it (``snpsim
run --costs FILE``).  Each kind of operation (:data:`COST_KINDS`) has a value, a unit
(cycles or ns), a plausible range ``low..high``, what one unit of it is, and a source.
``[clock] cpu_ghz`` converts between cycles and seconds.  A bad table raises
:class:`CostTableError` with one line naming the key.

The clock
---------
:class:`ModelClock` keeps one timestamp per *lane*: one per vCPU (its guest context and
the VMM thread that runs it, as on a real machine where the vCPU thread does the guest's
work, KVM's exit handling and the VMM's) and one for the host (the VMM's main thread:
building and launching the VM, host events of a scenario).  A charge adds ``n`` units of a
kind's cost to the running lane: an index into a few lists of integers, no object per
call.  Times are held in integer milli-cycles, so per-byte costs stay exact and
``sum over kinds == total`` holds to the last unit.

The clock is attached to points the platform already counts at -- it wraps, per
instance, the platform's ``count`` (``#NPF``, ``#VC``, ``VMGEXIT``, ``RMPUPDATE``...),
the world switch (each guest entry is one VMRUN/#VMEXIT round trip), the host's reads and
writes by SPA, KVM's syscall surface (``ioctl``, ``fallocate``), the host page allocator,
and each vCPU's guest port (PVALIDATE by page size, loads, stores, page touches, the PSC
entries a VMGEXIT hands over) -- so no modelled function changes.

Waiting: :meth:`ModelClock.acquire` / :meth:`ModelClock.release` model a sleeping lock
held across a modelled section.  The lock remembers when (in modelled time) it was held;
a lane that asks for it inside another lane's hold waits to its end (charged as ``wait
<lock>``).  Modelled locks: ``kvm->slots_lock`` around
``KVM_SET_MEMORY_ATTRIBUTES`` (``kvm_vm_set_mem_attributes`` holds it for the whole
update, virt/kvm/kvm_main.c v6.8+) and the guest_memfd mapping's
``filemap_invalidate_lock`` around ``fallocate(PUNCH_HOLE)`` (``kvm_gmem_punch_hole``).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import math
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from greenlet import getcurrent

from snpsim.hw.cpu import Tlb
from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC
from snpsim.spec.falloc import FALLOC_FL_PUNCH_HOLE
from snpsim.spec.ghcb import GHCB_FIELDS, GHCB_SHARED_BUF_OFFSET
from snpsim.spec.kvm_uapi import KVM_RUN, KVM_SET_MEMORY_ATTRIBUTES
from snpsim.spec.msr_protocol import GHCB_MSR_INFO_MASK, GHCB_MSR_PSC_REQ
from snpsim.spec.psc import VMGEXIT_PSC_MAX_COUNT
from snpsim.spec.units import PAGE_SHIFT

__all__ = [
    "COST_KINDS",
    "WAIT_KINDS",
    "CostEntry",
    "CostTable",
    "CostTableError",
    "ModelClock",
    "load_costs",
    "default_costs",
    "use_costs",
    "current_costs",
    "attach_platform",
    "attach_kvm",
    "attach_vcpu",
    "kind_index",
    "modelled_trace_clock",
]

#: Every kind of operation the clock charges, in the table's order.
COST_KINDS: tuple[str, ...] = (
    "vmrun_vmexit", "kvm_run_ioctl", "syscall", "vmgexit_handling", "npf_handling",
    "vc_exception", "page_walk", "psc_entry", "set_memory_attributes_page", "page_alloc", "clear_page",
    "punch_hole_page", "host_copy_byte", "guest_copy_byte", "guest_touch", "rmpupdate",
    "psmash", "pvalidate_4k", "pvalidate_2m", "rmpadjust", "invlpg", "tlb_flush", "clflush",
    "wbinvd", "fw_launch_update", "fw_guest_request", "fw_page_reclaim", "fw_decommission",
)
#: Locks the clock serialises on; waiting on one is charged as ``wait <lock>``.
WAIT_KINDS: tuple[str, ...] = ("wait slots_lock", "wait filemap_invalidate_lock")
_ALL_KINDS = COST_KINDS + WAIT_KINDS
_K = {name: i for i, name in enumerate(_ALL_KINDS)}
_UNITS = ("cycles", "ns")
_ENTRY_FIELDS = frozenset({"value", "unit", "low", "high", "per", "source"})
_ANCHOR_FIELDS = frozenset({"seconds", "low", "high", "what", "source"})
#: Internal time unit: 1/1000 of a cycle.
_MILLI = 1000

#: The platform counter names (``Platform.count``) the clock charges, and their kind.
#: PVALIDATE is charged by the vCPU wrapper, which knows the page size.
PLATFORM_COUNTER_KINDS: dict[str, str] = {
    "#NPF": "npf_handling",
    "#VC": "vc_exception",
    "VMGEXIT": "vmgexit_handling",
    "RMPUPDATE": "rmpupdate",
    "PSMASH": "psmash",
    "RMPADJUST": "rmpadjust",
    "INVLPG": "invlpg",
    "TLB flush": "tlb_flush",
    "CLFLUSH": "clflush",
    "WBINVD": "wbinvd",
    "LAUNCH_UPDATE": "fw_launch_update",
    "LAUNCH_UPDATE_DATA": "fw_launch_update",
    "SNP_GUEST_REQUEST": "fw_guest_request",
    "SNP_PAGE_RECLAIM": "fw_page_reclaim",
    "SNP_DECOMMISSION": "fw_decommission",
}


class CostTableError(ValueError):
    """A cost table that cannot be used: the message is one line naming the key."""


@dataclass(frozen=True)
class CostEntry:
    """One row of the cost table: ``value``, ``low``, ``high`` (>= 0, low <= value <=
    high) in ``unit`` ("cycles" or "ns") per ``per``; ``source`` says where it comes
    from."""

    value: float
    unit: str
    low: float
    high: float
    per: str = ""
    source: str = ""


@dataclass(frozen=True)
class CostTable:
    """A complete cost table: ``cpu_ghz`` (cycles per nanosecond), one
    :class:`CostEntry` per kind of :data:`COST_KINDS`, the calibration ``anchors``
    (name -> dict with ``seconds``, ``low``, ``high``, ``what``, ``source``) and
    ``origin`` (``"default"`` or the user file's path)."""

    cpu_ghz: float
    entries: dict[str, CostEntry]
    anchors: dict[str, dict[str, Any]]
    origin: str = "default"

    def mcycles(self, kind: str) -> tuple[int, int, int]:
        """(value, low, high) of ``kind`` in integer milli-cycles per unit."""
        e = self.entries[kind]
        scale = _MILLI * (self.cpu_ghz if e.unit == "ns" else 1.0)
        return (round(e.value * scale), round(e.low * scale), round(e.high * scale))

    def seconds(self, mcycles: int) -> float:
        """Milli-cycles as seconds at ``cpu_ghz``."""
        return mcycles / (_MILLI * self.cpu_ghz * 1e9)

    def with_value(self, kind: str, value: float) -> CostTable:
        """A copy with ``kind``'s value (and range) scaled to ``value`` (tests, sweeps)."""
        e = self.entries[kind]
        k = value / e.value if e.value else 1.0
        new = CostEntry(value, e.unit, e.low * k, max(e.high * k, value), e.per, e.source)
        return CostTable(self.cpu_ghz, {**self.entries, kind: new}, self.anchors, self.origin)


def _number(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise CostTableError(f"{where}: must be a number, got {v!r}")
    if v < 0:
        raise CostTableError(f"{where}: must not be negative, got {v!r}")
    return float(v)


def _merge(base: CostTable | None, data: dict[str, Any], origin: str) -> CostTable:
    """Check ``data`` (a parsed TOML table) and merge it onto ``base`` (None: ``data``
    must be complete)."""
    for key in data:
        if key not in ("clock", "costs", "anchors"):
            raise CostTableError(f"unknown table [{key}] (known: clock, costs, anchors)")
    clock = data.get("clock", {})
    if not isinstance(clock, dict):
        raise CostTableError("[clock] must be a table")
    for key in clock:
        if key != "cpu_ghz":
            raise CostTableError(f"unknown key clock.{key} (known: cpu_ghz)")
    ghz = base.cpu_ghz if base is not None else None
    if "cpu_ghz" in clock:
        ghz = _number("clock.cpu_ghz", clock["cpu_ghz"])
        if ghz == 0:
            raise CostTableError("clock.cpu_ghz: must be above 0")
    if ghz is None:
        raise CostTableError("clock.cpu_ghz is missing")
    entries = dict(base.entries) if base is not None else {}
    costs = data.get("costs", {})
    if not isinstance(costs, dict):
        raise CostTableError("[costs] must be a table")
    for kind, row in costs.items():
        if kind not in COST_KINDS:
            raise CostTableError(f"unknown cost costs.{kind} (see docs/costs.md for the kinds)")
        if not isinstance(row, dict):
            raise CostTableError(f"costs.{kind} must be a table")
        for f in row:
            if f not in _ENTRY_FIELDS:
                raise CostTableError(f"unknown key costs.{kind}.{f} (known: {', '.join(sorted(_ENTRY_FIELDS))})")
        old = entries.get(kind)
        if "value" not in row and old is None:
            raise CostTableError(f"costs.{kind}.value is missing")
        unit = row.get("unit", old.unit if old is not None else None)
        if unit not in _UNITS:
            raise CostTableError(f"costs.{kind}.unit: must be 'cycles' or 'ns', got {unit!r}")
        value = _number(f"costs.{kind}.value", row["value"]) if "value" in row else old.value  # type: ignore[union-attr]
        changed = "value" in row or "unit" in row
        low = _number(f"costs.{kind}.low", row["low"]) if "low" in row else (
            value if changed or old is None else old.low)
        high = _number(f"costs.{kind}.high", row["high"]) if "high" in row else (
            value if changed or old is None else old.high)
        if not low <= value <= high:
            raise CostTableError(f"costs.{kind}: needs low <= value <= high, got {low} .. {value} .. {high}")
        for f in ("per", "source"):
            if f in row and not isinstance(row[f], str):
                raise CostTableError(f"costs.{kind}.{f}: must be a string")
        entries[kind] = CostEntry(value, unit, low, high,
                                  row.get("per", old.per if old is not None else ""),
                                  row.get("source", origin if old is not None else ""))
    missing = [k for k in COST_KINDS if k not in entries]
    if missing:
        raise CostTableError(f"costs.{missing[0]} is missing")
    anchors = dict(base.anchors) if base is not None else {}
    raw_anchors = data.get("anchors", {})
    if not isinstance(raw_anchors, dict):
        raise CostTableError("[anchors] must be a table")
    for name, row in raw_anchors.items():
        if not isinstance(row, dict):
            raise CostTableError(f"anchors.{name} must be a table")
        for f in row:
            if f not in _ANCHOR_FIELDS:
                raise CostTableError(f"unknown key anchors.{name}.{f}")
        for f in ("seconds", "low", "high"):
            _number(f"anchors.{name}.{f}", row.get(f))
        anchors[name] = dict(row)
    return CostTable(ghz, entries, anchors, origin)


_DEFAULT: CostTable | None = None


def default_costs() -> CostTable:
    """The packaged table (``snpsim/data/costs.toml``), parsed once."""
    global _DEFAULT
    if _DEFAULT is None:
        text = resources.files("snpsim").joinpath("data/costs.toml").read_bytes()
        _DEFAULT = _merge(None, tomllib.loads(text.decode("utf-8")), "default")
    return _DEFAULT


def load_costs(path: str | Path | None = None) -> CostTable:
    """The packaged table, with the user's TOML table at ``path`` merged onto it (an
    entry it names replaces that entry's fields; a changed value or unit without its
    own ``low``/``high`` gets a zero-width range).  Raises :class:`CostTableError` (one
    line) for a file that cannot be read or parsed, an unknown table, kind or key, a
    unit other than cycles/ns, a negative number, or low > value > high."""
    base = default_costs()
    if path is None:
        return base
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CostTableError(f"{p}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CostTableError(f"{p}: not a TOML file: {exc}") from None
    try:
        return _merge(base, data, str(p))
    except CostTableError as exc:
        raise CostTableError(f"{p}: {exc}") from None


_IN_FORCE: list[CostTable] = []


@contextlib.contextmanager
def use_costs(table: CostTable) -> Iterator[CostTable]:
    """Within the block, systems built without an explicit table use ``table`` (the
    CLI's ``--costs``)."""
    _IN_FORCE.append(table)
    try:
        yield table
    finally:
        _IN_FORCE.pop()


def current_costs() -> CostTable:
    """The table in force: the innermost :func:`use_costs`, else the packaged one."""
    return _IN_FORCE[-1] if _IN_FORCE else default_costs()


#: Held intervals a modelled lock remembers (the oldest are dropped past this).
LOCK_INTERVALS = 4096


class _LockState:
    """A modelled lock: who holds it (lane, depth, since when) and the disjoint, sorted
    intervals ``[starts[i], ends[i])`` of modelled milli-cycles it was held in."""

    __slots__ = ("holder", "depth", "start", "starts", "ends")

    def __init__(self) -> None:
        self.holder: int | None = None
        self.depth = 0
        self.start = 0
        self.starts: list[int] = []
        self.ends: list[int] = []


class ModelClock:
    """Modelled time of one machine: a timestamp per lane (``vcpus`` vCPU lanes, then
    the host lane, index ``vcpus``), and what each kind of operation added.

    ``table``: the :class:`CostTable`; ``ctx_name``: returns the name of the running
    context (``vcpuN``, ``hostN``, anything else = the host lane), by default
    ``"host0"``; the platform's world supplies it (:func:`attach_platform`).  The main
    greenlet is charged to :attr:`main_lane` (the host lane until the VM runs; vCPU 0
    while a single vCPU runs on it).  All times are integer milli-cycles.
    """

    def __init__(self, table: CostTable, vcpus: int = 1,
                 ctx_name: Callable[[], str] | None = None) -> None:
        self.table = table
        self.vcpus = vcpus
        self.host_lane = vcpus
        self._lane_of: dict[Any, int] = {}
        g = getcurrent()
        while g.parent is not None:
            g = g.parent
        self._main = g
        self.main_lane = vcpus
        self.ctx_name = ctx_name or (lambda: "host0")
        n = len(_ALL_KINDS)
        costs = [table.mcycles(k) for k in COST_KINDS] + [(1, 1, 1)] * len(WAIT_KINDS)
        self._v = [c[0] for c in costs]
        self._lo = [c[1] for c in costs]
        self._hi = [c[2] for c in costs]
        #: Units charged per kind (for a wait kind: milli-cycles waited).
        self.units = [0] * n
        #: Waits per wait kind (how many acquisitions had to wait).
        self.waits = [0] * len(WAIT_KINDS)
        self.t = [0] * (vcpus + 1)
        self.t_lo = [0] * (vcpus + 1)
        self.t_hi = [0] * (vcpus + 1)
        #: Milli-cycles lanes were moved forward to the host's time at :meth:`start_vcpus`.
        self.synced = 0
        self._locks: dict[Any, _LockState] = {}
        global _LATEST
        _LATEST = self

    # -- lanes ---------------------------------------------------------------------------
    @property
    def main_lane(self) -> int:
        """The lane the main greenlet's work goes to."""
        return self._lane_of[self._main]

    @main_lane.setter
    def main_lane(self, lane: int) -> None:
        self._lane_of[self._main] = lane

    def lane(self) -> int:
        """The lane of the running context."""
        g = getcurrent()
        lane = self._lane_of.get(g)
        if lane is None:
            lane = self._resolve(g)
        return lane

    def _resolve(self, g: Any) -> int:
        if g.parent is None:  # another thread's main greenlet: the host's
            return self.host_lane
        name = self.ctx_name()
        lane = self.host_lane
        for prefix in ("vcpu", "host"):
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                i = int(name[len(prefix):])
                lane = i if i < self.vcpus else self.host_lane
        self._lane_of[g] = lane
        return lane

    def end_vcpus(self) -> None:
        """The vCPU threads stopped: the host lane moves up to the latest lane (the VMM's
        main thread goes on after it joined them)."""
        h = self.host_lane
        top, lo, hi = max(self.t), max(self.t_lo), max(self.t_hi)
        if self.t[h] < top:
            self.synced += top - self.t[h]
            self.t[h], self.t_lo[h], self.t_hi[h] = top, lo, hi

    def now_ns(self) -> int:
        """The running lane's modelled time in nanoseconds (trace timestamps)."""
        return int(self.t[self.lane()] / (_MILLI * self.table.cpu_ghz))

    def start_vcpus(self) -> None:
        """The vCPU threads start: every vCPU lane behind the host lane moves up to it
        (the VM runs after it was built and launched)."""
        h = self.host_lane
        for i in range(self.vcpus):
            if self.t[i] < self.t[h]:
                self.synced += self.t[h] - self.t[i]
                self.t[i], self.t_lo[i], self.t_hi[i] = self.t[h], self.t_lo[h], self.t_hi[h]

    # -- charging ------------------------------------------------------------------------
    def charge(self, kind: int, n: int = 1) -> None:
        """Add ``n`` units of kind index ``kind`` (``kind_index(name)``) to the running
        lane."""
        g = getcurrent()
        lane = self._lane_of.get(g)
        if lane is None:
            lane = self._resolve(g)
        self.units[kind] += n
        self.t[lane] += n * self._v[kind]
        self.t_lo[lane] += n * self._lo[kind]
        self.t_hi[lane] += n * self._hi[kind]

    def acquire(self, lock: str, key: Any = None) -> None:
        """Take the sleeping lock ``lock`` (one of ``slots_lock``,
        ``filemap_invalidate_lock``; ``key`` tells instances apart, e.g. the VM).

        The lock keeps the intervals of modelled time it was held in.  When the running
        lane's time falls inside one held by another lane, or the lock is held by
        another lane right now (its interval ends no earlier than the holder's current
        time), the lane waits to the interval's end, charged as ``wait <lock>``; at any
        other time it takes the lock at once, even if another lane held it later in
        modelled time (the scheduler may have run that lane ahead).  A hold that later
        grows into another lane's interval is not pushed back (model choice).  At most
        :data:`LOCK_INTERVALS` intervals are kept per lock, the oldest dropped."""
        lane = self.lane()
        st = self._locks.get((lock, key))
        if st is None:
            st = self._locks[(lock, key)] = _LockState()
        if st.holder == lane:
            st.depth += 1
            return
        t = now = self.t[lane]
        if st.holder is not None and st.start <= t:
            t = max(t, self.t[st.holder])
        starts, ends = st.starts, st.ends
        i = bisect.bisect_right(starts, t) - 1
        while 0 <= i < len(starts) and starts[i] <= t < ends[i]:
            t = ends[i]
            i += 1
        if t > now:
            w = t - now
            k = _K["wait " + lock]
            self.units[k] += w
            self.waits[k - len(COST_KINDS)] += 1
            self.t[lane] = t
            self.t_lo[lane] += w
            self.t_hi[lane] += w
        st.holder, st.depth, st.start = lane, 1, t

    def release(self, lock: str, key: Any = None) -> None:
        """Drop ``lock``: its interval ends at the holder's current time."""
        st = self._locks.get((lock, key))
        if st is None or st.holder is None:
            return
        st.depth -= 1
        if st.depth > 0:
            return
        start, end = st.start, self.t[st.holder]
        st.holder = None
        if end <= start:
            return
        starts, ends = st.starts, st.ends
        # Merge with the intervals it overlaps, so the list stays disjoint and sorted.
        i = bisect.bisect_left(starts, start)
        if i > 0 and ends[i - 1] >= start:
            i -= 1
            start = starts[i]
        j = i
        while j < len(starts) and starts[j] <= end:
            end = max(end, ends[j])
            j += 1
        starts[i:j] = [start]
        ends[i:j] = [end]
        if len(starts) > LOCK_INTERVALS:
            del starts[0], ends[0]

    # -- reading -------------------------------------------------------------------------
    def kind_mcycles(self, name: str) -> int:
        """Milli-cycles charged to kind ``name``."""
        k = _K[name]
        return self.units[k] * self._v[k]

    def total_mcycles(self) -> int:
        """Milli-cycles charged over all kinds (= the sum of the lanes' advances)."""
        return sum(u * v for u, v in zip(self.units, self._v))

    def elapsed_mcycles(self) -> int:
        """The latest lane's timestamp: the modelled duration of the run."""
        return max(self.t)

    def report(self) -> dict[str, Any]:
        """The modelled time as plain data (``--json``'s ``modelled_time``): seconds
        ``elapsed_s`` (latest lane, with ``low_s``/``high_s``), ``busy_s`` (all lanes'
        work, with its range), ``by_kind`` (kinds charged: ``count``, ``s``, ``low_s``,
        ``high_s``, ``share`` of busy, and ``per``), ``by_lane`` (each lane's timestamp),
        ``cpu_ghz``, ``table`` (``"default"`` or the file)."""
        tb = self.table
        sec = tb.seconds
        busy = self.total_mcycles()
        busy_lo = sum(u * v for u, v in zip(self.units, self._lo))
        busy_hi = sum(u * v for u, v in zip(self.units, self._hi))
        by_kind: dict[str, Any] = {}
        for i, name in enumerate(_ALL_KINDS):
            u = self.units[i]
            if not u:
                continue
            wait = i >= len(COST_KINDS)
            by_kind[name] = {
                "count": self.waits[i - len(COST_KINDS)] if wait else u,
                "s": sec(u * self._v[i]),
                "low_s": sec(u * self._lo[i]),
                "high_s": sec(u * self._hi[i]),
                "share": (u * self._v[i]) / busy if busy else 0.0,
                "per": "wait for the lock" if wait else tb.entries[name].per,
            }
        lanes = {f"vcpu{i}": sec(self.t[i]) for i in range(self.vcpus)}
        lanes["host"] = sec(self.t[self.host_lane])
        return {
            "elapsed_s": sec(max(self.t)),
            "low_s": sec(max(self.t_lo)),
            "high_s": sec(max(self.t_hi)),
            "busy_s": sec(busy),
            "busy_low_s": sec(busy_lo),
            "busy_high_s": sec(busy_hi),
            "by_kind": by_kind,
            "by_lane": lanes,
            "cpu_ghz": tb.cpu_ghz,
            "table": tb.origin,
        }


_LATEST: ModelClock | None = None


def modelled_trace_clock() -> Callable[[], int]:
    """A trace timestamp source (:func:`snpsim.trace.record.tracing`'s ``clock``) in
    modelled time: the running lane's nanoseconds on the clock of the next machine
    built (``snpsim run --trace`` by default), 0 until it exists."""
    before = _LATEST

    def modelled_ns() -> int:
        c = _LATEST
        return 0 if c is None or c is before else c.now_ns()

    return modelled_ns


def kind_index(name: str) -> int:
    """The index :meth:`ModelClock.charge` takes for kind ``name``."""
    return _K[name]


# -- attachment to a machine (instance-level wrappers; no modelled function changes) -----------

def attach_platform(clock: ModelClock, platform: Any) -> None:
    """Charge the platform's counting points to ``clock``: ``platform.count`` (kinds of
    :data:`PLATFORM_COUNTER_KINDS`), each guest entry of ``platform.world.enter_guest``
    (``vmrun_vmexit``), and the host's reads and writes by SPA (``host_copy_byte``).
    Also takes the world's context names for the lanes."""
    clock.ctx_name = platform.world.current_ctx
    kinds = {name: _K[kind] for name, kind in PLATFORM_COUNTER_KINDS.items()}
    count = platform.count
    charge = clock.charge

    def counted(name: str, n: int = 1) -> None:
        count(name, n)
        k = kinds.get(name)
        if k is not None:
            charge(k, n)

    platform.count = counted
    world = platform.world
    enter = world.enter_guest
    k_vmrun = _K["vmrun_vmexit"]

    def enter_guest(g: Any, value: Any = None) -> Any:
        charge(k_vmrun)
        return enter(g, value)

    world.enter_guest = enter_guest
    host = platform.host
    read, write = host.read, host.write
    k_copy = _K["host_copy_byte"]

    def host_read(spa: int, n: int) -> bytes:
        charge(k_copy, max(n, 0))
        return read(spa, n)

    def host_write(spa: int, data: bytes) -> None:
        charge(k_copy, len(data))
        write(spa, data)

    host.read, host.write = host_read, host_write


def attach_kvm(clock: ModelClock, kvm: Any) -> None:
    """Charge KVM's syscall surface and page allocator to ``clock``: each ``ioctl``
    (``kvm_run_ioctl`` for KVM_RUN, else ``syscall``; KVM_SET_MEMORY_ATTRIBUTES also
    ``set_memory_attributes_page`` per 4 KiB page under the VM's ``slots_lock``), each
    ``fallocate`` (``syscall``; a punch hole ``punch_hole_page`` per page under the
    file's ``filemap_invalidate_lock``), each allocation (``page_alloc``, and
    ``clear_page`` per 4 KiB page: the one zeroing a page gets before the guest can use
    it -- the model's later ``zero_page`` calls on the same page are not charged again)."""
    charge = clock.charge
    ioctl, fallocate = kvm.ioctl, kvm.fallocate
    k_run, k_sys = _K["kvm_run_ioctl"], _K["syscall"]
    k_attr, k_punch = _K["set_memory_attributes_page"], _K["punch_hole_page"]

    def clocked_ioctl(fd: int, request: int, arg: Any = 0) -> int:
        if request == KVM_RUN:
            charge(k_run)
            return ioctl(fd, request, arg)
        charge(k_sys)
        if request != KVM_SET_MEMORY_ATTRIBUTES:
            return ioctl(fd, request, arg)
        clock.acquire("slots_lock", fd)
        try:
            pages = _attribute_pages(kvm, fd, arg)
            r = ioctl(fd, request, arg)
            if r == 0 and pages:
                charge(k_attr, pages)
        finally:
            clock.release("slots_lock", fd)
        return r

    def clocked_fallocate(fd: int, mode: int, offset: int, length: int) -> int:
        charge(k_sys)
        if not isinstance(mode, int) or not mode & FALLOC_FL_PUNCH_HOLE:
            return fallocate(fd, mode, offset, length)
        clock.acquire("filemap_invalidate_lock", fd)
        try:
            r = fallocate(fd, mode, offset, length)
            if r == 0 and isinstance(length, int) and length > 0:
                charge(k_punch, length >> PAGE_SHIFT)
        finally:
            clock.release("filemap_invalidate_lock", fd)
        return r

    kvm.ioctl, kvm.fallocate = clocked_ioctl, clocked_fallocate
    alloc = kvm.allocator
    alloc_page, alloc_pages = alloc.alloc_page, alloc.alloc_pages
    k_alloc, k_clear = _K["page_alloc"], _K["clear_page"]

    def clocked_alloc_page() -> int:
        charge(k_alloc)
        charge(k_clear)
        return alloc_page()

    def clocked_alloc_pages(order: int) -> int:
        charge(k_alloc)
        charge(k_clear, 1 << order)
        return alloc_pages(order)

    alloc.alloc_page, alloc.alloc_pages = clocked_alloc_page, clocked_alloc_pages


def _attribute_pages(kvm: Any, fd: int, arg: Any) -> int:
    """4 KiB pages whose attributes a KVM_SET_MEMORY_ATTRIBUTES with ``arg`` on the VM
    ``fd`` will store: 0 when the range already has them all (``kvm_vm_set_mem_attributes``
    returns early; model-only peek at KVM's attribute array before the call)."""
    start, size, attrs = (getattr(arg, f, None) for f in ("address", "size", "attributes"))
    if not all(isinstance(v, int) for v in (start, size, attrs)) or size <= 0:
        return 0
    try:
        array = kvm.vm(fd).mem_attr_array
    except (KeyError, AssertionError, AttributeError):
        return 0
    gfn, end = start >> PAGE_SHIFT, (start + size) >> PAGE_SHIFT
    if end <= gfn or array.all_equal(gfn, end, attrs):
        return 0
    return end - gfn


_SW_EXIT_CODE = GHCB_FIELDS["sw_exit_code"].offset


def attach_vcpu(clock: ModelClock, cpu: Any) -> None:
    """Charge one vCPU's guest port to ``clock`` (at its first entry): PVALIDATE by
    page size (``pvalidate_4k`` / ``pvalidate_2m``, once per instruction, a retry after
    a fault is not a second one), loads and stores (``guest_copy_byte``), page touches
    (``guest_touch`` per load), TLB fills (``page_walk``: the vCPU's TLB is swapped for
    one that counts its fills, with the same entries), and the PSC entries a VMGEXIT hands KVM
    (``psc_entry``: ``end_entry - cur_entry + 1`` of a GHCB PSC request, read raw at the
    GHCB's SPA as the host will; 1 for an MSR-protocol PSC).  A port without instance
    attributes is left alone."""
    charge = clock.charge
    k4, k2 = _K["pvalidate_4k"], _K["pvalidate_2m"]
    k_copy, k_touch, k_psc = _K["guest_copy_byte"], _K["guest_touch"], _K["psc_entry"]
    try:
        pvalidate, read, write = cpu.pvalidate, cpu.read, cpu.write
        touch_pages, vmgexit = cpu.touch_pages, cpu.vmgexit
    except AttributeError:
        return

    def clocked_pvalidate(vaddr: int, rmp_psize: int, validate: bool) -> tuple[int, int]:
        charge(k2 if rmp_psize else k4)
        return pvalidate(vaddr, rmp_psize, validate)

    def clocked_read(gva: int, n: int) -> bytes:
        charge(k_copy, max(n, 0))
        return read(gva, n)

    def clocked_write(gva: int, data: bytes) -> None:
        charge(k_copy, len(data))
        write(gva, data)

    def clocked_touch(gva: int, npages: int, offsets: tuple[int, ...] = (0,)) -> None:
        charge(k_touch, max(npages, 0) * len(offsets))
        touch_pages(gva, npages, offsets)

    def clocked_vmgexit() -> None:
        n = _psc_entries(cpu)
        if n:
            charge(k_psc, n)
        vmgexit()

    try:
        cpu.pvalidate, cpu.read, cpu.write = clocked_pvalidate, clocked_read, clocked_write
        cpu.touch_pages, cpu.vmgexit = clocked_touch, clocked_vmgexit
    except AttributeError:
        return
    tlb = getattr(cpu, "tlb", None)
    if type(tlb) is Tlb:
        clocked = _ClockedTlb(tlb.capacity)
        clocked._e = tlb._e  # the same entries: the vCPU's TLB, now counting its fills
        clocked.charge_walk = functools.partial(charge, _K["page_walk"])
        cpu.tlb = clocked


class _ClockedTlb(Tlb):
    """A vCPU's TLB that charges ``page_walk`` for every fill: a fill follows each guest
    page walk the CPU makes on a TLB miss (:meth:`snpsim.hw.cpu.GuestCpu._translate`),
    with its nested (NPT) lookups; model-only."""

    __slots__ = ("charge_walk",)

    def fill(self, page: int, t: Any) -> Any:
        """:meth:`snpsim.hw.cpu.Tlb.fill`, charged as one two-dimensional walk."""
        self.charge_walk()
        return Tlb.fill(self, page, t)


def _psc_entries(cpu: Any) -> int:
    """PSC entries the VMGEXIT about to be made asks KVM to process (model-only peek at
    the GHCB MSR and the GHCB's raw bytes)."""
    v = cpu.msr_ghcb
    info = v & GHCB_MSR_INFO_MASK
    if info:
        return 1 if info == GHCB_MSR_PSC_REQ else 0
    ent = cpu.vmcb.npt.lookup(v >> PAGE_SHIFT)
    if ent is None:
        return 0
    page = ent.pfn << PAGE_SHIFT
    mem = cpu.platform.mem
    if int.from_bytes(mem.read_raw(page + _SW_EXIT_CODE, 8), "little") != SVM_VMGEXIT_PSC:
        return 0
    hdr = int.from_bytes(mem.read_raw(page + GHCB_SHARED_BUF_OFFSET, 4), "little")
    cur, end = hdr & 0xFFFF, hdr >> 16
    last = min(end, VMGEXIT_PSC_MAX_COUNT - 1)
    return last - cur + 1 if last >= cur else 0
