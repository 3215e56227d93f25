# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Cost of the ``traced`` decorator when tracing is off (and, for scale, when it is on).

Run with pytest-benchmark (the file is not collected by the test suite)::

    .venv/bin/pytest benchmarks/bench_trace.py -o python_files='bench_*.py' --benchmark-enable

or as a script, which prints ns per call and the ratio traced-off / plain::

    .venv/bin/python benchmarks/bench_trace.py

With ``NullTracer`` installed (the default) a traced function is the plain function
(``traced`` returns it; a tracer arms it in place), so the ratio is 1 up to noise; the
numbers go into ``docs/trace.md``.
"""

from __future__ import annotations

import timeit

from snpsim.trace import Recorder, set_tracer, traced, tracing


class Vcpu:
    """Stands for a context object, left out of the recorded arguments."""


def plain(vcpu: Vcpu, gpa: int, npages: int) -> int:
    return gpa + npages


@traced("kvm", name="plain")
def traced_fn(vcpu: Vcpu, gpa: int, npages: int) -> int:
    return gpa + npages


VCPU = Vcpu()


def test_plain_call(benchmark):
    set_tracer(None)
    benchmark(plain, VCPU, 0x100000, 1)


def test_traced_call_tracing_off(benchmark):
    set_tracer(None)
    benchmark(traced_fn, VCPU, 0x100000, 1)


def test_traced_call_tracing_on(benchmark):
    rec = Recorder(max_events=0)  # record and drop: the cost of building the events
    with tracing(rec):
        benchmark(traced_fn, VCPU, 0x100000, 1)


def _ns_per_call(fn, number: int = 1_000_000) -> float:
    best = min(timeit.repeat(lambda: fn(VCPU, 0x100000, 1), number=number, repeat=5))
    return best / number * 1e9


def main() -> None:
    set_tracer(None)
    p = _ns_per_call(plain)
    off = _ns_per_call(traced_fn)
    with tracing(Recorder(max_events=0)):
        on = _ns_per_call(traced_fn, number=200_000)
    print(f"plain call          {p:8.1f} ns")
    print(f"traced, tracing off {off:8.1f} ns  ({off / p:.2f}x plain, +{off - p:.1f} ns)")
    print(f"traced, tracing on  {on:8.1f} ns  ({on / p:.2f}x plain)")


if __name__ == "__main__":
    main()
