# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Page State Change (PSC) descriptor: header, entries, operations and error codes.

Sources:
- Linux ``arch/x86/include/asm/sev-common.h`` (read at gregkh/linux 5ba594f2, v6.11+):
  ``enum psc_op``, ``struct psc_hdr``, ``struct psc_entry`` (bit-fields LSB first:
  cur_page 12, gfn 40, operation 4, pagesize 1, reserved 7), ``struct snp_psc_desc``,
  ``VMGEXIT_PSC_MAX_ENTRY`` 64, ``VMGEXIT_PSC_MAX_COUNT`` 253,
  ``VMGEXIT_PSC_ERROR_GENERIC/INVALID_HDR/INVALID_ENTRY``.
- ``VMGEXIT_PSC_MAX_ENTRY`` was 253 in v5.19-v6.4 (torvalds/linux sev-common.h @ 0afb6b66,
  read) and 64 since v6.5 (commit 69dcb1e3bbbe, per reference linux-guest.md section 12).
- Operations 3 (PSMASH) and 4 (UNSMASH): GHCB spec 56421 section "Page State Change",
  as restated by EDK2 ``Ghcb.h``, SVSM and OpenVMM.  Mainline Linux does not define them.
- KVM's checks mirrored by :func:`validate_psc_desc`: ``snp_begin_psc``
  (``arch/x86/kvm/svm/sev.c``, ~v6.17): end_entry >= 253 -> INVALID_HDR; cur_page >
  npages or a GFN not aligned to npages -> INVALID_ENTRY.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import SpecDecodeError
from .units import PTRS_PER_PMD, U16_MAX, U32_MAX, U64_MAX

__all__ = [
    "PscOp",
    "SNP_PAGE_STATE_PRIVATE",
    "SNP_PAGE_STATE_SHARED",
    "SNP_PAGE_STATE_PSMASH",
    "SNP_PAGE_STATE_UNSMASH",
    "VMGEXIT_PSC_OP_PRIVATE",
    "VMGEXIT_PSC_OP_SHARED",
    "VMGEXIT_PSC_MAX_ENTRY",
    "VMGEXIT_PSC_MAX_ENTRY_PRE_6_5",
    "VMGEXIT_PSC_MAX_COUNT",
    "VMGEXIT_PSC_ERROR_GENERIC",
    "VMGEXIT_PSC_ERROR_INVALID_HDR",
    "VMGEXIT_PSC_ERROR_INVALID_ENTRY",
    "PSC_HDR_SIZE",
    "PSC_ENTRY_SIZE",
    "PSC_ENTRY_CUR_PAGE_SHIFT",
    "PSC_ENTRY_CUR_PAGE_MASK",
    "PSC_ENTRY_GFN_SHIFT",
    "PSC_ENTRY_GFN_MASK",
    "PSC_ENTRY_OPERATION_SHIFT",
    "PSC_ENTRY_OPERATION_MASK",
    "PSC_ENTRY_PAGESIZE_SHIFT",
    "PSC_ENTRY_PAGESIZE_MASK",
    "PSC_ENTRY_RESERVED_SHIFT",
    "PSC_ENTRY_RESERVED_MASK",
    "PscHdr",
    "PscEntry",
    "SnpPscDesc",
    "validate_psc_desc",
    "describe_psc_result",
]


class PscOp(enum.IntEnum):
    """PSC operation, ``psc_entry.operation`` bits 55:52 (and MSR PSC request [55:52]).

    Source: Linux ``enum psc_op`` (sev-common.h) for 1 and 2; GHCB spec 56421 (via EDK2
    ``SNP_PAGE_STATE_PSMASH/UNSMASH``, SVSM, OpenVMM) for 3 and 4, which mainline Linux
    does not define and KVM completes as no-ops.
    """

    SNP_PAGE_STATE_PRIVATE = 1
    SNP_PAGE_STATE_SHARED = 2
    SNP_PAGE_STATE_PSMASH = 3
    SNP_PAGE_STATE_UNSMASH = 4


SNP_PAGE_STATE_PRIVATE = PscOp.SNP_PAGE_STATE_PRIVATE
SNP_PAGE_STATE_SHARED = PscOp.SNP_PAGE_STATE_SHARED
SNP_PAGE_STATE_PSMASH = PscOp.SNP_PAGE_STATE_PSMASH
SNP_PAGE_STATE_UNSMASH = PscOp.SNP_PAGE_STATE_UNSMASH

