# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``attack/<name>`` scenarios: each malicious-hypervisor variant of snpsim.adversary.ATTACKS
runs as a scenario and is stopped by the check its description names.  Expected codes:
linux-guest.md 1.3 (termination reasons), hardware-and-ghcb.md 1.4 (RMP checks)."""

import pytest

from snpsim.adversary import ATTACKS
from snpsim.scenarios.catalog import run_scenario, scenario_list


def test_every_attack_is_listed_as_a_scenario():
    names = {n for n, _d in scenario_list()}
    assert {f"attack/{a}" for a in ATTACKS} <= names


@pytest.mark.parametrize("attack,expected", [
    ("psc-reserved-set", (1, 1)),            # GHCB_TERM_PSC from __set_pages_state
    ("msr-register-other-gfn", (1, 0)),      # GHCB_TERM_REGISTER
    ("msr-hv-features-no-snp", (0, 2)),      # GHCB_SNP_UNSUPPORTED
    ("npt-remap-validated", (0, 0)),         # #VC 0x404 -> general termination
])
def test_attack_scenario_terminates_with_the_reason_of_the_check(attack, expected):
    run = run_scenario(f"attack/{attack}", memory=256 << 20, vcpus=1)
    assert run.outcome.termination is not None, run.outcome.describe()
    assert run.outcome.termination[:2] == expected


def test_never_advancing_psc_is_reported_as_a_livelock():
    run = run_scenario("attack/psc-never-advance", memory=256 << 20, vcpus=1)
    assert run.outcome.livelock is not None
    assert run.outcome.termination is None


@pytest.mark.parametrize("vcpus", [1, 4])
def test_rmp_attacks_strike_the_vcpu_that_validated(vcpus):
    """With several vCPUs an AP's exit must not trigger the strike early (regression: at
    4 vCPUs the strike fired before the victim was mapped and the run crashed)."""
    remap = run_scenario("attack/npt-remap-validated", memory=256 << 20, vcpus=vcpus)
    assert remap.outcome.termination is not None and remap.outcome.termination[:2] == (0, 0)
    shared = run_scenario("attack/rmp-make-shared-under-guest", memory=256 << 20, vcpus=vcpus)
    assert shared.outcome.termination is not None and shared.outcome.termination[:2] == (0, 0)
    write = run_scenario("attack/host-write-private", memory=256 << 20, vcpus=vcpus)
    assert not write.outcome.completed
    # host #PF: X86_PF_WRITE (bit 1) | X86_PF_RMP (bit 31) = 0x80000002
    assert write.outcome.host_oopses and "0x80000002" in write.outcome.host_oopses[0]
    assert "host kernel oops" in write.outcome.describe()
