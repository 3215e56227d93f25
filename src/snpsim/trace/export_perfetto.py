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

The packets are written in batches of about 256 KiB (:data:`BATCH_BYTES`), each as one
``TracePacket.compressed_packets`` (field 50): a zlib stream (RFC 1950, level 6) of the
batch serialized as a ``Trace``.  That is what Perfetto's own tracing service writes with
compression on (``ZlibCompressFn``, ``src/tracing/service/zlib_compressor.cc``), and
trace_processor expands each such packet in place, parsing the packets inside on their
own sequences as if they stood in the file (``ProtoTraceReader::ParseCompressedPackets``,
``src/trace_processor/importers/proto/proto_trace_reader.cc``; it inflates with a zlib or
gzip header, ``GzipDecompressor``), so interning, clock and defaults carry across batches.
This makes the file about six times smaller with the same content.  The environment
variable ``SNPSIM_PFTRACE_COMPRESS=0`` (or ``compress=False``) writes the packets as they
are, for readers that cannot inflate.

Timestamps are the recorder's: nanoseconds of the simulator's own wall clock
(``time.perf_counter_ns``) since the tracer was installed -- how long Python took, not
what the hardware would take.  Integer arguments from 10 up (addresses, GFNs) are written
as pointer values, which Perfetto shows in hex; smaller ones as numbers; strings are
interned.  The interning tables grow with the distinct names and values of a run, not
with its length.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .atomic import atomic_write
from .events import ArgValue, Enter, Instant, Leave, Switch, TraceEvent
from .export_chrome import track_name
from .export_tree import format_value
from .record import Recorder

__all__ = ["PerfettoWriter", "PerfettoRecorder", "write_perfetto", "compress_from_env"]

# TracePacket fields
_PKT_CLOCK_SNAPSHOT = 6
_PKT_TIMESTAMP = 8
_PKT_SEQ_ID = 10
_PKT_TRACK_EVENT = 11
_PKT_INTERNED = 12
_PKT_SEQ_FLAGS = 13
_PKT_COMPRESSED_PACKETS = 50
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

_K_INTERNED = bytes([(_PKT_INTERNED << 3) | 2])

_DESCRIPTOR_SEQ = 1
_PROCESS_UUID = 1

#: Uncompressed bytes of packets gathered before they are written out as one
#: ``compressed_packets`` packet: bounds the writer's memory, and keeps each compressed
#: packet well under :data:`MAX_COMPRESSED_PACKET`.
BATCH_BYTES = 256 << 10
#: zlib level: 6, the level Perfetto's tracing service uses (``ZlibPacketCompressor``,
#: ``src/tracing/service/zlib_compressor.cc``).
COMPRESSION_LEVEL = 6
#: ``trace_packet.proto`` asks that a ``compressed_packets`` packet, its field keys and
#: sizes included, stay under 512 KB; a batch that would not is written uncompressed.
MAX_COMPRESSED_PACKET = 512_000


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
#: 14 low bits of a larger value: two varint bytes, both with the continuation bit set.
_LOW14 = [bytes([(n & 0x7F) | 0x80, (n >> 7) | 0x80]) for n in range(1 << 14)]
_M14 = (1 << 14) - 1
_U64 = 1 << 64


def _varint(n: int) -> bytes:
    """``n`` as a protobuf varint (a negative ``n`` as its 64-bit two's complement, as
    for an ``int64`` field); :func:`_varint_slow` is the reference."""
    if 0 <= n < 16384:
        return _SMALL[n]
    if 0 < n < 1 << 28:
        return _LOW14[n & _M14] + _SMALL[n >> 14]
    if 0 < n < 1 << 42:
        return _LOW14[n & _M14] + _LOW14[(n >> 14) & _M14] + _SMALL[n >> 28]
    if 0 < n < _U64:
        low = _LOW14[n & _M14] + _LOW14[(n >> 14) & _M14] + _LOW14[(n >> 28) & _M14]
        if n < 1 << 56:
            return low + _SMALL[n >> 42]
        return low + _LOW14[(n >> 42) & _M14] + _SMALL[n >> 56]
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


