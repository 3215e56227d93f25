# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""GHCB MSR protocol: request/response codes, field packers and a decoder.

The GHCB MSR (``MSR_AMD64_SEV_ES_GHCB``, 0xC001_0130) holds either a GHCB GPA (bits
11:0 zero) or a protocol message: GHCBInfo in bits 11:0, GHCBData in bits 63:12.

Sources:
- Linux ``arch/x86/include/asm/sev-common.h`` (read at gregkh/linux 5ba594f2, v6.11+):
  every ``GHCB_MSR_*`` code and macro named here, ``GHCB_MSR_PSC_RESP_ERROR``,
  ``GHCB_MSR_PREF_GPA_NONE``, ``GHCB_HV_FT_SNP``/``_AP_CREATION``/``_MULTI_VMPL``.
- Hypervisor feature bits 2-4: GHCB spec 56421 via EDK2 ``Ghcb.h`` and COCONUT-SVSM
  (reference hardware-and-ghcb.md section 6.1); names here are model names.
- ``GHCB_HV_FT_SUPPORTED`` = SNP | SNP_AP_CREATION: KVM ``arch/x86/kvm/svm/sev.c``
  (kvm-qemu-host.md section 1.5).
- 0x003 (AP jump table, Hyper-V/OpenVMM naming) and 0xF00-0xF03 are not Linux codes; they
  decode as unknown.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .errors import SpecDecodeError
from .psc import PscOp
from .units import U64_MAX

__all__ = [
    "GHCB_MSR_INFO_POS",
    "GHCB_DATA_LOW",
    "GHCB_MSR_INFO_MASK",
    "GhcbMsrInfo",
    "GHCB_MSR_SEV_INFO_RESP",
    "GHCB_MSR_SEV_INFO_REQ",
    "GHCB_MSR_CPUID_REQ",
    "GHCB_MSR_CPUID_RESP",
    "GHCB_MSR_AP_RESET_HOLD_REQ",
    "GHCB_MSR_AP_RESET_HOLD_RESP",
    "GHCB_MSR_PREF_GPA_REQ",
    "GHCB_MSR_PREF_GPA_RESP",
    "GHCB_MSR_REG_GPA_REQ",
    "GHCB_MSR_REG_GPA_RESP",
    "GHCB_MSR_PSC_REQ",
    "GHCB_MSR_PSC_RESP",
    "GHCB_MSR_VMPL_REQ",
    "GHCB_MSR_VMPL_RESP",
    "GHCB_MSR_HV_FT_REQ",
    "GHCB_MSR_HV_FT_RESP",
    "GHCB_MSR_TERM_REQ",
    "GHCB_MSR_PSC_RESP_ERROR",
    "GHCB_MSR_PREF_GPA_NONE",
    "GHCB_MSR_GPA_VALUE_POS",
    "GHCB_MSR_GPA_VALUE_MASK",
    "GHCB_MSR_CPUID_FUNC_POS",
    "GHCB_MSR_CPUID_FUNC_MASK",
    "GHCB_MSR_CPUID_VALUE_POS",
    "GHCB_MSR_CPUID_VALUE_MASK",
    "GHCB_MSR_CPUID_REG_POS",
    "GHCB_MSR_CPUID_REG_MASK",
    "GHCB_CPUID_REQ_EAX",
    "GHCB_CPUID_REQ_EBX",
    "GHCB_CPUID_REQ_ECX",
    "GHCB_CPUID_REQ_EDX",
    "GHCB_MSR_AP_RESET_HOLD_RESULT_POS",
    "GHCB_MSR_AP_RESET_HOLD_RESULT_MASK",
    "GHCB_MSR_HV_FT_POS",
    "GHCB_MSR_HV_FT_MASK",
    "GHCB_MSR_TERM_REASON_SET_POS",
    "GHCB_MSR_TERM_REASON_SET_MASK",
    "GHCB_MSR_TERM_REASON_POS",
    "GHCB_MSR_TERM_REASON_MASK",
    "GhcbHvFeature",
    "GHCB_HV_FT_SNP",
    "GHCB_HV_FT_SNP_AP_CREATION",
    "GHCB_HV_FT_SNP_RESTRICTED_INJ",
    "GHCB_HV_FT_SNP_RESTRICTED_INJ_TIMER",
    "GHCB_HV_FT_APIC_ID_LIST",
    "GHCB_HV_FT_SNP_MULTI_VMPL",
    "GHCB_HV_FT_SUPPORTED",
    "GHCB_DATA",
    "GHCB_MSR_INFO",
    "GHCB_RESP_CODE",
    "GHCB_MSR_SEV_INFO",
    "GHCB_SEV_INFO",
    "GHCB_MSR_PROTO_MAX",
    "GHCB_MSR_PROTO_MIN",
    "GHCB_CPUID_REQ",
    "GHCB_MSR_CPUID_REQ_VAL",
    "GHCB_MSR_REG_GPA_REQ_VAL",
    "GHCB_MSR_REG_GPA_RESP_VAL",
    "GHCB_MSR_PSC_REQ_GFN",
    "GHCB_MSR_PSC_REQ_TO_GFN",
    "GHCB_MSR_PSC_REQ_TO_OP",
    "GHCB_MSR_PSC_RESP_VAL",
    "GHCB_MSR_VMPL_REQ_LEVEL",
    "GHCB_MSR_VMPL_RESP_VAL",
    "GHCB_MSR_HV_FT_RESP_VAL",
    "GHCB_SEV_TERM_REASON",
    "GHCB_MSR_TERM_REQ_VAL",
    "ghcb_msr_response",
    "MsrMessage",
    "decode_msr",
]

