# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The VMM tests drive a fake guest shared with tests/kvm."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "kvm"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "bug_report(id): reproduces report <id> of docs/bug-reports.md")
