# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""SNP_GUEST_REQUEST and SNP_PAGE_RECLAIM on a bare platform (SNP firmware ABI 56860;
page states in RMP terms: Firmware = Assigned, ASID 0, Immutable; Reclaim = Assigned,
ASID 0, not Immutable), and the spec codecs they use.

Expected values: SEV_RET_* from include/uapi/linux/psp-sev.h (INVALID_GUEST_STATE 0x02,
INVALID_LEN 0x04, INVALID_GUEST 0x10, INVALID_PARAM 0x16, INVALID_PAGE_STATE 0x1A);
``struct snp_guest_msg_hdr`` offsets from arch/x86/include/asm/sev.h; ``SNP_GUEST_ERR``
from include/uapi/linux/sev-guest.h.  Every failing command leaves the RMP and the
response page unchanged.
"""

import pytest

from snpsim.hw.cpu import Platform
from snpsim.hw.faults import HostPageFault
from snpsim.spec import psp_sev
from snpsim.spec.rmp import RmpState
from snpsim.spec.sev_guest import (
    SNP_GUEST_ERR,
    SNP_GUEST_VMM_ERR_GENERIC,
    SNP_MSG_REPORT_REQ,
    SnpGuestMsgHdr,
)

PAGE = 4096
REQ, RESP = 1 << 30, (1 << 30) + PAGE


def test_sev_ret_codes_and_guest_error_packing():
    assert psp_sev.SEV_RET_INVALID_GUEST_STATE == 0x02
    assert psp_sev.SEV_RET_INVALID_LEN == 0x04
    assert psp_sev.SEV_RET_INVALID_GUEST == 0x10
    assert psp_sev.SEV_RET_INVALID_PARAM == 0x16
    assert psp_sev.SEV_RET_INVALID_PAGE_STATE == 0x1A
    assert SNP_GUEST_ERR(0, 0x16) == 0x16
    assert SNP_GUEST_ERR(SNP_GUEST_VMM_ERR_GENERIC, 0x16) == (1 << 63) | 0x16


def test_guest_msg_hdr_layout():
    h = SnpGuestMsgHdr(msg_seqno=0x0102030405060708, algo=1, hdr_version=1, hdr_sz=0x60,
                       msg_type=5, msg_version=1, msg_sz=0x60, msg_vmpck=2,
                       authtag=bytes(range(32)), rsvd2_0x38=0xAABBCCDD)
    raw = h.encode()
    assert len(raw) == 0x60
    assert raw[0:32] == bytes(range(32))
    assert raw[0x20:0x28] == (0x0102030405060708).to_bytes(8, "little")
    assert (raw[0x30], raw[0x31], raw[0x32:0x34], raw[0x34], raw[0x35]) == (1, 1, b"\x60\x00", 5, 1)
    assert raw[0x36:0x38] == b"\x60\x00" and raw[0x38:0x3C] == bytes.fromhex("ddccbbaa")
    assert raw[0x3C] == 2
    assert SnpGuestMsgHdr.decode(raw) == h
    with pytest.raises(ValueError):
        SnpGuestMsgHdr.decode(raw[:0x5F])


def platform(running=True, fw_resp=True):
    p = Platform(mem_size=1 << 34)
    fw = p.host.firmware
    gctx = fw.snp_launch_start(7)
    if running:
        fw.snp_launch_finish(gctx)
    if fw_resp:
        assert p.host.rmpupdate(RESP, RmpState(0, 1, 0, 1, 0, 0)) == 0  # firmware state
    return p, fw, gctx


def msg(**kw):
    return SnpGuestMsgHdr(msg_seqno=1, msg_type=SNP_MSG_REPORT_REQ, msg_sz=96, **kw).encode() + bytes(96)


@pytest.mark.parametrize("case, code", [
    ("no-context", psp_sev.SEV_RET_INVALID_GUEST),
    ("not-running", psp_sev.SEV_RET_INVALID_GUEST_STATE),
    ("resp-not-firmware", psp_sev.SEV_RET_INVALID_PAGE_STATE),
    ("hdr-version", psp_sev.SEV_RET_INVALID_PARAM),
    ("hdr-size", psp_sev.SEV_RET_INVALID_PARAM),
    ("algo", psp_sev.SEV_RET_INVALID_PARAM),
    ("response-type", psp_sev.SEV_RET_INVALID_PARAM),
    ("vmpck", psp_sev.SEV_RET_INVALID_PARAM),
])
def test_guest_request_errors_change_nothing(case, code):
    p, fw, gctx = platform(running=case != "not-running", fw_resp=case != "resp-not-firmware")
    bad = {"hdr-version": {"hdr_version": 0}, "hdr-size": {"hdr_sz": 0x40},
           "algo": {"algo": 0}, "vmpck": {"msg_vmpck": 4}}.get(case, {})
    raw = msg(**bad)
    if case == "response-type":
        raw = raw[:0x34] + bytes([SNP_MSG_REPORT_REQ + 1]) + raw[0x35:]
    p.host.write(REQ, raw)
    before = p.rmp.lookup(RESP >> 12)
    assert fw.snp_guest_request(None if case == "no-context" else gctx, REQ, RESP) == code
    assert p.rmp.lookup(RESP >> 12) == before
    assert p.mem.read_raw(RESP, PAGE) == bytes(PAGE)


def test_guest_request_answers_into_the_firmware_page_then_reclaim_returns_it():
    p, fw, gctx = platform()
    p.host.write(REQ, msg())
    assert fw.snp_guest_request(gctx, REQ, RESP) == 0
    hdr = SnpGuestMsgHdr.decode(p.host.read(RESP, 0x60))
    assert (hdr.msg_type, hdr.msg_seqno) == (SNP_MSG_REPORT_REQ + 1, 2)
    # the host cannot write the firmware page: host #PF with X86_PF_RMP | X86_PF_WRITE
    with pytest.raises(HostPageFault) as f:
        p.host.write(RESP, b"x")
    assert f.value.error_code == (1 << 31) | (1 << 1)
    # SNP_PAGE_RECLAIM: Firmware -> Reclaim (Assigned, ASID 0, not Immutable) ...
    assert fw.snp_page_reclaim(RESP) == 0
    e = p.rmp.lookup(RESP >> 12)
    assert e.assigned and e.asid == 0 and not e.immutable
    # ... a second reclaim is refused and changes nothing ...
    assert fw.snp_page_reclaim(RESP) == psp_sev.SEV_RET_INVALID_PAGE_STATE
    assert p.rmp.lookup(RESP >> 12) == e
    # ... and RMPUPDATE (rmp_make_shared) returns it to the hypervisor: writable again
    assert p.host.rmpupdate(RESP, RmpState(0, 0, 0, 0, 0, 0)) == 0
    p.host.write(RESP, b"x")


def test_page_reclaim_refuses_a_hypervisor_or_guest_page():
    p, fw, _gctx = platform(fw_resp=False)
    assert fw.snp_page_reclaim(RESP) == psp_sev.SEV_RET_INVALID_PAGE_STATE
    assert p.host.rmpupdate(RESP, RmpState(0x5000, 1, 0, 0, 0, 7)) == 0  # guest page
    before = p.rmp.lookup(RESP >> 12)
    assert fw.snp_page_reclaim(RESP) == psp_sev.SEV_RET_INVALID_PAGE_STATE
    assert p.rmp.lookup(RESP >> 12) == before
