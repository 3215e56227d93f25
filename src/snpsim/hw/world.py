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
        self._thread_g: list[Any] = []
        self._resume: list[Any] = []
        self._thread_of: dict[Any, int] = {}
        #: Model-only: calls the scheduler makes in its own context after the running
        #: thread parks or yields (the scenario API's host events at named points).
        self.pending: list[Callable[[], None]] = []
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
    def run_threads(self, threads: list[tuple[str, Callable[[], Any]]],
                    driver: Callable[[], None] | None = None) -> list[Any]:
        """Run host threads ``(name, fn)`` to completion under the scheduler; returns
        their results in order.  Must be called from the main context.

        ``driver`` (model-only, the scenario API's deterministic schedule) runs first, in
        the scheduler's own context (named ``host-scenario``): it runs threads with
        :meth:`run_until` and may call host code between steps.  When it returns, the
        threads still alive run under the seeded random choice, as without a driver."""
        results: list[Any] = [None] * len(threads)
        main = greenlet.getcurrent()
        self._thread_g = []
        self._resume = []
        self._thread_of = {}
        for i, (name, fn) in enumerate(threads):
            def body(i: int = i, fn: Callable[[], Any] = fn) -> None:
                results[i] = fn()

            g = greenlet.greenlet(body, parent=main)
            self._names[g] = name
            self._thread_g.append(g)
            self._resume.append(g)
            self._thread_of[g] = i
        self._sched = main
        previous_name = self._names.get(main)
        self._names[main] = "host-scenario"
        try:
            if driver is not None:
                driver()
            while True:
                live = [i for i, g in enumerate(self._thread_g) if not g.dead]
                if not live:
                    break
                self._switch_to(self.rng.choice(live))
                self._run_pending()
        finally:
            self._sched = None
            if previous_name is None:
                self._names.pop(main, None)
            else:
                self._names[main] = previous_name
        return results

    def _switch_to(self, i: int) -> None:
        g = self._resume[i]
        if g.dead:  # a guest context that returned: its host thread runs on
            g = self._resume[i] = self._thread_g[i]
        g.switch()

    def thread_alive(self, i: int) -> bool:
        """Host thread ``i`` of the running :meth:`run_threads` has not returned."""
        return not self._thread_g[i].dead

    def run_until(self, held: set[int], done: Callable[[], bool]) -> bool:
        """From the driver: run the live threads not in ``held`` under the seeded choice
        until ``done()`` is true (True; checked before each switch) or no such thread is
        left (False).
        Threads in ``held`` stay where they parked."""
        assert greenlet.getcurrent() is self._sched, "run_until outside the scheduler"
        while not done():
            free = [i for i, g in enumerate(self._thread_g) if not g.dead and i not in held]
            if not free:
                return False
            self._switch_to(self.rng.choice(free))
            self._run_pending()
        return True

    def _run_pending(self) -> None:
        while self.pending:
            self.pending.pop(0)()

    def current_thread(self) -> int | None:
        """Index of the host thread the running context belongs to (a guest context
        belongs to the host thread that entered it); None outside :meth:`run_threads`
        threads."""
        g = greenlet.getcurrent()
        thread_of = self._thread_of
        while g is not None and g not in thread_of:
            g = g.parent
        return thread_of.get(g) if g is not None else None

    def park(self) -> None:
        """Stop the running thread (from its host or guest context) and go back to the
        scheduler; it resumes here when the scheduler switches to it again.  No-op
        outside :meth:`run_threads`."""
        if self._sched is None:
            return
        i = self.current_thread()
        if i is None:
            return
        self._resume[i] = greenlet.getcurrent()
        self._sched.switch()

    def yield_point(self) -> None:
        """A point where the scheduler may run another host thread (no-op with one, and
        in a guest context)."""
        if self._sched is None or self.in_guest():
            return
        cur = greenlet.getcurrent()
        if cur is self._sched:
            return
        i = self._thread_of.get(cur)
        if i is not None:
            self._resume[i] = cur
        self._sched.switch()
