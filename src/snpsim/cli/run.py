# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim run SCENARIO``: run a workload on an SNP guest and summarise what it cost.

SCENARIO is a built-in scenario (``snpsim scenarios``) or ``FILE.py``, a scenario file
written against :mod:`snpsim.api` (docs/api.md, ``examples/``).  Prints a summary table
(or ``--json``), optionally writes the call graph (``--trace``) and a static report with
a picture of guest memory (``--report``).  Exit status: 0 when the guest completed, 1
when it terminated, the VMM stopped or the scenario's code failed, 2 for bad arguments
(including an output path that cannot be created, and a scenario file that is missing,
cannot be loaded or defines no valid scenario: all found before the run starts), 3 when
writing an output file failed after the run (nothing partial is left behind).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

__all__ = ["command"]

_TRACE_SUFFIXES = (".txt", ".jsonl", ".json", ".pftrace")


#: Exit status when an output file could not be written after the run.
EXIT_WRITE_FAILED = 3
#: The largest kernel log ``--from-dmesg`` reads (a full dmesg is well under 1 MiB).
MAX_LOG_BYTES = 64 << 20


def _fail(msg: str, status: int = 2) -> NoReturn:
    click.echo(f"snpsim run: {msg}", err=True)
    sys.exit(status)


#: The largest scenario file ``snpsim run FILE.py`` loads.
MAX_SCENARIO_FILE_BYTES = 1 << 20
#: Options that do not apply to a scenario file (click parameter name -> option).
FILE_REFUSED = (("page_size", "--page-size"), ("cycles_text", "--cycles"),
                ("from_dmesg", "--from-dmesg"), ("variant", "--variant"))


def load_file(path_text: str) -> Any:
    """The :class:`snpsim.api.Scenario` that the file ``path_text`` defines as
    ``scenario``, or exit status 2 with one line: a path that is not a regular ``.py``
    file (or is over :data:`MAX_SCENARIO_FILE_BYTES`), an exception while the file runs
    (SyntaxError, ImportError, any other: its type, message and the file's line), or
    no ``scenario`` name holding a Scenario."""
    from snpsim.api import ScenarioError, load_scenario_file

    from .inputs import read_regular_file

    path = Path(path_text)
    try:
        read_regular_file(path, MAX_SCENARIO_FILE_BYTES)
    except ValueError as exc:
        _fail(f"scenario file: {exc}")
    try:
        return load_scenario_file(str(path))
    except ScenarioError as exc:  # a bad Scenario value, or no scenario at all
        line = _file_line(exc, path)
        _fail(f"{path}{line}: {exc}" if line else str(exc))
    except SyntaxError as exc:
        where = f", line {exc.lineno}" if exc.lineno else ""
        _fail(f"{path}{where}: {type(exc).__name__}: {exc.msg}")
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's file: one line, no traceback
        _fail(f"{path}{_file_line(exc, path)}: {type(exc).__name__} while loading: {exc}")


def _user_output(as_json: bool) -> Any:
    """While a scenario file's own code runs: with ``--json``, what it prints goes to
    stderr, so stdout stays one JSON document; otherwise nothing changes."""
    import contextlib

    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()


def _file_line(exc: BaseException, path: Path) -> str:
    """``", line N"``: the last line of ``path`` in the traceback of ``exc`` (or "")."""
    import traceback

    want = str(path.resolve())
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            if str(Path(frame.filename).resolve()) == want:
                line = frame.lineno
        except OSError:
            continue
    return f", line {line}" if line else ""


def plain(value: Any) -> Any:
    """``value`` (what a scenario file's code stored in ``g.result``) as JSON-able data:
    dicts with string keys, lists, str, int, float, bool, None; bytes as hex, enums as
    their integer, a dataclass instance (e.g. :class:`snpsim.api.PageState`) as a dict of
    its fields, anything else as its ``str``."""
    import dataclasses
    import enum

    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, enum.Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def file_run(path_text: str, res: Any) -> Any:
    """A :class:`snpsim.api.Result` as the :class:`snpsim.scenarios.catalog.ScenarioRun`
    the summary reads: ``name`` the file's path, ``result`` the run's data (plain, see
    :func:`plain`) with ``errors`` = an ``errors`` list the scenario's code stored
    itself plus :attr:`Result.errors` (user-code exceptions, schedule steps not done),
    ``config`` the machine (with ``file``)."""
    from snpsim.kvm.profiles import DEFAULT_PROFILE
    from snpsim.scenarios.catalog import ScenarioRun
    from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE

    result = plain(res.data)
    own = result.get("errors")
    errors = (own if isinstance(own, list) else [own] if own else []) + list(res.errors)
    if errors:
        result["errors"] = errors
    else:
        result.pop("errors", None)
    config = {**plain(res.config), "file": path_text}
    for key, default in (("kvm", DEFAULT_PROFILE), ("qemu", DEFAULT_QEMU_PROFILE)):
        if config.get(key) == "default":
            config[key] = default.name
    return ScenarioRun(path_text, res.system, res.outcome, result, config)


