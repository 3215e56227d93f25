# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A campaign: ``budget`` independent runs drawn from one seed (:func:`draw`), run on
this process, on local worker processes or on a Ray cluster, each checked against the
invariants (:data:`snpsim.explore.explorer.INVARIANTS`); a failing run shrunk to a
minimal program (:func:`shrink`) and written as a scenario file with its trace
(:func:`write_failure`).

A run's record (:func:`run_program`) holds nothing that depends on where or when it
ran (no wall time, no process id), so the same seed gives the same records on 1 worker,
N workers and Ray (``tests/explore/test_campaign.py``).
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snpsim.api import Scenario, ScenarioError
from snpsim.spec.checks import CHECKS, disabled_checks

from .explorer import STUCK_LOG
from .program import Behaviour, Program, draw

__all__ = ["RunRecord", "CampaignResult", "run_program", "run_index", "campaign", "shrink",
           "stopper", "write_failure", "target_vcpus", "mutant_campaigns"]

#: Largest number of runs :func:`shrink` spends on one failure.
SHRINK_RUNS = 48


@dataclass
class RunRecord:
    """What one run gave: ``index``, ``seed`` (scheduler), ``behaviours`` (their source
    lines), ``malicious``, ``outcome`` (``RunOutcome.describe()``), ``stopper`` (for a
    run where a malicious behaviour acted: the check that ended the run, or "none:
    completed"; else None), ``fired`` (what the behaviours did),
    ``violations`` (``{"invariant", "detail", "step"}`` each), ``checks`` (the named
    checks of :data:`snpsim.spec.checks.CHECKS` that fired, sorted)."""

    index: int
    seed: int
    behaviours: list[str]
    malicious: bool
    outcome: str
    stopper: str | None
    fired: list[str]
    violations: list[dict[str, Any]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Some invariant was broken."""
        return bool(self.violations)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON)."""
        return {"index": self.index, "seed": self.seed, "behaviours": self.behaviours,
                "malicious": self.malicious, "outcome": self.outcome, "stopper": self.stopper,
                "fired": self.fired, "violations": self.violations, "checks": self.checks}


def stopper(outcome: Any) -> str:
    """The check that ended a run (an :class:`snpsim.api.RunOutcome`): the guest's
    termination request (reason set/code and the guest function that asked: the check
    that failed), a named livelock (the loop), a guest panic, a host oops (the RMP's
    host #PF), or the VMM's end; "none: completed" when the guest completed."""
    if outcome.completed:
        return "none: completed"
    if outcome.termination is not None:
        rs, rc, fn = outcome.termination
        return f"guest termination {rs}/{rc} by {fn}"
    if outcome.livelock_loop is not None:
        return f"livelock in {outcome.livelock_loop}"
    if outcome.panic:
        return f"guest panic: {outcome.panic}"
    if outcome.host_oopses:
        return "host oops: " + outcome.host_oopses[0].split(":")[0]
    return f"vmm {outcome.vmm.result}"


def build(program: Program, note: str = "") -> Scenario:
    """The scenario of ``program``: its source (:meth:`Program.source`) executed."""
    ns: dict[str, Any] = {"__name__": "__snpsim_explore__"}
    code = compile(program.source(note), f"<explore run {program.index}>", "exec")
    exec(code, ns)  # noqa: S102 - our own generated scenario text, the file we write
    return ns["scenario"]


def run_program(program: Program, *, trace: bool = False) -> tuple[RunRecord, Any]:
    """Run ``program`` once; ``(record, result)`` (the :class:`snpsim.api.Result`, None
    when the model raised).  Campaign-level invariants: ``model-error`` (an exception
    out of the model or a hook, not a schedule step that could not be done),
    ``honest-completes`` (no malicious behaviour, and the guest did not complete)."""
    lines = [b.source() for b in program.behaviours]
    try:
        res = build(program).run(trace=trace)
    except ScenarioError:
        raise
    except Exception as e:  # noqa: BLE001 - a model error is a finding, not a crash
        last = traceback.extract_tb(e.__traceback__)[-1]
        return RunRecord(program.index, program.seed, lines, program.malicious, "exception",
                         None, [], [{"invariant": "model-error", "step": -1,
                                     "detail": f"{type(e).__name__}: {e} ({Path(last.filename).name}"
                                               f":{last.lineno} {last.name})"}]), None
    ex = res.data.get("explore", {})
    stuck = not res.outcome.completed and (
        (bool(program.schedule) and not ex.get("schedule_done"))
        or (res.host is not None and res.host.vm is not None
            and any(STUCK_LOG in line for line in res.host.log)))
    violations = list(ex.get("violations", []))
    for err in res.errors:
        if not err.startswith("schedule:"):
            violations.append({"invariant": "model-error", "detail": err, "step": -1})
            break
    fired = list(ex.get("fired", []))
    if not program.malicious and not res.outcome.completed and not stuck:
        violations.append({"invariant": "honest-completes", "step": -1,
                           "detail": f"honest host, but: {res.describe()}"})
    stop = None
    if fired and program.malicious:
        stop = "stuck: the schedule held a vCPU" if stuck else stopper(res.outcome)
    outcome = "stuck: a vCPU held while another waits for it" if stuck else res.describe()
    return RunRecord(program.index, program.seed, lines, program.malicious, outcome,
                     stop, fired, violations, sorted(res.outcome.checks)), res


def target_vcpus(target: str) -> int:
    """How many vCPUs the target has (a built-in target, or a scenario file)."""
    from .targets import load_target
    from .targets import target as builtin

    return (load_target(target) if target.endswith(".py") else builtin(target))[0].vcpus


def run_index(args: tuple[Any, ...]) -> dict[str, Any]:
    """Worker entry point: draw run ``index`` of campaign ``(target, seed, index,
    bounds, vcpus[, removed])`` and run it, with the named checks ``removed`` (a tuple of
    :data:`snpsim.spec.checks.CHECKS` keys) taken out for the run; the record as plain
    data (picklable).  The removal travels with the job, so it holds on any worker."""
    target, seed, index, bounds, vcpus, *rest = args
    removed = tuple(rest[0]) if rest else ()
    with disabled_checks(removed):
        record, _res = run_program(draw(target, seed, index, bounds, vcpus))
    return record.as_dict()


@dataclass
class CampaignResult:
    """A campaign's records (by run index) and its parameters."""

    target: str
    seed: int
    bounds: str
    records: list[dict[str, Any]]

    def failures(self) -> list[dict[str, Any]]:
        """Records with a broken invariant."""
        return [r for r in self.records if r["violations"]]

    def by_invariant(self) -> dict[str, int]:
        """Invariant name -> runs that broke it."""
        c: Counter[str] = Counter()
        for r in self.records:
            for v in {v["invariant"] for v in r["violations"]}:
                c[v] += 1
        return dict(sorted(c.items()))

    def stoppers(self) -> dict[str, int]:
        """Check that ended a malicious run -> how many runs."""
        return dict(sorted(Counter(r["stopper"] for r in self.records
                                   if r["stopper"] is not None).items()))


def campaign(target: str, *, budget: int, seed: int = 0, bounds: str = "honest",
             workers: int = 1, ray_address: str | None = None,
             progress: Callable[[int], None] | None = None,
             removed: Iterable[str] = ()) -> CampaignResult:
    """Run ``budget`` runs of ``target`` drawn from ``seed`` within ``bounds``: in this
    process (``workers`` 1), on ``workers`` local processes, or on the Ray cluster at
    ``ray_address`` (needs the ``ray`` extra).  ``progress(n)`` is called as runs finish.
    Records come back in run order whatever ran them.  Raises ScenarioError for a
    target that cannot be loaded, RuntimeError when Ray is asked for and missing.
    ``removed``: named checks taken out of every run (a mutant campaign, see
    :func:`mutant_campaigns`); KeyError for an unknown name."""
    vcpus = target_vcpus(target)
    gone = tuple(removed)
    for name in gone:
        CHECKS[name]  # KeyError for an unknown check
    jobs: list[tuple[Any, ...]] = [(target, seed, i, bounds, vcpus, gone) for i in range(budget)]
    tick = progress or (lambda n: None)
    records: list[dict[str, Any]]
    if ray_address is not None:
        records = _on_ray(ray_address, jobs, tick, workers)
    elif workers <= 1:
        records = []
        for job in jobs:
            records.append(run_index(job))
            tick(1)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_index, job) for job in jobs]
            for _done in _as_done(futures):
                tick(1)
            records = [f.result() for f in futures]
    return CampaignResult(target, seed, bounds, records)


