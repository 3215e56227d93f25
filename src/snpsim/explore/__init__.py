# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Campaigns over host behaviours and vCPU schedules (``snpsim explore``, docs/explore.md).

A campaign draws runs from one seed (:func:`snpsim.explore.program.draw`): host
behaviours within declared bounds ("honest": scheduler seeds, schedules, PSC requests
completed in parts; "malicious": also misanswers to PSC, MSR-protocol and
KVM_HC_MAP_GPA_RANGE requests, host events such as attribute changes, hole punches,
RMPUPDATE, PSMASH, NPT changes, and VMM faults).  Each run is a scenario on the public
API (:mod:`snpsim.api`) with an :class:`Explorer` that installs the behaviours and the
invariants; a failing run is shrunk and written as a scenario file ``snpsim run``
replays.  This package imports only :mod:`snpsim.api`, :mod:`snpsim.spec`,
:mod:`snpsim.trace`, :mod:`snpsim.adversary` and :mod:`snpsim.scenarios.bugs`
(an import-linter contract and ``tests/explore/test_public_api_only.py``).
"""

from .explorer import INVARIANTS, Explorer
from .targets import TARGETS, load_target, target

__all__ = ["Explorer", "INVARIANTS", "TARGETS", "load_target", "target"]
