# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""SEV firmware (AMD-SP) status codes: ``sev_ret_code``.

Source: Linux ``include/uapi/linux/psp-sev.h`` (``typedef enum { SEV_RET_* }
sev_ret_code``; values as in v6.10+, where the enum lists them explicitly: SUCCESS 0,
INVALID_PLATFORM_STATE 1, INVALID_GUEST_STATE 2, INVALID_CONFIG 3, INVALID_LEN 4, ...,
INVALID_ADDRESS 9, INVALID_GUEST 0x10, INVALID_PARAM 0x16, INVALID_PAGE_STATE 0x1A), the
SEV / SEV-SNP firmware ABI's status codes (SNP firmware ABI 56860, "Status Codes").
``SEV_RET_NO_FW_CALL`` (-1 as an int, 0xFFFFFFFF as the u32 the guest sees) is Linux's,
not the firmware's: no firmware command was issued.

The firmware status is a 32-bit value; KVM forwards it to the guest in the low 32 bits
of ``sw_exit_info_2`` of an SNP guest request (:mod:`snpsim.spec.sev_guest`).
"""

from __future__ import annotations

import enum

__all__ = [
    "SevRetCode",
    "SEV_RET_NO_FW_CALL",
    "SEV_RET_SUCCESS",
    "SEV_RET_INVALID_PLATFORM_STATE",
    "SEV_RET_INVALID_GUEST_STATE",
    "SEV_RET_INVALID_LEN",
    "SEV_RET_INVALID_ADDRESS",
    "SEV_RET_INVALID_GUEST",
    "SEV_RET_INVALID_COMMAND",
    "SEV_RET_INVALID_PARAM",
    "SEV_RET_INVALID_PAGE_SIZE",
    "SEV_RET_INVALID_PAGE_STATE",
    "SEV_RET_INVALID_PAGE_OWNER",
]


class SevRetCode(enum.IntEnum):
    """``sev_ret_code`` (include/uapi/linux/psp-sev.h): the firmware's status (u32)."""

    SEV_RET_SUCCESS = 0x0000
    SEV_RET_INVALID_PLATFORM_STATE = 0x0001
    SEV_RET_INVALID_GUEST_STATE = 0x0002
    SEV_RET_INVALID_CONFIG = 0x0003
    SEV_RET_INVALID_LEN = 0x0004
    SEV_RET_ALREADY_OWNED = 0x0005
    SEV_RET_INVALID_CERTIFICATE = 0x0006
    SEV_RET_POLICY_FAILURE = 0x0007
    SEV_RET_INACTIVE = 0x0008
    SEV_RET_INVALID_ADDRESS = 0x0009
    SEV_RET_BAD_SIGNATURE = 0x000A
    SEV_RET_BAD_MEASUREMENT = 0x000B
    SEV_RET_ASID_OWNED = 0x000C
    SEV_RET_INVALID_ASID = 0x000D
    SEV_RET_WBINVD_REQUIRED = 0x000E
    SEV_RET_DFFLUSH_REQUIRED = 0x000F
    SEV_RET_INVALID_GUEST = 0x0010
    SEV_RET_INVALID_COMMAND = 0x0011
    SEV_RET_ACTIVE = 0x0012
    SEV_RET_HWSEV_RET_PLATFORM = 0x0013
    SEV_RET_HWSEV_RET_UNSAFE = 0x0014
    SEV_RET_UNSUPPORTED = 0x0015
    SEV_RET_INVALID_PARAM = 0x0016
    SEV_RET_RESOURCE_LIMIT = 0x0017
    SEV_RET_SECURE_DATA_INVALID = 0x0018
    SEV_RET_INVALID_PAGE_SIZE = 0x0019
    SEV_RET_INVALID_PAGE_STATE = 0x001A
    SEV_RET_INVALID_MDATA_ENTRY = 0x001B
    SEV_RET_INVALID_PAGE_OWNER = 0x001C


#: Linux-only (psp-sev.h): "an error that prevented the SEV firmware from being called",
#: as the u32 the guest's ``rio->exitinfo2`` starts with.
SEV_RET_NO_FW_CALL = 0xFFFFFFFF

SEV_RET_SUCCESS = SevRetCode.SEV_RET_SUCCESS
SEV_RET_INVALID_PLATFORM_STATE = SevRetCode.SEV_RET_INVALID_PLATFORM_STATE
SEV_RET_INVALID_GUEST_STATE = SevRetCode.SEV_RET_INVALID_GUEST_STATE
SEV_RET_INVALID_LEN = SevRetCode.SEV_RET_INVALID_LEN
SEV_RET_INVALID_ADDRESS = SevRetCode.SEV_RET_INVALID_ADDRESS
SEV_RET_INVALID_GUEST = SevRetCode.SEV_RET_INVALID_GUEST
SEV_RET_INVALID_COMMAND = SevRetCode.SEV_RET_INVALID_COMMAND
SEV_RET_INVALID_PARAM = SevRetCode.SEV_RET_INVALID_PARAM
SEV_RET_INVALID_PAGE_SIZE = SevRetCode.SEV_RET_INVALID_PAGE_SIZE
SEV_RET_INVALID_PAGE_STATE = SevRetCode.SEV_RET_INVALID_PAGE_STATE
SEV_RET_INVALID_PAGE_OWNER = SevRetCode.SEV_RET_INVALID_PAGE_OWNER
