# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""TLB flush tunable of the x86 guest kernel.

Source: ``arch/x86/mm/tlb.c``: ``unsigned long tlb_single_page_flush_ceiling
__read_mostly = 33;`` (read in torvalds/linux copies of tlb.c from v4.x on; runtime
tunable through debugfs, 33 is the boot value).  ``flush_tlb_kernel_range`` and
``cpa_flush`` flush page by page up to this many pages and flush everything above it.
"""

from __future__ import annotations

__all__ = ["tlb_single_page_flush_ceiling"]

#: Pages up to which a range flush is done page by page (boot value; a debugfs tunable).
tlb_single_page_flush_ceiling = 33