#: Hypervisor-side names of ops 1/2 (sev-common.h ``VMGEXIT_PSC_OP_PRIVATE/SHARED``).
VMGEXIT_PSC_OP_PRIVATE = 1
VMGEXIT_PSC_OP_SHARED = 2

#: Entries per ``struct snp_psc_desc`` in the Linux guest since v6.5 (a stack-size limit;
#: sev-common.h).  Guest side only.
VMGEXIT_PSC_MAX_ENTRY = 64
#: The same constant in v5.19-v6.4 (sev-common.h @ 0afb6b66): the full GHCB capacity.
VMGEXIT_PSC_MAX_ENTRY_PRE_6_5 = 253
#: Entries that fit the GHCB shared buffer: (2032 - 8) / 8 = 253.  Hypervisor-side limit
#: (sev-common.h ``VMGEXIT_PSC_MAX_COUNT``; EDK2 ``SNP_PAGE_STATE_MAX_ENTRY``).
VMGEXIT_PSC_MAX_COUNT = 253

#: sw_exit_info_2 after PSC: generic (hypervisor/userspace) failure, 0x100 << 32.
#: sev-common.h ``VMGEXIT_PSC_ERROR_GENERIC``.
VMGEXIT_PSC_ERROR_GENERIC = 0x100 << 32
#: sw_exit_info_2 after PSC: bad header (KVM: end_entry >= 253), (1 << 32) | 1.
VMGEXIT_PSC_ERROR_INVALID_HDR = (1 << 32) | 1
#: sw_exit_info_2 after PSC: bad entry (cur_page > npages, misaligned GFN), (1 << 32) | 2.
VMGEXIT_PSC_ERROR_INVALID_ENTRY = (1 << 32) | 2

#: ``sizeof(struct psc_hdr)`` in bytes.
PSC_HDR_SIZE = 8
#: ``sizeof(struct psc_entry)`` in bytes.
PSC_ENTRY_SIZE = 8

# struct psc_entry bit layout (model names for the C bit-fields; sev-common.h).
PSC_ENTRY_CUR_PAGE_SHIFT = 0
PSC_ENTRY_CUR_PAGE_MASK = 0xFFF  # 12 bits
PSC_ENTRY_GFN_SHIFT = 12
PSC_ENTRY_GFN_MASK = (1 << 40) - 1  # 40 bits
PSC_ENTRY_OPERATION_SHIFT = 52
PSC_ENTRY_OPERATION_MASK = 0xF  # 4 bits
PSC_ENTRY_PAGESIZE_SHIFT = 56
PSC_ENTRY_PAGESIZE_MASK = 0x1  # 1 bit
PSC_ENTRY_RESERVED_SHIFT = 57
PSC_ENTRY_RESERVED_MASK = 0x7F  # 7 bits


def _check_width(name: str, value: int, mask: int) -> None:
    if not isinstance(value, int) or value < 0 or value > mask:
        raise SpecDecodeError(name, value, f"does not fit the field (max {mask:#x})")


@dataclass(frozen=True)
class PscHdr:
    """``struct psc_hdr`` (8 bytes, packed, little-endian).

    ``cur_entry`` u16 @0: index of the next entry to process; ``end_entry`` u16 @2: index
    of the *last* entry (inclusive); ``reserved`` u32 @4: must be 0 (Linux fails the PSC
    if the hypervisor sets it).  Raw values are kept.  Constructing with a value that
    does not fit its width raises :class:`SpecDecodeError`.  Source: sev-common.h.
    """

    cur_entry: int
    end_entry: int
    reserved: int = 0

    def __post_init__(self) -> None:
        _check_width("hdr.cur_entry", self.cur_entry, U16_MAX)
        _check_width("hdr.end_entry", self.end_entry, U16_MAX)
        _check_width("hdr.reserved", self.reserved, U32_MAX)

    def encode(self) -> bytes:
        """The 8 header bytes."""
        return (
            self.cur_entry.to_bytes(2, "little")
            + self.end_entry.to_bytes(2, "little")
            + self.reserved.to_bytes(4, "little")
        )

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> PscHdr:
        """Decode the first 8 bytes of ``data``; fewer than 8 raises :class:`SpecDecodeError`."""
        if len(data) < PSC_HDR_SIZE:
            raise SpecDecodeError("psc.hdr", len(data), "a PSC header needs 8 bytes")
        b = bytes(data[:PSC_HDR_SIZE])
        return cls(
            int.from_bytes(b[0:2], "little"),
            int.from_bytes(b[2:4], "little"),
            int.from_bytes(b[4:8], "little"),
        )


