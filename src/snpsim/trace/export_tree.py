# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The call graph as an indented ``=>`` tree, the host side nested under the guest's exit.

Model-only (no kernel twin); the look follows ftrace's function_graph and the call-stack
study snpsim started from::

    set_memory_decrypted(addr=0xffff888000100000, numpages=1) -> 0
      => __set_memory_enc_dec(addr=0xffff888000100000, numpages=1, enc=False) -> 0
        ...
              => VMGEXIT() [cpu] -> 0
                => sev_handle_vmgexit() [kvm] -> 0
                  => snp_begin_psc(gpa=0x100000) [kvm] -> 0
                * KVM_EXIT_HYPERCALL nr=0xc [vmm]
                => kvm_convert_memory(start=0x100000, size=0x1000) [vmm] -> 0

Line format: a frame is ``name(k=v, ...)``, then `` [party]`` when the party is not
``guest``, then `` -> result`` once it returned (nothing while it is still open, or
when it returned ``None``; `` -> raised ExcName`` when it raised).  An ``Instant`` is ``* NAME k=v ... [party]``.  Child lines
are indented two spaces per level and start with ``=>`` (frames) or ``*`` (instants).
When the events hold more than one guest context or more than one host context, the
bracket also names the context (``[kvm host1]``, ``[vcpu1]``).

Value rule (``format_value``): ints from 10 up are hex (``0x100000``: addresses and
frame numbers are what users look for, and they read them in hex), ints 0..9 and
negative ints (``-22``, an errno) are decimal; bools are ``True``/``False``; strings
print bare when they are a simple token (letters, digits, ``_.<>|:[]-``) and quoted
otherwise; tuples print as ``(a, b)``.

Nesting rule (``build_call_tree``), processing events in order:

1. Each context has its own stack of open frames.  A ``Leave`` closes the innermost
   open frame of its context with the same name (frames above it that never left are
   closed silently); a ``Leave`` with no such frame is ignored.
2. A *guest* context's frames nest by its own stack; its top-level frames are roots
   of the tree.  A context is a guest context when it has an event of party
   ``guest``, is the target of a ``Switch`` with reason ``VMRUN``, or its id starts
   with ``vcpu``; the others are host contexts.
3. A ``Switch`` from a guest context into a host context starts a new *segment* of the
   host context, anchored at the guest's innermost open frame (the VMGEXIT, VMMCALL
   or faulting access that exited) or at the root if the guest has none.
4. A host frame (or instant) is placed under the host's innermost open frame if that
   frame was entered in the current segment; otherwise under the segment's anchor.
   So host frames opened before the switch (``KVM_RUN``, ``VMRUN``) get no children in
   this part of the tree, their ``Leave`` (which can come in a later segment) only sets
   their result where they are, and a host frame still open when the host switches
   back to a guest stops receiving children.  Before any guest has run, the anchor is
   the root.
5. Other switches (host to host, host into guest) change no placement.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .events import Args, ArgValue, Enter, Instant, Leave, Switch, TraceEvent

__all__ = ["CallNode", "build_call_tree", "format_tree", "format_value", "format_args"]

_TOKEN = re.compile(r"^[\w.<>|:\[\]-]+$")


