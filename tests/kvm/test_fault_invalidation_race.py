# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 13 item 5: the fault path's invalidation check and the mixed-attribute level
check as current KVM has them.

Sources (Linux v6.18): include/linux/kvm_host.h ``mmu_invalidate_retry_gfn`` (in
progress and GFN in [range_start, range_end) -> retry; range still INVALID_GPA -> WARN
and retry; else retry iff the sequence moved) and ``mmu_invalidate_retry_gfn_unsafe``;
virt/kvm/kvm_main.c ``kvm_mmu_invalidate_begin`` (in_progress + 1, range reset on the
first), ``kvm_mmu_invalidate_range_add``, ``kvm_mmu_invalidate_end`` (seq + 1, then
in_progress - 1), ``kvm_vm_set_mem_attributes`` (begin + range_add + zap under the
pre-set range, store, end + ``kvm_arch_post_set_memory_attributes`` under the post-set
range; nothing when no memslot overlaps); arch/x86/kvm/mmu/mmu.c ``kvm_mmu_faultin_pfn``,
``is_page_fault_stale``, ``kvm_arch_post_set_memory_attributes`` /
``hugepage_has_attrs`` (KVM_LPAGE_MIXED_FLAG), ``kvm_mmu_max_mapping_level``.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from swprotguest import make

from snpsim.api import Scenario, do, hooked, leave, run
from snpsim.kvm.mmu import (
    INVALID_GPA,
    RetPf,
    kvm_mmu_invalidate_begin,
    kvm_mmu_invalidate_end,
    kvm_mmu_invalidate_range_add,
    kvm_mmu_page_fault,
    mmu_invalidate_retry_gfn,
    mmu_invalidate_retry_gfn_unsafe,
)
from snpsim.kvm.profiles import DEFAULT_PROFILE
from snpsim.spec.faults import PFERR_GUEST_FINAL_MASK, PFERR_WRITE_MASK
from snpsim.spec.kvm_uapi import KVM_MEMORY_EXIT_FLAG_PRIVATE
from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K

WRITE = int(PFERR_GUEST_FINAL_MASK | PFERR_WRITE_MASK)


def _idle():
    return make(lambda cpu: None)


# -- the retry predicate ---------------------------------------------------------------------


def test_retry_predicate_follows_sequence_and_range():
    kvm = _idle().vm
    seq = kvm.mmu_invalidate_seq
    assert not mmu_invalidate_retry_gfn(kvm, seq, 0x150)
    assert mmu_invalidate_retry_gfn(kvm, seq - 1, 0x150)  # an invalidation ended since
    kvm_mmu_invalidate_begin(kvm)
    assert kvm.mmu_invalidate_seq == seq  # begin does not bump the sequence
    kvm_mmu_invalidate_range_add(kvm, 0x100, 0x200)
    # in progress: inside the range retry, outside not (same sequence)
    assert mmu_invalidate_retry_gfn(kvm, seq, 0x100)
    assert mmu_invalidate_retry_gfn(kvm, seq, 0x1FF)
    assert not mmu_invalidate_retry_gfn(kvm, seq, 0x200)
    assert not mmu_invalidate_retry_gfn(kvm, seq, 0xFF)
    assert mmu_invalidate_retry_gfn_unsafe(kvm, seq, 0x150)
    assert not mmu_invalidate_retry_gfn_unsafe(kvm, seq, 0x250)
    # a nested invalidation widens the range to the union's hull
    kvm_mmu_invalidate_begin(kvm)
    kvm_mmu_invalidate_range_add(kvm, 0x300, 0x310)
    assert (kvm.mmu_invalidate_range_start, kvm.mmu_invalidate_range_end) == (0x100, 0x310)
    assert mmu_invalidate_retry_gfn(kvm, seq, 0x250)  # in the hull: a false positive
    kvm_mmu_invalidate_end(kvm)
    assert kvm.mmu_invalidate_in_progress == 1 and kvm.mmu_invalidate_seq == seq + 1
    kvm_mmu_invalidate_end(kvm)
    assert kvm.mmu_invalidate_in_progress == 0 and kvm.mmu_invalidate_seq == seq + 2
    # done: only the sequence matters
    assert not mmu_invalidate_retry_gfn(kvm, seq + 2, 0x150)
    assert mmu_invalidate_retry_gfn(kvm, seq + 1, 0x999)
    assert not kvm.log


