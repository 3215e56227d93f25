# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim run FILE.py``: every file of examples/ gives the outcome its docstring
promises, and bad scenario files are one line on stderr with the documented exit
status (2 before the run, 1 when the run's user code failed)."""

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from snpsim.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: VMGEXIT_PSC_ERROR_GENERIC, what KVM answers a PSC whose hypercall.ret is non-zero
#: (arch/x86/kvm/svm/sev.c: ``(0x100ULL << 32)``).
VMGEXIT_PSC_ERROR_GENERIC = 0x100 << 32


def run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)], prog_name="snpsim")


def run_json(*args):
    r = run(*args, "--json")
    return r, json.loads(r.stdout) if r.stdout.startswith("{") else None


def one_line_error(r, status):
    assert r.exit_code == status, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("snpsim run: "), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def scenario_file(tmp_path, body, name="s.py"):
    path = tmp_path / name
    path.write_text(body)
    return path


# -- the examples ---------------------------------------------------------------------------

def test_fault_races_attributes():
    """mmu.c: the held fault sees a newer mmu_invalidate_seq -> RET_PF_RETRY (1); the
    retry mismatches the now-shared attribute -> KVM_EXIT_MEMORY_FAULT, -EFAULT (-14);
    QEMU converts the page back to private; the third fault installs the SPTE
    (RET_PF_FIXED)."""
    r, s = run_json(EXAMPLES / "fault_races_attributes.py")
    assert r.exit_code == 0, r.output
    res = s["result"]
    assert res["set_attributes"] == 0
    assert res["seq_after"] > res["seq_before"]
    assert res["tdp_page_fault"] == ["RET_PF_RETRY", -14, "RET_PF_FIXED"]
    assert res["memory_fault_exits"] == 1
    assert s["userspace_exits"]["KVM_EXIT_MEMORY_FAULT"] == 1
    assert res["vmm_conversions"] == ["private"]
    assert res["read_back"] == "hello"
    assert s["outcome"]["completed"] is True and s["outcome"]["scenario_errors"] == []


def test_lying_vmm_is_stopped_by_the_guest():
    """sev.c snp_complete_one_psc: hypercall.ret != 0 -> VMGEXIT_PSC_ERROR_GENERIC;
    core.c __set_pages_state: sev_es_terminate(SEV_TERM_SET_LINUX 1, GHCB_TERM_PSC 1)."""
    r, s = run_json(EXAMPLES / "lying_vmm.py")
    assert r.exit_code == 1, r.output
    assert s["outcome"]["termination"] == {"reason_set": 1, "reason_code": 1,
                                           "function": "__set_pages_state"}
    res = s["result"]
    assert res["asked"] == {"gpa": res["gpa"], "pages": 2, "to_private": False}
    assert res["converted_first"] == 0
    assert "went_on" not in res and "decrypted" not in res
    assert res["first_private"] is False and res["second_private"] is True
    assert any(f"{VMGEXIT_PSC_ERROR_GENERIC:x}" in w for w in s["warnings"]), s["warnings"]


def test_teardown_reclaims_the_private_page():
    """sev_gmem_invalidate on teardown: the guest's page goes back to the hypervisor
    (RMP entry not assigned, ASID 0); every close() returns 0.  Needs
    Machine.teardown (vmm/machine.py); no RMP entry is left with the guest's ASID."""
    r, s = run_json(EXAMPLES / "teardown.py")
    assert r.exit_code == 0, r.output
    res = s["result"]
    before, after = res["rmp_before"], res["rmp_after"]
    assert before["assigned"] is True and before["validated"] is True
    assert before["asid"] != 0 and before["owner"] == "guest"
    assert res["close_results"] == [0]
    assert after["assigned"] is False and after["asid"] == 0 and after["owner"] == "hypervisor"
    assert res["assigned_before"] > 1 and res["assigned_after"] == 0
    assert res["problems"] == []  # Host.check_teardown: nothing left behind


def test_preowned_page_never_reaches_the_guest():
    """sev.c sev_gmem_prepare: a page already assigned (here Firmware: assigned, ASID 0,
    immutable) is left alone and 0 returned; the guest's access faults again and again:
    the run does not complete and the acceptance never finishes."""
    r, s = run_json(EXAMPLES / "preowned_pages.py")
    assert r.exit_code == 1, r.output
    res = s["result"]
    assert res["unaccepted"] == (64 << 20) - (2 << 20)
    assert res["prepare_returns"] == [0] and res["prepare_calls"] > 1
    rmp = res["rmp_after"]
    assert (rmp["assigned"], rmp["asid"], rmp["immutable"], rmp["owner"]) == (True, 0, True, "firmware")
    assert "accepted" not in res
    assert s["outcome"]["completed"] is False and s["outcome"]["termination"] is None
    assert s["outcome"]["livelock_loop"] == "kvm_mmu_page_fault"
    assert s["outcome"]["livelock_vcpu"] == 0
    assert s["npf"] > 1


