# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""SNP launch through the firmware (hardware-and-ghcb.md 9; SNP firmware ABI 56860 8.17):
the launch digest equals what the independent ``sev-snp-measure`` package
(``sevsnpmeasure.gctx.GCTX``, virtee/sev-snp-measure) computes for the same pages, and
launched pages end assigned, validated and readable by the guest."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sevsnpmeasure.gctx import GCTX

from snpsim.hw.cpu import Platform
from snpsim.hw.firmware import (
    SEV_RET_INVALID_GUEST,
    SEV_RET_INVALID_PARAM,
    SNP_PAGE_TYPE_VMSA,
    VMSA_GPA,
)
from snpsim.spec.kvm_uapi import (
    KVM_SEV_SNP_PAGE_TYPE_CPUID,
    KVM_SEV_SNP_PAGE_TYPE_NORMAL,
    KVM_SEV_SNP_PAGE_TYPE_SECRETS,
    KVM_SEV_SNP_PAGE_TYPE_UNMEASURED,
    KVM_SEV_SNP_PAGE_TYPE_ZERO,
)
from snpsim.spec.rmp import RmpState

ASID = 7
SPA0 = 1 << 30
NORMAL, ZERO, UNMEASURED, SECRETS, CPUID, VMSA = (
    KVM_SEV_SNP_PAGE_TYPE_NORMAL, KVM_SEV_SNP_PAGE_TYPE_ZERO, KVM_SEV_SNP_PAGE_TYPE_UNMEASURED,
    KVM_SEV_SNP_PAGE_TYPE_SECRETS, KVM_SEV_SNP_PAGE_TYPE_CPUID, SNP_PAGE_TYPE_VMSA)
assert (NORMAL, VMSA, ZERO, UNMEASURED, SECRETS, CPUID) == (1, 2, 3, 4, 5, 6)


def page_bytes(i: int) -> bytes:
    return hashlib.shake_256(b"page%d" % i).digest(4096)


def launch(pages):
    """KVM's SNP_LAUNCH_UPDATE discipline on a bare platform: write the page while it is
    hypervisor-owned, RMPUPDATE it assigned + Immutable, then ask the
    firmware.  ``pages``: list of (gpa, type, contents).  Returns (platform, gctx, spas).
    KVM (``sev.c``) makes the VMSA private at ``INITIAL_VMSA_GPA`` = 0xFFFFFFFFF000."""
    p = Platform(mem_size=1 << 34)
    fw = p.host.firmware
    gctx = fw.snp_launch_start(ASID)
    spas = []
    for i, (gpa, ptype, data) in enumerate(pages):
        spa = SPA0 + i * 0x1000
        p.host.write(spa, data)
        rmp_gpa = VMSA_GPA if ptype == VMSA else gpa
        assert p.host.rmpupdate(spa, RmpState(rmp_gpa, 1, 0, 1, 0, ASID)) == 0
        assert fw.snp_launch_update(gctx, spa, gpa, ptype) == 0
        spas.append(spa)
    return p, gctx, spas


def reference_digest(pages) -> bytes:
    """The same sequence measured by sev-snp-measure."""
    g = GCTX()
    for gpa, ptype, data in pages:
        if ptype == NORMAL:
            g.update_normal_pages(gpa, data)
        elif ptype == ZERO:
            g.update_zero_pages(gpa, 4096)
        elif ptype == UNMEASURED:
            g.update_unmeasured_pages(gpa, 4096)
        elif ptype == SECRETS:
            g.update_secrets_page(gpa)
        elif ptype == CPUID:
            g.update_cpuid_page(gpa)
        else:
            g.update_vmsa_page(data)
    return g.ld()


OVMF_LIKE = [
    (0x800000, NORMAL, page_bytes(0)),
    (0x801000, NORMAL, page_bytes(1)),
    (0x809000, ZERO, bytes(4096)),
    (0x80A000, UNMEASURED, page_bytes(2)),
    (0x80D000, SECRETS, bytes(4096)),
    (0x80E000, CPUID, page_bytes(3)),
    (0xFFFFF000, NORMAL, page_bytes(4)),
    (0, VMSA, page_bytes(5)),
]


def test_launch_digest_equals_sev_snp_measure():
    p, gctx, _ = launch(OVMF_LIKE)
    digest = p.host.firmware.snp_launch_finish(gctx)
    assert len(digest) == 48
    assert digest == reference_digest(OVMF_LIKE)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.sampled_from([NORMAL, ZERO, UNMEASURED, SECRETS, CPUID, VMSA]),
                          st.integers(0, 1000)), max_size=8))
def test_launch_digest_equals_sev_snp_measure_for_any_sequence(seq):
    pages = [(gfn << 12, t, bytes(4096) if t == ZERO else page_bytes(k)) for gfn, t, k in seq]
    p, gctx, _ = launch(pages)
    assert p.host.firmware.snp_launch_finish(gctx) == reference_digest(pages)


def test_launched_pages_are_assigned_validated_mutable_and_encrypted():
    p, gctx, spas = launch(OVMF_LIKE)
    for (gpa, ptype, data), spa in zip(OVMF_LIKE, spas):
        e = p.rmp.lookup(spa >> 12)
        assert (e.assigned, e.asid, e.validated, e.immutable, e.pagesize) == (True, ASID, True, False, 0)
        assert e.gpa == (VMSA_GPA if ptype == VMSA else gpa)
        assert e.vmsa == (ptype == VMSA)
        plain = bytes(4096) if ptype == ZERO else data
        assert p.mem.read_enc(spa, 4096, ASID) == plain  # readable by the guest at once
        assert p.host.read(spa, 4096) != plain  # ciphertext to the host


def test_launch_update_needs_an_assigned_immutable_entry_at_that_gpa():
    p = Platform(mem_size=1 << 34)
    fw = p.host.firmware
    gctx = fw.snp_launch_start(ASID)
    assert fw.snp_launch_update(gctx, SPA0, 0x1000, NORMAL) == SEV_RET_INVALID_PARAM  # unassigned
    p.host.rmpupdate(SPA0, RmpState(0x1000, 1, 0, 0, 0, ASID))
    assert fw.snp_launch_update(gctx, SPA0, 0x1000, NORMAL) == SEV_RET_INVALID_PARAM  # mutable
    p.host.rmpupdate(SPA0, RmpState(0x2000, 1, 0, 1, 0, ASID))
    before = p.rmp.entry(SPA0 >> 12)
    assert fw.snp_launch_update(gctx, SPA0, 0x1000, NORMAL) == SEV_RET_INVALID_PARAM  # other GPA
    assert p.rmp.entry(SPA0 >> 12) == before and gctx.digest == bytes(48)


@pytest.mark.parametrize("ptype", [0, 7])
def test_launch_update_rejects_unknown_page_types(ptype):
    p = Platform(mem_size=1 << 34)
    fw = p.host.firmware
    gctx = fw.snp_launch_start(ASID)
    p.host.rmpupdate(SPA0, RmpState(0x1000, 1, 0, 1, 0, ASID))
    assert fw.snp_launch_update(gctx, SPA0, 0x1000, ptype) == SEV_RET_INVALID_PARAM


def test_launch_update_after_finish_is_invalid_guest():
    p, gctx, _ = launch(OVMF_LIKE[:1])
    p.host.firmware.snp_launch_finish(gctx)
    p.host.rmpupdate(SPA0 + 0x100000, RmpState(0x5000, 1, 0, 1, 0, ASID))
    assert p.host.firmware.snp_launch_update(gctx, SPA0 + 0x100000, 0x5000, NORMAL) == SEV_RET_INVALID_GUEST