def test_retry_predicate_without_a_range_warns_and_retries():
    kvm = _idle().vm
    seq = kvm.mmu_invalidate_seq
    kvm_mmu_invalidate_begin(kvm)
    assert kvm.mmu_invalidate_range_start == INVALID_GPA
    # the locked check WARNs and retries; the lockless one sees no range
    assert mmu_invalidate_retry_gfn(kvm, seq, 0x10)
    assert any("WARN" in line for line in kvm.log)
    assert not mmu_invalidate_retry_gfn_unsafe(kvm, seq, 0x10)


def test_attribute_update_is_one_invalidation_of_the_slot_part():
    v = _idle()
    kvm = v.vm
    seq = kvm.mmu_invalidate_seq
    seen = []

    def post(original, kvm_, start, end, attributes, *, post):
        if post:
            seen.append((kvm_.mmu_invalidate_in_progress, kvm_.mmu_invalidate_range_start,
                         kvm_.mmu_invalidate_range_end, kvm_.mem_attr_array.get(start)))
        return original(kvm_, start, end, attributes, post=post)

    with hooked({"kvm_handle_gfn_range": post}):
        # GFNs 0x1f0..0x210: slot 1 holds 0x100..0x200, so the range added is 0x1f0..0x200
        assert v.set_attributes(0x1F0000, 0x20000, private=True) == 0
    assert seen == [(1, 0x1F0, 0x200, 8)]
    assert kvm.mmu_invalidate_seq == seq + 1 and kvm.mmu_invalidate_in_progress == 0
    # no memslot overlaps: the attributes change with no invalidation at all
    assert v.set_attributes(0x800000, 0x1000, private=True) == 0
    assert kvm.mmu_invalidate_seq == seq + 1
    assert kvm.mem_attr_array.get(0x800) == 8
    assert not kvm.log


def test_fault_between_store_and_end_retries_only_inside_the_range():
    """A fault that runs after the attributes are stored and before
    ``kvm_mmu_invalidate_end``: its GFN is in the invalidation range, so it retries
    (the sequence alone has not moved yet); a GFN outside the range maps."""
    v = _idle()
    kvm = v.vm
    vcpu = v.kvm.vcpu(v.vcpufd)
    target, other = 0x105000, 0x106000
    assert v.set_attributes(0x100000, 0x100000, private=True) == 0
    results = []

    def post(original, kvm_, start, end, attributes, *, post):
        if post:
            results.append(("in", kvm_mmu_page_fault(vcpu, target, WRITE),
                            kvm.host.npt_lookup(kvm.npt, target >> 12)))
            results.append(("out", kvm_mmu_page_fault(vcpu, other, WRITE),
                            kvm.host.npt_lookup(kvm.npt, other >> 12)))
        return original(kvm_, start, end, attributes, post=post)

    stale = []

    def is_stale(original, vcpu_, fault):
        r = original(vcpu_, fault)
        stale.append((fault.gfn, r))
        return r

    with hooked({"kvm_handle_gfn_range": post, "is_page_fault_stale": is_stale}):
        assert v.set_attributes(target, 0x1000, private=False) == 0
    (_, r_in, leaf_in), (_, r_out, leaf_out) = results
    assert r_in == 1 and leaf_in is None  # RET_PF_RETRY: resume, nothing installed
    assert r_out == 1 and leaf_out is not None and leaf_out.level == PG_LEVEL_4K
    # the in-range fault stopped at the lockless check before the PFN lookup
    assert stale == [(other >> 12, False)]
    # after the update the fault maps the now-shared page from the shared backing
    assert kvm_mmu_page_fault(vcpu, target, WRITE) == 1
    leaf = kvm.host.npt_lookup(kvm.npt, target >> 12)
    assert leaf is not None and leaf.level == PG_LEVEL_4K
    assert kvm.memslots[1].gmem_file.folio_at((target - 0x100000) >> 12) is None


# -- the mixed-attribute level check (2 MiB guest_memfd folios) ------------------------------

BIG = 0x400000
PROFILE_2M = DEFAULT_PROFILE.derive("2M folios", knobs={"gmem_max_order": 9})


