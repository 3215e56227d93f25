# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""What ``snpsim run FILE.py`` and :class:`snpsim.api.Scenario` check before a run: every
value a scenario names (memory, profiles, knobs, options) is refused at the line that
names it, with the choices; a path that is no scenario file is named as what it is; and
the summary says whether the scenario's own checks failed."""

import json

import pytest
from click.testing import CliRunner

from snpsim.api import PageState, Scenario, ScenarioError, kvm_profile, qemu_profile, signature
from snpsim.cli import main
from snpsim.cli.run import plain
from snpsim.kvm.profiles import KVM_PROFILES
from snpsim.vmm.profiles import QEMU_PROFILES


def run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)], prog_name="snpsim")


def one_line(r, status):
    assert r.exit_code == status, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("snpsim run: "), r.output
    assert "Traceback" not in r.output
    return lines[0]


HEAD = "from snpsim.api import Scenario\n"


@pytest.mark.parametrize("call, names", [
    ("Scenario('s', memory='65M')", ["2M"]),            # GuestConfig: ram_size 2 MiB units
    ("Scenario('s', memory='16M')", ["32M"]),           # below the smallest machine
    ("Scenario('s', memory='2T')", ["1T"]),             # above the largest
    ("Scenario('s', kvm='v5.1')", list(KVM_PROFILES)),
    ("Scenario('s', qemu='8.0')", list(QEMU_PROFILES)),
    ("Scenario('s', kernel='5.19')", ["6.17", "6.4"]),
    ("Scenario('s', kvm_knobs={'gmem_max_ordr': 9})", ["gmem_max_order"]),
    ("Scenario('s', qemu_knobs={'nope': 1})", sorted(QEMU_PROFILES["10.1"].knobs)[:1]),
    ("Scenario('s', memroy='64M')", ["memory"]),         # a misspelt keyword: the hint
])
def test_a_bad_value_is_refused_at_its_line_with_the_choices(tmp_path, call, names):
    path = tmp_path / "s.py"
    path.write_text(HEAD + "\n" + f"scenario = {call}\n")
    line = one_line(run(path), 2)
    assert f"{path}, line 3:" in line
    for name in names:
        assert name in line


def test_knobs_are_checked_against_the_profile_they_change():
    with pytest.raises(ScenarioError):
        kvm_profile("v6.17", knobs={"no_such_knob": 1})
    with pytest.raises(ScenarioError):
        qemu_profile("10.1", knobs={"no_such_knob": 1})
    # A real knob of each goes through and changes that knob only.
    prof = kvm_profile("v6.17", knobs={"gmem_max_order": 9})
    assert prof.knob("gmem_max_order") == 9
    assert {k: v for k, v in prof.knobs.items() if k != "gmem_max_order"} == \
        {k: v for k, v in KVM_PROFILES["v6.17"].knobs.items() if k != "gmem_max_order"}


@pytest.mark.parametrize("knobs", [
    {"gmem_max_order": -3}, {"gmem_max_order": 10}, {"gmem_max_order": True},
    {"scratch": "fixed"}, {"psc_coalesce_base": 1}, {"max_entries_per_run": 0},
    {"stale_hypercall_ret": -38},               # a u64 (R6's -KVM_ENOSYS is stored as u64)
    {"gmem_prepare_every_get": 1},              # a bool knob takes a bool
])
def test_impossible_knob_values_are_refused(knobs):
    with pytest.raises(ScenarioError):
        Scenario("s", kvm_knobs=knobs)
    with pytest.raises(ScenarioError):
        kvm_profile("v7.0.12", knobs=knobs)


def test_qemu_bool_knob_takes_a_bool():
    with pytest.raises(ScenarioError):
        qemu_profile("10.1", knobs={"write_hypercall_ret": "yes"})
    assert qemu_profile("10.1", knobs={"write_hypercall_ret": True}).knob("write_hypercall_ret")


def test_override_checks_as_the_constructor_does():
    sc = Scenario("s", kvm_knobs={"gmem_max_order": 9})
    for kwargs in ({"memory": "65M"}, {"kernel": "5.19"}, {"kvm": "v5.1"}):
        with pytest.raises(ScenarioError):
            sc.override(**kwargs)
    assert sc.memory == 64 << 20 and sc.kernel == "6.17" and sc.kvm is None


def test_a_path_that_is_no_scenario_file_says_what_it_is(tmp_path):
    assert "is a directory" in one_line(run(tmp_path), 2)
    text = tmp_path / "notes.md"
    text.write_text("# not python\n")
    assert "not a .py scenario file" in one_line(run(text), 2)
    assert "unknown SCENARIO" in one_line(run(tmp_path / "missing"), 2)


