# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""One campaign run as data: the target, the scheduler seed, the drawn host behaviours
and the vCPU schedule (:class:`Program`), how they are drawn from a seed
(:func:`draw`), and the scenario file that runs them (:meth:`Program.source`).

A campaign runs exactly the text :meth:`Program.source` gives (compiled and executed in
memory), so the file it writes for a failure is the run that failed, not a description
of it: ``snpsim run FILE.py`` replays it (the model is deterministic for a given seed,
schedule and set of hooks).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

from .explorer import HONEST_PSC_ANSWERS, HOST_ACTIONS, MAP_GPA_ANSWERS, MSR_ANSWERS, PSC_ANSWERS

__all__ = ["Behaviour", "Program", "draw", "BOUNDS", "POINTS", "SCHEDULE_POINTS"]

#: The host's bounds: "honest" draws only what a correct host may do (scheduler seeds,
#: vCPU schedules, 2 MiB guest_memfd folios, a PSC answered with no progress once);
#: "malicious" adds misanswers, host events and VMM faults.
BOUNDS = ("honest", "malicious")

#: Points where host events happen: (when, function, largest nth drawn).
POINTS = (("leave", "snp_complete_psc", 6), ("enter", "set_memory_encrypted", 2),
          ("leave", "set_memory_decrypted", 2), ("leave", "kvm_handle_hc_map_gpa_range", 4),
          ("leave", "sev_gmem_prepare", 4))

#: Points a vCPU can be held at in a schedule: (when, function).
SCHEDULE_POINTS = (("enter", "set_memory_decrypted"), ("leave", "set_memory_decrypted"),
                   ("enter", "set_memory_encrypted"), ("enter", "snp_begin_psc"),
                   ("leave", "snp_complete_psc"), ("enter", "kvm_handle_hc_map_gpa_range"))


#: The licence header of a written scenario file, the project's own (the tag is split so
#: that licence scanners do not read this module's source as a second header).
_SPDX = "SPDX"
_HEADER = (f"# {_SPDX}-FileCopyrightText: Copyright © 2026 The snpsim developers", "#",
           f"# {_SPDX}-License-Identifier: GPL-2.0-only")


@dataclass(frozen=True)
class Behaviour:
    """One drawn host behaviour: an :class:`snpsim.explore.explorer.Explorer` method
    (``method``: "psc_answer", "msr_answer", "map_gpa", "event", "knob") and its
    arguments (``args``: literals; for "event" the first is ``(when, function, nth)``)."""

    method: str
    args: tuple[Any, ...]

    @property
    def malicious(self) -> bool:
        """Outside what a correct host does (everything but a knob and an honest PSC
        answer, :data:`snpsim.explore.explorer.HONEST_PSC_ANSWERS`)."""
        if self.method == "psc_answer":
            return self.args[0] not in HONEST_PSC_ANSWERS
        return self.method != "knob"

    def source(self) -> str:
        """The line of the scenario file that installs it."""
        if self.method == "event":
            (when, fn, nth), action, page = self.args
            return f"ex.event({when}({fn!r}, nth={nth}), {action!r}, page={page})"
        if self.method == "knob":
            return f"ex.knob({self.args[0]!r}, {self.args[1]!r})"
        kind, nth = self.args
        return f"ex.{self.method}({kind!r}, nth={nth})"


