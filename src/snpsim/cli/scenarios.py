# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim scenarios``: list the scenarios ``snpsim run`` knows, one line each, and the
``FILE.py`` form (a scenario file written against :mod:`snpsim.api`)."""

from __future__ import annotations

import click

__all__ = ["command"]


@click.command(name="scenarios")
def command() -> None:
    """List the scenarios of 'snpsim run SCENARIO', one line each (and FILE.py: a
    scenario file written against snpsim.api, docs/api.md)."""
    from snpsim.scenarios.catalog import scenario_list

    rows = [*scenario_list(), ("FILE.py", "a scenario file written against snpsim.api: "
                                          "machine, guest work, hooks, schedule "
                                          "(docs/api.md; examples/)")]
    width = max(len(name) for name, _ in rows)
    for name, line in rows:
        click.echo(f"{name.ljust(width)}  {line}")
