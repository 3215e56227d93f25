# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""snpsim.trace: record what runs, across guest, CPU, KVM and VMM, and export it.

Model-only (the counterparts are ftrace's function_graph and Perfetto).  Imports only
the standard library and ``snpsim.spec``; every other layer may import it.

- ``events``: the typed events ``Enter``, ``Leave``, ``Instant``, ``Switch``.
- ``record``: the tracer in force (``NullTracer`` by default, costing one check per
  traced call), ``Recorder``, ``tracing()``, the ``traced`` decorator,
  ``emit_instant``/``emit_switch``, ``set_context_resolver``, filters.
- ``export_tree`` / ``export_jsonl`` / ``export_chrome``: the ``=>`` tree, JSON lines,
  Chrome trace-event JSON; ``export.write_trace`` picks one by file suffix.

See ``docs/trace.md``.
"""

from .events import *  # noqa: F403
from .events import __all__ as _events_all
from .export import *  # noqa: F403
from .export import __all__ as _export_all
from .export_chrome import *  # noqa: F403
from .export_chrome import __all__ as _chrome_all
from .export_jsonl import *  # noqa: F403
from .export_jsonl import __all__ as _jsonl_all
from .export_tree import *  # noqa: F403
from .export_tree import __all__ as _tree_all
from .record import *  # noqa: F403
from .record import __all__ as _record_all

__all__ = [*_events_all, *_record_all, *_tree_all, *_jsonl_all, *_chrome_all, *_export_all]