def validated_pages(stats: Any) -> int:
    """4 KiB pages validated so far, from a RunObserver's PVALIDATE counts (a 2M
    PVALIDATE validates 512)."""
    return sum(n * (512 if " 2M" in key else 1) for key, n in stats.pvalidate.items()
               if key.startswith("validate") and key.endswith(": ok"))


def _progress(enabled: bool, total_pages: int | None = None) -> tuple[Any, Any]:
    """A rich progress display on stderr that appears once a run passes 2 s (TTY only).
    With ``total_pages`` (4 KiB pages the run will validate, when the scenario knows it)
    it shows a percentage and the time left."""
    if not enabled:
        return None, None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        return None, None
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    if total_pages:
        columns += [TaskProgressColumn(), TimeRemainingColumn()]
    prog = Progress(*columns, TimeElapsedColumn(), console=console, transient=True)
    state: dict[str, Any] = {"task": None}

    def update(stats: Any, elapsed: float, phase: str = "") -> None:
        if elapsed < 2.0:
            return
        if state["task"] is None:
            prog.start()
            state["task"] = prog.add_task("running", total=total_pages or None)
        pv = sum(stats.pvalidate.values())
        desc = (f"{phase or 'running'}: {sum(stats.userspace_exits.values())} userspace exits, "
                f"{stats.psc_requests} PSC, {pv} PVALIDATE")
        done = min(validated_pages(stats), total_pages) if total_pages else None
        prog.update(state["task"], description=desc, completed=done, refresh=True)

    return prog, update


def status(message: str) -> Any:
    """A spinner with ``message`` on stderr while an output is written (TTY only; a
    context manager that does nothing elsewhere)."""
    import contextlib

    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        return contextlib.nullcontext()
    return console.status(message)


#: CPU microseconds per 4 KiB page that ``accept`` costs through the full path, tracing
#: off, by PSC entry size: user CPU of ``snpsim run accept --memory 256M`` (2026-12-05,
#: QEMU 10.1 profile, whose KVM_PRE_FAULT_MEMORY after each conversion maps every page
#: through the TDP fault path; docs/performance.md).  Used only to say up front what a
#: long run will cost.
ACCEPT_US_PER_PAGE = {"4K": 150.0, "2M": 90.0}
#: Estimated CPU seconds from which ``run accept`` warns before it starts.
ACCEPT_WARN_SECONDS = 10.0


def accept_cost_warning(memory: int, page_size: str) -> str | None:
    """The line ``snpsim run accept`` prints before a run estimated at
    :data:`ACCEPT_WARN_SECONDS` or more (``memory`` in bytes, ``page_size`` "4K"/"2M"),
    or None.  The estimate is a floor: a busy machine takes longer."""
    from snpsim.system import format_size

    pages = memory // 4096
    est = pages * ACCEPT_US_PER_PAGE.get(page_size, ACCEPT_US_PER_PAGE["4K"]) / 1e6
    if est < ACCEPT_WARN_SECONDS:
        return None
    when = f"{est / 60:.0f} min" if est >= 90 else f"{est:.0f} s"
    return (f"snpsim run: accepting {format_size(memory)} with {page_size} PSC entries validates "
            f"{pages} pages through the whole path: at least {when} of CPU on this model "
            "(more on a busy machine; docs/performance.md)")


@click.command(name="run")
@click.argument("scenario", metavar="SCENARIO")
@click.option("--memory", default=None, metavar="SIZE", help="Guest RAM: a size with a binary K/M/G/T suffix "
              "(1G = 1GB = 1GiB = 2^30 bytes; 1.5G allowed), a multiple of 2M (32M..1T).  Default 4G, or the log's with --from-dmesg.  "
              "boot needs room for its 64 MiB swiotlb pool: from about 96M.")
