# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim explore``: the JSON result, the exit status, and bad arguments answered
with one line and exit status 2."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from snpsim.cli import main

PLANTED = str(Path(__file__).resolve().parent / "planted_psc_unconverted.py")


def test_honest_campaign_json(tmp_path):
    out = CliRunner().invoke(main, ["explore", "seed", "--budget", "3", "--seed", "2",
                                    "--json", "--out", str(tmp_path)])
    assert out.exit_code == 0
    d = json.loads(out.output)
    assert (d["runs"], d["failed_runs"], d["broken"], d["failures"]) == (3, 0, {}, [])
    assert [r["index"] for r in d["records"]] == [0, 1, 2]
    assert list(tmp_path.iterdir()) == []


def test_planted_bug_exit_1_with_a_replay_file(tmp_path):
    out = CliRunner().invoke(main, ["explore", PLANTED, "--budget", "1", "--json",
                                    "--out", str(tmp_path)])
    assert out.exit_code == 1
    d = json.loads(out.output)
    assert d["broken"] == {"psc-honoured": 1}
    (f,) = d["failures"]
    assert f["replayed"] is True and Path(f["file"]).parent == tmp_path
    assert Path(f["file"]).name == "explore-psc-honoured-run0.py"


@pytest.mark.parametrize("args", [
    ["seed", "--budget", "0"],
    ["seed", "--workers", "0"],
    ["no-such-target"],
    ["missing-file.py"],
    ["seed", "--check", "rmp:validated"],  # --check without --mutants
    ["seed", "--mutants", "--check", "no-such-check"],
])
def test_bad_arguments_exit_2(args, tmp_path):
    out = CliRunner().invoke(main, ["explore", *args, "--out", str(tmp_path)])
    assert out.exit_code == 2
    assert out.output.count("\n") == 1 and out.output.startswith("snpsim explore: ")


def test_ray_refused_without_ray_else_same_records(tmp_path):
    try:
        import ray  # noqa: F401
    except ImportError:
        out = CliRunner().invoke(main, ["explore", "seed", "--ray", "local", "--out",
                                        str(tmp_path)])
        assert out.exit_code == 2
        assert "snpsim[ray]" in out.output
    else:  # with ray installed: a tiny campaign on a local instance matches 1 worker
        runner = CliRunner()
        a = runner.invoke(main, ["explore", "seed", "--budget", "2", "--json", "--ray",
                                 "local", "--workers", "2", "--out", str(tmp_path)])
        b = runner.invoke(main, ["explore", "seed", "--budget", "2", "--json", "--out",
                                 str(tmp_path)])
        assert json.loads(a.output)["records"] == json.loads(b.output)["records"]


def test_mutant_campaign_psc_response_check(tmp_path):
    """``explore --mutants``: with ``__page_state_change``'s response check removed, the
    malicious MSR-protocol answers it stopped on the full model are no longer stopped
    and break an invariant (the guest goes on past a refused page-state change); the
    same rows come back on 2 worker processes, since the removal travels with each
    job."""
    args = ["explore", "seed", "--mutants", "--check", "__page_state_change:response",
            "--check", "rmp:reverse-map", "--budget", "10", "--json", "--out", str(tmp_path)]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert d["host"] == "malicious"
    resp, rmap = d["mutants"]
    assert resp["check"] == "__page_state_change:response" and resp["layer"] == "guest"
    assert resp["fired_in"] >= 1
    assert resp["verdict"] == "gets through" and 1 <= resp["broken"] <= resp["fired_in"]
    # without the check the guest goes on past a refused page-state change: psc-stop
    assert resp["invariants"] == {"psc-stop": resp["broken"]}
    assert rmap["fired_in"] == 0 and rmap["verdict"] == "not reached"
    two = CliRunner().invoke(main, [*args, "--workers", "2"])
    assert json.loads(two.output)["mutants"] == d["mutants"]


def test_out_that_cannot_be_a_directory_is_refused_before_the_campaign(tmp_path):
    """An ``--out`` under a regular file: exit status 2 with one line, and the planted
    failure (which would need it) is never run or written."""
    regular = tmp_path / "regular"
    regular.write_text("x")
    out = CliRunner().invoke(main, ["explore", PLANTED, "--budget", "1",
                                    "--out", str(regular / "sub")])
    assert out.exit_code == 2
    assert out.output.count("\n") == 1 and out.output.startswith("snpsim explore: ")
    assert regular.read_text() == "x"


def test_seed_in_hex_is_the_same_campaign(tmp_path):
    """``--seed 0x2`` draws what ``--seed 2`` draws (as ``run --seed`` takes hex)."""
    args = ["explore", "seed", "--budget", "2", "--json", "--out", str(tmp_path)]
    a = CliRunner().invoke(main, [*args, "--seed", "0x2"])
    b = CliRunner().invoke(main, [*args, "--seed", "2"])
    assert a.exit_code == b.exit_code == 0
    assert json.loads(a.output)["records"] == json.loads(b.output)["records"]


def test_out_made_for_the_campaign_is_removed_when_nothing_broke(tmp_path):
    out_dir = tmp_path / "new" / "out"
    r = CliRunner().invoke(main, ["explore", "seed", "--budget", "1", "--out", str(out_dir)])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "new").exists()
