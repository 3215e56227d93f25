# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim decode``: tables, JSON and bad input."""

import json

import pytest
from click.testing import CliRunner

from snpsim.cli import main
from snpsim.spec.ghcb import GHCB_SIZE, ghcb_set


def run(*args):
    return CliRunner().invoke(main, ["decode", *args])


def test_msr_table():
    r = run("msr", "0x0020_0000_1234_5014")
    assert r.exit_code == 0
    assert "GHCB_MSR_PSC_REQ" in r.output and "0x12345" in r.output
    assert "SNP_PAGE_STATE_SHARED" in r.output


@pytest.mark.parametrize(
    "text", ["0x0002000133000001", "0002000133000001", "0x0002_0001_3300_0001"]
)
def test_number_forms(text):
    r = run("msr", text, "--json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert d["fields"] == {"max_version": 2, "min_version": 1, "cbit": 51}


def test_json_kinds():
    d = json.loads(run("npf", "0x880000007", "--json").output)
    assert "PFERR_GUEST_SIZEM_MASK" in d["names"]
    d = json.loads(run("psc-result", "0x100000002", "--json").output)
    assert d["name"] == "VMGEXIT_PSC_ERROR_INVALID_ENTRY"
    d = json.loads(run("exit", "0x80000010", "--json").output)
    assert d["name"] == "SVM_VMGEXIT_PSC"
    d = json.loads(run("term", "0x21100", "--json").output)
    assert (d["reason_set"], d["reason_code"]) == (1, 2)
    d = json.loads(run("term", "--nae", "0x11", "--json").output)
    assert (d["reason_set"], d["reason_code"]) == (1, 1)
    d = json.loads(run("pf", "0x80000002", "--json").output)
    assert d["names"] == ["X86_PF_WRITE", "X86_PF_RMP"]


def test_psc_words_and_bytes():
    r = run("psc", "0x10000 0x0010000000100000 0x0120000000200000")
    assert r.exit_code == 0 and "gfn=0x100" in r.output and "gfn=0x200" in r.output
    raw = (0).to_bytes(2, "little") + (0).to_bytes(2, "little") + bytes(4)
    raw += (0x0110000100200000).to_bytes(8, "little")
    d = json.loads(run("psc", raw.hex(), "--json").output)
    assert d["entries"][0]["gfn"] == 0x100200 and d["problems"] == []


def test_psc_problems_exit_0():
    r = run("psc", "0x0 0x0050000000100000")  # operation 5
    assert r.exit_code == 0
    assert "entries[0].operation=5" in r.output


def test_ghcb_file(tmp_path):
    buf = bytearray(GHCB_SIZE)
    ghcb_set(buf, "sw_exit_code", 0x80000010)
    ghcb_set(buf, "sw_scratch", 0x7000 + 0x800)
    ghcb_set(buf, "protocol_version", 2)
    buf[0x800:0x810] = bytes(8) + (0x0010000000100000).to_bytes(8, "little")
    p = tmp_path / "ghcb.bin"
    p.write_bytes(bytes(buf))
    r = run("ghcb", str(p), "--gpa", "0x7000")
    assert r.exit_code == 0
    assert "sw_exit_code" in r.output and "SVM_VMGEXIT_PSC" in r.output
    assert "shared buffer" in r.output and "psc.entries[0]" in r.output
    d = json.loads(run("ghcb", str(p), "--gpa", "7000", "--json").output)
    assert d["scratch"]["offset"] == 0x800 and d["psc"]["entries"][0]["gfn"] == 0x100


@pytest.mark.parametrize(
    "args",
    [
        ("msr", "0xzz"),
        ("msr", "0x10000000000000000"),
        ("msr", ""),
        ("bogus", "1"),
        ("psc", "abc"),
        ("psc", "00"),
        ("ghcb", "/nonexistent/ghcb.bin"),
        ("exit", "1", "--nae"),
        ("msr", "1", "--gpa", "0"),
    ],
)
def test_bad_input_exit_2(args):
    r = run(*args)
    assert r.exit_code == 2
    assert "error" in r.output
    assert "Traceback" not in r.output


def test_ghcb_wrong_size(tmp_path):
    p = tmp_path / "short.bin"
    p.write_bytes(bytes(100))
    r = run("ghcb", str(p))
    assert r.exit_code == 2 and "100 bytes" in r.output
