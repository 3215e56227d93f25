# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``fallocate(2)`` mode flags used on guest_memfd.

Source: ``include/uapi/linux/falloc.h``, read in torvalds/linux.
"""

from __future__ import annotations

__all__ = ["FALLOC_FL_KEEP_SIZE", "FALLOC_FL_PUNCH_HOLE"]

#: Default is extend size.
FALLOC_FL_KEEP_SIZE = 0x01
#: De-allocates range (must be ORed with KEEP_SIZE).
FALLOC_FL_PUNCH_HOLE = 0x02
