# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The summary of a run: one dict (``--json``) and the rich table printed from it.

Fields of :func:`summarize` (counts are integers; see ``docs/run.md``):

- ``scenario``, ``config`` (memory, vCPUs, profiles, seed, scenario options);
- ``outcome``: ``succeeded`` (bool: the guest powered off and the scenario reported no
  error -- exactly when ``snpsim run`` exits 0), ``completed`` (bool: the guest powered
  off, whatever the scenario's own checks found), ``result`` (the VMM's),
  ``description`` (the one line of ``RunOutcome.describe``), ``termination``
  (``reason_set``, ``reason_code``, ``function``) or null, ``panic``, ``livelock`` (one
  line) with ``livelock_loop``, ``livelock_vcpu`` and ``livelock_state`` (the loop that
  could never end, its vCPU or null for host code, the state it was stuck in; all null
  when no livelock stopped the run), ``scenario_errors`` (what the workload could not
  do, e.g. a boot step that failed), ``kexec`` ("kexec" or "kdump" when the guest
  handed over to a next kernel, else null), ``checks`` (named check -> times it fired,
  :data:`snpsim.spec.checks.CHECKS`);
- ``pages_made_shared`` / ``pages_made_private``: ``{"4K": n, "2M": n}``, the pages KVM
  asked the VMM to convert (KVM_HC_MAP_GPA_RANGE exits; 2M counts 2 MiB pages) in SNP
  mode; in SEV and SEV-ES mode, where no conversion reaches the host, the 4 KiB pages
  whose C-bit the guest changed;
- ``guest_cbit_pages``: ``{"shared": n, "private": n}``, 4 KiB pages whose C-bit the
  guest kernel changed, in every mode;
- ``psc``: ``requests`` (GHCB PSC VMGEXITs), ``entries``, ``entries_by_kind``;
- ``vmgexits`` (all, from the platform), ``ghcb_exits`` by exit code, ``msr_protocol_exits``
  (total) and ``msr_protocol_by_request``;
- ``userspace_exits``: by reason, and ``userspace_exits_total``;
- ``rmpupdate``, ``psmash``, ``pvalidate`` (by ``"validate 4K: ok"``-style outcome, and
  ``pvalidate_total``), ``vc``, ``npf``, ``pre_fault_calls`` and ``pre_fault_pages``
  (KVM_PRE_FAULT_MEMORY ioctls and the pages they mapped), ``tlb_flushes`` (full
  flushes) and ``invlpg``;
