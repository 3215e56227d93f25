# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The host's SNP initialisation (issue 14 item 2): Linux finds and checks the RMP,
clears it and enables SNP, then the SEV driver runs SNP_INIT_EX.

Sources (read): arch/x86/virt/svm/sev.c v6.14+ -- ``probe_contiguous_rmptable_info``
("Memory for the RMP table has not been reserved by BIOS", "RMP configuration not valid:
base=%#llx, end=%#llx"), ``probe_segmented_rmptable_info`` (segment shift within CPUID
0x80000025 EAX[5:0]..EAX[11:6], EBX bit 10 limits the segment table to EBX[9:0]),
``setup_contiguous_rmptable`` ("Memory reserved for the RMP table does not cover full
system RAM (expected 0x%llx got 0x%llx)"; the RMP must cover itself), ``setup_segmented_
rmptable`` ("RMP segment %u mapped size (0x%llx) reduced to 0x%llx", "Segmented RMP does
not cover full system RAM ...", segments above RAM not counted), ``get_raw_rmpentry``
(-ENODEV, -EFAULT), ``snp_rmptable_init`` (-ENOSYS); drivers/crypto/ccp/sev-dev.c --
``snp_filter_reserved_mem_regions`` (E820 RESERVED / PMEM / ACPI; -E2BIG past one page),
``snp_alloc_hv_fixed_pages`` (NULL once SNP is initialised), ``snp_free_hv_fixed_pages``
(an HV-Fixed allocation is kept, never freed), ``__sev_snp_init_locked``.
"""

import errno

from fakeguest import DATA_GPA, make
from hypothesis import given, settings
from hypothesis import strategies as st

from snpsim.hw.cpu import Platform
from snpsim.hw.rmp import RmpConfig
from snpsim.kvm.host_mm import PageAllocator
from snpsim.kvm.kvm_main import Kvm
from snpsim.kvm.sev_dev import (
    SevDevice,
    __sev_snp_init_locked,
    snp_alloc_hv_fixed_pages,
    snp_filter_reserved_mem_regions,
    snp_free_hv_fixed_pages,
)
from snpsim.kvm.virt_svm_sev import (
    SnpRmpTable,
    __snp_lookup_rmpentry,
    get_raw_rmpentry,
    snp_probe_rmptable_info,
    snp_rmptable_init,
)
from snpsim.spec.e820 import (
    E820_TYPE_ACPI,
    E820_TYPE_NVS,
    E820_TYPE_PMEM,
    E820_TYPE_RAM,
    E820_TYPE_RESERVED,
)
from snpsim.spec.kvm_uapi import (
    KVM_CAP_VM_TYPES,
    KVM_CHECK_EXTENSION,
    KVM_CREATE_VM,
    KVM_EXIT_MEMORY_FAULT,
    KVM_X86_SNP_VM,
)
from snpsim.spec.msr_index import MSR_AMD64_SYSCFG, MSR_AMD64_SYSCFG_SNP_EN
from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K
from snpsim.spec.psp_sev import SEV_RET_INVALID_PLATFORM_STATE
from snpsim.spec.rmp import RmpState
from snpsim.system import host_e820

GiB = 1 << 30
MiB = 1 << 20
RAM = 64 * GiB
MAX_PFN = RAM >> 12
TOP = RAM - 512 * MiB     # a contiguous RMP near the top of RAM


def table(cfg, max_pfn=MAX_PFN):
    p = Platform(mem_size=1 << 44, rmp_config=cfg)
    return p, SnpRmpTable(p.host, max_pfn)


def segments(skip=(), extra=None, mapped=1):
    """1 GiB segments for 64 GiB of RAM, entries packed from 256 GiB + 1 MiB."""
    segs, spa = {}, 0x40_0010_0000
    for i in range(64):
        if i not in skip:
            segs[i] = (spa, mapped)
            spa += mapped * (GiB >> 12) * 16
    segs[256] = (spa, 1)  # the segment covering the RMP's own memory at 256 GiB
    segs.update(extra or {})
    return RmpConfig.segmented(0x40_0000_0000, 30, segs)


# -- probing -------------------------------------------------------------------------------

def test_contiguous_probe_and_setup():
    _p, st = table(RmpConfig.contiguous(TOP, RAM))
    assert snp_probe_rmptable_info(st)
    assert (st.probed_rmp_base, st.probed_rmp_size) == (TOP, 0x10004000)
    assert st.rmp_segment_shift == 52 and st.rst_max_index == 1
    assert st.log == [f"SEV-SNP: RMP table physical range [0x{TOP:016x} - 0x{TOP + 0x10003fff:016x}]"]
    assert snp_rmptable_init(st) == 0
    assert st.rmp_segment_table[0].max_index == MAX_PFN
    assert st.host.rdmsr(MSR_AMD64_SYSCFG) & MSR_AMD64_SYSCFG_SNP_EN


def test_probe_refuses_unreserved_or_inverted_tables():
    _p, st = table(RmpConfig())
    assert not snp_probe_rmptable_info(st)
    assert st.log == ["SEV-SNP: Memory for the RMP table has not been reserved by BIOS"]
    _p, st = table(RmpConfig(rmp_base=0x200000000, rmp_end=0x100000000 - 1))
    assert not snp_probe_rmptable_info(st)
    assert st.log == ["SEV-SNP: RMP configuration not valid: base=0x200000000, end=0xffffffff"]


def test_contiguous_rmp_too_small_for_ram_leaves_snp_off():
    _p, st = table(RmpConfig.contiguous(TOP, 32 * GiB))
    assert snp_probe_rmptable_info(st)
    assert snp_rmptable_init(st) == -errno.ENOSYS
    assert not st.host_sev_snp
    assert st.log[-1] == ("SEV-SNP: Memory reserved for the RMP table does not cover full system RAM "
                          "(expected 0x10004000 got 0x8004000)")


def test_contiguous_rmp_above_ram_must_cover_itself():
    # The table at 128 GiB covers 64 GiB of RAM but not itself: expected size follows
    # PFN_UP(rmp_end) instead of max_pfn.
    base = 128 * GiB
    _p, st = table(RmpConfig.contiguous(base, RAM))
    assert snp_probe_rmptable_info(st)
    assert snp_rmptable_init(st) == -errno.ENOSYS
    need = ((base + 0x10004000 + 0xFFF) >> 12) * 16 + 0x4000
    assert st.log[-1].endswith(f"(expected {need:#x} got 0x10004000)")


def test_segmented_probe_checks_the_shift_bounds_and_the_index_limit():
    cfg = segments()
    _p, st = table(RmpConfig(**{**cfg.__dict__, "segment_shift_min": 32}))
    assert not snp_probe_rmptable_info(st)
    assert st.log[-1] == "SEV-SNP: RMP segment size (30) is not within advertised bounds (min=32, max=52)"
    _p, st = table(RmpConfig(**{**cfg.__dict__, "rmp_end": 0x1000_0000}))
    assert snp_probe_rmptable_info(st)
    assert "SEV-SNP: WARN: Segmented RMP enabled but RMP_END MSR is non-zero" in st.log
    _p, st = table(RmpConfig(**{**cfg.__dict__, "rst_limit": 100}))
    assert snp_probe_rmptable_info(st) and st.rst_max_index == 100


def test_segmented_setup_records_segments_and_caps_mapped_size():
    _p, st = table(segments(extra={70: (0x50_0000_0000, 4)}))
    assert snp_probe_rmptable_info(st)
    assert snp_rmptable_init(st) == 0
    assert "SEV-SNP: Segmented RMP using 1GB segments" in st.log
    assert "SEV-SNP: RMP segment 70 mapped size (0x100000000) reduced to 0x40000000" in st.log
    assert st.rst_max_index == 257
    assert st.rmp_segment_table[70].max_index == GiB >> 12


def test_segmented_rmp_short_of_ram_is_refused_but_a_hole_below_is_not_seen():
    # Segments end at 48 GiB (< 64 GiB RAM): refused.  The 256 GiB segment is above
    # RAM ("Trusted I/O" MMIO) and does not count.
    _p, st = table(segments(skip=range(48, 64)))
    assert snp_probe_rmptable_info(st)
    assert snp_rmptable_init(st) == -errno.ENOSYS
    assert st.log[-1] == ("SEV-SNP: Segmented RMP does not cover full system RAM "
                          f"(expected {RAM:#x} got {48 * GiB:#x})")
    # A missing segment below the last one passes Linux's check (only the end of the
    # last RAM segment is compared) -- its pages are simply not covered.
    p, st = table(segments(skip=(1,)))
    assert snp_probe_rmptable_info(st)
    assert snp_rmptable_init(st) == 0
    assert not p.rmp.covered(GiB >> 12)


def test_get_raw_rmpentry_edges():
    p, st = table(segments(skip=(1,)))
    assert get_raw_rmpentry(st, 0) == (-errno.ENODEV, 0)  # before set-up
    assert snp_probe_rmptable_info(st) and snp_rmptable_init(st) == 0
    last0 = (GiB >> 12) - 1
    assert get_raw_rmpentry(st, last0) == (0, 0x40_0010_0000 + last0 * 16)
    assert get_raw_rmpentry(st, GiB >> 12) == (-errno.EFAULT, 0)          # segment 1 missing
    assert get_raw_rmpentry(st, (257 * GiB) >> 12) == (-errno.EFAULT, 0)  # index >= max
    # The lookup: RMPREAD's FAIL_INPUT (1) comes back as is; the raw table's -EFAULT.
    assert __snp_lookup_rmpentry(st, GiB >> 12, rmpread=True)[0] == 1
    assert __snp_lookup_rmpentry(st, GiB >> 12)[0] == -errno.EFAULT
    p.host.rmpupdate(2 * GiB, RmpState(0, 1, 1, 0, 0, 7))
    assert __snp_lookup_rmpentry(st, (2 * GiB >> 12) + 5)[2] == PG_LEVEL_2M
    assert __snp_lookup_rmpentry(st, 5)[2] == PG_LEVEL_4K


# -- the SEV driver ------------------------------------------------------------------------

def test_range_list_from_the_e820():
    e820 = ((0, 0x9F000, E820_TYPE_RAM), (0x9F000, 0x61000, E820_TYPE_RESERVED),
            (0x100000, 0x7FF00000, E820_TYPE_RAM), (0x80000000, 0x1000, E820_TYPE_ACPI),
            (0x80001000, 0x1000, E820_TYPE_NVS), (0x90000000, 0x200000, E820_TYPE_PMEM))
    assert snp_filter_reserved_mem_regions(e820) == (0, [(0x9F000, 0x61), (0x80000000, 1),
                                                         (0x90000000, 0x200)])
    many = tuple((i << 12, 0x1000, E820_TYPE_RESERVED) for i in range(300))
    rc, ranges = snp_filter_reserved_mem_regions(many)
    assert rc == -errno.E2BIG and len(ranges) == 256


def test_sev_snp_init_and_hv_fixed_pages():
    p, st = table(RmpConfig.contiguous(TOP, RAM))
    sev = SevDevice(p.host, PageAllocator(p.host), st,
                    ((0, 0x9F000, E820_TYPE_RAM), (0x9F000, 0x61000, E820_TYPE_RESERVED)))
    assert snp_probe_rmptable_info(st) and snp_rmptable_init(st) == 0
    pfn = snp_alloc_hv_fixed_pages(sev, 1)
    assert pfn % 512 == 0
    assert __sev_snp_init_locked(sev) == (0, 0)
    assert sev.snp_range_list == [(0x9F000, 0x61), (pfn << 12, 512)]
    assert p.rmp.lookup(pfn + 511).owner == "hv-fixed"
    assert p.rmp.lookup(TOP >> 12).owner == "firmware"
    assert snp_alloc_hv_fixed_pages(sev, 1) == -1          # SNP already initialised
    snp_free_hv_fixed_pages(sev, pfn)
    assert sev.hv_fixed[0].free and sev.allocator.is_allocated(pfn)   # kept, not freed
    assert __sev_snp_init_locked(sev) == (0, 0)            # already initialised: nothing
    assert p.firmware.snp_init_ex(True, []) == SEV_RET_INVALID_PLATFORM_STATE


def test_kvm_offers_no_snp_vm_when_host_init_failed():
    p = Platform(mem_size=1 << 44, rmp_config=RmpConfig.contiguous(TOP, 32 * GiB))
    kvm = Kvm(p.host)
    assert kvm.snp_host_init(MAX_PFN) == -errno.ENOSYS
    dev = kvm.open()
    assert not kvm.ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES) & (1 << KVM_X86_SNP_VM)
    assert kvm.ioctl(dev, KVM_CREATE_VM, KVM_X86_SNP_VM) == -errno.EINVAL
    p = Platform(mem_size=1 << 44, rmp_config=RmpConfig.contiguous(TOP, RAM))
    kvm = Kvm(p.host)
    assert kvm.snp_host_init(MAX_PFN, hv_fixed_2m=1) == 0
    dev = kvm.open()
    assert kvm.ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES) & (1 << KVM_X86_SNP_VM)
    assert kvm.ioctl(dev, KVM_CREATE_VM, KVM_X86_SNP_VM) > 0


def test_a_guest_memfd_page_the_rmp_does_not_cover():
    """KVM sev_gmem_prepare: ``snp_lookup_rmpentry`` fails (RMPREAD FAIL_INPUT for an
    uncovered SPA) -> "SEV: Failed to look up RMP entry: GFN %llx PFN %llx error %d",
    -ENOENT, which the private fault returns from KVM_RUN (the memory-fault exit filled
    in); QEMU: "kvm run failed" and the VM stops.  The page never became the guest's."""
    out = {}
    platform, kvm, m = make(lambda cpu: out.setdefault("pv", cpu.pvalidate(DATA_GPA, 0, True)))
    # Everything launched so far is covered; the RMP ends right above it, at the
    # allocator's bump pointer (model-only: a platform whose RMP is smaller than the
    # memory KVM is about to hand out).
    platform.rmp.coverage = kvm.allocator._next << 12
    r = m.run()
    vm = kvm.vm(m.s.vmfd)
    assert "pv" not in out and r.result == "internal-error"
    assert m.cpus[0].last_run_ret == -errno.ENOENT
    assert m.cpus[0].kvm_run.exit_reason == KVM_EXIT_MEMORY_FAULT
    assert any(line.startswith("SEV: Failed to look up RMP entry: GFN 30 PFN") for line in vm.log)


def test_a_1_tib_host_initialises_without_per_page_storage():
    """Cost follows the work: a 1 TiB host's RMP (16 KiB + 4 GiB of entries) is cleared,
    made Firmware and checked by extent; no RMP storage is allocated for it."""
    tib = 1 << 40
    base = tib - (5 << 30)
    cfg = RmpConfig.contiguous(base, tib)
    p = Platform(mem_size=1 << 44, rmp_config=cfg)
    kvm = Kvm(p.host)
    assert kvm.snp_host_init(tib >> 12, host_e820(tib, cfg)) == 0
    # Only the 512 entries really written (the SEV-ES TMR made firmware-owned) are stored.
    assert p.rmp.bytes_used() == 512 * 16
    assert p.rmp.lookup((base + (4 << 30)) >> 12).owner == "firmware"
    assert p.rmp.lookup((tib >> 12) - 1).owner == "hypervisor"
    # The table's end (base + 4 GiB + 16 KiB) is not 2 MiB aligned: snp_fixup_e820_tables
    # reserves the rest of that 2 MiB, which then becomes HV-Fixed too.
    end = base + (4 << 30) + 0x4000
    assert kvm.sev_device.snp_range_list[-2:] == [(base, (end - base) >> 12),
                                                  (end, (2 << 20) - 0x4000 >> 12)]
    assert (f"SEV-SNP: Reserving start/end of RMP table on a 2MB boundary "
            f"[0x{end - 0x4000:016x}]") in kvm.sev_device.rmptable.log
    assert p.rmp.lookup((end >> 12) + 1).owner == "hv-fixed"


def test_snp_fixup_e820_tables_reserves_the_2m_around_unaligned_boundaries():
    """arch/x86/virt/svm/sev.c __snp_fixup_e820_tables: a boundary not 2 MiB aligned with
    RAM in its 2 MiB -> that 2 MiB becomes E820_TYPE_RESERVED; aligned ones change
    nothing.  Segmented: the base, the end of the segment table, each segment's start
    and end."""
    from snpsim.kvm.virt_svm_sev import snp_fixup_e820_tables

    ram = ((0, RAM, E820_TYPE_RAM),)
    _p, st = table(RmpConfig.contiguous(TOP, RAM))          # TOP is 2 MiB aligned
    assert snp_probe_rmptable_info(st)
    fixed = snp_fixup_e820_tables(st, ram)
    end = TOP + 0x10004000                                    # the end is not
    assert fixed == ((0, end - end % (2 * MiB), E820_TYPE_RAM),
                     (end - end % (2 * MiB), 2 * MiB, E820_TYPE_RESERVED),
                     (end - end % (2 * MiB) + 2 * MiB, RAM - (end - end % (2 * MiB) + 2 * MiB),
                      E820_TYPE_RAM))
    # Segmented, everything above RAM: nothing to reserve in RAM, the map is unchanged.
    _p, st = table(segments())
    assert snp_probe_rmptable_info(st)
    assert snp_fixup_e820_tables(st, ram) == ram
    assert not any("Reserving" in line for line in st.log)


def test_the_sev_es_tmr_is_firmware_owned_after_snp_init():
    """sev-dev.c __sev_platform_init_handle_tmr after SNP init: sev_fw_alloc(SNP_TMR_SIZE
    = 2 MiB) -> __snp_alloc_firmware_pages -> rmp_mark_pages_firmware: each 4 KiB page
    rmp_make_private(pfn, 0, PG_LEVEL_4K, 0, true) -- Assigned, ASID 0, Immutable.  The
    hypervisor can no longer RMPUPDATE them (FAIL_PERMISSION)."""
    p = Platform(mem_size=1 << 44, rmp_config=RmpConfig.contiguous(TOP, RAM))
    kvm = Kvm(p.host)
    assert kvm.snp_host_init(MAX_PFN) == 0
    tmr = kvm.sev_device.sev_es_tmr
    assert tmr > 0 and tmr % 512 == 0
    for pfn in (tmr, tmr + 511):
        e = p.rmp.entry(pfn)
        assert (e.owner, e.pagesize, e.gpa) == ("firmware", 0, 0)
    assert p.rmp.lookup(tmr + 512).owner == "hypervisor"
    assert p.rmp.counters["RMPUPDATE"] == 512
    assert p.host.rmpupdate(tmr << 12, RmpState(0, 0, 0, 0, 0, 0)) == 2


def test_alloc_rmp_segment_desc_refusals():
    """sev.c alloc_rmp_segment_desc: "Invalid RMP size 0x%llx for configured segment size
    0x%llx" (more than 16 bytes per page of a segment), "Invalid RMP segment base address
    0x%llx for configured segment size 0x%llx" (index >= rst_max_index), "RMP segment
    descriptor already exists at index %llu"."""
    from snpsim.kvm.virt_svm_sev import alloc_rmp_segment_desc, alloc_rmp_segment_table

    _p, st = table(segments())
    assert snp_probe_rmptable_info(st) and alloc_rmp_segment_table(st)
    per_segment = (GiB >> 12) * 16
    assert not alloc_rmp_segment_desc(st, 0x50_0000_0000, per_segment + 16, 0)
    assert st.log[-1] == f"SEV-SNP: Invalid RMP size {per_segment + 16:#x} for configured segment size {per_segment:#x}"
    assert not alloc_rmp_segment_desc(st, 0x50_0000_0000, per_segment, 512 * GiB)
    assert st.log[-1] == (f"SEV-SNP: Invalid RMP segment base address {512 * GiB:#x} for configured "
                          f"segment size {GiB:#x}")
    assert alloc_rmp_segment_desc(st, 0x50_0000_0000, per_segment, 3 * GiB)
    assert not alloc_rmp_segment_desc(st, 0x50_0100_0000, per_segment, 3 * GiB + 4096)
    assert st.log[-1] == "SEV-SNP: RMP segment descriptor already exists at index 3"
    st.host_sev_snp = False
    assert __snp_lookup_rmpentry(st, 5)[0] == -errno.ENODEV


def test_reserved_memory_never_reaches_the_page_allocator():
    """Linux gives the buddy allocator only e820 RAM: with the RMP right where the
    model's allocator starts (1 GiB), the pages KVM gets skip the table, which stays
    firmware-owned."""
    base = GiB                                   # the allocator's first PFN
    cfg = RmpConfig.contiguous(base, RAM)
    p = Platform(mem_size=1 << 44, rmp_config=cfg)
    kvm = Kvm(p.host)
    assert kvm.snp_host_init(MAX_PFN, host_e820(RAM, cfg)) == 0
    end = base + 0x10004000
    end_2m = end - end % (2 * MiB) + 2 * MiB    # snp_fixup_e820_tables reserved up to here
    pfns = [kvm.allocator.alloc_page() for _ in range(3)]
    tmr = kvm.sev_device.sev_es_tmr
    assert tmr == end_2m >> 12                   # the TMR: the first free 2 MiB after it
    assert pfns[0] == (end_2m >> 12) + 512
    assert all(p.rmp.lookup(x).owner == "hypervisor" for x in pfns)
    assert p.rmp.lookup(base >> 12).owner == "firmware"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 700)), max_size=4),
       st.lists(st.sampled_from(["page", "2m", "free"]), max_size=40))
def test_the_allocator_never_hands_out_reserved_or_busy_pages(reserved, ops):
    """Model-only invariant of PageAllocator.reserve: whatever the order of
    alloc_page / alloc_pages(9) / free_pages, no PFN handed out is reserved or held
    twice."""
    p = Platform(mem_size=1 << 40)
    alloc = PageAllocator(p.host)
    bad = set()
    for start, n in reserved:
        alloc.reserve(0x40000 + start, n)
        bad.update(range(0x40000 + start, 0x40000 + start + n))
    held: list[tuple[int, int]] = []
    for op in ops:
        if op == "free" and held:
            pfn, order = held.pop(0)
            alloc.free_pages(pfn, order)
            continue
        order = 9 if op == "2m" else 0
        pfn = alloc.alloc_pages(9) if order else alloc.alloc_page()
        block = set(range(pfn, pfn + (1 << order)))
        assert not block & bad
        assert not any(block & set(range(q, q + (1 << o))) for q, o in held)
        held.append((pfn, order))
