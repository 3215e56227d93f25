# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim decode KIND VALUE``: read SEV-SNP values pasted from logs.

Kinds: msr, psc, ghcb, npf, pf, term, exit, psc-result.  Everything is decoded by
``snpsim.spec``; this module only parses input and prints.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click
from rich.console import Console
from rich.table import Table

from snpsim.spec.errors import SpecDecodeError
from snpsim.spec.exit_codes import describe_exit_code
from snpsim.spec.faults import decode_npf_error_code, decode_pf_error_code
from snpsim.spec.ghcb import GHCB_FIELDS, GHCB_SIZE, decode_ghcb
from snpsim.spec.msr_protocol import decode_msr
from snpsim.spec.psc import SnpPscDesc, describe_psc_result, validate_psc_desc
from snpsim.spec.termination import decode_term_msr, decode_term_nae
from snpsim.spec.units import U64_MAX

__all__ = ["command", "parse_hex_u64", "parse_hex_bytes", "KINDS"]

KINDS = ("msr", "psc", "ghcb", "npf", "pf", "term", "exit", "psc-result")


class _BadInput(Exception):
    """Input that cannot be decoded; becomes a one-line message and exit status 2."""


def parse_hex_u64(text: str, what: str = "value") -> int:
    """Parse ``0x...``, plain hex or ``_``-separated hex (always hex) into a u64."""
    t = text.strip().replace("_", "")
    if t[:2].lower() == "0x":
        t = t[2:]
    if not t or any(c not in "0123456789abcdefABCDEF" for c in t):
        raise _BadInput(f"{what} {text!r} is not a hex number")
    v = int(t, 16)
    if v > U64_MAX:
        raise _BadInput(f"{what} {text!r} does not fit in 64 bits")
    return v


def parse_hex_bytes(text: str) -> bytes:
    """Parse a PSC buffer.

    Two forms: several ``0x``-prefixed u64 words separated by spaces or commas (header as
    one u64 ``cur_entry | end_entry << 16 | reserved << 32``, then one u64 per entry;
    each word stored little-endian), or one hex byte string in memory order (spaces,
    ``_`` and one leading ``0x`` allowed).
    """
    tokens = text.replace(",", " ").split()
    if len(tokens) > 1 and all(tok[:2].lower() == "0x" for tok in tokens):
        return b"".join(parse_hex_u64(tok, "PSC word").to_bytes(8, "little") for tok in tokens)
    t = "".join(tokens).replace("_", "")
    if t[:2].lower() == "0x":
        t = t[2:]
    if not t or any(c not in "0123456789abcdefABCDEF" for c in t):
        raise _BadInput(f"PSC buffer {text[:40]!r} is not hex bytes")
    if len(t) % 2:
        raise _BadInput(f"PSC buffer has an odd number of hex digits ({len(t)})")
    return bytes.fromhex(t)


def _h(v: int) -> str:
    return f"{v:#x}"


# ---- decoders: each returns (title, rows, problems, json-dict) -----------------------

Rows = list[tuple[str, str]]


def _msr(value: str, **_: object) -> tuple[str, Rows, list[str], dict[str, object]]:
    m = decode_msr(parse_hex_u64(value, "MSR value"))
    rows: Rows = [
        ("value", f"{m.value:#018x}"),
        ("info (bits 11:0)", f"{m.info:#05x}"),
        ("name", m.name or "unknown"),
        ("direction", m.direction),
    ]
    rows += [
        (
            k,
            _h(v)
            if k
            not in (
                "max_version",
                "min_version",
                "cbit",
                "operation",
                "reason_set",
                "reason_code",
                "register",
                "vmpl",
            )
            else str(v),
        )
        for k, v in m.fields.items()
    ]
    rows += [("note", n) for n in m.notes]
    return "GHCB MSR", rows, m.problems, m.to_dict()


def _psc(value: str, **_: object) -> tuple[str, Rows, list[str], dict[str, object]]:
    data = parse_hex_bytes(value)
    desc = SnpPscDesc.decode(data)
    problems = validate_psc_desc(desc)
    h = desc.hdr
    rows: Rows = [
        ("length", f"{len(data)} bytes"),
        ("hdr.cur_entry", str(h.cur_entry)),
        ("hdr.end_entry", str(h.end_entry)),
        ("hdr.reserved", _h(h.reserved)),
    ]
    for i, e in enumerate(desc.entries):
        mark = "" if i <= h.end_entry else " (after end_entry)"
        rows.append(
            (
                f"entries[{i}]{mark}",
                f"{e.encode():#018x}: gfn={e.gfn:#x} operation={e.operation} ({e.op_name}) "
                f"pagesize={e.pagesize} ({'2M' if e.pagesize else '4K'}) "
                f"cur_page={e.cur_page} reserved={e.reserved:#x}",
            )
        )
    d = desc.to_dict()
    d["problems"] = problems
    return "PSC descriptor", rows, problems, d


