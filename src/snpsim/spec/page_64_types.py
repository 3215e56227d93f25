# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""x86-64 virtual memory layout constants the guest model builds its page tables with.

Sources:
- ``__PAGE_OFFSET_BASE_L4`` 0xffff888000000000 (the direct map under 4-level paging)
  and ``__START_KERNEL_map`` 0xffffffff80000000 (the kernel image alias):
  ``arch/x86/include/asm/page_64_types.h``, read in torvalds/linux.  With
  ``CONFIG_DYNAMIC_MEMORY_LAYOUT`` (KASLR) ``PAGE_OFFSET`` is ``page_offset_base``, which
  starts at ``__PAGE_OFFSET_BASE_L4``; the model runs without KASLR, so
  ``PAGE_OFFSET`` = ``__PAGE_OFFSET_BASE_L4``.
- ``CONFIG_PHYSICAL_START`` 0x1000000 (16 MiB), where a non-relocated kernel is loaded
  (``LOAD_PHYSICAL_ADDR``): the ``config PHYSICAL_START`` default in ``arch/x86/Kconfig``
  (read in Kconfig hunks of several patches; unchanged since v2.6.31).
"""

from __future__ import annotations

__all__ = [
    "__PAGE_OFFSET_BASE_L4",
    "PAGE_OFFSET",
    "__START_KERNEL_map",
    "CONFIG_PHYSICAL_START",
]

__PAGE_OFFSET_BASE_L4 = 0xFFFF888000000000
#: ``PAGE_OFFSET``: start of the direct map of all physical memory (4-level, no KASLR).
PAGE_OFFSET = __PAGE_OFFSET_BASE_L4
#: Virtual address at which physical address 0 of the kernel image is mapped.
__START_KERNEL_map = 0xFFFFFFFF80000000
#: Kconfig default of ``CONFIG_PHYSICAL_START`` (arch/x86/Kconfig).
CONFIG_PHYSICAL_START = 0x1000000
