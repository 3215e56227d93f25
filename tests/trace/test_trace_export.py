# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""JSON lines and Chrome trace-event exports, and write_trace (issue 7 item 3)."""

from __future__ import annotations

import io
import json
from collections import defaultdict

import pytest

from snpsim.trace import (
    Enter,
    Instant,
    Leave,
    Switch,
    format_tree,
    read_jsonl,
    to_chrome,
    to_jsonl,
    write_jsonl,
    write_trace,
)

SCHEMA = {
    "enter": ["type", "seq", "ts_ns", "ctx", "party", "name", "args"],
    "leave": ["type", "seq", "ts_ns", "ctx", "party", "name", "result"],
    "instant": ["type", "seq", "ts_ns", "ctx", "party", "name", "args"],
    "switch": ["type", "seq", "ts_ns", "from_ctx", "to_ctx", "reason"],
}


def test_jsonl_schema(machine_events):
    lines = list(to_jsonl(machine_events))
    assert len(lines) == len(machine_events)
    seen = set()
    for line, event in zip(lines, machine_events):
        obj = json.loads(line)
        assert list(obj) == SCHEMA[obj["type"]]
        assert obj["type"] == event.type and obj["seq"] == event.seq
        assert isinstance(obj["ts_ns"], int)
        seen.add(obj["type"])
    assert seen == set(SCHEMA)
    first = json.loads(lines[0])
    assert first == {
        "type": "enter",
        "seq": 0,
        "ts_ns": 1000,
        "ctx": "host0",
        "party": "vmm",
        "name": "kvm_cpu_exec",
        "args": {},
    }


def test_jsonl_round_trip(machine_events, tmp_path):
    buf = io.StringIO()
    write_jsonl(machine_events, buf)
    assert read_jsonl(buf.getvalue().splitlines()) == machine_events
    path = tmp_path / "t.jsonl"
    write_trace(machine_events, path)
    assert read_jsonl(path) == machine_events
    big = [e for e in read_jsonl(path) if isinstance(e, Enter) and e.name == "set_memory_decrypted"]
    assert big[0].args["addr"] == 0xFFFF888000100000  # 64-bit ints exact
    with pytest.raises(ValueError, match="unknown event type"):
        read_jsonl(['{"type": "nope"}'])


def check_chrome(trace: dict) -> None:
    """The trace-event format checks of issue 7, plus proper nesting per track."""
    assert trace["displayTimeUnit"] == "ns"
    per_tid: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for ev in trace["traceEvents"]:
        for key in ("name", "ph", "ts", "pid", "tid"):
            assert key in ev, (key, ev)
        assert ev["ph"] in ("X", "i", "M")
        if ev["ph"] == "X":
            assert isinstance(ev["ts"], float) and isinstance(ev["dur"], float)
            assert ev["dur"] >= 0
            per_tid[ev["tid"]].append((ev["ts"], ev["ts"] + ev["dur"]))
        if ev["ph"] == "i":
            assert ev["s"] == "t"
    for tid, spans in per_tid.items():
        open_: list[float] = []  # ends of the enclosing spans
        for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
            while open_ and open_[-1] <= start and not (open_[-1] == start == end):
                open_.pop()
            if open_:
                assert end <= open_[-1], f"tid {tid}: span {start}-{end} overlaps its parent"
            open_.append(end)
    json.dumps(trace)  # serialisable


def test_chrome_trace(machine_events):
    trace = to_chrome(machine_events)
    check_chrome(trace)
    evs = trace["traceEvents"]
    threads = {ev["tid"]: ev["args"]["name"] for ev in evs if ev["name"] == "thread_name"}
    assert sorted(threads.values()) == sorted(["vCPU 0 guest", "vCPU 0 CPU", "KVM", "VMM", "CPU"])
    order = [threads[t] for t in sorted(threads)]
    assert order[:2] == ["vCPU 0 guest", "vCPU 0 CPU"]  # guest tracks first
    xs = [ev for ev in evs if ev["ph"] == "X"]
    assert len(xs) == sum(isinstance(e, Enter) for e in machine_events)
    by_name = {ev["name"]: ev for ev in xs}
    vmgexit = by_name["VMGEXIT"]
    assert threads[vmgexit["tid"]] == "vCPU 0 CPU" and vmgexit["cat"] == "cpu"
    assert by_name["snp_begin_psc"]["args"] == {"gpa": "0x100000", "npages": 1, "result": 0}
    handle = by_name["sev_handle_vmgexit"]
    # the guest is blocked in VMGEXIT while KVM handles it
    assert vmgexit["ts"] < handle["ts"] < vmgexit["ts"] + vmgexit["dur"]
    instants = [ev for ev in evs if ev["ph"] == "i"]
    assert {ev["name"] for ev in instants} >= {"KVM_EXIT_HYPERCALL", "VMGEXIT vcpu0->host0"}


def test_chrome_closes_open_frames_at_the_end_and_separates_host_threads():
    events = [
        Enter(0, 0, "host0", "kvm", "KVM_RUN", {}),
        Enter(1, 1000, "host1", "vmm", "kvm_cpu_exec", {"big": 1 << 60}),
        Switch(2, 2000, "host0", "vcpu1", "VMRUN"),
        Enter(3, 3000, "vcpu1", "guest", "f", {}),
        Enter(4, 4000, "vcpu1", "guest", "g", {}),
        Leave(5, 5000, "vcpu1", "guest", "f", -22),  # g never left: closes with f
        Instant(6, 6000, "vcpu1", "cpu", "#VC", {"error_code": 0x404}),
        Leave(7, 7000, "host0", "kvm", "unmatched", 0),
    ]
    trace = to_chrome(events)
    check_chrome(trace)
    evs = trace["traceEvents"]
    threads = {ev["args"]["name"] for ev in evs if ev["name"] == "thread_name"}
    assert threads == {"vCPU 1 guest", "vCPU 1 CPU", "KVM (host0)", "VMM (host1)", "CPU (host0)"}
    xs = {ev["name"]: ev for ev in evs if ev["ph"] == "X"}
    assert xs["KVM_RUN"]["ts"] == 0.0 and xs["KVM_RUN"]["dur"] == 7.0  # closed at the end
    assert "result" not in xs["KVM_RUN"]["args"]
    assert xs["g"]["dur"] == 1.0 and xs["f"]["args"] == {"result": -22}
    assert xs["kvm_cpu_exec"]["args"]["big"] == hex(1 << 60)


def test_write_trace_by_suffix(machine_events, tmp_path):
    write_trace(machine_events, tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_text() == format_tree(machine_events) + "\n"
    write_trace(machine_events, tmp_path / "t.txt", root="VMGEXIT")
    assert (tmp_path / "t.txt").read_text().startswith("VMGEXIT(")
    write_trace(machine_events, str(tmp_path / "t.json"))
    check_chrome(json.loads((tmp_path / "t.json").read_text()))
    with pytest.raises(ValueError, match="unknown suffix '.csv'"):
        write_trace(machine_events, tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()
    with pytest.raises(ValueError):
        write_trace(machine_events, tmp_path / "trace")