def _ghcb(
    value: str, gpa: str | None = None, **_: object
) -> tuple[str, Rows, list[str], dict[str, object]]:
    from .inputs import read_regular_file

    try:
        # One byte more than a GHCB, so that a longer file is told apart.
        data = read_regular_file(value, GHCB_SIZE + 1)
    except ValueError as exc:
        raise _BadInput(f"GHCB file: {exc}") from None
    if len(data) != GHCB_SIZE:
        raise _BadInput(f"GHCB file {value!r} has {len(data)} bytes, not {GHCB_SIZE}")
    ghcb_gpa = parse_hex_u64(gpa, "--gpa") if gpa is not None else None
    g = decode_ghcb(data, ghcb_gpa)
    rows: Rows = []
    for name, v in g.fields.items():
        f = GHCB_FIELDS[name]
        shown = _h(v)
        if name == "sw_exit_code":
            shown += f" ({g.exit_code_name})"
        rows.append((f"{name} @{f.offset:#05x} (valid)", shown))
    if not g.fields:
        rows.append(("valid fields", "none"))
    rows.append(("protocol_version @0xffa", str(g.protocol_version)))
    rows.append(("ghcb_usage @0xffc", _h(g.ghcb_usage)))
    if g.scratch is not None:
        s = g.scratch
        if ghcb_gpa is None:
            rows.append(("scratch", f"GPA {s.gpa:#x} (give --gpa to locate it)"))
        elif s.in_shared_buffer:
            rows.append(
                ("scratch", f"shared buffer at page offset {s.offset:#x}, {len(s.data)} bytes")
            )
        elif s.in_ghcb_page:
            rows.append(("scratch", f"page offset {s.offset:#x}: outside the shared buffer"))
        else:
            rows.append(("scratch", f"GPA {s.gpa:#x}: outside the GHCB page"))
    if g.psc is not None:
        desc = g.psc
        rows.append(
            (
                "psc.hdr",
                f"cur_entry={desc.hdr.cur_entry} end_entry={desc.hdr.end_entry} reserved={desc.hdr.reserved:#x}",
            )
        )  # type: ignore[attr-defined]
        for i, e in enumerate(desc.entries[: desc.hdr.end_entry + 1]):  # type: ignore[attr-defined]
            rows.append(
                (
                    f"psc.entries[{i}]",
                    f"gfn={e.gfn:#x} {e.op_name} {'2M' if e.pagesize else '4K'} cur_page={e.cur_page}",
                )
            )
    return "GHCB page", rows, g.problems, g.to_dict()


def _errcode(
    decoder: Callable[[int], object], title: str
) -> Callable[..., tuple[str, Rows, list[str], dict[str, object]]]:
    def run(value: str, **_: object) -> tuple[str, Rows, list[str], dict[str, object]]:
        d = decoder(parse_hex_u64(value, "error code"))
        rows: Rows = [("value", _h(d.value))]  # type: ignore[attr-defined]
        rows += [("bit", n) for n in d.names]  # type: ignore[attr-defined]
        problems = []
        if d.unknown_bits:  # type: ignore[attr-defined]
            rows.append(("unknown bits", _h(d.unknown_bits)))  # type: ignore[attr-defined]
            problems.append(f"bits={d.unknown_bits:#x}: no known meaning")  # type: ignore[attr-defined]
        rows += [("note", n) for n in d.notes]  # type: ignore[attr-defined]
        out = d.to_dict()  # type: ignore[attr-defined]
        out["problems"] = problems
        return title, rows, problems, out

    return run


def _term(
    value: str, nae: bool = False, **_: object
) -> tuple[str, Rows, list[str], dict[str, object]]:
    v = parse_hex_u64(value, "termination value")
    t = decode_term_nae(v) if nae else decode_term_msr(v)
    rows: Rows = [
        ("form", "NAE sw_exit_info_1" if nae else "GHCB MSR (0x100)"),
        ("value", _h(v)),
        ("reason_set", str(t.reason_set)),
        ("reason_code", str(t.reason_code)),
        ("meaning", t.description),
    ]
    return "Termination request", rows, t.problems, t.to_dict()


