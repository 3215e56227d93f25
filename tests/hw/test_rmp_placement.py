# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Where the RMP lives and what it covers (issue 14 item 2), on the platform alone.

Sources: hardware-and-ghcb.md 1.1 -- RMP_BASE 0xC0010132 / RMP_END 0xC0010133, 16 KiB of
bookkeeping, 16 bytes per 4 KiB page, coverage ((RMP_END + 1 - RMP_BASE - 16 KiB) / 16)
pages, uncovered pages permanently hypervisor-owned; arch/x86/virt/svm/sev.c v6.14+ for
the segmented RMP (RMP_CFG 0xC0010136: bit 0, shift in bits 13:8; segment table page
after the bookkeeping; entry bits 19:0 mapped GiB capped at the segment size, bits
51:20 the segment's SPA); APM vol 3 RMPUPDATE (FAIL_INPUT 1 for an SPA outside the RMP,
FAIL_PERMISSION 2 for an Immutable entry); PVALIDATE on an uncovered page: #NPF with the
RMP bit (APM vol 2 15.36.10, RMP-Covered check).  The SNP_INIT_EX page states (Firmware
for the RMP, HV-Fixed for the range list) are the SNP firmware ABI 56860's, as the model
reads them (docs/model-choices.md).
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snpsim.hw.cpu import Platform
from snpsim.hw.faults import NestedPageFault
from snpsim.hw.rmp import Rmp, RmpConfig
from snpsim.spec.faults import PFERR_GUEST_RMP_MASK
from snpsim.spec.msr_index import (
    MSR_AMD64_RMP_BASE,
    MSR_AMD64_RMP_CFG,
    MSR_AMD64_RMP_END,
    MSR_AMD64_SYSCFG,
    MSR_AMD64_SYSCFG_SNP_EN,
)
from snpsim.spec.psp_sev import (
    SEV_RET_INVALID_CONFIG,
    SEV_RET_INVALID_PARAM,
    SEV_RET_INVALID_PLATFORM_STATE,
    SEV_RET_SUCCESS,
)
from snpsim.spec.rmp import (
    PSMASH_FAIL_INPUT,
    RMPREAD_FAIL_INPUT,
    RMPUPDATE_FAIL_INPUT,
    RMPUPDATE_FAIL_PERMISSION,
    RmpState,
)

GiB = 1 << 30
MiB = 1 << 20
ASID = 5


def private(gpa, size=0, asid=ASID):
    return RmpState(gpa=gpa, assigned=1, pagesize=size, immutable=0, rsvd=0, asid=asid)


# -- RmpConfig: the MSRs and the segment table --------------------------------------------

def test_contiguous_coverage_follows_rmp_end():
    # 64 GiB covered: 16 KiB + 16 M entries * 16 bytes -> RMP_END = base + 0x10004000 - 1.
    cfg = RmpConfig.contiguous(0xFE0000000, 64 * GiB)
    assert cfg.rmp_end == 0xFE0000000 + 0x10004000 - 1
    assert cfg.covered_extents() == [(0, (64 * GiB) >> 12)]
    assert cfg.table_extents() == [(0xFE0000000 >> 12, (0xFE0000000 + 0x10004000) >> 12)]
    # One byte short of the last entry: that page is no longer covered.
    short = RmpConfig(rmp_base=cfg.rmp_base, rmp_end=cfg.rmp_end - 1)
    assert short.covered_extents() == [(0, (64 * GiB >> 12) - 1)]


def test_unset_or_inverted_msrs_cover_nothing():
    assert RmpConfig().covered_extents() == []
    assert RmpConfig(rmp_base=0x200000000, rmp_end=0x100000000).covered_extents() == []


def test_segmented_coverage_holes_and_capping():
    # 1 GiB segments (shift 30): 0 and 2 mapped, 1 absent; 3 says 4 GiB -> capped at 1 GiB.
    cfg = RmpConfig.segmented(0x40_0000_0000, 30, {0: (0x40_0010_0000, 1),
                                                   2: (0x40_0050_0000, 1),
                                                   3: (0x40_0090_0000, 4)})
    assert cfg.is_segmented and cfg.segment_shift == 30
    assert cfg.rmp_cfg == 1 | 30 << 8
    assert cfg.covered_extents() == [(0, GiB >> 12), (2 * GiB >> 12, 3 * GiB >> 12),
                                     (3 * GiB >> 12, 4 * GiB >> 12)]
    # The RMP's own memory: bookkeeping + segment table (5 pages), then 4 MiB per segment.
    assert cfg.table_extents()[0] == (0x40_0000_0000 >> 12, (0x40_0000_0000 >> 12) + 5)
    assert cfg.table_extents()[1] == (0x40_0010_0000 >> 12, (0x40_0010_0000 + 4 * MiB) >> 12)
    # The segment table page as the BIOS writes it: entry 3 = SPA | 4 (GiB).
    page = cfg.rst_page()
    assert int.from_bytes(page[24:32], "little") == 0x40_0090_0000 | 4
    assert page[8:16] == bytes(8)


