# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Trace events as JSON lines: one JSON object per event, in recording order.

Model-only (no kernel twin).  Schema (version 1), one object per line, keys in this
order; every object has ``type``, ``seq`` and ``ts_ns`` (nanoseconds since the tracer was
installed):

======== ===========================================================================
type     other keys
======== ===========================================================================
enter    ``ctx``, ``party``, ``name``, ``args`` (object: argument name -> value)
leave    ``ctx``, ``party``, ``name``, ``result`` (value; ``"raised <ExcName>"`` if it raised)
instant  ``ctx``, ``party``, ``name``, ``args``
switch   ``from_ctx``, ``to_ctx``, ``reason``
======== ===========================================================================

Values are JSON ``null``, booleans, numbers, strings and arrays (Python tuples).
Integers are written exactly, addresses included; note that JavaScript readers lose
precision above 2**53 (use a big-int-aware parser, or the Chrome export, whose args
are hex strings).  ``read_jsonl`` turns the lines back into events (arrays back into
tuples), so a stored trace compares equal to a fresh recording.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .atomic import atomic_write
from .events import ArgValue, Enter, Instant, Leave, Switch, TraceEvent

__all__ = ["event_to_dict", "event_from_dict", "to_jsonl", "write_jsonl", "read_jsonl"]


def event_to_dict(event: TraceEvent) -> dict[str, Any]:
    """The schema object for one event (see the module doc)."""
    d: dict[str, Any] = {"type": event.type, "seq": event.seq, "ts_ns": event.ts_ns}
    if isinstance(event, Switch):
        d.update(from_ctx=event.from_ctx, to_ctx=event.to_ctx, reason=event.reason)
    elif isinstance(event, Leave):
        d.update(ctx=event.ctx, party=event.party, name=event.name, result=event.result)
    else:
        d.update(ctx=event.ctx, party=event.party, name=event.name, args=dict(event.args))
    return d


def _tuples(value: Any) -> ArgValue:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value  # type: ignore[no-any-return]


def event_from_dict(d: dict[str, Any]) -> TraceEvent:
    """The event for one schema object.  Raises ``ValueError`` for an unknown ``type``
    and ``KeyError`` for a missing key."""
    kind = d.get("type")
    if kind == "switch":
        return Switch(d["seq"], d["ts_ns"], d["from_ctx"], d["to_ctx"], d["reason"])
    if kind == "leave":
        return Leave(d["seq"], d["ts_ns"], d["ctx"], d["party"], d["name"], _tuples(d["result"]))
    if kind in ("enter", "instant"):
        cls = Enter if kind == "enter" else Instant
        args = {k: _tuples(v) for k, v in d["args"].items()}
        return cls(d["seq"], d["ts_ns"], d["ctx"], d["party"], d["name"], args)
    raise ValueError(f"trace JSONL: unknown event type {kind!r}")


def to_jsonl(events: Iterable[TraceEvent]) -> Iterator[str]:
    """One JSON line (without newline) per event."""
    for e in events:
        yield json.dumps(event_to_dict(e), separators=(",", ":"))


def write_jsonl(events: Iterable[TraceEvent], out: str | Path | IO[str]) -> None:
    """Write ``events`` as JSON lines to a path or an open text file."""
    if isinstance(out, str | Path):
        with atomic_write(out) as f:
            write_jsonl(events, f)
        return
    for line in to_jsonl(events):
        out.write(line + "\n")


def read_jsonl(src: str | Path | Iterable[str]) -> list[TraceEvent]:
    """Read events back from a path or from lines; blank lines are skipped.

    Raises ``ValueError`` (``json.JSONDecodeError`` included) for a malformed line.
    """
    if isinstance(src, str | Path):
        with open(src, encoding="utf-8") as f:
            return read_jsonl(f.readlines())
    return [event_from_dict(json.loads(line)) for line in src if line.strip()]
