# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``--report DIR``: a static HTML page (no JavaScript) with the summary, the memory
picture and links to the traces, written beside them in DIR.

Files: ``index.html``, ``memory.png`` (:mod:`snpsim.report.picture`), ``costs.png``
(where the modelled time goes, :mod:`snpsim.report.costs_chart`), ``summary.json``, and
the traces the run wrote (linked by their names, relative to DIR).
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from snpsim.system import MemoryPicture
from snpsim.trace.atomic import atomic_write

from .costs_chart import write_breakdown
from .picture import CLASS_COLOURS, write_picture
from .summary import summary_table

__all__ = ["write_report"]

#: The files :func:`write_report` writes into its directory.
REPORT_FILES = ("summary.json", "costs.png", "memory.png", "index.html")


def write_report(directory: Path, summary: dict[str, Any], picture: MemoryPicture | None,
                 traces: Sequence[Path] = ()) -> Path:
    """Write the report into ``directory`` (created if missing); returns ``index.html``.
    ``traces`` are files to link (they should be inside ``directory`` to open from
    disk with relative links; others are linked by absolute path).  All or nothing: if
    one file cannot be written (``OSError``, re-raised), the report files this call
    already wrote are removed again."""
    directory.mkdir(parents=True, exist_ok=True)
    before = {name for name in REPORT_FILES if (directory / name).exists()}
    try:
        return _write_report(directory, summary, picture, traces)
    except BaseException:
        for name in REPORT_FILES:
            if name not in before:
                (directory / name).unlink(missing_ok=True)
        raise


def _write_report(directory: Path, summary: dict[str, Any], picture: MemoryPicture | None,
                  traces: Sequence[Path]) -> Path:
    with atomic_write(directory / "summary.json") as f:
        f.write(json.dumps(summary, indent=2) + "\n")
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(summary_table(summary))
    table_html = console.export_html(inline_styles=True, code_format="<pre>{code}</pre>")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>snpsim run {html.escape(summary['scenario'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1300px}"
        "pre{font-size:12px} .sw{display:inline-block;width:1em;height:1em;"
        "border:1px solid #888;vertical-align:middle;margin-right:.3em}</style>",
        "</head><body>",
        f"<h1>snpsim run {html.escape(summary['scenario'])}</h1>",
        f"<p><b>Run ended:</b> {html.escape(summary['outcome']['description'])}</p>",
        "<h2>Summary</h2>", table_html,
    ]
    modelled = summary.get("modelled_time")
    if modelled and modelled.get("by_kind"):
        write_breakdown(modelled, directory / "costs.png",
                        title=f"snpsim run {summary['scenario']}: where the modelled time goes")
        parts += ["<h2>Where the modelled time goes</h2>",
                  "<img src='costs.png' alt='modelled time by kind of operation'>",
                  f"<p>Modelled time {modelled['elapsed_s'] * 1e3:.3g} ms "
                  f"({modelled['low_s'] * 1e3:.3g} .. {modelled['high_s'] * 1e3:.3g} ms) from "
                  f"the cost table ({html.escape(str(modelled['table']))}, "
                  f"{modelled['cpu_ghz']} GHz); see docs/costs.md.</p>"]
    if picture is not None:
        write_picture(picture, directory / "memory.png",
                      title=f"snpsim run {summary['scenario']}: guest physical memory")
        legend = " ".join(
            f"<span class='sw' style='background:rgb{c}'></span>{html.escape(s)}"
            for s, c in CLASS_COLOURS.items())
        parts += ["<h2>Guest physical memory over the run</h2>",
                  f"<p>{legend}</p>",
                  "<img src='memory.png' alt='guest physical memory over the run'>",
                  f"<p>{len(picture.rows)} samples: at the start, after userspace exits, at "
                  "the end. The address axis is broken: RAM regions are drawn to scale, "
                  "holes (hatched), MMIO and firmware at a fixed width, each named and "
                  "its start address marked. A pixel column is drawn in a state's full "
                  "colour when all its RAM pages are in that state, and as \"some pages "
                  "shared\" (validated, private, not validated) when only some are: one "
                  "shared page anywhere in a column shows. The thin strip on top is the "
                  "whole run (per column, the most notable state of any sample), with such "
                  "columns widened to 5 pixels.</p>"]
    parts.append("<h2>Traces</h2><ul>")
    for t in traces:
        try:
            href = t.resolve().relative_to(directory.resolve()).as_posix()
        except ValueError:
            href = t.resolve().as_uri()
        kind = {".json": "Chrome trace event format: open in https://ui.perfetto.dev or "
                         "chrome://tracing",
                ".pftrace": "Perfetto trace: open in https://ui.perfetto.dev",
                ".jsonl": "JSON lines", ".txt": "call tree"}.get(t.suffix.lower(), "")
        parts.append(f"<li><a href='{html.escape(href)}'>{html.escape(t.name)}</a> "
                     f"{html.escape(kind)}</li>")
    if not traces:
        parts.append("<li>none (run with --trace FILE to record one)</li>")
    parts += ["</ul>", "<p><a href='summary.json'>summary.json</a></p>", "</body></html>"]
    index = directory / "index.html"
    with atomic_write(index) as f:
        f.write("\n".join(parts) + "\n")
    return index
