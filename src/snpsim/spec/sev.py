# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``enum es_result``: results of the guest's #VC emulation helpers.

Source: ``arch/x86/include/asm/sev.h`` (``enum es_result``), read in torvalds/linux and
in several later copies of the header; the values are the enum's implicit 0-5 and have
not changed since SEV-ES support was merged (v5.10).  The guest model
(:mod:`snpsim.guest.sev_vc`) returns them from ``sev_es_ghcb_hv_call`` and the #VC
handlers, as ``arch/x86/coco/sev/vc-shared.c`` does.
"""

from __future__ import annotations

import enum

__all__ = [
    "EsResult",
    "ES_OK",
    "ES_UNSUPPORTED",
    "ES_VMM_ERROR",
    "ES_DECODE_FAILED",
    "ES_EXCEPTION",
    "ES_RETRY",
]


class EsResult(enum.IntEnum):
    """``enum es_result`` (asm/sev.h)."""

    ES_OK = 0  # all good
    ES_UNSUPPORTED = 1  # requested operation not supported
    ES_VMM_ERROR = 2  # unexpected state from the VMM
    ES_DECODE_FAILED = 3  # instruction decoding failed
    ES_EXCEPTION = 4  # instruction caused exception
    ES_RETRY = 5  # retry instruction emulation


ES_OK = EsResult.ES_OK
ES_UNSUPPORTED = EsResult.ES_UNSUPPORTED
ES_VMM_ERROR = EsResult.ES_VMM_ERROR
ES_DECODE_FAILED = EsResult.ES_DECODE_FAILED
ES_EXCEPTION = EsResult.ES_EXCEPTION
ES_RETRY = EsResult.ES_RETRY
