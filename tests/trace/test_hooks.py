# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Hooks (trace/record.py ``add_hook``): every call of a hooked function goes through its
hooks, from every reference, with tracing on or off; removing restores the plain code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snpsim.trace.events import Enter, Leave
from snpsim.trace.record import Recorder, add_hook, hookable, remove_hook, traced, tracing


@traced("kvm")
def t_add(x, y=1):
    return x + y


def t_plain(x):
    return x * 3


def t_caller(x):
    return t_add(x) + t_plain(x)


class Box:
    @traced("vmm")
    def method(self, v):
        return v - 1


def test_hook_replaces_and_wraps_every_reference():
    alias = t_add  # a reference taken before the hook: still hooked
    calls = []

    def wrap(orig, x, y=1):
        calls.append((x, y))
        return orig(x, y) * 10

    h = add_hook(t_add, wrap)
    try:
        assert alias(2) == 30
        assert t_caller(2) == 30 + 6
        assert calls == [(2, 1), (2, 1)]
    finally:
        remove_hook(h)
    assert alias(2) == 3 and t_caller(2) == 9
    assert t_add.__code__ is not None and t_add(5, 5) == 10


def test_plain_function_is_hookable_and_not_recorded():
    hookable(t_plain)
    h = add_hook(t_plain, lambda orig, x: -1)
    try:
        with tracing() as rec:
            assert t_caller(1) == 2 + -1
        names = [e.name for e in rec.events if isinstance(e, Enter)]
        assert names == ["t_add"]  # the plain function is hooked, not traced
    finally:
        remove_hook(h)
    assert t_plain(2) == 6


def test_nested_hooks_last_added_runs_first_and_removal_in_any_order():
    order = []
    h1 = add_hook(t_add, lambda orig, x, y=1: (order.append("h1"), orig(x, y) + 100)[1])
    h2 = add_hook(t_add, lambda orig, x, y=1: (order.append("h2"), orig(x, y) * 2)[1])
    try:
        assert t_add(1) == (1 + 1 + 100) * 2
        assert order == ["h2", "h1"]
        remove_hook(h1)
        assert t_add(1) == 4
    finally:
        remove_hook(h2)
        remove_hook(h1)  # twice: ignored
    assert t_add(1) == 2


def test_hooked_call_is_traced_once_with_the_hooks_result():
    h = add_hook(t_add, lambda orig, x, y=1: 42)
    try:
        with tracing(Recorder()) as rec:
            t_add(1, 2)
    finally:
        remove_hook(h)
    enters = [e for e in rec.events if isinstance(e, Enter) and e.name == "t_add"]
    leaves = [e for e in rec.events if isinstance(e, Leave) and e.name == "t_add"]
    assert len(enters) == 1 and enters[0].args == {"x": 1, "y": 2}
    assert len(leaves) == 1 and leaves[0].result == 42


def test_hook_survives_tracing_off_and_tracing_survives_unhook():
    h = add_hook(t_add, lambda orig, x, y=1: 7)
    with tracing():
        assert t_add(1) == 7
    assert t_add(1) == 7          # tracing went off: still hooked
    with tracing() as rec:
        remove_hook(h)
        assert t_add(1) == 2      # unhooked while tracing: recorded, plain result
    assert [e.name for e in rec.events if isinstance(e, Enter)] == ["t_add"]
    assert t_add(1) == 2


def test_methods_and_exceptions_go_through_the_hook():
    h = add_hook(Box.method, lambda orig, self, v: orig(self, v) + 1000)
    try:
        assert Box().method(5) == 1004
    finally:
        remove_hook(h)
    assert Box().method(5) == 4

    def boom(orig, x, y=1):
        raise RuntimeError("hook says no")

    h = add_hook(t_add, boom)
    try:
        with pytest.raises(RuntimeError):
            t_caller(1)
    finally:
        remove_hook(h)


def test_only_plain_functions():
    with pytest.raises(TypeError):
        add_hook(len, lambda orig: 0)  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.booleans(), st.integers(-5, 5)), max_size=8), st.integers(-50, 50))
def test_differential_hooks_compose_like_nested_calls(spec, x):
    """Property: k hooks on a function give exactly the nested composition of the hook
    functions around the plain function, and after removal the plain result."""
    handles = []
    expected = lambda v: v + 1  # noqa: E731 - t_add(x) with y=1
    try:
        for replace, k in spec:
            if replace:
                handles.append(add_hook(t_add, lambda orig, v, y=1, k=k: k))
                expected = (lambda kk: lambda v: kk)(k)
            else:
                handles.append(add_hook(t_add, lambda orig, v, y=1, k=k: orig(v, y) * 2 + k))
                expected = (lambda f, kk: lambda v: f(v) * 2 + kk)(expected, k)
        assert t_add(x) == expected(x)
    finally:
        for h in handles:
            remove_hook(h)
    assert t_add(x) == x + 1
