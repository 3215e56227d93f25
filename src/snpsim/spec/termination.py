# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Guest termination requests: reason sets, reason codes and both wire forms.

Sources:
- Linux ``arch/x86/include/asm/sev-common.h`` (read at gregkh/linux 5ba594f2, v6.11+):
  ``SEV_TERM_SET_GEN``/``_LINUX``, ``GHCB_SEV_ES_GEN_REQ``, ``GHCB_SEV_ES_PROT_UNSUPPORTED``,
  ``GHCB_SNP_UNSUPPORTED``, ``GHCB_TERM_REGISTER`` .. ``GHCB_TERM_SVSM_CA_REMAP_FAIL`` (11).
- ``GHCB_TERM_SAVIC_FAIL`` = 12: the Secure AVIC patch to sev-common.h (LKML posting read
  via the code index); newest kernels only.
- MSR form (``GHCB_MSR_TERM_REQ`` 0x100): set [15:12], code [23:16] (sev-common.h).
- NAE form (``SVM_VMGEXIT_TERM_REQUEST``): sw_exit_info_1 set [3:0], code [11:4]
  (uapi/asm/svm.h ``SVM_VMGEXIT_TERM_REASON``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .errors import SpecDecodeError
from .msr_protocol import GHCB_MSR_INFO_MASK, GHCB_MSR_TERM_REQ
from .units import U64_MAX

__all__ = [
    "SevTermSet",
    "SEV_TERM_SET_GEN",
    "SEV_TERM_SET_LINUX",
    "SevTermGenReason",
    "GHCB_SEV_ES_GEN_REQ",
    "GHCB_SEV_ES_PROT_UNSUPPORTED",
    "GHCB_SNP_UNSUPPORTED",
    "SevTermLinuxReason",
    "GHCB_TERM_REGISTER",
    "GHCB_TERM_PSC",
    "GHCB_TERM_PVALIDATE",
    "GHCB_TERM_NOT_VMPL0",
    "GHCB_TERM_CPUID",
    "GHCB_TERM_CPUID_HV",
    "GHCB_TERM_SECRETS_PAGE",
    "GHCB_TERM_NO_SVSM",
    "GHCB_TERM_SVSM_VMPL0",
    "GHCB_TERM_SVSM_CAA",
    "GHCB_TERM_SECURE_TSC",
    "GHCB_TERM_SVSM_CA_REMAP_FAIL",
    "GHCB_TERM_SAVIC_FAIL",
    "describe_termination",
    "Termination",
    "decode_term_msr",
    "decode_term_nae",
]


class SevTermSet(enum.IntEnum):
    """Reason-code set (4 bits).  0 = general (GHCB spec), 1 = Linux-specific."""

    SEV_TERM_SET_GEN = 0
    SEV_TERM_SET_LINUX = 1


SEV_TERM_SET_GEN = SevTermSet.SEV_TERM_SET_GEN
SEV_TERM_SET_LINUX = SevTermSet.SEV_TERM_SET_LINUX


class SevTermGenReason(enum.IntEnum):
    """Reason codes of set 0 (general).  sev-common.h."""

    GHCB_SEV_ES_GEN_REQ = 0
    GHCB_SEV_ES_PROT_UNSUPPORTED = 1
    GHCB_SNP_UNSUPPORTED = 2


GHCB_SEV_ES_GEN_REQ = SevTermGenReason.GHCB_SEV_ES_GEN_REQ
GHCB_SEV_ES_PROT_UNSUPPORTED = SevTermGenReason.GHCB_SEV_ES_PROT_UNSUPPORTED
GHCB_SNP_UNSUPPORTED = SevTermGenReason.GHCB_SNP_UNSUPPORTED


class SevTermLinuxReason(enum.IntEnum):
    """Reason codes of set 1 (Linux).  sev-common.h; 12 from the Secure AVIC patch."""

    GHCB_TERM_REGISTER = 0
    GHCB_TERM_PSC = 1
    GHCB_TERM_PVALIDATE = 2
    GHCB_TERM_NOT_VMPL0 = 3
    GHCB_TERM_CPUID = 4
    GHCB_TERM_CPUID_HV = 5
    GHCB_TERM_SECRETS_PAGE = 6
    GHCB_TERM_NO_SVSM = 7
    GHCB_TERM_SVSM_VMPL0 = 8
    GHCB_TERM_SVSM_CAA = 9
    GHCB_TERM_SECURE_TSC = 10
    GHCB_TERM_SVSM_CA_REMAP_FAIL = 11
    GHCB_TERM_SAVIC_FAIL = 12


GHCB_TERM_REGISTER = SevTermLinuxReason.GHCB_TERM_REGISTER
GHCB_TERM_PSC = SevTermLinuxReason.GHCB_TERM_PSC
GHCB_TERM_PVALIDATE = SevTermLinuxReason.GHCB_TERM_PVALIDATE
GHCB_TERM_NOT_VMPL0 = SevTermLinuxReason.GHCB_TERM_NOT_VMPL0
GHCB_TERM_CPUID = SevTermLinuxReason.GHCB_TERM_CPUID
GHCB_TERM_CPUID_HV = SevTermLinuxReason.GHCB_TERM_CPUID_HV
GHCB_TERM_SECRETS_PAGE = SevTermLinuxReason.GHCB_TERM_SECRETS_PAGE
GHCB_TERM_NO_SVSM = SevTermLinuxReason.GHCB_TERM_NO_SVSM
GHCB_TERM_SVSM_VMPL0 = SevTermLinuxReason.GHCB_TERM_SVSM_VMPL0
GHCB_TERM_SVSM_CAA = SevTermLinuxReason.GHCB_TERM_SVSM_CAA
GHCB_TERM_SECURE_TSC = SevTermLinuxReason.GHCB_TERM_SECURE_TSC
GHCB_TERM_SVSM_CA_REMAP_FAIL = SevTermLinuxReason.GHCB_TERM_SVSM_CA_REMAP_FAIL
GHCB_TERM_SAVIC_FAIL = SevTermLinuxReason.GHCB_TERM_SAVIC_FAIL

_MEANING = {
    (0, 0): "general termination request",
    (0, 1): "GHCB protocol version not supported",
    (0, 2): "SNP features not supported",
    (1, 0): "GHCB GPA registration failure",
    (1, 1): "page state change failure",
    (1, 2): "PVALIDATE failure",
    (1, 3): "not running at VMPL0",
    (1, 4): "CPUID validation failure",
    (1, 5): "CPUID failure in the hypervisor fallback",
    (1, 6): "secrets page failure",
    (1, 7): "SVSM not advertised in the secrets page",
    (1, 8): "SVSM present but guest at VMPL0",
    (1, 9): "SVSM calling area not page aligned",
    (1, 10): "Secure TSC initialization failed",
    (1, 11): "SVSM calling area could not be remapped",
    (1, 12): "Secure AVIC failure",
}


def describe_termination(reason_set: int, reason_code: int) -> str:
    """Readable description, e.g. ``"SEV_TERM_SET_LINUX/GHCB_TERM_PSC: page state change
    failure"``; an unknown set or code is said to be unknown, never mapped to a neighbour.
    """
    if reason_set == SEV_TERM_SET_GEN and reason_code in SevTermGenReason._value2member_map_:
        name = SevTermGenReason(reason_code).name
    elif reason_set == SEV_TERM_SET_LINUX and reason_code in SevTermLinuxReason._value2member_map_:
        name = SevTermLinuxReason(reason_code).name
    else:
        set_name = (
            SevTermSet(reason_set).name
            if reason_set in SevTermSet._value2member_map_
            else f"set {reason_set}"
        )
        return f"{set_name}/code {reason_code}: unknown reason"
    return f"{SevTermSet(reason_set).name}/{name}: {_MEANING[(reason_set, reason_code)]}"


@dataclass
class Termination:
    """A decoded termination request (``form`` ``"msr"`` or ``"nae"``).  Model-only."""

    form: str
    value: int
    reason_set: int
    reason_code: int
    description: str
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "form": self.form,
            "value": self.value,
            "reason_set": self.reason_set,
            "reason_code": self.reason_code,
            "description": self.description,
            "problems": list(self.problems),
        }