@click.option("--vcpus", "vcpus_text", default=None, metavar="1..64",
              help="vCPUs (1..64).  Default 4, or the log's possible CPUs with --from-dmesg.")
@click.option("--kernel", default="6.17", show_default=True, metavar="6.17|6.16|6.4",
              help="Guest kernel profile.")
@click.option("--kvm", "kvm", default="v7.0.12", show_default=True, metavar="v7.0.12|v6.17",
              help="KVM profile.")
@click.option("--gmem-2m", is_flag=True,
              help="Back guest memory with 2 MiB guest_memfd folios (pending upstream "
                   "huge-page work): 2 MiB RMP entries, so 2M PVALIDATE succeeds.")
@click.option("--seed", "seed_text", default="0", show_default=True, metavar="0..2^64-1",
              help="Scheduler and key seed (an integer, decimal or 0x hex).")
@click.option("--page-size", default="2M", show_default=True, metavar="4K|2M",
              help="accept only: PSC entry size.")
@click.option("--cycles", "cycles_text", default="4", show_default=True, metavar="1..100000",
              help="dma only: allocation/free cycles.")
@click.option("--from-dmesg", "from_dmesg", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="boot: configure memory, CPUs and swiotlb from a guest kernel log.")
@click.option("--variant", default=None, metavar="buggy|fixed",
              help="bug/<name> only: 'buggy' runs the historical behaviour.")
@click.option("--mode", "mode", type=click.Choice(["snp", "sev-es", "sev"]), default=None,
              help="Memory-encryption mode of the guest (default snp; with --from-dmesg the "
                   "log's).  SEV / SEV-ES: no RMP, PVALIDATE or PSC.")
