# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim mutants``: the mutation table on the command line (docs/mutants.md)."""

import json

import pytest
from click.testing import CliRunner

from snpsim.cli import main


def mutants(*args):
    return CliRunner().invoke(main, ["mutants", *args], prog_name="snpsim")


@pytest.mark.parametrize("args", [("--check", "no-such-check"), ("--attack", "no-such-attack"),
                                  ("--check", "vmgexit_psc:reserved", "--tests-dir",
                                   "/nonexistent/tests")])
def test_unknown_names_are_one_line_and_status_2(args):
    r = mutants(*args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("snpsim mutants"), r.output


def test_json_row_of_the_reserved_check():
    r = mutants("--check", "vmgexit_psc:reserved", "--attack", "psc-reserved-set",
                "--attack", "psc-info2-error", "--no-tests", "--json")
    assert r.exit_code == 0, r.output
    [row] = json.loads(r.stdout)
    assert (row["check"], row["layer"], row["tests_run"]) == ("vmgexit_psc:reserved", "guest", False)
    [v] = row["attacks"]
    assert v["attack"] == "psc-reserved-set" and v["with_check"] == ["vmgexit_psc:reserved"]
    assert v["without"] == "gets through" and v["instead"] == []
    assert row["only_stopped_by"] == ["psc-reserved-set"]


def test_table_says_what_the_markdown_says():
    """The table's "without it" cell is the docs' verdict in plain text: an attack that
    gets through says how the run ended, not a check name (which would read as the
    check that stopped it)."""
    from snpsim.scenarios.mutants import run_mutants, verdict_text

    args = ("--check", "vmgexit_psc:reserved", "--attack", "psc-reserved-set", "--no-tests")
    r = mutants(*args)
    assert r.exit_code == 0, r.output
    [row] = run_mutants(["vmgexit_psc:reserved"], attacks=["psc-reserved-set"], tests=False)
    [v] = row.attacks
    assert v.without == "gets through"
    flat = " ".join(r.output.replace("│", " ").split())
    assert " ".join(verdict_text(v, "").split()) in flat