def _check_u64(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise SpecDecodeError(name, value if isinstance(value, int) else -1, "not a u64")


def decode_term_msr(value: int) -> Termination:
    """Decode the MSR form: info 0x100, set [15:12], code [23:16].

    Problems: info code not 0x100, bits 63:24 set.  Raises :class:`SpecDecodeError` for a
    value that is not a u64.
    """
    _check_u64("msr", value)
    rs, rc = (value >> 12) & 0xF, (value >> 16) & 0xFF
    t = Termination("msr", value, rs, rc, describe_termination(rs, rc))
    info = value & GHCB_MSR_INFO_MASK
    if info != GHCB_MSR_TERM_REQ:
        t.problems.append(f"info={info:#05x}: not GHCB_MSR_TERM_REQ (0x100)")
    if value >> 24:
        t.problems.append(
            f"bits[63:24]={value >> 24:#x}: not defined for a termination request (Linux writes 0)"
        )
    return t


def decode_term_nae(info1: int) -> Termination:
    """Decode sw_exit_info_1 of ``SVM_VMGEXIT_TERM_REQUEST``: set [3:0], code [11:4].

    Problems: bits 63:12 set.  Raises :class:`SpecDecodeError` for a non-u64.
    """
    _check_u64("sw_exit_info_1", info1)
    rs, rc = info1 & 0xF, (info1 >> 4) & 0xFF
    t = Termination("nae", info1, rs, rc, describe_termination(rs, rc))
    if info1 >> 12:
        t.problems.append(
            f"bits[63:12]={info1 >> 12:#x}: not defined for a termination request (Linux writes 0)"
        )
    return t