@click.option("--costs", "costs_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A cost table (TOML, the shape of snpsim/data/costs.toml; docs/costs.md) "
                   "merged onto the default one for the modelled time: e.g. your own "
                   "measurements.  Checked before the run.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--trace", "trace", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the call graph: .pftrace (Perfetto's protobuf format, written while "
                   "the run goes; the compact choice for long runs), .json (Chrome trace "
                   "event format), .jsonl (JSON lines) or .txt (tree).  Timestamps are "
                   "modelled time (--trace-clock).  Tracing makes a run 3-6 times slower.  With "
                   "--report, a bare file name is written into the report directory.")
@click.option("--trace-clock", "trace_clock", type=click.Choice(["modelled", "wall"]),
              default="modelled", show_default=True,
              help="Trace timestamps: the machine's modelled time on each vCPU (and the "
                   "host), so a Perfetto timeline shows the machine (docs/costs.md), or the "
                   "simulator's wall clock.")
@click.option("--trace-filter", "trace_filter", default=None,
              help="Keep only matching trace events, e.g. "
                   "'party=guest,kvm;func=snp_*;gpa=0x100000-0x200000'.")
@click.option("--report", "report_text", type=click.Path(file_okay=False), default=None,
              help="Write an HTML report with the summary and a PNG of guest memory over "
                   "the run into this directory.  Sampling memory after every userspace exit "
                   "makes a boot about 4 times slower.")
def command(scenario: str, memory: str | None, vcpus_text: str | None, kernel: str, kvm: str,
            gmem_2m: bool, seed_text: str, page_size: str, cycles_text: str,
            from_dmesg: Path | None,
            variant: str | None, mode: str | None, costs_file: Path | None, as_json: bool,
            trace: Path | None, trace_clock: str, trace_filter: str | None,
            report_text: str | None) -> None:
    """Run SCENARIO ('snpsim scenarios' lists them) on an SNP guest (or SEV / SEV-ES with
    --mode) and summarise it.  SCENARIO may be FILE.py, a scenario file written against
    snpsim.api (docs/api.md, examples/): its machine is the file's, except for
    --memory, --vcpus, --kernel, --kvm, --mode and --seed when given, which override it
    (--gmem-2m adds 2 MiB folios); --page-size, --cycles, --variant and --from-dmesg do
    not apply to it.

    The summary counts pages made shared and private, PSC requests and entries,
    VMGEXITs, MSR-protocol exits, userspace exits by reason, RMPUPDATE, PSMASH, PVALIDATE
    by outcome, #VC, #NPF, TLB flushes, the wall time, the modelled time (what the run
    would take on an SNP machine, from a cost table; --costs FILE loads your own) with
    where it went, and how the run ended.

    Exit status: 0 the guest powered off; 1 it terminated, the VMM stopped, it handed
    over to a kexec/kdump kernel (not modelled: outcome.kexec), or the scenario failed
    (e.g. the boot could not set up swiotlb, or a scenario file's code raised: the
    summary's "errors"); 2 bad arguments (output directories are made and checked before
    the run; a scenario file that is missing, fails to load or defines no valid scenario);
    3 an output file could not be written (it is then absent, never partial).
    """
    from snpsim.kvm.profiles import KVM_PROFILES
    from snpsim.scenarios.catalog import (
        ScenarioError,
        run_scenario,
        scenario_list,
        vm_memory_for_log,
    )
    from snpsim.scenarios.dmesg import (
        DmesgError,
        check_log_bounds,
        kernel_profile_for_version,
        parse_dmesg,
    )
    from snpsim.system import RunObserver, parse_size
    from snpsim.trace.atomic import prepare_output
    from snpsim.trace.record import parse_filter

    # -- arguments ---------------------------------------------------------------------------
    def integer(text: str | None, option: str) -> int | None:
        if text is None:
            return None
        try:
            return int(text, 0)
        except ValueError:
            _fail(f"{option} must be an integer, got {text!r}")

    vcpus = integer(vcpus_text, "--vcpus")
    seed = integer(seed_text, "--seed") or 0
    if not 0 <= seed < 1 << 64:
        _fail(f"--seed must be 0..2^64-1, got {seed_text}")
    cycles = integer(cycles_text, "--cycles")
    assert cycles is not None
    if page_size not in ("4K", "2M"):
        _fail(f"--page-size must be 4K or 2M, got {page_size!r}")
    if not 1 <= cycles <= 100_000:
        _fail(f"--cycles must be 1..100000, got {cycles_text}")
    ctx = click.get_current_context()

    def on_command_line(param: str) -> bool:
        return ctx.get_parameter_source(param) == click.core.ParameterSource.COMMANDLINE

    scenario_file = None
    if scenario.endswith(".py"):
        for param, option in FILE_REFUSED:
            if on_command_line(param):
                _fail(f"{option} does not apply to a scenario file")
        with _user_output(as_json):
            scenario_file = load_file(scenario)
    elif scenario not in dict(scenario_list()):
        where = Path(scenario)
        if where.is_dir():
            _fail(f"SCENARIO {scenario!r} is a directory: give a scenario FILE.py or a "
                  "built-in name ('snpsim scenarios')")
        if where.exists():
            _fail(f"SCENARIO {scenario!r} is not a .py scenario file nor a built-in name "
                  "('snpsim scenarios')")
        _fail(f"unknown SCENARIO {scenario!r}: see 'snpsim scenarios' (or give FILE.py)")
    # An option given for a scenario it does not apply to is refused, not ignored.
    for param, option, applies in (("page_size", "--page-size", scenario == "accept"),
                                   ("cycles_text", "--cycles", scenario == "dma")):
        given = ctx.get_parameter_source(param) == click.core.ParameterSource.COMMANDLINE
        if given and not applies:
            _fail(f"{option} does not apply to {scenario}")
    if kvm not in KVM_PROFILES:
        _fail(f"unknown --kvm {kvm!r}: choose one of {', '.join(KVM_PROFILES)}")
    mem: int | None = None
    if memory is not None:
        try:
            mem = parse_size(memory)
        except ValueError as exc:
            _fail(f"--memory: {exc}")
        if not 32 << 20 <= mem <= 1 << 40:
            _fail(f"--memory must be 32M..1T, got {memory}")
        if mem % (2 << 20):
            _fail(f"--memory must be a multiple of 2M, got {memory}")
    if vcpus is not None and not 1 <= vcpus <= 64:
        _fail(f"--vcpus must be 1..64, got {vcpus}")
    if from_dmesg is not None and scenario != "boot":
        _fail("--from-dmesg applies to the boot scenario only")
    if report_text is not None and not report_text.strip():
        _fail("--report needs a directory name")
    report = Path(report_text) if report_text is not None else None
    trace_path = trace
    if trace is not None:
        if trace.suffix.lower() not in _TRACE_SUFFIXES:
            _fail(f"--trace must end in .pftrace, .json, .jsonl or .txt, got {trace.name!r}")
        if report is not None and not trace.is_absolute() and trace.parent == Path("."):
            trace_path = report / trace.name  # beside the report, so its link opens from disk
    if trace_filter is not None and trace is None:
        _fail("--trace-filter needs --trace FILE")
    flt = None
    if trace_filter:
        try:
            flt = parse_filter(trace_filter)
        except ValueError as exc:
            _fail(f"bad --trace-filter: {exc}")
    from snpsim.costs import CostTableError, load_costs, use_costs

    try:
        cost_table = load_costs(costs_file)
    except CostTableError as exc:
        _fail(f"--costs: {exc}")
    if report is not None and report.exists() and not report.is_dir():
        _fail(f"--report {report} exists and is not a directory")
    if report is not None and trace_path is not None:
        from snpsim.report.html import REPORT_FILES

        if (trace_path.name in REPORT_FILES
                and trace_path.parent.resolve() == report.resolve()):
            _fail(f"--trace {trace} would be overwritten by the report's {trace_path.name}: "
                  "choose another name")
    dmesg = None
    if from_dmesg is not None:
        from .inputs import read_regular_file

        try:
            text = read_regular_file(from_dmesg, MAX_LOG_BYTES).decode("utf-8", "replace")
        except ValueError as exc:
            _fail(f"--from-dmesg: {exc}")
        try:
            dmesg = parse_dmesg(text, memory_bytes=mem)
        except DmesgError as exc:
            _fail(f"{from_dmesg.name}: {exc}")
        if dmesg.mode is None and mode is None:
            _fail(f"{from_dmesg.name}: the log shows no AMD SEV, SEV-ES or SEV-SNP guest (no "
                  "'Memory Encryption Features active: AMD ...' line); pass --mode to run it "
                  "as one")
        if vcpus is not None:
            dmesg = dmesg.with_vcpus(vcpus)
        problem = check_log_bounds(dmesg, max_cpus=64, min_memory=32 << 20, max_memory=1 << 40)
        if problem:
            _fail(f"{from_dmesg.name}: {problem}")
        log_notes = [w for w in dmesg.warnings if vcpus is None or "CPU count" not in w]
        if dmesg.nr_cpus is None and vcpus is None:
            log_notes.append("using the default of 4 vCPUs")
        if ctx.get_parameter_source("kernel") != click.core.ParameterSource.COMMANDLINE:
            kernel, note = kernel_profile_for_version(dmesg.kernel_version)
            if note:
                log_notes.append(note)
        for note in log_notes:
            click.echo(f"snpsim run: warning: {from_dmesg.name}: {note}", err=True)
        if mem is None:
            mem = vm_memory_for_log(dmesg)
        if vcpus is None:
            vcpus = dmesg.nr_cpus
        log_mode = {"SEV": "sev", "SEV-ES": "sev-es", "SEV-SNP": "snp"}.get(
            dmesg.mode.value if dmesg.mode is not None else "", None)
        if mode is not None and log_mode is not None and mode != log_mode:
            _fail(f"--mode {mode}: the log's guest runs {dmesg.mode.value if dmesg.mode else ''}")
    if scenario_file is not None:
        # The file describes its machine; the options given on the command line win.
        from snpsim.api import ScenarioError as ApiScenarioError

        try:
            scenario_file.override(memory=mem, vcpus=vcpus, mode=mode,
                                   kernel=kernel if on_command_line("kernel") else None,
                                   kvm=kvm if on_command_line("kvm") else None,
                                   seed=seed if on_command_line("seed_text") else None)
        except ApiScenarioError as exc:
            _fail(f"{scenario}: {exc}")
        if gmem_2m:
            # As for a built-in: the profile is renamed "<base>+gmem-2M", so the run's
            # config (summary, JSON, report) says the folios were 2 MiB; the knob is also
            # set in the file's own knobs, which are applied last, so the option wins.
            from snpsim.api import kvm_profile as api_kvm_profile

            base = api_kvm_profile(scenario_file.kvm)
            scenario_file.kvm = base.derive(f"{base.name}+gmem-2M", knobs={"gmem_max_order": 9})
            scenario_file.kvm_knobs["gmem_max_order"] = 9
        mem = scenario_file.memory
    mem = mem if mem is not None else 4 << 30
    vcpus = vcpus if vcpus is not None else 4
    kvm_profile: Any = KVM_PROFILES[kvm]
    if gmem_2m:
        kvm_profile = kvm_profile.derive(f"{kvm}+gmem-2M", knobs={"gmem_max_order": 9})

    # -- outputs: every directory made and checked before the run, not after it ---------------
    if report is not None:
        problem = prepare_output(report / "index.html")
        if problem:
            _fail(f"--report {report}: {problem}")
    if trace_path is not None:
        problem = prepare_output(trace_path)
        if problem:
            _fail(f"--trace {trace}: {problem}")

    # -- run ---------------------------------------------------------------------------------
    total_pages = mem // 4096 if scenario == "accept" else None
    if total_pages:
        warning = accept_cost_warning(mem, page_size)
        if warning:
            click.echo(warning, err=True)
    prog, update = _progress(not as_json, total_pages)
    holder: dict[str, Any] = {}

    def progress(stats: Any, elapsed: float) -> None:
        if update is not None:
            res = holder.get("result")
            update(stats, elapsed, getattr(res, "phase", ""))

    observer = RunObserver(picture=report is not None, progress=progress if update else None)
    recorder: Any = None
    streamed = trace_path is not None and trace_path.suffix.lower() == ".pftrace"
    costs_in_force = use_costs(cost_table)
    costs_in_force.__enter__()
    try:
        if trace is not None:
            from snpsim.trace.record import Recorder, tracing

            if streamed:
                from snpsim.trace.export_perfetto import PerfettoRecorder

                try:
                    recorder = PerfettoRecorder(trace_path, filter=flt)
                except OSError as exc:
                    _fail(f"cannot write {trace_path}: {exc.strerror or exc}")
            else:
                recorder = Recorder(filter=flt)
            if scenario_file is not None:
                with _user_output(as_json):
                    res = scenario_file.run(observer=observer, trace=recorder,
                                            trace_clock=trace_clock)
                run = file_run(scenario, res)
            else:
                from snpsim.costs import modelled_trace_clock

                stamp = modelled_trace_clock() if trace_clock == "modelled" else None
                with tracing(recorder, clock=stamp):
                    run = run_scenario(scenario, memory=mem, vcpus=vcpus, kernel=kernel,
                                       kvm=kvm_profile, seed=seed, page_size=page_size,
                                       cycles=cycles, dmesg=dmesg, variant=variant,
                                       observer=observer, mode=mode or "snp")
        elif scenario_file is not None:
            with _user_output(as_json):
                res = scenario_file.run(observer=observer)
            run = file_run(scenario, res)
        else:
            run = run_scenario(scenario, memory=mem, vcpus=vcpus, kernel=kernel, kvm=kvm_profile,
                               seed=seed, page_size=page_size, cycles=cycles, dmesg=dmesg,
                               variant=variant, observer=observer, mode=mode or "snp")
    except (ScenarioError, ValueError) as exc:
        if streamed and recorder is not None:
            recorder.abort()
        _fail(str(exc))
    except BaseException:
        if streamed and recorder is not None:
            recorder.abort()  # Ctrl-C or a crash: no partial .pftrace
        raise
    finally:
        costs_in_force.__exit__(None, None, None)
        if prog is not None:
            prog.stop()

    # -- output ------------------------------------------------------------------------------
    from snpsim.report.summary import summarize, summary_table

    summary = summarize(run)
    traces: list[Path] = []
    if trace_path is not None and recorder is not None:
        from snpsim.trace.export import write_trace

        path = trace_path
        try:
            if streamed:
                recorder.close()
            else:
                with status(f"writing {len(recorder.events)} trace events to {path}"):
                    write_trace(recorder.events, path)
        except OSError as exc:
            _fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_WRITE_FAILED)
        traces.append(path)
        summary["trace"] = {"file": str(path), "events": len(recorder.events),
                            "filtered": recorder.filtered}
    if report is not None:
        from snpsim.report.html import write_report

        try:
            with status(f"writing the report into {report}"):
                index = write_report(report, summary, run.outcome.picture, traces)
        except OSError as exc:
            _fail(f"cannot write the report into {report}: {exc.strerror or exc}",
                  EXIT_WRITE_FAILED)
        summary["report"] = str(index)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        from rich.console import Console

        Console().print(summary_table(summary))
        for t in traces:
            click.echo(f"trace written to {t}")
        if report is not None:
            click.echo(f"report written to {summary['report']}")
    # A guest that powered off after its scenario failed (e.g. swiotlb could not be set
    # up) did not complete what it was asked to do.
    sys.exit(0 if summary["outcome"]["succeeded"] else 1)
