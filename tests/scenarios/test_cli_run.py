# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim run`` and ``snpsim scenarios``: bad input is one line and exit status 2, the
JSON summary has its fields, traces are written in the three formats, and ``boot
--from-dmesg`` runs the real logs of tests/data/dmesg (or refuses them clearly)."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from snpsim.cli import main
from snpsim.scenarios.dmesg import scan_dmesg

DMESG = Path(__file__).resolve().parents[1] / "data" / "dmesg"
LOGS = sorted(DMESG.glob("*.log"))


def run(*args):
    return CliRunner().invoke(main, ["run", *args])


@pytest.mark.parametrize("args", [
    ["nosuch"],
    ["bug/nosuch"],
    ["seed", "--memory", "1X"],
    ["seed", "--memory", "16M"],
    ["seed", "--memory", "17M"],
    ["seed", "--memory", "2T"],
    ["seed", "--vcpus", "0"],
    ["seed", "--vcpus", "abc"],
    ["seed", "--kernel", "9.9"],
    ["seed", "--kvm", "v1.0"],
    ["seed", "--variant", "buggy"],            # only for bug/<name>
    ["bug/R6", "--variant", "sometimes"],
    ["accept", "--page-size", "1G"],
    ["dma", "--cycles", "0"],
    ["dma", "--cycles", "100001"],
    ["seed", "--page-size", "4K"],             # accept only
    ["accept", "--cycles", "2"],               # dma only
    ["seed", "--from-dmesg", "x.log"],         # boot only
    ["boot", "--from-dmesg", "/nonexistent/x.log"],
    ["seed", "--trace", "x.pdf"],
    ["seed", "--trace", "/etc/hostname/x.json"],   # a directory that cannot be made
    ["seed", "--report", "/etc/hostname/report"],
    ["seed", "--trace", "x.json", "--trace-filter", "party=nobody"],
    ["seed", "--trace-filter", "party=kvm"],   # no --trace
])
def test_bad_input_is_exit_2_without_traceback(args):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_scenarios_lists_one_line_each():
    r = CliRunner().invoke(main, ["scenarios"])
    assert r.exit_code == 0
    names = [line.split()[0] for line in r.output.splitlines()]
    for name in ("seed", "accept", "dma", "boot", "bug/R6", "bug/R8"):
        assert name in names
    assert len(names) == len(set(names))


def test_seed_json_has_the_fields(tmp_path):
    r = run("seed", "--memory", "64M", "--vcpus", "1", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    for key in ("pages_made_shared", "pages_made_private", "psc", "vmgexits",
                "msr_protocol_exits", "userspace_exits", "rmpupdate", "psmash", "pvalidate",
                "vc", "npf", "tlb_flushes", "wall_time_s", "outcome"):
        assert key in s
    assert s["outcome"]["completed"] is True
    assert s["outcome"]["termination"] is None
    # The workload: one 4K page made shared, then private (one GHCB PSC entry each).
    assert s["psc"]["entries_by_kind"] == {"shared 4K": 1, "private 4K": 1}
    assert s["psc"]["requests"] == 2
    # The guest's boot makes .bss..decrypted's page and each CPU's GHCB shared through the
    # MSR protocol (guest/boot.py): 1 + 1 vCPU requests.
    assert s["msr_protocol_by_request"]["GHCB_MSR_PSC_REQ"] == 2
    assert s["pages_made_private"]["4K"] == 1
    assert s["userspace_exits"]["KVM_EXIT_IO"] == 1       # the ACPI power-off write


def test_chrome_trace_every_event_has_the_required_keys(tmp_path):
    out = tmp_path / "t.json"
    r = run("seed", "--memory", "64M", "--vcpus", "1", "--trace", str(out))
    assert r.exit_code == 0, r.output
    events = json.loads(out.read_text())["traceEvents"]
    assert events
    assert all({"name", "ph", "ts", "pid", "tid"} <= set(e) for e in events)


def test_trace_txt_and_jsonl_with_a_filter(tmp_path):
    txt, jl = tmp_path / "t.txt", tmp_path / "t.jsonl"
    assert run("seed", "--memory", "64M", "--vcpus", "1", "--trace", str(txt)).exit_code == 0
    assert "set_memory_decrypted(" in txt.read_text()
    r = run("seed", "--memory", "64M", "--vcpus", "1", "--trace", str(jl),
            "--trace-filter", "party=kvm")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in jl.read_text().splitlines()]
    assert any(row.get("name") == "snp_begin_psc" for row in rows)
    assert all(row.get("party") in ("kvm", None) for row in rows)