def _as_done(futures: list[Any]) -> Iterable[Any]:
    from concurrent.futures import as_completed

    return as_completed(futures)


def _on_ray(address: str, jobs: list[tuple[Any, ...]],
            tick: Callable[[int], None], workers: int = 1) -> list[dict[str, Any]]:
    """The jobs as Ray tasks on the cluster at ``address`` ("auto", "ray://host:10001",
    or "local": a Ray instance started here with ``workers`` CPUs, or all of them when
    ``workers`` is 1, and shut down at the end).  Results in job order."""
    try:
        import ray  # type: ignore[import-not-found]
    except ImportError as e:
        raise RuntimeError("--ray needs Ray: pip install 'snpsim[ray]'") from e
    started = False
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=workers if workers > 1 else None, include_dashboard=False,
                     log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
        started = True
    try:
        task = ray.remote(run_index)
        refs = [task.remote(job) for job in jobs]
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=min(len(pending), 8))
            tick(len(done))
        return list(ray.get(refs))
    finally:
        if started:
            ray.shutdown()


def mutant_campaigns(target: str, *, budget: int, seed: int = 0, bounds: str = "malicious",
                     workers: int = 1, ray_address: str | None = None,
                     checks: Iterable[str] | None = None,
                     progress: Callable[[str, int], None] | None = None) -> list[dict[str, Any]]:
    """Mutation adequacy by campaign (issue 17 item 4, ``snpsim explore --mutants``): the
    campaign of ``target`` is run once on the full model, then once per named check of
    ``checks`` (default every key of :data:`snpsim.spec.checks.CHECKS`) with that check
    removed, the same ``budget`` runs drawn from the same ``seed``.  A run of the full
    model in which the check fired is compared with the same run under the mutant.
    One row per check (plain data): ``check``, ``layer``, ``fired_in`` (runs where it
    fired on the full model), ``broken`` (of those, runs that break an invariant
    without it: the attack gets through), ``invariants`` (invariant name -> those runs
    that break it), ``instead`` (other check name -> runs where
    it fired only under the mutant: it stops the attack instead), ``changed`` (runs whose
    outcome differs), ``verdict``: "not reached" (it never fired), "gets through"
    (some invariant broken), "stopped instead" (other checks take over), "outcome
    changed" or "survives" (no difference the campaign can see).  ``progress(label,
    n)`` ticks as runs finish.  Raises KeyError for an unknown check; ScenarioError as
    :func:`campaign`."""
    names = list(CHECKS) if checks is None else list(checks)
    for n in names:
        CHECKS[n]
    tick = progress or (lambda label, n: None)

    def one(label: str, removed: tuple[str, ...]) -> CampaignResult:
        return campaign(target, budget=budget, seed=seed, bounds=bounds, workers=workers,
                        ray_address=ray_address, removed=removed,
                        progress=lambda n: tick(label, n))

    base = one("full model", ())
    rows: list[dict[str, Any]] = []
    for name in names:
        fired = [r for r in base.records if name in r["checks"]]
        row: dict[str, Any] = {"check": name, "layer": CHECKS[name].layer,
                               "fired_in": len(fired), "broken": 0, "invariants": {},
                               "instead": {},
                               "changed": 0, "verdict": "not reached"}
        if fired:
            mutant = {r["index"]: r for r in one(f"without {name}", (name,)).records}
            instead: Counter[str] = Counter()
            broke: Counter[str] = Counter()
            for r in fired:
                m = mutant[r["index"]]
                if m["violations"] and not r["violations"]:
                    row["broken"] += 1
                    broke.update({v["invariant"] for v in m["violations"]})
                row["changed"] += m["outcome"] != r["outcome"]
                for other in set(m["checks"]) - set(r["checks"]) - {name}:
                    instead[other] += 1
            row["instead"] = dict(sorted(instead.items()))
            row["invariants"] = dict(sorted(broke.items()))
            row["verdict"] = ("gets through" if row["broken"] else
                              "stopped instead" if instead else
                              "outcome changed" if row["changed"] else "survives")
        rows.append(row)
    return rows


