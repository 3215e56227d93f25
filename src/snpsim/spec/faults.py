# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Fault vectors and error-code bits: #VC, #NPF EXITINFO1 (PFERR_*), host #PF (X86_PF_*).

Sources:
- ``PFERR_*_BIT``/``_MASK``: ``arch/x86/include/asm/kvm_host.h`` as in the merged SNP
  patch "KVM: SEV: add SNP #NPF error code bits" (LKML postings read via the code index):
  RMP 31, FINAL 32, PAGE 33, ENC 34, SIZEM 35, VMPL 36; PK 5, SGX 15,
  ``PFERR_IMPLICIT_ACCESS`` 48; ``PFERR_PRIVATE_ACCESS`` 49 (KVM synthetic, reference
  kvm-qemu-host.md 1.7).  Bit 6 shadow stack, 37 SSS and 63 not-restartable: OpenVMM
  ``SevNpfInfo`` (reference hardware-and-ghcb.md 1.4); those names are model names.
- ``enum x86_pf_error_code``: ``arch/x86/include/asm/trap_pf.h`` (read in a v6.x copy):
  PROT 0, WRITE 1, USER 2, RSVD 3, INSTR 4, PK 5, SHSTK 6, SGX 15, RMP 31.
- Vectors: ``arch/x86/include/asm/trapnr.h`` (#UD 6, #GP 13, #PF 14, #HV 28, #VC 29).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import SpecDecodeError
from .units import U64_MAX

__all__ = [
    "X86_TRAP_UD",
    "X86_TRAP_GP",
    "X86_TRAP_PF",
    "X86_TRAP_HV",
    "X86_TRAP_VC",
    "PFERR",
    "PFERR_PRESENT_MASK",
    "PFERR_WRITE_MASK",
    "PFERR_USER_MASK",
    "PFERR_RSVD_MASK",
    "PFERR_FETCH_MASK",
    "PFERR_PK_MASK",
    "PFERR_SS_MASK",
    "PFERR_SGX_MASK",
    "PFERR_GUEST_RMP_MASK",
    "PFERR_GUEST_FINAL_MASK",
    "PFERR_GUEST_PAGE_MASK",
    "PFERR_GUEST_ENC_MASK",
    "PFERR_GUEST_SIZEM_MASK",
    "PFERR_GUEST_VMPL_MASK",
    "PFERR_GUEST_SSS_MASK",
    "PFERR_IMPLICIT_ACCESS",
    "PFERR_PRIVATE_ACCESS",
    "PFERR_NOT_RESTARTABLE_MASK",
    "X86_PF",
    "X86_PF_PROT",
    "X86_PF_WRITE",
    "X86_PF_USER",
    "X86_PF_RSVD",
    "X86_PF_INSTR",
    "X86_PF_PK",
    "X86_PF_SHSTK",
    "X86_PF_SGX",
    "X86_PF_RMP",
    "ErrorCodeDecode",
    "decode_npf_error_code",
    "decode_pf_error_code",
]

X86_TRAP_UD = 6
X86_TRAP_GP = 13
X86_TRAP_PF = 14
#: #HV, hypervisor injection exception (28).
X86_TRAP_HV = 28
#: #VC, VMM communication exception (29); its error code is an SVM exit code.
X86_TRAP_VC = 29


class PFERR(enum.IntFlag):
    """#NPF EXITINFO1 / KVM page-fault error code bits (u64).  See module sources."""

    PRESENT = 1 << 0
    WRITE = 1 << 1
    USER = 1 << 2
    RSVD = 1 << 3
    FETCH = 1 << 4
    PK = 1 << 5
    SS = 1 << 6
    SGX = 1 << 15
    GUEST_RMP = 1 << 31
    GUEST_FINAL = 1 << 32
    GUEST_PAGE = 1 << 33
    GUEST_ENC = 1 << 34
    GUEST_SIZEM = 1 << 35
    GUEST_VMPL = 1 << 36
    GUEST_SSS = 1 << 37
    IMPLICIT_ACCESS = 1 << 48
    PRIVATE_ACCESS = 1 << 49
    NOT_RESTARTABLE = 1 << 63


PFERR_PRESENT_MASK = PFERR.PRESENT
PFERR_WRITE_MASK = PFERR.WRITE
PFERR_USER_MASK = PFERR.USER
PFERR_RSVD_MASK = PFERR.RSVD
PFERR_FETCH_MASK = PFERR.FETCH
PFERR_PK_MASK = PFERR.PK
#: Bit 6, shadow-stack access (OpenVMM; model name).
PFERR_SS_MASK = PFERR.SS
PFERR_SGX_MASK = PFERR.SGX
#: Bit 31: the RMP (or VMPL) check failed.
PFERR_GUEST_RMP_MASK = PFERR.GUEST_RMP
#: Bit 32: fault on the final GPA.
PFERR_GUEST_FINAL_MASK = PFERR.GUEST_FINAL
#: Bit 33: fault during the guest page-table walk.
PFERR_GUEST_PAGE_MASK = PFERR.GUEST_PAGE
#: Bit 34: the access had effective C-bit 1 (private).
PFERR_GUEST_ENC_MASK = PFERR.GUEST_ENC
#: Bit 35: page-size mismatch (e.g. 4K PVALIDATE on a 2M RMP entry).
PFERR_GUEST_SIZEM_MASK = PFERR.GUEST_SIZEM
#: Bit 36: VMPL permission failure.
PFERR_GUEST_VMPL_MASK = PFERR.GUEST_VMPL
#: Bit 37: copy of the VMPL mask SSS bit (OpenVMM; model name).
PFERR_GUEST_SSS_MASK = PFERR.GUEST_SSS
#: Bit 48, KVM-synthetic: implicit access.
PFERR_IMPLICIT_ACCESS = PFERR.IMPLICIT_ACCESS
#: Bit 49, KVM-synthetic: the fault is on a private GPA.
PFERR_PRIVATE_ACCESS = PFERR.PRIVATE_ACCESS
#: Bit 63: not restartable (OpenVMM; model name).
PFERR_NOT_RESTARTABLE_MASK = PFERR.NOT_RESTARTABLE


class X86_PF(enum.IntFlag):
    """Host #PF error code, ``enum x86_pf_error_code`` (asm/trap_pf.h)."""

    X86_PF_PROT = 1 << 0
    X86_PF_WRITE = 1 << 1
    X86_PF_USER = 1 << 2
    X86_PF_RSVD = 1 << 3
    X86_PF_INSTR = 1 << 4
    X86_PF_PK = 1 << 5
    X86_PF_SHSTK = 1 << 6
    X86_PF_SGX = 1 << 15
    X86_PF_RMP = 1 << 31


X86_PF_PROT = X86_PF.X86_PF_PROT
X86_PF_WRITE = X86_PF.X86_PF_WRITE
X86_PF_USER = X86_PF.X86_PF_USER
X86_PF_RSVD = X86_PF.X86_PF_RSVD
X86_PF_INSTR = X86_PF.X86_PF_INSTR
X86_PF_PK = X86_PF.X86_PF_PK
X86_PF_SHSTK = X86_PF.X86_PF_SHSTK
X86_PF_SGX = X86_PF.X86_PF_SGX
#: Bit 31: the host access failed an RMP check.
X86_PF_RMP = X86_PF.X86_PF_RMP


@dataclass
class ErrorCodeDecode:
    """A decoded error code: ``names`` of the known bits set, ``unknown_bits`` (a mask of
    set bits no name covers), ``notes`` (readable remarks).  Model-only."""

    value: int
    names: list[str]
    unknown_bits: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "value": self.value,
            "names": list(self.names),
            "unknown_bits": self.unknown_bits,
            "notes": list(self.notes),
        }


