# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The ``.pftrace`` export (issue 15, item 1), read back with Perfetto's own protos (the
``perfetto`` package, a test-only dependency): tracks per party and vCPU, slices that nest
on every track, interned names that resolve, flows across world switches, the batches of
``compressed_packets`` (expanded here as trace_processor expands them, and equal to the
uncompressed writer's packets), and the streaming recorder's all-or-nothing file."""

from __future__ import annotations

import errno
import io
import os
import random
import zlib
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

from snpsim.system import SnpSystem
from snpsim.trace import Enter, Instant, Leave, Switch
from snpsim.trace.export_perfetto import (
    BATCH_BYTES,
    MAX_COMPRESSED_PACKET,
    PerfettoRecorder,
    PerfettoWriter,
    _varint,
    _varint_slow,
    compress_from_env,
    write_perfetto,
)
from snpsim.trace.record import tracing

BEGIN, END, INSTANT = (pb.TrackEvent.TYPE_SLICE_BEGIN, pb.TrackEvent.TYPE_SLICE_END,
                       pb.TrackEvent.TYPE_INSTANT)


@pytest.fixture(scope="module")
def conversion():
    """One traced set_memory_decrypted of 4 pages, with every event of the run."""
    return SnpSystem(memory=64 << 20).trace_conversion("set_memory_decrypted", pages=4)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = data[i]
        n |= (b & 0x7F) << shift
        shift += 7
        i += 1
        if b < 0x80:
            return n, i


#: TracePacket.compressed_packets, field 50 (protos/perfetto/trace/trace_packet.proto)
COMPRESSED_PACKETS = 50


def _top_level(data: bytes):
    """The file's top-level ``Trace.packet`` fields (field 1, length-delimited), raw."""
    i = 0
    while i < len(data):
        assert data[i] == 0x0A, f"not a Trace.packet field at byte {i}"
        size, j = _read_varint(data, i + 1)
        assert j + size <= len(data), "packet runs past the end of the file"
        yield data[i:j + size], data[j:j + size]
        i = j + size


def _packet_stream(data: bytes, batches: list[int] | None = None) -> bytes:
    """The packets of a .pftrace with every ``compressed_packets`` packet replaced by the
    packets it holds, as trace_processor expands it: a zlib stream (checked: RFC 1950
    header, not raw deflate) of a serialized ``Trace``.  ``batches`` collects the size of
    each batch inflated."""
    out = []
    for whole, body in _top_level(data):
        p = pb.TracePacket.FromString(body)
        if p.HasField("compressed_packets"):
            assert p.DESCRIPTOR.fields_by_name["compressed_packets"].number == COMPRESSED_PACKETS
            assert [f.name for f, _ in p.ListFields()] == ["compressed_packets"]
            assert len(whole) <= MAX_COMPRESSED_PACKET
            inflated = zlib.decompressobj(wbits=15).decompress(p.compressed_packets)
            assert inflated and inflated[0] == 0x0A   # a Trace: packet fields only
            if batches is not None:
                batches.append(len(inflated))
            out.append(inflated)
        else:
            out.append(whole)
    return b"".join(out)


def _parse(data: bytes):
    """Decode a .pftrace as Perfetto's importer reads it: compressed batches expanded in
    place; tracks from the descriptors; per packet sequence, the defaults (track,
    incremental clock), the interned names and the running timestamp (sum of deltas from
    the clock snapshot)."""
    trace = pb.Trace()
    trace.ParseFromString(_packet_stream(data))
    tracks, slices, flows_out, flows_in = {}, [], Counter(), Counter()
    process = None
    stacks: dict[int, list[str]] = {}
    seq_track: dict[int, int] = {}
    seq_names: dict[int, dict[int, str]] = {}
    seq_time: dict[int, int] = {}
    incremental: set[int] = set()
    unit: dict[int, int] = {}
    times: list[tuple[int, str, int]] = []     # (track, name or END, absolute ns)
    for p in trace.packet:
        seq = p.trusted_packet_sequence_id
        if p.HasField("track_descriptor"):
            td = p.track_descriptor
            if td.HasField("process"):
                process = td.process.process_name
            else:
                tracks[td.uuid] = td.name
            continue
        if p.HasField("clock_snapshot"):
            assert p.sequence_flags & pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
            seq_track[seq] = p.trace_packet_defaults.track_event_defaults.track_uuid
            clock = p.trace_packet_defaults.timestamp_clock_id
            for c in p.clock_snapshot.clocks:
                if c.clock_id == clock and c.is_incremental:
                    incremental.add(seq)
                    seq_time[seq] = c.timestamp
                    unit[seq] = c.unit_multiplier_ns or 1
            seq_names[seq] = {}
            continue
        for en in p.interned_data.event_names:
            seq_names[seq][en.iid] = en.name
        assert seq in incremental
        seq_time[seq] += p.timestamp
        te = p.track_event
        track = te.track_uuid if te.HasField("track_uuid") else seq_track[seq]
        assert track in tracks, "event on a track never described"
        if te.type == BEGIN:
            name = seq_names[seq][te.name_iid]
            stacks.setdefault(track, []).append(name)
            slices.append((tracks[track], name, list(stacks[track])))
            times.append((track, name, seq_time[seq] * unit[seq]))
        elif te.type == END:
            assert stacks.get(track), "slice end without a begin on its track"
            stacks[track].pop()
            times.append((track, "END", seq_time[seq] * unit[seq]))
        for f in te.flow_ids:
            flows_out[f] += 1
        for f in te.terminating_flow_ids:
            flows_in[f] += 1
    return process, tracks, slices, stacks, flows_out, flows_in, times


def test_tracks_slices_nesting_and_flows(conversion):
    buf = io.BytesIO()
    write_perfetto(conversion.events, buf)
    process, tracks, slices, stacks, flows_out, flows_in, times = _parse(buf.getvalue())
    assert process == "snpsim"
    # one track per party and vCPU: the guest's and the CPU's in vCPU 0, KVM's and the VMM's
    assert {"vCPU 0 guest", "vCPU 0 CPU", "KVM", "VMM"} <= set(tracks.values())
    enters = [e for e in conversion.events if isinstance(e, Enter)]
    assert len(slices) == len(enters)                    # every frame is a slice
    assert all(not s for s in stacks.values())           # and every slice is closed
    # The guest's call chain nests on the guest track as the kernel calls it.
    chain = next(st for track, name, st in slices
                 if track == "vCPU 0 guest" and name == "__set_pages_state")
    assert chain.index("set_memory_decrypted") < chain.index("__set_pages_state")
    # KVM's PSC handling is on KVM's track.
    assert any(track == "KVM" and name == "snp_begin_psc" for track, name, _ in slices)
    # Each world switch is one flow: out of one context, into the other.
    switches = [e for e in conversion.events if isinstance(e, Switch)]
    assert len(flows_out) == len(switches) and flows_out == flows_in
    # Timestamps decoded from the deltas are the recorded ones, to the 100 ns unit.
    assert [t for _, name, t in times if name != "END"] == [e.ts_ns // 100 * 100 for e in enters]


def test_unbalanced_input_still_nests():
    evs = [Enter(0, 1000, "vcpu0", "guest", "outer", {}),
           Enter(1, 2000, "vcpu0", "guest", "inner", {}),
           Leave(2, 3000, "vcpu0", "guest", "outer", 0),   # inner never left: closed with outer
           Leave(3, 4000, "vcpu0", "guest", "nobody", 0),  # no such frame: ignored
           Enter(4, 5000, "host0", "kvm", "open_at_end", {"gpa": 0x100000, "n": 3}),
           Instant(5, 6000, "host0", "vmm", "exit", {"reason": "KVM_EXIT_HYPERCALL"})]
    buf = io.BytesIO()
    write_perfetto(evs, buf)
    _, _, slices, stacks, _, _, times = _parse(buf.getvalue())
    assert [n for _, n, _ in slices] == ["outer", "inner", "open_at_end"]
    assert all(not s for s in stacks.values())
    # begin 1, 2 us; both ended at 3 us; the frame left open ends at the last timestamp
    assert [t for _, _, t in times] == [1000, 2000, 3000, 3000, 5000, 6000]


def test_streaming_recorder_writes_whole_file_or_none(tmp_path):
    path = tmp_path / "run.pftrace"
    rec = PerfettoRecorder(path)
    with tracing(rec):
        SnpSystem(memory=64 << 20).run(None)
    assert not path.exists()                  # nothing at the destination while it runs
    n = len(rec)
    rec.close()
    _, _, slices, stacks, _, _, times = _parse(path.read_bytes())
    assert n > 0 and slices and all(not s for s in stacks.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pftrace"]

    aborted = tmp_path / "aborted.pftrace"
    rec = PerfettoRecorder(aborted)
    with tracing(rec):
        SnpSystem(memory=64 << 20).run(None)
    rec.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pftrace"]


# -- compressed batches --------------------------------------------------------------------

def _write(events, **kw) -> tuple[bytes, PerfettoWriter]:
    buf = io.BytesIO()
    w = PerfettoWriter(buf, **kw)
    for e in events:
        w.add(e)
    w.finish()
    return buf.getvalue(), w


def test_compressed_trace_is_zlib_batches_of_the_same_packets(conversion):
    raw, wr = _write(conversion.events, compress=False)
    comp, wc = _write(conversion.events, compress=True, batch_bytes=4096)
    assert wr.batches == 0 and _packet_stream(raw) == raw    # nothing to inflate
    tops = [pb.TracePacket.FromString(body) for _, body in _top_level(comp)]
    assert tops and all(p.HasField("compressed_packets") for p in tops)
    assert wc.batches == len(tops) > 1
    batches: list[int] = []
    assert _packet_stream(comp, batches) == raw              # same packets, same order
    # a batch is written once it reaches batch_bytes: every one but the last holds at
    # least that much, and at most that plus one event's packets
    assert all(4096 <= b < 4096 + 1024 for b in batches[:-1])
    assert wc.packets == wr.packets and wc.slices == wr.slices and wc.flows == wr.flows
    assert len(comp) * 3 < len(raw)
    assert _parse(comp) == _parse(raw)


_names = st.sampled_from(["outer", "inner", "snp_begin_psc", "x"])
_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=False),
    st.sampled_from(["", "<GuestKernel>", "VMGEXIT", "a b", "<", "é"]),
    st.tuples(st.integers(0, 1 << 40), st.booleans(), st.text(max_size=3)),
)
_args = st.dictionaries(st.sampled_from(["gpa", "npages", "op", "result"]), _values, max_size=3)
_ctxs = st.sampled_from(["vcpu0", "vcpu1", "host0", "host1"])
_parties = st.sampled_from(["guest", "cpu", "kvm", "vmm"])


@st.composite
def _events(draw):
    """Calls, returns, instants and switches: mostly well nested (a Leave of the
    innermost open frame, as the recorder gives them), sometimes not (a Leave of an outer
    frame, of a frame never entered, or on another party's track)."""
    out, ts = [], 0
    open_frames: dict[str, list[tuple[str, str]]] = {}
    for seq in range(draw(st.integers(0, 80))):
        ts += draw(st.integers(-500, 50_000))    # a late event is clamped on its sequence
        kind = draw(st.integers(0, 4))
        ctx, party, name = draw(_ctxs), draw(_parties), draw(_names)
        stack = open_frames.setdefault(ctx, [])
        if kind == 0:
            out.append(Enter(seq, max(ts, 0), ctx, party, name, draw(_args)))
            stack.append((party, name))
        elif kind == 1 and stack and draw(st.integers(0, 4)):
            party, name = stack.pop()
            out.append(Leave(seq, max(ts, 0), ctx, party, name, draw(_values)))
        elif kind in (1, 4):
            out.append(Leave(seq, max(ts, 0), ctx, party, name, draw(_values)))
        elif kind == 2:
            out.append(Instant(seq, max(ts, 0), ctx, party, name, draw(_args)))
        else:
            out.append(Switch(seq, max(ts, 0), ctx, draw(_ctxs), "VMGEXIT"))
    return out


@settings(max_examples=150, deadline=None)
@given(_events(), st.integers(1, 2048))
def test_differential_compressed_equals_uncompressed(events, batch):
    """Whatever the events and the batch size, the compressed file's packets, inflated,
    are byte for byte the uncompressed writer's output."""
    raw, _ = _write(events, compress=False)
    comp, w = _write(events, compress=True, batch_bytes=batch)
    assert _packet_stream(comp) == raw
    assert w.batches == sum(1 for _ in _top_level(comp))


class _GeneralPath(PerfettoWriter):
    """Every event through the writer's general code: the reference for the fast paths
    of :meth:`PerfettoWriter.add` (an Enter; a Leave of the innermost frame)."""

    def add(self, e) -> None:
        self._last_ns = max(self._last_ns, e.ts_ns)
        self._add(e, [])


@settings(max_examples=150, deadline=None)
@given(_events())
def test_differential_fast_paths_equal_the_general_code(events):
    fast, _ = _write(events, compress=False)
    buf = io.BytesIO()
    w = _GeneralPath(buf, compress=False)
    for e in events:
        w.add(e)
    w.finish()
    assert fast == buf.getvalue()


def test_fast_paths_equal_the_general_code_on_a_real_run(conversion):
    fast, _ = _write(conversion.events, compress=False)
    buf = io.BytesIO()
    w = _GeneralPath(buf, compress=False)
    for e in conversion.events:
        w.add(e)
    w.finish()
    assert fast == buf.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(-(1 << 64), 1 << 66),
                 st.integers(0, 64).map(lambda k: (1 << k) - 1),
                 st.integers(0, 64).map(lambda k: 1 << k)))
