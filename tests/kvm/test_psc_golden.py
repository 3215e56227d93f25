# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""kvm-qemu-host.md 3.5 worked examples as golden tests, exit by exit, in both KVM
profiles (v7.0.12 hardened, v6.17 original), plus R1/R4/R5 scenarios of bug-reports.md."""

import pytest
from fakeguest import GHCB_GPA, ghcb_call, make

from snpsim.spec import ghcb as G
from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC
from snpsim.spec.kvm_uapi import KVM_EXIT_HYPERCALL
from snpsim.spec.psc import (
    VMGEXIT_PSC_ERROR_GENERIC,
    VMGEXIT_PSC_ERROR_INVALID_ENTRY,
    VMGEXIT_PSC_ERROR_INVALID_HDR,
    PscEntry,
    PscHdr,
    SnpPscDesc,
)

PROFILES = ["v7.0.12", "v6.17"]


def run_psc(profile, entries, *, cur=0, end=None, info2=0, scratch_off=0x800, poison_ret=None):
    """One PSC VMGEXIT; returns (hypercall args per exit, descriptor after each exit's
    completion, (info1, info2), final descriptor)."""
    end = len(entries) - 1 if end is None else end
    buf = SnpPscDesc(PscHdr(cur, end), tuple(entries)).encode()
    res = {}

    def body(cpu):
        g = ghcb_call(cpu, SVM_VMGEXIT_PSC, 0, info2,
                      fields={"sw_scratch": GHCB_GPA + scratch_off}, shared_buf=buf)
        res["info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))
        res["desc"] = SnpPscDesc.decode(bytes(g[0x800:0xFF0]))

    platform, kvm, m = make(body, kvm_profile=profile)
    exits = []

    def hook(cpu, run):
        if run.exit_reason == KVM_EXIT_HYPERCALL and run.hypercall.args[0] != GHCB_GPA:
            exits.append(tuple(run.hypercall.args[:3]))
            if poison_ret is not None:
                run.hypercall.ret = poison_ret

    m.on_exit.append(hook)
    r = m.run()
    assert r.result == "completed", r
    return exits, res["info"], res["desc"]


@pytest.mark.parametrize("profile", PROFILES)
def test_two_ranges_private_then_shared(profile):
    entries = [PscEntry(0, 0x100, 1, 0), PscEntry(0, 0x101, 1, 0), PscEntry(0, 0x200, 2, 0)]
    exits, info, desc = run_psc(profile, entries)
    assert exits == [(0x100000, 2, 0x10), (0x200000, 1, 0x0)]
    assert info == (0, 0)
    assert desc.hdr.cur_entry == 3
    assert [e.cur_page for e in desc.entries[:3]] == [1, 1, 1]


@pytest.mark.parametrize("profile", PROFILES)
def test_one_2m_entry(profile):
    exits, info, desc = run_psc(profile, [PscEntry(0, 0x400, 1, 1)])
    assert exits == [(0x400000, 512, 0x11)]
    assert info == (0, 0) and desc.entries[0].cur_page == 512 and desc.hdr.cur_entry == 1


@pytest.mark.parametrize("profile", PROFILES)
def test_partly_done_2m_entry_keeps_the_2m_flag(profile):
    exits, info, desc = run_psc(profile, [PscEntry(0x10, 0x400, 1, 1)])
    assert exits == [(0x410000, 0x1F0, 0x11)]
    assert info == (0, 0) and desc.entries[0].cur_page == 512


@pytest.mark.check("snp_begin_psc:entry")
@pytest.mark.parametrize("profile", PROFILES)
def test_misaligned_2m_gfn_is_invalid_entry(profile):
    exits, info, desc = run_psc(profile, [PscEntry(0, 0x401, 1, 1)])
    assert exits == [] and info == (0, VMGEXIT_PSC_ERROR_INVALID_ENTRY)
    assert info[1] == 0x100000002


@pytest.mark.check("snp_begin_psc:header")
@pytest.mark.parametrize("profile", PROFILES)
def test_end_entry_253_is_invalid_hdr(profile):
    exits, info, desc = run_psc(profile, [PscEntry(0, 0x100, 1, 0)], end=253)
    assert exits == [] and info == (0, VMGEXIT_PSC_ERROR_INVALID_HDR) and info[1] == 0x100000001


@pytest.mark.parametrize("profile", PROFILES)
def test_userspace_failure_is_generic_and_entries_untouched(profile):
    exits, info, desc = run_psc(profile, [PscEntry(0, 0x100, 1, 0)], poison_ret=1)
    assert exits == [(0x100000, 1, 0x10)]
    assert info == (0, VMGEXIT_PSC_ERROR_GENERIC) and info[1] == 0x10000000000
    assert desc.entries[0].cur_page == 0 and desc.hdr.cur_entry == 0


@pytest.mark.parametrize("profile", PROFILES)
def test_cur_entry_past_end_entry_is_success(profile):
    exits, info, desc = run_psc(profile, [PscEntry(0, 0x100, 1, 0)], cur=1, end=0)
    assert exits == [] and info == (0, 0)


@pytest.mark.bug_report("R1")
@pytest.mark.parametrize("profile", PROFILES)
def test_r1a_psmash_entry_at_the_end_causes_no_conversion(profile):
    entries = [PscEntry(0, 0x100, 1, 0), PscEntry(0, 0x101, 2, 0), PscEntry(0, 0x200, 3, 1)]
    exits, info, desc = run_psc(profile, entries)
    assert exits == [(0x100000, 1, 0x10), (0x101000, 1, 0x0)]
    assert info == (0, 0) and desc.hdr.cur_entry == 3
    assert [e.cur_page for e in desc.entries[:3]] == [1, 1, 512]


@pytest.mark.bug_report("R1")
@pytest.mark.parametrize("profile", PROFILES)
def test_r1b_done_entry_is_not_merged(profile):
    entries = [PscEntry(0, 0x200, 2, 0), PscEntry(1, 0x201, 2, 0)]
    exits, info, desc = run_psc(profile, entries)
    assert exits == [(0x200000, 1, 0x0)] and info == (0, 0)


@pytest.mark.check("setup_vmgexit_scratch:window")
@pytest.mark.bug_report("R4")
@pytest.mark.parametrize("profile", PROFILES)
def test_r4_exit_info_2_does_not_matter_for_a_valid_buffer(profile):
    a = run_psc(profile, [PscEntry(0, 0x100, 1, 0)], info2=0)
    b = run_psc(profile, [PscEntry(0, 0x100, 1, 0)], info2=0xFFFFFFFF)
    if profile == "v7.0.12":
        assert a[:2] == b[:2] == ([(0x100000, 1, 0x10)], (0, 0))
    else:  # original: len = info2 -> 0xFFFFFFFF overruns the shared buffer window
        assert a[:2] == ([(0x100000, 1, 0x10)], (0, 0))
        assert b[0] == [] and b[1] == (2, 3)  # GHCB_ERR_INVALID_SCRATCH_AREA


@pytest.mark.bug_report("R5")
def test_r5_scratch_at_the_end_of_the_shared_buffer_hardened_is_invalid_hdr():
    # sw_scratch = shared buffer + 0x7F0 - 8 (room for the header only), end_entry = 252
    exits, info, desc = run_psc("v7.0.12", [], end=252, scratch_off=0x800 + 0x7E8)
    assert exits == [] and info == (0, VMGEXIT_PSC_ERROR_INVALID_HDR)
