# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``--report``: the memory picture of ``seed`` shows the converted page in the shared
colour (from the data behind the PNG and from the PNG's pixels), and the HTML links the
picture and the traces."""

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from snpsim.cli import main
from snpsim.report.picture import STATE_COLOURS, picture_rgb
from snpsim.scenarios.catalog import run_scenario
from snpsim.system import PAGE_STATES, RunObserver


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


# -- the full-memory panel: layout and per-column classes ----------------------------------

_BIT = {name: 1 << i for i, name in enumerate(PAGE_STATES)}


def test_classify_shows_any_shared_page_rather_than_the_majority():
    """Masks (bit i: some page in PAGE_STATES[i]) -> CLASSES: a full colour when every
    RAM page is in the state, "some pages ..." when only some are; shared before
    validated before private-not-validated; holes, MMIO and firmware mixed with not-RAM
    keep their own colour."""
    from snpsim.report.picture import CLASSES, classify

    cases = {
        _BIT["shared"]: "shared",
        _BIT["shared"] | _BIT["unaccepted"]: "some pages shared",
        _BIT["shared"] | _BIT["private, validated"]: "some pages shared",
        _BIT["shared"] | _BIT["not RAM"]: "shared",              # RAM ends inside the cell
        _BIT["private, validated"]: "private, validated",
        _BIT["private, validated"] | _BIT["unaccepted"]: "some pages validated",
        _BIT["private, not validated"] | _BIT["unaccepted"]: "some pages private, not validated",
        _BIT["private, validated"] | _BIT["private, not validated"]: "some pages validated",
        _BIT["unaccepted"] | _BIT["not RAM"]: "unaccepted",
        _BIT["MMIO"] | _BIT["not RAM"]: "MMIO",                  # the IOAPIC's 4 KiB in 2 MiB
        _BIT["firmware"]: "firmware",
        _BIT["not RAM"]: "not RAM",
    }
    got = classify(np.array(list(cases), dtype=np.uint8))
    assert [CLASSES[c] for c in got] == list(cases.values())


@pytest.fixture(scope="module")
def seed_4g():
    """``snpsim run seed --memory 4G``'s picture (2 MiB cells, 3072 of them)."""
    ob = RunObserver(picture=True)
    r = run_scenario("seed", memory=4 << 30, vcpus=1, observer=ob)
    assert r.outcome.completed
    return r


def test_4g_layout_has_every_region_named_wide_enough_and_its_start_labelled(seed_4g):
    """q35 at 4 GiB (docs/model-choices.md "The q35 memory map"): 2 GiB of RAM at 0, the
    32-bit hole from 0x80000000, MMCONFIG at 0xe0000000 (256 MiB), IOAPIC/HPET/APIC from
    0xfec00000 (one segment: 1 MiB apart), pc.bios at 0xffc00000 (4 MiB), 2 GiB from
    4 GiB.  Holes get HOLE_PX, MMIO and firmware SMALL_PX, RAM at least RAM_MIN_PX; the
    columns add up to the width; each segment start is a tick labelled with its GPA."""
    from snpsim.report.picture import (
        HOLE_PX,
        RAM_MIN_PX,
        SMALL_PX,
        allocate_columns,
        axis_ticks,
        layout_segments,
    )

    pic = seed_4g.outcome.picture
    segs = allocate_columns(layout_segments(pic), 1100)
    assert [(s.kind, s.gpa) for s in segs] == [
        ("RAM", 0), ("hole", 0x80000000), ("MMIO", 0xE0000000), ("hole", 0xF0000000),
        ("MMIO", 0xFEC00000), ("hole", 0xFEF00000), ("firmware", 0xFFC00000),
        ("RAM", 0x100000000)]
    assert segs[4].name == "ioapic, hpet, kvm-apic-msi" and segs[6].name == "pc.bios"
    assert [s.width for s in segs if s.kind == "hole"] == [HOLE_PX] * 3
    assert [s.width for s in segs if s.kind in ("MMIO", "firmware")] == [SMALL_PX] * 3
    assert all(s.width >= RAM_MIN_PX for s in segs if s.kind == "RAM")
    assert segs[0].width == segs[-1].width                      # 2 GiB each, to scale
    assert sum(s.width for s in segs) == 1100
    assert [s.col for s in segs[1:]] == [s.col + s.width for s in segs[:-1]]
    ticks = dict(axis_ticks(segs))
    for s in segs:
        assert ticks[s.col].startswith(f"{s.gpa:#x} ")
    assert ticks[segs[1].col] == "0x80000000 (2G)" and ticks[1100] == "0x180000000 (6G)"


def test_4g_seed_page_makes_its_column_non_grey(seed_4g):
    """The seed page (one 4 KiB page of a 2 MiB cell) is shared in some sample: its
    column is "some pages shared" there, and the private, validated pages around it make
    its first sample's column "some pages validated" or validated, not the unaccepted
    grey; no column away from the seed page is ever shared."""
    from snpsim.report.picture import CLASSES, full_panel

    pic = seed_4g.outcome.picture
    gpa = seed_4g.result["gpa"]
    classes, segs = full_panel(pic, 1100)
    seg = next(s for s in segs if s.gpa <= gpa < s.gpa + s.size)
    assert seg.kind == "RAM"
    c0, n = seg.gpa // pic.cell, -(-(seg.gpa + seg.size) // pic.cell) - seg.gpa // pic.cell
    cell = gpa // pic.cell - c0
    cols = [seg.col + j for j in range(seg.width) if (j * n) // seg.width == cell]
    names = [CLASSES[c] for c in classes[:, cols[0]]]
    assert "some pages shared" in names
    assert names[0] in ("some pages validated", "private, validated")
    shared = np.isin(classes, [CLASSES.index("shared"), CLASSES.index("some pages shared")])
    assert set(np.flatnonzero(shared.any(axis=0))) <= set(cols)


def test_ram_unaccepted_throughout_is_drawn_short_and_the_touched_ram_wide(seed_4g):
    """seed at 4 GiB touches a few MiB near 16 MiB; ram-above-4g is never accepted.  The
    stretches unaccepted in every sample become fixed-width "quiet" segments (named after
    their region) and the touched RAM gets the rest of the row; the quiet ones and the RAM
    pieces tile each region exactly."""
    from snpsim.report.picture import QUIET_PX, allocate_columns, panel_segments

    pic = seed_4g.outcome.picture
    segs = allocate_columns(panel_segments(pic), 1100)
    above = [s for s in segs if s.name == "ram-above-4g"]
    assert [(s.kind, s.gpa, s.size, s.width) for s in above] == [
        ("quiet", 1 << 32, 2 << 30, QUIET_PX)]
    below = [s for s in segs if s.name == "ram-below-4g"]
    assert below[0].gpa == 0 and below[-1].gpa + below[-1].size == 0x80000000
    assert [b.gpa for b in below[1:]] == [a.gpa + a.size for a in below[:-1]]
    touched = [s for s in below if s.kind == "RAM"]
    assert any(s.gpa <= seed_4g.result["gpa"] < s.gpa + s.size for s in touched)
    assert sum(s.width for s in touched) > 1100 // 2
    assert all(s.kind == "quiet" for s in below if s.size >= 1 << 30)


def test_1t_layout_keeps_the_hole_and_small_regions_visible():
    """1 TiB (ram-above-4g at 1 TiB, 32 MiB cells, 65,472 of them): the 2 GiB-3.5 GiB
    hole, which was 48 of 39,236 columns, is HOLE_PX of 1100; MMCONFIG is SMALL_PX, no
    wider than the 2 GiB of RAM below 4 GiB (RAM_MIN_PX); the hole between 4 GiB and
    1 TiB is one hatched segment of HOLE_PX."""
    from snpsim.report.picture import (
        HOLE_PX,
        RAM_MIN_PX,
        SMALL_PX,
        allocate_columns,
        layout_segments,
    )
    from snpsim.system import MemoryPicture, SnpSystem

    system = SnpSystem(1 << 40, 1)
    system._build(None, ())
    pic = MemoryPicture(*system._picture_geometry(), regions=system._picture_regions())
    assert pic.cell == 32 << 20
    row = np.full(pic.ncells, PAGE_STATES.index("unaccepted"), np.uint8)
    pic.add(row, "start", force=True)
    segs = allocate_columns(layout_segments(pic), 1100)
    kinds = [(s.kind, s.gpa, s.width) for s in segs]
    assert kinds[:3] == [("RAM", 0, RAM_MIN_PX), ("hole", 0x80000000, HOLE_PX),
                         ("MMIO", 0xE0000000, SMALL_PX)]
    assert kinds[-2:] == [("hole", 1 << 32, HOLE_PX),
                          ("RAM", 1 << 40, 1100 - sum(w for _, _, w in kinds[:-1]))]
    assert SMALL_PX < RAM_MIN_PX
    # One shared page at 1.5 TiB (one 32 MiB cell of 65,472): that stretch of
    # ram-above-4g is drawn as touched RAM, its column "some pages shared", the rest of
    # the region "unaccepted throughout".
    from snpsim.report.picture import CLASSES, full_panel

    mask = np.full(pic.ncells, _BIT["unaccepted"], np.uint8)
    mask[:64] = _BIT["private, validated"]
    mask[64:] = np.where(row[64:] == PAGE_STATES.index("not RAM"), _BIT["not RAM"], mask[64:])
    k = (1536 << 30) // pic.cell
    mask[k] |= _BIT["shared"]
    pic.masks[0] = mask
    classes, segs = full_panel(pic, 1100)
    hit = next(s for s in segs if s.gpa <= 1536 << 30 < s.gpa + s.size)
    assert hit.kind == "RAM" and hit.name == "ram-above-4g" and hit.width >= RAM_MIN_PX
    shared = np.flatnonzero(classes[0] == CLASSES.index("some pages shared"))
    assert shared.size and set(shared) <= set(range(hit.col, hit.col + hit.width))
    assert [s.kind for s in segs if s.name == "ram-above-4g"] == ["quiet", "RAM", "quiet"]


def test_coarse_zoom_uses_cells_and_shows_one_shared_page_as_some_shared():
    """Without a 4 KiB history (more than 8 GiB of GPA) the zoom's columns are the
    picture's cells (16 each side of the converted one), coloured by their masks: one
    shared page in a 32 MiB cell of validated pages is "some pages shared", not shared."""
    from snpsim.report.picture import CLASS_COLOURS, zoom_rgb, zoom_unit
    from snpsim.system import MemoryPicture

    cell = 32 << 20
    pic = MemoryPicture(cell=cell, ncells=1000)
    row = np.full(1000, PAGE_STATES.index("private, validated"), np.uint8)
    mask = np.full(1000, _BIT["private, validated"], np.uint8)
    pic.add(row, "start", force=True, mask=mask)
    gpa = 500 * cell + 0x5000
    pic.converted.append((gpa, 1))
    row2, mask2 = row.copy(), mask.copy()
    row2[500] = PAGE_STATES.index("shared")
    mask2[500] |= _BIT["shared"]
    pic.add(row2, "exit", force=True, mask=mask2)
    assert not pic.zoom_is_fine and zoom_unit(pic) == cell
    rgb, lo, hi = zoom_rgb(pic)
    assert (lo, hi) == (484 * cell, 517 * cell) and rgb.shape == (2, 33, 3)
    assert tuple(rgb[1, 16]) == CLASS_COLOURS["some pages shared"]
    assert tuple(rgb[0, 16]) == CLASS_COLOURS["private, validated"]
    assert tuple(rgb[1, 15]) == CLASS_COLOURS["private, validated"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=1, max_size=300), st.integers(1, 120),
       st.integers(0, 3))
def test_segment_columns_are_the_or_of_their_cells(cells, width, rows):
    """The vectorised column masks (reduceat / index) equal a per-column loop: column j
    of a k-column segment over n cells covers cells [j*n//k, (j+1)*n//k) (at least one)."""
    from snpsim.report.picture import Segment, _segment_masks

    n = len(cells)
    masks = np.array([cells] * (rows + 1), dtype=np.uint8)
    masks[0] = np.roll(masks[0], 1)
    seg = Segment("RAM", "ram", 0, n * 4096, 0, width)
    got = _segment_masks(seg, masks, 4096)
    for j in range(width):
        a = j * n // width
        b = max(a + 1, (j + 1) * n // width) if n >= width else a + 1
        want = np.bitwise_or.reduce(masks[:, a:b], axis=1)
        assert (got[:, j] == want).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["RAM", "hole", "MMIO", "firmware", "quiet"]),
                          st.integers(1, 1 << 40)), min_size=1, max_size=60))
