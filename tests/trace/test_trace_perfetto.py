# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The ``.pftrace`` export (issue 15, item 1), read back with Perfetto's own protos (the
``perfetto`` package, a test-only dependency): tracks per party and vCPU, slices that nest
on every track, interned names that resolve, flows across world switches, and the
streaming recorder's all-or-nothing file."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

from snpsim.system import SnpSystem
from snpsim.trace import Enter, Instant, Leave, Switch
from snpsim.trace.export_perfetto import PerfettoRecorder, write_perfetto
from snpsim.trace.record import tracing

BEGIN, END, INSTANT = (pb.TrackEvent.TYPE_SLICE_BEGIN, pb.TrackEvent.TYPE_SLICE_END,
                       pb.TrackEvent.TYPE_INSTANT)


@pytest.fixture(scope="module")
def conversion():
    """One traced set_memory_decrypted of 4 pages, with every event of the run."""
    return SnpSystem(memory=64 << 20).trace_conversion("set_memory_decrypted", pages=4)


def _parse(data: bytes):
    """Decode a .pftrace as Perfetto's importer reads it: tracks from the descriptors; per
    packet sequence, the defaults (track, incremental clock), the interned names and the
    running timestamp (sum of deltas from the clock snapshot)."""
    trace = pb.Trace()
    trace.ParseFromString(data)
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
