# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The scheduler's driver (hw/world.py): threads park at points and are held while the
driver runs others or host code; a guest context parks too; same seed, same order."""

from __future__ import annotations

from snpsim.hw.world import World


def _threads(w: World, log: list[str], n: int = 2, steps: int = 3):
    def body(i: int):
        def fn():
            for s in range(steps):
                log.append(f"t{i}.{s}")
                if s == 1:
                    w.park()
                w.yield_point()
            return i * 10
        return fn
    return [(f"host{i}", body(i)) for i in range(n)]


def test_without_driver_threads_run_to_completion_and_park_is_a_yield():
    w = World(seed=3)
    log: list[str] = []
    assert w.run_threads(_threads(w, log)) == [0, 10]
    assert sorted(log) == ["t0.0", "t0.1", "t0.2", "t1.0", "t1.1", "t1.2"]


def test_driver_holds_a_parked_thread_while_others_and_host_code_run():
    w = World(seed=0)
    log: list[str] = []
    snapshot: list[str] = []

    def driver():
        # t0.1 is logged just before thread 0 parks: from then on hold it
        assert w.run_until(set(), lambda: "t0.1" in log)
        assert w.run_until({0}, lambda: not w.thread_alive(1))
        snapshot.extend(log)
        w.pending.append(lambda: log.append("event"))
        switches = iter((False, True))
        w.run_until(set(), lambda: next(switches))   # one switch, then the pending event

    assert w.run_threads(_threads(w, log), driver) == [0, 10]
    assert "t1.2" in snapshot and "t0.2" not in snapshot   # held while thread 1 finished
    # thread 0 resumes from park() and yields at once: the event runs before t0.2
    assert log.index("event") == len(snapshot) < log.index("t0.2")
    assert sorted(x for x in log if x != "event") == ["t0.0", "t0.1", "t0.2", "t1.0", "t1.1", "t1.2"]


def test_same_seed_same_interleaving():
    def once(seed: int) -> list[str]:
        w = World(seed=seed)
        log: list[str] = []
        w.run_threads(_threads(w, log, n=3, steps=4))
        return log

    assert once(7) == once(7)
    assert any(once(s) != once(0) for s in range(1, 6))


def test_a_guest_context_parks_and_resumes_where_it_stopped():
    w = World(seed=0)
    log: list[str] = []

    def guest_code():
        log.append("guest a")
        w.park()                      # from guest context: back to the scheduler
        log.append("guest b")
        w.exit_guest("exit", "VMGEXIT")

    def host_thread():
        g = w.new_guest_context("vcpu0", guest_code)
        assert w.enter_guest(g) == "exit"
        log.append("host after exit")
        return "done"

    def driver():
        assert w.run_until(set(), lambda: "guest a" in log)
        assert w.current_thread() is None
        log.append("driver while held")
        w.run_until(set(), lambda: False)

    assert w.run_threads([("host0", host_thread)], driver) == ["done"]
    assert log == ["guest a", "driver while held", "guest b", "host after exit"]
