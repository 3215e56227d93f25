# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Options say their types and ranges, refuse what is out of range before the run, and a
long ``accept`` says up front what it will cost."""

import pytest
from click.testing import CliRunner

from snpsim.api import Scenario, ScenarioError
from snpsim.cli import main
from snpsim.cli.run import ACCEPT_US_PER_PAGE, accept_cost_warning


@pytest.mark.parametrize("args", [
    ["run", "seed", "--seed", "-1"],
    ["run", "seed", "--seed", str(1 << 64)],
    ["trace", "set_memory_decrypted", "--seed", "-1"],
    ["trace", "set_memory_decrypted", "--pages", "0"],
    ["trace", "set_memory_decrypted", "--memory", "1Gb"],
])
def test_out_of_range_values_exit_2_before_the_run(args):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output


def test_scenario_seed_has_the_same_range():
    for bad in (-1, 1 << 64, 1.5, True):
        with pytest.raises(ScenarioError):
            Scenario("s", seed=bad)
    assert Scenario("s", seed=(1 << 64) - 1).seed == (1 << 64) - 1


def test_help_shows_types_and_ranges():
    out = CliRunner().invoke(main, ["trace", "--help"]).output
    for metavar in ("--pages 1..4096", "--memory SIZE", "--seed 0..2^64-1"):
        assert metavar in out
    assert "--seed 0..2^64-1" in CliRunner().invoke(main, ["run", "--help"]).output


def test_accept_warns_from_ten_seconds_of_estimated_cpu():
    # 256 MiB at 2M: 65,536 pages x 90 us = 5.9 s, no warning; 1 GiB: 23.6 s, a warning.
    assert ACCEPT_US_PER_PAGE == {"4K": 150.0, "2M": 90.0}
    assert accept_cost_warning(256 << 20, "2M") is None
    line = accept_cost_warning(1 << 30, "2M")
    assert line is not None and "262144 pages" in line and "24 s" in line
    # 64 GiB at 4K: 16,777,216 pages x 150 us = 2,517 s = 42 min.
    assert "42 min" in accept_cost_warning(64 << 30, "4K")