GHCB_MSR_INFO_POS = 0
#: First bit of GHCBData.  sev-common.h.
GHCB_DATA_LOW = 12
#: GHCBInfo mask, bits 11:0 (0xFFF).  sev-common.h.
GHCB_MSR_INFO_MASK = (1 << GHCB_DATA_LOW) - 1


class GhcbMsrInfo(enum.IntEnum):
    """GHCBInfo codes (bits 11:0 of the GHCB MSR).  Linux names; sev-common.h."""

    GHCB_MSR_SEV_INFO_RESP = 0x001
    GHCB_MSR_SEV_INFO_REQ = 0x002
    GHCB_MSR_CPUID_REQ = 0x004
    GHCB_MSR_CPUID_RESP = 0x005
    GHCB_MSR_AP_RESET_HOLD_REQ = 0x006
    GHCB_MSR_AP_RESET_HOLD_RESP = 0x007
    GHCB_MSR_PREF_GPA_REQ = 0x010
    GHCB_MSR_PREF_GPA_RESP = 0x011
    GHCB_MSR_REG_GPA_REQ = 0x012
    GHCB_MSR_REG_GPA_RESP = 0x013
    GHCB_MSR_PSC_REQ = 0x014
    GHCB_MSR_PSC_RESP = 0x015
    GHCB_MSR_VMPL_REQ = 0x016
    GHCB_MSR_VMPL_RESP = 0x017
    GHCB_MSR_HV_FT_REQ = 0x080
    GHCB_MSR_HV_FT_RESP = 0x081
    GHCB_MSR_TERM_REQ = 0x100