- ``vmsas`` (SNP only): per vCPU with a VMSA, ``vcpu``, ``gpa`` (0xFFFFFFFFF000 for KVM's own),
  ``guest_vmsa`` (an SNP AP creation moved it to a guest page) and that page's RMP
  ``assigned``, ``vmsa``, ``validated``;
- ``wall_time_s`` (the simulator's own time) and ``modelled_time`` (what the run would
  take on an SNP machine, from the cost table, docs/costs.md): ``elapsed_s`` with
  ``low_s``/``high_s``, ``busy_s`` (work over all vCPUs and the host) with its range,
  ``by_kind`` (``count``, ``s``, ``low_s``, ``high_s``, ``share``, ``per`` for each kind
  of operation charged; the kinds sum to ``busy_s``), ``by_lane``, ``cpu_ghz``,
  ``table``; null for a run that did not report one; ``result`` (what the scenario reports, e.g. the swiotlb bytes);
  ``warnings`` (the guest's WARN/pr_err lines).
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from snpsim.scenarios.catalog import ScenarioRun
from snpsim.system import format_size

__all__ = ["summarize", "summary_table", "format_seconds"]


def summarize(run: ScenarioRun) -> dict[str, Any]:
    """The summary of ``run`` as plain data (see the module doc)."""
    o = run.outcome
    c = o.counters
    st = o.stats
    term = None
    if o.termination is not None:
        rs, rc, fn = o.termination
        term = {"reason_set": rs, "reason_code": rc, "function": fn}
    conv = st.converted if st is not None else {}
    kernel = getattr(run.system, "kernel", None)
    cbit_pages = dict(kernel.enc_dec_pages) if kernel is not None else {}
    if run.config.get("mode", "snp") != "snp":
        conv = {"shared 4K": cbit_pages.get("shared", 0), "private 4K": cbit_pages.get("private", 0)}
    summary: dict[str, Any] = {
        "scenario": run.name,
        "config": dict(run.config),
        "outcome": {
            "succeeded": o.completed and not (run.result.get("errors") or []),
            "completed": o.completed,
            "result": o.vmm.result,
            "description": o.describe(),
            "termination": term,
            "panic": o.panic,
            "livelock": o.livelock,
            "livelock_loop": o.livelock_loop,
            "livelock_vcpu": o.livelock_vcpu,
            "livelock_state": o.livelock_state,
            "scenario_errors": list(run.result.get("errors", []) or []),
            "kexec": o.kexec,
            "checks": dict(sorted(o.checks.items())),
        },
        "pages_made_shared": {"4K": conv.get("shared 4K", 0), "2M": conv.get("shared 2M", 0)},
        "pages_made_private": {"4K": conv.get("private 4K", 0), "2M": conv.get("private 2M", 0)},
        "guest_cbit_pages": cbit_pages,
        "psc": {
            "requests": st.psc_requests if st else None,
            "entries": st.psc_entries if st else None,
            "entries_by_kind": dict(st.psc_entry_kinds) if st else {},
        },
        "vmgexits": c.get("VMGEXIT", 0),
        "ghcb_exits": dict(st.ghcb_exits) if st else {},
        "msr_protocol_exits": sum(st.msr_exits.values()) if st else None,
        "msr_protocol_by_request": dict(st.msr_exits) if st else {},
        "userspace_exits": dict(st.userspace_exits) if st else {},
        "userspace_exits_total": o.vmm.exits,
        "rmpupdate": c.get("RMPUPDATE", 0),
        "psmash": c.get("PSMASH", 0),
        "pvalidate": dict(st.pvalidate) if st else {},
        "pvalidate_total": c.get("PVALIDATE", 0),
        "vc": c.get("#VC", 0),
        "npf": c.get("#NPF", 0),
        "pre_fault_calls": c.get("kvm KVM_PRE_FAULT_MEMORY", 0),
        "pre_fault_pages": c.get("kvm pre_fault_pages", 0),
        "tlb_flushes": c.get("TLB flush", 0),
        "invlpg": c.get("INVLPG", 0),
        "vmsas": _vmsas(run),
        "wall_time_s": round(o.wall_time, 3),
        "modelled_time": o.modelled_time,
        "result": run.result,
        "warnings": list(o.warnings),
    }
    return summary


def _vmsas(run: ScenarioRun) -> list[dict[str, Any]]:
    """Per vCPU, the VMSA it ran on at the end (``SnpSystem.vmsa_state``), reduced to
    ``vcpu``, ``gpa``, ``guest_vmsa`` and the RMP entry's ``assigned``, ``vmsa`` and
    ``validated``; empty for a VM that is not SNP (its VMSAs are not in the RMP) or a
    system that was not built."""
    system = run.system
    if run.config.get("mode", "snp") != "snp" or system is None or getattr(system, "machine", None) is None:
        return []
    out = []
    for i in range(system.vcpus):
        try:
            st = system.vmsa_state(i)
        except (IndexError, KeyError):
            return out
        rmp = st["rmp"]
        if st["spa"] is None and not st.get("snp_has_guest_vmsa", st["guest_vmsa"]):
            continue  # no VMSA and never a guest one: not an SNP vCPU to list
        out.append({"vcpu": i, "gpa": st["gpa"], "guest_vmsa": st["guest_vmsa"],
                    "assigned": None if rmp is None else rmp["assigned"],
                    "vmsa": None if rmp is None else rmp["vmsa"],
                    "validated": None if rmp is None else rmp["validated"]})
    return out


def _kv(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))) or "0"


def summary_table(summary: dict[str, Any]) -> Table:
    """A rich table of ``summary`` (from :func:`summarize`)."""
    cfg = summary["config"]
    mode = str(cfg.get("mode", "snp")).upper()
    log = f" (log's kernel {cfg['log_kernel']})" if cfg.get("log_kernel") else ""
    title = (f"snpsim run {summary['scenario']}: {mode}, {format_size(cfg['memory'])} RAM, "
             f"{cfg['vcpus']} vCPUs, kernel model {cfg['kernel']}{log}, KVM {cfg['kvm']}, "
             f"seed {cfg['seed']}")
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("what", style="cyan", no_wrap=True)
    t.add_column("count", justify="right", overflow="fold")
    t.add_column("detail", overflow="fold")
    sh, pr = summary["pages_made_shared"], summary["pages_made_private"]
    t.add_row("pages made shared", str(sh["4K"] + 512 * sh["2M"]) + " x 4K",
              f"4K pages {sh['4K']}, 2M pages {sh['2M']}")
    t.add_row("pages made private", str(pr["4K"] + 512 * pr["2M"]) + " x 4K",
              f"4K pages {pr['4K']}, 2M pages {pr['2M']}")
    psc = summary["psc"]
    t.add_row("PSC requests (GHCB)", str(psc["requests"]), "")
    t.add_row("PSC entries", str(psc["entries"]), _kv(psc["entries_by_kind"]))
    t.add_row("VMGEXITs", str(summary["vmgexits"]), "GHCB: " + _kv(summary["ghcb_exits"]))
    vmsas = summary.get("vmsas", [])
    if vmsas:
        t.add_row("VMSAs", str(len(vmsas)), "; ".join(
            f"vCPU{v['vcpu']} "
            + ("none (AP destroyed)" if v["gpa"] is None
               else ("guest page" if v["guest_vmsa"] else "KVM page")
               + ("" if v["vmsa"] and v["validated"] else " (not a valid VMSA)"))
            for v in vmsas))
    t.add_row("MSR-protocol exits", str(summary["msr_protocol_exits"]),
              _kv(summary["msr_protocol_by_request"]))
    t.add_row("userspace exits", str(summary["userspace_exits_total"]),
              _kv(summary["userspace_exits"]))
    t.add_row("RMPUPDATE", str(summary["rmpupdate"]), "")
    t.add_row("PSMASH", str(summary["psmash"]), "")
    t.add_row("PVALIDATE", str(summary["pvalidate_total"]), _kv(summary["pvalidate"]))
    t.add_row("#VC", str(summary["vc"]), "")
    t.add_row("#NPF", str(summary["npf"]), "")
    t.add_row("KVM_PRE_FAULT_MEMORY", str(summary["pre_fault_calls"]),
              f"{summary['pre_fault_pages']} pages mapped ahead (QEMU 10.1 after a conversion)")
    t.add_row("TLB flushes", str(summary["tlb_flushes"]), f"INVLPG {summary['invlpg']}")
    t.add_row("wall time", f"{summary['wall_time_s']:.2f} s", "the simulator's own time")
    _modelled_rows(t, summary.get("modelled_time"))
    out = summary["outcome"]
    failed = out.get("scenario_errors") or []
    style = "green" if out["completed"] and not failed else "red"
    detail = out["description"]
    if failed:
        detail += f"; the scenario failed: {'; '.join(failed)}"
    ended = out["result"] + (", scenario failed" if failed else "")
    t.add_row("run ended", f"[{style}]{ended}[/{style}]", detail)
    for key, value in summary["result"].items():
        _result_rows(t, key, value, depth=1)
    for line in summary.get("warnings", []):
        t.add_row("  guest warning", "", f"[yellow]{line}[/yellow]")
    return t


