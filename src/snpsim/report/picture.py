# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The picture of guest physical memory over a run, as a PNG (matplotlib, Agg backend).

Two panels, y: the samples in run order (top: the start, bottom: the end).

- The full-memory panel: x is the guest physical address with a broken axis
  (:func:`layout_segments`, :func:`allocate_columns`): each RAM region gets pixel columns
  in proportion to its size but at least :data:`RAM_MIN_PX`; every hole (hatched), MMIO
  region and firmware region gets a fixed width whatever its size; every segment is
  named above the panel and its start GPA is a tick below it.  One pixel column covers
  many cells; its colour is :func:`classify` of the OR of the cells' state masks
  (:attr:`MemoryPicture.masks`), so a single shared page anywhere in a column shows, as
  "some pages shared", however large the column.
- The zoom panel: the 4 KiB pages around the run's last conversion, or, when no 4 KiB
  history was kept (more than 8 GiB of GPA), the picture's own cells around it, coloured
  by the same rule; its x label says which.

:func:`full_panel` and :func:`zoom_rgb` give the data behind both panels, so tests can
read the classification without decoding pixels.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from snpsim.system import PAGE_STATES, MemoryPicture, format_size
from snpsim.trace.atomic import atomic_write

__all__ = ["CLASSES", "CLASS_COLOURS", "STATE_COLOURS", "Segment", "allocate_columns", "axis_ticks",
           "classify", "full_panel", "layout_segments", "panel_segments", "picture_rgb",
           "write_picture",
           "zoom_rgb", "zoom_unit"]

#: What the y axis of both panels is.
Y_LABEL = "sample: start (top), after each userspace exit (KVM_RUN return), end (bottom)"
#: Height of one sample row in the zoom panel, pixels (the panel: 120 to 360 pixels).
ZOOM_ROW_PX = 4
#: Blank pixels between the panels' frames and their first and last columns.
PAD_PX = 4

#: One RGB colour (0-255) per state of PAGE_STATES, in order.
STATE_COLOURS: dict[str, tuple[int, int, int]] = {
    "not RAM": (255, 255, 255),
    "MMIO": (120, 120, 120),
    "unaccepted": (215, 215, 215),
    "private, not validated": (240, 170, 60),
    "private, validated": (40, 90, 170),
    "shared": (220, 40, 40),
    "firmware": (150, 110, 190),
}
assert tuple(STATE_COLOURS) == PAGE_STATES

#: What a cell or pixel column of the report is drawn as: every page of it in one of the
#: states (the first seven; "not RAM", "MMIO", "firmware" and "unaccepted" also when
#: mixed with each other), or some but not all of its RAM pages shared / validated /
#: private, not validated (in that priority: a column with any shared page is never
#: drawn as anything but shared or "some pages shared").
CLASSES: tuple[str, ...] = PAGE_STATES + (
    "some pages shared", "some pages validated", "some pages private, not validated")
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    **STATE_COLOURS,
    "some pages shared": (245, 140, 185),
    "some pages validated": (130, 175, 235),
    "some pages private, not validated": (250, 215, 150),
}
assert tuple(CLASS_COLOURS) == CLASSES

_NOT_RAM, _MMIO, _UNACCEPTED, _UNVALIDATED, _VALIDATED, _SHARED, _FIRMWARE = range(7)
_SOME_SHARED, _SOME_VALIDATED, _SOME_UNVALIDATED = 7, 8, 9
_RAM_BITS = (1 << _UNACCEPTED) | (1 << _UNVALIDATED) | (1 << _VALIDATED) | (1 << _SHARED)

_PALETTE = np.array([STATE_COLOURS[s] for s in PAGE_STATES], dtype=np.uint8)
_CLASS_PALETTE = np.array([CLASS_COLOURS[s] for s in CLASSES], dtype=np.uint8)