GHCB_MSR_SEV_INFO_RESP = GhcbMsrInfo.GHCB_MSR_SEV_INFO_RESP
GHCB_MSR_SEV_INFO_REQ = GhcbMsrInfo.GHCB_MSR_SEV_INFO_REQ
GHCB_MSR_CPUID_REQ = GhcbMsrInfo.GHCB_MSR_CPUID_REQ
GHCB_MSR_CPUID_RESP = GhcbMsrInfo.GHCB_MSR_CPUID_RESP
GHCB_MSR_AP_RESET_HOLD_REQ = GhcbMsrInfo.GHCB_MSR_AP_RESET_HOLD_REQ
GHCB_MSR_AP_RESET_HOLD_RESP = GhcbMsrInfo.GHCB_MSR_AP_RESET_HOLD_RESP
GHCB_MSR_PREF_GPA_REQ = GhcbMsrInfo.GHCB_MSR_PREF_GPA_REQ
GHCB_MSR_PREF_GPA_RESP = GhcbMsrInfo.GHCB_MSR_PREF_GPA_RESP
GHCB_MSR_REG_GPA_REQ = GhcbMsrInfo.GHCB_MSR_REG_GPA_REQ
GHCB_MSR_REG_GPA_RESP = GhcbMsrInfo.GHCB_MSR_REG_GPA_RESP
GHCB_MSR_PSC_REQ = GhcbMsrInfo.GHCB_MSR_PSC_REQ
GHCB_MSR_PSC_RESP = GhcbMsrInfo.GHCB_MSR_PSC_RESP
GHCB_MSR_VMPL_REQ = GhcbMsrInfo.GHCB_MSR_VMPL_REQ
GHCB_MSR_VMPL_RESP = GhcbMsrInfo.GHCB_MSR_VMPL_RESP
GHCB_MSR_HV_FT_REQ = GhcbMsrInfo.GHCB_MSR_HV_FT_REQ
GHCB_MSR_HV_FT_RESP = GhcbMsrInfo.GHCB_MSR_HV_FT_RESP
GHCB_MSR_TERM_REQ = GhcbMsrInfo.GHCB_MSR_TERM_REQ

#: KVM's generic PSC error answer: bit 63 | 0x015 = 0x8000_0000_0000_0015.  sev-common.h.
GHCB_MSR_PSC_RESP_ERROR = (1 << 63) | GHCB_MSR_PSC_RESP
#: "No preference" GFN in a PREF_GPA response: 52 one bits.  sev-common.h.
GHCB_MSR_PREF_GPA_NONE = 0xFFFFFFFFFFFFF
GHCB_MSR_GPA_VALUE_POS = 12
GHCB_MSR_GPA_VALUE_MASK = (1 << 52) - 1
GHCB_MSR_CPUID_FUNC_POS = 32
GHCB_MSR_CPUID_FUNC_MASK = 0xFFFFFFFF
GHCB_MSR_CPUID_VALUE_POS = 32
GHCB_MSR_CPUID_VALUE_MASK = 0xFFFFFFFF
GHCB_MSR_CPUID_REG_POS = 30
GHCB_MSR_CPUID_REG_MASK = 0x3
GHCB_CPUID_REQ_EAX = 0
GHCB_CPUID_REQ_EBX = 1
GHCB_CPUID_REQ_ECX = 2
GHCB_CPUID_REQ_EDX = 3
GHCB_MSR_AP_RESET_HOLD_RESULT_POS = 12
GHCB_MSR_AP_RESET_HOLD_RESULT_MASK = (1 << 52) - 1
GHCB_MSR_HV_FT_POS = 12
GHCB_MSR_HV_FT_MASK = (1 << 52) - 1
GHCB_MSR_TERM_REASON_SET_POS = 12
GHCB_MSR_TERM_REASON_SET_MASK = 0xF
GHCB_MSR_TERM_REASON_POS = 16
GHCB_MSR_TERM_REASON_MASK = 0xFF


class GhcbHvFeature(enum.IntFlag):
    """Hypervisor feature bitmap (HV_FT response GHCBData / NAE HV_FEATURES info2).

    Bits 0, 1, 5: Linux ``GHCB_HV_FT_*`` (sev-common.h).  Bits 2-4: GHCB spec 56421 via
    EDK2/SVSM; their names here are model names.  Other bits are unknown.
    """

    GHCB_HV_FT_SNP = 1 << 0
    GHCB_HV_FT_SNP_AP_CREATION = 1 << 1
    GHCB_HV_FT_SNP_RESTRICTED_INJ = 1 << 2
    GHCB_HV_FT_SNP_RESTRICTED_INJ_TIMER = 1 << 3
    GHCB_HV_FT_APIC_ID_LIST = 1 << 4
    GHCB_HV_FT_SNP_MULTI_VMPL = 1 << 5


