# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim explore TARGET``: a campaign of runs over drawn host behaviours and vCPU
schedules, each checked against named invariants (:mod:`snpsim.explore`,
docs/explore.md).  TARGET is a built-in target (``seed``, ``range``) or ``FILE.py``, a scenario
file written against :mod:`snpsim.api`.  Prints a results table (or ``--json``); each
invariant broken is shrunk to a minimal scenario file in ``--out`` with its trace.
Exit status: 0 no invariant broken, 1 some invariant broken, 2 bad arguments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

__all__ = ["command"]

#: The largest ``--budget`` (runs) and ``--workers`` taken.
MAX_BUDGET, MAX_WORKERS = 1_000_000, 512


def _fail(msg: str, status: int = 2) -> NoReturn:
    click.echo(f"snpsim explore: {msg}", err=True)
    sys.exit(status)


@click.command(name="explore")
@click.argument("target", metavar="TARGET")
@click.option("--budget", "budget", type=int, default=50, show_default=True,
              help="How many runs the campaign draws.")
@click.option("--seed", "seed_text", default="0", show_default=True, metavar="0..2^64-1",
              help="The campaign's seed (decimal or 0x hex): the same seed draws the "
                   "same runs.")
@click.option("--host", "bounds", type=click.Choice(["honest", "malicious"]), default=None,
              help="The host's bounds: honest (scheduler seeds, vCPU schedules, 2 MiB "
                   "guest_memfd folios) or malicious (also PSC, MSR-protocol and "
                   "KVM_HC_MAP_GPA_RANGE misanswers, host events, VMM faults).  "
                   "Default: honest; malicious with --mutants.")
@click.option("--mutants", "mutants", is_flag=True,
              help="Mutation adequacy: run the campaign on the full model, then once per "
                   "named check with that check removed, and report per check what the "
                   "runs it stopped do without it (see also 'snpsim mutants').")
@click.option("--check", "checks", multiple=True, metavar="NAME",
              help="With --mutants: only this check (repeatable); default every named check.")
@click.option("--workers", "workers", type=int, default=1, show_default=True,
              help="Local worker processes for the campaign's runs.")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Run on the Ray cluster at ADDRESS ('auto', 'ray://HOST:10001', or "
                   "'local' for a Ray instance started here with --workers CPUs); needs "
                   "snpsim[ray].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("explore-out"), show_default=True,
              help="Where the shrunk scenario file and trace of each broken invariant go.")
@click.option("--no-shrink", "no_shrink", is_flag=True,
              help="Write the failing run as drawn, without shrinking it.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def command(target: str, budget: int, seed_text: str, bounds: str | None, mutants: bool,
            checks: tuple[str, ...], workers: int, ray_address: str | None, out_dir: Path,
            no_shrink: bool, as_json: bool) -> None:
    """Run a campaign over TARGET (a built-in target: 'seed' or 'range'; or FILE.py written
    against snpsim.api): --budget
    runs drawn from --seed within the --host bounds, on --workers local processes or a
    Ray cluster (--ray).  Each run is checked against the invariants of docs/explore.md;
    a malicious run records which check stopped it.  For each invariant broken, the
    first failing run is shrunk to a minimal scenario file in --out that 'snpsim run
    FILE.py' replays, with the call-graph trace beside it (.trace.txt).

    With --mutants, the campaign is repeated once per named check with that check
    removed (--check to choose): a table per check of the runs it stopped, how many of
    them break an invariant without it, and which other checks stop them instead.

    Exit status: 0 no invariant broken (with --mutants: always 0 once it ran); 1 some
    invariant broken; 2 bad arguments (an --out that cannot be written is found before
    the campaign); 3 a failing run's file could not be written."""
    from snpsim.api import ScenarioError
    from snpsim.explore.campaign import shrink, target_vcpus, write_failure
    from snpsim.explore.program import draw
    from snpsim.explore.targets import TARGETS
    from snpsim.spec.checks import CHECKS

    if bounds is None:
        bounds = "malicious" if mutants else "honest"
    if checks and not mutants:
        _fail("--check goes with --mutants")
    for c in checks:
        if c not in CHECKS:
            _fail(f"unknown check {c!r} (known: {', '.join(CHECKS)})")
    if not 1 <= budget <= MAX_BUDGET:
        _fail(f"--budget must be 1..{MAX_BUDGET}, not {budget}")
    if not 1 <= workers <= MAX_WORKERS:
        _fail(f"--workers must be 1..{MAX_WORKERS}, not {workers}")
    try:
        seed = int(seed_text, 0)
    except ValueError:
        _fail(f"--seed must be an integer (decimal or 0x hex), not {seed_text!r}")
    if not 0 <= seed < 1 << 64:
        _fail(f"--seed must be 0..2**64-1, not {seed_text}")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            _fail(f"scenario file {target}: no such file")
        target = str(path.resolve())
    elif target not in TARGETS:
        _fail(f"unknown target {target!r}: {', '.join(TARGETS)} or FILE.py")
    if ray_address is not None:
        try:
            import ray  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            _fail("--ray needs Ray: pip install 'snpsim[ray]'")
    try:
        vcpus = target_vcpus(target)
    except ScenarioError as e:
        _fail(str(e))
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's file: one line
        _fail(f"{target}: {type(e).__name__} while loading: {e}")

    if not mutants:
        made = _check_out_dir(out_dir)
    if mutants:
        _mutants(target, budget, seed, bounds, workers, ray_address, list(checks) or None,
                 as_json)
        return
    result = _run(target, budget, seed, bounds, workers, ray_address, as_json)
    failures: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rec in result.failures():
        for v in rec["violations"]:
            if v["invariant"] in seen:
                continue
            seen.add(v["invariant"])
            program = draw(target, seed, rec["index"], bounds, vcpus)
            if not no_shrink:
                program = shrink(program, v["invariant"])
            try:
                failures.append(write_failure(program, v["invariant"], out_dir))
            except OSError as e:
                _fail(f"--out {out_dir}: cannot write the failing run ({e})", 3)
    summary = {"target": target, "seed": seed, "host": bounds, "budget": budget,
               "workers": workers, "ray": ray_address, "runs": len(result.records),
               "failed_runs": len(result.failures()), "broken": result.by_invariant(),
               "stoppers": result.stoppers(), "failures": failures,
               "records": result.records}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _table(summary)
    if not failures:
        for d in made:  # nothing was written: leave no empty directory behind
            try:
                d.rmdir()
            except OSError:
                break
    sys.exit(1 if failures else 0)