def _big():
    v = make(lambda cpu: None, kvm_profile=PROFILE_2M, data=BIG, data_size=4 << 20)
    assert v.set_attributes(BIG, 4 << 20, private=True) == 0
    return v, v.kvm.vcpu(v.vcpufd)


def _level(v, gpa):
    leaf = v.platform.host.npt_lookup(v.vm.npt, gpa >> 12)
    return None if leaf is None else leaf.level


def test_2m_mapping_only_over_unmixed_attributes():
    v, vcpu = _big()
    slot = v.vm.memslots[1]
    assert slot.lpage_mixed == set()
    assert kvm_mmu_page_fault(vcpu, BIG, WRITE) == 1
    assert _level(v, BIG) == PG_LEVEL_2M
    # one page of the 2 MiB range made shared: zapped, marked mixed, re-faulted at 4 KiB
    assert v.set_attributes(BIG + 0x1000, 0x1000, private=False) == 0
    assert _level(v, BIG) is None
    assert slot.lpage_mixed == {BIG >> 21}
    assert kvm_mmu_page_fault(vcpu, BIG, WRITE) == 1
    assert _level(v, BIG) == PG_LEVEL_4K
    # the next 2 MiB range is untouched and still maps 2 MiB
    assert kvm_mmu_page_fault(vcpu, BIG + (2 << 20), WRITE) == 1
    assert _level(v, BIG + (2 << 20)) == PG_LEVEL_2M
    # back to private: no longer mixed, 2 MiB again
    assert v.set_attributes(BIG + 0x1000, 0x1000, private=True) == 0
    assert slot.lpage_mixed == set()
    assert kvm_mmu_page_fault(vcpu, BIG + 0x1000, WRITE) == 1
    assert _level(v, BIG) == PG_LEVEL_2M


def test_mixed_flags_at_slot_creation():
    """``kvm_mmu_init_memslot_memory_attributes``: attributes set before the slot exists
    mark its 2 MiB ranges mixed when the slot is created."""
    from snpsim.kvm.uapi import KvmCreateGuestMemfd, KvmUserspaceMemoryRegion2
    from snpsim.spec.kvm_uapi import (
        KVM_CREATE_GUEST_MEMFD,
        KVM_MEM_GUEST_MEMFD,
        KVM_SET_USER_MEMORY_REGION2,
    )

    v, vcpu = _big()
    base = 0x1000000  # 16 MiB, 4 MiB slot: 2 MiB ranges 8 and 9
    assert v.set_attributes(base + (2 << 20) + 0x3000, 0x1000, private=True) == 0
    gmem = v.kvm.ioctl(v.vmfd, KVM_CREATE_GUEST_MEMFD, KvmCreateGuestMemfd(4 << 20))
    hva = v.kvm.mmap(4 << 20)
    assert v.kvm.ioctl(v.vmfd, KVM_SET_USER_MEMORY_REGION2, KvmUserspaceMemoryRegion2(
        2, KVM_MEM_GUEST_MEMFD, base, 4 << 20, hva, 0, gmem)) == 0
    assert v.vm.memslots[2].lpage_mixed == {(base >> 21) + 1}
    assert kvm_mmu_page_fault(vcpu, base + (2 << 20) + 0x3000, WRITE) == 1
    assert _level(v, base + (2 << 20) + 0x3000) == PG_LEVEL_4K


def test_fault_racing_a_neighbour_conversion_never_maps_2m():
    """The fault has its guest_memfd PFN (a 2 MiB folio, whole range private); before it
    installs, the VMM makes one neighbour page shared.  The stale check sends it back;
    the retry maps 4 KiB, never a 2 MiB private mapping over the shared page."""
    v, vcpu = _big()
    flipped = []

    def faultin(original, vcpu_, fault):
        r = original(vcpu_, fault)
        if not flipped:
            flipped.append((r, fault.max_level))
            assert v.set_attributes(BIG + 0x1000, 0x1000, private=False) == 0
        return r

    tdp = []

    def note(original, vcpu_, fault):
        r = original(vcpu_, fault)
        tdp.append(r)
        return r

    with hooked({"kvm_mmu_faultin_pfn": faultin, "kvm_tdp_page_fault": note}):
        assert kvm_mmu_page_fault(vcpu, BIG, WRITE) == 1
        assert _level(v, BIG) is None
        assert kvm_mmu_page_fault(vcpu, BIG, WRITE) == 1
    assert flipped == [(RetPf.RET_PF_CONTINUE, PG_LEVEL_2M)]
    assert tdp == [RetPf.RET_PF_RETRY, RetPf.RET_PF_FIXED]
    assert _level(v, BIG) == PG_LEVEL_4K
    assert _level(v, BIG + 0x1000) is None


