# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""RMP constants: instruction return codes, VMPL permissions, RMPUPDATE/RMPREAD blocks.

Sources:
- ``arch/x86/include/asm/sev.h`` (v6.16; read via the LKML postings that add them):
  ``PVALIDATE_FAIL_SIZEMISMATCH`` 6, ``PVALIDATE_FAIL_NOUPDATE`` 255 (software, CF=1),
  ``RMPUPDATE_FAIL_OVERLAP`` 4, ``PSMASH_FAIL_INUSE`` 3, ``RMPADJUST_VMSA_PAGE_BIT``
  ``BIT(16)``, ``struct rmp_state`` (u64 gpa, u8 assigned, u8 pagesize, u8 immutable,
  u8 rsvd, u32 asid; packed, 16 bytes).
- Other return codes: AMD APM vol 3 instruction pages as restated by the MSVC intrinsic
  documentation and VeriSMo ``def_s.rs`` (reference hardware-and-ghcb.md section 3).
  ``PVALIDATE_FAIL_INPUT``/``PVALIDATE_SUCCESS`` are not mainline Linux names (early RFC
  ``sev-snp.h``).  The name ``PSMASH_FAIL_BADADDR`` (7) is unconfirmed.  Other names for
  codes Linux does not define (``RMPUPDATE_FAIL_INPUT``, ...) are model names.
- VMPL permission mask bits: APM vol 2 Table 15-36 [secondary, APM-T]; RMPADJUST RDX
  layout: SVSM ``RMPFlags``, OpenVMM ``SevRmpAdjust``.
- ``RMPTABLE_CPU_BOOKKEEPING_SZ`` 0x4000 and the RMPREAD output layout (``struct
  rmpentry``): ``arch/x86/virt/svm/sev.c`` (reference kvm-qemu-host.md section 1.8).
- The segmented RMP (``arch/x86/virt/svm/sev.c`` v6.14+, read): the RMP segment table
  (RST) is one 4 KiB page right after the bookkeeping area, up to 512 u64 entries; an
  entry's bits 19:0 are the mapped size in GiB and bits 51:20 the segment's SPA
  (``RST_ENTRY_MAPPED_SIZE``, ``RST_ENTRY_SEGMENT_BASE``); a contiguous RMP is handled as
  one segment of shift 52 (``RMPTABLE_NON_SEGMENTED_SHIFT``); ``RMP_ADDR_MASK`` is bits
  51:13 of RMP_BASE / RMP_END.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from .errors import SpecDecodeError

__all__ = [
    "PvalidateRet",
    "PVALIDATE_SUCCESS",
    "PVALIDATE_FAIL_INPUT",
    "PVALIDATE_FAIL_SIZEMISMATCH",
    "PVALIDATE_FAIL_NOUPDATE",
    "RmpupdateRet",
    "RMPUPDATE_SUCCESS",
    "RMPUPDATE_FAIL_INPUT",
    "RMPUPDATE_FAIL_PERMISSION",
    "RMPUPDATE_FAIL_INUSE",
    "RMPUPDATE_FAIL_OVERLAP",
    "PsmashRet",
    "PSMASH_SUCCESS",
    "PSMASH_FAIL_INPUT",
    "PSMASH_FAIL_PERMISSION",
    "PSMASH_FAIL_INUSE",
    "PSMASH_FAIL_BADADDR",
    "RmpadjustRet",
    "RMPADJUST_SUCCESS",
    "RMPADJUST_FAIL_INPUT",
    "RMPADJUST_FAIL_PERMISSION",
    "RMPADJUST_FAIL_INUSE",
    "RMPADJUST_FAIL_SIZEMISMATCH",
    "RmpreadRet",
    "RMPREAD_SUCCESS",
    "RMPREAD_FAIL_INPUT",
    "RMPREAD_FAIL_PERMISSION",
    "RmpPerm",
    "RMP_PERM_ALL",
    "RMP_PERM_RESERVED_MASK",
    "RMPADJUST_TARGET_VMPL_MASK",
    "RMPADJUST_PERM_SHIFT",
    "RMPADJUST_VMSA_PAGE_BIT",
    "rmpadjust_attrs",
    "RMPTABLE_CPU_BOOKKEEPING_SZ",
    "RMP_ENTRY_SIZE",
    "RST_SIZE",
    "RST_MAX_INDEX",
    "RMPTABLE_NON_SEGMENTED_SHIFT",
    "RMP_ADDR_MASK",
    "RST_ENTRY_MAPPED_SIZE",
    "RST_ENTRY_SEGMENT_BASE",
    "RMP_STATE_SIZE",
    "RmpState",
    "RmpReadOut",
]


