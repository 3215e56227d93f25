# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Chrome trace-event JSON, which the Perfetto UI (ui.perfetto.dev) and chrome://tracing open.

Model-only (no kernel twin).  Format: the "JSON Object Format" of the Trace Event
Format document (Google, "Trace Event Format", the ``traceEvents`` array plus
``displayTimeUnit``).  What snpsim writes:

- one process (``pid`` 1, named ``snpsim``);
- one track (``tid``) per (context, party) pair that occurs, named so it reads
  naturally: ``vCPU 0 guest``, ``vCPU 0 CPU`` (PVALIDATE, VMGEXIT...), ``KVM``,
  ``VMM``, ``CPU`` (instructions the host runs: VMRUN, RMPUPDATE).  With more than one
  host context the host tracks say which (``KVM (host1)``); other context ids give
  ``<ctx> <party>``.  Guest tracks come first, then host tracks; ``thread_name`` and
  ``thread_sort_index`` metadata events (``"ph": "M"``) name and order them;
- a complete event (``"ph": "X"``) per frame, from the matching ``Enter``/``Leave`` of
  one context (the innermost open frame of that name; frames above it that never left
  close with it); frames still open at the end close at the last timestamp of the
  trace; ``cat`` is the party, ``args`` the arguments plus ``result``;
- an instant event (``"ph": "i"``, ``"s": "t"``) per ``Instant``, on its track, and per
  ``Switch``, on the CPU track of the context it leaves, named ``REASON from->to``.

``ts`` and ``dur`` are microseconds as floats (the format's unit; ``ts_ns / 1000``).
Every event has ``name``, ``ph``, ``ts``, ``pid`` and ``tid``.  Argument values use
the tree's display rule for ints (hex strings from 10 up), because JavaScript numbers
cannot hold 64-bit addresses exactly.  Events are sorted by ``ts`` (for equal ``ts`` the
longer frame first), so the X events of each track nest properly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from .atomic import atomic_write
from .events import PARTIES, Args, ArgValue, Enter, Instant, Leave, Switch, TraceEvent
from .export_tree import format_value

__all__ = ["to_chrome", "write_chrome", "track_name"]

PID = 1
_LABEL = {"guest": "guest", "cpu": "CPU", "kvm": "KVM", "vmm": "VMM"}
_VCPU = re.compile(r"^vcpu(\d+)$")
_NUM = re.compile(r"(\d+)$")


def _value(v: ArgValue) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, float):
        return v
    if isinstance(v, int):
        return v if 0 <= v < 10 or -(2**53) < v < 0 else format_value(v)
    if isinstance(v, tuple):
        return [_value(x) for x in v]
    return v


def _args(args: Args) -> dict[str, Any]:
    return {k: _value(v) for k, v in args.items()}


def track_name(ctx: str, party: str, single_host: bool = True) -> str:
    """The display name of the track of ``party`` in context ``ctx`` (see the module doc)."""
    label = _LABEL.get(party, party)
    m = _VCPU.match(ctx)
    if m:
        return f"vCPU {int(m.group(1))} {label}"
    if ctx.startswith("host"):
        return label if single_host else f"{label} ({ctx})"
    return f"{ctx} {label}"


def _track_order(key: tuple[str, str]) -> tuple[int, int, str, int, str]:
    ctx, party = key
    m = _NUM.search(ctx)
    kind = 0 if _VCPU.match(ctx) else (2 if ctx.startswith("host") else 1)
    num = int(m.group(1)) if m else -1
    prank = PARTIES.index(party) if party in PARTIES else len(PARTIES)
    return (kind, num, ctx, prank, party)


