"""The ``snpsim`` command line.

Each sub-command lives in its own module of this package and registers itself on the
``main`` group.  Bad input gives a one-line message on stderr and exit status 2.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["main"]

# Sub-command modules; each defines a click command named ``command``.
_COMMANDS = ("decode", "trace", "run", "scenarios")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
