# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""IOIO intercept EXITINFO1: the format both sides of an SEV-ES/SNP port I/O use.

The hardware format is AMD APM vol 2 section 15.10.2 ("IN and OUT Behavior", IOIO
intercept EXITINFO1).  Linux has two sets of names for it, kept both here because the
model uses each where Linux does:

- the guest's, ``IOIO_*`` in ``arch/x86/coco/sev/vc-shared.c`` (earlier
  ``arch/x86/kernel/sev-shared.c`` / ``sev-es-shared.c``), used by ``vc_ioio_exitinfo``
  to build EXITINFO1 for the GHCB (read in several versions of that file; EDK2's
  ``CcExitVcHandler.c`` has the same values);
- KVM's, ``SVM_IOIO_*`` in ``arch/x86/include/asm/svm.h`` (read in torvalds/linux), used by
  ``io_interception`` and ``sev_es_validate_vmgexit`` to decode it.

Port number in bits 31:16: Linux writes ``<< 16`` / ``>> 16`` inline in both places
(``vc_ioio_exitinfo``, ``io_interception``); :data:`SVM_IOIO_PORT_SHIFT` is a model-only
name for that shift.
"""

from __future__ import annotations

__all__ = [
    "IOIO_TYPE_STR",
    "IOIO_TYPE_IN",
    "IOIO_TYPE_INS",
    "IOIO_TYPE_OUT",
    "IOIO_TYPE_OUTS",
    "IOIO_REP",
    "IOIO_ADDR_64",
    "IOIO_ADDR_32",
    "IOIO_ADDR_16",
    "IOIO_DATA_32",
    "IOIO_DATA_16",
    "IOIO_DATA_8",
    "IOIO_SEG_ES",
    "IOIO_SEG_DS",
    "SVM_IOIO_STR_SHIFT",
    "SVM_IOIO_REP_SHIFT",
    "SVM_IOIO_SIZE_SHIFT",
    "SVM_IOIO_ASIZE_SHIFT",
    "SVM_IOIO_TYPE_MASK",
    "SVM_IOIO_STR_MASK",
    "SVM_IOIO_REP_MASK",
    "SVM_IOIO_SIZE_MASK",
    "SVM_IOIO_ASIZE_MASK",
    "SVM_IOIO_PORT_SHIFT",
]

# ---- guest side: arch/x86/coco/sev/vc-shared.c ------------------------------------------

IOIO_TYPE_STR = 1 << 2
IOIO_TYPE_IN = 1
IOIO_TYPE_INS = IOIO_TYPE_IN | IOIO_TYPE_STR
IOIO_TYPE_OUT = 0
IOIO_TYPE_OUTS = IOIO_TYPE_OUT | IOIO_TYPE_STR

IOIO_REP = 1 << 3

IOIO_ADDR_64 = 1 << 9
IOIO_ADDR_32 = 1 << 8
IOIO_ADDR_16 = 1 << 7

IOIO_DATA_32 = 1 << 6
IOIO_DATA_16 = 1 << 5
IOIO_DATA_8 = 1 << 4

IOIO_SEG_ES = 0 << 10
IOIO_SEG_DS = 3 << 10

# ---- host side: arch/x86/include/asm/svm.h ----------------------------------------------

SVM_IOIO_STR_SHIFT = 2
SVM_IOIO_REP_SHIFT = 3
SVM_IOIO_SIZE_SHIFT = 4
SVM_IOIO_ASIZE_SHIFT = 7

#: Bit 0: 1 = IN, 0 = OUT.
SVM_IOIO_TYPE_MASK = 1
SVM_IOIO_STR_MASK = 1 << SVM_IOIO_STR_SHIFT
SVM_IOIO_REP_MASK = 1 << SVM_IOIO_REP_SHIFT
#: Bits 6:4, one-hot operand size (SZ8/SZ16/SZ32).
SVM_IOIO_SIZE_MASK = 7 << SVM_IOIO_SIZE_SHIFT
#: Bits 9:7, one-hot address size (A16/A32/A64).
SVM_IOIO_ASIZE_MASK = 7 << SVM_IOIO_ASIZE_SHIFT

#: Model-only name: the port is EXITINFO1 bits 31:16 (APM 15.10.2).
SVM_IOIO_PORT_SHIFT = 16