#: Widths of the full-memory panel's segments, pixel columns: every hole, every MMIO or
#: firmware segment, and the least a RAM region gets.
HOLE_PX, SMALL_PX, RAM_MIN_PX = 28, 44, 72
#: Width of a RAM stretch unaccepted through the whole run (:func:`panel_segments`).
QUIET_PX = 56
#: MMIO regions closer than this (bytes) are one segment ("ioapic, hpet, kvm-apic-msi").
MMIO_MERGE_GAP = 16 << 20


def _class_of_mask(m: int) -> int:
    ram = m & _RAM_BITS
    for state, some in ((_SHARED, _SOME_SHARED), (_VALIDATED, _SOME_VALIDATED),
                        (_UNVALIDATED, _SOME_UNVALIDATED)):
        if m & (1 << state):
            return state if ram == 1 << state else some
    for state in (_UNACCEPTED, _FIRMWARE, _MMIO):
        if m & (1 << state):
            return state
    return _NOT_RAM


_CLASS_LUT = np.array([_class_of_mask(m) for m in range(256)], dtype=np.uint8)


def classify(masks: np.ndarray) -> np.ndarray:
    """Indices into :data:`CLASSES` of state masks (uint8, any shape; bit ``i`` set: some
    page is in ``PAGE_STATES[i]``), same shape: shared, validated, private-not-validated
    when every RAM page is in it, "some pages ..." when some are (in that priority), else
    unaccepted, firmware, MMIO, not RAM (the first present)."""
    return _CLASS_LUT[masks]


def _masks(picture: MemoryPicture) -> np.ndarray:
    """(kept rows, cells) uint8 state masks of ``picture``."""
    if picture.masks:
        return np.vstack(picture.masks)
    if picture.rows:
        return np.left_shift(1, np.vstack(picture.rows)).astype(np.uint8)
    return np.ones((1, picture.ncells), np.uint8)


def picture_rgb(picture: MemoryPicture) -> np.ndarray:
    """The picture's cell states as an (rows, cells, 3) uint8 RGB array (row 0 = first
    sample; :data:`STATE_COLOURS` of :attr:`MemoryPicture.rows`)."""
    states = np.vstack(picture.rows) if picture.rows else np.zeros((1, picture.ncells), np.uint8)
    return _PALETTE[states]


@dataclass(frozen=True)
class Segment:
    """A stretch of the full-memory panel's x axis: ``kind`` "RAM", "MMIO", "firmware" or
    "hole"; ``name`` (the VMM regions' names; "hole" for a gap); GPA ``gpa`` and
    ``size`` in bytes; pixel columns ``[col, col + width)``; "quiet": part of a RAM region
    unaccepted in every sample (:func:`panel_segments`)."""

    kind: str
    name: str
    gpa: int
    size: int
    col: int = 0
    width: int = 0


def _regions(picture: MemoryPicture) -> list[tuple[str, str, int, int]]:
    """:attr:`MemoryPicture.regions`, or, for a picture without them, the runs of cells
    whose masks hold RAM, firmware or MMIO (over all samples)."""
    if picture.regions:
        return sorted(picture.regions, key=lambda r: r[2])
    union = np.bitwise_or.reduce(_masks(picture), axis=0)
    kind = np.where(union & _RAM_BITS, 1, np.where(union & (1 << _FIRMWARE), 2,
                                                   np.where(union & (1 << _MMIO), 3, 0)))
    edges = np.flatnonzero(np.diff(kind)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [kind.size]))
    names = {1: "RAM", 2: "firmware", 3: "MMIO"}
    return [(names[int(kind[a])], names[int(kind[a])], int(a) * picture.cell,
             int(b - a) * picture.cell) for a, b in zip(starts, ends, strict=True) if kind[a]]


