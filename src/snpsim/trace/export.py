# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``write_trace``: write a trace in the format its file name asks for.

Model-only (no kernel twin).  Suffixes: ``.txt`` the indented ``=>`` tree
(``export_tree``), ``.jsonl`` JSON lines (``export_jsonl``), ``.json`` Chrome
trace-event JSON (``export_chrome``), ``.pftrace`` Perfetto's protobuf trace
(``export_perfetto``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .atomic import atomic_write
from .events import TraceEvent
from .export_chrome import write_chrome
from .export_jsonl import write_jsonl
from .export_perfetto import write_perfetto
from .export_tree import format_tree

__all__ = ["write_trace", "TRACE_SUFFIXES"]

#: File suffixes ``write_trace`` understands, and the format each selects.
TRACE_SUFFIXES = {".txt": "tree", ".jsonl": "jsonl", ".json": "chrome", ".pftrace": "perfetto"}


def write_trace(events: Iterable[TraceEvent], path: str | Path, *, root: str | None = None) -> None:
    """Write ``events`` to ``path`` in the format its suffix selects (case-insensitive).

    ``root`` is passed to ``format_tree`` for ``.txt`` and ignored otherwise.  The file
    is written through :func:`atomic_write`: it appears whole or not at all.  Raises
    ``ValueError`` for any other suffix, before creating the file; ``OSError`` as
    ``open`` and ``write`` do (the destination is then unchanged).
    """
    p = Path(path)
    kind = TRACE_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise ValueError(
            f"trace file {str(p)!r}: unknown suffix {p.suffix!r} "
            f"(use {', '.join(TRACE_SUFFIXES)}: tree, JSON lines, Chrome trace JSON)"
        )
    if kind == "perfetto":
        write_perfetto(events, p)
        return
    evs = list(events)
    with atomic_write(p) as f:
        if kind == "tree":
            text = format_tree(evs, root=root)
            f.write(text + "\n" if text else "")
        elif kind == "jsonl":
            write_jsonl(evs, f)
        else:
            write_chrome(evs, f)
