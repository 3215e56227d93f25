# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The summary says what happened: an ending and its description agree, and register
values read as the specs write them."""

import json

from click.testing import CliRunner

from snpsim.cli import main
from snpsim.report.summary import _scalar
from snpsim.system import RunOutcome
from snpsim.vmm.machine import RunResult


def test_a_vmm_that_dies_on_a_termination_request_is_described_as_its_own_ending():
    """R13 (bug-reports.md): the guest asks for termination (reason set 1 = SEV_TERM_SET_LINUX,
    code 2 = GHCB_TERM_PVALIDATE) and the buggy VMM panics on the exit: the run ends
    "qemu-exit", and the description starts with that, then the guest's request."""
    r = CliRunner().invoke(main, ["run", "bug/R13", "--variant", "buggy", "--json"])
    out = json.loads(r.stdout)["outcome"]
    assert out["result"] == "qemu-exit"
    assert out["description"].startswith("qemu-exit")
    assert (out["termination"]["reason_set"], out["termination"]["reason_code"]) == (1, 2)
    fixed = json.loads(CliRunner().invoke(main, ["run", "bug/R13", "--variant", "fixed",
                                                 "--json"]).stdout)["outcome"]
    assert fixed["result"] == "guest-terminated"
    assert fixed["description"].startswith("guest terminated")


def test_describe_keeps_the_vmm_ending_first():
    o = RunOutcome(RunResult("qemu-exit", "exit", errors=["boom"]), termination=(1, 2, "f"))
    assert o.describe().startswith("qemu-exit: boom")
    o = RunOutcome(RunResult("guest-terminated", "internal-error", 1, 2, "why"),
                   termination=(1, 2, "f"))
    assert o.describe() == "guest terminated: reason set 1 code 2 (why) requested by f"


def test_register_values_are_hex():
    # GHCB spec: sw_exit_info_2 of a PSC error is (0x100 << 32) | n; an MSR is a u64.
    assert _scalar("sw_exit_info_2", (0x100 << 32) | 1) == "0x10000000001"
    assert _scalar("ghcb_msr", 0x21100) == "0x21100"
    assert _scalar("gpa", 0x100b000) == "0x100b000"
    assert _scalar("pages", 512) == "512"
