# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The world switch between host and guest execution contexts, and the scheduler.

Guest and host are separate execution contexts, as on the real machine (ARCHITECTURE.md,
"How control flows").  Each guest vCPU runs in its own greenlet; host code runs in a host
context (the greenlet that calls VMRUN: the VMM's vCPU thread).  ``VMRUN`` switches into
the guest context; a VMGEXIT, a VMMCALL that exits, or an automatic exit (#NPF, HLT,
shutdown) switches back, and the host's ``VMRUN`` returns the exit.  Nothing but the exit
record and the state in ``hw`` crosses.

The world also knows the current context, for two tripwires: guest-port methods assert
they run in their vCPU's guest context, host-port methods that they do not run in any
guest context; and it names the context for the tracer (``vcpu0``, ``host0``).

Several host threads (one per VMM vCPU thread) are greenlets too; :meth:`World.run_threads`
runs them with a seeded scheduler that may switch threads at every ``yield_point`` (each
VMRUN entry and exit), so races are reproducible from the seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import greenlet

from snpsim.trace import record as _trace

__all__ = ["World", "GuestContextDied"]


class GuestContextDied(Exception):
    """Model-only: a guest context ended (its code returned); VMRUN reports a shutdown."""


class World:
    """Execution contexts of one platform: names, the current context, the scheduler.

    ``seed`` seeds the scheduler's choices between host threads (model-only).
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self._names: dict[Any, str] = {}
        self._guest: set[Any] = set()
        #: The guest contexts (read-only view for the CPUs' context tripwires).
        self.guest_contexts = self._guest
        self._threads: list[Any] = []
        self._sched: Any = None
        self.switches = 0
        _trace.set_context_resolver(self.current_ctx)

    # -- contexts --------------------------------------------------------------------
    def current_ctx(self) -> str:
        """Name of the running context (``vcpuN``, ``hostN``; ``host0`` by default)."""
        return self._names.get(greenlet.getcurrent(), "host0")

    def in_guest(self) -> bool:
        """True when the running context is a guest vCPU."""
        return greenlet.getcurrent() in self._guest

    def new_guest_context(self, name: str, entry: Callable[[], None]) -> Any:
        """Create (not start) the guest context ``name`` that will run ``entry()``."""
        g = greenlet.greenlet(entry)
        self._names[g] = name
        self._guest.add(g)
        return g

    def enter_guest(self, g: Any, value: Any = None) -> Any:
        """Switch from the host into guest context ``g``; returns what the guest passes
        back at its next exit.  Raises :class:`GuestContextDied` if the guest's code
        returned instead of exiting."""
        assert not self.in_guest(), "VMRUN from guest context"
        g.parent = greenlet.getcurrent()
        self.switches += 1
        _trace.emit_switch(self.current_ctx(), self._names[g], "VMRUN")
        out = g.switch(value) if g else g.switch()
        if g.dead:
            raise GuestContextDied(self._names[g])
        return out

    def exit_guest(self, exit_record: Any, reason: str) -> Any:
        """From a guest context, switch back to the host that entered it, handing it
        ``exit_record``; returns the value of the host's next ``enter_guest``."""
        cur = greenlet.getcurrent()
        assert cur in self._guest, "guest exit from host context"
        self.switches += 1
        host = cur.parent
        _trace.emit_switch(self._names[cur], self._names.get(host, "host0"), reason)
        return host.switch(exit_record)

    # -- host threads and the scheduler ------------------------------------------------
    def run_threads(self, threads: list[tuple[str, Callable[[], Any]]]) -> list[Any]:
        """Run host threads ``(name, fn)`` to completion under the seeded scheduler;
        returns their results in order.  Must be called from the main context."""
        results: list[Any] = [None] * len(threads)
        live: dict[int, Any] = {}
        main = greenlet.getcurrent()

        for i, (name, fn) in enumerate(threads):
            def body(i: int = i, fn: Callable[[], Any] = fn) -> None:
                results[i] = fn()

            g = greenlet.greenlet(body, parent=main)
            self._names[g] = name
            live[i] = g
        self._sched = main
        try:
            while live:
                i = self.rng.choice(sorted(live))
                g = live[i]
                g.switch()
                if g.dead:
                    del live[i]
        finally:
            self._sched = None
        return results

    def yield_point(self) -> None:
        """A point where the scheduler may run another host thread (no-op with one)."""
        if self._sched is None or self.in_guest():
            return
        cur = greenlet.getcurrent()
        if cur is self._sched:
            return
        self._sched.switch()
