# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Each ``bug/<name>`` scenario runs the trigger of its report
(docs/bug-reports.md): with ``variant="buggy"`` the report's symptom shows,
with the default (fixed) stack it does not.  Values are the reports' own: R1 (a) a
trailing PSMASH forwarded as a shared conversion; R2 size-mismatch handling
(``sev_handle_rmp_fault``) before the userspace exit; R3 no userspace exit (a #NPF
loop); R4 the same valid buffer refused for exit_info_2 = 0xffffffff; R5 reads past the
GHCB from shared buffer + 0x7F0 with end_entry 252, INVALID_HDR when fixed; R6 GENERIC
error -> terminate (1, 1); R7 the next request after a malformed one faults (RMP #PF);
R8 FAIL_SIZEMISMATCH not retried -> (1, 2); R9 #VC 0x404 emulated instead of
terminating; R10 the shared page left assigned and validated; R11 #VC 0x404 for a write
before acceptance; R12 the VMM stops instead of converting; R13 the VMM panics on
TERM_REQ (1, 2); R15 "unknown exit reason 39" (KVM_EXIT_MEMORY_FAULT unhandled)."""

import pytest

from snpsim.scenarios.catalog import run_scenario, scenario_list
from snpsim.system import RunObserver

MEM = 64 << 20
EXPECTED = ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R11", "R12",
            "R13", "R15"]


def run(name, variant):
    r = run_scenario(f"bug/{name}", memory=MEM, vcpus=1, variant=variant,
                     observer=RunObserver())
    return r.outcome, r.result


def test_bug_scenarios_are_sorted_by_report_number_and_say_what_the_report_is_about():
    rows = [(n[4:], d) for n, d in scenario_list() if n.startswith("bug/")]
    assert [n for n, _ in rows] == EXPECTED
    for _n, d in rows:
        assert "variant R" not in d and "guest kernel variant" not in d


def _r1(buggy, out, res):
    st = res["psmash_unit_state"]
    assert out.completed and res["psc_answer"]["sw_exit_info_2"] == 0
    # unmapped, or (QEMU 10.1 pre-faults converted ranges) mapped to a hypervisor page
    return st["attribute"] == "shared" and (st["rmp"] is None or not st["rmp"]["assigned"])


def _r2(buggy, out, res):
    return res["kvm_first_rmp_fault_warning"] == f"WARN: RMP fault on shared GFN {res['gpa'] >> 12:#x}"


def _r3(buggy, out, res):
    no_exit = "KVM_EXIT_MEMORY_FAULT" not in res["symptom"]["userspace_exits"]
    return (no_exit and out.vmm.result == "livelock" and out.livelock_loop == "kvm_mmu_page_fault"
            and res["page_state"]["attribute"] == "shared")


def _r4(buggy, out, res):
    a, b = res["exit_info_2=0x0"], res["exit_info_2=0xffffffff"]
    assert (a["sw_exit_info_1"], a["sw_exit_info_2"]) == (0, 0)
    return (b["sw_exit_info_1"], b["sw_exit_info_2"]) == (2, 3)   # GHCB_ERR_INVALID_SCRATCH_AREA


def _r5(buggy, out, res):
    if not buggy:
        assert res["psc_answer"]["sw_exit_info_2"] == 0x100000001  # VMGEXIT_PSC_ERROR_INVALID_HDR
    return res["read_past_ghcb_page"] and res["kvm_scratch_bytes_read"] == 8 + 8 * 253


def _r6(buggy, out, res):
    return out.termination is not None and out.termination[:2] == (1, 1)


def _r7(buggy, out, res):
    assert res["malformed_request"]["exitinfo2"] & 0xFFFFFFFF == 0x16   # SEV_RET_INVALID_PARAM
    return bool(res["host_oopses"]) and res["firmware_owned_pfns"] and res["valid_request"] == "sent"


def _r8(buggy, out, res):
    return out.termination == (1, 2, "__pval_terminate")


def _r9(buggy, out, res):
    return out.completed and res["read"] != "started"


def _r10(buggy, out, res):
    r = res["page_state"]["rmp"]
    return res["page_state"]["pte_c_bit"] is False and bool(r) and r["assigned"] and r["validated"]


def _r11(buggy, out, res):
    return out.termination == (0, 0, "exc_vmm_communication") and "read_back" not in res


def _r12(buggy, out, res):
    if not buggy:
        assert res["page_state"]["vmm_reads"] == "mmio-style"
    return out.vmm.result == "qemu-exit" and res["page_state"]["attribute"] == "private"


def _r13(buggy, out, res):
    assert out.termination[:2] == (1, 2)
    return out.vmm.result == "qemu-exit" and "panicked" in out.vmm.errors[-1]


def _r15(buggy, out, res):
    return out.vmm.result == "internal-error" and "KVM: unknown exit reason 39" in out.vmm.errors


SYMPTOM = {"R1": _r1, "R2": _r2, "R3": _r3, "R4": _r4, "R5": _r5, "R6": _r6, "R7": _r7,
           "R8": _r8, "R9": _r9, "R10": _r10, "R11": _r11, "R12": _r12, "R13": _r13,
           "R15": _r15}


@pytest.mark.parametrize("name", EXPECTED)
def test_buggy_variant_shows_the_symptom_and_the_default_does_not(name):
    out, res = run(name, "buggy")
    assert SYMPTOM[name](True, out, res), (out.describe(), res)
    assert res["symptom"]["run"] == out.describe()
    out, res = run(name, None)
    assert not SYMPTOM[name](False, out, res), (out.describe(), res)



def _leaves(d, skip=frozenset({"run", "vmm_result", "guest_warnings", "userspace_exits"})):
    """(key, value) of every non-empty scalar in a scenario result, nested dicts included."""
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v)
        elif v not in (None, [], {}, "") and k not in skip and not isinstance(v, list):
            yield k, v


@pytest.mark.parametrize("name", EXPECTED)
def test_the_printed_summary_shows_what_the_trigger_saw(name):
    """Issue 15: every finding of the report's trigger (the page's attribute, C-bit and RMP
    entry, the GHCB answers, KVM's warnings, the symptom) is in the table a user reads, not
    only in --json; and the buggy and fixed tables differ."""
    import io

    from rich.console import Console

    from snpsim.report.summary import summarize, summary_table

    texts = []
    for variant in ("buggy", None):
        r = run_scenario(f"bug/{name}", memory=MEM, vcpus=1, variant=variant,
                         observer=RunObserver())
        console = Console(file=io.StringIO(), width=200)
        console.print(summary_table(summarize(r)))
        text = console.file.getvalue()
        for key, _value in _leaves(r.result):
            assert key in text, (variant, key)
        texts.append([ln for ln in text.splitlines()
                      if "wall time" not in ln and " variant " not in ln])
    assert texts[0] != texts[1]
