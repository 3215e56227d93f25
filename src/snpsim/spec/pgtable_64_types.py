# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""x86-64 kernel virtual memory layout constants for 4-level paging, no KASLR.

Source: Linux ``arch/x86/include/asm/pgtable_64_types.h`` and
``Documentation/arch/x86/x86_64/mm.rst`` (v6.16): the vmalloc/ioremap space starts at
0xffffc90000000000 and is 32 TB (``VMALLOC_SIZE_TB`` 32 for 4-level paging).
"""

from __future__ import annotations

__all__ = ["VMALLOC_START", "VMALLOC_SIZE_TB", "VMALLOC_END"]

VMALLOC_START = 0xFFFFC90000000000
VMALLOC_SIZE_TB = 32
VMALLOC_END = VMALLOC_START + (VMALLOC_SIZE_TB << 40) - 1
