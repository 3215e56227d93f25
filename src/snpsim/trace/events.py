# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Trace events: what the recorder keeps and the exporters read.

Model-only (no kernel twin); in the spirit of ftrace's function_graph records and of
execution-specs' typed trace events.  Four kinds, all frozen dataclasses:

- ``Enter``: a modelled function was called (``args`` are its bound arguments);
- ``Leave``: it returned (``result``) or raised (``result == "raised <ExcName>"``);
- ``Instant``: a point event (a userspace exit seen by the VMM, a #VC, a state delta);
- ``Switch``: a world switch between two execution contexts (VMRUN, VMGEXIT, VMMCALL,
  NPF, ...).

Common fields: ``seq`` is the position of the event in its recording (0, 1, 2, ...,
in the order things happened; greenlets make the whole run a single sequence);
``ts_ns`` is a timestamp in nanoseconds since the tracer was installed; ``ctx`` is the
execution context the event happened in (``"vcpu0"``, ``"vcpu1"`` for guest contexts,
``"host0"``, ... for the VMM's vCPU threads); ``party`` is whose code it is
(``"guest"``, ``"cpu"``, ``"kvm"``, ``"vmm"``): PVALIDATE runs in a guest context but its
party is ``"cpu"``.

Argument values are plain data (``ArgValue``): ``None``, ``bool``, ``int``, ``float``,
``str`` and small tuples of those.  Anything else is converted when the event is
recorded (see ``to_arg_value``), so an event never holds a reference to model state.
The ``args`` dict must not be mutated after the event is built.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, TypeAlias

__all__ = [
    "PARTIES",
    "ArgValue",
    "Args",
    "Enter",
    "Leave",
    "Instant",
    "Switch",
    "TraceEvent",
    "to_arg_value",
    "MAX_TUPLE_LEN",
]

#: The parties whose code the model runs, in display order.
PARTIES: tuple[str, ...] = ("guest", "cpu", "kvm", "vmm")

ArgValue: TypeAlias = "None | bool | int | float | str | tuple[ArgValue, ...]"
Args: TypeAlias = Mapping[str, "ArgValue"]

#: Tuples and lists longer than this are recorded as ``"<tuple len=N>"``.
MAX_TUPLE_LEN = 8


@dataclass(frozen=True, slots=True)
class Enter:
    """A modelled function was entered in context ``ctx`` (``ts_ns`` in ns)."""

    seq: int
    ts_ns: int
    ctx: str
    party: str
    name: str
    args: Args
    type: ClassVar[str] = "enter"


@dataclass(frozen=True, slots=True)
class Leave:
    """A modelled function returned ``result``, or raised (``"raised <ExcName>"``)."""

    seq: int
    ts_ns: int
    ctx: str
    party: str
    name: str
    result: ArgValue
    type: ClassVar[str] = "leave"


@dataclass(frozen=True, slots=True)
class Instant:
    """A point event: a userspace exit, a fault delivered, a state delta (``ts_ns`` in ns)."""

    seq: int
    ts_ns: int
    ctx: str
    party: str
    name: str
    args: Args
    type: ClassVar[str] = "instant"


@dataclass(frozen=True, slots=True)
class Switch:
    """A world switch from ``from_ctx`` to ``to_ctx`` for ``reason`` (``"VMGEXIT"``, ``"VMRUN"``...)."""

    seq: int
    ts_ns: int
    from_ctx: str
    to_ctx: str
    reason: str
    type: ClassVar[str] = "switch"


TraceEvent: TypeAlias = Enter | Leave | Instant | Switch

_SCALARS = (type(None), bool, int, float, str)
_EXACT = frozenset(_SCALARS)


def to_arg_value(value: object, *, objects: Literal["repr", "type"] = "repr") -> ArgValue:
    """Convert ``value`` to plain trace data.

    - ``None``, ``bool``, ``str``, ``float`` and ``int`` are kept (an ``int`` subclass
      such as a ``GPA`` NewType value is just an ``int``);
    - an ``Enum`` member becomes its name (``"SIZE_4K"``; a flag combination
      ``"A|B"``; an unnamed flag value its int);
    - ``bytes``/``bytearray``/``memoryview`` become ``"bytes[N]"`` (the length only);
    - a tuple or list of at most ``MAX_TUPLE_LEN`` items becomes a tuple of converted
      items, a longer one ``"<tuple len=N>"``;
    - anything else becomes ``repr(value)`` (``objects="repr"``, for values a caller
      chose to emit) or ``"<TypeName>"`` (``objects="type"``, for the arguments and
      results the ``traced`` decorator records, which are often big context objects).

    Never raises for ordinary objects (a ``repr`` that raises propagates).
    """
    if type(value) in _EXACT:  # the common case first
        return value  # type: ignore[return-value]
    if isinstance(value, enum.Enum):
        name = value.name
        if name is not None:
            return name
        return int(value) if isinstance(value, int) else repr(value)
    if isinstance(value, _SCALARS):
        # subclasses of int/str (not enums): store the plain value
        for base in (bool, int, float, str):
            if isinstance(value, base):
                return base(value)  # type: ignore[call-overload, no-any-return]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"bytes[{len(value)}]"
    if isinstance(value, tuple | list):
        if len(value) > MAX_TUPLE_LEN:
            return f"<{type(value).__name__} len={len(value)}>"
        return tuple(to_arg_value(v, objects=objects) for v in value)
    if objects == "type":
        return f"<{type(value).__name__}>"
    return repr(value)
