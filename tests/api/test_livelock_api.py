# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A loop that cannot progress in host code run by the scenario itself -- before any vCPU
runs (``setup``) or between schedule steps (``do``) -- ends the run as a named livelock,
like one inside a vCPU thread: never an escaping exception, never a hang.

The loop: Linux's ``rmpupdate`` retries while RMPUPDATE answers FAIL_OVERLAP (4, APM vol 3
RMPUPDATE), which a 4 KiB update inside an assigned 2 MiB entry always gets."""

from __future__ import annotations

import pytest

from snpsim.api import Scenario, do, enter, run
from snpsim.spec.rmp import RmpState

PFN = 0x800_0000  # SPA 512 GiB: no host or guest page lives there


def _overlap_forever(h):
    rmpupdate = h.call  # by real name, the host kernel's wrapper
    assert rmpupdate("rmpupdate", h.vm, PFN, RmpState(gpa=0x800000, assigned=1, pagesize=1,
                                                     asid=h.asid)) == 0
    rmpupdate("rmpupdate", h.vm, PFN + 1, RmpState(gpa=0x801000, assigned=1, asid=h.asid))


@pytest.mark.parametrize("where", ["setup", "do"])
def test_host_code_of_the_scenario_ends_as_a_named_livelock(where):
    sc = Scenario("rmpupdate overlap", memory="64M")
    if where == "setup":
        sc.setup(_overlap_forever)
    else:
        sc.schedule(run(0, until=enter("kvm_cpu_exec", vcpu=0)), do(_overlap_forever))
    res = sc.run()
    out = res.outcome
    assert not out.completed
    assert (out.livelock_loop, out.livelock_vcpu) == ("rmpupdate", None)
    assert f"PFN {PFN + 1:#x}" in out.livelock_state
