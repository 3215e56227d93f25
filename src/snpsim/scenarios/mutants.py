# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Mutation adequacy of the named checks (issue 17 item 4; docs/mutants.md).

A *mutant* is the model with one check of :data:`snpsim.spec.checks.CHECKS` removed
(:func:`snpsim.spec.checks.disabled_checks`: the check's site goes on as if its failure
condition were false).  :func:`run_mutants` answers, per check:

* **attacks** -- which attacks of :data:`snpsim.adversary.ATTACKS` the check stops (it
  fired, in force, in the attack's ``attack/<name>`` run, and did not in the honest run
  of the same workload), and, for each, what happens with the check removed: the attack
  gets through (no check stops it any more) or another check stops it instead (named).
  Only those attacks are re-run under the mutant: a check whose failure condition never
  held in a run cannot change that run when removed (its site is only reached once the
  condition holds), so every other attack's run is the same by construction;
* **tests** -- which tests of the suite that name the check (``@pytest.mark.check(name)``,
  tests/conftest.py) fail when it is removed: they run in a subprocess with
  ``SNPSIM_DISABLE_CHECKS=<name>`` and ``--check <name>``.

:func:`mutants_markdown` renders the table of docs/mutants.md; ``snpsim mutants`` the
same on the terminal or as JSON (:mod:`snpsim.cli.mutants`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from snpsim.spec.checks import CHECKS, ENV_VAR, disabled_checks

__all__ = [
    "verdict_text",
    "AttackRun",
    "AttackVerdict",
    "MutantRow",
    "attack_run",
    "run_attacks",
    "run_mutants",
    "tests_naming",
    "run_tests_under",
    "default_tests_dir",
    "attacks_markdown",
    "tests_markdown",
    "unstopped_markdown",
    "mutants_markdown",
]

#: Memory and vCPUs of every attack run (the seed workload needs no more).
MEMORY = 64 << 20
VCPUS = 1


@dataclass(frozen=True)
class AttackRun:
    """How one ``attack/<name>`` run ended: ``attack`` (None: the honest run of the same
    workload); ``result`` (the VMM's: "completed", "guest-terminated", "livelock",
    "internal-error", ...); ``termination`` ((reason set, code, guest function) or
    None); ``checks`` (the named checks that fired in force, sorted); ``describe`` (one
    line, :meth:`snpsim.system.RunOutcome.describe`); ``read_back`` (the guest read its
    own data back after the conversion; None when it did not get that far)."""

    attack: str | None
    result: str
    termination: tuple[int, int, str] | None
    checks: tuple[str, ...]
    describe: str
    read_back: bool | None = None

    @property
    def ending(self) -> tuple[Any, ...]:
        """What the run's end looks like from outside: result, termination, read back."""
        return (self.result, self.termination, self.read_back)


def attack_run(attack: str | None, disabled: Iterable[str] = ()) -> AttackRun:
    """Run ``attack/<attack>`` (the seed conversion, a PAUSE, a read back: the catalogue's
    attack scenario, :func:`snpsim.scenarios.catalog.variant_scenario`) with the checks
    ``disabled`` removed, on :data:`MEMORY` bytes and :data:`VCPUS` vCPU; ``attack``
    None runs the same workload on the honest host.  Raises KeyError for an unknown
    check name."""
    from snpsim.adversary import ATTACKS
    from snpsim.api import Scenario

    from .catalog import SEED_PAYLOAD, ScenarioParams, seed_round_trip, variant_scenario

    with disabled_checks(disabled):
        if attack is None:
            sc = Scenario("honest", memory=MEMORY, vcpus=VCPUS)
            data: dict[str, Any] = {}

            @sc.guest(vcpu=0)
            def honest(g: Any) -> None:
                va, _gpa, ret = seed_round_trip(g)
                if ret == 0:
                    g.call("cpu_relax")
                    data["read_back"] = g.read(va, len(SEED_PAYLOAD)) == SEED_PAYLOAD
        else:
            ATTACKS[attack]  # KeyError for an unknown attack
            sc, data, _finish, _config = variant_scenario(
                f"attack/{attack}", ScenarioParams(memory=MEMORY, vcpus=VCPUS))
        res = sc.run()
    out = res.outcome
    term = None if out.termination is None else (int(out.termination[0]), int(out.termination[1]),
                                                 str(out.termination[2]))
    return AttackRun(attack, out.vmm.result, term, tuple(sorted(out.checks)), out.describe(),
                     data.get("read_back"))


def run_attacks(disabled: Iterable[str] = (), attacks: Iterable[str] | None = None) -> dict[str, AttackRun]:
    """:func:`attack_run` of every attack in ``attacks`` (default: the whole catalogue),
    by name, with ``disabled`` removed."""
    from snpsim.adversary import ATTACKS

    names = list(ATTACKS) if attacks is None else list(attacks)
    return {a: attack_run(a, disabled) for a in names}


@dataclass(frozen=True)
class AttackVerdict:
    """One attack the check stops: ``attack``; ``with_check`` (the checks that stop it on
    the full model); ``without``: "stopped instead" (with the check removed, a check
    that was not needed before stops it), "still stopped" (checks that fired anyway end
    the run as before), "gets through" (else, and the guest goes on to power off), "no
    named check" (else, and the run ends otherwise: a livelock, a host oops);
    ``instead`` (the checks that fired in the mutant run);
    ``outcome`` (the mutant run's one-line outcome)."""

    attack: str
    with_check: tuple[str, ...]
    without: str
    instead: tuple[str, ...]
    outcome: str


@dataclass
class MutantRow:
    """The mutant of one check: ``check`` and ``layer`` (:class:`snpsim.spec.checks.Check`);
    ``attacks`` (:class:`AttackVerdict` per attack the check stops); ``only_stopped_by``
    (attacks that get through without it); ``tests`` (test node ids that name the check);
    ``killed_by`` (those that fail with it removed); ``tests_run`` (False when the tests
    were not run)."""

    check: str
    layer: str
    attacks: list[AttackVerdict] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    killed_by: list[str] = field(default_factory=list)
    tests_run: bool = False

    @property
    def only_stopped_by(self) -> list[str]:
        """Attacks no other check stops when this one is removed (they get through, or
        the run ends some other way: a livelock, a host oops)."""
        return [v.attack for v in self.attacks if v.without in ("gets through", "no named check")]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the row."""
        d = asdict(self)
        d["only_stopped_by"] = self.only_stopped_by
        return d


def default_tests_dir() -> Path | None:
    """The suite's ``tests`` directory next to the source tree (an editable install or
    a checkout), or None when the package runs from elsewhere."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "tests" / "conftest.py").is_file() and (parent / "pyproject.toml").is_file():
            return parent / "tests"
    return None


