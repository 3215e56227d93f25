# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim.explore`` is written on the public scenario API, as the adversary package
is (issue 17 item 1): it imports only ``snpsim.api``, ``snpsim.spec``, ``snpsim.trace``,
``snpsim.adversary`` and ``snpsim.scenarios.bugs`` (and its own modules), and touches no
private name of the model.  The checker is the adversary package's
(tests/adversary/test_public_api_only.py); the import-linter contract "Explore campaigns
use the public API only" checks the imports as well."""

import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import snpsim.explore

_CHECKER = Path(__file__).resolve().parent.parent / "adversary" / "test_public_api_only.py"
_spec = importlib.util.spec_from_file_location("_adversary_api_checker", _CHECKER)
checker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checker)

ALLOWED = ("snpsim.api", "snpsim.spec", "snpsim.trace", "snpsim.adversary",
           "snpsim.scenarios.bugs")


def _modules():
    return ["snpsim.explore"] + [m.name for m in pkgutil.iter_modules(
        snpsim.explore.__path__, "snpsim.explore.")]


def test_the_allowed_list_is_the_checkers_plus_two():
    # the explorer reuses the attack hooks and the seed round trip, both public-API only
    assert checker.ALLOWED == ALLOWED[:3]


def _own(what, text):
    """An import the explorer may make, or a private attribute of its own objects
    (``self._x``: the Explorer's own state, not the model's)."""
    if any(f"from {mod}" in what or what == f"import {mod}" for mod in ALLOWED[3:]):
        return True
    return what.startswith("attribute .") and f"self.{what[len('attribute .'):]}" in text


@pytest.mark.parametrize("modname", _modules())
def test_explore_module_uses_the_public_api_only(modname):
    path = Path(importlib.import_module(modname).__file__)
    lines = path.read_text().splitlines()
    found = [(line, what) for line, what in checker.violations("\n".join(lines), str(path))
             if not _own(what, lines[line - 1])]
    assert found == []


def test_the_filter_keeps_what_the_model_hides():
    src = "x = vcpu._secret\nself._mine = 1\nfrom snpsim.kvm.mmu import f\n"
    lines = src.splitlines()
    kept = sorted(line for line, what in checker.violations(src) if not _own(what, lines[line - 1]))
    assert kept == [1, 3]