def test_scenario_errors_make_succeeded_false_but_not_completed(tmp_path):
    """The guest still powers off (completed) when the file's own check stores an error;
    the run fails (exit 1) and the JSON outcome says so in ``succeeded``."""
    path = tmp_path / "s.py"
    path.write_text(HEAD + "scenario = Scenario('s')\n"
                    "@scenario.after\n"
                    "def check(h):\n"
                    "    scenario.data['errors'] = ['the page stayed shared']\n")
    r = run(path, "--json")
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout)["outcome"]
    assert out["completed"] is True and out["succeeded"] is False
    assert out["scenario_errors"] == ["the page stayed shared"]
    ok = tmp_path / "ok.py"
    ok.write_text(HEAD + "scenario = Scenario('s')\n")
    r = run(ok, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["outcome"]["succeeded"] is True


def test_page_state_in_data_is_an_object_of_its_fields():
    ps = PageState(gpa=0x1000, pte_c_bit=True, rmp={"assigned": True, "asid": 1}, spa=0x5000,
                   attribute_private=True, host_read=b"\x01\xff", spa_read=None)
    assert plain({"page": ps}) == {"page": {
        "gpa": 0x1000, "pte_c_bit": True, "rmp": {"assigned": True, "asid": 1},
        "spa": 0x5000, "attribute_private": True, "host_read": "01ff", "spa_read": None}}


@pytest.mark.parametrize("name, start", [
    # arch/x86/kvm/mmu/mmu.c: kvm_mmu_page_fault(vcpu, cr2_or_gpa, error_code, insn, len)
    ("kvm_mmu_page_fault", "kvm_mmu_page_fault(vcpu, cr2_or_gpa, error_code"),
    # accel/kvm/kvm-all.c (QEMU 10.1): kvm_convert_memory(start, size, to_private); the
    # model's first argument is QEMU's KVMState
    ("kvm_convert_memory", "kvm_convert_memory(s, start, size, to_private)"),
    # arch/x86/coco/sev/core.c: __set_pages_state(data, vaddr, vaddr_end, op)
    ("__set_pages_state", "__set_pages_state(kernel, data, vaddr, vaddr_end, op)"),
])
def test_signature_gives_the_hook_arguments(name, start):
    assert signature(name).startswith(start)
    with pytest.raises(ScenarioError):
        signature("no_such_function")


def test_an_internal_error_says_which_exit_failed(tmp_path):
    """The lying VMM of examples/lying_vmm.py under mainline QEMU (no
    ``write_hypercall_ret``): kvm_arch_handle_exit returns the handler's -EINVAL (-22)
    for the KVM_EXIT_HYPERCALL, kvm_cpu_exec dumps the registers and the VM stops in
    RUN_STATE_INTERNAL_ERROR (accel/kvm/kvm-all.c).  The summary names the exit and
    the value, not a bare "internal-error"."""
    from pathlib import Path

    src = (Path(__file__).resolve().parents[2] / "examples" / "lying_vmm.py").read_text()
    assert '"write_hypercall_ret": True' in src
    path = tmp_path / "lie.py"
    path.write_text(src.replace('"write_hypercall_ret": True', '"write_hypercall_ret": False'))
    r = run(path, "--json")
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout)["outcome"]
    assert out["result"] == "internal-error"
    assert "KVM_EXIT_HYPERCALL" in out["description"] and "-22" in out["description"]


def test_a_file_that_never_finishes_loading_exits_2(tmp_path, monkeypatch):
    """A loop at module level: ``snpsim run`` gives up after ``LOAD_SECONDS`` with exit
    status 2 and one line, instead of hanging."""
    import snpsim.api

    monkeypatch.setattr(snpsim.api, "LOAD_SECONDS", 0.5)
    f = tmp_path / "loop.py"
    f.write_text("while True:\n    pass\n")
    out = CliRunner().invoke(main, ["run", str(f)])
    assert out.exit_code == 2
    assert out.output.count("\n") == 1 and "loop.py" in out.output
    assert "Traceback" not in out.output


def test_a_file_with_a_null_byte_is_one_line_without_a_line_number(tmp_path):
    """Python refuses a source with a NUL byte before it has a line to blame: the one
    line says so without a made-up line number."""
    f = tmp_path / "nul.py"
    f.write_bytes(b"a = 1\x00\n")
    out = CliRunner().invoke(main, ["run", str(f)])
    assert out.exit_code == 2
    assert out.output.count("\n") == 1 and "None" not in out.output


@pytest.mark.parametrize("body, line_no", [
    ("scenario.host_init(RmpConfig.contiguous(0x123, 12345))\n", 4),
    ("scenario.host_init(RmpConfig.contiguous('abc', 1))\n", 4),
    ("scenario.host_init(RmpConfig.segmented(1 << 38, 29, {0: (1 << 39, 1)}))\n", 4),
    ("scenario.host_init(RmpConfig.segmented(1 << 38, 30, {-1: (1 << 39, 1)}))\n", 4),
    ("scenario.host_init(RmpConfig.contiguous(1 << 35, 1 << 36), ram=-1)\n", 4),
    ("scenario.host_init(RmpConfig.contiguous(1 << 35, 1 << 36), ram='32M')\n", 4),
    ("scenario.host_init(RmpConfig.contiguous(1 << 35, 1 << 36))\n"
     "scenario.host_init(RmpConfig.contiguous(1 << 35, 1 << 36))\n", 5),
])
def test_a_bad_host_init_is_refused_at_its_line(tmp_path, body, line_no):
    path = tmp_path / "h.py"
    path.write_text("from snpsim.api import RmpConfig, Scenario\n\n"
                    "scenario = Scenario('s', memory='64M')\n" + body)
    line = one_line(run(path), 2)
    assert f"{path}, line {line_no}:" in line


def test_memory_beyond_the_host_ram_is_refused_on_the_command_line(tmp_path):
    path = tmp_path / "h.py"
    path.write_text("from snpsim.api import RmpConfig, Scenario\n\n"
                    "scenario = Scenario('s', memory='64M')\n"
                    "scenario.host_init(RmpConfig.contiguous(1 << 35, 1 << 36), ram='64M')\n")
    one_line(run(path, "--memory", "128M"), 2)


@pytest.mark.parametrize("repeats", [0, 1, "64", 2.5])
def test_livelock_repeats_is_checked_at_the_scenario_line(repeats):
    """LivelockWatcher needs at least 2 passes to call a state repeated
    (trace/progress.py); a bad value is refused where the Scenario is made."""
    with pytest.raises(ScenarioError):
        Scenario("s", livelock_repeats=repeats)
