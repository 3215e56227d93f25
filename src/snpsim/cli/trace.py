# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim trace FUNCTION``: one conversion through guest, CPU, KVM and VMM, as a call graph."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["command"]

_FUNCS = ("set_memory_decrypted", "set_memory_encrypted")


#: Exit status when the ``--out`` file could not be written after the run.
EXIT_WRITE_FAILED = 3


def _fail(msg: str, status: int = 2) -> None:
    click.echo(f"snpsim trace: {msg}", err=True)
    sys.exit(status)


@click.command(name="trace")
@click.argument("function", metavar="FUNCTION")
@click.option("--pages", default=1, show_default=True, type=int, metavar="1..4096",
              help="Number of 4 KiB pages to convert (1..4096).")
@click.option("--memory", default="64M", show_default=True, metavar="SIZE",
              help="Guest RAM: a size with a binary K/M/G/T suffix (1G = 1GiB), 32M..1T, a "
                   "multiple of 2M.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the trace: .txt (the tree printed), .pftrace (Perfetto's protobuf "
                   "format), .json (Chrome trace event format) or .jsonl (JSON lines).  All but "
                   ".txt hold the whole run (VM creation, launch, boot, the call, power-off), "
                   "not only the call; timestamps are the simulator's wall clock.")
@click.option("--filter", "filter_", default=None,
              help="Keep only matching events, e.g. 'party=guest,kvm;func=snp_*;gpa=0x100000-0x200000'.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**64 - 1),
              metavar="0..2^64-1", help="Scheduler and key seed.")
def command(function: str, pages: int, memory: str, out: Path | None, filter_: str | None,
            seed: int) -> None:
    """Boot a small SNP guest, run FUNCTION on pages of guest memory, and print the call graph.

    FUNCTION is set_memory_decrypted (private -> shared: PVALIDATE rescind, PSC shared,
    C-bit cleared) or set_memory_encrypted (shared -> private; the pages are first made
    shared untraced, then the encrypt is traced).  The tree shows every modelled function
    with its arguments (ints >= 10 in hex; addresses are GVAs in the guest, GPAs/GFNs in
    KVM and the VMM, SPAs/PFNs for RMP instructions) and, nested under the guest's VMGEXIT or VMMCALL, the
    host's handling of it.  After the tree comes the state of the first page: guest PTE
    C-bit, RMP entry (assigned, ASID, GPA, page size, validated), KVM memory attribute, and
    what the guest and the VMM read from it.

    Exit status: 0 when the guest completed the call, 1 when the guest terminated or the
    VMM stopped on an error (the reason is printed), 2 for bad arguments (an --out path
    whose directory cannot be made is found before the run), 3 when the --out file could
    not be written (it is then absent, never partial).
    """
    from snpsim.system import SnpSystem, parse_size
    from snpsim.trace.record import parse_filter

    if function not in _FUNCS:
        _fail(f"unknown FUNCTION {function!r}: choose one of {', '.join(_FUNCS)}")
    if not 1 <= pages <= 4096:
        _fail(f"--pages must be 1..4096, got {pages}")
    try:
        mem = parse_size(memory)
    except ValueError as exc:
        _fail(str(exc))
    if not 32 << 20 <= mem <= 1 << 40:
        _fail(f"--memory must be 32M..1T, got {memory}")
    if mem % (2 << 20):
        _fail(f"--memory must be a multiple of 2M (the guest maps RAM with 2 MiB pages), got {memory}")
    if out is not None and out.suffix.lower() not in (".txt", ".jsonl", ".json", ".pftrace"):
        _fail(f"--out must end in .pftrace, .json, .jsonl or .txt, got {out.name!r}")
    flt = None
    if filter_:
        try:
            flt = parse_filter(filter_)
        except ValueError as exc:
            _fail(f"bad --filter: {exc}")
    if out is not None:
        from snpsim.trace.atomic import prepare_output

        problem = prepare_output(out)
        if problem:
            _fail(f"--out {out}: {problem}")
    try:
        system = SnpSystem(memory=mem, seed=seed, pool_pages=pages + 128)
        result = system.trace_conversion(function, pages, trace_filter=flt)
    except ValueError as exc:
        _fail(str(exc))
    if out is not None:  # the file first: a failed write is not preceded by the whole tree
        from snpsim.trace.export import write_trace

        try:
            write_trace(result.events, out, root=function)
        except OSError as exc:
            _fail(f"cannot write {out}: {exc.strerror or exc}", EXIT_WRITE_FAILED)
    if flt is not None and not any(e.type == "enter" and e.name == function
                                   for e in result.events):
        click.echo(f"(no frame of {function} passed --filter; the kept events recorded while "
                   "it ran follow)")
    click.echo(result.tree if result.tree.strip() else "(no events kept)")
    click.echo(result.state_text())
    if out is not None:
        click.echo(f"trace written to {out}")
    click.echo(f"run ended: {result.outcome}")
    sys.exit(0 if result.completed else 1)
