# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A variant on the public scenario API: ``Variant.apply`` puts its base profile, knobs
and hooks on an ``api.Scenario``; ``Variant.installed`` / ``api.hooked`` put hooks in
force for a block only.  Hooks are by real function name and see every call (issue 12:
a profile override of ``snp_begin_psc`` only saw a request's first range).

Expected values: R6 terminates (1, 1) GHCB_TERM_PSC (linux-guest.md 1.3, bug report R6);
``snp_complete_one_psc`` calls ``snp_begin_psc`` again after each range
(kvm-qemu-host.md 3.3), so a request of two separate ranges makes three calls: range 1,
range 2, and the one that finds nothing left and answers."""

import pytest

from snpsim.adversary import ATTACKS, VARIANTS, Variant
from snpsim.api import Scenario, ScenarioError, hooked
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc

SHARED = 2


def test_apply_puts_base_profile_knobs_and_hooks_on_the_scenario():
    sc = VARIANTS["R4"].apply(Scenario("R4", memory="64M"))
    assert sc.kvm == "v6.17" and sc.build().kvm_profile.knob("scratch") == "original"
    sc = VARIANTS["R6"].apply(Scenario("R6", memory="64M"))
    assert sc.kvm_knobs == {"zero_hypercall_ret": False, "stale_hypercall_ret": (1 << 64) - 1000}
    sc = VARIANTS["R15"].apply(Scenario("R15", memory="64M"))
    assert sc.qemu_knobs == {"gmem_private_at_start": False, "handle_memory_fault": False}
    sc = Scenario("remap", memory="64M")
    assert ATTACKS["npt-remap-validated"].apply(sc) is sc
    bad = Variant("bad", "", "a hook on a function the model does not have", "kvm",
                  hooks={"no_such_kernel_function": lambda original, *a: original(*a)})
    with pytest.raises(ScenarioError):
        bad.apply(Scenario("bad", memory="64M"))


def test_r6_applied_to_a_scenario_terminates_1_1():
    res = VARIANTS["R6"].apply(Scenario("R6", memory="64M")).run()
    assert res.termination is not None and res.termination[:2] == (1, 1)
    assert Scenario("fixed", memory="64M").run().completed


def two_range_psc(calls):
    """Guest work: one GHCB PSC of two pages that are not contiguous (two ranges), both
    made shared; records how many ``snp_begin_psc`` calls it caused."""
    def work(g):
        a, b = g.alloc_page(), g.alloc_page()
        b = b if abs(g.pa(b) - g.pa(a)) > 4096 else g.alloc_page()
        entries = tuple(PscEntry(0, g.pa(va) >> 12, SHARED, 0) for va in (a, b))
        before = len(calls)
        g.result["answer"] = g.psc(SnpPscDesc(PscHdr(0, 1), entries).encode())
        g.result["calls"] = len(calls) - before
    return work


def test_a_hook_sees_every_range_of_a_psc_request():
    calls = []
    sc = Scenario("ranges", memory="64M")
    sc.guest(two_range_psc(calls), vcpu=0)

    @sc.hook("snp_begin_psc")
    def count(original, vcpu):
        calls.append(vcpu.vcpu_id)
        return original(vcpu)

    res = sc.run()
    assert res.completed and res.data["answer"]["sw_exit_info_2"] == 0
    assert res.data["calls"] == 3


def test_hooked_is_in_force_for_its_block_only():
    calls = []

    def count(original, vcpu):
        calls.append(1)
        return original(vcpu)

    with pytest.raises(RuntimeError), hooked({"snp_begin_psc": count}):
        sc = Scenario("inside", memory="64M")
        sc.guest(two_range_psc(calls), vcpu=0)
        res = sc.run()
        assert res.completed and res.data["calls"] == 3
        raise RuntimeError("leaving the block by an exception")
    sc = Scenario("after", memory="64M")
    sc.guest(two_range_psc(calls), vcpu=0)
    res = sc.run()
    assert res.completed and res.data["calls"] == 0
