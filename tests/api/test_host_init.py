# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The host's initial state through the public scenario API only (issue 14 item 2):
``Scenario.host_init`` (where the RMP lives, SNP initialisation) and
``Scenario.preassign`` (a page another guest owns when guest_memfd gets it).

Sources: arch/x86/virt/svm/sev.c v6.14+ (``setup_contiguous_rmptable``: "Memory reserved
for the RMP table does not cover full system RAM (expected 0x%llx got 0x%llx)";
``setup_segmented_rmptable`` compares only the end of the last RAM segment with the end
of RAM); drivers/crypto/ccp/sev-dev.c ``__sev_snp_init_locked`` (e820 reserved ranges
to SNP_INIT_EX, which makes them HV-Fixed; the RMP's own pages Firmware: SNP firmware
ABI 56860 as the model reads it); KVM ``sev_gmem_prepare`` ("already assigned" ->
0), ``sev_gmem_post_populate`` (lookup error -> -EINVAL; ``snp_launch_update`` turns a
failure on the first page into -EIO), ``sev_handle_rmp_fault`` (a 4 KiB entry: nothing
to PSMASH), ``sev_gmem_invalidate`` (``rmp_make_shared`` of any assigned entry; a
failure only WARNs); ``snp_begin_psc`` (v6.11+) does no RMP work: it exits to userspace,
so a conversion of a foreign page is answered 0 in the GHCB; APM vol 2 15.36.10: a
private access to a page assigned to another ASID fails the Guest-Owned check, #NPF with
the RMP bit (bit 31, PFERR_GUEST_RMP_MASK).
"""

import pytest

from snpsim.api import RmpConfig, Scenario, ScenarioError
from snpsim.spec.faults import PFERR_GUEST_RMP_MASK
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc

GiB = 1 << 30
MiB = 1 << 20
RAM = 64 * GiB
RMP_BASE = RAM - 512 * MiB
MEMORY = 64 * MiB
TARGET = MEMORY - 2 * MiB      # first page of the highest 2 MiB of guest RAM: unaccepted
PRIVATE, SHARED = 1, 2
OTHER_ASID = 2


def test_host_init_marks_the_rmp_firmware_and_reserved_memory_hv_fixed():
    sc = Scenario("host init", memory=MEMORY)
    sc.host_init(RmpConfig.contiguous(RMP_BASE, RAM), ram=RAM)

    @sc.after
    def look(h):
        sc.data.update(table=h.rmp(RMP_BASE), entries=h.rmp(RMP_BASE + 0x10003000),
                       after_table=h.rmp(RMP_BASE + 0x10004000),
                       hole=h.rmp(0xA0000), ram=h.rmp(0x200000), log=h.host_log)

    r = sc.run()
    assert r.completed
    d = r.data
    assert d["table"]["owner"] == "firmware" and d["entries"]["owner"] == "firmware"
    assert d["hole"]["owner"] == "hv-fixed"   # the legacy hole: e820 reserved
    assert d["ram"]["owner"] == "hypervisor"
    # The table ends 16 KiB into a 2 MiB page: Linux reserves the rest of it as well
    # (snp_fixup_e820_tables), so it is HV-Fixed after SNP_INIT_EX.
    assert d["log"] == [f"SEV-SNP: RMP table physical range [0x{RMP_BASE:016x} - "
                        f"0x{RMP_BASE + 0x10003fff:016x}]",
                        "SEV-SNP: Reserving start/end of RMP table on a 2MB boundary "
                        f"[0x{RMP_BASE + 0x10000000:016x}]"]
    assert d["after_table"]["owner"] == "hv-fixed"


def test_an_rmp_too_small_for_the_host_ram_leaves_no_snp_vm():
    sc = Scenario("rmp too small", memory=MEMORY)
    sc.host_init(RmpConfig.contiguous(RMP_BASE, 32 * GiB), ram=RAM)
    r = sc.run()
    assert not r.completed
    assert r.outcome.vmm.result == "qemu-exit"
    assert r.outcome.vmm.errors == ["KVM_CREATE_VM failed: -22"]
    assert r.host.host_log[-1] == ("SEV-SNP: Memory reserved for the RMP table does not cover "
                                   "full system RAM (expected 0x10004000 got 0x8004000)")


def test_a_segment_missing_under_ram_passes_linux_but_fails_the_launch():
    # 1 GiB segments; segment 1 ([1 GiB, 2 GiB), where the host allocator hands out
    # pages) is missing.  Linux accepts the table; the first page KVM needs there is the
    # guest context page (snp_alloc_firmware_page): its RMPUPDATE fails (FAIL_INPUT), so
    # snp_context_create is NULL and snp_launch_start answers -ENOTTY (sev.c).
    segs, spa = {}, 0x40_0010_0000
    for i in [0, *range(2, 64)]:
        segs[i] = (spa, 1)
        spa += (GiB >> 12) * 16
    segs[256] = (spa, 1)
    sc = Scenario("segment hole", memory=MEMORY)
    sc.host_init(RmpConfig.segmented(0x40_0000_0000, 30, segs), ram=RAM)
    r = sc.run()
    assert r.outcome.vmm.result == "qemu-exit"
    assert r.outcome.vmm.errors[0] == "sev_snp_launch_start: SNP_LAUNCH_START ret=-25 fw_error=0"
    assert "SEV-SNP: Segmented RMP using 1GB segments" in r.host.host_log
    assert not r.host.rmp_covered(GiB + 0x5000) and r.host.rmp_covered(2 * GiB)
    assert r.host.rmp(GiB + 0x5000)["owner"] == "hypervisor"   # uncovered: hypervisor-owned


def foreign_page_scenario(owner, asid=0):
    """The page guest_memfd gets for TARGET is ``owner``'s; the guest converts TARGET to
    private (PSC), PVALIDATEs it, and (on the way out) converts it to shared."""
    sc = Scenario(f"foreign {owner}", memory=MEMORY, kvm_knobs={"max_entries_per_run": 300})
    sc.host_init(RmpConfig.contiguous(RMP_BASE, RAM), ram=RAM)
    sc.preassign(TARGET, owner, asid=asid, rmp_gpa=0x5000)
    data = sc.data

    @sc.guest
    def work(g):
        ans = g.psc(SnpPscDesc(PscHdr(0, 0), (PscEntry(0, TARGET >> 12, PRIVATE, 0),)).encode())
        data["psc_private"] = ans["sw_exit_info_2"]
        data["pvalidate"] = g.pvalidate(g.va(TARGET))
        data["done"] = True

    @sc.hook("sev_gmem_prepare")
    def prepare(original, kvm, pfn, gfn, order):
        ret = original(kvm, pfn, gfn, order)
        if gfn == TARGET >> 12:
            data["spa"] = pfn << 12
            data.setdefault("prepare", []).append(ret)
        return ret

    @sc.hook("sev_handle_rmp_fault")
    def rmp_fault(original, vcpu, gpa, error_code):
        if gpa & ~0xFFF == TARGET:
            data.setdefault("npf", []).append(error_code)
        return original(vcpu, gpa, error_code)

    return sc


def test_a_page_of_another_asid_is_stopped_by_the_guest_owned_check():
    sc = foreign_page_scenario("guest", OTHER_ASID)
    r = sc.run()
    d = r.data
    # The conversion itself succeeds: KVM does no RMP work in snp_begin_psc.
    assert d["psc_private"] == 0
    # guest_memfd's prepare sees an assigned entry and takes the page as prepared (0),
    # never making it this guest's ...
    assert d["prepare"] and set(d["prepare"]) == {0}
    e = r.host.rmp(d["spa"])
    assert (e["owner"], e["asid"], e["gpa"]) == ("guest", OTHER_ASID, 0x5000)
    # ... so the guest's PVALIDATE fails the hardware's Guest-Owned check: #NPF with the
    # RMP bit, which KVM cannot fix (4 KiB entry), and the same fault repeats.
    assert d["npf"] and all(code & PFERR_GUEST_RMP_MASK for code in d["npf"])
    assert "done" not in d
    assert r.livelock is not None and r.outcome.livelock_loop == "kvm_mmu_page_fault"


def test_converting_a_foreign_page_to_shared_takes_it_from_its_owner():
    # The host (QEMU's conversion, PUNCH_HOLE) frees the folio of TARGET: for a page of
    # another ASID sev_gmem_invalidate's RMPUPDATE succeeds -- the other guest loses it;
    # for a Firmware page it fails (FAIL_PERMISSION, WARN only) and the page goes back to
    # the allocator still the firmware's.
    for owner, asid, after in (("guest", OTHER_ASID, "hypervisor"), ("firmware", 0, "firmware")):
        sc = Scenario(f"to shared {owner}", memory=MEMORY)
        sc.host_init(RmpConfig.contiguous(RMP_BASE, RAM), ram=RAM)
        sc.preassign(TARGET, owner, asid=asid)
        data = sc.data

        @sc.guest
        def work(g, data=data):
            for op in (PRIVATE, SHARED):
                ans = g.psc(SnpPscDesc(PscHdr(0, 0), (PscEntry(0, TARGET >> 12, op, 0),)).encode())
                data.setdefault("psc", []).append(ans["sw_exit_info_2"])

        @sc.hook("sev_gmem_prepare")
        def prepare(original, kvm, pfn, gfn, order, data=data):
            if gfn == TARGET >> 12:
                data["spa"] = pfn << 12
            return original(kvm, pfn, gfn, order)

        r = sc.run()
        assert r.completed, (owner, r.outcome)
        assert r.data["psc"] == [0, 0]
        assert r.host.rmp(r.data["spa"])["owner"] == after
        warned = [line for line in r.host.log if "Failed to update RMP entry" in line]
        assert bool(warned) == (owner == "firmware")


def test_host_initialisation_is_hookable_by_real_name():
    # Hooks see the host's boot: the probe, the table set-up and SNP_INIT.
    sc = Scenario("hooked init", memory=MEMORY)
    sc.host_init(RmpConfig.contiguous(RMP_BASE, RAM), ram=RAM)
    seen = []
    for name in ("snp_probe_rmptable_info", "setup_contiguous_rmptable", "__sev_snp_init_locked"):
        @sc.hook(name)
        def watch(original, *args, _name=name, **kwargs):
            ret = original(*args, **kwargs)
            seen.append((_name, ret))
            return ret

    r = sc.run()
    assert r.completed
    assert seen == [("snp_probe_rmptable_info", True), ("setup_contiguous_rmptable", True),
                    ("__sev_snp_init_locked", (0, 0))]


def test_host_init_refuses_bad_arguments():
    import pytest

    from snpsim.api import ScenarioError

    sc = Scenario("bad", memory=MEMORY)
    for kwargs in ({"rmp": "contiguous"}, {"rmp": RmpConfig(), "hv_fixed_2m": -1},
                   {"rmp": RmpConfig(), "e820": ((0, 1),)}, {"rmp": RmpConfig(), "ram": "lots"},
                   {"rmp": RmpConfig(), "e820": ((0, -5, 1),)},
                   # type 0 is no e820 type (types are u32 >= 1, asm/e820/types.h)
                   {"rmp": RmpConfig(), "e820": ((0, 4 << 30, 0),)},
                   # no type-1 RAM under the guest: nothing for guest_memfd to take
                   {"rmp": RmpConfig(), "e820": ((0, 4 << 30, 99),)},
                   {"rmp": RmpConfig.contiguous(1 << 50, RAM)}):
        with pytest.raises(ScenarioError):
            sc.host_init(**kwargs)
    assert sc.host_boot is None


# -- nonsense placement and host values are refused at the call that names them ---------------
# RMP_BASE / RMP_END hold an address in bits 51:13 (arch/x86/include/asm/sev.h
# RMP_ADDR_MASK, GENMASK_ULL(51, 13)); CPUID 0x80000025 EAX[5:0] / EAX[11:6] bound the
# segment shift (arch/x86/virt/svm/sev.c probe_segmented_rmptable_info); the segment table
# is one page of u64 entries (RST_MAX_INDEX 512), bits 19:0 the mapped GiB, 51:20 the SPA.

SEG_BASE = 0x40_0000_0000
SEG0 = SEG_BASE + MiB


@pytest.mark.parametrize("make", [
    lambda: RmpConfig.contiguous(0x123, 12345),                 # misaligned base and size
    lambda: RmpConfig.contiguous(RMP_BASE + 0x1000, RAM),       # base not 8 KiB aligned
    lambda: RmpConfig.contiguous(RMP_BASE, RAM + 0x1000),       # end not on 8 KiB
    lambda: RmpConfig.contiguous(0, RAM),                       # RMP_BASE unset
    lambda: RmpConfig.contiguous(RMP_BASE, 0),
    lambda: RmpConfig.contiguous(RMP_BASE, -2 * MiB),
    lambda: RmpConfig.contiguous(1 << 52, RAM),
    lambda: RmpConfig.contiguous("abc", 1),
    lambda: RmpConfig.contiguous(RMP_BASE, 1.5),
    lambda: RmpConfig.segmented(SEG_BASE, 29, {0: (SEG0, 1)}),   # below the default min 30
    lambda: RmpConfig.segmented(SEG_BASE, 53, {0: (SEG0, 1)}),   # above the default max 52
    lambda: RmpConfig.segmented(SEG_BASE, 30, {0: (SEG0, 1)}, segment_shift_min=32),
    lambda: RmpConfig.segmented(SEG_BASE, 30, {0: (SEG0, 1)}, segment_shift_max=64),
    lambda: RmpConfig.segmented(SEG_BASE, 30, {0: (SEG0, 1)}, rst_limit=1024),
    lambda: RmpConfig.segmented(SEG_BASE, 30, {0: (SEG0, 1)}, no_such_field=1),
    lambda: RmpConfig.segmented(SEG_BASE, 30, {-1: (SEG0, 1)}),
    lambda: RmpConfig.segmented(SEG_BASE, 30, {512: (SEG0, 1)}),
    lambda: RmpConfig.segmented(SEG_BASE, 30, {1 << 40: (SEG0, 1)}),
    lambda: RmpConfig.segmented(SEG_BASE, 30, {0: (SEG0, -1)}),
    lambda: RmpConfig.segmented(SEG_BASE, 30, {0: (SEG0, 1 << 20)}),
    lambda: RmpConfig.segmented(SEG_BASE, 30, {0: (SEG0 + 0x1000, 1)}),   # not 1 MiB aligned
    lambda: RmpConfig.segmented(SEG_BASE, 30, {0: (SEG0,)}),
    lambda: RmpConfig.segmented(SEG_BASE + 0x1000, 30, {0: (SEG0, 1)}),
    lambda: RmpConfig.segmented(SEG_BASE, "30", {0: (SEG0, 1)}),
])
def test_rmp_config_refuses_nonsense_at_the_call(make):
    with pytest.raises(ScenarioError):
        make()


def test_rmp_config_limits_are_inclusive():
    # The edges themselves are accepted: shift min and max, index 511, mapped 2**20 - 1.
    assert RmpConfig.segmented(SEG_BASE, 30, {511: (SEG0, (1 << 20) - 1)}).segment_shift == 30
    assert RmpConfig.segmented(SEG_BASE, 52, {0: (SEG0, 0)}).segment_shift == 52
    cfg = RmpConfig.contiguous(0x2000, 2 * MiB)
    assert (cfg.rmp_base, cfg.rmp_end) == (0x2000, 0x2000 + 0x4000 + 512 * 16 - 1)


@pytest.mark.parametrize("ram", [-1, 0, 1.5, True, MEMORY - 2 * MiB, "1M", (1 << 44) + (1 << 30),
                                 RAM + 1])
def test_host_ram_must_be_a_size_holding_the_guest(ram):
    sc = Scenario("bad ram", memory=MEMORY)
    with pytest.raises(ScenarioError):
        sc.host_init(RmpConfig.contiguous(RMP_BASE, RAM), ram=ram)
    assert sc.host_boot is None


def test_host_init_twice_is_refused_and_keeps_the_first():
    sc = Scenario("twice", memory=MEMORY)
    first = RmpConfig.contiguous(RMP_BASE, RAM)
    sc.host_init(first, ram=RAM)
    with pytest.raises(ScenarioError):
        sc.host_init(RmpConfig.contiguous(RMP_BASE, 32 * GiB), ram=RAM)
    assert sc.host_boot["rmp"] is first and sc.host_boot["ram"] == RAM
    # and a larger guest than the host's RAM afterwards is refused too
    small = Scenario("small host", memory=MEMORY)
    small.host_init(RmpConfig.contiguous(RMP_BASE, RAM), ram=MEMORY)
    with pytest.raises(ScenarioError):
        small.override(memory=2 * MEMORY)
    assert small.memory == MEMORY


@pytest.mark.parametrize("index", ["1", None, 1.0, True])
def test_a_vcpu_index_that_is_not_an_int_is_a_scenario_error(index):
    sc = Scenario("vmsa index", memory=MEMORY)
    seen = []

    @sc.after
    def look(h):
        try:
            h.vmsa(index)
        except ScenarioError:
            seen.append("refused")

    sc.run()
    assert seen == ["refused"]
