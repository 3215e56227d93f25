# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim trace``: every bad input is one line on stderr and exit status 2, never a
traceback (DEVELOPERS' standard); a good run exits 0 and prints the tree and the state."""

import json

import pytest
from click.testing import CliRunner

from snpsim.cli import main


@pytest.mark.parametrize("args", [
    ["nosuchfunc"],
    ["set_memory_decrypted", "--pages", "0"],
    ["set_memory_decrypted", "--pages", "99999"],
    ["set_memory_decrypted", "--pages", "abc"],
    ["set_memory_decrypted", "--memory", "1X"],
    ["set_memory_decrypted", "--memory", "16M"],   # below the 32M floor
    ["set_memory_decrypted", "--memory", "17M"],   # not a multiple of 2M
    ["set_memory_decrypted", "--memory", "2T"],
    ["set_memory_decrypted", "--out", "x.pdf"],
    ["set_memory_decrypted", "--out", "/etc/hostname/x.json"],   # parent is a file
    ["set_memory_decrypted", "--filter", "nonsense"],
    ["set_memory_decrypted", "--filter", "party=nobody"],
])
def test_bad_input_is_exit_2_without_traceback(args):
    r = CliRunner().invoke(main, ["trace", *args])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_good_run_prints_tree_state_and_writes_chrome_json(tmp_path):
    out = tmp_path / "t.json"
    r = CliRunner().invoke(main, ["trace", "set_memory_decrypted", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("set_memory_decrypted(")
    assert "KVM memory attribute : shared" in r.output
    data = json.loads(out.read_text())
    assert all({"name", "ph", "ts", "pid", "tid"} <= set(e) for e in data["traceEvents"])


def test_a_filter_that_drops_the_root_shows_only_the_call():
    """--filter 'func=snp_*' keeps no set_memory_decrypted frame: what is printed is the
    kept events recorded while the call ran (the guest's snp_set_memory_shared and KVM's
    snp_begin_psc), not those of the whole boot."""
    r = CliRunner().invoke(main, ["trace", "set_memory_decrypted", "--filter", "func=snp_*"])
    assert r.exit_code == 0, r.output
    assert "snp_set_memory_shared" in r.output and "snp_begin_psc" in r.output
    assert "snp_launch" not in r.output and "sev_snp_launch" not in r.output
    assert len(r.output.splitlines()) < 60
