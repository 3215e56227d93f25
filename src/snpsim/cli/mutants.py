# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim mutants``: mutation adequacy of the named checks (issue 17 item 4).

For each check of :data:`snpsim.spec.checks.CHECKS` (or those given with ``--check``), the
check is removed and every attack it stops is run again, then the tests that name it
(:func:`snpsim.scenarios.mutants.run_mutants`).  Prints a table (rich), or ``--json``;
``--markdown`` prints docs/mutants.md's tables.  ``--no-tests`` skips the test runs (the
attack half takes seconds; the tests a few minutes).  Exit status 0; 2 with one line for
an unknown check or attack.  ``snpsim explore --mutants`` can call the same library
function.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["command"]


@click.command("mutants")
@click.option("--check", "checks", multiple=True, metavar="NAME",
              help="only this check (repeatable); default: every named check")
@click.option("--attack", "attacks", multiple=True, metavar="NAME",
              help="only this attack (repeatable); default: the whole catalogue")
@click.option("--no-tests", is_flag=True, help="do not run the tests under each mutant")
@click.option("--tests-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="the suite's tests directory (default: the checkout's)")
@click.option("--json", "as_json", is_flag=True, help="print the rows as JSON")
@click.option("--markdown", is_flag=True, help="print docs/mutants.md's tables")
def command(checks: tuple[str, ...], attacks: tuple[str, ...], no_tests: bool,
            tests_dir: Path | None, as_json: bool, markdown: bool) -> None:
    """Remove each named guest, KVM and RMP check in turn and report, per check, the
    attacks it stops, what they do without it, and which tests kill the mutant."""
    from snpsim.adversary import ATTACKS
    from snpsim.scenarios.mutants import mutants_markdown, run_mutants, verdict_text
    from snpsim.spec.checks import CHECKS

    for c in checks:
        if c not in CHECKS:
            click.echo(f"snpsim mutants: unknown check {c!r} (known: {', '.join(CHECKS)})", err=True)
            sys.exit(2)
    for a in attacks:
        if a not in ATTACKS:
            click.echo(f"snpsim mutants: unknown attack {a!r}: see 'snpsim scenarios'", err=True)
            sys.exit(2)
    if tests_dir is not None and not no_tests and not tests_dir.is_dir():
        click.echo(f"snpsim mutants: --tests-dir {tests_dir}: no such directory", err=True)
        sys.exit(2)
    quiet = as_json or markdown
    progress = None if quiet else (lambda label: click.echo(f"  {label}", err=True))
    rows = run_mutants(list(checks) or None, attacks=list(attacks) or None, tests=not no_tests,
                       tests_dir=tests_dir, progress=progress)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    if markdown:
        click.echo(mutants_markdown(rows), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mutation adequacy of the named checks")
    for col in ("check", "layer", "attacks it stops", "without it", "only it stops", "killed by tests"):
        table.add_column(col, overflow="fold")
    for r in rows:
        without = "\n".join(verdict_text(v, "") for v in r.attacks) or "no attack reaches it"
        killed = ("not run" if not r.tests_run else
                  "\n".join(t.rsplit("::", 1)[-1] for t in r.killed_by) or
                  ("NO TEST FAILS" if r.tests else "no test names it"))
        table.add_row(r.check, r.layer, "\n".join(v.attack for v in r.attacks) or "--", without,
                      ", ".join(r.only_stopped_by) or "NONE", killed)
    Console(width=max(Console().width, 160)).print(table)
