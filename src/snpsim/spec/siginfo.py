# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Signal numbers and ``si_code`` values used when the guest kernel kills a task.

Source: Linux ``include/uapi/asm-generic/signal.h`` (x86 uses the generic numbering:
``SIGBUS`` 7) and ``include/uapi/asm-generic/siginfo.h`` (``BUS_OBJERR`` 3, "object
specific hardware error"), v6.16.
"""

from __future__ import annotations

__all__ = ["SIGBUS", "BUS_OBJERR"]

SIGBUS = 7
BUS_OBJERR = 3