# -- the same race through the scenario API (SNP guest) ---------------------------------------


def _scenario(flip_offset: int, **kw):
    sc = Scenario("fault races an attribute change", memory="64M", vcpus=2, **kw)
    data = sc.data

    @sc.guest(vcpu=1)
    def touch(g):
        va = g.alloc_page()
        data["gpa"] = g.pa(va)
        g.write(va, b"hello")
        data["read"] = g.read(va, 5)

    def mine(args):
        return args["fault"].gfn == data.get("gpa", -1) >> 12

    @sc.hook("kvm_tdp_page_fault")
    def note(original, vcpu, fault):
        r = original(vcpu, fault)
        if mine({"fault": fault}):
            data.setdefault("tdp", []).append(r)
        return r

    @sc.hook("kvm_handle_memory_fault")
    def exit_(original, cpu, run_):
        mf = run_.memory_fault
        data.setdefault("exits", []).append((mf.gpa, mf.size, mf.flags))
        return original(cpu, run_)

    def flip(h):
        data["flipped"] = data["gpa"] ^ flip_offset
        data["ret"] = h.set_memory_attributes(data["flipped"], 4096, private=False)

    sc.schedule(run(1, until=leave("kvm_mmu_faultin_pfn", where=mine)), do(flip), run(1))
    res = sc.run()
    assert res.completed and not res.errors, res.describe()
    return res, data


def test_schedule_flip_of_the_faulting_page():
    res, data = _scenario(0)
    gpa = data["gpa"]
    assert data["ret"] == 0
    # held fault: stale -> retry; re-fault: private access on a shared GFN -> exit
    # (-EFAULT) with the PRIVATE flag; QEMU converts back; third fault maps it
    assert data["tdp"] == [RetPf.RET_PF_RETRY, -14, RetPf.RET_PF_FIXED]
    assert data["exits"] == [(gpa, 4096, KVM_MEMORY_EXIT_FLAG_PRIVATE)]
    assert data["read"] == b"hello"
    page = res.page(gpa)
    assert page.attribute_private and page.rmp["assigned"]
    leaf = res.host.vm.npt.lookup(gpa >> 12)
    assert leaf is not None and leaf.level == PG_LEVEL_4K


def test_schedule_flip_elsewhere_still_retries_once():
    """An invalidation that ended, of any range, moves the sequence: the held fault
    retries once and then maps its page without any exit."""
    res, data = _scenario(4 << 20)
    assert data["ret"] == 0
    assert data["tdp"] == [RetPf.RET_PF_RETRY, RetPf.RET_PF_FIXED]
    assert "exits" not in data or all(e[0] != data["gpa"] for e in data["exits"])
    assert data["read"] == b"hello"
    assert res.page(data["gpa"]).attribute_private


def test_schedule_flip_of_a_neighbour_with_2m_folios():
    """With 2 MiB guest_memfd folios: the neighbour page made shared while the fault is
    held; the fault retries, then maps its page at 4 KiB (the 2 MiB range is mixed) and
    the neighbour stays unmapped."""
    res, data = _scenario(0x1000, kvm_knobs={"gmem_max_order": 9})
    gfn = data["gpa"] >> 12
    assert data["ret"] == 0
    assert data["tdp"] == [RetPf.RET_PF_RETRY, RetPf.RET_PF_FIXED]
    assert data["read"] == b"hello"
    vm = res.host.vm
    leaf = vm.npt.lookup(gfn)
    assert leaf is not None and leaf.level == PG_LEVEL_4K
    assert vm.npt.lookup(gfn ^ 1) is None
    assert vm.mem_attr_array.get(gfn) == 8 and vm.mem_attr_array.get(gfn ^ 1) == 0
    assert any(gfn >> 9 in slot.lpage_mixed for slot in vm.memslots.values())
    assert res.page(data["gpa"]).rmp["assigned"]