def layout_segments(picture: MemoryPicture) -> list[Segment]:
    """The full-memory panel's segments in GPA order, from GPA 0 to the end of the highest
    region (which may lie past the picture's sampled span, e.g. "pc.bios" below 4 GiB of a
    64 MiB guest): the regions, a "hole" for every gap between them, and MMIO regions
    closer than :data:`MMIO_MERGE_GAP` merged into one (widths not yet set)."""
    out: list[Segment] = []
    pos = 0
    for name, kind, gpa, size in _regions(picture):
        if gpa > pos:
            out.append(Segment("hole", "hole", pos, gpa - pos))
        prev = out[-1] if out else None
        before = out[-2] if len(out) > 1 else None
        if (kind == "MMIO" and prev is not None and prev.kind == "hole" and before is not None
                and before.kind == "MMIO" and prev.size < MMIO_MERGE_GAP):
            out[-2:] = [replace(before, name=f"{before.name}, {name}",
                                size=gpa + size - before.gpa)]
        else:
            out.append(Segment(kind, name, gpa, size))
        pos = max(pos, gpa + size)
    return out


def _split_quiet(seg: Segment, quiet: np.ndarray, cell: int) -> list[Segment]:
    """``seg`` (RAM) cut at its runs of cells unaccepted in every sample (``quiet``, per
    cell) that span at least 1/16 of it: those runs become "quiet" segments, the rest
    stays "RAM"; all keep the region's name."""
    c0 = seg.gpa // cell
    c1 = min(quiet.size, -(-(seg.gpa + seg.size) // cell))
    if c1 <= c0:
        return [seg]
    q = quiet[c0:c1]
    edges = np.flatnonzero(np.diff(q.astype(np.int8))) + 1
    starts = np.concatenate(([0], edges)).tolist()
    ends = [*edges.tolist(), c1 - c0]
    need = max(2, (c1 - c0) // 16)
    out: list[Segment] = []
    end = seg.gpa + seg.size
    for a, b in zip(starts, ends, strict=True):
        lo = max(seg.gpa, (c0 + a) * cell)
        hi = end if b == c1 - c0 else (c0 + b) * cell
        kind = "quiet" if q[a] and b - a >= need else "RAM"
        if out and out[-1].kind == kind == "RAM":
            out[-1] = replace(out[-1], size=hi - out[-1].gpa)
        else:
            out.append(Segment(kind, seg.name, lo, hi - lo))
    return out


def panel_segments(picture: MemoryPicture, masks: np.ndarray | None = None) -> list[Segment]:
    """:func:`layout_segments` with each RAM region's long stretches that stay unaccepted
    through the whole run drawn as "quiet" segments (fixed width, like holes), so that the
    RAM the run used gets the columns (widths not yet set).  ``masks``: the picture's
    (rows, cells) state masks when the caller has them already."""
    masks = _masks(picture) if masks is None else masks
    quiet = (masks == 1 << _UNACCEPTED).all(axis=0)
    out: list[Segment] = []
    for seg in layout_segments(picture):
        out += _split_quiet(seg, quiet, picture.cell) if seg.kind == "RAM" else [seg]
    return out


def allocate_columns(segments: list[Segment], width: int) -> list[Segment]:
    """Give ``segments`` pixel columns adding up to ``width``: :data:`HOLE_PX` per hole,
    :data:`SMALL_PX` per MMIO or firmware segment, the rest to RAM in proportion to size
    with at least :data:`RAM_MIN_PX` each (largest remainder rounding); all of these
    shrink in proportion (to at least 1 column) when ``width`` cannot hold them.
    ValueError when there are more segments than columns."""
    if len(segments) > width:
        raise ValueError(f"{width} columns cannot hold {len(segments)} segments")
    fixed = {"hole": HOLE_PX, "MMIO": SMALL_PX, "firmware": SMALL_PX, "quiet": QUIET_PX}
    widths = [fixed.get(s.kind, 0) for s in segments]
    ram = [i for i, s in enumerate(segments) if s.kind == "RAM"]
    ram_min = RAM_MIN_PX
    need = sum(widths) + ram_min * len(ram)
    if need > width:  # squeeze, keeping the sum within width
        ram_min = max(1, ram_min * width // need)
        widths = [max(1, w * width // need) if w else 0 for w in widths]
        while sum(widths) + ram_min * len(ram) > width:
            k = max(range(len(widths)), key=widths.__getitem__)
            if widths[k] > 1:
                widths[k] -= 1
            else:
                ram_min -= 1
    left = width - sum(widths)
    if ram:
        floor = set()
        while True:  # RAM regions below the minimum get it; the rest share what is left
            free = [i for i in ram if i not in floor]
            room = left - ram_min * len(floor)
            total = sum(segments[i].size for i in free)
            share = {i: room * segments[i].size / total for i in free}
            low = {i for i in free if share[i] < ram_min}
            if not low:
                break
            floor |= low
        for i in floor:
            widths[i] = ram_min
        base = {i: int(v) for i, v in share.items()}
        spare = room - sum(base.values())
        for i in sorted(share, key=lambda i: base[i] - share[i])[:spare]:
            base[i] += 1
        for i, w in base.items():
            widths[i] = w
    else:
        widths[-1] += left
    out, col = [], 0
    for s, w in zip(segments, widths, strict=True):
        out.append(replace(s, col=col, width=w))
        col += w
    return out


def _segment_masks(seg: Segment, masks: np.ndarray, cell: int) -> np.ndarray:
    """(rows, seg.width) masks of the segment's pixel columns: OR of the cells each column
    covers (RAM), or the segment's kind (holes, MMIO, firmware: the same in every sample)."""
    rows, ncells = masks.shape
    c0, c1 = seg.gpa // cell, min(ncells, -(-(seg.gpa + seg.size) // cell))
    k = seg.width
    if seg.kind != "RAM" or c1 <= c0:
        bit = {"MMIO": _MMIO, "firmware": _FIRMWARE, "quiet": _UNACCEPTED}.get(seg.kind,
                                                                             _NOT_RAM)
        return np.full((rows, k), 1 << bit, np.uint8)
    n = c1 - c0
    first = c0 + (np.arange(k, dtype=np.int64) * n) // k
    if n >= k:
        return np.bitwise_or.reduceat(masks[:, c0:c1], first - c0, axis=1)
    return masks[:, first]


def full_panel(picture: MemoryPicture, width: int) -> tuple[np.ndarray, list[Segment]]:
    """The full-memory panel: ((rows, width) indices into :data:`CLASSES`, the segments
    with their columns).  Cost: a few passes over the kept rows' masks (rows x cells
    bytes), nothing per page."""
    masks = _masks(picture)
    segments = allocate_columns(panel_segments(picture, masks), width)
    cols = np.hstack([_segment_masks(s, masks, picture.cell) for s in segments])
    return classify(cols), segments


def zoom_unit(picture: MemoryPicture) -> int:
    """Bytes of GPA per column of the zoom panel: 4 KiB when a 4 KiB history exists
    (:attr:`MemoryPicture.zoom_is_fine`), else the picture's cell."""
    return 4096 if picture.zoom_is_fine else picture.cell


def zoom_rgb(picture: MemoryPicture) -> tuple[np.ndarray, int, int]:
    """The zoomed panel: (rows, columns, 3) uint8 RGB, one row per kept sample, and the
    GPAs ``lo``, ``hi`` it covers.  With a 4 KiB history: the pages of
    :meth:`MemoryPicture.zoom_window` (the last conversion +- 32 pages), in
    :data:`STATE_COLOURS`; without: the cells around the last conversion's cell (16 each
    side), in :data:`CLASS_COLOURS` of their masks (so one shared page in a cell shows as
    "some pages shared")."""
    if picture.zoom_is_fine:
        lo, hi = picture.zoom_window()
        return _PALETTE[picture.zoom_rows(lo, hi)], lo, hi
    gpa = picture.converted[-1][0] if picture.converted else 0
    c = gpa // picture.cell
    c0, c1 = max(0, c - 16), min(picture.ncells, c + 17)
    return (_CLASS_PALETTE[classify(_masks(picture)[:, c0:c1])], c0 * picture.cell,
            c1 * picture.cell)


#: Classes the "any sample" strip widens, lowest priority first.
_MARKED = (_SOME_UNVALIDATED, _UNVALIDATED, _SOME_VALIDATED, _VALIDATED, _SOME_SHARED, _SHARED)


def _marks(classes: np.ndarray) -> np.ndarray:
    """The "any sample" strip from the (rows, columns) classes: per column, the highest
    :data:`_MARKED` class of any sample (else the last sample's class), each marked column
    also painted on two neighbours each side (higher priority wins)."""
    out = classes[-1].copy()
    seen = {c: (classes == c).any(axis=0) for c in _MARKED}
    for c in _MARKED:
        out[seen[c]] = c
    for c in _MARKED:
        hit = seen[c]
        wide = hit.copy()
        for d in (1, 2):
            wide[d:] |= hit[:-d]
            wide[:-d] |= hit[d:]
        out[wide] = c
    return out


def axis_ticks(segments: list[Segment]) -> list[tuple[int, str]]:
    """The full-memory panel's x ticks: (pixel column, label) at every segment's start
    and at the end, labelled with the GPA there (hex and size)."""
    ends = [(s.col, s.gpa) for s in segments]
    last = segments[-1]
    ends.append((last.col + last.width, last.gpa + last.size))
    return [(c, f"{g:#x} ({format_size(g) if g else '0'})") for c, g in ends]


def _stagger(xs: list[float], min_gap: float) -> list[int]:
    """Row (0 or 1) for labels at ``xs`` so that neighbours closer than ``min_gap`` alternate."""
    rows, last = [], {0: -1e9, 1: -1e9}
    for x in xs:
        r = 0 if x - last[0] >= min_gap else 1 if x - last[1] >= min_gap else 0
        rows.append(r)
        last[r] = x
    return rows


def write_picture(picture: MemoryPicture, path: Path, *, title: str = "") -> None:
    """Draw ``picture`` to the PNG ``path``: the full-memory panel (one pixel per column of
    :func:`full_panel`), a legend, and the zoom panel (:func:`zoom_rgb`), with ``title``.
    Errors: those of writing ``path`` (written atomically)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.transforms import blended_transform_factory

    dpi = 100
    fig_w, left, right = 1240, 110, 30
    width = fig_w - left - right
    classes, segments = full_panel(picture, width)
    rgb = _CLASS_PALETTE[classes]
    nrows = len(rgb)
    zrgb, zlo, zhi = zoom_rgb(picture)
    unit = zoom_unit(picture)
    # Vertical layout, pixels from the top.
    title_h, names_h, strip_h, main_h, ticks_h, label_h, legend_h = 34, 40, 18, 360, 118, 22, 64
    zoom_h = min(360, max(120, len(zrgb) * ZOOM_ROW_PX))
    zticks_h, zlabel_h = 46, 44
    fig_h = (title_h + names_h + strip_h + 4 + main_h + ticks_h + label_h + legend_h + zoom_h
             + zticks_h + zlabel_h)
    fig = plt.figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi)

    def axes(top: int, h: int, pad: int = 0) -> plt.Axes:
        # ``pad`` pixels of margin each side, so the frame covers no column of the image.
        return fig.add_axes(((left - pad) / fig_w, 1 - (top + h) / fig_h,
                             (width + 2 * pad) / fig_w, h / fig_h))

    fig.text(0.5, 1 - 20 / fig_h, title or "guest physical memory over the run",
             ha="center", va="center", fontsize=11)
    # The whole run per column: the most notable class any sample has there, each
    # column of a marked class widened to 5 px so none can be missed.
    top = title_h + names_h
    sax = axes(top, strip_h, PAD_PX)
    strip = _marks(classes)
    sax.imshow(_CLASS_PALETTE[strip][None], aspect="auto", interpolation="nearest",
               extent=(0, width, 0.5, -0.5))
    sax.set_xlim(-PAD_PX, width + PAD_PX)
    sax.set_xticks([])
    sax.set_yticks([])
    sax.set_ylabel("any\nsample", fontsize=6, rotation=0, ha="right", va="center")
    ax = axes(top + strip_h + 4, main_h, PAD_PX)
    ax.imshow(rgb, aspect="auto", interpolation="nearest", extent=(0, width, nrows - 0.5, -0.5))
    ax.set_xlim(-PAD_PX, width + PAD_PX)
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for s in segments:
        if s.kind in ("hole", "quiet"):
            ax.add_patch(Rectangle((s.col, -0.5), s.width, nrows, fill=False,
                                   hatch="///" if s.kind == "hole" else "..",
                                   edgecolor=(0.6, 0.6, 0.6), linewidth=0))
    # RAM regions (with their quiet stretches) are named above the strip, neighbours in
    # alternate rows; the fixed-width segments inside the panel, written upwards; every
    # segment start is a GPA tick.
    groups: list[list[Segment]] = []
    for i, s in enumerate(segments):
        if s.kind in ("RAM", "quiet"):
            if groups and i and groups[-1][-1] is segments[i - 1] and segments[i - 1].name == s.name:
                groups[-1].append(s)
            else:
                groups.append([s])
    centres = [(g[0].col + g[-1].col + g[-1].width) / 2 for g in groups]
    for g, x, r in zip(groups, centres, _stagger(centres, 160), strict=True):
        size = g[-1].gpa + g[-1].size - g[0].gpa
        fig.text((left + x) / fig_w, 1 - (title_h + 12 + 16 * r) / fig_h,
                 f"{g[0].name} {format_size(size)}", ha="center", va="center", fontsize=7)
    for s in segments:
        if s.kind != "RAM":
            text = (f"unaccepted throughout: {format_size(s.size)}" if s.kind == "quiet"
                    else f"{s.name} {format_size(s.size)}")
            ax.text(s.col + s.width / 2, 0.5, text,
                    transform=trans, rotation=90, ha="center", va="center", fontsize=7,
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none",
                          "pad": 1.5})
    ticks = axis_ticks(segments)
    ax.set_xticks([c for c, _ in ticks])
    ax.set_xticklabels([t for _, t in ticks], rotation=90, fontsize=7)
    ax.set_ylabel(textwrap.fill(Y_LABEL, 40), fontsize=7)
    fig.text(0.5, 1 - (top + strip_h + 4 + main_h + ticks_h + label_h / 2) / fig_h,
             f"guest physical address: {format_size(picture.cell)} cells, "
             f"{format_size(segments[-1].gpa + segments[-1].size)} of GPA. Broken axis: RAM the "
             f"run touched to scale (at least {RAM_MIN_PX} px); RAM unaccepted throughout "
             "(dotted), holes (hatched), MMIO and firmware at fixed widths",
             ha="center", va="center", fontsize=8)
    leg_top = top + strip_h + 4 + main_h + ticks_h + label_h
    fig.legend(handles=[Patch(facecolor=np.array(CLASS_COLOURS[s]) / 255, edgecolor="black",
                              linewidth=0.8, label=s) for s in CLASSES],
               loc="upper center", bbox_to_anchor=(0.5, 1 - leg_top / fig_h), ncol=5,
               fontsize=7.5, frameon=False)
    zax = axes(leg_top + legend_h, zoom_h)
    ncols = zrgb.shape[1]
    zax.imshow(zrgb, aspect="auto", interpolation="nearest",
               extent=(0, ncols, len(zrgb) - 0.5, -0.5))
    step = max(1, -(-ncols // 8))
    zt = list(range(0, ncols + 1, step))
    zax.set_xticks(zt)
    zax.set_xticklabels([f"{zlo + t * unit:#x}" for t in zt], rotation=20, fontsize=7)
    zax.set_ylabel("sample", fontsize=8)
    what = ("one column per 4 KiB page: the pages converted last +- 32 pages" if unit == 4096
            else f"one column per {format_size(unit)} cell (no 4 KiB history is kept above "
                 "8 GiB of GPA): the cells around the last conversion, coloured by the "
                 "legend's rule (one shared page makes its cell 'some pages shared')")
    fig.text(0.5, 1 - (fig_h - zlabel_h / 2) / fig_h,
             textwrap.fill(f"zoom: guest physical address {zlo:#x}-{zhi:#x}, {what}", 150),
             ha="center", va="center", fontsize=8)
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
    finally:
        plt.close(fig)
