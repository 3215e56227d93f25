# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The ``snpsim`` command line.

Each sub-command lives in its own module of this package and registers itself on the
``main`` group.  Bad input gives a one-line message on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

__all__ = ["main"]


class _OneLineErrors(click.Group):
    """A click group whose usage errors (bad option values, missing arguments, unknown
    commands) are one line on stderr, ``snpsim COMMAND: message``, and exit status 2,
    like the commands' own checks -- not click's three-line usage block."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 - click's entry point
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
            if isinstance(rv, int) and rv:  # ctx.exit(code) comes back as a value here
                sys.exit(rv)
            return rv
        except click.exceptions.Abort:
            click.echo("snpsim: aborted", err=True)
            sys.exit(130)  # the shell's status for a command ended by SIGINT (128 + 2)
        except click.exceptions.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "snpsim"
            click.echo(f"{where}: {exc.format_message()}", err=True)
            sys.exit(2)
        except click.exceptions.ClickException as exc:
            click.echo(f"snpsim: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)

# Sub-command modules; each defines a click command named ``command``.
_COMMANDS = ("decode", "trace", "run", "scenarios", "cost", "explore", "mutants")


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="snpsim")
def main() -> None:
    """snpsim: an executable model of AMD SEV-SNP guest memory.

    It runs the page-state protocol among the Linux guest, the CPU (RMP, PVALIDATE),
    KVM and the userspace VMM, with the real names, binary formats and error codes.
    """


for _name in _COMMANDS:
    try:
        _mod = importlib.import_module(f"snpsim.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command not written yet
        if exc.name != f"snpsim.cli.{_name}":
            raise
        continue
    main.add_command(_mod.command)