_K_COMPRESSED = _key(_PKT_COMPRESSED_PACKETS, 2)
_K_FLOW = _key(_TE_FLOWS, 1)
_K_TERMINATING_FLOW = _key(_TE_TERM_FLOWS, 1)
_TE_END = _K_TYPE + _SMALL[TYPE_SLICE_END]
_DA_SMALL_INT = [_K_DA_INT + _SMALL[v] for v in range(10)]
_DA_BOOLS = {False: _uint(_DA_BOOL, 0), True: _uint(_DA_BOOL, 1)}


def _value_text(v: ArgValue) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_value_text(x) for x in v) + ")"
    return format_value(v)


class _Sequence:
    """One track and its packet sequence (the sequence id is the track's uuid).

    ``last`` is the timestamp last written, in ``TIME_UNIT_NS``.  The interning tables map
    a name or value to its iid (``names``, ``texts``) or straight to the bytes that refer
    to it: ``begin``/``instant`` the start of a ``TrackEvent`` of that type and name,
    ``anns`` an annotation's name field, ``strs`` a string value's field.  They grow with
    the distinct names and values of the track, not with the run's length.
    """

    __slots__ = ("uuid", "seq_key", "last", "names", "begin", "instant", "anns",
                 "texts", "strs")

    def __init__(self, uuid: int) -> None:
        self.uuid = uuid
        self.seq_key = _K_SEQ + _varint(uuid)
        self.last = 0
        self.names: dict[str, int] = {}
        self.begin: dict[str, bytes] = {}
        self.instant: dict[str, bytes] = {}
        self.anns: dict[str, bytes] = {}
        self.texts: dict[str, int] = {}
        self.strs: dict[str, bytes] = {}


def _intern(table: dict[str, int], name: str, field: int, new: list[bytes]) -> int:
    """The iid of ``name`` in ``table``; a new one is added with its ``InternedData``
    entry (field ``field``: iid 1, name 2) appended to ``new``."""
    iid = table.get(name)
    if iid is None:
        iid = len(table) + 1
        table[name] = iid
        new.append(_bytes(field, _uint(1, iid) + _str(2, name)))
    return iid


def compress_from_env() -> bool:
    """Whether ``.pftrace`` files are written compressed: yes unless the environment
    variable ``SNPSIM_PFTRACE_COMPRESS`` is ``0``."""
    return os.environ.get("SNPSIM_PFTRACE_COMPRESS", "1").strip() != "0"