class PvalidateRet(enum.IntEnum):
    """PVALIDATE result in EAX (255 is Linux's software code for rFLAGS.CF = 1)."""

    PVALIDATE_SUCCESS = 0
    PVALIDATE_FAIL_INPUT = 1
    PVALIDATE_FAIL_SIZEMISMATCH = 6
    PVALIDATE_FAIL_NOUPDATE = 255


PVALIDATE_SUCCESS = PvalidateRet.PVALIDATE_SUCCESS
PVALIDATE_FAIL_INPUT = PvalidateRet.PVALIDATE_FAIL_INPUT
PVALIDATE_FAIL_SIZEMISMATCH = PvalidateRet.PVALIDATE_FAIL_SIZEMISMATCH
PVALIDATE_FAIL_NOUPDATE = PvalidateRet.PVALIDATE_FAIL_NOUPDATE


class RmpupdateRet(enum.IntEnum):
    """RMPUPDATE result in EAX.  4 (overlap) is Linux's ``RMPUPDATE_FAIL_OVERLAP``."""

    RMPUPDATE_SUCCESS = 0
    RMPUPDATE_FAIL_INPUT = 1
    RMPUPDATE_FAIL_PERMISSION = 2
    RMPUPDATE_FAIL_INUSE = 3
    RMPUPDATE_FAIL_OVERLAP = 4


RMPUPDATE_SUCCESS = RmpupdateRet.RMPUPDATE_SUCCESS
RMPUPDATE_FAIL_INPUT = RmpupdateRet.RMPUPDATE_FAIL_INPUT
RMPUPDATE_FAIL_PERMISSION = RmpupdateRet.RMPUPDATE_FAIL_PERMISSION
RMPUPDATE_FAIL_INUSE = RmpupdateRet.RMPUPDATE_FAIL_INUSE
RMPUPDATE_FAIL_OVERLAP = RmpupdateRet.RMPUPDATE_FAIL_OVERLAP


class PsmashRet(enum.IntEnum):
    """PSMASH result in EAX.  3 is Linux's ``PSMASH_FAIL_INUSE``; the name of 7 is unconfirmed."""

    PSMASH_SUCCESS = 0
    PSMASH_FAIL_INPUT = 1
    PSMASH_FAIL_PERMISSION = 2
    PSMASH_FAIL_INUSE = 3
    PSMASH_FAIL_BADADDR = 7


PSMASH_SUCCESS = PsmashRet.PSMASH_SUCCESS
PSMASH_FAIL_INPUT = PsmashRet.PSMASH_FAIL_INPUT
PSMASH_FAIL_PERMISSION = PsmashRet.PSMASH_FAIL_PERMISSION
PSMASH_FAIL_INUSE = PsmashRet.PSMASH_FAIL_INUSE
PSMASH_FAIL_BADADDR = PsmashRet.PSMASH_FAIL_BADADDR


class RmpadjustRet(enum.IntEnum):
    """RMPADJUST result in EAX.  3 (FAIL_INUSE) is a model name: the code RMPUPDATE and
    PSMASH give for a page in use; Linux ``shutdown_all_aps`` (arch/x86/coco/sev/core.c,
    v6.17) kicks an AP out of guest mode before it RMPADJUSTs the VMSA bit off its VMSA."""

    RMPADJUST_SUCCESS = 0
    RMPADJUST_FAIL_INPUT = 1
    RMPADJUST_FAIL_PERMISSION = 2
    RMPADJUST_FAIL_INUSE = 3
    RMPADJUST_FAIL_SIZEMISMATCH = 6


RMPADJUST_SUCCESS = RmpadjustRet.RMPADJUST_SUCCESS
RMPADJUST_FAIL_INPUT = RmpadjustRet.RMPADJUST_FAIL_INPUT
RMPADJUST_FAIL_PERMISSION = RmpadjustRet.RMPADJUST_FAIL_PERMISSION
RMPADJUST_FAIL_INUSE = RmpadjustRet.RMPADJUST_FAIL_INUSE
RMPADJUST_FAIL_SIZEMISMATCH = RmpadjustRet.RMPADJUST_FAIL_SIZEMISMATCH


class RmpreadRet(enum.IntEnum):
    """RMPREAD result in EAX (2: executed with ASID != 0)."""

    RMPREAD_SUCCESS = 0
    RMPREAD_FAIL_INPUT = 1
    RMPREAD_FAIL_PERMISSION = 2


RMPREAD_SUCCESS = RmpreadRet.RMPREAD_SUCCESS
RMPREAD_FAIL_INPUT = RmpreadRet.RMPREAD_FAIL_INPUT
RMPREAD_FAIL_PERMISSION = RmpreadRet.RMPREAD_FAIL_PERMISSION


class RmpPerm(enum.IntFlag):
    """VMPL permission mask of an RMP entry (8 bits; bits 5-7 reserved, must be 0).

    APM vol 2 Table 15-36 [secondary]: READ, WRITE (write without read is illegal),
    EXEC_USER (CPL 3), EXEC_SUPER (CPL < 3), SSS (supervisor shadow stack, VmplSSS only).
    """

    READ = 1 << 0
    WRITE = 1 << 1
    EXEC_USER = 1 << 2
    EXEC_SUPER = 1 << 3
    SSS = 1 << 4


#: Every defined permission bit (0x1F).  Whether "full permissions" given to VMPL0 by
#: RMPUPDATE include SSS is unconfirmed; this model sets all defined bits.
RMP_PERM_ALL = RmpPerm.READ | RmpPerm.WRITE | RmpPerm.EXEC_USER | RmpPerm.EXEC_SUPER | RmpPerm.SSS
#: Reserved bits of the permission byte (bits 7:5).
RMP_PERM_RESERVED_MASK = 0xE0
#: RMPADJUST RDX[7:0]: target VMPL.
RMPADJUST_TARGET_VMPL_MASK = 0xFF
#: RMPADJUST RDX[15:8]: permission mask.
RMPADJUST_PERM_SHIFT = 8
#: RMPADJUST RDX[16]: VMSA page.  asm/sev.h ``RMPADJUST_VMSA_PAGE_BIT`` = BIT(16).
RMPADJUST_VMSA_PAGE_BIT = 1 << 16


def rmpadjust_attrs(target_vmpl: int, perms: int, vmsa: bool = False) -> int:
    """Model-only: the RMPADJUST RDX value (VMPL [7:0], perms [15:8], VMSA [16])."""
    return (
        (target_vmpl & RMPADJUST_TARGET_VMPL_MASK)
        | ((perms & 0xFF) << RMPADJUST_PERM_SHIFT)
        | (RMPADJUST_VMSA_PAGE_BIT if vmsa else 0)
    )


#: Processor bookkeeping area at the start of the RMP, bytes.  arch/x86/virt/svm/sev.c.
RMPTABLE_CPU_BOOKKEEPING_SZ = 0x4000
#: Bytes per RMP entry (one per 4 KiB system-physical page).
RMP_ENTRY_SIZE = 16
#: Size of ``struct rmp_state`` / the RMPREAD output, bytes.
RMP_STATE_SIZE = 16

_RMP_STATE = struct.Struct("<QBBBBI")


