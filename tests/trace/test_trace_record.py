# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Recording: the traced decorator, the tracer in force, Recorder, filters."""

from __future__ import annotations

import enum

import pytest

from snpsim.trace import (
    Enter,
    Instant,
    Leave,
    NullTracer,
    Recorder,
    Switch,
    TraceFilter,
    Tracer,
    emit_instant,
    emit_switch,
    get_tracer,
    is_tracing,
    parse_filter,
    set_context_resolver,
    set_tracer,
    to_arg_value,
    traced,
    tracing,
)


class Ctx:
    pass


class Op(enum.IntEnum):
    SNP_PAGE_STATE_PRIVATE = 1
    SNP_PAGE_STATE_SHARED = 2


@traced("guest")
def __set_pages_state(vaddr: int, vaddr_end: int, op: Op, caller: object = None) -> int:
    return 0


@traced("kvm")
def snp_begin_psc(svm: Ctx, gpa: int, npages: int = 1, *rest: int, **kw: object) -> tuple:
    return (gpa, npages, rest)


@traced("cpu", name="PVALIDATE", skip=("secret",))
def pvalidate(vaddr: int, size: int, validate: bool, secret: int = 7) -> tuple[int, bool]:
    return (0, False)


@traced("guest")
def boom(gpa: int) -> None:
    raise ValueError("bad")


def test_traced_names_and_arguments():
    with tracing() as rec:
        assert __set_pages_state(0x1000, 0x2000, Op.SNP_PAGE_STATE_SHARED, caller=Ctx()) == 0
        snp_begin_psc(Ctx(), 0x5000, 2, 3, 4, flag=True, data=b"abcd")
        pvalidate(0xFFFF888000000000, 0, validate=True)
    e = rec.events
    assert e[0] == Enter(
        0,
        e[0].ts_ns,
        "host0",
        "guest",
        "__set_pages_state",
        {"vaddr": 0x1000, "vaddr_end": 0x2000, "op": "SNP_PAGE_STATE_SHARED", "caller": "<Ctx>"},
    )
    assert isinstance(e[1], Leave) and e[1].result == 0 and e[1].name == "__set_pages_state"
    # the first parameter (the C context object) is left out; *args as a tuple,
    # **kwargs one by one, bytes as their length
    assert e[2].args == {
        "gpa": 0x5000,
        "npages": 2,
        "rest": (3, 4),
        "flag": True,
        "data": "bytes[4]",
    }
    assert e[3].result == (0x5000, 2, (3, 4))
    assert e[4].name == "PVALIDATE" and e[4].party == "cpu"
    assert e[4].args == {"vaddr": 0xFFFF888000000000, "size": 0, "validate": True}
    assert [x.seq for x in e] == list(range(6))
    assert __set_pages_state.__name__ == "__set_pages_state"


def test_defaults_are_recorded_and_bad_calls_raise_their_own_typeerror():
    with tracing() as rec:
        snp_begin_psc(Ctx(), gpa=0x1000)
        with pytest.raises(TypeError):
            pvalidate(1)  # missing arguments: Python's own error, nothing recorded
        with pytest.raises(TypeError):
            pvalidate(1, 2, 3, vaddr=1)
    assert rec.events[0].args == {"gpa": 0x1000, "npages": 1, "rest": ()}
    assert len(rec.events) == 2


def test_exception_is_recorded_and_reraised():
    with tracing() as rec:
        with pytest.raises(ValueError, match="bad"):
            boom(0x1000)
    enter, leave = rec.events
    assert enter.args == {"gpa": 0x1000}
    assert leave.result == "raised ValueError" and leave.ctx == enter.ctx


def test_unknown_party_is_refused():
    with pytest.raises(ValueError, match="unknown party 'hypervisor'"):
        traced("hypervisor")


def test_null_tracer_path_records_nothing():
    assert isinstance(get_tracer(), NullTracer) and not is_tracing()

    def resolver() -> str:
        raise AssertionError("the off path must not even ask for the context")

    set_context_resolver(resolver)
    rec = Recorder()
    set_tracer(rec)
    set_tracer(None)  # off again
    assert __set_pages_state(1, 2, Op.SNP_PAGE_STATE_PRIVATE) == 0
    with pytest.raises(ValueError):
        boom(1)
    emit_instant("vmm", "KVM_EXIT_HYPERCALL", nr=12)
    emit_switch("vcpu0", "host0", "VMGEXIT")
    assert rec.events == [] and isinstance(get_tracer(), NullTracer)


def test_tracing_installs_and_restores():
    outer = Recorder()
    with tracing(outer) as t:
        assert t is outer and get_tracer() is outer and is_tracing()
        with tracing() as inner:
            emit_instant("cpu", "x")
        assert get_tracer() is outer
    assert isinstance(get_tracer(), NullTracer)
    assert len(inner.events) == 1 and outer.events == []
    assert isinstance(outer, Tracer)


def test_emit_helpers_and_context_resolver():
    set_context_resolver(lambda: "vcpu3")
    ticks = iter(range(0, 10_000, 100))
    with tracing(clock=lambda: next(ticks)) as rec:
        emit_instant("cpu", "#VC", error_code=0x404, obj=Ctx, v=[1, 2])
        emit_switch("vcpu3", "host0", "VMGEXIT")
    i, s = rec.events
    assert i == Instant(
        0, 100, "vcpu3", "cpu", "#VC", {"error_code": 0x404, "obj": repr(Ctx), "v": (1, 2)}
    )
    assert s == Switch(1, 200, "vcpu3", "host0", "VMGEXIT")


