# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Where the modelled time of a run goes, as a PNG (matplotlib, Agg backend): one
horizontal bar per kind of operation the cost table charged (the largest at the top),
its length the kind's modelled seconds, with a whisker over the kind's ``low .. high``
range (docs/costs.md).  :func:`breakdown_rows` gives the bars' data, so tests can check
them without reading pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snpsim.trace.atomic import atomic_write

__all__ = ["breakdown_rows", "write_breakdown", "BREAKDOWN_BARS"]

#: Bars drawn; the smaller kinds are summed into one "other kinds" bar.
BREAKDOWN_BARS = 15


def breakdown_rows(modelled: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    """(kind, seconds, low, high) of the bars, largest first: at most
    :data:`BREAKDOWN_BARS` kinds, then ``"other kinds"`` with the rest's sum."""
    kinds = sorted(modelled["by_kind"].items(), key=lambda kv: (-kv[1]["s"], kv[0]))
    rows = [(k, v["s"], v["low_s"], v["high_s"]) for k, v in kinds[:BREAKDOWN_BARS]]
    rest = kinds[BREAKDOWN_BARS:]
    if rest:
        rows.append(("other kinds", sum(v["s"] for _, v in rest),
                     sum(v["low_s"] for _, v in rest), sum(v["high_s"] for _, v in rest)))
    return rows


def write_breakdown(modelled: dict[str, Any], path: Path, title: str = "") -> None:
    """Write the breakdown of ``modelled`` (a ``modelled_time`` report) to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = breakdown_rows(modelled)
    names = [r[0] for r in rows][::-1]
    vals = [r[1] * 1e3 for r in rows][::-1]
    err = [[(r[1] - r[2]) * 1e3 for r in rows][::-1], [(r[3] - r[1]) * 1e3 for r in rows][::-1]]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.6), dpi=100)
    try:
        ax.barh(names, vals, xerr=err, color=(0.16, 0.35, 0.67), ecolor="black", capsize=2)
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_xlabel("modelled milliseconds (whiskers: the cost table's low .. high range)")
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(title or (f"where the modelled time goes: {modelled['busy_s'] * 1e3:.3g} ms "
                               f"of work, {modelled['elapsed_s'] * 1e3:.3g} ms elapsed"),
                     fontsize=10)
        fig.tight_layout()
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)
