# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""GHCB page layout, valid bitmap and field access over a 4096-byte buffer.

Sources:
- GHCB specification (AMD Pub# 56421) v2, GHCB layout table; restated by three struct
  definitions that agree (reference ``hardware-and-ghcb.md`` section 4): Linux
  ``struct ghcb_save_area`` / ``struct ghcb`` (``arch/x86/include/asm/svm.h``, v6.16),
  COCONUT-SVSM ``kernel/src/sev/ghcb.rs`` and OpenVMM ``GhcbSaveArea``.
- Valid-bitmap semantics: Linux ``DEFINE_GHCB_ACCESSORS`` (``asm/svm.h``): bit
  ``offset / 8`` of the 128-bit little-endian bitmap at 0x3F0; ``vc_ghcb_invalidate``.
- ``GHCB_PROTOCOL_MIN/MAX`` 1/2: ``arch/x86/include/asm/sev.h`` (v6.16).
- ``GHCB_SHARED_BUF_SIZE`` 2032 and ``GHCB_DEFAULT_USAGE`` 0: ``asm/svm.h``.

The GHCB lives as bytes in simulated memory (STYLE.md section 4); every accessor here
takes the raw buffer, so each side decodes its own copy.  Buffers must be exactly
``GHCB_SIZE`` bytes; any other length raises :class:`SpecDecodeError`.  Field names that
are not in :data:`GHCB_FIELDS` raise ``KeyError`` (a caller bug, not an input problem).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .errors import SpecDecodeError
from .exit_codes import SVM_VMGEXIT_PSC, describe_exit_code
from .units import U64_MAX

__all__ = [
    "GHCB_SIZE",
    "GhcbField",
    "GHCB_FIELDS",
    "GHCB_SAVE_AREA_SIZE",
    "GHCB_SHARED_BUF_OFFSET",
    "GHCB_SHARED_BUF_SIZE",
    "GHCB_SHARED_BUF_END",
    "GHCB_PROTOCOL_VERSION_OFFSET",
    "GHCB_USAGE_OFFSET",
    "GHCB_VALID_BITMAP_OFFSET",
    "GHCB_VALID_BITMAP_SIZE",
    "GHCB_VALID_BITMAP_BITS",
    "GHCB_PROTOCOL_MIN",
    "GHCB_PROTOCOL_MAX",
    "GHCB_DEFAULT_USAGE",
    "ghcb_bitmap_bit",
    "ghcb_get",
    "ghcb_set",
    "ghcb_is_valid",
    "ghcb_set_valid",
    "ghcb_clear_valid_bitmap",
    "ghcb_valid_names",
    "ghcb_valid_bits",
    "GhcbScratch",
    "GhcbDecoded",
    "decode_ghcb",
]

#: Size of the GHCB page in bytes (one 4 KiB page).  GHCB spec 56421, GHCB layout.
GHCB_SIZE = 4096


class GhcbField(NamedTuple):
    """One GHCB field: spec/Linux ``name``, byte ``offset`` in the page, ``size`` in bytes."""

    name: str
    offset: int
    size: int


def _f(name: str, offset: int, size: int = 8) -> tuple[str, GhcbField]:
    return name, GhcbField(name, offset, size)


#: Every named field of the GHCB page, in offset order.  Offsets and sizes from GHCB spec
#: 56421 v2 as restated by Linux ``struct ghcb_save_area``/``struct ghcb`` (asm/svm.h),
#: SVSM and OpenVMM (reference hardware-and-ghcb.md section 4).  ``cpl`` is the u8 at
#: 0xCB inside the qword at 0xC8.  ``rip``/``rsp`` are reserved in SVSM but named by Linux.
GHCB_FIELDS: dict[str, GhcbField] = dict(
    [
        _f("cpl", 0x0CB, 1),
        _f("xss", 0x140),
        _f("dr7", 0x160),
        _f("rip", 0x178),
        _f("rsp", 0x1D8),
        _f("rax", 0x1F8),
        _f("rcx", 0x308),
        _f("rdx", 0x310),
        _f("rbx", 0x318),
        _f("rbp", 0x328),
        _f("rsi", 0x330),
        _f("rdi", 0x338),
        _f("r8", 0x340),
        _f("r9", 0x348),
        _f("r10", 0x350),
        _f("r11", 0x358),
        _f("r12", 0x360),
        _f("r13", 0x368),
        _f("r14", 0x370),
        _f("r15", 0x378),
        _f("sw_exit_code", 0x390),
        _f("sw_exit_info_1", 0x398),
        _f("sw_exit_info_2", 0x3A0),
        _f("sw_scratch", 0x3A8),
        _f("xcr0", 0x3E8),
        _f("valid_bitmap", 0x3F0, 16),
        _f("x87_state_gpa", 0x400),
        _f("protocol_version", 0xFFA, 2),
        _f("ghcb_usage", 0xFFC, 4),
    ]
)

#: ``struct ghcb_save_area`` size in bytes (0x000-0x407); Linux asserts
#: ``EXPECTED_GHCB_SAVE_AREA_SIZE`` 1032 (asm/svm.h).
GHCB_SAVE_AREA_SIZE = 1032
#: Offset of ``shared_buffer`` in the page (bytes).  GHCB spec 56421; asm/svm.h.
GHCB_SHARED_BUF_OFFSET = 0x800
#: ``GHCB_SHARED_BUF_SIZE``: 2032 bytes (0x7F0).  asm/svm.h.
GHCB_SHARED_BUF_SIZE = 2032
#: First byte past the shared buffer (0xFF0, where ``reserved_0xff0`` starts).
GHCB_SHARED_BUF_END = GHCB_SHARED_BUF_OFFSET + GHCB_SHARED_BUF_SIZE
#: Offset of ``protocol_version`` (u16).  GHCB spec 56421; asm/svm.h.
GHCB_PROTOCOL_VERSION_OFFSET = 0xFFA
#: Offset of ``ghcb_usage`` (u32).  GHCB spec 56421; asm/svm.h.
GHCB_USAGE_OFFSET = 0xFFC
#: Offset of the 16-byte ``valid_bitmap``.  GHCB spec 56421; asm/svm.h.
GHCB_VALID_BITMAP_OFFSET = 0x3F0
#: Size of the valid bitmap in bytes (128 bits, covering qwords 0-127 = offsets 0x000-0x3FF).
GHCB_VALID_BITMAP_SIZE = 16
#: Number of bits in the valid bitmap.
GHCB_VALID_BITMAP_BITS = GHCB_VALID_BITMAP_SIZE * 8
#: Lowest GHCB protocol version Linux supports (``GHCB_PROTOCOL_MIN``, asm/sev.h v6.16).
GHCB_PROTOCOL_MIN = 1
#: Highest GHCB protocol version Linux supports (``GHCB_PROTOCOL_MAX``, asm/sev.h v6.16);
#: SNP needs version 2.
GHCB_PROTOCOL_MAX = 2
#: ``GHCB_DEFAULT_USAGE``: the standard GHCB format (0).  asm/svm.h.  KVM rejects any other
#: usage with ``GHCB_ERR_INVALID_USAGE`` (kvm-qemu-host.md section 1.3).
GHCB_DEFAULT_USAGE = 0


def _check_buf(buf: bytes | bytearray | memoryview) -> None:
    if len(buf) != GHCB_SIZE:
        raise SpecDecodeError("ghcb", len(buf), f"a GHCB buffer is exactly {GHCB_SIZE} bytes")


def ghcb_bitmap_bit(name: str) -> int:
    """Valid-bitmap bit of field ``name``: its offset / 8 (0..127).

    Raises :class:`SpecDecodeError` for fields outside the 128-bit bitmap
    (``x87_state_gpa``, ``protocol_version``, ``ghcb_usage``), ``KeyError`` for unknown
    names.  Source: Linux ``DEFINE_GHCB_ACCESSORS`` (asm/svm.h).  Unlike SVSM, which
    computes the index modulo the bitmap and wraps 0x400 onto bit 0, offsets >= 0x400 are
    rejected (reference hardware-and-ghcb.md section 4, "Quirk").
    """
    f = GHCB_FIELDS[name]
    bit = f.offset // 8
    if bit >= GHCB_VALID_BITMAP_BITS:
        raise SpecDecodeError(
            name, f.offset, "field lies outside the 128-bit valid bitmap (offsets >= 0x400)"
        )
    return bit


def _bitmap(buf: bytes | bytearray | memoryview) -> int:
    o = GHCB_VALID_BITMAP_OFFSET
    return int.from_bytes(bytes(buf[o : o + GHCB_VALID_BITMAP_SIZE]), "little")


def ghcb_get(buf: bytes | bytearray | memoryview, name: str) -> int:
    """Read field ``name`` (little-endian, ``size`` bytes) regardless of its valid bit.

    Raises :class:`SpecDecodeError` if ``buf`` is not 4096 bytes.
    """
    _check_buf(buf)
    f = GHCB_FIELDS[name]
    return int.from_bytes(bytes(buf[f.offset : f.offset + f.size]), "little")


def ghcb_set(buf: bytearray, name: str, value: int, *, mark_valid: bool = True) -> None:
    """Write ``value`` masked to the field's width into ``buf``; set its valid bit.

    Like Linux ``ghcb_set_<field>``: the value is stored and bit ``offset / 8`` is set.
    The valid bit is set only for fields inside the bitmap (not for ``valid_bitmap``
    itself, ``x87_state_gpa``, ``protocol_version`` or ``ghcb_usage``) and only when
    ``mark_valid``.  Raises :class:`SpecDecodeError` if ``buf`` is not 4096 bytes.
    """
    _check_buf(buf)
    f = GHCB_FIELDS[name]
    v = value & ((1 << (8 * f.size)) - 1)
    buf[f.offset : f.offset + f.size] = v.to_bytes(f.size, "little")
    if mark_valid and name != "valid_bitmap" and f.offset // 8 < GHCB_VALID_BITMAP_BITS:
        ghcb_set_valid(buf, name)


def ghcb_is_valid(buf: bytes | bytearray | memoryview, name: str) -> bool:
    """True when the valid bit of ``name`` is set (Linux ``ghcb_<field>_is_valid``).

    Raises :class:`SpecDecodeError` for a wrong-size buffer or a field outside the bitmap.
    """
    _check_buf(buf)
    return bool((_bitmap(buf) >> ghcb_bitmap_bit(name)) & 1)


def ghcb_set_valid(buf: bytearray, name: str) -> None:
    """Set the valid bit of ``name`` without touching the field.

    Raises :class:`SpecDecodeError` for a wrong-size buffer or a field outside the bitmap.
    """
    _check_buf(buf)
    bit = ghcb_bitmap_bit(name)
    o = GHCB_VALID_BITMAP_OFFSET + bit // 8
    buf[o] |= 1 << (bit % 8)


def ghcb_clear_valid_bitmap(buf: bytearray) -> None:
    """Zero the 16-byte valid bitmap (only the bitmap).

    Linux ``vc_ghcb_invalidate`` additionally zeroes ``sw_exit_code``; callers modelling it
    do that themselves.  Raises :class:`SpecDecodeError` for a wrong-size buffer.
    """
    _check_buf(buf)
    o = GHCB_VALID_BITMAP_OFFSET
    buf[o : o + GHCB_VALID_BITMAP_SIZE] = bytes(GHCB_VALID_BITMAP_SIZE)


def ghcb_valid_bits(buf: bytes | bytearray | memoryview) -> list[int]:
    """All set bits of the valid bitmap, ascending (0..127)."""
    _check_buf(buf)
    bm = _bitmap(buf)
    return [i for i in range(GHCB_VALID_BITMAP_BITS) if (bm >> i) & 1]


def ghcb_valid_names(buf: bytes | bytearray | memoryview) -> list[str]:
    """Names of the fields (of :data:`GHCB_FIELDS`, in offset order) marked valid.

    ``valid_bitmap`` itself is never listed.  Raises :class:`SpecDecodeError` for a
    wrong-size buffer.
    """
    _check_buf(buf)
    bm = _bitmap(buf)
    out = []
    for f in GHCB_FIELDS.values():
        bit = f.offset // 8
        if f.name != "valid_bitmap" and bit < GHCB_VALID_BITMAP_BITS and (bm >> bit) & 1:
            out.append(f.name)
    return out


@dataclass(frozen=True)
class GhcbScratch:
    """Where ``sw_scratch`` points, relative to a GHCB at ``ghcb_gpa``.

    ``gpa`` is the scratch GPA; ``in_shared_buffer`` is True when it lies in
    ``[ghcb_gpa + 0x800, ghcb_gpa + 0xFF0)``; then ``offset`` is its offset in the page and
    ``data`` the bytes from there to the end of the shared buffer.  Model-only helper.
    """

    gpa: int
    in_ghcb_page: bool
    in_shared_buffer: bool
    offset: int | None
    data: bytes


@dataclass
class GhcbDecoded:
    """What :func:`decode_ghcb` found in a GHCB page.  Model-only.

    ``fields``: value of every field marked valid (name -> int); ``unnamed_valid_bits``:
    valid bits that name no field of :data:`GHCB_FIELDS`; ``exit_code_name``: name of
    ``sw_exit_code`` (or ``"unknown"``); ``protocol_version`` and ``ghcb_usage`` are always
    read; ``scratch`` when ``sw_scratch`` is valid; ``psc`` the decoded PSC descriptor when
    the exit is ``SVM_VMGEXIT_PSC`` and the scratch area is in the shared buffer;
    ``problems``: spec problems, each naming the field and value.
    """

    fields: dict[str, int]
    unnamed_valid_bits: list[int]
    exit_code_name: str | None
    protocol_version: int
    ghcb_usage: int
    ghcb_gpa: int | None
    scratch: GhcbScratch | None
    psc: object | None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (ints stay ints; scratch bytes as hex)."""
        d: dict[str, object] = {
            "fields": dict(self.fields),
            "unnamed_valid_bits": list(self.unnamed_valid_bits),
            "exit_code_name": self.exit_code_name,
            "protocol_version": self.protocol_version,
            "ghcb_usage": self.ghcb_usage,
            "ghcb_gpa": self.ghcb_gpa,
            "scratch": None,
            "psc": None,
            "problems": list(self.problems),
        }
        if self.scratch is not None:
            s = self.scratch
            d["scratch"] = {
                "gpa": s.gpa,
                "in_ghcb_page": s.in_ghcb_page,
                "in_shared_buffer": s.in_shared_buffer,
                "offset": s.offset,
                "data_hex": s.data.hex(),
            }
        if self.psc is not None:
            d["psc"] = self.psc.to_dict()  # type: ignore[attr-defined]
        return d


def decode_ghcb(buf: bytes | bytearray | memoryview, ghcb_gpa: int | None = None) -> GhcbDecoded:
    """Decode a GHCB page: valid fields, exit code by name, version, usage, scratch area.

    ``ghcb_gpa`` (the page's GPA, 4 KiB aligned) lets ``sw_scratch`` be located: a scratch
    GPA inside the page must lie wholly within the shared buffer 0x800-0xFEF (KVM
    ``setup_vmgexit_scratch``); outside the page it is guest memory this decoder cannot see.
    Problems reported: ``ghcb_usage`` != 0, ``protocol_version`` outside 1..2, scratch in
    the GHCB page but outside the shared buffer, valid bits naming no field.  Raises
    :class:`SpecDecodeError` for a buffer that is not 4096 bytes or a ``ghcb_gpa`` that is
    not a page-aligned u64.
    """
    from .psc import SnpPscDesc, validate_psc_desc

    _check_buf(buf)
    if ghcb_gpa is not None and (
        not 0 <= ghcb_gpa <= U64_MAX or ghcb_gpa & (GHCB_SIZE - 1)
    ):
        raise SpecDecodeError("ghcb_gpa", ghcb_gpa, "the GHCB GPA is a 4 KiB-aligned u64")
    problems: list[str] = []
    names = ghcb_valid_names(buf)
    fields = {n: ghcb_get(buf, n) for n in names}
    named_bits = {f.offset // 8 for f in GHCB_FIELDS.values()}
    unnamed = [b for b in ghcb_valid_bits(buf) if b not in named_bits]
    for b in unnamed:
        problems.append(f"valid_bitmap bit {b} (offset {b * 8:#x}) is set but names no field")

    exit_name = None
    if "sw_exit_code" in fields:
        exit_name = describe_exit_code(fields["sw_exit_code"])

    version = ghcb_get(buf, "protocol_version")
    usage = ghcb_get(buf, "ghcb_usage")
    if usage != GHCB_DEFAULT_USAGE:
        problems.append(
            f"ghcb_usage={usage:#x}: not GHCB_DEFAULT_USAGE (0); KVM answers GHCB_ERR_INVALID_USAGE"
        )
    if not GHCB_PROTOCOL_MIN <= version <= GHCB_PROTOCOL_MAX:
        problems.append(
            f"protocol_version={version}: outside {GHCB_PROTOCOL_MIN}..{GHCB_PROTOCOL_MAX}"
        )

    scratch = None
    psc = None
    if "sw_scratch" in fields:
        sgpa = fields["sw_scratch"]
        in_page = in_buf = False
        offset = None
        data = b""
        if ghcb_gpa is not None:
            in_page = ghcb_gpa <= sgpa < ghcb_gpa + GHCB_SIZE
            if in_page:
                offset = sgpa - ghcb_gpa
                in_buf = GHCB_SHARED_BUF_OFFSET <= offset < GHCB_SHARED_BUF_END
                if in_buf:
                    data = bytes(buf[offset:GHCB_SHARED_BUF_END])
                else:
                    problems.append(
                        f"sw_scratch={sgpa:#x}: inside the GHCB page (offset {offset:#x}) but "
                        "outside the shared buffer 0x800-0xFEF; KVM answers "
                        "GHCB_ERR_INVALID_SCRATCH_AREA"
                    )
        scratch = GhcbScratch(sgpa, in_page, in_buf, offset, data)
        if in_buf and fields.get("sw_exit_code") == SVM_VMGEXIT_PSC and len(data) >= 8:
            desc = SnpPscDesc.decode(data)
            psc = desc
            problems.extend(f"psc: {p}" for p in validate_psc_desc(desc))
    return GhcbDecoded(
        fields=fields,
        unnamed_valid_bits=unnamed,
        exit_code_name=exit_name,
        protocol_version=version,
        ghcb_usage=usage,
        ghcb_gpa=ghcb_gpa,
        scratch=scratch,
        psc=psc,
        problems=problems,
    )
