# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""GHCB layout against the reference table, bitmap semantics and decode_ghcb."""

import pytest

from snpsim.spec.errors import SpecDecodeError
from snpsim.spec.ghcb import (
    GHCB_FIELDS,
    GHCB_SAVE_AREA_SIZE,
    GHCB_SHARED_BUF_OFFSET,
    GHCB_SHARED_BUF_SIZE,
    GHCB_SIZE,
    decode_ghcb,
    ghcb_bitmap_bit,
    ghcb_clear_valid_bitmap,
    ghcb_get,
    ghcb_is_valid,
    ghcb_set,
    ghcb_set_valid,
    ghcb_valid_names,
)
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc

# (name, offset, size, bit) typed from hardware-and-ghcb.md section 4 / kvm-qemu-host.md 1.1
REFERENCE = [
    ("cpl", 0x0CB, 1, 25),
    ("xss", 0x140, 8, 40),
    ("dr7", 0x160, 8, 44),
    ("rip", 0x178, 8, 47),
    ("rsp", 0x1D8, 8, 59),
    ("rax", 0x1F8, 8, 63),
    ("rcx", 0x308, 8, 97),
    ("rdx", 0x310, 8, 98),
    ("rbx", 0x318, 8, 99),
    ("rbp", 0x328, 8, 101),
    ("rsi", 0x330, 8, 102),
    ("rdi", 0x338, 8, 103),
    *[(f"r{8 + i}", 0x340 + 8 * i, 8, 104 + i) for i in range(8)],
    ("sw_exit_code", 0x390, 8, 114),
    ("sw_exit_info_1", 0x398, 8, 115),
    ("sw_exit_info_2", 0x3A0, 8, 116),
    ("sw_scratch", 0x3A8, 8, 117),
    ("xcr0", 0x3E8, 8, 125),
    ("valid_bitmap", 0x3F0, 16, 126),
    ("x87_state_gpa", 0x400, 8, None),
    ("protocol_version", 0xFFA, 2, None),
    ("ghcb_usage", 0xFFC, 4, None),
]


@pytest.mark.parametrize("name,offset,size,bit", REFERENCE)
def test_field_table(name, offset, size, bit):
    f = GHCB_FIELDS[name]
    assert (f.offset, f.size) == (offset, size)
    if bit is None:
        with pytest.raises(SpecDecodeError):
            ghcb_bitmap_bit(name)
    else:
        assert ghcb_bitmap_bit(name) == bit


def test_table_is_complete_and_sizes():
    assert set(GHCB_FIELDS) == {r[0] for r in REFERENCE}
    assert GHCB_SIZE == 4096 and GHCB_SAVE_AREA_SIZE == 1032
    assert GHCB_FIELDS["x87_state_gpa"].offset + 8 == GHCB_SAVE_AREA_SIZE
    assert GHCB_SHARED_BUF_OFFSET == 0x800 and GHCB_SHARED_BUF_SIZE == 2032
    assert GHCB_SHARED_BUF_OFFSET + GHCB_SHARED_BUF_SIZE == 0xFF0


def test_set_get_valid():
    buf = bytearray(GHCB_SIZE)
    ghcb_set(buf, "sw_exit_code", 0x80000010)
    assert ghcb_get(buf, "sw_exit_code") == 0x80000010
    assert ghcb_is_valid(buf, "sw_exit_code")
    # bit 114 = byte 0x3F0 + 14, bit 2
    assert buf[0x3F0 + 14] == 1 << 2
    ghcb_set(buf, "sw_scratch", 0x1000, mark_valid=False)
    assert not ghcb_is_valid(buf, "sw_scratch")
    ghcb_set_valid(buf, "sw_scratch")
    assert buf[0x3F0 + 14] == (1 << 2) | (1 << 5)
    assert ghcb_valid_names(buf) == ["sw_exit_code", "sw_scratch"]
    ghcb_set(buf, "cpl", 0x1FF)  # masked to u8
    assert ghcb_get(buf, "cpl") == 0xFF and buf[0xCB] == 0xFF
    ghcb_clear_valid_bitmap(buf)
    assert ghcb_valid_names(buf) == [] and ghcb_get(buf, "sw_exit_code") == 0x80000010
    ghcb_set(buf, "protocol_version", 2)
    assert buf[0xFFA:0xFFC] == b"\x02\x00"


@pytest.mark.parametrize("n", [0, 4095, 4097])
def test_wrong_length(n):
    with pytest.raises(SpecDecodeError) as ei:
        ghcb_get(bytes(n), "rax")
    assert ei.value.value == n
    with pytest.raises(SpecDecodeError):
        decode_ghcb(bytes(n))


def _psc_ghcb(gpa, desc):
    buf = bytearray(GHCB_SIZE)
    ghcb_set(buf, "sw_exit_code", 0x80000010)
    ghcb_set(buf, "sw_exit_info_1", 0)
    ghcb_set(buf, "sw_exit_info_2", 0)
    ghcb_set(buf, "sw_scratch", gpa + 0x800)
    ghcb_set(buf, "protocol_version", 2)
    raw = desc.encode()
    buf[0x800 : 0x800 + len(raw)] = raw
    return buf


def test_decode_ghcb_psc():
    desc = SnpPscDesc(PscHdr(0, 0), (PscEntry.decode(0x0010000000100000),))
    g = decode_ghcb(_psc_ghcb(0x5000, desc), 0x5000)
    assert g.exit_code_name == "SVM_VMGEXIT_PSC"
    assert g.scratch is not None and g.scratch.in_shared_buffer and g.scratch.offset == 0x800
    assert g.psc is not None and g.psc.entries[0].gfn == 0x100
    assert g.problems == []
    assert g.protocol_version == 2 and g.ghcb_usage == 0


def test_decode_ghcb_problems():
    buf = bytearray(GHCB_SIZE)
    ghcb_set(buf, "sw_scratch", 0x5000 + 0x100)  # in the page, not in the shared buffer
    ghcb_set(buf, "ghcb_usage", 1)
    buf[0x3F0] |= 1  # bit 0: offset 0, names no field
    g = decode_ghcb(buf, 0x5000)
    assert any(p.startswith("sw_scratch=") for p in g.problems)
    assert any(p.startswith("ghcb_usage=") for p in g.problems)
    assert any("bit 0" in p for p in g.problems)
    assert any(p.startswith("protocol_version=0") for p in g.problems)
    with pytest.raises(SpecDecodeError):
        decode_ghcb(buf, 0x5001)