def _run(target: str, budget: int, seed: int, bounds: str, workers: int,
         ray_address: str | None, quiet: bool) -> Any:
    """The campaign with a progress bar on stderr (none with ``quiet``)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from snpsim.explore.campaign import campaign

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return campaign(target, budget=budget, seed=seed, bounds=bounds, workers=workers,
                        ray_address=ray_address)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("explore", total=budget)
        return campaign(target, budget=budget, seed=seed, bounds=bounds, workers=workers,
                        ray_address=ray_address, progress=lambda n: bar.advance(task, n))


def _check_out_dir(out_dir: Path) -> list[Path]:
    """``--out`` made (with its parents) and tried with a probe file before the campaign
    runs: exit status 2 with one line when it cannot be a writable directory.  Returns
    the directories it made, innermost first (removed again when nothing is written)."""
    import os
    import tempfile

    made = [d for d in (out_dir, *out_dir.parents) if not d.exists()]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".snpsim-probe-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        _fail(f"--out {out_dir}: cannot write there ({e.strerror or e})")
    return made


def _mutants(target: str, budget: int, seed: int, bounds: str, workers: int,
             ray_address: str | None, checks: list[str] | None, as_json: bool) -> None:
    """``--mutants``: :func:`snpsim.explore.campaign.mutant_campaigns`, as a table or
    JSON on stdout; progress lines on stderr unless ``as_json``."""
    from snpsim.explore.campaign import mutant_campaigns

    last: list[str] = []

    def progress(label: str, n: int) -> None:
        if not as_json and (not last or last[-1] != label):
            last.append(label)
            click.echo(f"  campaign: {label}", err=True)

    rows = mutant_campaigns(target, budget=budget, seed=seed, bounds=bounds, workers=workers,
                            ray_address=ray_address, checks=checks, progress=progress)
    if as_json:
        click.echo(json.dumps({"target": target, "seed": seed, "host": bounds,
                               "budget": budget, "mutants": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"snpsim explore --mutants {target} (seed {seed}, {bounds} host, "
                    f"{budget} runs per campaign)")
    for col in ("check", "layer", "runs it fired in", "broken without it",
                "stopped instead by", "verdict"):
        t.add_column(col, overflow="fold")
    for r in rows:
        broken = str(r["broken"]) + "".join(f"\n{k} ({v})" for k, v in r["invariants"].items())
        t.add_row(r["check"], r["layer"], str(r["fired_in"]), broken,
                  "\n".join(f"{k} ({v})" for k, v in r["instead"].items()) or "--",
                  r["verdict"])
    Console().print(t)


def _table(summary: dict[str, Any]) -> None:
    """The results as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    from snpsim.explore import INVARIANTS

    con = Console()
    t = Table(title=f"snpsim explore {summary['target']} (seed {summary['seed']}, "
                    f"{summary['host']} host, {summary['runs']} runs)")
    t.add_column("invariant")
    t.add_column("runs broken", justify="right")
    t.add_column("what it says")
    for name, line in INVARIANTS.items():
        t.add_row(name, str(summary["broken"].get(name, 0)), line)
    con.print(t)
    if summary["stoppers"]:
        s = Table(title="what stopped the malicious runs")
        s.add_column("check")
        s.add_column("runs", justify="right")
        for name, n in summary["stoppers"].items():
            s.add_row(name, str(n))
        con.print(s)
    for f in summary["failures"]:
        con.print(f"[bold red]{f['invariant']}[/]: {f['detail']}")
        con.print(f"  replay: snpsim run {f['file']}")
        con.print(f"  trace: {f['trace']}  failing step: {f['step_trace']}")
