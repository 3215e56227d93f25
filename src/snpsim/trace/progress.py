# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Livelock detection: the progress watcher and the :class:`Livelock` it raises.

Model-only (no kernel twin).  Every layer may import this module (it imports only the
standard library), like :mod:`snpsim.trace.record`.  One :class:`ProgressWatcher` belongs
to each platform (``Platform.progress``); guest code reaches it through its vCPU
(``GuestCpu.progress``), KVM through the host port (``HostCpu.progress``), the VMM
through the KVM object it opened (``Kvm.host.progress``).

A loop the real system can spin in calls :meth:`ProgressWatcher.watch` once per pass
with a *state key*: a hashable snapshot of everything the next pass depends on (the
PSC buffer after the host's answer, the faulting GPA and error code with the SPTE that
maps it, the RMP entry an instruction keeps failing on, ...).  When one loop on one vCPU
reports the same key ``repeats`` times in a row, nothing the loop looks at has changed
and nothing else can change it: the watcher raises :class:`Livelock`.  A different key
(progress) starts the count again, and :meth:`ProgressWatcher.progress` forgets a loop
when it ends normally.  Counting is per loop and vCPU and only of identical states, so a
long but moving run -- a million #NPFs each at a new GPA -- never trips it.

Cost: one dict lookup and a tuple compare per pass; memory is one slot per (loop,
vCPU) pair, bounded by the number of loop names times vCPUs.  Building the state key is
the caller's cost; the text of the state (``what``) is built only when the watcher
trips.

:class:`Livelock` is a ``BaseException`` so that no ``except Exception`` in modelled
code (a guest fault handler, KVM's error paths) swallows it: it unwinds to the VMM's
vCPU thread (``Machine._cpu_thread``), which stops the whole VM, and the run's outcome
names the loop, the vCPU and the state.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

__all__ = ["Livelock", "ProgressWatcher", "DEFAULT_LIVELOCK_REPEATS"]

#: Model knob (``SnpSystem(..., livelock_repeats=N)``): passes of one loop on one vCPU
#: with the same state before the watcher declares a livelock.  Nothing in Linux, KVM
#: or QEMU bounds these loops; the value only decides how soon the model gives up.
DEFAULT_LIVELOCK_REPEATS = 64


class Livelock(BaseException):  # noqa: N818 - the name of the condition, not of an error
    """A loop that can never end: ``loop`` (the real function that spins, e.g.
    ``vmgexit_psc``), ``vcpu`` (its vCPU index, None for host code with no vCPU),
    ``state`` (short text of the state it is stuck in), ``repeats`` (passes seen with
    that state)."""

    def __init__(self, loop: str, vcpu: int | None, state: str, repeats: int) -> None:
        self.loop = loop
        self.vcpu = vcpu
        self.state = state
        self.repeats = repeats
        super().__init__(self.describe())

    def where(self) -> str:
        """``"on vCPU n"`` or ``"on the host"`` (no vCPU)."""
        return f"on vCPU {self.vcpu}" if self.vcpu is not None else "on the host"

    def describe(self) -> str:
        """One line: ``"<loop> on vCPU n: <state> -- N times the same state"``."""
        return f"{self.loop} {self.where()}: {self.state} -- {self.repeats} times the same state"


class ProgressWatcher:
    """The per-platform livelock detector (see the module docstring).

    ``repeats``: passes with an unchanged state key that make a livelock (>= 2; default
    :data:`DEFAULT_LIVELOCK_REPEATS`).  ``tripped`` holds the first :class:`Livelock`
    raised, for the run's outcome.  Raises ValueError for ``repeats`` < 2.
    """

    __slots__ = ("_repeats", "tripped", "_slots")

    def __init__(self, repeats: int = DEFAULT_LIVELOCK_REPEATS) -> None:
        self.repeats = repeats
        self.tripped: Livelock | None = None
        self._slots: dict[tuple[str, int | None], list] = {}

    @property
    def repeats(self) -> int:
        """The knob in force (see the class docstring)."""
        return self._repeats

    @repeats.setter
    def repeats(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"livelock_repeats must be an int >= 2, got {n!r}")
        self._repeats = n

    def watch(self, loop: str, vcpu: int | None, key: Hashable,
              what: Callable[[], str] | str | None = None) -> None:
        """One pass of ``loop`` on ``vcpu`` found the state ``key``.  Raises
        :class:`Livelock` (and keeps it in ``tripped``) when that is the ``repeats``-th
        pass in a row with an equal key; ``what`` (text, or a callable giving it, called
        only then) describes the state, default ``repr(key)``."""
        slot = self._slots.get((loop, vcpu))
        if slot is None:
            self._slots[(loop, vcpu)] = [key, 1]
            return
        if slot[0] != key:
            slot[0] = key
            slot[1] = 1
            return
        slot[1] += 1
        if slot[1] < self._repeats:
            return
        n = slot[1]
        del self._slots[(loop, vcpu)]
        text = what() if callable(what) else (what if what is not None else repr(key))
        exc = Livelock(loop, vcpu, text, n)
        if self.tripped is None:
            self.tripped = exc
        raise exc

    def last(self, loop: str, vcpu: int | None) -> Hashable | None:
        """The state key of the last pass of ``loop`` on ``vcpu`` (None if none is
        watched): lets a loop build its costly snapshot only when a pass looks like the
        previous one."""
        slot = self._slots.get((loop, vcpu))
        return None if slot is None else slot[0]

    def progress(self, loop: str, vcpu: int | None) -> None:
        """``loop`` on ``vcpu`` ended or moved on: forget its last state."""
        self._slots.pop((loop, vcpu), None)

    def __len__(self) -> int:
        """Loops being watched (one per loop name and vCPU)."""
        return len(self._slots)
