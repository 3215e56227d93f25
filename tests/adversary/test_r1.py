# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Bug report R1 (bug-reports.md: "[PATCH v15 23/23] KVM: SEV: Fix PSC handling for
SMASH/UNSMASH and partial update ops") under ``VARIANTS["R1"]``: each of the three bugs
shows its symptom on the report's minimal scenario; the fixed behaviour on the same
buffers is in tests/kvm/test_psc_golden.py (``test_r1a_*``, ``test_r1b_*``) and here.

Expected exits are ``KVM_HC_MAP_GPA_RANGE`` arguments (gpa, npages, attributes) with the
attribute values of linux-guest.md 1.7 (ENCRYPTED 0x10, DECRYPTED 0, PAGE_SZ_2M 1) and
``cur_page`` = 512 / 1 for done 2M / 4K entries (kvm-qemu-host.md 3.2)."""

from contextlib import nullcontext

import pytest
from fakeguest import GHCB_GPA, ghcb_call, make

from snpsim.adversary import VARIANTS
from snpsim.spec import ghcb as G
from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC
from snpsim.spec.kvm_uapi import KVM_EXIT_HYPERCALL
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc

PRIVATE, SHARED, PSMASH = 1, 2, 3
ENCRYPTED, DECRYPTED, PAGE_SZ_2M = 0x10, 0x0, 0x1


def run_psc(profile, entries):
    """One GHCB PSC VMGEXIT with ``entries`` (end_entry = last); returns the
    KVM_HC_MAP_GPA_RANGE exits (gpa, npages, attrs), (info1, info2) and the buffer after."""
    buf = SnpPscDesc(PscHdr(0, len(entries) - 1), tuple(entries)).encode()
    res = {}

    def body(cpu):
        g = ghcb_call(cpu, SVM_VMGEXIT_PSC, 0, 0, fields={"sw_scratch": GHCB_GPA + 0x800},
                      shared_buf=buf)
        res["info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))
        res["desc"] = SnpPscDesc.decode(bytes(g[0x800:0xFF0]))

    _platform, _kvm, m = make(body, kvm_profile=profile)
    exits = []
    m.on_exit.append(lambda cpu, run: exits.append(tuple(run.hypercall.args[:3]))
                     if run.exit_reason == KVM_EXIT_HYPERCALL and run.hypercall.args[0] != GHCB_GPA
                     else None)
    with (VARIANTS["R1"].installed() if profile is R1 else nullcontext()):
        assert m.run().result == "completed"
    return exits, res["info"], res["desc"]


R1 = VARIANTS["R1"].kvm
FIXED = "v7.0.12"


def test_r1_variant_is_registered_with_its_report():
    v = VARIANTS["R1"]
    assert v.report == "R1" and v.kind == "bug" and v.component == "kvm"
    assert set(v.hooks) == {"snp_begin_psc", "__snp_complete_one_psc"}


# (a) buffer = [PRIVATE gfn 0x100 4K, SHARED gfn 0x101 4K, PSMASH gfn 0x200 2M]
R1A = [PscEntry(0, 0x100, PRIVATE, 0), PscEntry(0, 0x101, SHARED, 0), PscEntry(0, 0x200, PSMASH, 1)]


@pytest.mark.bug_report("R1")
def test_r1a_variant_forwards_a_trailing_psmash_as_a_shared_conversion():
    exits, info, _desc = run_psc(R1, R1A)
    assert exits[:2] == [(0x100000, 1, ENCRYPTED), (0x101000, 1, DECRYPTED)]
    # the symptom: a third exit converting the 2 MiB at GFN 0x200 to shared
    assert exits[2:] == [(0x200000, 512, DECRYPTED | PAGE_SZ_2M)]
    assert info == (0, 0)


@pytest.mark.bug_report("R1")
def test_r1a_fixed_ignores_the_trailing_psmash():
    exits, info, desc = run_psc(FIXED, R1A)
    assert exits == [(0x100000, 1, ENCRYPTED), (0x101000, 1, DECRYPTED)]
    assert info == (0, 0) and desc.hdr.cur_entry == 3


@pytest.mark.bug_report("R1")
def test_r1a_variant_ignores_a_psmash_in_the_middle():
    entries = [PscEntry(0, 0x100, SHARED, 0), PscEntry(0, 0x200, PSMASH, 1),
               PscEntry(0, 0x300, SHARED, 0)]
    exits, info, desc = run_psc(R1, entries)
    assert exits == [(0x100000, 1, DECRYPTED), (0x300000, 1, DECRYPTED)]
    assert info == (0, 0) and desc.hdr.cur_entry == 3


# (b) [SHARED gfn 0x200 4K cur_page 0, SHARED gfn 0x201 4K cur_page 1]
R1B = [PscEntry(0, 0x200, SHARED, 0), PscEntry(1, 0x201, SHARED, 0)]


@pytest.mark.bug_report("R1")
def test_r1b_variant_merges_the_done_entry_and_converts_it_again():
    exits, info, _desc = run_psc(R1, R1B)
    assert exits == [(0x200000, 2, DECRYPTED)] and info == (0, 0)


@pytest.mark.bug_report("R1")
def test_r1b_fixed_does_not_merge_the_done_entry():
    exits, info, _desc = run_psc(FIXED, R1B)
    assert exits == [(0x200000, 1, DECRYPTED)] and info == (0, 0)


# (c) a 2M entry followed by a 4K entry; the bug needs the 2M entry partly done (cur_page
# 0x10), where KVM processes it as 4K pages and its internal psc_2m flag is false.
R1C_PARTIAL = [PscEntry(0x10, 0x400, PRIVATE, 1), PscEntry(0, 0x600, PRIVATE, 0)]
R1C_LITERAL = [PscEntry(0, 0x400, PRIVATE, 1), PscEntry(0, 0x600, PRIVATE, 0)]


@pytest.mark.bug_report("R1")
def test_r1c_variant_marks_a_partly_done_2m_entry_with_cur_page_1():
    exits, info, desc = run_psc(R1, R1C_PARTIAL)
    assert exits == [(0x410000, 0x1F0, ENCRYPTED | PAGE_SZ_2M), (0x600000, 1, ENCRYPTED)]
    assert info == (0, 0)
    assert [e.cur_page for e in desc.entries[:2]] == [1, 1]   # fixed: [512, 1]


@pytest.mark.bug_report("R1")
def test_r1c_fixed_marks_the_2m_entry_512_and_the_4k_entry_1():
    for entries in (R1C_PARTIAL, R1C_LITERAL):
        _exits, info, desc = run_psc(FIXED, entries)
        assert info == (0, 0) and [e.cur_page for e in desc.entries[:2]] == [512, 1]


@pytest.mark.bug_report("R1")
def test_r1c_literal_scenario_does_not_expose_the_bug():
    """The report's scenario (c) as written (an untouched 2M entry, then a 4K entry) ends
    the same in both: psc_2m equals each range's entry size there."""
    _exits, info, desc = run_psc(R1, R1C_LITERAL)
    assert info == (0, 0) and [e.cur_page for e in desc.entries[:2]] == [512, 1]