@dataclass(frozen=True)
class PscEntry:
    """``struct psc_entry``: one u64 bit-field, little-endian in memory.

    ``cur_page`` [11:0] progress within the entry (0..1 for 4K, 0..512 for 2M);
    ``gfn`` [51:12]; ``operation`` [55:52] (raw; see :class:`PscOp`); ``pagesize`` [56]
    (0 = 4K, 1 = 2M); ``reserved`` [63:57].  Raw values are kept, so
    ``PscEntry.decode(e.encode()) == e`` for every u64.  Source: sev-common.h.
    """

    cur_page: int
    gfn: int
    operation: int
    pagesize: int
    reserved: int = 0

    def __post_init__(self) -> None:
        _check_width("entry.cur_page", self.cur_page, PSC_ENTRY_CUR_PAGE_MASK)
        _check_width("entry.gfn", self.gfn, PSC_ENTRY_GFN_MASK)
        _check_width("entry.operation", self.operation, PSC_ENTRY_OPERATION_MASK)
        _check_width("entry.pagesize", self.pagesize, PSC_ENTRY_PAGESIZE_MASK)
        _check_width("entry.reserved", self.reserved, PSC_ENTRY_RESERVED_MASK)

    @property
    def npages(self) -> int:
        """4 KiB pages the entry covers: 512 for 2M, 1 for 4K (KVM ``snp_begin_psc``)."""
        return PTRS_PER_PMD if self.pagesize else 1

    @property
    def op_name(self) -> str:
        """Name of the operation, or ``"unknown"``."""
        try:
            return PscOp(self.operation).name
        except ValueError:
            return "unknown"

    def encode(self) -> int:
        """The entry as a u64."""
        return (
            (self.cur_page << PSC_ENTRY_CUR_PAGE_SHIFT)
            | (self.gfn << PSC_ENTRY_GFN_SHIFT)
            | (self.operation << PSC_ENTRY_OPERATION_SHIFT)
            | (self.pagesize << PSC_ENTRY_PAGESIZE_SHIFT)
            | (self.reserved << PSC_ENTRY_RESERVED_SHIFT)
        )

    def encode_bytes(self) -> bytes:
        """The entry as its 8 little-endian bytes in memory."""
        return self.encode().to_bytes(PSC_ENTRY_SIZE, "little")

    @classmethod
    def decode(cls, value: int | bytes | bytearray | memoryview) -> PscEntry:
        """Decode a u64, or 8 little-endian bytes.

        Raises :class:`SpecDecodeError` for an int that is not a u64 or bytes that are not
        exactly 8 long.
        """
        if isinstance(value, (bytes, bytearray, memoryview)):
            if len(value) != PSC_ENTRY_SIZE:
                raise SpecDecodeError("psc.entry", len(value), "a PSC entry is 8 bytes")
            value = int.from_bytes(bytes(value), "little")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
            raise SpecDecodeError("psc.entry", value if isinstance(value, int) else -1, "not a u64")
        return cls(
            (value >> PSC_ENTRY_CUR_PAGE_SHIFT) & PSC_ENTRY_CUR_PAGE_MASK,
            (value >> PSC_ENTRY_GFN_SHIFT) & PSC_ENTRY_GFN_MASK,
            (value >> PSC_ENTRY_OPERATION_SHIFT) & PSC_ENTRY_OPERATION_MASK,
            (value >> PSC_ENTRY_PAGESIZE_SHIFT) & PSC_ENTRY_PAGESIZE_MASK,
            (value >> PSC_ENTRY_RESERVED_SHIFT) & PSC_ENTRY_RESERVED_MASK,
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict of the raw fields plus the operation name."""
        return {
            "raw": self.encode(),
            "cur_page": self.cur_page,
            "gfn": self.gfn,
            "operation": self.operation,
            "operation_name": self.op_name,
            "pagesize": self.pagesize,
            "reserved": self.reserved,
        }


@dataclass(frozen=True)
class SnpPscDesc:
    """``struct snp_psc_desc``: header followed by entries (as many as the buffer holds).

    ``trailing`` keeps bytes after the last whole entry so that decode/encode round-trip
    any byte string; a real descriptor has none.  Source: sev-common.h.
    """

    hdr: PscHdr
    entries: tuple[PscEntry, ...] = ()
    trailing: bytes = b""

    def encode(self) -> bytes:
        """Header bytes, then each entry's 8 bytes, then ``trailing``."""
        return self.hdr.encode() + b"".join(e.encode_bytes() for e in self.entries) + self.trailing

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> SnpPscDesc:
        """Decode the header and every whole 8-byte entry that follows.

        Never raises for any byte string of 8 bytes or more; fewer than 8 raises
        :class:`SpecDecodeError` (field ``psc.hdr``, value = the length).
        """
        b = bytes(data)
        hdr = PscHdr.decode(b)
        body = b[PSC_HDR_SIZE:]
        n = len(body) // PSC_ENTRY_SIZE
        entries = tuple(
            PscEntry.decode(body[i * PSC_ENTRY_SIZE : (i + 1) * PSC_ENTRY_SIZE]) for i in range(n)
        )
        return cls(hdr, entries, body[n * PSC_ENTRY_SIZE :])

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "hdr": {
                "cur_entry": self.hdr.cur_entry,
                "end_entry": self.hdr.end_entry,
                "reserved": self.hdr.reserved,
            },
            "entries": [e.to_dict() for e in self.entries],
            "trailing_bytes": len(self.trailing),
        }


