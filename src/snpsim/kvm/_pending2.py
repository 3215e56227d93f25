"""Constants the host model needs that are not in ``spec/`` yet (a second holding place
beside ``spec_pending.py``, which another engineer is moving into ``spec/``).  Each
belongs in ``spec/`` later; the value and its source are given here.
"""

from __future__ import annotations

__all__ = ["HPAGE_PMD_ORDER", "MISSING_FROM_SPEC"]

#: ``HPAGE_PMD_ORDER`` (include/linux/huge_mm.h: ``HPAGE_PMD_SHIFT - PAGE_SHIFT``): a
#: 2 MiB folio is 2**9 4 KiB pages.  For spec/units.py.
HPAGE_PMD_ORDER = 9

#: Names to move into spec/.
MISSING_FROM_SPEC = ("HPAGE_PMD_ORDER",)
