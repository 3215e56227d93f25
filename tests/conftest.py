# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Suite-wide: the ``check(*names)`` marker and the ``--check NAME`` selection.

A test marked ``@pytest.mark.check("vmgexit_psc:result")`` is one that must fail when that
named check (:data:`snpsim.spec.checks.CHECKS`) is removed.  ``pytest --check NAME`` (may be
repeated) keeps only the tests marked with one of the names: what
:func:`snpsim.scenarios.mutants.run_tests_under` runs under a mutant.
"""


def pytest_addoption(parser):
    parser.addoption("--check", action="append", default=[], metavar="NAME",
                     help="run only the tests marked check(NAME) (snpsim.spec.checks)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "check(*names): fails when one of these named checks is removed (docs/mutants.md)")


def pytest_collection_modifyitems(config, items):
    want = set(config.getoption("--check"))
    if not want:
        return
    keep, drop = [], []
    for item in items:
        names = {n for m in item.iter_markers("check") for n in m.args}
        (keep if names & want else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep

