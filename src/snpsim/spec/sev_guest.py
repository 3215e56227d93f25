# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""SNP guest messages and the SNP guest request's answer.

Sources:

* ``include/uapi/linux/sev-guest.h`` (v6.10+): ``SNP_GUEST_FW_ERR_MASK`` (bits 31:0),
  ``SNP_GUEST_VMM_ERR_SHIFT`` 32, ``SNP_GUEST_VMM_ERR(x)``, ``SNP_GUEST_ERR(vmm_err,
  fw_err)``, ``SNP_GUEST_VMM_ERR_INVALID_LEN`` 1, ``SNP_GUEST_VMM_ERR_BUSY`` 2,
  ``SNP_GUEST_VMM_ERR_GENERIC`` BIT(31) (added by KVM's guest-request patch, 2024).
  hardware-and-ghcb.md 7: on return of SVM_VMGEXIT_GUEST_REQUEST (0x80000011),
  ``sw_exit_info_2 = (vmm_err << 32) | fw_err``.
* ``struct snp_guest_msg_hdr`` / ``struct snp_guest_msg``, ``enum msg_type``, ``enum
  aead_algo``, ``MSG_HDR_VER`` 1 (``drivers/virt/coco/sev-guest/sev-guest.h`` up to
  v6.10, ``arch/x86/include/asm/sev.h`` from v6.11): the message header the firmware
  parses, SNP firmware ABI 56860 "SNP_GUEST_REQUEST" (table "Message Header").  Offsets:
  authtag 0x00 (32 bytes), msg_seqno 0x20 (u64), rsvd1 0x28 (8), algo 0x30 (u8),
  hdr_version 0x31 (u8), hdr_sz 0x32 (u16), msg_type 0x34 (u8), msg_version 0x35 (u8),
  msg_sz 0x36 (u16), rsvd2 0x38 (u32), msg_vmpck 0x3C (u8), rsvd3 0x3D (35); 0x60 bytes.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from .units import PAGE_SIZE

__all__ = [
    "SNP_GUEST_FW_ERR_MASK",
    "SNP_GUEST_VMM_ERR_SHIFT",
    "SNP_GUEST_VMM_ERR_INVALID_LEN",
    "SNP_GUEST_VMM_ERR_BUSY",
    "SNP_GUEST_VMM_ERR_GENERIC",
    "SNP_GUEST_VMM_ERR",
    "SNP_GUEST_FW_ERR",
    "SNP_GUEST_ERR",
    "SnpMsgType",
    "SNP_MSG_REPORT_REQ",
    "SNP_MSG_REPORT_RSP",
    "SNP_AEAD_INVALID",
    "SNP_AEAD_AES_256_GCM",
    "MSG_HDR_VER",
    "MAX_AUTHTAG_LEN",
    "SNP_GUEST_MSG_HDR_SIZE",
    "SNP_GUEST_MSG_SIZE",
    "SNP_GUEST_MSG_PAYLOAD_SIZE",
    "SnpGuestMsgHdr",
]

SNP_GUEST_FW_ERR_MASK = 0xFFFFFFFF
SNP_GUEST_VMM_ERR_SHIFT = 32
SNP_GUEST_VMM_ERR_INVALID_LEN = 1
SNP_GUEST_VMM_ERR_BUSY = 2
SNP_GUEST_VMM_ERR_GENERIC = 1 << 31


def SNP_GUEST_VMM_ERR(x: int) -> int:  # noqa: N802 - Linux macro name
    """``SNP_GUEST_VMM_ERR(x)``: ``x`` (u32) in bits 63:32 of ``sw_exit_info_2``."""
    return (x & 0xFFFFFFFF) << SNP_GUEST_VMM_ERR_SHIFT


def SNP_GUEST_FW_ERR(x: int) -> int:  # noqa: N802 - Linux macro name
    """``SNP_GUEST_FW_ERR(x)``: the firmware status (bits 31:0)."""
    return x & SNP_GUEST_FW_ERR_MASK


def SNP_GUEST_ERR(vmm_err: int, fw_err: int) -> int:  # noqa: N802 - Linux macro name
    """``SNP_GUEST_ERR(vmm_err, fw_err)``: the u64 KVM puts in ``sw_exit_info_2``."""
    return SNP_GUEST_VMM_ERR(vmm_err) | SNP_GUEST_FW_ERR(fw_err)


class SnpMsgType(enum.IntEnum):
    """``enum msg_type`` (u8 ``msg_type`` of the message header)."""

    SNP_MSG_TYPE_INVALID = 0
    SNP_MSG_CPUID_REQ = 1
    SNP_MSG_CPUID_RSP = 2
    SNP_MSG_KEY_REQ = 3
    SNP_MSG_KEY_RSP = 4
    SNP_MSG_REPORT_REQ = 5
    SNP_MSG_REPORT_RSP = 6
    SNP_MSG_EXPORT_REQ = 7
    SNP_MSG_EXPORT_RSP = 8
    SNP_MSG_IMPORT_REQ = 9
    SNP_MSG_IMPORT_RSP = 10
    SNP_MSG_ABSORB_REQ = 11
    SNP_MSG_ABSORB_RSP = 12
    SNP_MSG_VMRK_REQ = 13
    SNP_MSG_VMRK_RSP = 14


SNP_MSG_REPORT_REQ = SnpMsgType.SNP_MSG_REPORT_REQ
SNP_MSG_REPORT_RSP = SnpMsgType.SNP_MSG_REPORT_RSP

#: ``enum aead_algo``.
SNP_AEAD_INVALID = 0
SNP_AEAD_AES_256_GCM = 1
#: ``MSG_HDR_VER``: the header version Linux writes.
MSG_HDR_VER = 1
MAX_AUTHTAG_LEN = 32
SNP_GUEST_MSG_HDR_SIZE = 0x60
#: ``SNP_GUEST_MSG_SIZE`` (one page) and the payload after the header.
SNP_GUEST_MSG_SIZE = PAGE_SIZE
SNP_GUEST_MSG_PAYLOAD_SIZE = SNP_GUEST_MSG_SIZE - SNP_GUEST_MSG_HDR_SIZE

# authtag[32] msg_seqno rsvd1[8] algo hdr_version hdr_sz msg_type msg_version msg_sz
# rsvd2 msg_vmpck rsvd3[35]
_HDR = struct.Struct("<32sQ8sBBHBBHIB35s")
assert _HDR.size == SNP_GUEST_MSG_HDR_SIZE


@dataclass(frozen=True)
class SnpGuestMsgHdr:
    """``struct snp_guest_msg_hdr`` (0x60 bytes, little endian; offsets in the module
    doc).  Reserved fields are kept by name and offset (``rsvd1_0x28``, ``rsvd2_0x38``,
    ``rsvd3_0x3d``) and preserved by :meth:`decode`/:meth:`encode`."""

    msg_seqno: int = 0
    algo: int = SNP_AEAD_AES_256_GCM
    hdr_version: int = MSG_HDR_VER
    hdr_sz: int = SNP_GUEST_MSG_HDR_SIZE
    msg_type: int = 0
    msg_version: int = 1
    msg_sz: int = 0
    msg_vmpck: int = 0
    authtag: bytes = bytes(MAX_AUTHTAG_LEN)
    rsvd1_0x28: bytes = bytes(8)
    rsvd2_0x38: int = 0
    rsvd3_0x3d: bytes = bytes(35)

    def encode(self) -> bytes:
        """The 0x60 header bytes.  Fields are masked to their C width."""
        return _HDR.pack(self.authtag, self.msg_seqno & (2**64 - 1), self.rsvd1_0x28,
                         self.algo & 0xFF, self.hdr_version & 0xFF, self.hdr_sz & 0xFFFF,
                         self.msg_type & 0xFF, self.msg_version & 0xFF, self.msg_sz & 0xFFFF,
                         self.rsvd2_0x38 & 0xFFFFFFFF, self.msg_vmpck & 0xFF, self.rsvd3_0x3d)

    @classmethod
    def decode(cls, raw: bytes) -> SnpGuestMsgHdr:
        """Decode the first 0x60 bytes of ``raw`` (ValueError when shorter)."""
        if len(raw) < SNP_GUEST_MSG_HDR_SIZE:
            raise ValueError(f"snp_guest_msg_hdr needs {SNP_GUEST_MSG_HDR_SIZE} bytes, got {len(raw)}")
        (authtag, seqno, rsvd1, algo, hdr_version, hdr_sz, msg_type, msg_version, msg_sz,
         rsvd2, vmpck, rsvd3) = _HDR.unpack_from(raw)
        return cls(seqno, algo, hdr_version, hdr_sz, msg_type, msg_version, msg_sz, vmpck,
                   authtag, rsvd1, rsvd2, rsvd3)
