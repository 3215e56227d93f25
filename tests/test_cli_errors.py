# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Click's own usage errors (bad option values, missing arguments, unknown commands or
options) are one line on stderr and exit status 2, like the commands' own checks."""

import pytest
from click.testing import CliRunner

from snpsim.cli import main


@pytest.mark.parametrize("args", [
    ["nosuch"],
    ["run"],
    ["run", "boot", "--mode", "foo"],
    ["run", "seed", "--vcpus", "abc"],
    ["trace", "set_memory_decrypted", "--pages", "abc"],
    ["trace", "set_memory_decrypted", "--seed", "abc"],
    ["decode", "msr", "-1"],
    ["decode"],
])
def test_usage_errors_are_one_line_exit_2(args):
    r = CliRunner().invoke(main, args, prog_name="snpsim")
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("snpsim"), r.output
    assert "Traceback" not in r.output


def test_help_and_version_still_exit_0():
    assert CliRunner().invoke(main, ["--help"]).exit_code == 0
    assert CliRunner().invoke(main, ["--version"]).exit_code == 0


def test_sizes_accept_binary_fractions():
    from snpsim.system import parse_size

    assert parse_size("1.5G") == 3 << 29
    assert parse_size("64M") == 64 << 20
    # Units are binary whatever the spelling; bits ("Gb") are not bytes.
    assert parse_size("1GB") == parse_size("1GiB") == parse_size("1 G") == 1 << 30
    for bad in ("0.3", "1X", "1.5.5G", "", "1Gb", "1gb", "1Mib"):
        with pytest.raises(ValueError):
            parse_size(bad)


@pytest.mark.parametrize("args", [
    ["run", "bug/R1", "--mode", "sev"],
    ["run", "bug/R9", "--mode", "sev-es"],
    ["run", "attack/psc-info2-error", "--mode", "sev"],
])
def test_snp_only_scenarios_are_refused_in_other_modes(args):
    """The bug reports and attacks are about SNP page-state handling; in SEV or SEV-ES
    mode there is nothing for them to exercise (regression: tracebacks, or a 'completed'
    run that tested nothing)."""
    r = CliRunner().invoke(main, [*args, "--memory", "512M"], prog_name="snpsim")
    assert r.exit_code == 2, r.output
    assert "does not apply" in r.output and "Traceback" not in r.output
