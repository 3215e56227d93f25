# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The named-check registry (snpsim.spec.checks), its mutants, and docs/mutants.md.

Expected values: the PVALIDATE failure paths end the guest with (1, 2) GHCB_TERM_PVALIDATE
(linux-guest.md 1.3; 4.4: ``pvalidate_4k_page``; 4.2: ``pval_pages`` ->
``__pval_terminate``); PVALIDATE of a page whose Validated bit already has the asked value
sets CF, which Linux's ``pvalidate`` returns as PVALIDATE_FAIL_NOUPDATE (255).
"""

import importlib.util
import pathlib
import re

import pytest

from snpsim.api import Scenario
from snpsim.scenarios.mutants import run_mutants
from snpsim.spec import checks
from snpsim.spec.checks import CHECKS, check_enabled, disabled_checks
from snpsim.spec.psc import VMGEXIT_PSC_OP_PRIVATE, PscEntry, PscHdr

ROOT = pathlib.Path(__file__).resolve().parents[2]
SITE = re.compile(r'check_enabled\("([^"]+)"\)')


def test_every_site_names_a_registered_check_and_every_check_has_a_site():
    used = set()
    for path in (ROOT / "src" / "snpsim").rglob("*.py"):
        if path.name != "checks.py":
            used |= set(SITE.findall(path.read_text(encoding="utf-8")))
    assert used == set(CHECKS)
    assert {c.layer for c in CHECKS.values()} == {"guest", "kvm", "rmp"}


def test_disabled_checks_removes_for_the_block_only_and_rejects_unknown_names():
    assert check_enabled("rmp:validated")
    with disabled_checks(["rmp:validated"]):
        assert not check_enabled("rmp:validated") and check_enabled("rmp:guest-owned")
        assert checks.active_mutants() == {"rmp:validated"}
    assert check_enabled("rmp:validated") and not checks.active_mutants()
    with pytest.raises(KeyError), disabled_checks(["no-such-check"]):
        pass


def _double_validate(via):
    sc = Scenario(f"PVALIDATE twice through {via}", memory="64M")

    @sc.guest
    def work(g):
        va = g.alloc_page()                 # private and validated already
        if via == "pvalidate_4k_page":
            g.call("pvalidate_4k_page", va, g.pa(va), True)
        else:
            desc = g.alloc_page()
            entry = PscEntry(0, g.pa(va) >> 12, VMGEXIT_PSC_OP_PRIVATE, 0)
            g.write(desc, PscHdr(0, 0, 0).encode() + entry.encode_bytes())
            g.call("pval_pages", desc)
        g.result["went_on"] = True

    return sc.run()


@pytest.mark.check("pvalidate_4k_page:failure")
def test_pvalidate_4k_page_failure_terminates_1_2():
    r = _double_validate("pvalidate_4k_page")
    assert r.termination == (1, 2, "pvalidate_4k_page")
    assert r.outcome.checks == {"pvalidate_4k_page:failure": 1}
    assert "went_on" not in r.data


@pytest.mark.check("pval_pages:failure")
def test_pval_pages_failure_terminates_1_2_through_pval_terminate():
    r = _double_validate("pval_pages")
    assert r.termination == (1, 2, "__pval_terminate")
    assert r.outcome.checks == {"pval_pages:failure": 1}
    assert "went_on" not in r.data


def test_removing_a_pvalidate_check_lets_the_guest_go_on():
    with disabled_checks(["pvalidate_4k_page:failure"]):
        r = _double_validate("pvalidate_4k_page")
    assert r.completed and r.data["went_on"] and r.outcome.checks == {}


def test_run_mutants_on_the_two_checks_the_issue_names():
    """vmgexit_psc's result check and the RMP Guest-Owned check each have an attack that
    only they stop; the Guest-Owned check's other attack is then stopped by Reverse-Map."""
    rows = run_mutants(["vmgexit_psc:result", "rmp:guest-owned"], tests=False,
                       attacks=["psc-vmm-error-no-info2", "psc-inject-gp",
                                "npt-remap-other-guest", "rmp-make-shared-under-guest"])
    result, owned = rows
    v = {x.attack: x for x in result.attacks}
    assert set(v) == {"psc-vmm-error-no-info2", "psc-inject-gp"}
    assert v["psc-vmm-error-no-info2"].without == "gets through"
    assert v["psc-inject-gp"].without == "stopped instead"
    assert v["psc-inject-gp"].instead == ("vmgexit_psc:exit_info_2",)
    assert result.only_stopped_by == ["psc-vmm-error-no-info2"]
    v = {x.attack: x for x in owned.attacks}
    assert v["npt-remap-other-guest"].without == "gets through"
    assert v["rmp-make-shared-under-guest"].without == "stopped instead"
    assert "rmp:reverse-map" in v["rmp-make-shared-under-guest"].instead
    assert owned.only_stopped_by == ["npt-remap-other-guest"]
    assert not result.tests_run and not owned.tests_run


def _section(text, begin, end):
    return text[text.index(begin) + len(begin):text.index(end)].strip("\n") + "\n"


def _make_mutants():
    spec = importlib.util.spec_from_file_location("make_mutants", ROOT / "docs" / "make_mutants.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_docs_mutants_attack_table_is_generated_from_the_model():
    doc = (ROOT / "docs" / "mutants.md").read_text(encoding="utf-8")
    committed = _section(doc, "<!-- attacks:begin -->", "<!-- attacks:end -->")
    baseline = {}
    rows = run_mutants(tests=False, baseline=baseline)
    assert committed == _make_mutants().attack_section(rows, baseline), (
        "regenerate: .venv/bin/python docs/make_mutants.py > docs/mutants.md")
    # the two livelock attacks are the only ones no named check stops
    assert sorted(a for a, r in baseline.items() if a and not r.checks) == [
        "psc-cur-entry-backwards", "psc-never-advance"]


def test_docs_mutants_test_table_names_marked_tests_only():
    doc = (ROOT / "docs" / "mutants.md").read_text(encoding="utf-8")
    table = doc[doc.index("## Tests"):]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert {re.match(r"\| `([^`]+)`", line).group(1) for line in rows} == set(CHECKS)
    for line in rows:
        check = re.match(r"\| `([^`]+)`", line).group(1)
        for test in re.findall(r"`(test_\w+)::(test_\w+)", line):
            module, name = test
            [path] = list((ROOT / "tests").rglob(f"{module}.py"))
            text = path.read_text(encoding="utf-8")
            assert f"def {name}(" in text and f'"{check}"' in text, (check, test)