GHCB_HV_FT_SNP = GhcbHvFeature.GHCB_HV_FT_SNP
GHCB_HV_FT_SNP_AP_CREATION = GhcbHvFeature.GHCB_HV_FT_SNP_AP_CREATION
GHCB_HV_FT_SNP_RESTRICTED_INJ = GhcbHvFeature.GHCB_HV_FT_SNP_RESTRICTED_INJ
GHCB_HV_FT_SNP_RESTRICTED_INJ_TIMER = GhcbHvFeature.GHCB_HV_FT_SNP_RESTRICTED_INJ_TIMER
GHCB_HV_FT_APIC_ID_LIST = GhcbHvFeature.GHCB_HV_FT_APIC_ID_LIST
GHCB_HV_FT_SNP_MULTI_VMPL = GhcbHvFeature.GHCB_HV_FT_SNP_MULTI_VMPL
#: What KVM advertises: SNP | SNP_AP_CREATION = 0x3 (arch/x86/kvm/svm/sev.c).
GHCB_HV_FT_SUPPORTED = GHCB_HV_FT_SNP | GHCB_HV_FT_SNP_AP_CREATION

_M64 = U64_MAX


def _bits(v: int, hi: int, lo: int) -> int:
    return (v >> lo) & ((1 << (hi - lo + 1)) - 1)


# ---- Linux macros (sev-common.h); every result is masked to a u64 -------------------


def GHCB_DATA(v: int) -> int:
    """GHCBData: ``(v & ~0xFFF) >> 12``."""
    return (v & _M64 & ~GHCB_MSR_INFO_MASK) >> GHCB_DATA_LOW


def GHCB_MSR_INFO(v: int) -> int:
    """GHCBInfo: ``v & 0xFFF``."""
    return v & 0xFFF


def GHCB_RESP_CODE(v: int) -> int:
    """Response code of an MSR value: ``v & GHCB_MSR_INFO_MASK``."""
    return v & GHCB_MSR_INFO_MASK


def GHCB_MSR_SEV_INFO(_max: int, _min: int, _cbit: int) -> int:
    """SEV_INFO response: max version [63:48], min [47:32], C-bit position [31:24], 0x001."""
    return (
        ((_max & 0xFFFF) << 48) | ((_min & 0xFFFF) << 32) | ((_cbit & 0xFF) << 24)
    ) | GHCB_MSR_SEV_INFO_RESP


#: Alias of :func:`GHCB_MSR_SEV_INFO` (the name used in the snpsim brief).
GHCB_SEV_INFO = GHCB_MSR_SEV_INFO


def GHCB_MSR_PROTO_MAX(v: int) -> int:
    """Max protocol version of a SEV_INFO response, bits 63:48."""
    return (v >> 48) & 0xFFFF


def GHCB_MSR_PROTO_MIN(v: int) -> int:
    """Min protocol version of a SEV_INFO response, bits 47:32."""
    return (v >> 32) & 0xFFFF


def GHCB_CPUID_REQ(fn: int, reg: int) -> int:
    """CPUID request: function [63:32], register [31:30] (0 EAX..3 EDX), 0x004."""
    return (GHCB_MSR_CPUID_REQ | ((reg & 0x3) << 30) | ((fn & 0xFFFFFFFF) << 32)) & _M64


#: Alias of :func:`GHCB_CPUID_REQ` (the name used in the snpsim brief).
GHCB_MSR_CPUID_REQ_VAL = GHCB_CPUID_REQ


def GHCB_MSR_REG_GPA_REQ_VAL(v: int) -> int:
    """Register-GHCB-GPA request for GFN ``v`` (masked to 52 bits) in [63:12], 0x012."""
    return ((v & ((1 << 52) - 1)) << 12) | GHCB_MSR_REG_GPA_REQ