def test_segment_table_limit_from_cpuid_hides_higher_segments():
    cfg = RmpConfig.segmented(0x40_0000_0000, 30, {0: (0x40_0010_0000, 1), 5: (0x40_0050_0000, 1)},
                              rst_limit=4)
    assert cfg.covered_extents() == [(0, GiB >> 12)]


# -- the RMP with holes ------------------------------------------------------------------

def test_rmp_instructions_at_segment_edges():
    rmp = Rmp(0)
    rmp.set_coverage_extents([(0, 0x100), (0x200, 0x300)])
    assert rmp.covered(0xFF) and not rmp.covered(0x100) and not rmp.covered(0x1FF)
    assert rmp.covered(0x200) and rmp.covered(0x2FF) and not rmp.covered(0x300)
    assert rmp.rmpupdate(0xFF << 12, private(0x1000)) == 0
    assert rmp.rmpupdate(0x100 << 12, private(0x2000)) == RMPUPDATE_FAIL_INPUT
    assert rmp.rmpupdate(0x1FF << 12, private(0x2000)) == RMPUPDATE_FAIL_INPUT
    assert rmp.rmpupdate(0x200 << 12, private(0x3000)) == 0
    assert rmp.rmpread(0x150 << 12) == (RMPREAD_FAIL_INPUT, None)
    assert rmp.psmash(0x100 << 12) == PSMASH_FAIL_INPUT
    # A page in the hole reads hypervisor-owned (a host write passes) ...
    assert rmp.lookup(0x150).owner == "hypervisor"
    # ... and a 2 MiB RMPUPDATE whose range leaves coverage is FAIL_INPUT.
    rmp.set_coverage_extents([(0, 0x300)])
    assert rmp.rmpupdate(0x200 << 12, private(0x200000, size=1)) == RMPUPDATE_FAIL_INPUT


def test_pvalidate_on_an_uncovered_page_is_npf_with_rmp_bit():
    rmp = Rmp(0)
    rmp.set_coverage_extents([(0, 0x100), (0x200, 0x300)])
    with pytest.raises(NestedPageFault) as ei:
        rmp.pvalidate(0x150, 0x5000, asid=ASID, rmp_psize=0, validate=True, pferr=1)
    assert ei.value.error_code & PFERR_GUEST_RMP_MASK


def test_overlapping_coverage_extents_are_refused():
    with pytest.raises(ValueError):
        Rmp(0).set_coverage_extents([(0, 0x200), (0x100, 0x300)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 20)), min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(0, 3000), st.sampled_from(["firmware", "hv-fixed"])),
                max_size=4),
       st.lists(st.integers(0, 3000), max_size=6),
       st.integers(0, 2500), st.integers(0, 1600))
def test_lookup_range_equals_per_page_lookup(segs, presets, writes, start, n):
    """Differential: the range form (holes, preset extents, written chunks) gives what
    ``lookup`` gives page by page (STYLE: a fast path proven against the per-page one)."""
    rmp = Rmp(0)
    exts, pos = [], 0
    for gap, length in segs:
        pos += gap * 64
        exts.append((pos, pos + length * 64))
        pos += length * 64
    rmp.set_coverage_extents(exts)
    pre, used = [], 0
    for s, owner in sorted(presets):
        if s >= used:
            pre.append((s, s + 37, owner))
            used = s + 37
    rmp.set_preset_extents(pre)
    for w in writes:
        rmp.rmpupdate(w << 12, private(w << 12))
    got = rmp.lookup_range(start, n)
    for i in range(n):
        e = rmp.lookup(start + i)
        r = got[i]
        assert (bool(r["assigned"]), bool(r["immutable"]), int(r["asid"]), int(r["gpa"])) == \
            (e.assigned, e.immutable, e.asid, e.gpa), start + i


# -- preset states: nothing stored per page ----------------------------------------------

