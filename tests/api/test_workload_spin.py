# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A workload that spins on guest memory forever (no VM exit, so the host never runs
again) ends as a named livelock on its vCPU instead of hanging; a workload that stays
under the bound, or exits in between, is not stopped."""

import snpsim.api
from snpsim.api import Scenario


def _spin(reads, exit_every=None):
    sc = Scenario("spin", memory="64M")

    @sc.guest
    def work(g):
        va = g.alloc_page()
        for i in range(reads):
            g.read(va, 1)
            if exit_every and i % exit_every == exit_every - 1:
                g.set_memory_decrypted(va)  # a PSC: VM exits
                g.set_memory_encrypted(va)
        return "done"

    return sc.run()


def test_a_spin_past_the_bound_is_a_livelock(monkeypatch):
    monkeypatch.setattr(snpsim.api, "MAX_ACCESSES_WITHOUT_EXIT", 200)
    r = _spin(10**9)
    assert r.outcome.livelock_loop == "guest workload"
    assert r.outcome.livelock_vcpu == 0
    assert not r.outcome.completed


def test_under_the_bound_or_with_exits_between_it_completes(monkeypatch):
    monkeypatch.setattr(snpsim.api, "MAX_ACCESSES_WITHOUT_EXIT", 200)
    assert _spin(150).outcome.completed
    r = _spin(600, exit_every=100)
    assert r.outcome.completed and r.outcome.livelock_loop is None
