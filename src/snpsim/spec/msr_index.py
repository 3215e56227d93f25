# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""SEV MSRs and the CPUID 0x8000001F bits the model uses.

Sources:
- ``arch/x86/include/asm/msr-index.h`` (read in the LKML posting "x86/sev: Show SEV
  features at boot", which restructured the block): ``MSR_AMD64_SEV_ES_GHCB``
  0xc0010130, ``MSR_AMD64_SEV`` 0xc0010131, ``MSR_AMD64_SEV_ENABLED_BIT`` 0,
  ``_ES_ENABLED_BIT`` 1, ``_SNP_ENABLED_BIT`` 2, ``MSR_AMD64_SNP_VTOM_BIT`` 3,
  ``REFLECT_VC`` 4, ``RESTRICTED_INJ`` 5, ``ALT_INJ`` 6, ``DEBUG_SWAP`` 7,
  ``PREVENT_HOST_IBS`` 8, ``BTB_ISOLATION`` 9, ``VMPL_SSS`` 10, ``SECURE_TSC`` 11,
  ``VMGEXIT_PARAM`` 12, ``RESERVED_BIT13``, ``IBS_VIRT`` 14, ``RESERVED_BIT15``,
  ``VMSA_REG_PROT`` 16, ``SMT_PROT`` 17, ``MSR_AMD64_SNP_RESV_BIT`` 18,
  ``MSR_AMD64_RMP_BASE`` 0xc0010132, ``MSR_AMD64_RMP_END`` 0xc0010133.
- The segmented RMP (read in the LKML posting "x86/sev: Add support for the RMP table
  segmented format", v6.14): ``MSR_AMD64_RMP_CFG`` 0xc0010136,
  ``MSR_AMD64_SEG_RMP_ENABLED_BIT`` 0, ``MSR_AMD64_RMP_SEGMENT_SHIFT(x)`` = bits 13:8;
  ``MSR_AMD64_SYSCFG`` 0xc0010010 with ``SNP_EN`` bit 24 and ``SNP_VMPL_EN`` bit 25
  (``__snp_enable``); CPUID 0x80000025 EAX[5:0] / EAX[11:6] the smallest / largest
  segment shift, EBX bit 10 "EBX[9:0] limits the RMP segment table" (
  ``probe_segmented_rmptable_info``, arch/x86/virt/svm/sev.c v6.14+).
- CPUID 0x8000001F: ``arch/x86/include/asm/cpufeatures.h`` word 19 is CPUID
  0x8000001F EAX: ``X86_FEATURE_SEV_ES`` (19*32+3), ``SEV_SNP`` (19*32+4),
  ``SME_COHERENT`` (19*32+10) (read).  SME = EAX bit 0, SEV = EAX bit 1 and the C-bit in
  EBX[5:0]: ``sme_enable``/``sev_check_cpu_support`` (reference linux-guest.md 1.1).
  ``X86_FEATURE_COHERENCY_SFW_NO`` is a synthetic feature (word 8 bit 4, read); that it
  mirrors EBX bit 31 is from the reference (``sev_snp_needs_sfw``), not re-read.
  EBX[11:6] physical-address reduction and EBX[15:12] number of VMPLs: APM vol 3
  (reference hardware-and-ghcb.md 1.2) [secondary].
"""

from __future__ import annotations

import enum

__all__ = [
    "MSR_IA32_APICBASE",
    "MSR_AMD64_SEV_ES_GHCB",
    "MSR_AMD64_SEV",
    "MSR_AMD64_RMP_BASE",
    "MSR_AMD64_RMP_END",
    "MSR_AMD64_RMP_CFG",
    "MSR_AMD64_SEG_RMP_ENABLED_BIT",
    "MSR_AMD64_SEG_RMP_ENABLED",
    "MSR_AMD64_RMP_SEGMENT_SHIFT",
    "MSR_AMD64_SYSCFG",
    "MSR_AMD64_SYSCFG_SNP_EN",
    "MSR_AMD64_SYSCFG_SNP_VMPL_EN",
    "CPUID_FN_RMP_SEGMENTS",
    "MSR_AMD64_SEV_ENABLED_BIT",
    "MSR_AMD64_SEV_ES_ENABLED_BIT",
    "MSR_AMD64_SEV_SNP_ENABLED_BIT",
    "MSR_AMD64_SNP_RESV_BIT",
    "SevStatus",
    "MSR_AMD64_SEV_ENABLED",
    "MSR_AMD64_SEV_ES_ENABLED",
    "MSR_AMD64_SEV_SNP_ENABLED",
    "MSR_AMD64_SNP_VTOM",
    "MSR_AMD64_SNP_REFLECT_VC",
    "MSR_AMD64_SNP_RESTRICTED_INJ",
    "MSR_AMD64_SNP_ALT_INJ",
    "MSR_AMD64_SNP_DEBUG_SWAP",
    "MSR_AMD64_SNP_PREVENT_HOST_IBS",
    "MSR_AMD64_SNP_BTB_ISOLATION",
    "MSR_AMD64_SNP_VMPL_SSS",
    "MSR_AMD64_SNP_SECURE_TSC",
    "MSR_AMD64_SNP_VMGEXIT_PARAM",
    "MSR_AMD64_SNP_IBS_VIRT",
    "MSR_AMD64_SNP_VMSA_REG_PROT",
    "MSR_AMD64_SNP_SMT_PROT",
    "MSR_AMD64_SNP_RESERVED_BIT13",
    "MSR_AMD64_SNP_RESERVED_BIT15",
    "MSR_AMD64_SNP_RESERVED_MASK",
    "CPUID_FN_SEV",
    "CPUID_8000001F_EAX_SME",
    "CPUID_8000001F_EAX_SEV",
    "CPUID_8000001F_EAX_SEV_ES",
    "CPUID_8000001F_EAX_SEV_SNP",
    "CPUID_8000001F_EAX_SME_COHERENT",
    "CPUID_8000001F_EBX_CBIT_MASK",
    "CPUID_8000001F_EBX_PHYS_ADDR_REDUCTION_SHIFT",
    "CPUID_8000001F_EBX_PHYS_ADDR_REDUCTION_MASK",
    "CPUID_8000001F_EBX_NUM_VMPL_SHIFT",
    "CPUID_8000001F_EBX_NUM_VMPL_MASK",
    "CPUID_8000001F_EBX_COHERENCY_SFW_NO",
    "cpuid_cbit",
]

#: The local APIC base MSR (msr-index.h ``MSR_IA32_APICBASE`` 0x0000001b): intercepted
#: for an SEV-ES/SNP guest, so a read is a #VC 0x7c answered through the GHCB.
MSR_IA32_APICBASE = 0x1B
#: The GHCB MSR: a GHCB GPA or a GHCB MSR-protocol message.  msr-index.h.
MSR_AMD64_SEV_ES_GHCB = 0xC0010130
#: SEV status MSR (read-only in the guest).  msr-index.h.
MSR_AMD64_SEV = 0xC0010131
MSR_AMD64_RMP_BASE = 0xC0010132
MSR_AMD64_RMP_END = 0xC0010133
#: RMP configuration: bit 0 segmented RMP enabled, bits 13:8 the segment shift.
MSR_AMD64_RMP_CFG = 0xC0010136
MSR_AMD64_SEG_RMP_ENABLED_BIT = 0
MSR_AMD64_SEG_RMP_ENABLED = 1 << MSR_AMD64_SEG_RMP_ENABLED_BIT
#: SYSCFG: SNP_EN (bit 24) turns the RMP checks on; SNP_VMPL_EN (bit 25).
MSR_AMD64_SYSCFG = 0xC0010010
MSR_AMD64_SYSCFG_SNP_EN = 1 << 24
MSR_AMD64_SYSCFG_SNP_VMPL_EN = 1 << 25
#: CPUID leaf giving the segment shift bounds (EAX) and the RST index limit (EBX).
CPUID_FN_RMP_SEGMENTS = 0x80000025


def MSR_AMD64_RMP_SEGMENT_SHIFT(rmp_cfg: int) -> int:  # noqa: N802 - the Linux macro's name
    """The segment shift (log2 of the bytes one RMP segment covers) in RMP_CFG[13:8]."""
    return (rmp_cfg >> 8) & 0x3F
MSR_AMD64_SEV_ENABLED_BIT = 0
MSR_AMD64_SEV_ES_ENABLED_BIT = 1
MSR_AMD64_SEV_SNP_ENABLED_BIT = 2
#: First reserved bit of ``MSR_AMD64_SEV``; bits 63:18 are reserved.
MSR_AMD64_SNP_RESV_BIT = 18


class SevStatus(enum.IntFlag):
    """Bits of ``MSR_AMD64_SEV`` (u64).  msr-index.h; names in Linux's status print:
    SEV, SEV-ES, SEV-SNP, vTom, ReflectVC, RI, AI, DebugSwap, NoHostIBS, BTBIsol,
    VmplSSS, SecureTSC, VMGExitParam, IBSVirt, VMSARegProt, SMTProt."""

    MSR_AMD64_SEV_ENABLED = 1 << 0
    MSR_AMD64_SEV_ES_ENABLED = 1 << 1
    MSR_AMD64_SEV_SNP_ENABLED = 1 << 2
    MSR_AMD64_SNP_VTOM = 1 << 3
    MSR_AMD64_SNP_REFLECT_VC = 1 << 4
    MSR_AMD64_SNP_RESTRICTED_INJ = 1 << 5
    MSR_AMD64_SNP_ALT_INJ = 1 << 6
    MSR_AMD64_SNP_DEBUG_SWAP = 1 << 7
    MSR_AMD64_SNP_PREVENT_HOST_IBS = 1 << 8
    MSR_AMD64_SNP_BTB_ISOLATION = 1 << 9
    MSR_AMD64_SNP_VMPL_SSS = 1 << 10
    MSR_AMD64_SNP_SECURE_TSC = 1 << 11
    MSR_AMD64_SNP_VMGEXIT_PARAM = 1 << 12
    MSR_AMD64_SNP_IBS_VIRT = 1 << 14
    MSR_AMD64_SNP_VMSA_REG_PROT = 1 << 16
    MSR_AMD64_SNP_SMT_PROT = 1 << 17


MSR_AMD64_SEV_ENABLED = SevStatus.MSR_AMD64_SEV_ENABLED
MSR_AMD64_SEV_ES_ENABLED = SevStatus.MSR_AMD64_SEV_ES_ENABLED
MSR_AMD64_SEV_SNP_ENABLED = SevStatus.MSR_AMD64_SEV_SNP_ENABLED
MSR_AMD64_SNP_VTOM = SevStatus.MSR_AMD64_SNP_VTOM
MSR_AMD64_SNP_REFLECT_VC = SevStatus.MSR_AMD64_SNP_REFLECT_VC
MSR_AMD64_SNP_RESTRICTED_INJ = SevStatus.MSR_AMD64_SNP_RESTRICTED_INJ
MSR_AMD64_SNP_ALT_INJ = SevStatus.MSR_AMD64_SNP_ALT_INJ
MSR_AMD64_SNP_DEBUG_SWAP = SevStatus.MSR_AMD64_SNP_DEBUG_SWAP
MSR_AMD64_SNP_PREVENT_HOST_IBS = SevStatus.MSR_AMD64_SNP_PREVENT_HOST_IBS
MSR_AMD64_SNP_BTB_ISOLATION = SevStatus.MSR_AMD64_SNP_BTB_ISOLATION
MSR_AMD64_SNP_VMPL_SSS = SevStatus.MSR_AMD64_SNP_VMPL_SSS
MSR_AMD64_SNP_SECURE_TSC = SevStatus.MSR_AMD64_SNP_SECURE_TSC
MSR_AMD64_SNP_VMGEXIT_PARAM = SevStatus.MSR_AMD64_SNP_VMGEXIT_PARAM
MSR_AMD64_SNP_IBS_VIRT = SevStatus.MSR_AMD64_SNP_IBS_VIRT
MSR_AMD64_SNP_VMSA_REG_PROT = SevStatus.MSR_AMD64_SNP_VMSA_REG_PROT
MSR_AMD64_SNP_SMT_PROT = SevStatus.MSR_AMD64_SNP_SMT_PROT
MSR_AMD64_SNP_RESERVED_BIT13 = 1 << 13
MSR_AMD64_SNP_RESERVED_BIT15 = 1 << 15
#: Bits 63:18.
MSR_AMD64_SNP_RESERVED_MASK = ((1 << 64) - 1) & ~((1 << MSR_AMD64_SNP_RESV_BIT) - 1)

#: CPUID function of the memory-encryption leaf.
CPUID_FN_SEV = 0x8000001F
CPUID_8000001F_EAX_SME = 1 << 0
CPUID_8000001F_EAX_SEV = 1 << 1
CPUID_8000001F_EAX_SEV_ES = 1 << 3
CPUID_8000001F_EAX_SEV_SNP = 1 << 4
#: ``X86_FEATURE_SME_COHERENT`` (19*32+10): hardware-enforced cache coherency.
CPUID_8000001F_EAX_SME_COHERENT = 1 << 10
#: EBX[5:0]: C-bit position.
CPUID_8000001F_EBX_CBIT_MASK = 0x3F
CPUID_8000001F_EBX_PHYS_ADDR_REDUCTION_SHIFT = 6
CPUID_8000001F_EBX_PHYS_ADDR_REDUCTION_MASK = 0x3F
CPUID_8000001F_EBX_NUM_VMPL_SHIFT = 12
CPUID_8000001F_EBX_NUM_VMPL_MASK = 0xF
#: EBX[31]: the SNP cache-coherency software workaround is not needed.
CPUID_8000001F_EBX_COHERENCY_SFW_NO = 1 << 31


def cpuid_cbit(ebx: int) -> int:
    """C-bit position from CPUID 0x8000001F EBX (bits 5:0); 51 on Milan/Genoa [unconfirmed]."""
    return ebx & CPUID_8000001F_EBX_CBIT_MASK