def validate_psc_desc(desc: SnpPscDesc) -> list[str]:
    """Spec problems of a descriptor, each naming the field and its value; [] if none.

    Checked: ``hdr.reserved`` != 0 (Linux guest check); ``hdr.end_entry`` >= 253 (KVM:
    INVALID_HDR); ``end_entry`` beyond the entries the data holds; trailing bytes that do
    not form an entry; and for entries 0..end_entry: reserved bits 63:57 set, operation
    not 1-4, a 2M GFN not 512-aligned and ``cur_page`` > npages (KVM: INVALID_ENTRY).
    Entries past ``end_entry`` are not checked (no one reads them).
    """
    p: list[str] = []
    h = desc.hdr
    if h.reserved:
        p.append(f"hdr.reserved={h.reserved:#x}: must be 0")
    if h.end_entry >= VMGEXIT_PSC_MAX_COUNT:
        p.append(
            f"hdr.end_entry={h.end_entry}: >= VMGEXIT_PSC_MAX_COUNT ({VMGEXIT_PSC_MAX_COUNT}); "
            "KVM answers VMGEXIT_PSC_ERROR_INVALID_HDR"
        )
    if h.end_entry >= len(desc.entries):
        p.append(
            f"hdr.end_entry={h.end_entry}: the data holds only {len(desc.entries)} "
            f"entr{'y' if len(desc.entries) == 1 else 'ies'}"
        )
    if desc.trailing:
        p.append(
            f"length={PSC_HDR_SIZE + PSC_ENTRY_SIZE * len(desc.entries) + len(desc.trailing)}: "
            f"{len(desc.trailing)} trailing byte(s) do not form a whole 8-byte entry"
        )
    last = min(h.end_entry, len(desc.entries) - 1)
    for i in range(last + 1):
        e = desc.entries[i]
        if e.reserved:
            p.append(f"entries[{i}].reserved={e.reserved:#x}: bits 63:57 must be 0")
        if e.operation not in PscOp._value2member_map_:
            p.append(
                f"entries[{i}].operation={e.operation}: unknown operation "
                "(1 private, 2 shared, 3 psmash, 4 unsmash)"
            )
        if e.pagesize and e.gfn % PTRS_PER_PMD:
            p.append(
                f"entries[{i}].gfn={e.gfn:#x}: a 2M entry needs a 512-aligned GFN; "
                "KVM answers VMGEXIT_PSC_ERROR_INVALID_ENTRY"
            )
        if e.cur_page > e.npages:
            p.append(
                f"entries[{i}].cur_page={e.cur_page}: > npages ({e.npages}); "
                "KVM answers VMGEXIT_PSC_ERROR_INVALID_ENTRY"
            )
    return p


_PSC_RESULTS = {
    0: "success",
    VMGEXIT_PSC_ERROR_INVALID_HDR: "VMGEXIT_PSC_ERROR_INVALID_HDR",
    VMGEXIT_PSC_ERROR_INVALID_ENTRY: "VMGEXIT_PSC_ERROR_INVALID_ENTRY",
    VMGEXIT_PSC_ERROR_GENERIC: "VMGEXIT_PSC_ERROR_GENERIC",
}


def describe_psc_result(value: int) -> str:
    """Name of ``sw_exit_info_2`` after a PSC VMGEXIT, or ``"unknown"``.

    0 = ``"success"``; the three ``VMGEXIT_PSC_ERROR_*`` by name; anything else
    ``"unknown"`` (never the nearest known value).  Raises :class:`SpecDecodeError` for a
    value that is not a u64.  Source: sev-common.h.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise SpecDecodeError("sw_exit_info_2", value if isinstance(value, int) else -1, "not a u64")
    return _PSC_RESULTS.get(value, "unknown")