class PerfettoWriter:
    """Encodes trace events as Perfetto ``TracePacket``\\ s onto a binary file object.

    :meth:`add` takes events in recording order; :meth:`finish` ends the frames still open
    (at the last timestamp seen) and writes out what is buffered.  Packets are gathered
    in a buffer of at most about ``batch_bytes`` (default :data:`BATCH_BYTES`); each full
    buffer goes out as one ``compressed_packets`` packet (``compress`` true; ``None``:
    :func:`compress_from_env`) or as the packets themselves.  The counters ``packets``
    (packets encoded, compressed or not), ``batches`` (``compressed_packets`` written),
    ``slices`` and ``flows`` say what was written.  Never raises on unbalanced input (a
    ``Leave`` with no open frame of its name is ignored); ``ValueError`` for a
    ``batch_bytes`` outside 1..``BATCH_BYTES``; ``OSError`` as ``out.write`` raises it.
    """

    def __init__(self, out: IO[bytes], *, compress: bool | None = None,
                 batch_bytes: int = BATCH_BYTES) -> None:
        if not 1 <= batch_bytes <= BATCH_BYTES:
            raise ValueError(f"batch_bytes must be 1..{BATCH_BYTES}, not {batch_bytes}")
        self.out = out
        self.compress = compress_from_env() if compress is None else bool(compress)
        self.packets = self.batches = self.slices = self.flows = 0
        self._batch = batch_bytes
        self._buf = bytearray()
        self._seqs: dict[tuple[str, str], _Sequence] = {}
        # per context: the frames open, innermost last, as (name, track)
        self._stacks: dict[str, list[tuple[str, _Sequence]]] = {}
        self._last_ns = 0
        self._hosts: set[str] = set()
        self._packet(_uint(_PKT_SEQ_ID, _DESCRIPTOR_SEQ) + _bytes(_PKT_TRACK_DESCRIPTOR,
                            _uint(_TD_UUID, _PROCESS_UUID)
                            + _bytes(_TD_PROCESS, _uint(_PD_PID, 1) + _str(_PD_NAME, "snpsim"))
                            + _uint(_TD_CHILD_ORDERING, _CHILD_ORDERING_EXPLICIT)))

    # -- packets --------------------------------------------------------------------------
    def _packet(self, body: bytes) -> None:
        self._buf += _K_PACKET + _varint(len(body)) + body  # Trace.packet
        self.packets += 1

    def _flush(self) -> None:
        """Write out the buffered packets: as one ``compressed_packets`` packet (a zlib
        stream of a serialized ``Trace``, as Perfetto's ``ZlibCompressFn`` makes it), or
        as they are when compression is off or would give a packet over
        :data:`MAX_COMPRESSED_PACKET` (one event's packets that large)."""
        buf = self._buf
        if not buf:
            return
        if self.compress:
            data = zlib.compress(buf, COMPRESSION_LEVEL)
            inner = _K_COMPRESSED + _varint(len(data)) + data
            packet = _K_PACKET + _varint(len(inner)) + inner
            if len(packet) <= MAX_COMPRESSED_PACKET:
                self.out.write(packet)
                self.batches += 1
                buf.clear()
                return
        self.out.write(bytes(buf))
        buf.clear()

    def _track(self, ctx: str, party: str) -> _Sequence:
        """The track of ``party`` in ``ctx``; its descriptor and the first packet of its
        sequence are written when it first occurs."""
        st = self._seqs.get((ctx, party))
        if st is not None:
            return st
        st = _Sequence(len(self._seqs) + 2)
        self._seqs[(ctx, party)] = st
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
                            _uint(_TD_UUID, st.uuid) + _uint(_TD_PARENT, _PROCESS_UUID)
                            + _str(_TD_NAME, name) + _uint(_TD_SIBLING_RANK, rank)))
        self._start_sequence(st.uuid)
        return st

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

    def _head(self, st: _Sequence, table: dict[str, bytes], kind: int, name: str,
              new: list[bytes]) -> bytes:
        """The start of a ``TrackEvent`` of ``kind`` named ``name`` (interned)."""
        head = table.get(name)
        if head is None:
            head = (_K_TYPE + _SMALL[kind] + _K_NAME_IID
                    + _varint(_intern(st.names, name, _ID_EVENT_NAMES, new)))
            table[name] = head
        return head

    def _annotations(self, st: _Sequence, items: Iterable[tuple[str, ArgValue]],
                     new: list[bytes]) -> bytes:
        """The debug annotations of ``items``, leaving out ``None`` and the ``<TypeName>``
        stand-ins of context objects (an absent value, or only the type of an object)."""
        out = b""
        anns = st.anns
        for k, v in items:
            c = v.__class__
            if c is int and 0 <= v < _U64:
                key = anns.get(k) or self._ann_name(st, k, new)
                # small values as numbers, as the Chrome export does; addresses and GFNs as
                # pointers, which Perfetto shows in hex
                body = key + (_DA_SMALL_INT[v] if v < 10 else _K_DA_POINTER + _varint(v))
            elif c is str:
                if v.startswith("<") and v.endswith(">"):
                    continue
                key = anns.get(k) or self._ann_name(st, k, new)
                sv = st.strs.get(v)
                if sv is None:
                    sv = _K_DA_STRING_IID + _varint(
                        _intern(st.texts, format_value(v), _ID_STRING_VALUES, new))
                    st.strs[v] = sv
                body = key + sv
            elif c is bool:
                body = (anns.get(k) or self._ann_name(st, k, new)) + _DA_BOOLS[v]
            elif v is None or (isinstance(v, str) and v.startswith("<") and v.endswith(">")):
                continue
            else:
                body = (anns.get(k) or self._ann_name(st, k, new)) + self._value(st, v, new)
            out += _K_ANNOTATION + _varint(len(body)) + body
        return out

    def _ann_name(self, st: _Sequence, name: str, new: list[bytes]) -> bytes:
        """The name field of an annotation ``name`` (interned: iids follow the table)."""
        iid = len(st.anns) + 1
        new.append(_bytes(_ID_ANNOTATION_NAMES, _uint(1, iid) + _str(2, name)))
        key = st.anns[name] = _K_DA_NAME_IID + _varint(iid)
        return key

    def _value(self, st: _Sequence, value: ArgValue, new: list[bytes]) -> bytes:
        """The value fields of an annotation other than an exact ``int`` in 0..2**64-1 or
        an exact ``str`` (those are on :meth:`_annotations`' own path)."""
        if value.__class__ is int and 0 <= value < 10:
            return _DA_SMALL_INT[value]
        if value.__class__ is int and 10 <= value < _U64:
            return _K_DA_POINTER + _varint(value)
        if isinstance(value, bool):
            return _uint(_DA_BOOL, int(value))
        if isinstance(value, int) and -(1 << 63) <= value < 10:
            return _uint(_DA_INT, value)
        if isinstance(value, float):
            return _double(_DA_DOUBLE, value)
        text = _value_text(value)
        return _K_DA_STRING_IID + _varint(_intern(st.texts, text, _ID_STRING_VALUES, new))

    def _emit(self, st: _Sequence, ts_ns: int, te: bytes, new: list[bytes]) -> None:
        """One event packet on ``st``'s sequence: the time delta, the sequence id, the
        names interned by this event, the ``TrackEvent`` ``te``.  Timestamps never go
        back on a sequence (events of one context arrive in time order; a late one is
        clamped)."""
        ts = ts_ns // TIME_UNIT_NS
        last = st.last
        if ts < last:
            ts = last
        st.last = ts
        if new:
            interned = b"".join(new)
            body = (_K_TS + _varint(ts - last) + st.seq_key + _K_INTERNED
                    + _varint(len(interned)) + interned
                    + _K_TRACK_EVENT + _varint(len(te)) + te)
        else:
            body = (_K_TS + _varint(ts - last) + st.seq_key
                    + _K_TRACK_EVENT + _varint(len(te)) + te)
        self._buf += _K_PACKET + _varint(len(body)) + body
        self.packets += 1

    # -- events ---------------------------------------------------------------------------
    def add(self, e: TraceEvent) -> None:
        """Write one event (see the module doc for what each kind becomes).  Raises
        ``OSError`` when writing a full batch fails."""
        if e.ts_ns > self._last_ns:
            self._last_ns = e.ts_ns
        new: list[bytes] = []
        # The common cases first, with the packet built in place: an Enter, and a Leave of
        # the innermost open frame on the track its Enter used.  What they write is what
        # the general code below writes (the differential tests hold for both).
        cls = e.__class__
        if cls is Enter:
            st = self._seqs.get((e.ctx, e.party)) or self._track(e.ctx, e.party)
            stack = self._stacks.get(e.ctx)
            if stack is None:
                stack = self._stacks[e.ctx] = []
            stack.append((e.name, st))
            te = st.begin.get(e.name) or self._head(st, st.begin, TYPE_SLICE_BEGIN, e.name, new)
            if e.args:
                te += self._annotations(st, e.args.items(), new)
            self.slices += 1
        elif cls is Leave:
            stack = self._stacks.get(e.ctx)
            st = self._seqs.get((e.ctx, e.party))
            if not stack or stack[-1][0] != e.name or st is None:
                self._add(e, new)
                return
            stack.pop()
            r = e.result
            if r is None:  # a C void function's: nothing to show
                te = _TE_END
            elif r.__class__ is int and 0 <= r < _U64 and "result" in st.anns:
                body = st.anns["result"] + (_DA_SMALL_INT[r] if r < 10
                                            else _K_DA_POINTER + _varint(r))
                te = _TE_END + _K_ANNOTATION + _SMALL[len(body)] + body
            else:
                te = _TE_END + self._annotations(st, (("result", r),), new)
        else:
            self._add(e, new)
            return
        ts = e.ts_ns // TIME_UNIT_NS
        last = st.last
        if ts < last:
            ts = last
        st.last = ts
        if new:
            interned = b"".join(new)
            body = (_K_TS + _varint(ts - last) + st.seq_key + _K_INTERNED
                    + _varint(len(interned)) + interned
                    + _K_TRACK_EVENT + _varint(len(te)) + te)
        else:
            body = (_K_TS + _varint(ts - last) + st.seq_key
                    + _K_TRACK_EVENT + _varint(len(te)) + te)
        buf = self._buf
        buf += _K_PACKET + _varint(len(body)) + body
        self.packets += 1
        if len(buf) >= self._batch:
            self._flush()

    def _add(self, e: TraceEvent, new: list[bytes]) -> None:
        """:meth:`add` for every event (the general code)."""
        if isinstance(e, Enter):
            st = self._seqs.get((e.ctx, e.party)) or self._track(e.ctx, e.party)
            stack = self._stacks.get(e.ctx)
            if stack is None:
                stack = self._stacks[e.ctx] = []
            stack.append((e.name, st))
            te = self._head(st, st.begin, TYPE_SLICE_BEGIN, e.name, new)
            if e.args:
                te += self._annotations(st, e.args.items(), new)
            self._emit(st, e.ts_ns, te, new)
            self.slices += 1
        elif isinstance(e, Leave):
            stack = self._stacks.get(e.ctx)
            if stack:
                name = e.name
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i][0] == name:
                        # A Leave that closes an outer frame ends the frames above it first.
                        for _, above in reversed(stack[i + 1:]):
                            self._emit(above, e.ts_ns, _TE_END, new)
                        st = self._seqs.get((e.ctx, e.party)) or self._track(e.ctx, e.party)
                        te = _TE_END
                        if e.result is not None:  # None: a C void function's, nothing to show
                            te += self._annotations(st, (("result", e.result),), new)
                        self._emit(st, e.ts_ns, te, new)
                        del stack[i:]
                        break
        elif isinstance(e, Instant):
            st = self._seqs.get((e.ctx, e.party)) or self._track(e.ctx, e.party)
            te = self._head(st, st.instant, TYPE_INSTANT, e.name, new)
            if e.args:
                te += self._annotations(st, e.args.items(), new)
            self._emit(st, e.ts_ns, te, new)
        elif isinstance(e, Switch):
            self.flows += 1
            flow = struct.pack("<Q", self.flows)
            name = f"{e.reason} {e.from_ctx}->{e.to_ctx}"
            st = self._track(e.from_ctx, "cpu")
            self._emit(st, e.ts_ns, self._head(st, st.instant, TYPE_INSTANT, name, new)
                       + _K_FLOW + flow, new)
            new = []
            st = self._track(e.to_ctx, "cpu")
            self._emit(st, e.ts_ns, self._head(st, st.instant, TYPE_INSTANT, name, new)
                       + _K_TERMINATING_FLOW + flow, new)
        if len(self._buf) >= self._batch:
            self._flush()

    def finish(self) -> None:
        """End every frame still open, at the last timestamp seen, and write out what is
        buffered.  Raises ``OSError`` as writing does."""
        for stack in self._stacks.values():
            for _, st in reversed(stack):
                self._emit(st, self._last_ns, _TE_END, [])
            stack.clear()
        self._flush()