def format_seconds(s: float) -> str:
    """Seconds in the unit that reads best: ``1.23 s``, ``45.6 ms``, ``7.89 us``, ``12 ns``."""
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.3g} us"
    return f"{s * 1e9:.3g} ns"


#: Kinds the table lists one by one; the rest are summed into one row.
MODELLED_ROWS = 12


def _modelled_rows(t: Table, m: dict[str, Any] | None) -> None:
    """The modelled time: the run's duration with its range, then where it went (the
    largest kinds, each with its count, time, range and share of the work)."""
    if not m:
        return
    fmt = format_seconds
    table = "default table" if m["table"] == "default" else f"table {m['table']}"
    t.add_row("modelled time", fmt(m["elapsed_s"]),
              f"range {fmt(m['low_s'])} .. {fmt(m['high_s'])}; work over all lanes "
              f"{fmt(m['busy_s'])} ({fmt(m['busy_low_s'])} .. {fmt(m['busy_high_s'])}); "
              f"{table}, {m['cpu_ghz']} GHz (docs/costs.md)")
    kinds = sorted(m["by_kind"].items(), key=lambda kv: (-kv[1]["s"], kv[0]))
    for name, k in kinds[:MODELLED_ROWS]:
        t.add_row(f"  {name}", fmt(k["s"]),
                  f"{k['share'] * 100:.1f}% of the work, {k['count']} x; "
                  f"range {fmt(k['low_s'])} .. {fmt(k['high_s'])}")
    rest = kinds[MODELLED_ROWS:]
    if rest:
        s = sum(k["s"] for _, k in rest)
        t.add_row("  other kinds", fmt(s), ", ".join(name for name, _ in rest))


#: Fields of a bug scenario's ``symptom`` that the table already shows elsewhere.
_SHOWN_ELSEWHERE = frozenset({"run", "vmm_result", "guest_warnings", "userspace_exits"})


#: Result keys whose integers are addresses, frame numbers or register/MSR values, shown
#: in hex as the specs and logs write them (a GHCB's ``sw_exit_info_2``, an MSR value).
_HEX_KEY_PARTS = ("gpa", "vaddr", "hva", "exit_info", "msr", "ghcb")
_HEX_KEYS = frozenset({"gfn", "pfn", "spa", "sw_exit_code", "exit_code", "value"})


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int) and (key in _HEX_KEYS or any(p in key for p in _HEX_KEY_PARTS)):
        return f"{value:#x}"
    return str(value)


def _result_rows(t: Table, key: str, value: Any, depth: int) -> None:
    """Rows for one field of the scenario's result: scalars as they are, short lists
    joined, dicts (a page's state, a bug's symptom) one row per non-empty field, so what a
    run showed is in the table and not only in ``--json``."""
    indent = "  " * depth
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items()
                 if v not in (None, [], {}, "") and not (key == "symptom" and k in _SHOWN_ELSEWHERE)]
        if not items:
            return
        flat = all(not isinstance(v, (dict, list)) for _, v in items)
        if flat and depth >= 2:
            t.add_row(f"{indent}{key}", "", ", ".join(f"{k}={_scalar(k, v)}" for k, v in items))
            return
        t.add_row(f"{indent}{key}", "", "")
        for k, v in items:
            _result_rows(t, k, v, depth + 1)
    elif isinstance(value, list):
        if len(value) <= 12:
            t.add_row(f"{indent}{key}", str(len(value)), ", ".join(map(str, value)))
        else:
            t.add_row(f"{indent}{key}", str(len(value)),
                      ", ".join(map(str, value[:12])) + f", ... ({len(value) - 12} more)")
    else:
        t.add_row(f"{indent}{key}", _scalar(key, value), "")