# -- the incremental mixed flags against a per-range recomputation ---------------------------

_SLOT_BASE = 0x200  # GFN: slot 1 at 2 MiB, 6 MiB long (three 2 MiB ranges: 1, 2, 3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0x100, 0x900), st.integers(1, 0x500), st.booleans()),
                min_size=1, max_size=8),
       st.lists(st.tuples(st.integers(0x100, 0x900), st.integers(1, 0x300)), max_size=2))
def test_mixed_flags_match_a_recomputation(updates, before_slot):
    """``kvm_arch_post_set_memory_attributes`` keeps ``lpage_mixed`` incrementally (and
    ``kvm_mmu_init_memslot_memory_attributes`` from the runs); after any sequence of
    updates, inside and across the slot's edges, it equals checking every 2 MiB range
    of the slot with ``hugepage_has_attrs``."""
    from snpsim.kvm.kvm_main import kvm_set_memory_region, kvm_vm_set_mem_attributes
    from snpsim.kvm.mmu import hugepage_has_attrs
    from snpsim.kvm.uapi import KvmUserspaceMemoryRegion2

    v = _idle()
    kvm = v.vm
    # replace the data slot by a plain one at 2 MiB, created after ``before_slot``
    assert kvm_set_memory_region(kvm, KvmUserspaceMemoryRegion2(1, 0, 0x100000, 0, 0), None) == 0
    for start, n in before_slot:
        kvm_vm_set_mem_attributes(kvm, start, start + n, 8)
    mem = KvmUserspaceMemoryRegion2(1, 0, _SLOT_BASE << 12, 6 << 20, v.kvm.mmap(6 << 20))
    assert kvm_set_memory_region(kvm, mem, None) == 0
    slot = kvm.memslots[1]
    for start, n, private in updates:
        kvm_vm_set_mem_attributes(kvm, start, start + n, 8 if private else 0)
    want = {h for h in range(_SLOT_BASE >> 9, (_SLOT_BASE >> 9) + 3)
            if not hugepage_has_attrs(kvm, h << 9, kvm.mem_attr_array.get(h << 9))}
    assert slot.lpage_mixed == want


def _in_window(v, vcpu, convert_gpa, fault_gpas):
    """Convert ``convert_gpa`` to shared; between the store and the end, fault each of
    ``fault_gpas``.  Returns [(range_start, range_end)], [(gpa, result, level)]."""
    ranges, faults = [], []

    def post(original, kvm_, start, end, attributes, *, post):
        if post:
            ranges.append((kvm_.mmu_invalidate_range_start, kvm_.mmu_invalidate_range_end))
            for gpa in fault_gpas:
                faults.append((gpa, kvm_mmu_page_fault(vcpu, gpa, WRITE), _level(v, gpa)))
        return original(kvm_, start, end, attributes, post=post)

    with hooked({"kvm_handle_gfn_range": post}):
        assert v.set_attributes(convert_gpa, 0x1000, private=False) == 0
    return ranges, faults


def test_conversion_holds_off_2m_mappings_of_its_2m_range():
    """v6.15+ ``kvm_arch_pre_set_memory_attributes`` (commit 9129633d568e): a 2 MiB range
    the update only partly covers, not yet mixed, joins the invalidation, so a fault on
    a GFN whose attribute is not changing retries instead of mapping 2 MiB over the
    page being converted; other 2 MiB ranges map as usual."""
    v, vcpu = _big()
    g = BIG >> 12
    ranges, faults = _in_window(v, vcpu, BIG + 0x1000, [BIG + 0x2000, BIG + (2 << 20)])
    assert ranges == [(g, g + 512)]
    assert faults == [(BIG + 0x2000, 1, None), (BIG + (2 << 20), 1, PG_LEVEL_2M)]
    # once the range is mixed, a later conversion in it adds only its own page
    ranges, faults = _in_window(v, vcpu, BIG + 0x3000, [BIG + 0x2000])
    assert ranges == [(g + 3, g + 4)]
    assert faults == [(BIG + 0x2000, 1, PG_LEVEL_4K)]
