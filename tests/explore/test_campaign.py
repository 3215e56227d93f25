# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Campaigns on the seed workload (issue 17 items 1-3, 5): an honest host breaks no
invariant; a planted host bug is found, shrunk and written as a scenario file that
replays with the same broken invariant; misanswers are stopped by the Linux checks
that the outcome names; the invariants themselves fire when a check is removed; the
same seed gives the same records on 1 and 2 workers.

Sources of the expected stoppers: Linux arch/x86/coco/sev/core.c ``vmgexit_psc`` /
``__set_pages_state`` (any PSC error is fatal) and ``__page_state_change`` (the
MSR-protocol PSC answer), both ending in ``sev_es_terminate(SEV_TERM_SET_LINUX,
GHCB_TERM_PSC)``: reason set 1, code 1 (GHCB spec "Termination Request";
shared/reference/linux-guest.md 5.1, 5.2)."""

import json
from pathlib import Path

from click.testing import CliRunner

from snpsim.api import leave, load_scenario_file
from snpsim.cli import main
from snpsim.explore import Explorer, target
from snpsim.explore.campaign import campaign, run_program, shrink, write_failure
from snpsim.explore.program import Behaviour, Program, draw

HERE = Path(__file__).resolve().parent
PLANTED = str(HERE / "planted_psc_unconverted.py")

SEV_TERM_SET_LINUX, GHCB_TERM_PSC = 1, 1


def test_honest_host_breaks_no_invariant():
    res = campaign("seed", budget=10, seed=0, bounds="honest")
    assert len(res.records) == 10
    assert res.failures() == []
    # the campaign did run the workload to its end, not only stuck schedules
    done = [r for r in res.records if r["outcome"] == "completed (guest powered off)"]
    assert len(done) >= 5
    assert all(r["stopper"] is None for r in res.records)


def test_planted_bug_is_found_shrunk_and_replayed(tmp_path):
    res = campaign(PLANTED, budget=3, seed=0, bounds="malicious")
    broken = res.by_invariant()
    assert broken.get("psc-honoured", 0) >= 1
    first = next(r for r in res.failures()
                 if any(v["invariant"] == "psc-honoured" for v in r["violations"]))
    program = draw(PLANTED, 0, first["index"], "malicious", 2)
    small = shrink(program, "psc-honoured")
    # the bug needs no drawn behaviour: shrinking removes every one, and the schedule
    assert small.behaviours == () and small.schedule == ()
    assert len(program.behaviours) >= 1
    written = write_failure(small, "psc-honoured", tmp_path)
    assert written["replayed"] is True
    assert Path(written["trace"]).stat().st_size > 0

    # the file replays through the public API with the same broken invariant; the guest
    # itself completed (Linux does not check the entries' cur_page, linux-guest.md 5.2)
    r = load_scenario_file(written["file"]).run()
    assert r.outcome.completed
    assert [v["invariant"] for v in r.data["explore"]["violations"]] == ["psc-honoured"]
    gpa = int(r.data["explore"]["violations"][0]["detail"].split("GPA ")[1].split()[0], 16)
    page = r.page(gpa)
    assert page.attribute_private is True            # never converted
    assert page.rmp["assigned"] is True and page.rmp["asid"] == r.host.asid

    # ... and through `snpsim run FILE.py`: exit 1, the invariant in scenario_errors
    out = CliRunner().invoke(main, ["run", written["file"], "--json"])
    assert out.exit_code == 1
    errors = json.loads(out.output)["outcome"]["scenario_errors"]
    assert [e.split(":")[0] for e in errors] == ["invariant psc-honoured"]


def test_psc_misanswer_is_stopped_by_the_guest_and_recorded():
    rec, res = run_program(Program("seed", 0, (Behaviour("psc_answer", ("info2-error", 1)),),
                                   bounds="malicious"))
    assert rec.violations == []
    assert res.outcome.termination[:2] == (SEV_TERM_SET_LINUX, GHCB_TERM_PSC)
    assert rec.stopper == "guest termination 1/1 by __set_pages_state"
    rec, res = run_program(Program("seed", 0, (Behaviour("msr_answer", ("error", 1)),),
                                   bounds="malicious"))
    assert rec.violations == []
    assert rec.stopper == "guest termination 1/1 by __page_state_change"


def test_psc_stop_fires_when_the_guest_ignores_a_failed_psc():
    # a guest whose termination request does nothing goes on past the failed PSC
    p = Program("seed", 0, (Behaviour("psc_answer", ("info2-error", 2)),), bounds="malicious")
    from snpsim.explore.campaign import build

    sc = build(p)
    sc.hook("sev_es_terminate", lambda original, kernel, set_, reason: None)
    r = sc.run()
    assert [v["invariant"] for v in r.data["explore"]["violations"]] == ["psc-stop"]


def test_private_access_fires_when_the_rmp_check_is_removed():
    # RMPUPDATE to hypervisor-owned under a validated private page: the hardware's
    # Validated / Guest-Owned checks stop the next private access (#VC 0x404, APM vol 2
    # table 15-39); without them the invariant sees the access
    def scenario(remove_check):
        sc, secrets = target("seed")
        if remove_check:
            sc.hook("check_rmp_guest_access", lambda original, rmp, *a, **k: None)
        ex = Explorer(sc, secrets=secrets)
        ex.event(leave("set_memory_encrypted"), "rmp-shared", page=0)
        ex.watch()
        return sc.run()

    r = scenario(False)
    assert not r.outcome.completed and r.outcome.termination is not None
    assert r.data["explore"]["violations"] == []
    r = scenario(True)
    found = r.data["explore"]["violations"]
    assert [v["invariant"] for v in found] == ["private-access"]
    assert "'assigned': False" in found[0]["detail"]


def test_same_seed_same_records_on_one_and_two_workers():
    one = campaign("seed", budget=6, seed=5, bounds="malicious", workers=1)
    two = campaign("seed", budget=6, seed=5, bounds="malicious", workers=2)
    assert one.records == two.records
    assert [r["index"] for r in two.records] == list(range(6))


def test_draw_is_a_function_of_seed_and_index():
    assert draw("seed", 7, 3, "malicious") == draw("seed", 7, 3, "malicious")
    honest = [draw("seed", 1, i, "honest") for i in range(30)]
    assert not any(p.malicious for p in honest)
    malicious = [draw("seed", 1, i, "malicious") for i in range(30)]
    assert all(p.malicious for p in malicious)


def test_shrink_keeps_only_the_behaviour_that_breaks_the_invariant(tmp_path):
    # a guest whose termination request does nothing: psc-stop breaks at the first failed
    # PSC answer; the knob, the host write and the schedule have nothing to do with it
    f = tmp_path / "noterm.py"
    f.write_text("from snpsim.explore import target\n"
                 "scenario, secrets = target('seed')\n"
                 "scenario.hook('sev_es_terminate', lambda original, k, s, r: None)\n")
    p = Program(str(f), 123, (Behaviour("knob", ("gmem_max_order", 9)),
                              Behaviour("event", (("leave", "snp_complete_psc", 5),
                                                  "host-write", 1)),
                              Behaviour("psc_answer", ("info2-error", 3))),
                ((0, "enter", "snp_begin_psc"), (0, None, None)), bounds="malicious")
    small = shrink(p, "psc-stop")
    assert small.behaviours == (Behaviour("psc_answer", ("info2-error", 1)),)
    assert (small.schedule, small.seed) == ((), 0)


def test_range_target_honest_and_partial_progress():
    # 4-page conversions: one PSC request of several entries per call; an honest host
    # that answers one of them with no progress still lets every vCPU finish
    rec, res = run_program(Program("range", 0, (Behaviour("psc_answer", ("no-progress", 2)),)))
    assert rec.violations == [] and res.outcome.completed
    assert rec.fired == ["psc-answer no-progress #2"]
    assert res.data["explore_reads"] == {0: True, 1: True}


def test_a_skipped_psc_entry_is_absorbed():
    # KVM skips the first pending entry and says it is done: a shared page left private
    # is the host's own loss (not checked under a lying host), a private one left shared
    # meets the guest's PVALIDATE, whose #NPF KVM turns into an implicit conversion
    # (KVM_EXIT_MEMORY_FAULT, docs/bug-reports.md R15): every conversion of the seed
    # target's four runtime PSCs ends private and validated, the guest completes
    for nth in range(1, 5):
        rec, res = run_program(Program("seed", 0, (Behaviour("psc_answer", ("cur-entry-skip", nth)),),
                                       bounds="malicious"))
        assert rec.fired == [f"psc-answer cur-entry-skip #{nth}"]
        assert (rec.violations, rec.stopper) == ([], "none: completed")
        assert res.data["explore_reads"] == {0: True, 1: True}
