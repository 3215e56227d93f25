# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Constants private to KVM's SEV support, ``arch/x86/kvm/svm/sev.c``.

Source: ``arch/x86/kvm/svm/sev.c`` read in torvalds/linux (v6.1x): ``GHCB_VERSION_MAX``
2ULL, ``GHCB_VERSION_DEFAULT`` 2ULL, ``GHCB_VERSION_MIN`` 1ULL, ``INITIAL_VMSA_GPA``
0xFFFFFFFFF000 (near the top of the file); ``GHCB_SCRATCH_AREA_LIMIT`` ``(16ULL *
PAGE_SIZE)`` just above ``setup_vmgexit_scratch`` (read in several versions).  These are
KVM's bounds, not the guest's: the guest's own protocol range is ``GHCB_PROTOCOL_MIN/MAX``
in :mod:`snpsim.spec.ghcb` (asm/sev.h).
"""

from __future__ import annotations

from .units import PAGE_SIZE

__all__ = [
    "GHCB_VERSION_MAX",
    "GHCB_VERSION_DEFAULT",
    "GHCB_VERSION_MIN",
    "GHCB_SCRATCH_AREA_LIMIT",
    "INITIAL_VMSA_GPA",
]

#: Highest GHCB protocol version KVM accepts in ``KVM_SEV_INIT2``.
GHCB_VERSION_MAX = 2
#: Version KVM_SEV_INIT2 picks for an SEV-ES/SNP VM that passes ``ghcb_version`` 0.
GHCB_VERSION_DEFAULT = 2
#: Version of the deprecated ``KVM_SEV_ES_INIT`` path.
GHCB_VERSION_MIN = 1
#: Largest scratch area outside the GHCB shared buffer KVM will bounce (64 KiB).
GHCB_SCRATCH_AREA_LIMIT = 16 * PAGE_SIZE
#: GPA KVM reports for the initial VMSA of an SNP vCPU.
INITIAL_VMSA_GPA = 0xFFFFFFFFF000
