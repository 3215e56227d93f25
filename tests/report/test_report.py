# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``--report``: the memory picture of ``seed`` shows the converted page in the shared
colour (from the data behind the PNG and from the PNG's pixels), and the HTML links the
picture and the traces."""

import numpy as np
from click.testing import CliRunner

from snpsim.cli import main
from snpsim.report.picture import STATE_COLOURS, picture_rgb
from snpsim.scenarios.catalog import run_scenario
from snpsim.system import RunObserver


def test_seed_picture_shows_the_converted_page_shared():
    ob = RunObserver(picture=True)
    r = run_scenario("seed", memory=64 << 20, vcpus=1, observer=ob)
    assert r.outcome.completed
    pic = r.outcome.picture
    assert pic is not None and pic.cell == 4096        # 64 MiB: one cell per 4 KiB page
    gpa = r.result["gpa"]
    cell = gpa // pic.cell
    states = [pic.state_of(gpa, i) for i in range(len(pic.rows))]
    # set_memory_decrypted then set_memory_encrypted: private, then shared, then private.
    assert states[0] == "private, validated"
    assert "shared" in states
    assert states[-1] == "private, validated"
    rgb = picture_rgb(pic)
    row = states.index("shared")
    assert tuple(rgb[row, cell]) == STATE_COLOURS["shared"]


def test_report_dir_has_html_png_and_trace_links(tmp_path):
    rep = tmp_path / "rep"
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "1",
                                  "--report", str(rep), "--trace", "trace.json"])
    assert r.exit_code == 0, r.output
    html = (rep / "index.html").read_text()
    assert "memory.png" in html and "trace.json" in html and "<script" not in html
    assert (rep / "trace.json").is_file()
    import matplotlib.image as mpimg

    png = (mpimg.imread(rep / "memory.png")[..., :3] * 255).round().astype(int)
    shared = np.array(STATE_COLOURS["shared"])
    assert (np.abs(png - shared).sum(axis=-1) <= 3).any()


def test_zoom_panel_shows_the_seed_page_shared_then_private_validated():
    """At 512 MiB the main picture has 2 MiB cells (the GHCB pages share the seed page's
    cell); the zoomed panel (4 KiB cells, the last conversion +- 32 pages) holds the seed
    page shared in some sample and private, validated at the end (seed makes it private
    again)."""
    from snpsim.report.picture import Y_LABEL, zoom_rgb

    ob = RunObserver(picture=True)
    r = run_scenario("seed", memory=512 << 20, vcpus=1, observer=ob)
    pic = r.outcome.picture
    assert pic.cell == 2 << 20
    gpa = r.result["gpa"]
    rgb, lo, hi = zoom_rgb(pic)
    assert lo == gpa - 32 * 4096 and hi == gpa + 33 * 4096
    assert rgb.shape == (len(pic.rows), 65, 3)
    col = rgb[:, (gpa - lo) // 4096]
    shared = np.array(STATE_COLOURS["shared"], dtype=np.uint8)
    assert any((c == shared).all() for c in col[:-1])
    assert (col[-1] == np.array(STATE_COLOURS["private, validated"], dtype=np.uint8)).all()
    assert "after each userspace exit" in Y_LABEL and "start" in Y_LABEL


def test_full_panel_draws_holes_short_and_small_regions_wide():
    """A 1 TiB-like span: 2 cells of RAM, 1,000 cells of hole, 97 cells of RAM.  The hole
    keeps 2% of the row (1099 // 50 = 21 cells), the small RAM is repeated to reach 4% (1099 // 25 = 43, so 22 x 2 = 44 columns), the
    large RAM is drawn whole; each stretch starts where the previous one ends."""
    import numpy as np

    from snpsim.report.picture import compressed_columns
    from snpsim.system import PAGE_STATES, MemoryPicture

    row = np.full(1099, PAGE_STATES.index("unaccepted"), dtype=np.uint8)
    row[2:1002] = PAGE_STATES.index("not RAM")
    pic = MemoryPicture(cell=2 << 20, ncells=1099)
    pic.add(row, "start", force=True)
    cols, segments = compressed_columns(pic)
    assert [first for _, first in segments] == [0, 2, 1002]
    assert [c for c, _ in segments] == [0, 44, 44 + 21]
    assert len(cols) == 44 + 21 + 97
    assert set(cols[:44]) == {0, 1} and list(cols[44:65]) == list(range(2, 23))