def _exit(value: str, **_: object) -> tuple[str, Rows, list[str], dict[str, object]]:
    v = parse_hex_u64(value, "exit code")
    name = describe_exit_code(v)
    problems = [] if name != "unknown" else [f"sw_exit_code={v:#x}: unknown exit code"]
    return (
        "sw_exit_code",
        [("value", _h(v)), ("name", name)],
        problems,
        {"value": v, "name": name, "problems": problems},
    )


def _psc_result(value: str, **_: object) -> tuple[str, Rows, list[str], dict[str, object]]:
    v = parse_hex_u64(value, "sw_exit_info_2")
    name = describe_psc_result(v)
    rows: Rows = [
        ("value", _h(v)),
        ("meaning", name),
        ("high 32 bits", _h(v >> 32)),
        ("low 32 bits", _h(v & 0xFFFFFFFF)),
    ]
    problems = (
        []
        if name != "unknown"
        else [f"sw_exit_info_2={v:#x}: not a PSC result Linux or KVM defines"]
    )
    return (
        "sw_exit_info_2 after PSC",
        rows,
        problems,
        {"value": v, "name": name, "problems": problems},
    )


_DECODERS: dict[str, Callable[..., tuple[str, Rows, list[str], dict[str, object]]]] = {
    "msr": _msr,
    "psc": _psc,
    "ghcb": _ghcb,
    "npf": _errcode(decode_npf_error_code, "#NPF error code (EXITINFO1)"),
    "pf": _errcode(decode_pf_error_code, "host #PF error code"),
    "term": _term,
    "exit": _exit,
    "psc-result": _psc_result,
}


def _fail(msg: str) -> None:
    click.echo(f"snpsim decode: error: {msg}", err=True)
    sys.exit(2)


@click.command(name="decode")
@click.argument("kind")
@click.argument("value")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--gpa", default=None, metavar="HEX", help="ghcb: the GHCB page's GPA, to locate sw_scratch."
)
@click.option(
    "--nae",
    is_flag=True,
    help="term: VALUE is SVM_VMGEXIT_TERM_REQUEST sw_exit_info_1, not the MSR form.",
)
def command(kind: str, value: str, as_json: bool, gpa: str | None, nae: bool) -> None:
    """Decode an SEV-SNP value: KIND is one of msr, psc, ghcb, npf, pf, term, exit, psc-result.

    \b
      msr         a GHCB MSR value (MSR-protocol message or GHCB GPA)
      psc         a PSC descriptor: hex bytes in memory order, or several 0x-words
                  (header as one u64, then one u64 per entry), e.g.
                  "0x10000 0x0010000000100000 0x0120000000200000"
      ghcb        path of a 4096-byte GHCB page dump (--gpa HEX locates sw_scratch)
      npf         #NPF error code (VMCB EXITINFO1)
      pf          host #PF error code
      term        termination request, MSR form 0x100 (--nae: NAE sw_exit_info_1)
      exit        sw_exit_code
      psc-result  sw_exit_info_2 after a PSC VMGEXIT

    Numbers are always hex: 0x1f, 1f and 0x0020_0000_1234_5014 are accepted.

    Exit status: 0 when the value decodes, even if it breaks the spec (reserved bits set,
    unknown operation or code, a length that does not fit): such problems are listed,
    each naming the field and value.  2 for input that cannot be decoded at all (bad hex,
    a number over 64 bits, an unreadable or wrong-size file, an unknown KIND), with a
    one-line message on stderr.
    """
    if kind not in _DECODERS:
        _fail(f"unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
    if nae and kind != "term":
        _fail("--nae applies only to kind 'term'")
    if gpa is not None and kind != "ghcb":
        _fail("--gpa applies only to kind 'ghcb'")
    try:
        title, rows, problems, data = _DECODERS[kind](value, gpa=gpa, nae=nae)
    except _BadInput as exc:
        _fail(str(exc))
        return
    except SpecDecodeError as exc:
        _fail(str(exc))
        return
    if as_json:
        data = dict(data)
        data["kind"] = kind
        click.echo(json.dumps(data, indent=2, sort_keys=False))
        return
    console = Console(width=max(120, Console().width), soft_wrap=False, highlight=False)
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    for k, v in rows:
        table.add_row(k, v, style=None)
    console.print(table)
    if problems:
        console.print(f"[bold red]{len(problems)} problem(s):[/]")
        for p in problems:
            console.print(f"  - {p}", markup=False)
    else:
        console.print("no problems")