def _pferr_name(name: str) -> str:
    if name in ("IMPLICIT_ACCESS", "PRIVATE_ACCESS"):
        return "PFERR_" + name
    return f"PFERR_{name}_MASK"


def _decode_flags(
    value: int, flag_cls: type[enum.IntFlag], namer: Callable[[str], str], what: str
) -> ErrorCodeDecode:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise SpecDecodeError(what, value if isinstance(value, int) else -1, "not a u64")
    names = []
    known = 0
    for f in flag_cls:
        if value & f:
            names.append(namer(f.name or ""))
            known |= f
    return ErrorCodeDecode(value, names, value & ~known)


def decode_npf_error_code(value: int) -> ErrorCodeDecode:
    """Decode #NPF EXITINFO1 into ``PFERR_*`` names; unknown bits reported as a mask.

    Raises :class:`SpecDecodeError` for a value that is not a u64.
    """
    d = _decode_flags(value, PFERR, _pferr_name, "npf_error_code")
    if value & PFERR.GUEST_RMP:
        d.notes.append("RMP check failed (KVM: sev_handle_rmp_fault)")
    if value & PFERR.GUEST_SIZEM:
        d.notes.append("page-size mismatch against the RMP entry; KVM PSMASHes a 2M entry")
    if not value & PFERR.PRESENT:
        d.notes.append("not present: no NPT translation")
    d.notes.append("private (C=1) access" if value & PFERR.GUEST_ENC else "shared (C=0) access")
    return d


def decode_pf_error_code(value: int) -> ErrorCodeDecode:
    """Decode a host #PF error code into ``X86_PF_*`` names; unknown bits as a mask.

    Raises :class:`SpecDecodeError` for a value that is not a u64.
    """
    d = _decode_flags(value, X86_PF, str, "pf_error_code")
    if value & X86_PF.X86_PF_RMP:
        d.notes.append("RMP violation: the host touched a page it does not own")
    return d
