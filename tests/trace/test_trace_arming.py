# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Tracing off costs nothing per call: ``traced`` returns the function itself, and a
tracer arms it in place, so every reference to it records (globals imported
elsewhere, class attributes, bound methods taken earlier, tables of functions)."""

import sys

from snpsim.trace import Enter, Leave, Recorder, set_tracer, traced, tracing


def _caller_name() -> str:
    return sys._getframe(2).f_code.co_name


def plain(kernel, gpa: int, n: int = 1) -> tuple[int, str]:
    return gpa + n, _caller_name()


@traced("guest")
def snp_thing(kernel, gpa: int, n: int = 1) -> tuple[int, str]:
    return gpa + n, _caller_name()


class Kvm:
    @traced("kvm", name="kvm_thing")
    def method(self, gfn: int, *, flags: int = 0) -> int:
        return gfn + flags


def make_closure(base: int):
    @traced("vmm")
    def closure_fn(x: int) -> int:
        return base + x
    return closure_fn


TABLE = {"thing": snp_thing}


def calls(rec: Recorder) -> list[tuple[str, str]]:
    return [(type(e).__name__, e.name) for e in rec.events if isinstance(e, (Enter, Leave))]


def test_off_the_function_is_the_original_and_has_no_wrapper_frame():
    set_tracer(None)
    assert snp_thing.__name__ == "snp_thing" and snp_thing.__snpsim_traced__ == ("guest", "snp_thing")
    assert snp_thing.__code__.co_name == "snp_thing"
    # the function called sees its caller directly: no wrapper frame between them
    assert snp_thing(None, 1) == (2, "test_off_the_function_is_the_original_and_has_no_wrapper_frame")
    assert plain(None, 1)[1] == snp_thing(None, 1)[1]


def test_every_reference_records_while_a_tracer_is_installed_and_stops_after():
    bound = Kvm().method  # taken before tracing starts
    closure_fn = make_closure(40)
    with tracing(Recorder(), clock=lambda: 0) as rec:
        assert TABLE["thing"](None, 5, n=2)[0] == 7
        assert bound(3, flags=1) == 4
        assert closure_fn(2) == 42
    assert calls(rec) == [("Enter", "snp_thing"), ("Leave", "snp_thing"),
                          ("Enter", "kvm_thing"), ("Leave", "kvm_thing"),
                          ("Enter", "closure_fn"), ("Leave", "closure_fn")]
    assert rec.events[0].args == {"kernel": None, "gpa": 5, "n": 2}
    assert rec.events[2].args == {"gfn": 3, "flags": 1}
    assert rec.events[1].result == (7, "wrapper")  # armed: the caller seen is the wrapper
    n = len(rec.events)
    assert snp_thing(None, 1)[1] == "test_every_reference_records_while_a_tracer_is_installed_and_stops_after"
    assert bound(1) == 1 and closure_fn(0) == 40 and len(rec.events) == n


def test_tracing_a_traced_function_again_traces_a_copy():
    other = traced("cpu", name="OTHER")(snp_thing)
    assert other is not snp_thing and other.__snpsim_traced__ == ("cpu", "OTHER")
    with tracing(Recorder(), clock=lambda: 0) as rec:
        other(None, 1)
        snp_thing(None, 1)
    assert [e.name for e in rec.events if isinstance(e, Enter)] == ["OTHER", "snp_thing"]


def test_a_function_traced_while_tracing_is_on_is_armed_at_once():
    with tracing(Recorder(), clock=lambda: 0) as rec:
        late = make_closure(1)
        assert late(1) == 2
    assert calls(rec) == [("Enter", "closure_fn"), ("Leave", "closure_fn")]
    assert late.__code__.co_name == "closure_fn"  # disarmed with the rest


def test_the_registry_does_not_grow_with_functions_traced_at_run_time():
    import gc

    from snpsim.trace import record

    gc.collect()
    before = len(record._registry)
    for i in range(50):
        assert make_closure(i)(1) == i + 1
    gc.collect()
    assert len(record._registry) == before
