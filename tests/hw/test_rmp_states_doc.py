# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""docs/rmp-states.md is generated from the RMP rules by docs/make_rmp_states.py; it must
match what the current code generates (STYLE.md 7: the docs cannot drift)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_rmp_state_doc_is_up_to_date():
    spec = importlib.util.spec_from_file_location("make_rmp_states", ROOT / "docs" / "make_rmp_states.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "docs" / "rmp-states.md").read_text() == mod.render(), (
        "regenerate: .venv/bin/python docs/make_rmp_states.py > docs/rmp-states.md")