def test_varint_fast_path_equals_the_reference(n):
    assert _varint(n) == _varint_slow(n)


def test_an_event_too_big_to_compress_under_the_limit_is_written_as_it_is():
    """trace_packet.proto: a compressed_packets packet should stay under 512 KB; an event
    carrying ~1 MB of incompressible text goes out uncompressed, and the file still reads."""
    rnd = random.Random(1)
    big = "".join(rnd.choice("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                  for _ in range(1 << 20))
    evs = [Enter(0, 100, "vcpu0", "guest", "outer", {"gpa": 0x1000}),
           Instant(1, 200, "vcpu0", "guest", "blob", {"text": big}),
           Leave(2, 300, "vcpu0", "guest", "outer", 0)]
    comp, w = _write(evs, compress=True)
    raw, _ = _write(evs, compress=False)
    # the batch holding the big event goes out as it is; the Leave after it, compressed
    tops = [pb.TracePacket.FromString(body) for _, body in _top_level(comp)]
    assert [p.HasField("compressed_packets") for p in tops] == [False] * 5 + [True]
    assert w.batches == 1 and _packet_stream(comp) == raw
    assert [n for _, n, _ in _parse(comp)[2]] == ["outer"]


def test_compression_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("SNPSIM_PFTRACE_COMPRESS", raising=False)
    assert compress_from_env() is True
    monkeypatch.setenv("SNPSIM_PFTRACE_COMPRESS", "0")
    assert compress_from_env() is False
    rec = PerfettoRecorder(tmp_path / "raw.pftrace")
    assert rec.writer.compress is False
    rec.abort()
    for bad in (0, BATCH_BYTES + 1):
        with pytest.raises(ValueError):
            PerfettoWriter(io.BytesIO(), batch_bytes=bad)


def test_streamed_boot_is_bounded_batches(tmp_path):
    """The recorder streams batches of about BATCH_BYTES while the run goes: memory stays
    bounded, and the file reads back whole."""
    path = tmp_path / "boot.pftrace"
    rec = PerfettoRecorder(path, compress=True)
    with tracing(rec):
        SnpSystem(memory=64 << 20).run(None)
    rec.close()
    batches: list[int] = []
    data = path.read_bytes()
    _packet_stream(data, batches)
    assert rec.writer.batches == len(batches) >= 2
    assert all(BATCH_BYTES <= b < BATCH_BYTES + 4096 for b in batches[:-1])
    _, _, slices, stacks, _, _, _ = _parse(data)
    assert len(slices) == rec.writer.slices and all(not s for s in stacks.values())


class _FailingFile:
    """A file object whose ``n``-th write raises ``exc`` (a full disk, or Ctrl-C)."""

    def __init__(self, f, n: int, exc: BaseException) -> None:
        self.f, self.n, self.exc, self.writes = f, n, exc, 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        if self.writes == self.n:
            raise self.exc
        return self.f.write(data)


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                                 KeyboardInterrupt()])
def test_a_trace_cut_mid_run_leaves_no_file(tmp_path, exc):
    """A full disk at the second batch: the run goes on, close() raises the error, and
    neither the trace nor its temporary file is left.  Ctrl-C at the second batch stops
    the run; abort() (what ``snpsim run`` does then) leaves nothing either."""
    path = tmp_path / "cut.pftrace"
    rec = PerfettoRecorder(path, compress=True, batch_bytes=16 << 10)
    rec.writer.out = _FailingFile(rec.writer.out, 2, exc)
    if isinstance(exc, OSError):
        with tracing(rec):
            SnpSystem(memory=64 << 20).run(None)       # the run itself finishes
        assert rec.writer.out.writes == 2
        with pytest.raises(OSError) as raised:
            rec.close()
        assert raised.value.errno == errno.ENOSPC
    else:
        with pytest.raises(KeyboardInterrupt), tracing(rec):
            SnpSystem(memory=64 << 20).run(None)
        rec.abort()
    assert list(tmp_path.iterdir()) == []