def test_rmp_segment_hole_fails_the_launch():
    """arch/x86/virt/svm/sev.c setup_segmented_rmptable compares only the last RAM
    segment's end with the end of RAM, so a missing segment below passes; the launch's
    first host page, the guest context page, is uncovered: its RMPUPDATE to Firmware
    fails, snp_context_create returns NULL and snp_launch_start answers -ENOTTY (-25)
    (arch/x86/kvm/svm/sev.c); QEMU exits.  RMPUPDATE of an uncovered page:
    FAIL_INPUT (1); the RMP's own page is Firmware after SNP_INIT_EX."""
    r, s = run_json(EXAMPLES / "rmp_segment_hole.py")
    assert r.exit_code == 1, r.output
    assert s["outcome"]["result"] == "qemu-exit"
    res = s["result"]
    assert "SEV-SNP: Segmented RMP using 1GB segments" in res["host_log"]
    assert not any("does not cover" in line for line in res["host_log"])
    assert res["vmm_errors"] == ["sev_snp_launch_start: SNP_LAUNCH_START ret=-25 fw_error=0"]
    assert (res["rmp_base_owner"], res["hole_owner"], res["rmpupdate_in_hole"]) == \
        ("firmware", "hypervisor", 1)
    assert s["vmgexits"] == 0


def test_hole_punched_under_guest():
    """guest_memfd.c kvm_gmem_punch_hole frees the page; sev_gmem_prepare gives the GPA a
    fresh private page, not validated (RMPUPDATE clears Validated); the access raises
    #VC 0x404 and Linux terminates with (SEV_TERM_SET_GEN 0, GHCB_SEV_ES_GEN_REQ 0)."""
    r, s = run_json(EXAMPLES / "hole_punched_under_guest.py")
    assert r.exit_code == 1, r.output
    res = s["result"]
    assert res["punch_hole"] == 0 and res["backed_after_punch"] is False
    rmp = res["rmp_after"]
    assert (rmp["assigned"], rmp["validated"], rmp["gpa"]) == (True, False, res["gpa"])
    assert s["outcome"]["termination"] == {"reason_set": 0, "reason_code": 0,
                                           "function": "exc_vmm_communication"}
    assert "read_back" not in res and s["vc"] >= 1


def test_seeded_interleaving_replays_per_seed():
    """Six single-page conversions, three per vCPU, all 0; one order per seed."""
    orders = []
    for seed in (0, 1, 2, 0):
        r, s = run_json(EXAMPLES / "seeded_interleaving.py", "--seed", seed)
        assert r.exit_code == 0, r.output
        assert s["result"]["returns"] == [0] * 6
        assert sorted(s["result"]["order"]) == [0, 0, 0, 1, 1, 1]
        orders.append(tuple(s["result"]["order"]))
    assert orders[0] == orders[3]           # the same seed replays
    assert len(set(orders)) > 1             # and the seed is what picks the interleaving


def test_ap_vmsa_hostile_host():
    """Linux wakeup_cpu_via_vmgexit makes the VMSA (assigned, validated, VMSA bit, never
    2 MiB aligned); the host's RMPUPDATE between the AP creation and the AP's first run
    succeeds (0: the page is not in use) and clears the VMSA bit; VMRUN fails
    (VMEXIT_INVALID) -> svm.c svm_handle_exit KVM_EXIT_FAIL_ENTRY -> QEMU "KVM: entry
    failed, hardware error 0x..." and the VM stops (exit status 1)."""
    r, s = run_json(EXAMPLES / "ap_vmsa_hostile_host.py")
    assert r.exit_code == 1, r.output
    res = s["result"]
    before, after = res["rmp_before"], res["rmp_after"]
    assert (before["assigned"], before["validated"], before["vmsa"], before["owner"]) == (
        True, True, True, "guest")
    assert res["vmsa_gpa"] % (2 << 20) and before["gpa"] == res["vmsa_gpa"]
    assert res["rmpupdate"] == 0
    assert (after["assigned"], after["vmsa"], after["owner"]) == (False, False, "hypervisor")
    assert res["vmm_errors"] == ["KVM: entry failed, hardware error 0xffffffffffffffff"]
    assert "ap_ran" not in res
    assert s["userspace_exits"]["KVM_EXIT_FAIL_ENTRY"] == 1
    assert s["outcome"]["completed"] is False


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_is_api_only_and_documented(name):
    """Each example imports only snpsim.api and says what it shows and expects."""
    import ast

    tree = ast.parse((EXAMPLES / name).read_text())
    doc = ast.get_docstring(tree) or ""
    assert "What it shows" in doc and "Expected outcome" in doc
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.module == "snpsim.api", node.module
        elif isinstance(node, ast.Import):
            assert all(not a.name.startswith("snpsim") for a in node.names)


