# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The VM save area (VMSA) of an SEV-ES/SNP vCPU, ``struct sev_es_save_area``, and the AP
INIT values Linux writes into a new one.

Offsets (bytes into the 4 KiB VMSA page) from ``struct sev_es_save_area`` in
``arch/x86/include/asm/svm.h`` (v6.17): the ten ``struct vmcb_seg`` (u16 selector, u16
attrib, u32 limit, u64 base; 16 bytes each) from 0x000 (es, cs, ss, ds, fs, gs, gdtr,
ldtr, idtr, tr), ``vmpl`` u8 at 0x0CA, ``cpl`` u8 at 0x0CB, ``efer`` 0x0D0, ``cr4``
0x148, ``cr0`` 0x158, ``dr7`` 0x160, ``dr6`` 0x168, ``rflags`` 0x170, ``rip`` 0x178,
``g_pat`` 0x268, ``sev_features`` 0x3B0, ``xcr0`` 0x3E8, ``mxcsr`` u32 0x408,
``x87_ftw`` u16 0x40C, ``x87_fcw`` u16 0x410.

AP INIT values: the ``AP_INIT_*`` macros at the top of ``arch/x86/coco/sev/core.c``
(v6.17), which that file says follow the APM vol 2 "Processor Initialization State";
``INIT_*_ATTRIBS`` built there from the SVM_SELECTOR_* bits of ``asm/svm.h`` (P 0x80, S
0x10, R 0x02, W 0x02, code 0x08).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "VmsaField",
    "VMSA_FIELDS",
    "VMSA_SEGMENTS",
    "VMSA_SEG_SIZE",
    "AP_INIT_CS_LIMIT",
    "AP_INIT_DS_LIMIT",
    "AP_INIT_RFLAGS_DEFAULT",
    "AP_INIT_DR6_DEFAULT",
    "AP_INIT_GPAT_DEFAULT",
    "AP_INIT_XCR0_DEFAULT",
    "AP_INIT_X87_FTW_DEFAULT",
    "AP_INIT_X87_FCW_DEFAULT",
    "AP_INIT_CR0_DEFAULT",
    "AP_INIT_MXCSR_DEFAULT",
    "DR7_RESET_VALUE",
    "EFER_SVME",
    "INIT_CS_ATTRIBS",
    "INIT_DS_ATTRIBS",
    "SVM_SEV_FEAT_SNP_ACTIVE",
]


class VmsaField(NamedTuple):
    """One named VMSA field: byte ``offset`` in the page and ``size`` in bytes."""

    offset: int
    size: int


#: Segment registers in VMSA order; segment ``i`` starts at ``i * VMSA_SEG_SIZE``.
VMSA_SEGMENTS = ("es", "cs", "ss", "ds", "fs", "gs", "gdtr", "ldtr", "idtr", "tr")
#: ``sizeof(struct vmcb_seg)``.
VMSA_SEG_SIZE = 16

#: The VMSA fields the model reads or writes (``cs.*``: the CS segment's members).
VMSA_FIELDS: dict[str, VmsaField] = {
    "cs.selector": VmsaField(0x010, 2),
    "cs.attrib": VmsaField(0x012, 2),
    "cs.limit": VmsaField(0x014, 4),
    "cs.base": VmsaField(0x018, 8),
    "vmpl": VmsaField(0x0CA, 1),
    "cpl": VmsaField(0x0CB, 1),
    "efer": VmsaField(0x0D0, 8),
    "cr4": VmsaField(0x148, 8),
    "cr0": VmsaField(0x158, 8),
    "dr7": VmsaField(0x160, 8),
    "dr6": VmsaField(0x168, 8),
    "rflags": VmsaField(0x170, 8),
    "rip": VmsaField(0x178, 8),
    "g_pat": VmsaField(0x268, 8),
    "sev_features": VmsaField(0x3B0, 8),
    "xcr0": VmsaField(0x3E8, 8),
    "mxcsr": VmsaField(0x408, 4),
    "x87_ftw": VmsaField(0x40C, 2),
    "x87_fcw": VmsaField(0x410, 2),
}

AP_INIT_CS_LIMIT = 0xFFFF
AP_INIT_DS_LIMIT = 0xFFFF
AP_INIT_RFLAGS_DEFAULT = 0x2
AP_INIT_DR6_DEFAULT = 0xFFFF0FF0
AP_INIT_GPAT_DEFAULT = 0x0007040600070406
AP_INIT_XCR0_DEFAULT = 0x1
AP_INIT_X87_FTW_DEFAULT = 0x5555
AP_INIT_X87_FCW_DEFAULT = 0x0040
AP_INIT_CR0_DEFAULT = 0x60000010
AP_INIT_MXCSR_DEFAULT = 0x1F80
#: ``DR7_RESET_VALUE`` (arch/x86/include/uapi/asm/debugreg.h).
DR7_RESET_VALUE = 0x400
#: ``EFER_SVME`` (bit 12, arch/x86/include/asm/msr-index.h).
EFER_SVME = 1 << 12
#: ``INIT_CS_ATTRIBS``: P | S | R | code.
INIT_CS_ATTRIBS = 0x80 | 0x10 | 0x02 | 0x08
#: ``INIT_DS_ATTRIBS``: P | S | W.
INIT_DS_ATTRIBS = 0x80 | 0x10 | 0x02
#: ``SVM_SEV_FEAT_SNP_ACTIVE`` (asm/svm.h): SEV_FEATURES bit 0.
SVM_SEV_FEAT_SNP_ACTIVE = 1 << 0