def GHCB_MSR_REG_GPA_RESP_VAL(v: int) -> int:
    """GFN of a REG_GPA response, bits 63:12."""
    return (v & _M64) >> 12


def GHCB_MSR_PSC_REQ_GFN(gfn: int, op: int) -> int:
    """MSR PSC request: op [55:52] (4 bits), GFN [51:12] (40 bits), 0x014."""
    return ((op & 0xF) << 52) | ((gfn & ((1 << 40) - 1)) << 12) | GHCB_MSR_PSC_REQ


def GHCB_MSR_PSC_REQ_TO_GFN(msr: int) -> int:
    """GFN of an MSR PSC request, bits 51:12."""
    return _bits(msr, 51, 12)


def GHCB_MSR_PSC_REQ_TO_OP(msr: int) -> int:
    """Operation of an MSR PSC request, bits 55:52."""
    return _bits(msr, 55, 52)


def GHCB_MSR_PSC_RESP_VAL(val: int) -> int:
    """Error code of an MSR PSC response, bits 63:32 (0 = success)."""
    return _bits(val, 63, 32)


def GHCB_MSR_VMPL_REQ_LEVEL(v: int) -> int:
    """Run-at-VMPL request: VMPL in [39:32], 0x016.

    Written with the shift applied after masking (the intended meaning; reference
    hardware-and-ghcb.md notes a precedence slip in the C macro).
    """
    return ((v & 0xFF) << 32) | GHCB_MSR_VMPL_REQ


def GHCB_MSR_VMPL_RESP_VAL(v: int) -> int:
    """Result of a run-at-VMPL response, bits 63:32 (must be 0)."""
    return _bits(v, 63, 32)


def GHCB_MSR_HV_FT_RESP_VAL(v: int) -> int:
    """Feature bitmap of an HV_FT response, bits 63:12."""
    return (v & _M64) >> 12


def GHCB_SEV_TERM_REASON(reason_set: int, reason_val: int) -> int:
    """Termination reason bits: set [15:12] (4 bits), code [23:16] (8 bits); no info code."""
    return ((reason_set & 0xF) << 12) | ((reason_val & 0xFF) << 16)


def GHCB_MSR_TERM_REQ_VAL(reason_set: int, reason_code: int) -> int:
    """The whole termination MSR value: ``GHCB_SEV_TERM_REASON(...) | GHCB_MSR_TERM_REQ``.

    Model-only name (Linux writes the two parts inline in ``sev_es_terminate``).
    """
    return GHCB_SEV_TERM_REASON(reason_set, reason_code) | GHCB_MSR_TERM_REQ


def ghcb_msr_response(info: int, data: int) -> int:
    """Model-only: a hypervisor answer ``(data << 12) | info``, data masked to 52 bits.

    E.g. ``ghcb_msr_response(GHCB_MSR_REG_GPA_RESP, gfn)``,
    ``ghcb_msr_response(GHCB_MSR_HV_FT_RESP, GHCB_HV_FT_SUPPORTED)``,
    ``ghcb_msr_response(GHCB_MSR_PSC_RESP, err << 20)`` (error in [63:32]).
    KVM builds the same with ``set_ghcb_msr_bits``.
    """
    return ((data & ((1 << 52) - 1)) << 12) | (info & GHCB_MSR_INFO_MASK)


# ---- decoder -------------------------------------------------------------------------

_GUEST_TO_HV = "guest->hv"
_HV_TO_GUEST = "hv->guest"