@dataclass(frozen=True)
class Program:
    """A run: ``target`` (a built-in target name, or the path of a scenario file),
    ``seed`` (the scheduler's), ``behaviours`` and ``schedule`` (``(vcpu, when,
    function)`` steps: vCPU held at the point, or ``(vcpu, None, None)``: released),
    ``index`` (its number in the campaign) and ``campaign_seed``."""

    target: str
    seed: int
    behaviours: tuple[Behaviour, ...] = ()
    schedule: tuple[tuple[int, str | None, str | None], ...] = ()
    index: int = 0
    campaign_seed: int = 0
    bounds: str = "honest"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def malicious(self) -> bool:
        """Some behaviour is outside what a correct host does."""
        return any(b.malicious for b in self.behaviours)

    def with_(self, **changes: Any) -> Program:
        """A copy with ``changes``."""
        return replace(self, **changes)

    def source(self, note: str = "") -> str:
        """The scenario file that runs this program (against :mod:`snpsim.api` and
        :mod:`snpsim.explore`); ``note`` goes in as comment lines after the docstring."""
        is_file = self.target.endswith(".py")
        lines = [*_HEADER, "",
                 f'"""snpsim explore: run {self.index} of campaign seed {self.campaign_seed} '
                 f'on {self.target} ({self.bounds} host).', "",
                 "Replay: snpsim run THIS_FILE.py [--trace out.txt]", '"""', ""]
        if note:
            lines += [f"# {line}" for line in note.splitlines()] + [""]
        lines += [
                  "from snpsim.api import do, enter, leave, run  # noqa: F401",
                  "from snpsim.explore import Explorer, load_target, target  # noqa: F401", ""]
        if is_file:
            lines.append(f"scenario, secrets = load_target({self.target!r})")
            lines.append(f"scenario.override(seed={self.seed})")
        else:
            lines.append(f"scenario, secrets = target({self.target!r}, seed={self.seed})")
        lines.append("ex = Explorer(scenario, secrets=secrets)")
        lines += [b.source() for b in self.behaviours]
        if self.schedule:
            steps = []
            for vcpu, when, fn in self.schedule:
                steps.append(f"run({vcpu})" if fn is None
                             else f"run({vcpu}, until={when}({fn!r}))")
            lines.append("scenario.schedule(" + ", ".join(steps) + ", do(ex.schedule_done))")
        lines.append("ex.watch()")
        return "\n".join(lines) + "\n"


def draw(target: str, campaign_seed: int, index: int, bounds: str = "honest",
         vcpus: int = 2) -> Program:
    """Run ``index`` of the campaign with seed ``campaign_seed``: drawn from a generator
    seeded by both (so the same run is drawn whichever worker runs it).  ``vcpus``: how
    many vCPUs the target has (schedules use vCPUs 0..vcpus-1).  ValueError for
    unknown ``bounds``."""
    if bounds not in BOUNDS:
        raise ValueError(f"bounds must be one of {', '.join(BOUNDS)}, not {bounds!r}")
    rng = random.Random(f"snpsim-explore:{campaign_seed}:{index}")
    seed = rng.randrange(1 << 32)
    behaviours: list[Behaviour] = []
    if rng.random() < 0.3:
        behaviours.append(Behaviour("knob", ("gmem_max_order", 9)))
    if rng.random() < 0.3:
        behaviours.append(Behaviour("psc_answer", ("no-progress", rng.randint(1, 6))))
    schedule: list[tuple[int, str | None, str | None]] = []
    if vcpus > 1 and rng.random() < 0.5:
        for _ in range(rng.randint(1, 3)):
            when, fn = rng.choice(SCHEDULE_POINTS)
            schedule.append((rng.randrange(vcpus), when, fn))
        schedule.append((schedule[0][0], None, None))
    if bounds == "malicious":
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(("psc_answer", "msr_answer", "map_gpa", "event", "event"))
            if kind == "psc_answer":
                bad = [k for k in PSC_ANSWERS if k not in HONEST_PSC_ANSWERS]
                behaviours.append(Behaviour(kind, (rng.choice(bad),
                                                   rng.randint(1, 6))))
            elif kind == "msr_answer":
                behaviours.append(Behaviour(kind, (rng.choice(list(MSR_ANSWERS)),
                                                   rng.randint(1, 4))))
            elif kind == "map_gpa":
                behaviours.append(Behaviour(kind, (rng.choice(MAP_GPA_ANSWERS),
                                                   rng.randint(1, 4))))
            else:
                when, fn, most = rng.choice(POINTS)
                behaviours.append(Behaviour(kind, ((when, fn, rng.randint(1, most)),
                                                   rng.choice(HOST_ACTIONS), rng.randrange(4))))
    return Program(target, seed, tuple(behaviours), tuple(schedule), index, campaign_seed, bounds)