def tests_naming(check: str, tests_dir: Path) -> list[Path]:
    """The test files under ``tests_dir`` that mark a test with ``check`` (the string
    ``"<check>"`` on a line holding ``mark.check``), sorted."""
    needle = f'"{check}"'
    found = []
    for path in sorted(tests_dir.rglob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        if needle in text and "mark.check" in text:
            found.append(path)
    return found


def run_tests_under(check: str, tests_dir: Path) -> tuple[list[str], list[str]]:
    """Run the tests marked with ``check`` in a subprocess with the check removed
    (``SNPSIM_DISABLE_CHECKS``).  Returns (every selected test id, the ids that failed or
    errored)."""
    files = tests_naming(check, tests_dir)
    if not files:
        return [], []
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        env = dict(os.environ, **{ENV_VAR: check})
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-p", "no:randomly", "--check", check, f"--junitxml={xml}",
                        *map(str, files)], env=env, cwd=tests_dir.parent,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if not xml.exists():
            return [], []
        selected, failed = [], []
        for case in ET.parse(xml).getroot().iter("testcase"):
            tid = f"{case.get('classname', '')}::{case.get('name', '')}"
            if case.find("skipped") is not None:
                continue
            selected.append(tid)
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(tid)
    return selected, failed


def run_mutants(checks: Iterable[str] | None = None, *, attacks: Iterable[str] | None = None,
                tests: bool = True, tests_dir: Path | None = None,
                progress: Callable[[str], None] | None = None,
                baseline: dict[str, AttackRun] | None = None) -> list[MutantRow]:
    """The mutation table: one :class:`MutantRow` per check of ``checks`` (default: all
    of :data:`snpsim.spec.checks.CHECKS`, in its order), over the attacks ``attacks``
    (default: the whole catalogue).  ``tests``: also run the tests that name each check
    under its mutant (needs ``tests_dir``, default :func:`default_tests_dir`; skipped
    when there is none).  ``progress(label)`` is called before each step; ``baseline``,
    when given, receives the attacks' runs on the full model (for
    :func:`unstopped_markdown`).  Raises KeyError for an unknown check or attack."""
    names = list(CHECKS) if checks is None else list(checks)
    for n in names:
        CHECKS[n]  # KeyError for an unknown check
    if progress:
        progress("honest run and the attacks on the full model")
    honest = set(attack_run(None).checks)
    base = run_attacks((), attacks)
    if baseline is not None:
        baseline.update(base)
        baseline[""] = AttackRun(None, "", None, tuple(sorted(honest)), "the honest host")
    tdir = tests_dir if tests_dir is not None else (default_tests_dir() if tests else None)
    rows = []
    for name in names:
        row = MutantRow(name, CHECKS[name].layer)
        for a, run in base.items():
            if name not in run.checks or name in honest:
                continue
            if progress:
                progress(f"{name}: attack {a}")
            m = attack_run(a, (name,))
            with_check = tuple(c for c in run.checks if c not in honest)
            instead = tuple(c for c in m.checks if c not in honest and c != name)
            if set(instead) - set(with_check):
                verdict = "stopped instead"          # a check that was not needed before
            elif instead and m.ending == run.ending:
                verdict = "still stopped"            # the others it tripped end it the same way
            elif m.result == "completed":
                verdict = "gets through"
            else:
                verdict = "no named check"
            row.attacks.append(AttackVerdict(a, with_check, verdict, instead, m.describe))
        if tests and tdir is not None:
            if progress:
                progress(f"{name}: tests")
            row.tests, row.killed_by = run_tests_under(name, tdir)
            row.tests_run = True
        rows.append(row)
    return rows