def _fails_with(program: Program, invariant: str) -> bool:
    record, _res = run_program(program)
    return any(v["invariant"] == invariant for v in record.violations)


def shrink(program: Program, invariant: str, *, max_runs: int = SHRINK_RUNS) -> Program:
    """A smaller program that still breaks ``invariant``: behaviours and schedule steps
    removed one at a time while the failure stays (greedy delta debugging), each
    remaining behaviour tried at its first call or point (``nth`` 1), then the
    scheduler seed tried at 0.  At most ``max_runs`` runs."""
    runs = 0

    def still(p: Program) -> bool:
        nonlocal runs
        runs += 1
        return _fails_with(p, invariant)

    best = program
    if best.schedule and runs < max_runs and still(best.with_(schedule=())):
        best = best.with_(schedule=())
    changed = True
    while changed and runs < max_runs:
        changed = False
        for i in range(len(best.behaviours)):
            cand = best.with_(behaviours=best.behaviours[:i] + best.behaviours[i + 1:])
            if runs >= max_runs:
                break
            if still(cand):
                best, changed = cand, True
                break
        if not changed and len(best.schedule) > 2:
            for i in range(len(best.schedule) - 1):
                cand = best.with_(schedule=best.schedule[:i] + best.schedule[i + 1:])
                if runs < max_runs and still(cand):
                    best, changed = cand, True
                    break
    for i, b in enumerate(best.behaviours):  # the earliest call or point that still fails
        smaller = _first_time(b)
        if smaller is not None and runs < max_runs:
            cand = best.with_(behaviours=best.behaviours[:i] + (smaller,) + best.behaviours[i + 1:])
            if still(cand):
                best = cand
    if best.seed != 0 and runs < max_runs and still(best.with_(seed=0)):
        best = best.with_(seed=0)
    return best