def test_columns_add_up_and_respect_the_minimums(parts):
    """Widths sum to the panel and every segment gets a column; a layout that fits gives
    fixed kinds their width and every RAM region at least RAM_MIN_PX; a larger RAM region
    never gets fewer columns."""
    from snpsim.report.picture import (
        HOLE_PX,
        QUIET_PX,
        RAM_MIN_PX,
        SMALL_PX,
        Segment,
        allocate_columns,
    )

    segs, gpa = [], 0
    for kind, size in parts:
        segs.append(Segment(kind, kind, gpa, size))
        gpa += size
    out = allocate_columns(segs, 1100)
    assert sum(s.width for s in out) == 1100
    assert all(s.width >= 1 for s in out)
    ram = sorted((s.size, s.width) for s in out if s.kind == "RAM")
    assert [w for _, w in ram] == sorted(w for _, w in ram)
    fixed = sum({"hole": HOLE_PX, "quiet": QUIET_PX}.get(s.kind, SMALL_PX)
                for s in out if s.kind != "RAM")
    if fixed + RAM_MIN_PX * len(ram) > 1100:
        return
    for s in out:
        if s.kind == "RAM":
            assert s.width >= RAM_MIN_PX
    if any(s.kind == "RAM" for s in out):
        assert all(s.width == {"hole": HOLE_PX, "quiet": QUIET_PX}.get(s.kind, SMALL_PX)
                   for s in out if s.kind != "RAM")
