# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""PSC descriptor validation and header layout (hardware-and-ghcb.md 5.1, kvm-qemu-host.md 1.4)."""

import pytest

from snpsim.spec.errors import SpecDecodeError
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc, validate_psc_desc


def test_header_layout():
    h = PscHdr(cur_entry=0x0102, end_entry=0x0304, reserved=0x05060708)
    assert h.encode() == bytes([0x02, 0x01, 0x04, 0x03, 0x08, 0x07, 0x06, 0x05])
    assert PscHdr.decode(h.encode()) == h


def test_short_buffer():
    with pytest.raises(SpecDecodeError) as ei:
        SnpPscDesc.decode(bytes(7))
    assert ei.value.value == 7


def test_valid_descriptor_has_no_problems():
    d = SnpPscDesc(
        PscHdr(0, 1),
        (PscEntry.decode(0x0010000000100000), PscEntry.decode(0x0120000000200000)),
    )
    assert validate_psc_desc(d) == []


def test_problems_named():
    entries = (
        PscEntry(0, 0x201, 1, 1),  # 2M, not 512-aligned
        PscEntry(2, 0x300, 2, 0),  # cur_page 2 > npages 1
        PscEntry(0, 0x400, 5, 0),  # unknown op
        PscEntry(0, 0x500, 1, 0, reserved=1),
    )
    d = SnpPscDesc(PscHdr(0, 3, reserved=1), entries, trailing=b"\x00\x01")
    p = validate_psc_desc(d)
    assert any(x.startswith("hdr.reserved=0x1") for x in p)
    assert any(x.startswith("entries[0].gfn=0x201") for x in p)
    assert any(x.startswith("entries[1].cur_page=2") for x in p)
    assert any(x.startswith("entries[2].operation=5") for x in p)
    assert any(x.startswith("entries[3].reserved=0x1") for x in p)
    assert any("trailing" in x for x in p)


def test_end_entry_limits():
    one = (PscEntry.decode(0x0010000000100000),)
    p = validate_psc_desc(SnpPscDesc(PscHdr(0, 253), one))
    assert any("VMGEXIT_PSC_MAX_COUNT" in x for x in p)
    assert any("holds only 1 entry" in x for x in p)
    assert validate_psc_desc(SnpPscDesc(PscHdr(0, 252), one * 253)) == []


def test_cur_page_512_is_valid_for_2m():
    assert validate_psc_desc(SnpPscDesc(PscHdr(0, 0), (PscEntry(512, 0x200, 1, 1),))) == []
    p = validate_psc_desc(SnpPscDesc(PscHdr(0, 0), (PscEntry(513, 0x200, 1, 1),)))
    assert p and p[0].startswith("entries[0].cur_page=513")


def test_entry_width_checked():
    with pytest.raises(SpecDecodeError):
        PscEntry(0, 1 << 40, 1, 0)
    with pytest.raises(SpecDecodeError):
        PscEntry.decode(bytes(7))
