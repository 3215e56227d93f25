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
           "classify", "full_panel", "layout_segments", "picture_rgb", "write_picture",
           "zoom_rgb", "zoom_unit"]

#: What the y axis of both panels is.
Y_LABEL = "sample: start (top), after each userspace exit (KVM_RUN return), end (bottom)"
#: Height of one sample row in the zoom panel, pixels.
ZOOM_ROW_PX = 4

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
    ``size`` in bytes; pixel columns ``[col, col + width)``."""

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


def allocate_columns(segments: list[Segment], width: int) -> list[Segment]:
    """Give ``segments`` pixel columns adding up to ``width``: :data:`HOLE_PX` per hole,
    :data:`SMALL_PX` per MMIO or firmware segment, the rest to RAM in proportion to size
    with at least :data:`RAM_MIN_PX` each (largest remainder rounding).  ValueError when
    ``width`` cannot hold the fixed widths."""
    fixed = {"hole": HOLE_PX, "MMIO": SMALL_PX, "firmware": SMALL_PX}
    widths = [fixed.get(s.kind, 0) for s in segments]
    ram = [i for i, s in enumerate(segments) if s.kind == "RAM"]
    left = width - sum(widths)
    if left < RAM_MIN_PX * len(ram) or (not ram and left < 0):
        raise ValueError(f"{width} columns cannot hold {len(segments)} segments")
    if ram:
        floor = set()
        while True:  # RAM regions below the minimum get it; the rest share what is left
            free = [i for i in ram if i not in floor]
            room = left - RAM_MIN_PX * len(floor)
            total = sum(segments[i].size for i in free)
            share = {i: room * segments[i].size / total for i in free}
            low = {i for i in free if share[i] < RAM_MIN_PX}
            if not low:
                break
            floor |= low
        for i in floor:
            widths[i] = RAM_MIN_PX
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
        bit = {"MMIO": _MMIO, "firmware": _FIRMWARE}.get(seg.kind, _NOT_RAM)
        return np.full((rows, k), 1 << bit, np.uint8)
    n = c1 - c0
    first = c0 + (np.arange(k, dtype=np.int64) * n) // k
    if n >= k:
        return np.bitwise_or.reduceat(masks[:, c0:c1], first - c0, axis=1)
    return masks[:, first]


def full_panel(picture: MemoryPicture, width: int) -> tuple[np.ndarray, list[Segment]]:
    """The full-memory panel: ((rows, width) indices into :data:`CLASSES`, the segments
    with their columns).  Cost: one pass over the kept rows' masks."""
    segments = allocate_columns(layout_segments(picture), width)
    masks = _masks(picture)
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


def _marks(union: np.ndarray) -> np.ndarray:
    """The "any sample" strip: ``union`` (classes per column) with each column of a
    :data:`_MARKED` class also painted on its two neighbours (higher priority wins)."""
    out = union.copy()
    for c in _MARKED:
        hit = union == c
        wide = hit.copy()
        wide[1:] |= hit[:-1]
        wide[:-1] |= hit[1:]
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
    title_h, names_h, strip_h, main_h, ticks_h, label_h, legend_h = 34, 40, 16, 360, 118, 22, 64
    zoom_h = max(120, len(zrgb) * ZOOM_ROW_PX)
    zticks_h, zlabel_h = 46, 44
    fig_h = (title_h + names_h + strip_h + 4 + main_h + ticks_h + label_h + legend_h + zoom_h
             + zticks_h + zlabel_h)
    fig = plt.figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi)

    def axes(top: int, h: int, w: int = width) -> plt.Axes:
        return fig.add_axes((left / fig_w, 1 - (top + h) / fig_h, w / fig_w, h / fig_h))

    fig.text(0.5, 1 - 20 / fig_h, title or "guest physical memory over the run",
             ha="center", va="center", fontsize=11)
    # The run's union per column, every column holding pages shared, validated or
    # private-not-validated in any sample widened to 3 px so none can be missed.
    top = title_h + names_h
    sax = axes(top, strip_h)
    strip = _marks(classify(np.bitwise_or.reduce(np.hstack([
        _segment_masks(s, _masks(picture), picture.cell) for s in segments]), axis=0)))
    sax.imshow(_CLASS_PALETTE[strip][None], aspect="auto", interpolation="nearest",
               extent=(0, width, 0.5, -0.5))
    sax.set_xticks([])
    sax.set_yticks([])
    sax.set_ylabel("any\nsample", fontsize=6, rotation=0, ha="right", va="center")
    ax = axes(top + strip_h + 4, main_h)
    ax.imshow(rgb, aspect="auto", interpolation="nearest", extent=(0, width, nrows - 0.5, -0.5))
    ax.set_xlim(0, width)
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for s in segments:
        if s.kind == "hole":
            ax.add_patch(Rectangle((s.col, -0.5), s.width, nrows, fill=False, hatch="///",
                                   edgecolor=(0.6, 0.6, 0.6), linewidth=0))
        if s.col:
            ax.axvline(s.col, color="black", linewidth=0.6)
    # RAM regions are named above the strip (neighbours alternate rows); the narrow
    # segments inside the panel, written upwards; every segment start is a GPA tick.
    ram = [s for s in segments if s.kind == "RAM"]
    centres = [s.col + s.width / 2 for s in ram]
    for s, x, r in zip(ram, centres, _stagger(centres, 160), strict=True):
        fig.text((left + x) / fig_w, 1 - (title_h + 12 + 16 * r) / fig_h,
                 f"{s.name} {format_size(s.size)}", ha="center", va="center", fontsize=7)
    for s in segments:
        if s.kind != "RAM":
            ax.text(s.col + s.width / 2, 0.5, f"{s.name} {format_size(s.size)}",
                    transform=trans, rotation=90, ha="center", va="center", fontsize=7,
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none",
                          "pad": 1.5})
    ticks = axis_ticks(segments)
    ax.set_xticks([c for c, _ in ticks])
    ax.set_xticklabels([t for _, t in ticks], rotation=90, fontsize=7)
    ax.set_ylabel(textwrap.fill(Y_LABEL, 40), fontsize=7)
    fig.text(0.5, 1 - (top + strip_h + 4 + main_h + ticks_h + label_h / 2) / fig_h,
             f"guest physical address: {format_size(picture.cell)} cells, "
             f"{format_size(segments[-1].gpa + segments[-1].size)} of GPA; broken axis: RAM to scale "
             f"(at least {RAM_MIN_PX} px), holes (hatched), MMIO and firmware at a fixed width",
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