def _cell(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(items) if items else "--"


def _short(test_id: str) -> str:
    """``tests.adversary.test_attacks::test_x[p]`` -> ``test_attacks::test_x[p]``."""
    cls, _, name = test_id.partition("::")
    return f"{cls.rsplit('.', 1)[-1]}::{name}"


def attacks_markdown(rows: list[MutantRow]) -> str:
    """The attack half of the mutation table as Markdown (docs/mutants.md): per check, the
    attacks it stops and what each does with the check removed; a last column says
    whether some attack is stopped by this check alone."""
    out = ["| check | layer | attacks it stops | without it | an attack only it stops |",
           "|---|---|---|---|---|"]
    for r in rows:
        stops = _cell(f"`{v.attack}`" for v in r.attacks)
        if not r.attacks and r.layer == "kvm":
            without = "no attack reaches it: it checks the guest's requests, the catalogue's attackers are the host"
        elif not r.attacks:
            without = "no attack in the catalogue reaches it"
        else:
            without = "; ".join(verdict_text(v) for v in r.attacks)
        only = _cell(f"`{a}`" for a in r.only_stopped_by) if r.only_stopped_by else "**none**"
        out.append(f"| `{r.check}` | {r.layer} | {stops} | {without} | {only} |")
    return "\n".join(out) + "\n"


def verdict_text(v: AttackVerdict, quote: str = "`") -> str:
    """One attack's verdict under a mutant, as docs/mutants.md and ``snpsim mutants``
    print it: names wrapped in ``quote`` (Markdown code by default, "" for plain text)."""
    q = quote
    if v.without == "gets through":
        return f"{q}{v.attack}{q} gets through ({v.outcome})"
    if v.without == "no named check":
        return f"{q}{v.attack}{q}: no named check stops it ({v.outcome})"
    return f"{q}{v.attack}{q} {v.without} by {', '.join(f'{q}{c}{q}' for c in v.instead)}"


def unstopped_markdown(baseline: dict[str, AttackRun]) -> str:
    """The attacks no named check stops on the full model (``baseline`` as filled by
    :func:`run_mutants`), one bullet each with how the run ends; "none" when every attack
    is stopped by some check."""
    honest = set(baseline[""].checks) if "" in baseline else set()
    lines = [f"- `{a}`: {r.describe}" for a, r in baseline.items()
             if a and not set(r.checks) - honest]
    return "\n".join(lines) + "\n" if lines else "none\n"


def tests_markdown(rows: list[MutantRow]) -> str:
    """The test half of the mutation table as Markdown: per check, how many tests name
    it and which of them fail when it is removed."""
    out = ["| check | tests that name it | killed by |", "|---|---|---|"]
    for r in rows:
        if not r.tests_run:
            killed = "not run"
        elif r.killed_by:
            killed = _cell(f"`{_short(t)}`" for t in r.killed_by)
        else:
            killed = "**no test fails**" if r.tests else "**no test names it**"
        out.append(f"| `{r.check}` | {len(r.tests) if r.tests_run else '--'} | {killed} |")
    return "\n".join(out) + "\n"


def mutants_markdown(rows: list[MutantRow]) -> str:
    """Both halves: :func:`attacks_markdown`, a blank line, :func:`tests_markdown`."""
    return attacks_markdown(rows) + "\n" + tests_markdown(rows)
