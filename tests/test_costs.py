# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Modelled time (snpsim.costs, docs/costs.md): the packaged cost table, loading a
user's table, the clock advancing by exactly the table's costs over a traced
conversion, a changed table changing the result as expected, and two lanes waiting on
one lock serialising."""

import json

import greenlet
import pytest
from click.testing import CliRunner

from snpsim.cli import main
from snpsim.costs import (
    COST_KINDS,
    CostTableError,
    ModelClock,
    default_costs,
    kind_index,
    load_costs,
    use_costs,
)
from snpsim.system import SnpSystem

# -- the table ---------------------------------------------------------------------------------

def test_default_table_is_complete_and_sourced():
    t = default_costs()
    assert set(t.entries) == set(COST_KINDS)
    for kind, e in t.entries.items():
        assert e.unit in ("cycles", "ns"), kind
        assert 0 <= e.low <= e.value <= e.high, kind
        assert e.source.strip() and e.per.strip(), kind
    assert t.cpu_ghz == 2.4


def test_default_table_anchors_from_the_kvm_list_2020():
    # lkml.iu.edu/hypermail/linux/kernel/2012.2/00527.html: VMRUN to #VMEXIT
    # 1,344-1,376 cycles; ioctl entry -> pre-VMRUN 560-576 and post-VMRUN -> exit
    # 576-656 cycles (so at least 1,150 around the VMRUN of a KVM_RUN).
    t = default_costs()
    assert t.entries["vmrun_vmexit"].low == 1350
    assert t.entries["kvm_run_ioctl"].low == 1150
    assert t.entries["vmrun_vmexit"].unit == t.entries["kvm_run_ioctl"].unit == "cycles"


def test_mcycles_converts_ns_at_the_clock_frequency():
    t = default_costs()
    # clear_page: 250 ns at 2.4 GHz = 600 cycles = 600,000 milli-cycles.
    assert t.mcycles("clear_page") == (600_000, 240_000, 1_440_000)
    assert t.mcycles("rmpupdate") == (2_500_000, 1_000_000, 10_000_000)


def write(tmp_path, text, name="costs.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_user_table_merges_onto_the_default(tmp_path):
    p = write(tmp_path, '[clock]\ncpu_ghz = 3.0\n[costs.rmpupdate]\nvalue = 5000\nunit = "cycles"\n')
    t = load_costs(p)
    assert t.cpu_ghz == 3.0
    e = t.entries["rmpupdate"]
    assert (e.value, e.low, e.high) == (5000, 5000, 5000)  # a new value: zero-width range
    assert t.entries["psmash"] == default_costs().entries["psmash"]
    assert t.origin == str(p)


@pytest.mark.parametrize("text, key", [
    ("[costs.rmpupdatee]\nvalue = 1\n", "costs.rmpupdatee"),
    ('[costs.rmpupdate]\nvalue = 1\nunit = "us"\n', "unit"),
    ("[costs.rmpupdate]\nvalue = -1\n", "costs.rmpupdate.value"),
    ("[costs.rmpupdate]\nvalue = 10\nlow = 20\n", "costs.rmpupdate"),
    ("[costs.rmpupdate]\nvalu = 10\n", "costs.rmpupdate.valu"),
    ("[clocks]\ncpu_ghz = 2\n", "clocks"),
    ("[clock]\ncpu_ghz = 0\n", "cpu_ghz"),
    ('[costs.rmpupdate]\nvalue = "fast"\n', "costs.rmpupdate.value"),
    ("not toml ===\n", "not a TOML file"),
])
def test_bad_user_table_is_refused_naming_the_key(tmp_path, text, key):
    with pytest.raises(CostTableError) as exc:
        load_costs(write(tmp_path, text))
    assert key in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("text", [
    "[costs.nonsense]\nvalue = 1\n",
    '[costs.rmpupdate]\nvalue = 1\nunit = "bananas"\n',
    "[costs.rmpupdate]\nvalue = -5\n",
])
def test_cli_refuses_a_bad_table_before_the_run(tmp_path, text):
    p = write(tmp_path, text)
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "1",
                                  "--costs", str(p), "--json"], prog_name="snpsim")
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("snpsim run: --costs"), r.output
    assert not r.stdout.startswith("{")  # no summary: the run never started


def test_cli_refuses_a_missing_table(tmp_path):
    r = CliRunner().invoke(main, ["run", "seed", "--costs", str(tmp_path / "none.toml")],
                           prog_name="snpsim")
    assert r.exit_code == 2


# -- the clock over a traced conversion -------------------------------------------------------------

def _table_mcycles(table, kind):
    return table.mcycles(kind)[0]


def test_clock_advances_by_exactly_the_tables_costs_over_a_traced_conversion():
    vm = SnpSystem(memory=64 << 20)
    res = vm.trace_conversion("set_memory_decrypted", pages=4)
    assert res.completed
    clock, table = vm.clock, vm.clock.table
    # Every kind adds count x cost; the kinds sum to the lanes' advances.
    per_kind = {k: clock.units[kind_index(k)] * _table_mcycles(table, k) for k in COST_KINDS}
    assert all(clock.kind_mcycles(k) == v for k, v in per_kind.items())
    assert sum(per_kind.values()) == clock.total_mcycles()
    assert clock.total_mcycles() + clock.synced == sum(clock.t)
    # The counts are the platform's counters and the trace's events.
    c = res.run.counters
    assert clock.units[kind_index("rmpupdate")] == c["RMPUPDATE"]
    assert clock.units[kind_index("vmgexit_handling")] == c["VMGEXIT"]
    assert clock.units[kind_index("tlb_flush")] == c.get("TLB flush", 0)
    ev = res.events
    vmruns = sum(1 for e in ev if e.type == "switch" and e.reason == "VMRUN")
    assert clock.units[kind_index("vmrun_vmexit")] == vmruns
    rmpupdates = sum(1 for e in ev if e.type == "enter" and e.name == "RMPUPDATE")
    assert clock.units[kind_index("rmpupdate")] == rmpupdates
    pv = [e for e in ev if e.type == "enter" and e.name == "PVALIDATE"]
    pv4k = sum(1 for e in pv if not e.args["rmp_psize"])
    assert clock.units[kind_index("pvalidate_4k")] == pv4k > 0
    assert clock.units[kind_index("pvalidate_2m")] == len(pv) - pv4k
    # The report says the same in seconds: the kinds sum to busy_s.
    rep = res.run.modelled_time
    assert rep is not None
    assert sum(k["s"] for k in rep["by_kind"].values()) == pytest.approx(rep["busy_s"], rel=1e-12)
    assert rep["low_s"] <= rep["elapsed_s"] <= rep["high_s"]
    # One vCPU after the launch on the host lane: the run lasts as long as all its work.
    assert rep["elapsed_s"] == pytest.approx(rep["busy_s"], rel=1e-12)


def test_doubling_one_cost_doubles_that_kind_and_nothing_else():
    base = default_costs()
    runs = []
    for table in (base, base.with_value("rmpupdate", 2 * base.entries["rmpupdate"].value)):
        vm = SnpSystem(memory=64 << 20, costs=table)
        assert vm.trace_conversion("set_memory_decrypted", pages=4).completed
        runs.append(vm.clock)
    a, b = runs
    assert a.units == b.units  # same work
    assert b.kind_mcycles("rmpupdate") == 2 * a.kind_mcycles("rmpupdate") > 0
    for k in COST_KINDS:
        if k != "rmpupdate":
            assert b.kind_mcycles(k) == a.kind_mcycles(k), k
    assert b.total_mcycles() - a.total_mcycles() == a.kind_mcycles("rmpupdate")


def test_use_costs_is_the_table_of_systems_built_inside(tmp_path):
    table = load_costs(write(tmp_path, "[costs.psmash]\nvalue = 7\n"))
    with use_costs(table):
        assert SnpSystem(memory=64 << 20).clock.table is table
    assert SnpSystem(memory=64 << 20).clock.table is default_costs()


def test_cli_costs_file_doubles_one_kind_in_the_json(tmp_path):
    rmp = default_costs().entries["rmpupdate"]
    p = write(tmp_path, f'[costs.rmpupdate]\nvalue = {2 * rmp.value}\nunit = "{rmp.unit}"\n')
    args = ["run", "seed", "--memory", "64M", "--vcpus", "1", "--json"]
    out = []
    for extra in ([], ["--costs", str(p)]):
        r = CliRunner().invoke(main, [*args, *extra], prog_name="snpsim")
        assert r.exit_code == 0, r.output
        out.append(json.loads(r.stdout)["modelled_time"])
    a, b = out
    assert b["table"] == str(p) and a["table"] == "default"
    ka, kb = a["by_kind"]["rmpupdate"], b["by_kind"]["rmpupdate"]
    assert kb["count"] == ka["count"] > 0
    assert kb["s"] == pytest.approx(2 * ka["s"], rel=1e-12)
    assert b["busy_s"] - a["busy_s"] == pytest.approx(ka["s"], rel=1e-9)
    assert a["by_kind"]["vmrun_vmexit"]["s"] == b["by_kind"]["vmrun_vmexit"]["s"]


# -- waiting on a lock -------------------------------------------------------------------------------

def _two_lanes(clock):
    """Run ``steps`` of two named contexts (vcpu0, vcpu1) one after the other."""
    names = {}
    clock.ctx_name = lambda: names.get(greenlet.getcurrent(), "host0")

    def run_as(name, fn):
        g = greenlet.greenlet(fn)
        names[g] = name
        g.switch()

    return run_as


def test_two_vcpus_on_one_lock_serialise():
    clock = ModelClock(default_costs(), vcpus=2)
    run_as = _two_lanes(clock)
    k = kind_index("rmpupdate")
    cost = default_costs().mcycles("rmpupdate")[0]

    def holder():
        clock.acquire("slots_lock", 5)
        clock.charge(k, 3)
        clock.release("slots_lock", 5)

    def waiter():
        clock.acquire("slots_lock", 5)  # free only at 3 x cost on vCPU 0's clock
        clock.charge(k, 1)
        clock.release("slots_lock", 5)

    run_as("vcpu0", holder)
    run_as("vcpu1", waiter)
    assert clock.t[0] == 3 * cost
    assert clock.t[1] == 4 * cost  # waited 3, then its own 1: serialised
    assert clock.kind_mcycles("wait slots_lock") == 3 * cost
    assert clock.waits[0] == 1
    assert clock.total_mcycles() == sum(clock.t)
    rep = clock.report()
    assert rep["by_kind"]["wait slots_lock"]["count"] == 1
    assert rep["elapsed_s"] == pytest.approx(default_costs().seconds(4 * cost))


def test_two_vcpus_on_different_locks_run_in_parallel():
    clock = ModelClock(default_costs(), vcpus=2)
    run_as = _two_lanes(clock)
    k = kind_index("rmpupdate")
    cost = default_costs().mcycles("rmpupdate")[0]

    def body(key):
        def fn():
            clock.acquire("slots_lock", key)
            clock.charge(k, 3)
            clock.release("slots_lock", key)
        return fn

    run_as("vcpu0", body(1))
    run_as("vcpu1", body(2))  # another VM's slots_lock
    assert clock.t[0] == clock.t[1] == 3 * cost
    assert clock.kind_mcycles("wait slots_lock") == 0


def test_a_lane_ahead_of_the_release_does_not_wait():
    clock = ModelClock(default_costs(), vcpus=2)
    run_as = _two_lanes(clock)
    k = kind_index("rmpupdate")
    cost = default_costs().mcycles("rmpupdate")[0]

    def late():
        clock.charge(k, 10)
        clock.acquire("filemap_invalidate_lock", 3)
        clock.release("filemap_invalidate_lock", 3)

    def early():
        clock.acquire("filemap_invalidate_lock", 3)
        clock.charge(k, 1)
        clock.release("filemap_invalidate_lock", 3)

    run_as("vcpu0", early)
    run_as("vcpu1", late)
    assert clock.t == [cost, 10 * cost, 0]
    assert clock.kind_mcycles("wait filemap_invalidate_lock") == 0


def test_docs_name_every_kind():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "costs.md").read_text()
    for kind in COST_KINDS:
        assert f"`{kind}`" in text, kind


def test_a_lane_behind_a_later_hold_does_not_wait():
    # The scheduler ran vCPU 0 ahead: it held the lock at [10, 11) x cost.  vCPU 1,
    # at 0, takes it at once (the lock was free then in modelled time).
    clock = ModelClock(default_costs(), vcpus=2)
    run_as = _two_lanes(clock)
    k = kind_index("rmpupdate")
    cost = default_costs().mcycles("rmpupdate")[0]

    def ahead():
        clock.charge(k, 10)
        clock.acquire("slots_lock", 1)
        clock.charge(k, 1)
        clock.release("slots_lock", 1)

    def behind():
        clock.acquire("slots_lock", 1)
        clock.charge(k, 2)
        clock.release("slots_lock", 1)
        clock.charge(k, 8)  # now at 10: inside vCPU 0's hold
        clock.acquire("slots_lock", 1)
        clock.release("slots_lock", 1)

    run_as("vcpu0", ahead)
    run_as("vcpu1", behind)
    assert clock.t[0] == 11 * cost
    assert clock.t[1] == 11 * cost  # no wait at 0; waited 10 -> 11 the second time
    assert clock.kind_mcycles("wait slots_lock") == cost
    assert clock.waits[0] == 1


def test_a_lock_held_across_a_switch_makes_the_other_lane_wait():
    clock = ModelClock(default_costs(), vcpus=2)
    names = {}
    clock.ctx_name = lambda: names.get(greenlet.getcurrent(), "host0")
    k = kind_index("rmpupdate")
    cost = default_costs().mcycles("rmpupdate")[0]
    main = greenlet.getcurrent()

    def holder():
        clock.acquire("slots_lock", 1)
        clock.charge(k, 4)
        main.switch()  # the scheduler runs vCPU 1 while the lock is held
        clock.release("slots_lock", 1)

    def waiter():
        clock.acquire("slots_lock", 1)
        clock.release("slots_lock", 1)

    g0, g1 = greenlet.greenlet(holder), greenlet.greenlet(waiter)
    names[g0], names[g1] = "vcpu0", "vcpu1"
    g0.switch()
    g1.switch()
    g0.switch()
    assert clock.t[1] == 4 * cost  # waited for the holder's time so far
    assert clock.kind_mcycles("wait slots_lock") == 4 * cost


def test_two_vcpus_converting_at_once_wait_on_slots_lock():
    from snpsim.api import Scenario

    sc = Scenario("two vCPUs convert", memory="64M", vcpus=2)

    def convert(g):
        for _ in range(4):
            assert g.set_memory_decrypted(g.alloc_page(), 1) == 0

    sc.guest(convert, vcpu=0)
    sc.guest(convert, vcpu=1)
    res = sc.run()
    assert res.outcome.completed
    m = res.outcome.modelled_time
    busy = sum(k["s"] for k in m["by_kind"].values())
    assert busy == pytest.approx(m["busy_s"], rel=1e-12)
    assert max(m["by_lane"].values()) == pytest.approx(m["elapsed_s"], rel=1e-12)


def test_trace_timestamps_are_modelled_time_in_order_per_context():
    from snpsim.api import Scenario, ScenarioError

    sc = Scenario("one conversion", memory="64M", vcpus=1)
    sc.guest(lambda g: g.set_memory_decrypted(g.alloc_page(), 1))
    res = sc.run(trace=True)
    assert res.outcome.completed and res.events
    last = {}
    for e in res.events:
        ctx = e.ctx if e.type != "switch" else e.from_ctx
        assert e.ts_ns >= last.get(ctx, 0), e
        last[ctx] = e.ts_ns
    m = res.outcome.modelled_time
    # The last event is stamped with the run's modelled length (ns, truncated).
    assert abs(max(last.values()) - m["elapsed_s"] * 1e9) <= 1
    with pytest.raises(ScenarioError):
        sc.run(trace=True, trace_clock="tsc")