def _first_time(b: Behaviour) -> Behaviour | None:
    """``b`` acting at the first matching call or point instead of the ``nth`` (None
    when it already does, or has no ``nth``)."""
    if b.method in ("psc_answer", "msr_answer", "map_gpa") and b.args[1] > 1:
        return Behaviour(b.method, (b.args[0], 1))
    if b.method == "event" and b.args[0][2] > 1:
        (when, fn, _nth), action, page = b.args
        return Behaviour(b.method, ((when, fn, 1), action, page))
    return None


def write_failure(program: Program, invariant: str, out_dir: Path) -> dict[str, Any]:
    """Write ``program`` (already shrunk) as ``explore-<invariant>-run<index>.py`` in
    ``out_dir`` with its call-graph trace beside it (``.trace.txt``: the whole run) and
    the failing step's (``.step.txt``: the calls of the function at which the invariant
    was found broken, e.g. ``set_memory_decrypted``), after checking the file breaks
    ``invariant`` again when run.  Returns ``{"invariant", "file", "trace",
    "step_trace", "detail", "replayed", "behaviours", "schedule", "seed"}``."""
    from snpsim.trace.export import write_trace

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"explore-{invariant}-run{program.index}"
    path = out_dir / f"{stem}.py"
    record, res = run_program(program, trace=True)
    hit = next((v for v in record.violations if v["invariant"] == invariant), None)
    note = (f"Breaks invariant {invariant!r}"
            + (f" at step {hit['step']}: {hit['detail']}" if hit else ": not seen on replay")
            + f"\nOutcome: {record.outcome}")
    path.write_text(program.source(note))
    trace_path = out_dir / f"{stem}.trace.txt"
    step_path = out_dir / f"{stem}.step.txt"
    if res is not None and res.events:
        write_trace(res.events, trace_path)
        where = (hit or {}).get("where", "")
        if where.startswith("host event at "):
            where = where.removeprefix("host event at ")
        if where and " " not in where:  # a modelled function: the calls of the failing step
            write_trace(res.events, step_path, root=where)
    return {"invariant": invariant, "file": str(path),
            "trace": str(trace_path) if trace_path.exists() else None,
            "step_trace": str(step_path) if step_path.exists() else None,
            "detail": hit["detail"] if hit else None, "replayed": hit is not None,
            "behaviours": [b.source() for b in program.behaviours],
            "schedule": [list(s) for s in program.schedule], "seed": program.seed}
