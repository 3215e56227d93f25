# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Hypothesis round-trips for every codec and no-crash properties of the decoders."""

import string

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from snpsim.cli import main
from snpsim.spec.errors import SpecDecodeError
from snpsim.spec.exit_codes import describe_exit_code
from snpsim.spec.faults import decode_npf_error_code, decode_pf_error_code
from snpsim.spec.ghcb import GHCB_FIELDS, GHCB_SIZE, decode_ghcb, ghcb_get, ghcb_set
from snpsim.spec.msr_protocol import (
    GHCB_MSR_PSC_REQ_GFN,
    GHCB_MSR_PSC_REQ_TO_GFN,
    GHCB_MSR_PSC_REQ_TO_OP,
    GHCB_MSR_SEV_INFO,
    GHCB_MSR_TERM_REQ_VAL,
    decode_msr,
)
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc, describe_psc_result, validate_psc_desc
from snpsim.spec.rmp import RmpReadOut, RmpState
from snpsim.spec.termination import decode_term_msr, decode_term_nae

u64 = st.integers(0, 2**64 - 1)


@given(u64)
def test_psc_entry_roundtrip_every_u64(v):
    e = PscEntry.decode(v)
    assert e.encode() == v
    assert PscEntry.decode(e.encode_bytes()) == e


@given(
    st.integers(0, 0xFFF),
    st.integers(0, 2**40 - 1),
    st.integers(0, 15),
    st.integers(0, 1),
    st.integers(0, 127),
)
def test_psc_entry_roundtrip_fields(cp, gfn, op, ps, rsv):
    e = PscEntry(cp, gfn, op, ps, rsv)
    assert PscEntry.decode(e.encode()) == e


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1))
def test_psc_hdr_roundtrip(c, e, r):
    h = PscHdr(c, e, r)
    assert PscHdr.decode(h.encode()) == h


@given(st.binary(min_size=8, max_size=2100))
def test_psc_desc_any_bytes(data):
    d = SnpPscDesc.decode(data)
    assert d.encode() == data
    validate_psc_desc(d)


@given(st.binary(max_size=7))
def test_psc_desc_short_raises_planned(data):
    try:
        SnpPscDesc.decode(data)
    except SpecDecodeError as exc:
        assert exc.value == len(data)
    else:
        raise AssertionError("short buffer decoded")


@given(u64)
def test_msr_decode_never_crashes(v):
    m = decode_msr(v)
    assert m.value == v and m.info == v & 0xFFF
    describe_psc_result(v)
    describe_exit_code(v)
    decode_npf_error_code(v)
    decode_pf_error_code(v)
    decode_term_msr(v)
    decode_term_nae(v)


@given(st.integers(0, 2**40 - 1), st.integers(0, 15))
def test_msr_psc_req_roundtrip(gfn, op):
    v = GHCB_MSR_PSC_REQ_GFN(gfn, op)
    assert (GHCB_MSR_PSC_REQ_TO_GFN(v), GHCB_MSR_PSC_REQ_TO_OP(v)) == (gfn, op)
    m = decode_msr(v)
    assert m.fields == {"gfn": gfn, "operation": op}


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFF))
def test_sev_info_roundtrip(mx, mn, cbit):
    f = decode_msr(GHCB_MSR_SEV_INFO(mx, mn, cbit)).fields
    assert (f["max_version"], f["min_version"], f["cbit"]) == (mx, mn, cbit)


@given(st.integers(0, 15), st.integers(0, 255))
def test_term_roundtrip(s, c):
    t = decode_term_msr(GHCB_MSR_TERM_REQ_VAL(s, c))
    assert (t.reason_set, t.reason_code, t.problems) == (s, c, [])


@given(
    u64,
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 2**32 - 1),
)
def test_rmp_blocks_roundtrip(gpa, a, p, i, r, asid):
    s = RmpState(gpa, a, p, i, r, asid)
    assert RmpState.decode(s.encode()) == s
    o = RmpReadOut(gpa, a, p, i, r, asid)
    assert RmpReadOut.decode(o.encode()) == o


@given(st.sampled_from(sorted(GHCB_FIELDS)), u64)
def test_ghcb_field_roundtrip(name, v):
    buf = bytearray(GHCB_SIZE)
    ghcb_set(buf, name, v)
    f = GHCB_FIELDS[name]
    assert ghcb_get(buf, name) == v & ((1 << (8 * f.size)) - 1)


@settings(max_examples=100)
@given(
    st.binary(min_size=16, max_size=16),
    st.one_of(st.sampled_from([0x80000010, 0x72, 0x403]), u64),
    st.one_of(st.integers(0x5000, 0x6000), u64),
    st.binary(max_size=300),
    st.integers(0, 2**32 - 1),
    st.integers(0, 0xFFFF),
    st.one_of(st.none(), st.just(0x5000), st.integers(0, 2**52 - 1)),
)
def test_decode_ghcb_any_page(bitmap, code, scratch, shared, usage, version, gpa):
    buf = bytearray(GHCB_SIZE)
    ghcb_set(buf, "sw_exit_code", code)
    ghcb_set(buf, "sw_scratch", scratch)
    ghcb_set(buf, "ghcb_usage", usage)
    ghcb_set(buf, "protocol_version", version)
    buf[0x3F0:0x400] = bitmap
    buf[0x800 : 0x800 + len(shared)] = shared
    g = decode_ghcb(bytes(buf), gpa if gpa is None or gpa == 0x5000 else gpa << 12)
    g.to_dict()


_KINDS = ["msr", "psc", "npf", "pf", "term", "exit", "psc-result", "ghcb", "bogus"]
_text = st.text(alphabet=string.hexdigits + "x_ -,zZ0", max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_KINDS), _text, st.booleans())
def test_cli_random_inputs_exit_0_or_2(kind, value, as_json):
    args = ["decode", kind, value] + (["--json"] if as_json else [])
    r = CliRunner().invoke(main, args)
    assert r.exit_code in (0, 2), (args, r.output, r.exception)
    assert "Traceback" not in r.output