def test_preset_extents_read_and_refuse_rmpupdate_without_storage():
    rmp = Rmp(1 << 40)
    one_tib = (1 << 40) >> 12
    rmp.set_preset_extents([(0, one_tib // 2, "firmware"), (one_tib // 2, one_tib, "hv-fixed")])
    assert rmp.bytes_used() == 0
    assert rmp.lookup(12345).owner == "firmware"
    assert rmp.lookup(one_tib - 1).owner == "hv-fixed"
    assert rmp.rmpupdate(12345 << 12, private(0)) == RMPUPDATE_FAIL_PERMISSION
    assert rmp.rmpupdate((one_tib - 1) << 12, private(0)) == RMPUPDATE_FAIL_PERMISSION
    assert rmp.bytes_used() == 0
    # A write elsewhere in a preset chunk keeps its neighbours' preset state.
    rmp.set_page_state(12346, "guest", asid=ASID, gpa=0x1000)
    assert rmp.entry(12345).owner == "firmware" and rmp.entry(12346).owner == "guest"
    assert rmp.bytes_used() == 512 * 16


# -- the platform: MSRs, SYSCFG and SNP_INIT_EX --------------------------------------------

def segmented_platform():
    cfg = RmpConfig.segmented(0x40_0000_0000, 30, {0: (0x40_0010_0000, 1),
                                                   1: (0x40_0050_0000, 1),
                                                   256: (0x40_0090_0000, 1)})
    return Platform(mem_size=1 << 44, rmp_config=cfg), cfg


def test_platform_msrs_and_segment_table_page():
    p, cfg = segmented_platform()
    h = p.host
    assert h.rdmsr(MSR_AMD64_RMP_BASE) == cfg.rmp_base
    assert h.rdmsr(MSR_AMD64_RMP_END) == 0
    assert h.rdmsr(MSR_AMD64_RMP_CFG) == 1 | 30 << 8
    assert h.rdmsr(MSR_AMD64_SYSCFG) & MSR_AMD64_SYSCFG_SNP_EN == 0
    assert h.read(cfg.rmp_base + 0x4000, 4096) == cfg.rst_page()
    eax, ebx, _c, _d = h.cpuid(0x80000025)
    assert (eax & 0x3F, (eax >> 6) & 0x3F, ebx) == (30, 52, 0)


def test_snp_init_ex_marks_the_rmp_firmware_and_the_range_list_hv_fixed():
    p, cfg = segmented_platform()
    fw = p.firmware
    assert fw.snp_init_ex(True, [(0x9F000, 0x61)]) == SEV_RET_INVALID_CONFIG  # SNP_EN clear
    p.host.wrmsr(MSR_AMD64_SYSCFG, MSR_AMD64_SYSCFG_SNP_EN)
    assert fw.snp_init_ex(True, [(0x9F001, 1)]) == SEV_RET_INVALID_PARAM
    # The BIOS reports the RMP itself as reserved: a range over it leaves it Firmware.
    ranges = [(0x9F000, 0x61), (cfg.rmp_base, 8)]
    assert fw.snp_init_ex(True, ranges) == SEV_RET_SUCCESS
    rmp = p.rmp
    assert rmp.lookup(0x9F).owner == "hv-fixed"
    assert rmp.lookup(cfg.rmp_base >> 12).owner == "firmware"           # bookkeeping
    assert rmp.lookup((cfg.rmp_base >> 12) + 4).owner == "firmware"     # segment table
    assert rmp.lookup((cfg.rmp_base >> 12) + 5).owner == "hv-fixed"     # reserved, not RMP
    assert rmp.lookup(0x40_0010_0000 >> 12).owner == "firmware"         # segment 0's entries
    assert rmp.lookup(0x100).owner == "hypervisor"
    assert p.host.rmpupdate(0x40_0010_0000, private(0)) == RMPUPDATE_FAIL_PERMISSION
    assert p.host.rmpupdate(0x9F000, private(0)) == RMPUPDATE_FAIL_PERMISSION
    assert rmp.bytes_used() == 0
    assert fw.snp_init_ex(True, []) == SEV_RET_INVALID_PLATFORM_STATE


def test_rmp_clear_refused_once_snp_is_enabled():
    p, _cfg = segmented_platform()
    p.rmp.set_page_state(5, "firmware")
    assert p.host.rmp_clear() is True and p.rmp.lookup(5).owner == "hypervisor"
    p.rmp.set_page_state(5, "firmware")
    p.host.wrmsr(MSR_AMD64_SYSCFG, MSR_AMD64_SYSCFG_SNP_EN)
    assert p.host.rmp_clear() is False and p.rmp.lookup(5).owner == "firmware"
    p.host.wrmsr(MSR_AMD64_SYSCFG, 0)  # SNP_EN stays set
    assert p.host.rdmsr(MSR_AMD64_SYSCFG) & MSR_AMD64_SYSCFG_SNP_EN


def test_rmpread_range_stops_at_a_hole():
    p, _cfg = segmented_platform()
    # Segments 0 and 1 cover [0, 2 GiB); segment 256 covers [256 GiB, 257 GiB).
    last = (2 * GiB >> 12) - 2
    code, recs = p.host.rmpread_range(last << 12, 2)
    assert code == 0 and len(recs) == 2
    assert p.host.rmpread_range(last << 12, 3) == (RMPREAD_FAIL_INPUT, None)


def test_snp_launch_update_of_a_page_someone_else_owns():
    """KVM never hands the firmware such a page (``sev_gmem_post_populate`` refuses an
    assigned entry with -EEXIST, an HV-Fixed one fails RMPUPDATE); a host that skips
    those steps gets the firmware's answer, and the page is left as it was."""
    from snpsim.spec.psp_sev import SEV_RET_INVALID_PAGE_OWNER, SEV_RET_INVALID_PAGE_STATE

    p, cfg = segmented_platform()
    p.host.wrmsr(MSR_AMD64_SYSCFG, MSR_AMD64_SYSCFG_SNP_EN)
    assert p.firmware.snp_init_ex(True, [(0x9F000, 0x61)]) == SEV_RET_SUCCESS
    gctx = p.firmware.snp_launch_start(ASID)
    p.rmp.set_page_state(0x300, "guest", asid=7, gpa=0x1000, validated=True)
    before = p.rmp.entry(0x300)
    assert p.firmware.snp_launch_update(gctx, 0x300000, 0x1000, 1) == SEV_RET_INVALID_PAGE_OWNER
    assert p.rmp.entry(0x300) == before
    assert p.firmware.snp_launch_update(gctx, cfg.rmp_base, 0x1000, 1) == SEV_RET_INVALID_PAGE_STATE
    assert p.firmware.snp_launch_update(gctx, 0x9F000, 0x1000, 1) == SEV_RET_INVALID_PAGE_STATE
    assert gctx.pages == 0 and gctx.digest == bytes(48)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 20)), min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(0, 3000), st.sampled_from(["firmware", "hv-fixed"])),
                max_size=3),
       st.lists(st.integers(0, 3000), max_size=40),
       st.integers(0, 2500), st.integers(0, 700))
