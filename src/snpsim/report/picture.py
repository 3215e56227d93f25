# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The picture of guest physical memory over a run, as a PNG (matplotlib, Agg backend).

x: guest physical address (cells of :attr:`MemoryPicture.cell` bytes from GPA 0), y: the
samples in run order (top: the start, bottom: the end), one colour per state of
:data:`snpsim.system.PAGE_STATES`.  :func:`picture_rgb` gives the image's pixel data
(one pixel per cell and sample before scaling), so tests can read the colours back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snpsim.system import PAGE_STATES, MemoryPicture, format_size
from snpsim.trace.atomic import atomic_write

__all__ = ["STATE_COLOURS", "picture_rgb", "zoom_rgb", "write_picture"]

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

_PALETTE = np.array([STATE_COLOURS[s] for s in PAGE_STATES], dtype=np.uint8)


def picture_rgb(picture: MemoryPicture) -> np.ndarray:
    """The picture as an (rows, cells, 3) uint8 RGB array (row 0 = first sample)."""
    states = np.vstack(picture.rows) if picture.rows else np.zeros((1, picture.ncells), np.uint8)
    return _PALETTE[states]


def zoom_rgb(picture: MemoryPicture) -> tuple[np.ndarray, int, int]:
    """The zoomed panel: (rows, pages, 3) uint8 RGB of the 4 KiB pages around the last
    conversion (:meth:`MemoryPicture.zoom_window`), one row per kept sample, and the
    window's GPAs ``lo``, ``hi``."""
    lo, hi = picture.zoom_window()
    return _PALETTE[picture.zoom_rows(lo, hi)], lo, hi


def compressed_columns(picture: MemoryPicture, keep_per_hole: int | None = None,
                       min_width: int | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Which cells the full-memory panel draws, in order: of each run of cells that are
    "not RAM" in every sample (a hole in the address space) only its first
    ``keep_per_hole`` cells (default: 2% of the row); every other stretch (RAM, MMIO,
    firmware) whole, and repeated up to ``min_width`` columns (default: 4% of the row) when
    it is narrower, so that 2 GiB below 4 GiB stays visible beside 1 TiB above it.
    Returns the cell index of each drawn column and the stretches as (first column, first
    cell)."""
    states = np.vstack(picture.rows) if picture.rows else np.zeros((1, picture.ncells), np.uint8)
    hole = (states == PAGE_STATES.index("not RAM")).all(axis=0)
    n = picture.ncells
    keep_per_hole = max(1, n // 50) if keep_per_hole is None else keep_per_hole
    min_width = max(1, n // 25) if min_width is None else min_width
    pieces: list[np.ndarray] = []
    segments: list[tuple[int, int]] = []
    col = i = 0
    while i < n:
        j = i
        while j < n and hole[j] == hole[i]:
            j += 1
        idx = np.arange(i, min(j, i + keep_per_hole) if hole[i] else j)
        if not hole[i] and len(idx) < min_width:
            idx = np.repeat(idx, -(-min_width // len(idx)))
        segments.append((col, i))
        pieces.append(idx)
        col += len(idx)
        i = j
    return np.concatenate(pieces), segments


def _gpa_label(gpa: int) -> str:
    return f"{gpa:#x}\n{format_size(gpa) if gpa else '0'}"


def write_picture(picture: MemoryPicture, path: Path, *, title: str = "") -> None:
    """Draw ``picture`` to the PNG ``path``: the whole RAM, then a zoomed panel (4 KiB
    cells, one row per sample at :data:`ZOOM_ROW_PX` pixels) around the pages the run
    converted last, with axes, a legend and ``title``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rgb = picture_rgb(picture)
    zrgb, zlo, zhi = zoom_rgb(picture)
    total = picture.cell * picture.ncells
    dpi = 110
    zoom_h = max(2.0, len(zrgb) * ZOOM_ROW_PX / dpi)
    fig, (ax, zax) = plt.subplots(2, 1, figsize=(11, 5.5 + zoom_h + 0.8), dpi=dpi,
                                  gridspec_kw={"height_ratios": [4.5, zoom_h]})
    zax.imshow(zrgb, aspect="auto", interpolation="nearest",
               extent=(zlo, zhi, len(zrgb) - 0.5, -0.5))
    zticks = np.linspace(zlo, zhi, 9)
    zax.set_xticks(zticks)
    zax.set_xticklabels([f"{int(t):#x}" for t in zticks], rotation=30, fontsize=7)
    fine = picture.zoom_is_fine
    zax.set_xlabel(f"zoom: guest physical address {zlo:#x}-{zhi:#x} (4 KiB cells: the pages "
                   "converted last +- 32 pages)" if fine else
                   f"zoom: guest physical address {zlo:#x}-{zhi:#x} (the pages converted last "
                   f"+- 32 pages, shown with the {format_size(picture.cell)} cells above: no "
                   "4 KiB history is kept for more than 8 GiB of GPA)")
    zax.set_ylabel("sample", fontsize=8)
    # Holes in the address space are drawn short (compressed_columns); each stretch is
    # labelled with the GPA it starts at.
    cols, segments = compressed_columns(picture)
    ax.imshow(rgb[:, cols], aspect="auto", interpolation="nearest",
              extent=(0, len(cols), len(picture.rows) - 0.5, -0.5))
    # A stretch is labelled when it is wide enough for its label (4% of the panel).
    bounds = [c for c, _ in segments] + [len(cols)]
    ticks, labels = [], []
    for k, (c, first) in enumerate(segments):
        if k == 0 or bounds[k + 1] - c >= len(cols) // 25:
            ticks.append(c)
            labels.append(_gpa_label(first * picture.cell))
    ax.set_xticks([*ticks, len(cols)])
    ax.set_xticklabels([*labels, _gpa_label(total)], fontsize=7)
    for c, _ in segments[1:]:
        ax.axvline(c, color="black", linewidth=0.5)
    ax.set_xlabel(f"guest physical address ({format_size(picture.cell)} cells, "
                  f"{format_size(total)} of guest physical address space; holes drawn short, small "
                  "regions widened)")
    ax.set_ylabel(Y_LABEL, fontsize=8)
    ax.set_title(title or "guest physical memory over the run", fontsize=10)
    ax.legend(handles=[Patch(facecolor=np.array(STATE_COLOURS[s]) / 255, edgecolor="black",
                             linewidth=0.8, label=s) for s in PAGE_STATES],
              loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=6, fontsize=8)
    fig.tight_layout()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)