def test_trace_and_report_of_a_file(tmp_path):
    out = tmp_path / "out"
    r = run(EXAMPLES / "fault_races_attributes.py", "--json", "--report", out,
            "--trace", out / "t.jsonl", "--trace-filter", "func=kvm_tdp_page_fault")
    assert r.exit_code == 0, r.output
    lines = [json.loads(ln) for ln in (out / "t.jsonl").read_text().splitlines()]
    assert lines and all(ev.get("func", "kvm_tdp_page_fault") == "kvm_tdp_page_fault"
                         for ev in lines)
    assert (out / "index.html").is_file() and (out / "memory.png").is_file()
    assert not [n for n in os.listdir(out) if n.endswith(".part")]


# -- options -----------------------------------------------------------------------------------

_SMALL = """
from snpsim.api import Scenario
scenario = Scenario("small", memory="64M", vcpus=2, seed=5)

@scenario.guest(vcpu=1)
def work(g):
    g.result["gpa"] = g.pa(g.alloc_page())
"""


def test_prints_of_a_file_keep_json_clean(tmp_path):
    path = scenario_file(tmp_path, 'print("loading")\n' + _SMALL.replace(
        'g.result["gpa"]', 'print("working"); g.result["gpa"]'))
    r = CliRunner().invoke(main, ["run", str(path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["result"]["gpa"] > 0
    assert "loading" in r.stderr and "working" in r.stderr


def test_command_line_values_override_the_file(tmp_path):
    path = scenario_file(tmp_path, _SMALL)
    r, s = run_json(path)
    assert r.exit_code == 0, r.output
    assert (s["config"]["memory"], s["config"]["vcpus"], s["config"]["seed"]) == (64 << 20, 2, 5)
    r, s = run_json(path, "--memory", "128M", "--vcpus", "3", "--seed", "7")
    assert r.exit_code == 0, r.output
    assert (s["config"]["memory"], s["config"]["vcpus"], s["config"]["seed"]) == (128 << 20, 3, 7)
    assert s["scenario"] == str(path) and s["config"]["file"] == str(path)
    assert s["config"]["kvm"] == "v7.0.12"             # the default profile, by name
    r, s = run_json(path, "--kvm", "v6.17", "--kernel", "6.4")
    assert r.exit_code == 0, r.output
    assert (s["config"]["kvm"], s["config"]["kernel"]) == ("v6.17", "6.4")


def test_gmem_2m_is_recorded_in_the_config_as_for_a_built_in(tmp_path):
    # A built-in run's config.kvm names the derived profile "<base>+gmem-2M" (run.py);
    # a file run with --gmem-2m says the same, whichever base profile it uses.
    path = scenario_file(tmp_path, _SMALL)
    r, s = run_json(path, "--gmem-2m")
    assert r.exit_code == 0, r.output
    assert s["config"]["kvm"] == "v7.0.12+gmem-2M"
    r, s = run_json(path, "--gmem-2m", "--kvm", "v6.17")
    assert r.exit_code == 0, r.output
    assert s["config"]["kvm"] == "v6.17+gmem-2M"


@pytest.mark.parametrize("args", [
    ["--vcpus", "1"],            # the file gives vCPU 1 work
    ["--page-size", "4K"],
    ["--cycles", "3"],
    ["--variant", "buggy"],
    ["--memory", "3M"],
])
def test_options_the_file_cannot_take_are_refused(tmp_path, args):
    one_line_error(run(scenario_file(tmp_path, _SMALL), *args), 2)


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "x = (\n",                                              # SyntaxError
    "import snpsim_no_such_module\n",                       # ImportError
    "1 / 0\n",                                              # any exception at load
    "import sys\nsys.exit(3)\n",                            # SystemExit at load
    "scenario = 42\n",                                      # not a Scenario
    "x = 1\n",                                              # no scenario at all
    "from snpsim.api import Scenario\nscenario = Scenario('s', vcpus=0)\n",
    "from snpsim.api import Scenario\nscenario = Scenario('s', memory='12Q')\n",
    "from snpsim.api import Scenario\nscenario = Scenario('s')\n"
    "scenario.hook('no_such_function', lambda original: None)\n",
    "from snpsim.api import Scenario\nscenario = Scenario('s', kvm='v0.0')\n",
])
def test_bad_files_exit_2_with_one_line(tmp_path, body):
    out = tmp_path / "out"
    r = run(scenario_file(tmp_path, body), "--trace", out / "t.json", "--report", out)
    one_line_error(r, 2)
    assert not (out / "t.json").exists() and not (out / "index.html").exists()


def test_missing_file_and_directory_exit_2(tmp_path):
    one_line_error(run(tmp_path / "missing.py"), 2)
    (tmp_path / "dir.py").mkdir()
    one_line_error(run(tmp_path / "dir.py"), 2)


def test_load_error_names_the_line(tmp_path):
    r = run(scenario_file(tmp_path, "a = 1\nb = {}['x']\n"))
    one_line_error(r, 2)
    assert ", line 2:" in r.output and "KeyError" in r.output


@pytest.mark.parametrize("body", [
    # a workload that raises
    "from snpsim.api import Scenario\nscenario = Scenario('s')\n"
    "@scenario.guest(vcpu=0)\ndef w(g):\n    raise RuntimeError('boom')\n",
    # a hook that raises
    "from snpsim.api import Scenario\nscenario = Scenario('s')\n"
    "@scenario.hook('kvm_handle_hc_map_gpa_range')\n"
    "def h(original, cpu, run):\n    raise RuntimeError('boom')\n",
    # a schedule point no vCPU reaches
    "from snpsim.api import Scenario, run, enter\nscenario = Scenario('s', vcpus=2)\n"
    "scenario.schedule(run(1, until=enter('kvm_handle_memory_fault')))\n",
])
def test_user_code_errors_exit_1_with_the_errors_in_the_summary(tmp_path, body):
    r, s = run_json(scenario_file(tmp_path, body))
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    assert len(s["outcome"]["scenario_errors"]) == 1


def test_a_schedule_replays_the_same_run():
    """docs/api.md's guarantee: the same file and seed give the same run (everything but
    the wall time)."""
    def without_time(s):
        return {k: v for k, v in s.items() if k != "wall_time_s"}

    first = run_json(EXAMPLES / "fault_races_attributes.py", "--seed", "3")[1]
    again = run_json(EXAMPLES / "fault_races_attributes.py", "--seed", "3")[1]
    assert first["config"]["seed"] == 3
    assert without_time(first) == without_time(again)


def test_help_and_scenarios_mention_files():
    assert "FILE.py" in CliRunner().invoke(main, ["run", "--help"]).output
    names = [ln.split()[0] for ln in CliRunner().invoke(main, ["scenarios"]).output.splitlines()]
    assert "FILE.py" in names


def test_api_host_event_fires_with_one_vcpu():
    """@scenario.at needs the vCPU threads' scheduler; with one vCPU and no schedule the
    VM used to run without it, so the event never ran (and nothing said so)."""
    from snpsim.api import Scenario, enter

    sc = Scenario("one vCPU", vcpus=1)

    @sc.guest(vcpu=0)
    def work(g):
        g.set_memory_decrypted(g.alloc_page(), 1)

    @sc.at(enter("kvm_convert_memory", vcpu=0))
    def event(h):
        sc.data["events"] = sc.data.get("events", 0) + 1

    res = sc.run()
    assert res.completed, (res.describe(), res.errors)
    assert res.data["events"] >= 1


def test_api_run_traces_into_an_empty_recorder():
    """Scenario.run(trace=Recorder()) records: an empty Recorder has len() 0 and must
    not be taken for 'no tracing'."""
    from snpsim.api import Scenario
    from snpsim.trace.record import Recorder

    rec = Recorder()
    res = Scenario("t").run(trace=rec)
    assert res.outcome.completed
    assert len(rec.events) > 0 and res.events == rec.events


def test_kexec_leaves_nothing_shared():
    """snp_kexec_finish (arch/x86/coco/sev/core.c): after the kexec no RAM page is shared
    in the RMP, KVM's attributes or the direct map; the run ends halted (exit 1) with
    the hand-over named."""
    r, s = run_json(EXAMPLES / "kexec.py")
    assert r.exit_code == 1, r.output
    res = s["result"]
    assert res["shared_after"] == {"rmp": [], "attr": [], "pte": []}
    assert res["validated"] == [True, True]
    assert "kexec: the guest handed over to the next kernel" in r.output
    assert s["outcome"]["kexec"] == "kexec" and s["outcome"]["completed"] is False