def write_perfetto(events: Iterable[TraceEvent], out: str | Path | IO[bytes], *,
                   compress: bool | None = None) -> None:
    """Write ``events`` as a ``.pftrace`` to a path (atomically) or a binary file object;
    ``compress`` as for :class:`PerfettoWriter`.  Raises ``OSError`` as writing does (a
    path is then left unchanged)."""
    if isinstance(out, str | Path):
        with atomic_write(out, "wb") as f:
            write_perfetto(events, f, compress=compress)
        return
    w = PerfettoWriter(out, compress=compress)
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
    ``len()`` is the number of events written; iterating yields nothing.  ``compress`` and
    ``batch_bytes`` as for :class:`PerfettoWriter`.  Raises ``OSError`` when the temporary
    file cannot be created."""

    def __init__(self, path: str | Path, filter: Any = None, max_events: int | None = None,
                 *, compress: bool | None = None, batch_bytes: int = BATCH_BYTES) -> None:
        super().__init__(filter=filter, max_events=max_events)
        self.path = Path(path)
        self._cm = atomic_write(self.path, "wb")
        self._file = self._cm.__enter__()
        self.writer = PerfettoWriter(self._file, compress=compress, batch_bytes=batch_bytes)
        self.events = _StreamedEvents(self.writer)  # type: ignore[assignment]

    def record(self, event: TraceEvent) -> None:
        """As :meth:`Recorder.record`; with no filter and no cap every event is kept, so
        it goes straight to the writer (no per-frame verdicts to keep)."""
        if self.filter is None and self.max_events is None:
            self.events.append(event)
        else:
            super().record(event)

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
