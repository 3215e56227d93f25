# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Perfetto's native trace format (``.pftrace``), written as the run goes.

Model-only (no kernel twin).  The file is a serialized ``perfetto.protos.Trace``: a
sequence of ``TracePacket`` messages (field 1 of ``Trace``), encoded here directly in the
protobuf wire format, so snpsim needs no protobuf library at run time.  Field numbers are
those of Perfetto's ``protos/perfetto/trace/`` (``trace_packet.proto``,
``track_event/track_event.proto``, ``track_event/track_descriptor.proto``,
``track_event/debug_annotation.proto``, ``interned_data/interned_data.proto``).

What is written:

- one process track ``snpsim`` and, under it, one track per (context, party) pair as it
  first occurs, named as in the Chrome export (``vCPU 0 guest``, ``vCPU 0 CPU``, ``KVM``,
  ``VMM``, ``CPU``), ordered guest tracks first;
- a slice per frame: ``TYPE_SLICE_BEGIN`` at ``Enter`` with the arguments as debug
  annotations (except ``None`` and the ``<TypeName>`` stand-ins of context objects, which
  the other formats keep), ``TYPE_SLICE_END`` at ``Leave`` with ``result``; a ``Leave`` that closes an
  outer frame first ends the frames still open above it, so every track nests;
- an instant (``TYPE_INSTANT``) per ``Instant`` event, on its track;
- per ``Switch`` an instant ``REASON from->to`` on the CPU track of the context left and
  one on the CPU track of the context entered, joined by a flow, so Perfetto draws an
  arrow across each guest -> host -> guest crossing;
- each track's events on a packet sequence of their own, whose first packet sets the
  defaults (the track, and a sequence-scoped clock 64 whose packet timestamps are deltas
  from the previous packet in units of 100 ns, tied to BOOTTIME at 0 by a clock
  snapshot), so an event packet
  carries only its delta, its sequence id and its event; event names, annotation names
  and string values are interned per sequence, each written once.  Track descriptors are
  on sequence 1.

Timestamps are the recorder's: nanoseconds of the simulator's own wall clock
(``time.perf_counter_ns``) since the tracer was installed -- how long Python took, not
what the hardware would take.  Integer arguments from 10 up (addresses, GFNs) are written
as pointer values, which Perfetto shows in hex; smaller ones as numbers; strings are
interned.  The interning tables grow with the distinct names and values of a run, not
with its length.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .atomic import atomic_write
from .events import ArgValue, Enter, Instant, Leave, Switch, TraceEvent
from .export_chrome import track_name
from .export_tree import format_value
from .record import Recorder

__all__ = ["PerfettoWriter", "PerfettoRecorder", "write_perfetto"]

# TracePacket fields
_PKT_CLOCK_SNAPSHOT = 6
_PKT_TIMESTAMP = 8
_PKT_SEQ_ID = 10
_PKT_TRACK_EVENT = 11
_PKT_INTERNED = 12
_PKT_SEQ_FLAGS = 13
_PKT_TIMESTAMP_CLOCK = 58
_PKT_DEFAULTS = 59
_PKT_TRACK_DESCRIPTOR = 60
_SEQ_INCREMENTAL_STATE_CLEARED = 1
# ClockSnapshot / Clock, TracePacketDefaults / TrackEventDefaults fields
_CS_CLOCKS, _CLK_ID, _CLK_TS, _CLK_INCREMENTAL, _CLK_UNIT = 1, 1, 2, 3, 4
_DEF_CLOCK, _DEF_TRACK_EVENT, _TED_TRACK = 58, 11, 11
BUILTIN_CLOCK_BOOTTIME = 6
#: The sequence-scoped clock (ids 64..127) whose packet timestamps are deltas.
INCREMENTAL_CLOCK = 64
#: Its unit, ns: timestamps are kept to 100 ns (a traced call of the model takes
#: microseconds), which keeps most deltas to one or two bytes.
TIME_UNIT_NS = 100
# TrackDescriptor fields
_TD_UUID, _TD_NAME, _TD_PROCESS, _TD_PARENT, _TD_SIBLING_RANK, _TD_CHILD_ORDERING = 1, 2, 3, 5, 12, 11
_CHILD_ORDERING_EXPLICIT = 3
_PD_PID, _PD_NAME = 1, 6
# TrackEvent fields and types
_TE_ANNOTATIONS, _TE_TYPE, _TE_NAME_IID, _TE_TRACK, _TE_FLOWS, _TE_TERM_FLOWS = 4, 9, 10, 11, 47, 48
TYPE_SLICE_BEGIN, TYPE_SLICE_END, TYPE_INSTANT = 1, 2, 3
# DebugAnnotation fields
_DA_NAME_IID, _DA_BOOL, _DA_INT, _DA_DOUBLE, _DA_POINTER, _DA_STRING_IID = 1, 2, 4, 5, 7, 17
# InternedData fields (EventName / DebugAnnotationName / InternedString: iid 1, name 2)
_ID_EVENT_NAMES, _ID_ANNOTATION_NAMES, _ID_STRING_VALUES = 2, 3, 29

