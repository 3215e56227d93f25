# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The report's breakdown of modelled time (``costs.png``, docs/costs.md)."""

import json

import pytest
from click.testing import CliRunner

from snpsim.cli import main
from snpsim.report.costs_chart import BREAKDOWN_BARS, breakdown_rows


def test_report_has_the_modelled_time_breakdown(tmp_path):
    rep = tmp_path / "rep"
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "1",
                                  "--report", str(rep)])
    assert r.exit_code == 0, r.output
    html = (rep / "index.html").read_text()
    assert "costs.png" in html and "Where the modelled time goes" in html
    import matplotlib.image as mpimg

    assert mpimg.imread(rep / "costs.png").shape[1] == 1000  # 10 in at 100 dpi
    m = json.loads((rep / "summary.json").read_text())["modelled_time"]
    rows = breakdown_rows(m)
    assert len(rows) <= BREAKDOWN_BARS + 1
    assert [r[1] for r in rows[:-1]] == sorted((r[1] for r in rows[:-1]), reverse=True)
    # The bars hold all the work, each inside its range.
    assert sum(r[1] for r in rows) == pytest.approx(m["busy_s"], rel=1e-9)
    assert all(lo <= s <= hi for _, s, lo, hi in rows)
