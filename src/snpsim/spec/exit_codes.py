# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""SVM exit codes, VMGEXIT (NAE) event codes and the GHCB response convention.

Sources:
- ``arch/x86/include/uapi/asm/svm.h`` (read at AMDESE/linux-kvm 07de4c2d, ~v6.16+):
  every ``SVM_EXIT_*`` and ``SVM_VMGEXIT_*`` value here, ``SVM_VMGEXIT_TERM_REASON``
  (info1 [3:0] set, [11:4] code), the AP jump table and AP creation sub-codes.
- ``GHCB_HV_RESP_*`` (sw_exit_info_1 0/1/2): GHCB spec 56421 rev 2.03 section 4.1, names
  from the LKML review quoted by reference hardware-and-ghcb.md section 7.1 and KVM
  ``svm.h`` (kvm-qemu-host.md section 1.3).
- ``GHCB_ERR_*``: ``arch/x86/include/asm/sev-common.h`` (read at gregkh/linux 5ba594f2).
- ``SVM_EXIT_PAGE_NOT_VALIDATED`` 0x404: AMD APM vol 2 section 15.36.10 via the APM-T
  restatement [secondary]; not in Linux's uapi header.
- ``SVM_EVTINJ_*``: Linux ``arch/x86/include/asm/svm.h`` [from memory, not re-read here].
"""

from __future__ import annotations

import enum

from .errors import SpecDecodeError
from .units import U64_MAX

__all__ = [
    "SvmExitCode",
    "SVM_EXIT_READ_DR7",
    "SVM_EXIT_WRITE_DR7",
    "SVM_EXIT_EXCP_BASE",
    "SVM_EXIT_RDTSC",
    "SVM_EXIT_RDPMC",
    "SVM_EXIT_CPUID",
    "SVM_EXIT_INVD",
    "SVM_EXIT_PAUSE",
    "SVM_EXIT_HLT",
    "SVM_EXIT_IOIO",
    "SVM_EXIT_MSR",
    "SVM_EXIT_SHUTDOWN",
    "SVM_EXIT_VMMCALL",
    "SVM_EXIT_RDTSCP",
    "SVM_EXIT_WBINVD",
    "SVM_EXIT_MONITOR",
    "SVM_EXIT_MWAIT",
    "SVM_EXIT_XSETBV",
    "SVM_EXIT_NPF",
    "SVM_EXIT_AVIC_INCOMPLETE_IPI",
    "SVM_EXIT_AVIC_UNACCELERATED_ACCESS",
    "SVM_EXIT_VMGEXIT",
    "SVM_EXIT_PAGE_NOT_VALIDATED",
    "SVM_EXIT_ERR",
    "SVM_VMGEXIT_MMIO_READ",
    "SVM_VMGEXIT_MMIO_WRITE",
    "SVM_VMGEXIT_NMI_COMPLETE",
    "SVM_VMGEXIT_AP_HLT_LOOP",
    "SVM_VMGEXIT_AP_JUMP_TABLE",
    "SVM_VMGEXIT_SET_AP_JUMP_TABLE",
    "SVM_VMGEXIT_GET_AP_JUMP_TABLE",
    "SVM_VMGEXIT_PSC",
    "SVM_VMGEXIT_GUEST_REQUEST",
    "SVM_VMGEXIT_EXT_GUEST_REQUEST",
    "SVM_VMGEXIT_AP_CREATION",
    "SVM_VMGEXIT_AP_CREATE_ON_INIT",
    "SVM_VMGEXIT_AP_CREATE",
    "SVM_VMGEXIT_AP_DESTROY",
    "SVM_VMGEXIT_SNP_RUN_VMPL",
    "SVM_VMGEXIT_SAVIC",
    "SVM_VMGEXIT_HV_FEATURES",
    "SVM_VMGEXIT_TERM_REQUEST",
    "SVM_VMGEXIT_UNSUPPORTED_EVENT",
    "SVM_VMGEXIT_TERM_REASON",
    "GhcbHvResp",
    "GHCB_HV_RESP_NO_ACTION",
    "GHCB_HV_RESP_ISSUE_EXCEPTION",
    "GHCB_HV_RESP_MALFORMED_INPUT",
    "GhcbErr",
    "GHCB_ERR_NOT_REGISTERED",
    "GHCB_ERR_INVALID_USAGE",
    "GHCB_ERR_INVALID_SCRATCH_AREA",
    "GHCB_ERR_MISSING_INPUT",
    "GHCB_ERR_INVALID_INPUT",
    "GHCB_ERR_INVALID_EVENT",
    "SVM_EVTINJ_VEC_MASK",
    "SVM_EVTINJ_TYPE_SHIFT",
    "SVM_EVTINJ_TYPE_MASK",
    "SVM_EVTINJ_TYPE_EXEPT",
    "SVM_EVTINJ_VALID_ERR",
    "SVM_EVTINJ_VALID",
    "describe_exit_code",
]


class SvmExitCode(enum.IntEnum):
    """Exit codes seen in ``sw_exit_code`` / VMCB EXITCODE (u64).

    Hardware exits that reach the hypervisor through the GHCB or as automatic exits, and
    the software-defined ``SVM_VMGEXIT_*`` NAE events.  Values: uapi/asm/svm.h.
    ``SVM_EXIT_PAGE_NOT_VALIDATED`` (0x404) is only ever a #VC error code (APM vol 2
    15.36.10 [secondary]); it is not a Linux name.
    """

    SVM_EXIT_READ_DR7 = 0x027
    SVM_EXIT_WRITE_DR7 = 0x037
    SVM_EXIT_EXCP_BASE = 0x040
    SVM_EXIT_RDTSC = 0x06E
    SVM_EXIT_RDPMC = 0x06F
    SVM_EXIT_CPUID = 0x072
    SVM_EXIT_INVD = 0x076
    SVM_EXIT_PAUSE = 0x077
    SVM_EXIT_HLT = 0x078
    SVM_EXIT_IOIO = 0x07B
    SVM_EXIT_MSR = 0x07C
    SVM_EXIT_SHUTDOWN = 0x07F
    SVM_EXIT_VMMCALL = 0x081
    SVM_EXIT_RDTSCP = 0x087
    SVM_EXIT_WBINVD = 0x089
    SVM_EXIT_MONITOR = 0x08A
    SVM_EXIT_MWAIT = 0x08B
    SVM_EXIT_XSETBV = 0x08D
    SVM_EXIT_NPF = 0x400
    SVM_EXIT_AVIC_INCOMPLETE_IPI = 0x401
    SVM_EXIT_AVIC_UNACCELERATED_ACCESS = 0x402
    SVM_EXIT_VMGEXIT = 0x403
    SVM_EXIT_PAGE_NOT_VALIDATED = 0x404
    SVM_VMGEXIT_MMIO_READ = 0x80000001
    SVM_VMGEXIT_MMIO_WRITE = 0x80000002
    SVM_VMGEXIT_NMI_COMPLETE = 0x80000003
    SVM_VMGEXIT_AP_HLT_LOOP = 0x80000004
    SVM_VMGEXIT_AP_JUMP_TABLE = 0x80000005
    SVM_VMGEXIT_PSC = 0x80000010
    SVM_VMGEXIT_GUEST_REQUEST = 0x80000011
    SVM_VMGEXIT_EXT_GUEST_REQUEST = 0x80000012
    SVM_VMGEXIT_AP_CREATION = 0x80000013
    SVM_VMGEXIT_SNP_RUN_VMPL = 0x80000018
    SVM_VMGEXIT_SAVIC = 0x8000001A
    SVM_VMGEXIT_HV_FEATURES = 0x8000FFFD
    SVM_VMGEXIT_TERM_REQUEST = 0x8000FFFE
    SVM_VMGEXIT_UNSUPPORTED_EVENT = 0x8000FFFF



SVM_EXIT_READ_DR7 = SvmExitCode.SVM_EXIT_READ_DR7
SVM_EXIT_WRITE_DR7 = SvmExitCode.SVM_EXIT_WRITE_DR7
SVM_EXIT_EXCP_BASE = SvmExitCode.SVM_EXIT_EXCP_BASE
SVM_EXIT_RDTSC = SvmExitCode.SVM_EXIT_RDTSC
SVM_EXIT_RDPMC = SvmExitCode.SVM_EXIT_RDPMC
SVM_EXIT_CPUID = SvmExitCode.SVM_EXIT_CPUID
SVM_EXIT_INVD = SvmExitCode.SVM_EXIT_INVD
SVM_EXIT_PAUSE = SvmExitCode.SVM_EXIT_PAUSE
SVM_EXIT_HLT = SvmExitCode.SVM_EXIT_HLT
SVM_EXIT_IOIO = SvmExitCode.SVM_EXIT_IOIO
SVM_EXIT_MSR = SvmExitCode.SVM_EXIT_MSR
SVM_EXIT_SHUTDOWN = SvmExitCode.SVM_EXIT_SHUTDOWN
SVM_EXIT_VMMCALL = SvmExitCode.SVM_EXIT_VMMCALL
SVM_EXIT_RDTSCP = SvmExitCode.SVM_EXIT_RDTSCP
SVM_EXIT_WBINVD = SvmExitCode.SVM_EXIT_WBINVD
SVM_EXIT_MONITOR = SvmExitCode.SVM_EXIT_MONITOR
SVM_EXIT_MWAIT = SvmExitCode.SVM_EXIT_MWAIT
SVM_EXIT_XSETBV = SvmExitCode.SVM_EXIT_XSETBV
SVM_EXIT_NPF = SvmExitCode.SVM_EXIT_NPF
SVM_EXIT_AVIC_INCOMPLETE_IPI = SvmExitCode.SVM_EXIT_AVIC_INCOMPLETE_IPI
SVM_EXIT_AVIC_UNACCELERATED_ACCESS = SvmExitCode.SVM_EXIT_AVIC_UNACCELERATED_ACCESS
SVM_EXIT_VMGEXIT = SvmExitCode.SVM_EXIT_VMGEXIT
#: #VC error code for an access to a private page whose RMP Validated bit is 0
#: (APM vol 2 15.36.10 [secondary]).  CR2 holds the faulting GVA.
SVM_EXIT_PAGE_NOT_VALIDATED = SvmExitCode.SVM_EXIT_PAGE_NOT_VALIDATED
#: ``SVM_EXIT_ERR`` (-1, "invalid_guest_state"); as a u64 in a VMCB: 0xFFFF_FFFF_FFFF_FFFF.
SVM_EXIT_ERR = -1
SVM_VMGEXIT_MMIO_READ = SvmExitCode.SVM_VMGEXIT_MMIO_READ
SVM_VMGEXIT_MMIO_WRITE = SvmExitCode.SVM_VMGEXIT_MMIO_WRITE
SVM_VMGEXIT_NMI_COMPLETE = SvmExitCode.SVM_VMGEXIT_NMI_COMPLETE
SVM_VMGEXIT_AP_HLT_LOOP = SvmExitCode.SVM_VMGEXIT_AP_HLT_LOOP
SVM_VMGEXIT_AP_JUMP_TABLE = SvmExitCode.SVM_VMGEXIT_AP_JUMP_TABLE
#: AP jump table sub-operation in sw_exit_info_1: set (info2 = address).  uapi/asm/svm.h.
SVM_VMGEXIT_SET_AP_JUMP_TABLE = 0
#: AP jump table sub-operation in sw_exit_info_1: get (returned in info2).  uapi/asm/svm.h.
SVM_VMGEXIT_GET_AP_JUMP_TABLE = 1
SVM_VMGEXIT_PSC = SvmExitCode.SVM_VMGEXIT_PSC
SVM_VMGEXIT_GUEST_REQUEST = SvmExitCode.SVM_VMGEXIT_GUEST_REQUEST
SVM_VMGEXIT_EXT_GUEST_REQUEST = SvmExitCode.SVM_VMGEXIT_EXT_GUEST_REQUEST
SVM_VMGEXIT_AP_CREATION = SvmExitCode.SVM_VMGEXIT_AP_CREATION
#: AP creation request codes in sw_exit_info_1[31:0].  uapi/asm/svm.h.
SVM_VMGEXIT_AP_CREATE_ON_INIT = 0
SVM_VMGEXIT_AP_CREATE = 1
SVM_VMGEXIT_AP_DESTROY = 2
SVM_VMGEXIT_SNP_RUN_VMPL = SvmExitCode.SVM_VMGEXIT_SNP_RUN_VMPL
SVM_VMGEXIT_SAVIC = SvmExitCode.SVM_VMGEXIT_SAVIC
SVM_VMGEXIT_HV_FEATURES = SvmExitCode.SVM_VMGEXIT_HV_FEATURES
SVM_VMGEXIT_TERM_REQUEST = SvmExitCode.SVM_VMGEXIT_TERM_REQUEST
SVM_VMGEXIT_UNSUPPORTED_EVENT = SvmExitCode.SVM_VMGEXIT_UNSUPPORTED_EVENT


def SVM_VMGEXIT_TERM_REASON(reason_set: int, reason_code: int) -> int:
    """sw_exit_info_1 of ``SVM_VMGEXIT_TERM_REQUEST``: set in [3:0], code in [11:4].

    Inputs are masked to 4 and 8 bits as the C macro does.  Source: uapi/asm/svm.h.
    """
    return (reason_set & 0xF) | ((reason_code & 0xFF) << 4)


class GhcbHvResp(enum.IntEnum):
    """sw_exit_info_1[31:0] written by the hypervisor after a VMGEXIT.

    0 no action / success; 1 the guest must raise the exception in sw_exit_info_2 (event
    injection format); 2 malformed input, sw_exit_info_2 = ``GHCB_ERR_*``.  GHCB spec
    56421 rev 2.03 section 4.1 (names from Linux/KVM).
    """

    GHCB_HV_RESP_NO_ACTION = 0
    GHCB_HV_RESP_ISSUE_EXCEPTION = 1
    GHCB_HV_RESP_MALFORMED_INPUT = 2


GHCB_HV_RESP_NO_ACTION = GhcbHvResp.GHCB_HV_RESP_NO_ACTION
GHCB_HV_RESP_ISSUE_EXCEPTION = GhcbHvResp.GHCB_HV_RESP_ISSUE_EXCEPTION
GHCB_HV_RESP_MALFORMED_INPUT = GhcbHvResp.GHCB_HV_RESP_MALFORMED_INPUT


class GhcbErr(enum.IntEnum):
    """sw_exit_info_2 when sw_exit_info_1 = 2 (malformed input).  sev-common.h."""

    GHCB_ERR_NOT_REGISTERED = 1
    GHCB_ERR_INVALID_USAGE = 2
    GHCB_ERR_INVALID_SCRATCH_AREA = 3
    GHCB_ERR_MISSING_INPUT = 4
    GHCB_ERR_INVALID_INPUT = 5
    GHCB_ERR_INVALID_EVENT = 6


GHCB_ERR_NOT_REGISTERED = GhcbErr.GHCB_ERR_NOT_REGISTERED
GHCB_ERR_INVALID_USAGE = GhcbErr.GHCB_ERR_INVALID_USAGE
GHCB_ERR_INVALID_SCRATCH_AREA = GhcbErr.GHCB_ERR_INVALID_SCRATCH_AREA
GHCB_ERR_MISSING_INPUT = GhcbErr.GHCB_ERR_MISSING_INPUT
GHCB_ERR_INVALID_INPUT = GhcbErr.GHCB_ERR_INVALID_INPUT
GHCB_ERR_INVALID_EVENT = GhcbErr.GHCB_ERR_INVALID_EVENT

# Event injection format (sw_exit_info_2 when info1 = 1; VMCB EVENTINJ).
# Linux arch/x86/include/asm/svm.h [from memory, not re-read].
SVM_EVTINJ_VEC_MASK = 0xFF
SVM_EVTINJ_TYPE_SHIFT = 8
SVM_EVTINJ_TYPE_MASK = 7 << SVM_EVTINJ_TYPE_SHIFT
SVM_EVTINJ_TYPE_EXEPT = 3 << SVM_EVTINJ_TYPE_SHIFT
SVM_EVTINJ_VALID_ERR = 1 << 11
SVM_EVTINJ_VALID = 1 << 31


def describe_exit_code(value: int) -> str:
    """Name of an exit code (u64), ``SVM_EXIT_EXCP_BASE + n`` as ``"exception vector n"``,
    ``SVM_EXIT_ERR`` for all-ones, else ``"unknown"``.

    Raises :class:`SpecDecodeError` for a value that is not a u64.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise SpecDecodeError("sw_exit_code", value if isinstance(value, int) else -1, "not a u64")
    if value in SvmExitCode._value2member_map_:
        name = SvmExitCode(value).name
        if value == SVM_EXIT_PAGE_NOT_VALIDATED:
            return f"{name} (#VC error code only)"
        if value == SVM_EXIT_EXCP_BASE:
            return f"{name} (exception vector 0)"
        return name
    if 0x40 < value <= 0x5F:
        return f"SVM_EXIT_EXCP_BASE + {value - 0x40} (exception vector {value - 0x40})"
    if value == U64_MAX:
        return "SVM_EXIT_ERR"
    return "unknown"
