# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Output files appear whole or not at all (issue 15, item 2): directories are made before
the run, a write that fails or is interrupted leaves no file, a failed write has its own
exit status (3) and one line on stderr."""

import errno
import json
import os

import pytest
from click.testing import CliRunner

from snpsim.cli import main
from snpsim.trace import atomic
from snpsim.trace.atomic import atomic_write, prepare_output


def _files(path):
    return sorted(p.name for p in path.rglob("*"))


def test_atomic_write_replaces_only_when_complete(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert _files(tmp_path) == ["t.json"]          # no temporary file left
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text() == "new"
    assert _files(tmp_path) == ["t.json"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")])
def test_interrupted_or_full_disk_leaves_no_file(tmp_path, exc):
    target = tmp_path / "trace.jsonl"

    def boom(*a, **k):
        raise exc

    with pytest.raises(type(exc)), atomic_write(target) as f:
        f.write("x" * 100_000)
        boom()
    assert not target.exists() and _files(tmp_path) == []


def test_prepare_output_makes_directories_and_refuses_a_file_parent(tmp_path):
    assert prepare_output(tmp_path / "a" / "b" / "x.json") is None
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("")
    assert prepare_output(tmp_path / "f" / "x.json") is not None
    assert prepare_output(tmp_path / "a") is not None  # a directory, not a file name


def test_report_and_trace_into_a_new_directory(tmp_path):
    out = tmp_path / "new" / "dir"
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "1", "--json",
                                  "--report", str(out), "--trace", str(out / "seed.json")])
    assert r.exit_code == 0, r.output
    assert {"index.html", "memory.png", "summary.json", "seed.json"} <= set(_files(out))
    assert json.loads((out / "seed.json").read_text())["traceEvents"]
    assert not [n for n in _files(out) if n.endswith(".part")]


def test_failed_trace_write_exits_3_with_one_line_and_no_file(tmp_path, monkeypatch):
    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "replace", full_disk)
    target = tmp_path / "seed.jsonl"
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "1", "--json",
                                  "--trace", str(target)])
    assert r.exit_code == 3
    assert "Traceback" not in r.output
    assert _files(tmp_path) == []


def test_trace_command_writes_the_file_before_printing_and_fails_with_3(tmp_path, monkeypatch):
    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "replace", full_disk)
    r = CliRunner().invoke(main, ["trace", "set_memory_decrypted", "--out",
                                  str(tmp_path / "sub" / "t.JSON")])
    assert r.exit_code == 3
    assert "=>" not in r.output          # the tree is not printed before the failure
    assert _files(tmp_path) == ["sub"]   # directory made before the run, no file in it


def test_ctrl_c_during_a_streamed_pftrace_run_leaves_no_file(tmp_path, monkeypatch):
    import snpsim.scenarios.catalog
    import snpsim.system

    def interrupted(*args, **kwargs):
        snpsim.system.SnpSystem(memory=64 << 20).run(None)   # events reach the stream
        raise KeyboardInterrupt

    monkeypatch.setattr(snpsim.scenarios.catalog, "run_scenario", interrupted)
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "1", "--json",
                                  "--trace", str(tmp_path / "t.pftrace")])
    assert r.exit_code != 0
    assert _files(tmp_path) == []


def test_pftrace_from_run_and_trace_commands(tmp_path):
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "1", "--json",
                                  "--trace", str(tmp_path / "run.pftrace")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["trace"]["events"] > 0
    r = CliRunner().invoke(main, ["trace", "set_memory_encrypted", "--out",
                                  str(tmp_path / "t.PFTRACE")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run.pftrace").stat().st_size > 0 and (tmp_path / "t.PFTRACE").stat().st_size > 0


@pytest.mark.parametrize("suffix", [".pftrace", ".json"])
def test_an_output_the_kernel_refuses_is_found_before_the_run(suffix):
    """/proc accepts no new files whatever the permission bits say: every trace format is
    refused with status 2 before the run, not after it."""
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "1",
                                  "--trace", f"/proc/snpsim-test{suffix}"])
    assert r.exit_code == 2 and "Traceback" not in r.output


@pytest.mark.parametrize("args", [
    ["run", "boot", "--from-dmesg", "/dev/zero"],        # a device: never read
    ["run", "boot", "--from-dmesg", "/tmp"],             # a directory
    ["decode", "ghcb", "/dev/zero"],
    ["run", "seed", "--report", ""],
])
def test_inputs_that_are_not_regular_files_are_refused(args):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_api_refuses_vcpus_and_memory_out_of_range():
    from snpsim.system import SnpSystem

    for kwargs in ({"vcpus": 0}, {"vcpus": -3}, {"vcpus": 65}, {"memory": (1 << 40) + (2 << 20)}):
        with pytest.raises(ValueError):
            SnpSystem(**{"memory": 64 << 20, **kwargs})


@pytest.mark.parametrize("scenario", ["seed", "FILE"])
def test_a_write_error_while_a_pftrace_streams_exits_3_and_leaves_no_file(
        tmp_path, monkeypatch, scenario):
    """A full disk (ENOSPC) or a file-size limit (EFBIG, ``ulimit -f``) met by the trace
    while the run goes: the run finishes, nothing is left at the path or beside it, and
    the command exits 3 with one line -- for a built-in scenario and a scenario file."""
    from pathlib import Path

    from snpsim.trace import export_perfetto

    real = export_perfetto.PerfettoWriter.add
    calls = {"n": 0}

    def fills_up(self, e):
        calls["n"] += 1
        if calls["n"] > 500:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        return real(self, e)

    monkeypatch.setattr(export_perfetto.PerfettoWriter, "add", fills_up)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "t.pftrace"
    what = (str(Path(__file__).resolve().parents[2] / "examples" / "fault_races_attributes.py")
            if scenario == "FILE" else scenario)
    args = ["run", what, "--json", "--trace", str(target)]
    if scenario != "FILE":
        args += ["--memory", "64M", "--vcpus", "1"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 3, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert calls["n"] > 500
    assert _files(out) == []


def test_a_trace_the_report_would_overwrite_is_refused_before_the_run(tmp_path):
    out = tmp_path / "rep"
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "1",
                                  "--report", str(out), "--trace", str(out / "summary.json")])
    assert r.exit_code == 2
    assert not out.exists() or _files(out) == []


def test_file_names_past_the_limit_and_near_it(tmp_path):
    """NAME_MAX is 255 bytes (Linux ``include/uapi/linux/limits.h``): a longer name is
    refused with a reason, and a name that fits is written (its temporary name is cut to
    fit too)."""
    assert "255" in prepare_output(tmp_path / ("x" * 300 + ".json"))
    near = tmp_path / ("y" * 250 + ".json")
    assert prepare_output(near) is None
    with atomic_write(near) as f:
        f.write("{}")
    assert near.read_text() == "{}" and _files(tmp_path) == [near.name]


def test_a_report_that_cannot_be_finished_leaves_none_of_its_files(tmp_path, monkeypatch):
    """The picture fails to write (a full disk): summary.json, written first, goes again,
    and the command exits 3."""
    from snpsim.report import html as report_html

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(report_html, "write_picture", full_disk)
    out = tmp_path / "rep"
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "1",
                                  "--report", str(out)])
    assert r.exit_code == 3, r.output
    assert _files(out) == []