# Field keys of the hot path, encoded once.
_K_TS = bytes([_PKT_TIMESTAMP << 3])
_K_SEQ = bytes([_PKT_SEQ_ID << 3])
_K_TYPE = bytes([_TE_TYPE << 3])
_K_NAME_IID = bytes([_TE_NAME_IID << 3])
_K_DA_NAME_IID = bytes([_DA_NAME_IID << 3])
_K_DA_INT = bytes([_DA_INT << 3])
_K_DA_POINTER = bytes([_DA_POINTER << 3])
_K_DA_STRING_IID = bytes([(_DA_STRING_IID << 3) & 0x7F | 0x80, _DA_STRING_IID >> 4])
_K_PACKET = bytes([(1 << 3) | 2])
_K_ANNOTATION = bytes([(_TE_ANNOTATIONS << 3) | 2])
_K_TRACK_EVENT = bytes([(_PKT_TRACK_EVENT << 3) | 2])

_DESCRIPTOR_SEQ = 1
_PROCESS_UUID = 1


def _varint_slow(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


#: Varints of 0..16383 (one or two bytes), built once: most values a trace writes.
_SMALL = [_varint_slow(n) for n in range(1 << 14)]


def _varint(n: int) -> bytes:
    if 0 <= n < 16384:
        return _SMALL[n]
    return _varint_slow(n)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _uint(field: int, n: int) -> bytes:
    return _key(field, 0) + _varint(n)


def _bytes(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _str(field: int, text: str) -> bytes:
    return _bytes(field, text.encode("utf-8", "replace"))


def _fixed64(field: int, n: int) -> bytes:
    return _key(field, 1) + struct.pack("<Q", n & ((1 << 64) - 1))


def _double(field: int, x: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", x)


def _value_text(v: ArgValue) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_value_text(x) for x in v) + ")"
    return format_value(v)


class PerfettoWriter:
    """Encodes trace events as Perfetto ``TracePacket``\\ s onto a binary file object.

    :meth:`add` takes events in recording order; :meth:`finish` ends the frames still open
    (at the last timestamp seen).  The counters ``packets``, ``slices`` and ``flows`` say
    what was written.  Never raises on unbalanced input (a ``Leave`` with no open frame of
    its name is ignored).
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.packets = self.slices = self.flows = 0
        self._tracks: dict[tuple[str, str], int] = {}
        # per track (= per packet sequence): interned event names, annotation names and
        # string values; the last timestamp written
        self._interned: dict[int, tuple[dict[str, int], dict[str, int], dict[str, int]]] = {}
        self._seq_last: dict[int, int] = {}
        self._stacks: dict[str, list[Enter]] = {}
        self._last_ns = 0
        self._hosts: set[str] = set()
        self._packet(_uint(_PKT_SEQ_ID, _DESCRIPTOR_SEQ) + _bytes(_PKT_TRACK_DESCRIPTOR,
                            _uint(_TD_UUID, _PROCESS_UUID)
                            + _bytes(_TD_PROCESS, _uint(_PD_PID, 1) + _str(_PD_NAME, "snpsim"))
                            + _uint(_TD_CHILD_ORDERING, _CHILD_ORDERING_EXPLICIT)))

    # -- packets --------------------------------------------------------------------------
    def _packet(self, body: bytes) -> None:
        self.out.write(_bytes(1, body))  # Trace.packet
        self.packets += 1

    def _track(self, ctx: str, party: str) -> int:
        key = (ctx, party)
        uuid = self._tracks.get(key)
        if uuid is None:
            uuid = len(self._tracks) + 2
            self._tracks[key] = uuid
            # Guest tracks sort before host tracks, each by context number then party.
            kind = 0 if ctx.startswith("vcpu") else (2 if ctx.startswith("host") else 1)
            digits = "".join(c for c in ctx if c.isdigit())
            order = ("guest", "cpu", "kvm", "vmm")
            rank = (kind * 1_000_000 + (int(digits) if digits else 0) * 10
                    + (order.index(party) if party in order else 9))
            name = track_name(ctx, party, single_host=True)
            if ctx.startswith("host"):
                self._hosts.add(ctx)
                if ctx != "host0":
                    name = track_name(ctx, party, single_host=False)
            self._packet(_uint(_PKT_SEQ_ID, _DESCRIPTOR_SEQ) + _bytes(_PKT_TRACK_DESCRIPTOR,
                                _uint(_TD_UUID, uuid) + _uint(_TD_PARENT, _PROCESS_UUID)
                                + _str(_TD_NAME, name) + _uint(_TD_SIBLING_RANK, rank)))
        return uuid

    def _intern(self, table: dict[str, int], name: str, field: int, new: list[bytes]) -> int:
        iid = table.get(name)
        if iid is None:
            iid = len(table) + 1
            table[name] = iid
            new.append(_bytes(field, _uint(1, iid) + _str(2, name)))
        return iid

    def _annotation(self, name: str, value: ArgValue, new: list[bytes],
                    interned: tuple[dict[str, int], dict[str, int], dict[str, int]]) -> bytes:
        iid = interned[1].get(name)
        if iid is None:
            iid = self._intern(interned[1], name, _ID_ANNOTATION_NAMES, new)
        body = _K_DA_NAME_IID + _varint(iid)
        if value.__class__ is int and 0 <= value < 10:
            body += _K_DA_INT + _SMALL[value]  # small values as numbers, as the Chrome export does
        elif value.__class__ is int and 10 <= value < (1 << 64):
            body += _K_DA_POINTER + _varint(value)  # addresses and GFNs: Perfetto shows them in hex
        elif isinstance(value, bool):
            body += _uint(_DA_BOOL, int(value))
        elif isinstance(value, int) and -(1 << 63) <= value < 10:
            body += _uint(_DA_INT, value)
        elif isinstance(value, float):
            body += _double(_DA_DOUBLE, value)
        else:
            text = "None" if value is None else _value_text(value)
            body += _K_DA_STRING_IID + _varint(self._intern(interned[2], text, _ID_STRING_VALUES, new))
        return _K_ANNOTATION + _varint(len(body)) + body

    def _start_sequence(self, track: int) -> None:
        """The first packet of a track's sequence: incremental state cleared, a clock
        snapshot tying the delta clock to BOOTTIME at 0, and defaults naming the clock and
        the track, so later packets carry neither."""
        clocks = (_bytes(_CS_CLOCKS, _uint(_CLK_ID, BUILTIN_CLOCK_BOOTTIME) + _uint(_CLK_TS, 0))
                  + _bytes(_CS_CLOCKS, _uint(_CLK_ID, INCREMENTAL_CLOCK) + _uint(_CLK_TS, 0)
                           + _uint(_CLK_INCREMENTAL, 1) + _uint(_CLK_UNIT, TIME_UNIT_NS)))
        defaults = (_uint(_DEF_CLOCK, INCREMENTAL_CLOCK)
                    + _bytes(_DEF_TRACK_EVENT, _uint(_TED_TRACK, track)))
        self._packet(_uint(_PKT_TIMESTAMP, 0) + _uint(_PKT_TIMESTAMP_CLOCK, BUILTIN_CLOCK_BOOTTIME)
                     + _uint(_PKT_SEQ_ID, track)
                     + _uint(_PKT_SEQ_FLAGS, _SEQ_INCREMENTAL_STATE_CLEARED)
                     + _bytes(_PKT_DEFAULTS, defaults) + _bytes(_PKT_CLOCK_SNAPSHOT, clocks))
        self._seq_last[track] = 0

    def _event(self, ts: int, kind: int, track: int, name: str | None,
               args: Iterable[tuple[str, ArgValue]] = (), flows: tuple[int, ...] = (),
               terminating: tuple[int, ...] = ()) -> None:
        # Each track is its own packet sequence: its defaults name the track, and its
        # timestamps are deltas from the sequence's previous packet (never negative:
        # events of one context arrive in time order, and a late one is clamped).
        last = self._seq_last.get(track)
        if last is None:
            self._start_sequence(track)
            last = 0
        ts = max(ts // TIME_UNIT_NS, last)
        self._seq_last[track] = ts
        interned = self._interned.setdefault(track, ({}, {}, {}))
        new: list[bytes] = []
        te = _K_TYPE + _SMALL[kind]
        if name is not None:
            iid = interned[0].get(name)
            if iid is None:
                iid = self._intern(interned[0], name, _ID_EVENT_NAMES, new)
            te += _K_NAME_IID + _varint(iid)
        for k, v in args:
            if v is None or (isinstance(v, str) and v.startswith("<") and v.endswith(">")):
                continue  # an absent value, or only the type of a context object
            te += self._annotation(k, v, new, interned)
        for f in flows:
            te += _fixed64(_TE_FLOWS, f)
        for f in terminating:
            te += _fixed64(_TE_TERM_FLOWS, f)
        body = _K_TS + _varint(ts - last) + _K_SEQ + _varint(track)
        if new:
            body += _bytes(_PKT_INTERNED, b"".join(new))
        body += _K_TRACK_EVENT + _varint(len(te)) + te
        self.out.write(_K_PACKET + _varint(len(body)) + body)
        self.packets += 1

    # -- events ---------------------------------------------------------------------------
    def add(self, e: TraceEvent) -> None:
        """Write one event (see the module doc for what each kind becomes)."""
        self._last_ns = max(self._last_ns, e.ts_ns)
        if isinstance(e, Enter):
            self._stacks.setdefault(e.ctx, []).append(e)
            self._event(e.ts_ns, TYPE_SLICE_BEGIN, self._track(e.ctx, e.party), e.name,
                        e.args.items())
            self.slices += 1
        elif isinstance(e, Leave):
            stack = self._stacks.get(e.ctx, [])
            for i in range(len(stack) - 1, -1, -1):
                if stack[i].name == e.name:
                    for above in reversed(stack[i + 1:]):
                        self._event(e.ts_ns, TYPE_SLICE_END, self._track(above.ctx, above.party), None)
                    # A None result is a C void function's: nothing to show.
                    result = () if e.result is None else (("result", e.result),)
                    self._event(e.ts_ns, TYPE_SLICE_END, self._track(e.ctx, e.party), None,
                                result)
                    del stack[i:]
                    break
        elif isinstance(e, Instant):
            self._event(e.ts_ns, TYPE_INSTANT, self._track(e.ctx, e.party), e.name, e.args.items())
        elif isinstance(e, Switch):
            self.flows += 1
            name = f"{e.reason} {e.from_ctx}->{e.to_ctx}"
            self._event(e.ts_ns, TYPE_INSTANT, self._track(e.from_ctx, "cpu"), name,
                        flows=(self.flows,))
            self._event(e.ts_ns, TYPE_INSTANT, self._track(e.to_ctx, "cpu"), name,
                        terminating=(self.flows,))

    def finish(self) -> None:
        """End every frame still open, at the last timestamp seen."""
        for stack in self._stacks.values():
            for enter in reversed(stack):
                self._event(self._last_ns, TYPE_SLICE_END, self._track(enter.ctx, enter.party), None)
            stack.clear()


def write_perfetto(events: Iterable[TraceEvent], out: str | Path | IO[bytes]) -> None:
    """Write ``events`` as a ``.pftrace`` to a path (atomically) or a binary file object.
    Raises ``OSError`` as writing does (a path is then left unchanged)."""
    if isinstance(out, str | Path):
        with atomic_write(out, "wb") as f:
            write_perfetto(events, f)
        return
    w = PerfettoWriter(out)
    for e in events:
        w.add(e)
    w.finish()


class _StreamedEvents:
    """Stands in for :class:`Recorder`'s event list: each kept event is encoded at once
    and only counted, so a long run's trace is never held in memory."""

    def __init__(self, writer: PerfettoWriter) -> None:
        self.writer = writer
        self.count = 0
        #: The first write error (a full disk, a file-size limit): once set, events are
        #: dropped and :meth:`PerfettoRecorder.close` raises it, so the run itself goes on.
        self.error: OSError | None = None

    def append(self, e: TraceEvent) -> None:
        if self.error is not None:
            return
        try:
            self.writer.add(e)
        except OSError as exc:
            self.error = exc
            return
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(())

    def clear(self) -> None:
        self.count = 0


class PerfettoRecorder(Recorder):
    """A :class:`Recorder` (same filter, cap and counters) that streams the events it keeps
    into ``path`` as they happen.  The data goes to a temporary file beside ``path``;
    :meth:`close` finishes it and renames it into place, :meth:`abort` deletes it.
    ``len()`` is the number of events written; iterating yields nothing.  Raises
    ``OSError`` when the temporary file cannot be created."""

    def __init__(self, path: str | Path, filter: Any = None, max_events: int | None = None) -> None:
        super().__init__(filter=filter, max_events=max_events)
        self.path = Path(path)
        self._cm = atomic_write(self.path, "wb")
        self._file = self._cm.__enter__()
        self.writer = PerfettoWriter(self._file)
        self.events = _StreamedEvents(self.writer)  # type: ignore[assignment]

    def close(self) -> None:
        """Finish the trace and move it onto ``path``.  Raises ``OSError`` if that fails,
        or if writing failed while the run went on (``path`` is then unchanged and the
        temporary file removed)."""
        err = self.events.error  # type: ignore[attr-defined]
        if err is None:
            try:
                self.writer.finish()
            except OSError as exc:
                err = exc
        if err is not None:
            self.abort()
            raise err
        self._cm.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop the partial trace (``path`` is unchanged)."""
        import contextlib

        with contextlib.suppress(BaseException):
            self._cm.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)
