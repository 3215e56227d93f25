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

__all__ = ["STATE_COLOURS", "picture_rgb", "write_picture"]

#: One RGB colour (0-255) per state of PAGE_STATES, in order.
STATE_COLOURS: dict[str, tuple[int, int, int]] = {
    "not RAM": (255, 255, 255),
    "MMIO": (120, 120, 120),
    "unaccepted": (215, 215, 215),
    "private, not validated": (240, 170, 60),
    "private, validated": (40, 90, 170),
    "shared": (220, 40, 40),
}
assert tuple(STATE_COLOURS) == PAGE_STATES

_PALETTE = np.array([STATE_COLOURS[s] for s in PAGE_STATES], dtype=np.uint8)


def picture_rgb(picture: MemoryPicture) -> np.ndarray:
    """The picture as an (rows, cells, 3) uint8 RGB array (row 0 = first sample)."""
    states = np.vstack(picture.rows) if picture.rows else np.zeros((1, picture.ncells), np.uint8)
    return _PALETTE[states]


def write_picture(picture: MemoryPicture, path: Path, *, title: str = "") -> None:
    """Draw ``picture`` to the PNG ``path`` with axes, a legend and ``title``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rgb = picture_rgb(picture)
    total = picture.cell * picture.ncells
    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    ax.imshow(rgb, aspect="auto", interpolation="nearest",
              extent=(0, total, len(picture.rows) - 0.5, -0.5))
    ticks = np.linspace(0, total, 9)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{int(t):#x}" for t in ticks], rotation=30, fontsize=7)
    ax.set_xlabel(f"guest physical address ({format_size(picture.cell)} cells, "
                  f"{format_size(total)} of RAM)")
    ax.set_ylabel("sample (start at the top; one after each userspace exit)")
    ax.set_title(title or "guest physical memory over the run", fontsize=10)
    ax.legend(handles=[Patch(color=np.array(STATE_COLOURS[s]) / 255, label=s)
                       for s in PAGE_STATES],
              loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=6, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