def test_to_arg_value():
    assert to_arg_value(Op.SNP_PAGE_STATE_SHARED) == "SNP_PAGE_STATE_SHARED"
    assert to_arg_value(True) is True
    assert to_arg_value(bytearray(3)) == "bytes[3]"
    assert to_arg_value(tuple(range(9))) == "<tuple len=9>"
    assert to_arg_value(Ctx(), objects="type") == "<Ctx>"
    assert to_arg_value({1: 2}) == "{1: 2}"

    class Gpa(int):
        pass

    v = to_arg_value(Gpa(5))
    assert v == 5 and type(v) is int


# ---- filters ----------------------------------------------------------------------


def test_parse_filter_good():
    f = parse_filter(" party=guest,kvm ; func=snp_*,vmgexit_* ; gpa=0x100000-0x200000,0x5000 ")
    assert f == TraceFilter(
        parties=frozenset({"guest", "kvm"}),
        funcs=("snp_*", "vmgexit_*"),
        gpa_ranges=((0x100000, 0x200000), (0x5000, 0x5001)),
    )
    assert parse_filter("") == TraceFilter()
    assert parse_filter("gpa=4096-8192;").gpa_ranges == ((4096, 8192),)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("party", "has no '='"),
        ("who=guest", "unknown key 'who'"),
        ("party=guest;party=kvm", "given twice"),
        ("party=", "empty value"),
        ("func=snp_*,", "empty value"),
        ("party=hypervisor", "unknown party 'hypervisor'"),
        ("gpa=zzz", "bad address 'zzz'"),
        ("gpa=0x2000-0x1000", "empty or negative range"),
        ("gpa=0x1000-0x1000", "empty or negative range"),
        ("gpa=0x1000-", "bad address ''"),
    ],
)
def test_parse_filter_bad(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_filter(spec)


def test_gpa_filter_rule():
    f = parse_filter("gpa=0x100000-0x101000")

    def enter(**args):
        return Enter(0, 0, "vcpu0", "guest", "f", args)

    assert f(enter(gpa=0x100000))
    assert f(enter(start=0x100FFF))
    assert f(enter(ghcb_gpa=0x100800))
    assert not f(enter(gpa=0x101000))  # end is exclusive
    assert f(enter(gfn=0x100))
    assert f(enter(start_gfn=0x100))
    assert not f(enter(gfn=0x101))
    assert not f(enter(spa=0x100000, vaddr=0x100000, pfn=0x100))  # other address spaces
    assert not f(enter(gpa=True))
    assert not f(enter(gpa="0x100000"))
    assert f(Switch(0, 0, "vcpu0", "host0", "VMGEXIT"))  # switches are always kept
    g = parse_filter("gpa=0x100800-0x100900")
    assert g(enter(gfn=0x100))  # the page overlaps the range


def test_recorder_with_party_filter_keeps_switches_and_balance(machine):
    rec = machine(Recorder(filter=parse_filter("party=kvm")))
    kinds = {type(e) for e in rec.events}
    assert kinds == {Enter, Leave, Switch}
    assert all(e.party == "kvm" for e in rec.events if not isinstance(e, Switch))
    assert rec.filtered > 0 and rec.dropped == 0
    enters = [e.name for e in rec.events if isinstance(e, Enter)]
    leaves = [e.name for e in rec.events if isinstance(e, Leave)]
    assert sorted(enters) == sorted(leaves)


def test_recorder_gpa_filter_keeps_leaves_of_kept_enters(machine):
    rec = machine(Recorder(filter=parse_filter("gpa=0x100000-0x101000")))
    enters = [e.name for e in rec.events if isinstance(e, Enter)]
    leaves = [e.name for e in rec.events if isinstance(e, Leave)]
    assert "PVALIDATE" in enters and "kvm_convert_memory" in enters
    assert "KVM_RUN" not in enters and "set_memory_decrypted" not in enters  # GVA only
    assert sorted(enters) == sorted(leaves)
    assert any(isinstance(e, Instant) for e in rec.events)


def test_recorder_func_filter_and_tree(machine):
    from snpsim.trace import format_tree

    rec = machine(Recorder(filter=parse_filter("func=snp_*,vmgexit_*")))
    assert format_tree(rec.events) == (
        "vmgexit_psc(gpa=0x100000, npages=1) -> 0\n"
        "  => snp_begin_psc(gpa=0x100000, npages=1) [kvm] -> 0\n"
        "  => snp_complete_one_psc() [kvm] -> 1"
    )


def test_recorder_cap_counts_drops_and_keeps_frames_closed(machine):
    full = machine()
    rec = machine(Recorder(max_events=5))
    assert rec.events[:5] == full.events[:5]
    assert len(rec.events) + rec.dropped == len(full.events)
    enters = sum(isinstance(e, Enter) for e in rec.events)
    leaves = sum(isinstance(e, Leave) for e in rec.events)
    assert enters == leaves  # frames open at the cap still get their Leave
    rec.clear()
    assert len(rec) == 0 and rec.dropped == rec.filtered == 0
    with pytest.raises(ValueError):
        Recorder(max_events=-1)


def test_recorder_accepts_any_predicate(machine):
    rec = Recorder(filter=lambda e: isinstance(e, Switch))
    machine(rec)
    assert rec.events and all(isinstance(e, Switch) for e in rec.events)
    assert {(e.from_ctx, e.to_ctx, e.reason) for e in rec} == {
        ("host0", "vcpu0", "VMRUN"),
        ("vcpu0", "host0", "NPF"),
        ("vcpu0", "host0", "VMGEXIT"),
        ("vcpu0", "host0", "VMMCALL"),
        ("vcpu0", "host0", "HLT"),
    }