_DIRECTION = {
    GHCB_MSR_SEV_INFO_RESP: _HV_TO_GUEST,
    GHCB_MSR_SEV_INFO_REQ: _GUEST_TO_HV,
    GHCB_MSR_CPUID_REQ: _GUEST_TO_HV,
    GHCB_MSR_CPUID_RESP: _HV_TO_GUEST,
    GHCB_MSR_AP_RESET_HOLD_REQ: _GUEST_TO_HV,
    GHCB_MSR_AP_RESET_HOLD_RESP: _HV_TO_GUEST,
    GHCB_MSR_PREF_GPA_REQ: _GUEST_TO_HV,
    GHCB_MSR_PREF_GPA_RESP: _HV_TO_GUEST,
    GHCB_MSR_REG_GPA_REQ: _GUEST_TO_HV,
    GHCB_MSR_REG_GPA_RESP: _HV_TO_GUEST,
    GHCB_MSR_PSC_REQ: _GUEST_TO_HV,
    GHCB_MSR_PSC_RESP: _HV_TO_GUEST,
    GHCB_MSR_VMPL_REQ: _GUEST_TO_HV,
    GHCB_MSR_VMPL_RESP: _HV_TO_GUEST,
    GHCB_MSR_HV_FT_REQ: _GUEST_TO_HV,
    GHCB_MSR_HV_FT_RESP: _HV_TO_GUEST,
    GHCB_MSR_TERM_REQ: _GUEST_TO_HV,
}


@dataclass
class MsrMessage:
    """A decoded GHCB MSR value.

    ``value`` the u64; ``info`` bits 11:0; ``name`` the :class:`GhcbMsrInfo` name,
    ``"GHCB_GPA"`` when bits 11:0 are 0 (the MSR then holds a GHCB GPA), or ``None`` for
    an unknown code; ``direction`` ``"guest->hv"``, ``"hv->guest"``, ``"either"`` (GPA) or
    ``"unknown"``; ``fields`` decoded fields (name -> int); ``notes`` readable facts (the
    operation name, the termination reason...); ``problems`` spec problems naming the
    field and value.
    """

    value: int
    info: int
    name: str | None
    direction: str
    fields: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "value": self.value,
            "info": self.info,
            "name": self.name,
            "direction": self.direction,
            "fields": dict(self.fields),
            "notes": list(self.notes),
            "problems": list(self.problems),
        }


def _must_be_zero(m: MsrMessage, hi: int, lo: int) -> None:
    v = _bits(m.value, hi, lo)
    if v:
        m.problems.append(f"bits[{hi}:{lo}]={v:#x}: reserved in this message, must be 0")