def format_value(value: ArgValue) -> str:
    """Format one argument or result value for display (the value rule in the module doc)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return hex(value) if value >= 10 else str(value)
    if isinstance(value, str):
        return value if _TOKEN.match(value) else repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def format_args(args: Args, sep: str = ", ") -> str:
    """Format an argument dict as ``k=v`` pairs joined by ``sep``."""
    return sep.join(f"{k}={format_value(v)}" for k, v in args.items())


@dataclass(eq=False)
class CallNode:
    """One frame (``kind == "frame"``) or instant (``kind == "instant"``) of the call tree.

    ``result`` is the ``Leave`` result, or ``None`` with ``closed == False`` while the
    frame never left in the events given.  ``seq`` is the ``Enter``/``Instant`` seq.
    """

    kind: str
    name: str
    party: str
    ctx: str
    args: Args
    seq: int
    result: ArgValue = None
    closed: bool = False
    children: list[CallNode] = field(default_factory=list)


@dataclass
class _Ctx:
    guest: bool
    stack: list[tuple[CallNode, int]] = field(default_factory=list)  # (node, segment)
    segment: int = 0
    anchor: CallNode | None = None  # None = the root


def _guest_contexts(events: list[TraceEvent]) -> set[str]:
    guests: set[str] = set()
    for e in events:
        if isinstance(e, Switch):
            if e.reason == "VMRUN":
                guests.add(e.to_ctx)
            for c in (e.from_ctx, e.to_ctx):
                if c.startswith("vcpu"):
                    guests.add(c)
        else:
            if e.party == "guest" or e.ctx.startswith("vcpu"):
                guests.add(e.ctx)
    return guests


def build_call_tree(events: Iterable[TraceEvent]) -> list[CallNode]:
    """Build the call forest from ``events`` (in recording order) by the nesting rule.

    Returns the root nodes in order.  Never raises on unbalanced or partial traces.
    """
    evs = list(events)
    guests = _guest_contexts(evs)
    ctxs: dict[str, _Ctx] = {}
    roots: list[CallNode] = []

    def state(ctx: str) -> _Ctx:
        st = ctxs.get(ctx)
        if st is None:
            st = ctxs[ctx] = _Ctx(guest=ctx in guests)
        return st

    def place(st: _Ctx) -> CallNode | None:
        if st.stack and st.stack[-1][1] == st.segment:
            return st.stack[-1][0]
        return st.anchor

    def attach(parent: CallNode | None, node: CallNode) -> None:
        (roots if parent is None else parent.children).append(node)

    for e in evs:
        if isinstance(e, Enter):
            st = state(e.ctx)
            node = CallNode("frame", e.name, e.party, e.ctx, e.args, e.seq)
            attach(place(st), node)
            st.stack.append((node, st.segment))
        elif isinstance(e, Leave):
            st = state(e.ctx)
            for i in range(len(st.stack) - 1, -1, -1):
                if st.stack[i][0].name == e.name:
                    node = st.stack[i][0]
                    node.result = e.result
                    node.closed = True
                    del st.stack[i:]
                    break
        elif isinstance(e, Instant):
            st = state(e.ctx)
            attach(place(st), CallNode("instant", e.name, e.party, e.ctx, e.args, e.seq))
        elif isinstance(e, Switch):
            src, dst = state(e.from_ctx), state(e.to_ctx)
            if src.guest and not dst.guest:
                dst.segment += 1
                dst.anchor = src.stack[-1][0] if src.stack else None
    return roots


def _select(roots: list[CallNode], pattern: str) -> list[CallNode]:
    """The topmost nodes whose name matches ``pattern`` (an exact name or a glob)."""
    out: list[CallNode] = []
    todo = list(reversed(roots))
    while todo:
        node = todo.pop()
        if node.kind == "frame" and fnmatch.fnmatchcase(node.name, pattern):
            out.append(node)
        else:
            todo.extend(reversed(node.children))
    return out


def format_tree(events: Iterable[TraceEvent], root: str | None = None) -> str:
    """Render ``events`` as the indented ``=>`` tree (see the module doc for the rules).

    ``root`` keeps only the subtrees of frames with that name (a ``fnmatch`` glob is
    accepted), host parts included; nested matches inside a kept subtree are not
    repeated.  Returns the text without a trailing newline ("" for no frames).
    """
    evs = list(events)
    roots = build_call_tree(evs)
    if root is not None:
        roots = _select(roots, root)
    ctx_names = {e.ctx for e in evs if not isinstance(e, Switch)}
    guests = _guest_contexts(evs)
    show_ctx = len(ctx_names & guests) > 1 or len(ctx_names - guests) > 1

    def tag(node: CallNode) -> str:
        parts = [] if node.party == "guest" else [node.party]
        if show_ctx:
            parts.append(node.ctx)
        return f" [{' '.join(parts)}]" if parts else ""

    lines: list[str] = []
    todo: list[tuple[CallNode, int]] = [(n, 0) for n in reversed(roots)]
    while todo:
        node, depth = todo.pop()
        indent = "  " * depth
        if node.kind == "instant":
            arrow = "* "
            body = node.name + (f" {format_args(node.args, ' ')}" if node.args else "")
            lines.append(f"{indent}{arrow}{body}{tag(node)}")
        else:
            arrow = "=> " if depth else ""
            res = ""
            if node.closed and node.result is not None:
                r = node.result
                raised = isinstance(r, str) and r.startswith("raised ")
                res = f" -> {r if raised else format_value(r)}"
            lines.append(f"{indent}{arrow}{node.name}({format_args(node.args)}){tag(node)}{res}")
        todo.extend((c, depth + 1) for c in reversed(node.children))
    return "\n".join(lines)