def _unpack16(name: str, data: bytes | bytearray | memoryview) -> tuple[int, ...]:
    if len(data) != RMP_STATE_SIZE:
        raise SpecDecodeError(name, len(data), f"exactly {RMP_STATE_SIZE} bytes expected")
    return _RMP_STATE.unpack(bytes(data))


def _pack16(name: str, values: tuple[int, int, int, int, int, int]) -> bytes:
    try:
        return _RMP_STATE.pack(*values)
    except struct.error as exc:
        raise SpecDecodeError(name, -1, f"a field does not fit its width ({exc})") from None


@dataclass(frozen=True)
class RmpState:
    """``struct rmp_state``: the 16-byte new-state block RMPUPDATE reads at RCX.

    ``gpa`` u64 @0, ``assigned`` u8 @8, ``pagesize`` u8 @9 (bit 0: 0 = 4K, 1 = 2M),
    ``immutable`` u8 @10, ``rsvd`` u8 @11, ``asid`` u32 @12.  Raw bytes are kept.
    Source: asm/sev.h; MSVC ``__rmpupdate`` documentation.
    """

    gpa: int = 0
    assigned: int = 0
    pagesize: int = 0
    immutable: int = 0
    rsvd: int = 0
    asid: int = 0

    def encode(self) -> bytes:
        """The 16 bytes; a field out of its width raises :class:`SpecDecodeError`."""
        return _pack16(
            "rmp_state",
            (self.gpa, self.assigned, self.pagesize, self.immutable, self.rsvd, self.asid),
        )

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> RmpState:
        """Decode 16 bytes; another length raises :class:`SpecDecodeError`."""
        return cls(*_unpack16("rmp_state", data))


@dataclass(frozen=True)
class RmpReadOut:
    """RMPREAD's 16-byte output (Linux ``struct rmpentry``, arch/x86/virt/svm/sev.c).

    ``gpa`` u64 @0; ``assigned`` u8 @8 (bit 0); ``pagesize`` u8 @9 (bit 0 page size,
    bit 1 2 MiB-region status); ``immutable`` u8 @10 (bit 0); ``rsvd`` u8 @11; ``asid``
    u32 @12.  RMPREAD does not return Validated or the VMPL permissions.
    """

    gpa: int = 0
    assigned: int = 0
    pagesize: int = 0
    immutable: int = 0
    rsvd: int = 0
    asid: int = 0

    @property
    def hpage_region_status(self) -> int:
        """Bit 1 of byte 9: some page of the enclosing 2 MiB region is assigned."""
        return (self.pagesize >> 1) & 1

    def encode(self) -> bytes:
        """The 16 bytes; a field out of its width raises :class:`SpecDecodeError`."""
        return _pack16(
            "rmpread",
            (self.gpa, self.assigned, self.pagesize, self.immutable, self.rsvd, self.asid),
        )

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> RmpReadOut:
        """Decode 16 bytes; another length raises :class:`SpecDecodeError`."""
        return cls(*_unpack16("rmpread", data))


#: One page of RMP segment table entries, right after the bookkeeping area.
RST_SIZE = 0x1000
#: Entries in a full RMP segment table (one page of u64s).
RST_MAX_INDEX = 512
#: The segment shift Linux gives a contiguous RMP: one segment covering 4 PiB.
RMPTABLE_NON_SEGMENTED_SHIFT = 52
#: The address bits of RMP_BASE / RMP_END (51:13); zero means "not set by the BIOS".
RMP_ADDR_MASK = ((1 << 52) - 1) & ~((1 << 13) - 1)


def RST_ENTRY_MAPPED_SIZE(entry: int) -> int:  # noqa: N802 - the Linux macro's name
    """Mapped size of an RMP segment table entry, in GiB (bits 19:0)."""
    return entry & ((1 << 20) - 1)


def RST_ENTRY_SEGMENT_BASE(entry: int) -> int:  # noqa: N802 - the Linux macro's name
    """SPA of the segment's RMP entries (bits 51:20, 1 MiB aligned)."""
    return entry & ((1 << 52) - 1) & ~((1 << 20) - 1)