def test_private_read_run_equals_per_page_checks_with_holes_and_presets(segs, presets, valid,
                                                                        start, n):
    """Differential: the run form of the private-read checks stops at the same page as
    checking page by page (RMP-Covered, Guest-Owned, Reverse-Map, Mutable, Page-Size,
    Validated, VMPL0 read), with coverage holes and preset extents."""
    rmp = Rmp(0)
    exts, pos = [], 0
    for gap, length in segs:
        pos += gap * 64
        exts.append((pos, pos + length * 64))
        pos += length * 64
    rmp.set_coverage_extents(exts)
    pre, used = [], 0
    for s, owner in sorted(presets):
        if s >= used:
            pre.append((s, s + 37, owner))
            used = s + 37
    rmp.set_preset_extents(pre)
    for v in valid:
        if rmp.covered(v) and not rmp.lookup(v).immutable:
            rmp.set_page_state(v, "guest", asid=ASID, gpa=v << 12, validated=True)
    got = rmp.private_read_run(start, start << 12, n, asid=ASID, pagesize=0, vmpl=0)
    want = 0
    for i in range(n):
        p = start + i
        e = rmp.lookup(p)
        ok = (rmp.covered(p) and e.assigned and e.asid == ASID and e.gpa == p << 12
              and not e.immutable and e.pagesize == 0 and e.validated and e.perms[0] & 1)
        if not ok:
            break
        want += 1
    assert got == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["preset", "cover", "guest", "update", "reset"]),
                          st.integers(0, 2000)), max_size=25))
def test_lookup_cache_survives_presets_coverage_and_reset(ops):
    """After any mix of preset extents, coverage changes, writes and resets, every cached
    lookup equals a fresh read (the cache dropped)."""
    rmp = Rmp(0)
    rmp.set_coverage_extents([(0, 2048)])
    probe = range(0, 2100, 7)
    for op, x in ops:
        if op == "preset":
            rmp.set_preset_extents([(x, x + 50, "firmware"), (x + 60, x + 90, "hv-fixed")])
        elif op == "cover":
            rmp.set_coverage_extents([(0, x // 2 + 1), (x + 100, x + 300)])
        elif op == "guest" and rmp.covered(x) and not rmp.lookup(x).immutable:
            rmp.set_page_state(x, "guest", asid=ASID, gpa=x << 12)
        elif op == "update":
            rmp.rmpupdate(x << 12, private(x << 12))
        elif op == "reset":
            rmp.reset()
        cached = [rmp.lookup(p) for p in probe]
        rmp._lookups.clear()
        assert cached == [rmp.lookup(p) for p in probe]