def to_chrome(events: Iterable[TraceEvent]) -> dict[str, Any]:
    """Build the trace-event JSON object (``{"traceEvents": [...], "displayTimeUnit": "ns"}``).

    Never raises on unbalanced or partial traces (unmatched ``Leave`` events are ignored).
    """
    evs = list(events)
    keys: set[tuple[str, str]] = set()
    for e in evs:
        if isinstance(e, Switch):
            keys.add((e.from_ctx, "cpu"))
        else:
            keys.add((e.ctx, e.party))
    hosts = {c for c, _ in keys if c.startswith("host")}
    ordered = sorted(keys, key=_track_order)
    tid = {k: i + 1 for i, k in enumerate(ordered)}

    meta: list[dict[str, Any]] = [
        {
            "name": "process_name",
            "ph": "M",
            "ts": 0,
            "pid": PID,
            "tid": 0,
            "args": {"name": "snpsim"},
        },
    ]
    for k in ordered:
        t = tid[k]
        name = track_name(k[0], k[1], single_host=len(hosts) <= 1)
        meta.append(
            {
                "name": "thread_name",
                "ph": "M",
                "ts": 0,
                "pid": PID,
                "tid": t,
                "args": {"name": name},
            }
        )
        meta.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "ts": 0,
                "pid": PID,
                "tid": t,
                "args": {"sort_index": t},
            }
        )

    body: list[tuple[float, float, int, dict[str, Any]]] = []  # (ts, -dur, seq, event)
    stacks: dict[str, list[Enter]] = {}
    last_ns = max((e.ts_ns for e in evs), default=0)

    def close(enter: Enter, end_ns: int, result: ArgValue | None, closed: bool) -> None:
        args = _args(enter.args)
        if closed:
            args["result" if "result" not in args else "_result"] = _value(result)
        ts = enter.ts_ns / 1000.0
        dur = max(end_ns - enter.ts_ns, 0) / 1000.0
        ev = {
            "name": enter.name,
            "ph": "X",
            "ts": ts,
            "dur": dur,
            "pid": PID,
            "tid": tid[(enter.ctx, enter.party)],
            "cat": enter.party,
            "args": args,
        }
        body.append((ts, -dur, enter.seq, ev))

    for e in evs:
        if isinstance(e, Enter):
            stacks.setdefault(e.ctx, []).append(e)
        elif isinstance(e, Leave):
            stack = stacks.get(e.ctx, [])
            for i in range(len(stack) - 1, -1, -1):
                if stack[i].name == e.name:
                    for above in reversed(stack[i + 1 :]):
                        close(above, e.ts_ns, None, False)
                    close(stack[i], e.ts_ns, e.result, True)
                    del stack[i:]
                    break
        elif isinstance(e, Instant):
            ts = e.ts_ns / 1000.0
            body.append(
                (
                    ts,
                    0.0,
                    e.seq,
                    {
                        "name": e.name,
                        "ph": "i",
                        "s": "t",
                        "ts": ts,
                        "pid": PID,
                        "tid": tid[(e.ctx, e.party)],
                        "cat": e.party,
                        "args": _args(e.args),
                    },
                )
            )
        else:
            ts = e.ts_ns / 1000.0
            body.append(
                (
                    ts,
                    0.0,
                    e.seq,
                    {
                        "name": f"{e.reason} {e.from_ctx}->{e.to_ctx}",
                        "ph": "i",
                        "s": "t",
                        "ts": ts,
                        "pid": PID,
                        "tid": tid[(e.from_ctx, "cpu")],
                        "cat": "switch",
                        "args": {"reason": e.reason, "from_ctx": e.from_ctx, "to_ctx": e.to_ctx},
                    },
                )
            )
    for stack in stacks.values():
        for enter in reversed(stack):
            close(enter, last_ns, None, False)

    body.sort(key=lambda item: item[:3])
    return {"traceEvents": meta + [ev for *_, ev in body], "displayTimeUnit": "ns"}


def write_chrome(events: Iterable[TraceEvent], out: str | Path | IO[str]) -> None:
    """Write the Chrome trace-event JSON of ``events`` to a path or an open text file."""
    if isinstance(out, str | Path):
        with atomic_write(out) as f:
            write_chrome(events, f)
        return
    json.dump(to_chrome(events), out, separators=(",", ":"))
