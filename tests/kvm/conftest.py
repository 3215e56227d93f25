# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Registers the ``bug_report`` marker: ``@pytest.mark.bug_report("R1")`` tags a test with
the bug report of docs/bug-reports.md it reproduces (select with
``-m bug_report``; the id is the marker's argument)."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "bug_report(id): reproduces report <id> of docs/bug-reports.md")