def decode_msr(value: int) -> MsrMessage:
    """Decode a GHCB MSR value (u64).

    Never raises for a u64; a value that is not an int in 0..2**64-1 raises
    :class:`SpecDecodeError`.  An unknown GHCBInfo code decodes with ``name=None`` and a
    problem saying so.  Layouts: sev-common.h; reference hardware-and-ghcb.md section 6.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise SpecDecodeError("msr", value if isinstance(value, int) else -1, "not a u64")
    info = value & GHCB_MSR_INFO_MASK
    if info == 0:
        m = MsrMessage(value, 0, "GHCB_GPA", "either", {"gpa": value})
        m.notes.append("bits 11:0 are 0: the MSR holds the GPA of a GHCB page, not a message")
        return m
    try:
        code = GhcbMsrInfo(info)
    except ValueError:
        m = MsrMessage(value, info, None, "unknown", {"data": GHCB_DATA(value)})
        m.problems.append(f"info={info:#05x}: unknown GHCB MSR protocol code")
        return m
    m = MsrMessage(value, info, code.name, _DIRECTION[code])
    f = m.fields
    if code in (
        GHCB_MSR_SEV_INFO_REQ,
        GHCB_MSR_AP_RESET_HOLD_REQ,
        GHCB_MSR_PREF_GPA_REQ,
        GHCB_MSR_HV_FT_REQ,
    ):
        _must_be_zero(m, 63, 12)
    elif code == GHCB_MSR_SEV_INFO_RESP:
        f["max_version"] = GHCB_MSR_PROTO_MAX(value)
        f["min_version"] = GHCB_MSR_PROTO_MIN(value)
        f["cbit"] = _bits(value, 31, 24)
        _must_be_zero(m, 23, 12)
        if f["min_version"] > f["max_version"]:
            m.problems.append(
                f"min_version={f['min_version']}: larger than max_version={f['max_version']}"
            )
    elif code == GHCB_MSR_CPUID_REQ:
        f["function"] = _bits(value, 63, 32)
        f["register"] = _bits(value, 31, 30)
        m.notes.append("register " + ("EAX", "EBX", "ECX", "EDX")[f["register"]])
        _must_be_zero(m, 29, 12)
    elif code == GHCB_MSR_CPUID_RESP:
        f["value"] = _bits(value, 63, 32)
        f["register"] = _bits(value, 31, 30)
    elif code == GHCB_MSR_AP_RESET_HOLD_RESP:
        f["result"] = GHCB_DATA(value)
        m.notes.append("woken by SIPI" if f["result"] else "not woken")
    elif code in (GHCB_MSR_PREF_GPA_RESP, GHCB_MSR_REG_GPA_REQ, GHCB_MSR_REG_GPA_RESP):
        f["gfn"] = GHCB_DATA(value)
        if code == GHCB_MSR_PREF_GPA_RESP and f["gfn"] == GHCB_MSR_PREF_GPA_NONE:
            m.notes.append("GHCB_MSR_PREF_GPA_NONE: no preference")
        else:
            m.notes.append(f"GPA {f['gfn'] << 12:#x}")
    elif code == GHCB_MSR_PSC_REQ:
        f["gfn"] = GHCB_MSR_PSC_REQ_TO_GFN(value)
        f["operation"] = GHCB_MSR_PSC_REQ_TO_OP(value)
        op = f["operation"]
        if op in (PscOp.SNP_PAGE_STATE_PRIVATE, PscOp.SNP_PAGE_STATE_SHARED):
            m.notes.append(f"operation {PscOp(op).name}, 4K page at GPA {f['gfn'] << 12:#x}")
        else:
            m.problems.append(
                f"operation={op}: the MSR protocol carries only 1 (private) and 2 (shared)"
            )
        _must_be_zero(m, 63, 56)
    elif code == GHCB_MSR_PSC_RESP:
        f["error_code"] = GHCB_MSR_PSC_RESP_VAL(value)
        if value == GHCB_MSR_PSC_RESP_ERROR:
            m.notes.append("GHCB_MSR_PSC_RESP_ERROR: KVM's generic error")
        m.notes.append("success" if f["error_code"] == 0 else "error")
        _must_be_zero(m, 31, 12)
    elif code == GHCB_MSR_VMPL_REQ:
        f["vmpl"] = _bits(value, 39, 32)
        _must_be_zero(m, 63, 40)
        _must_be_zero(m, 31, 12)
    elif code == GHCB_MSR_VMPL_RESP:
        f["result"] = GHCB_MSR_VMPL_RESP_VAL(value)
        m.notes.append("success" if f["result"] == 0 else "error")
        _must_be_zero(m, 31, 12)
    elif code == GHCB_MSR_HV_FT_RESP:
        feats = GHCB_MSR_HV_FT_RESP_VAL(value)
        f["features"] = feats
        known = 0
        for flag in GhcbHvFeature:
            if feats & flag:
                m.notes.append(flag.name or "")
                known |= flag
        if feats & ~known:
            f["unknown_feature_bits"] = feats & ~known
            m.notes.append(f"unknown feature bits {feats & ~known:#x}")
    elif code == GHCB_MSR_TERM_REQ:
        from .termination import describe_termination

        f["reason_set"] = _bits(value, 15, 12)
        f["reason_code"] = _bits(value, 23, 16)
        m.notes.append(describe_termination(f["reason_set"], f["reason_code"]))
        hi = _bits(value, 63, 24)
        if hi:
            m.problems.append(
                f"bits[63:24]={hi:#x}: not defined for a termination request (Linux writes 0)"
            )
    return m
