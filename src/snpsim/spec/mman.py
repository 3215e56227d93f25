# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``madvise(2)`` advice values the host model uses on shared guest memory.

Source: ``include/uapi/asm-generic/mman-common.h``, read in torvalds/linux (x86 uses the
generic values).
"""

from __future__ import annotations

__all__ = ["MADV_DONTNEED", "MADV_REMOVE"]

#: Don't need these pages (anonymous memory reads back as zero afterwards).
MADV_DONTNEED = 4
#: Remove these pages and their backing store (punches a hole in shmem/tmpfs).
MADV_REMOVE = 9