def test_bug_variant_r6_buggy_terminates_and_fixed_completes():
    # bug-reports.md R6: KVM leaves -KVM_ENOSYS in hypercall.ret; the guest sees its PSC
    # fail (GENERIC) and terminates with GHCB_TERM_PSC (reason set 1, code 1).
    fixed = run("bug/R6", "--memory", "64M", "--vcpus", "1", "--json")
    assert fixed.exit_code == 0, fixed.output
    buggy = run("bug/R6", "--variant", "buggy", "--memory", "64M", "--vcpus", "1", "--json")
    assert buggy.exit_code == 1, buggy.output
    term = json.loads(buggy.stdout)["outcome"]["termination"]
    assert (term["reason_set"], term["reason_code"]) == (1, 1)


def _log_swiotlb_mb(text):
    m = re.search(r"software IO TLB: mapped \[mem 0x[0-9a-f]+-0x[0-9a-f]+\] \((\d+)MB\)", text)
    return int(m.group(1)) if m else None


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_boot_from_dmesg(log):
    text = log.read_text()
    cfg = scan_dmesg(text)
    if cfg.memory_bytes is not None:
        r = run("boot", "--from-dmesg", str(log), "--json")
        assert r.exit_code == 0, r.output
        s = json.loads(r.stdout)
        assert s["config"]["log_mode"] == "SEV-SNP"
        assert s["outcome"]["completed"]
        # 01-qemu-snp-6.16-4cpu-2g.log prints
        # "software IO TLB: mapped [mem 0x0000000071a00000-0x0000000079a00000] (128MB)".
        mb = _log_swiotlb_mb(text)
        if mb is not None:
            assert s["result"]["swiotlb_bytes"] == mb << 20
        return
    r = run("boot", "--from-dmesg", str(log))
    assert r.exit_code == 2
    assert "--memory" in r.output and "Traceback" not in r.output
    r = run("boot", "--from-dmesg", str(log), "--memory", "2G", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["outcome"]["completed"]
    # The guest runs in the log's mode: 03-kata1619-sev-5.6.log says "AMD Secure
    # Encrypted Virtualization (SEV) active".
    want = {"SEV": "sev", "SEV-ES": "sev-es", "SEV-SNP": "snp"}[cfg.mode.value] if cfg.mode else "snp"
    assert s["config"]["mode"] == want
    mb = _log_swiotlb_mb(text)
    if mb is not None:
        assert s["result"]["swiotlb_bytes"] == mb << 20


def test_summary_counts_qemu_10_1_pre_faults():
    """QEMU 10.1 (the default VMM profile) follows each successful KVM_HC_MAP_GPA_RANGE
    conversion with KVM_PRE_FAULT_MEMORY over the converted range (target/i386/kvm/kvm.c
    kvm_handle_hc_map_gpa_range, "i386/kvm: Prefault memory on page state change"): the
    seed's shared and private conversions of one page are each pre-faulted."""
    r = run("seed", "--memory", "64M", "--vcpus", "1", "--json")
    s = json.loads(r.stdout)
    assert r.exit_code == 0
    assert s["pre_fault_calls"] >= 2 and s["pre_fault_pages"] >= 2
