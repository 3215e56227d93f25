# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Host RMP operations: ``rmpupdate``, ``rmp_make_private``, ``rmp_make_shared``,
``psmash``, ``snp_lookup_rmpentry``, ``snp_leak_pages``, and KVM's wrappers
``snp_rmptable_psmash`` and ``kvm_rmp_make_shared``; and the host's RMP set-up at boot
(:class:`SnpRmpTable`: ``snp_probe_rmptable_info``, ``setup_contiguous_rmptable``,
``setup_segmented_rmptable``, ``alloc_rmp_segment_desc``, ``snp_rmptable_init``,
``snp_prepare``, ``get_raw_rmpentry``, ``__snp_lookup_rmpentry``), as in
``arch/x86/virt/svm/sev.c`` v6.14+ (segmented RMP, 2025), with ``snp_prepare`` /
``clear_rmp`` of the delayed-SNP-enable series (2026 postings; the release that merged
it is unconfirmed).

Mirrors ``arch/x86/virt/svm/sev.c`` (commit 0cbc0258, ~v6.14/6.15) and the wrappers in
``arch/x86/kvm/svm/sev.c`` (~v6.17); kvm-qemu-host.md sections 7.1-7.3.  The instructions
themselves run on the platform through the host port.  Units: PFNs (4 KiB frames), GPAs
in bytes; levels are ``PG_LEVEL_4K`` (1) / ``PG_LEVEL_2M`` (2).  Errors: negative errno.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from snpsim.spec.e820 import E820_TYPE_RAM, E820_TYPE_RESERVED
from snpsim.spec.msr_index import (
    CPUID_FN_RMP_SEGMENTS,
    MSR_AMD64_RMP_BASE,
    MSR_AMD64_RMP_CFG,
    MSR_AMD64_RMP_END,
    MSR_AMD64_RMP_SEGMENT_SHIFT,
    MSR_AMD64_SEG_RMP_ENABLED,
    MSR_AMD64_SYSCFG,
    MSR_AMD64_SYSCFG_SNP_EN,
    MSR_AMD64_SYSCFG_SNP_VMPL_EN,
)
from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K
from snpsim.spec.rmp import (
    PSMASH_FAIL_INUSE,
    RMP_ADDR_MASK,
    RMP_ENTRY_SIZE,
    RMPTABLE_CPU_BOOKKEEPING_SZ,
    RMPTABLE_NON_SEGMENTED_SHIFT,
    RMPUPDATE_FAIL_OVERLAP,
    RST_ENTRY_MAPPED_SIZE,
    RST_ENTRY_SEGMENT_BASE,
    RST_MAX_INDEX,
    RST_SIZE,
    RmpState,
)
from snpsim.spec.units import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_SIZE,
    PTRS_PER_PMD,
    RMP_PG_SIZE_2M,
    RMP_PG_SIZE_4K,
)
from snpsim.trace.record import emit_instant, traced

from .kvm_host import KvmVm

__all__ = [
    "rmpupdate",
    "rmp_make_private",
    "rmp_make_shared",
    "psmash",
    "snp_lookup_rmpentry",
    "snp_leak_pages",
    "snp_rmptable_psmash",
    "kvm_rmp_make_shared",
    "SnpRmpTable",
    "RmpSegmentDesc",
    "snp_probe_rmptable_info",
    "snp_fixup_e820_tables",
    "alloc_rmp_segment_table",
    "setup_contiguous_rmptable",
    "setup_segmented_rmptable",
    "alloc_rmp_segment_desc",
    "snp_rmptable_init",
    "snp_prepare",
    "get_raw_rmpentry",
    "__snp_lookup_rmpentry",
]


def _host(kvm: KvmVm):  # noqa: ANN202 - HostPort
    return kvm.host


@traced("kvm")
def rmpupdate(kvm: KvmVm, pfn: int, state: RmpState) -> int:
    """``rmpupdate(pfn, state)`` (arch/x86/virt/svm/sev.c, v6.17): RMPUPDATE of the page
    ``pfn`` with ``state``, repeated for as long as it returns FAIL_OVERLAP (4) -- Linux
    has no bound.

    Returns 0, -EINVAL (2 MiB update of a PFN not 512-aligned: ``adjust_direct_map``) or
    -EFAULT (any other RMPUPDATE failure, logged).  ``kvm`` carries the host port (the C
    function has no context argument).  Model-only: each FAIL_OVERLAP is a pass for the
    livelock watcher (loop ``rmpupdate``, no vCPU; state: the PFN, the requested state
    and the RMP entries of the page and of its 2 MiB head); an overlap that nothing
    clears raises :class:`snpsim.trace.progress.Livelock` after ``livelock_repeats``
    passes instead of spinning forever.
    """
    if state.pagesize == RMP_PG_SIZE_2M and pfn % PTRS_PER_PMD:
        return -errno.EINVAL
    host = _host(kvm)
    while True:
        ret = host.rmpupdate(pfn << PAGE_SHIFT, state)
        if ret != RMPUPDATE_FAIL_OVERLAP:
            break
        host.progress.watch("rmpupdate", None, (pfn, state, *_rmp_snapshot(kvm, pfn)),
                            lambda: f"RMPUPDATE of PFN {pfn:#x} fails with FAIL_OVERLAP and "
                                    f"nothing changes the RMP")
    host.progress.progress("rmpupdate", None)
    if ret:
        kvm.pr(f"Failed to update RMP entry for PFN {pfn:#x} error {ret}")
        return -errno.EFAULT
    return 0


def _rmp_snapshot(kvm: KvmVm, pfn: int) -> tuple:
    """Model-only: RMPREAD of ``pfn`` and of its 2 MiB-aligned head (each (code, entry))."""
    host = _host(kvm)
    return host.rmpread(pfn << PAGE_SHIFT), host.rmpread((pfn & ~(PTRS_PER_PMD - 1)) << PAGE_SHIFT)


@traced("kvm")
def rmp_make_private(kvm: KvmVm, pfn: int, gpa: int, level: int, asid: int, immutable: bool) -> int:
    """``rmp_make_private(pfn, gpa, level, asid, immutable)``: assign ``pfn`` to ``asid``
    at ``gpa`` (bytes; page aligned) with page size from ``level`` (PG_LEVEL_4K/2M).
    Validated is cleared by the hardware.  Returns ``rmpupdate``'s result."""
    state = RmpState(
        gpa=gpa & ~0xFFF,
        assigned=1,
        pagesize=RMP_PG_SIZE_4K if level == PG_LEVEL_4K else RMP_PG_SIZE_2M,
        immutable=1 if immutable else 0,
        rsvd=0,
        asid=asid,
    )
    return rmpupdate(kvm, pfn, state)


@traced("kvm")
def rmp_make_shared(kvm: KvmVm, pfn: int, level: int) -> int:
    """``rmp_make_shared(pfn, level)``: return ``pfn`` to the hypervisor (all fields zero
    except the page size from ``level``).  Returns ``rmpupdate``'s result."""
    state = RmpState(
        gpa=0, assigned=0, pagesize=RMP_PG_SIZE_4K if level == PG_LEVEL_4K else RMP_PG_SIZE_2M,
        immutable=0, rsvd=0, asid=0,
    )
    return rmpupdate(kvm, pfn, state)


@traced("kvm")
def psmash(kvm: KvmVm, pfn: int) -> int:
    """``psmash(pfn)``: PSMASH the 2 MiB RMP entry at ``pfn`` (must be 512-aligned, else
    -EINVAL).  Returns the raw PSMASH code (0 ok, 3 FAIL_INUSE, ...)."""
    if pfn % PTRS_PER_PMD:
        return -errno.EINVAL
    return _host(kvm).psmash(pfn << PAGE_SHIFT)


@traced("kvm")
def snp_lookup_rmpentry(kvm: KvmVm, pfn: int) -> tuple[int, bool, int]:
    """``snp_lookup_rmpentry(pfn, &assigned, &level)``: returns ``(ret, assigned, level)``.

    ``assigned`` from the 4 KiB view of ``pfn``; ``level`` PG_LEVEL_2M when the
    2 MiB-aligned entry is a 2 MiB entry, else PG_LEVEL_4K.  ``ret`` 0 or -EFAULT (PFN
    beyond the RMP: RMPREAD fails).
    """
    code, ent = _host(kvm).rmpread(pfn << PAGE_SHIFT)
    if code or ent is None:
        return -errno.EFAULT, False, PG_LEVEL_4K
    code2, head = _host(kvm).rmpread((pfn & ~(PTRS_PER_PMD - 1)) << PAGE_SHIFT)
    level = PG_LEVEL_2M if (head is not None and head.assigned and head.pagesize) else PG_LEVEL_4K
    return 0, bool(ent.assigned), level


@traced("kvm")
def snp_leak_pages(kvm: KvmVm, pfn: int, npages: int) -> None:
    """``snp_leak_pages(pfn, npages)``: warn and take the pages out of circulation."""
    kvm.pr(f"Leaking PFN range {pfn:#x}-{pfn + npages:#x}")
    for p in range(pfn, pfn + npages):
        kvm.allocator.leak_page(p)
    emit_instant("kvm", "snp_leak_pages", pfn=pfn, npages=npages)


@traced("kvm")
def snp_rmptable_psmash(kvm: KvmVm, pfn: int) -> int:
    """KVM ``snp_rmptable_psmash(pfn)`` (arch/x86/kvm/svm/sev.c, v6.17): PSMASH the 2 MiB
    entry containing ``pfn`` (aligned down to 512), repeated for as long as it returns
    FAIL_INUSE (3), without bound.  Returns the final PSMASH code or -errno.

    Model-only: between attempts the host thread yields to the scheduler (another vCPU
    may leave the guest and release its VMSA), and each FAIL_INUSE is a pass for the
    livelock watcher (loop ``snp_rmptable_psmash``, no vCPU; state: RMPREAD of the
    2 MiB head, as for ``rmpupdate``); nothing changing for ``livelock_repeats`` passes
    (the page in use is never released) raises
    :class:`snpsim.trace.progress.Livelock`."""
    pfn &= ~(PTRS_PER_PMD - 1)
    host = _host(kvm)
    while True:
        ret = psmash(kvm, pfn)
        if ret != PSMASH_FAIL_INUSE:
            host.progress.progress("snp_rmptable_psmash", None)
            return ret
        host.progress.watch("snp_rmptable_psmash", None, (pfn, *_rmp_snapshot(kvm, pfn)),
                            lambda: f"PSMASH of PFN {pfn:#x} fails with FAIL_INUSE and "
                                    f"nothing releases the page in use")
        host.yield_point()


@traced("kvm")
def kvm_rmp_make_shared(kvm: KvmVm, pfn: int, level: int) -> int:
    """KVM ``kvm_rmp_make_shared(kvm, pfn, level)``: ``rmp_make_shared``; on failure the
    VM is marked bugged (KVM_BUG_ON), ``2^(9*(level-1))`` pages are leaked, -EIO."""
    if rmp_make_shared(kvm, pfn, level):
        kvm.bugged = True
        snp_leak_pages(kvm, pfn, 1 << (9 * (level - 1)))
        return -errno.EIO
    return 0


# ---- the host's RMP set-up at boot (arch/x86/virt/svm/sev.c v6.14+) ---------------------------

_GIB_SHIFT = 30


@dataclass
class RmpSegmentDesc:
    """``struct rmp_segment_desc``: one mapped RMP segment -- ``rmp_entry`` (SPA of its
    first entry; Linux holds the memremap'ed pointer), ``max_index`` (entries), ``size``
    (bytes)."""

    rmp_entry: int
    max_index: int
    size: int


@dataclass
class SnpRmpTable:
    """The file-scope state of arch/x86/virt/svm/sev.c for one host boot (model-only
    container): ``host`` the host port, ``max_pfn`` (the highest RAM PFN + 1 from the
    host's e820), ``host_sev_snp`` (``cc_platform_has(CC_ATTR_HOST_SEV_SNP)``: cleared
    when set-up fails), ``amd_iommu_snp_en`` (the IOMMU allowed SNP), the probed
    ``probed_rmp_base`` / ``probed_rmp_size``, ``rmp_cfg``, the segment geometry
    (``rmp_segment_shift``, ``rmp_segment_size``, ``rmp_segment_mask``,
    ``rst_max_index``) and ``rmp_segment_table`` (RST index -> :class:`RmpSegmentDesc`,
    None before set-up).  ``log``: the kernel lines ("SEV-SNP: " prefix, pr_fmt)."""

    host: Any
    max_pfn: int
    host_sev_snp: bool = True
    amd_iommu_snp_en: bool = True
    probed_rmp_base: int = 0
    probed_rmp_size: int = 0
    rmp_cfg: int = 0
    rmp_segment_shift: int = 0
    rmp_segment_size: int = 0
    rmp_segment_mask: int = 0
    rst_max_index: int = RST_MAX_INDEX
    rmp_segment_table: dict[int, RmpSegmentDesc] | None = None
    log: list[str] = field(default_factory=list)

    def pr(self, msg: str) -> None:
        """A kernel log line with this file's ``pr_fmt`` prefix."""
        self.log.append("SEV-SNP: " + msg)


def _set_rmp_segment_info(st: SnpRmpTable, segment_shift: int) -> None:
    st.rmp_segment_shift = segment_shift
    st.rmp_segment_size = 1 << segment_shift
    st.rmp_segment_mask = st.rmp_segment_size - 1


@traced("kvm")
def snp_probe_rmptable_info(st: SnpRmpTable) -> bool:
    """``snp_probe_rmptable_info()`` with ``probe_contiguous_rmptable_info`` and
    ``probe_segmented_rmptable_info``: read RMP_CFG (segmented when bit 0 is set),
    RMP_BASE and RMP_END and record where the table is.

    Contiguous: both MSRs must have address bits (51:13) and base <= end, else False
    ("Memory for the RMP table has not been reserved by BIOS" / "RMP configuration not
    valid: ..."); one segment of shift 52.  Segmented: RMP_BASE must be set; RMP_END
    non-zero only warns; the RMP_CFG segment shift must lie within CPUID 0x80000025
    EAX's bounds ("RMP segment size (%u) is not within advertised bounds ...");
    EBX bit 10 caps the segment-table index at EBX[9:0]; the probed size is 0.
    """
    host = st.host
    st.rmp_cfg = host.rdmsr(MSR_AMD64_RMP_CFG)
    rmp_base = host.rdmsr(MSR_AMD64_RMP_BASE)
    rmp_end = host.rdmsr(MSR_AMD64_RMP_END)
    if st.rmp_cfg & MSR_AMD64_SEG_RMP_ENABLED:
        if not rmp_base & RMP_ADDR_MASK:
            st.pr("Memory for the RMP table has not been reserved by BIOS")
            return False
        if rmp_end & RMP_ADDR_MASK:
            st.pr("WARN: Segmented RMP enabled but RMP_END MSR is non-zero")
        eax, ebx, _ecx, _edx = host.cpuid(CPUID_FN_RMP_SEGMENTS)
        shift_min, shift_max = eax & 0x3F, (eax >> 6) & 0x3F
        shift = MSR_AMD64_RMP_SEGMENT_SHIFT(st.rmp_cfg)
        if not shift_min <= shift <= shift_max:
            st.pr(f"RMP segment size ({shift}) is not within advertised bounds "
                  f"(min={shift_min}, max={shift_max})")
            return False
        if ebx & (1 << 10):
            st.rst_max_index = ebx & 0x3FF
        _set_rmp_segment_info(st, shift)
        st.probed_rmp_base, st.probed_rmp_size = rmp_base, 0
        st.pr(f"Segmented RMP base table physical range [0x{rmp_base:016x} - "
              f"0x{rmp_base + RMPTABLE_CPU_BOOKKEEPING_SZ + RST_SIZE:016x}]")
        return True
    if not rmp_base & RMP_ADDR_MASK or not rmp_end & RMP_ADDR_MASK:
        st.pr("Memory for the RMP table has not been reserved by BIOS")
        return False
    if rmp_base > rmp_end:
        st.pr(f"RMP configuration not valid: base={rmp_base:#x}, end={rmp_end:#x}")
        return False
    st.rst_max_index = 1
    _set_rmp_segment_info(st, RMPTABLE_NON_SEGMENTED_SHIFT)
    st.probed_rmp_base, st.probed_rmp_size = rmp_base, rmp_end - rmp_base + 1
    st.pr(f"RMP table physical range [0x{rmp_base:016x} - 0x{rmp_end:016x}]")
    return True


def _e820_ram_to_reserved(e820: list[tuple[int, int, int]], start: int, size: int) -> bool:
    """``e820__range_update(start, size, E820_TYPE_RAM, E820_TYPE_RESERVED)`` on the
    (SPA, size, type) list ``e820`` in place; returns whether any RAM was in the range
    (``e820__mapped_any``)."""
    end = start + size
    out: list[tuple[int, int, int]] = []
    hit = False
    for a, n, t in e820:
        b = a + n
        if t != E820_TYPE_RAM or b <= start or a >= end:
            out.append((a, n, t))
            continue
        hit = True
        if a < start:
            out.append((a, start - a, t))
        out.append((max(a, start), min(b, end) - max(a, start), E820_TYPE_RESERVED))
        if b > end:
            out.append((end, b - end, t))
    e820[:] = out
    return hit


def _snp_fixup_e820(st: SnpRmpTable, e820: list[tuple[int, int, int]], pa: int) -> None:
    """``__snp_fixup_e820_tables(pa)``: an RMP boundary not 2 MiB aligned reserves its
    whole 2 MiB when RAM is in it ("Reserving start/end of RMP table on a 2MB boundary
    [0x%016llx]"), so that no kernel allocation shares a 2 MiB page with the table."""
    if pa % PMD_SIZE == 0:
        return
    pa -= pa % PMD_SIZE
    if any(t == E820_TYPE_RAM and a < pa + PMD_SIZE and pa < a + n for a, n, t in e820):
        st.pr(f"Reserving start/end of RMP table on a 2MB boundary [0x{pa:016x}]")
        _e820_ram_to_reserved(e820, pa, PMD_SIZE)


@traced("kvm")
def snp_fixup_e820_tables(st: SnpRmpTable, e820: tuple[tuple[int, int, int], ...]
                          ) -> tuple[tuple[int, int, int], ...]:
    """``snp_fixup_e820_tables()`` (early boot, after the probe): the host's e820 with
    the 2 MiB around each unaligned boundary of the RMP made reserved -- the start and
    end of a contiguous table; the base, the end of the segment table and each
    segment's start and end for a segmented one (``fixup_e820_tables_for_segmented_rmp``,
    mapped sizes capped at the segment size).  Returns the new map; the reserved memory
    reaches SNP_INIT_EX's range list and becomes HV-Fixed."""
    out = sorted(e820)
    if st.rmp_cfg & MSR_AMD64_SEG_RMP_ENABLED:
        _snp_fixup_e820(st, out, st.probed_rmp_base)
        rst_pa = st.probed_rmp_base + RMPTABLE_CPU_BOOKKEEPING_SZ
        _snp_fixup_e820(st, out, rst_pa + RST_SIZE)
        rst = st.host.read(rst_pa, RST_SIZE)
        for i in range(st.rst_max_index):
            entry = int.from_bytes(rst[i * 8 : i * 8 + 8], "little")
            mapped = min(RST_ENTRY_MAPPED_SIZE(entry) << _GIB_SHIFT, st.rmp_segment_size)
            if not mapped:
                continue
            seg = RST_ENTRY_SEGMENT_BASE(entry)
            _snp_fixup_e820(st, out, seg)
            _snp_fixup_e820(st, out, seg + (mapped >> PAGE_SHIFT) * RMP_ENTRY_SIZE)
    else:
        _snp_fixup_e820(st, out, st.probed_rmp_base)
        _snp_fixup_e820(st, out, st.probed_rmp_base + st.probed_rmp_size)
    return tuple(out)


@traced("kvm")
def alloc_rmp_segment_table(st: SnpRmpTable) -> bool:
    """``alloc_rmp_segment_table()``: the (empty) table of segment descriptors, one page
    of pointers in Linux; here a dict by segment-table index.  Returns True."""
    st.rmp_segment_table = {}
    return True


@traced("kvm")
def alloc_rmp_segment_desc(st: SnpRmpTable, segment_pa: int, segment_size: int, pa: int) -> bool:
    """``alloc_rmp_segment_desc(segment_pa, segment_size, pa)``: record the segment whose
    entries (``segment_size`` bytes at SPA ``segment_pa``) cover SPA ``pa`` onwards.
    False when the size exceeds 16 bytes per page of a segment ("Invalid RMP size ..."),
    the segment-table index of ``pa`` is at or above ``rst_max_index`` ("Invalid RMP
    segment base address ..."), or that index already has a segment ("RMP segment
    descriptor already exists at index %llu")."""
    assert st.rmp_segment_table is not None
    size_max = (st.rmp_segment_size >> PAGE_SHIFT) * RMP_ENTRY_SIZE
    if segment_size > size_max:
        st.pr(f"Invalid RMP size {segment_size:#x} for configured segment size {size_max:#x}")
        return False
    rst_index = pa >> st.rmp_segment_shift
    if rst_index >= st.rst_max_index:
        st.pr(f"Invalid RMP segment base address {pa:#x} for configured segment size "
              f"{st.rmp_segment_size:#x}")
        return False
    if rst_index in st.rmp_segment_table:
        st.pr(f"RMP segment descriptor already exists at index {rst_index}")
        return False
    st.rmp_segment_table[rst_index] = RmpSegmentDesc(segment_pa, segment_size // RMP_ENTRY_SIZE,
                                                     segment_size)
    return True


@traced("kvm")
def setup_contiguous_rmptable(st: SnpRmpTable) -> bool:
    """``setup_contiguous_rmptable()``: the probed table must hold the bookkeeping area
    and 16 bytes for every page up to ``max_pfn`` -- or up to the table's own end, when
    the table lies above the RAM, since the RMP must cover itself -- else "Memory
    reserved for the RMP table does not cover full system RAM (expected %#llx got
    %#llx)" and False.  Then one segment (index 0) for all the entries."""
    if not st.probed_rmp_size:
        return False
    rmp_end = st.probed_rmp_base + st.probed_rmp_size - 1
    max_rmp_pfn = max(st.max_pfn, (rmp_end + PAGE_SIZE - 1) >> PAGE_SHIFT)
    calc_rmp_sz = max_rmp_pfn * RMP_ENTRY_SIZE + RMPTABLE_CPU_BOOKKEEPING_SZ
    if calc_rmp_sz > st.probed_rmp_size:
        st.pr("Memory reserved for the RMP table does not cover full system RAM "
              f"(expected {calc_rmp_sz:#x} got {st.probed_rmp_size:#x})")
        return False
    alloc_rmp_segment_table(st)
    if not alloc_rmp_segment_desc(st, st.probed_rmp_base + RMPTABLE_CPU_BOOKKEEPING_SZ,
                                  st.probed_rmp_size - RMPTABLE_CPU_BOOKKEEPING_SZ, 0):
        st.rmp_segment_table = None
        return False
    return True


@traced("kvm")
def setup_segmented_rmptable(st: SnpRmpTable) -> bool:
    """``setup_segmented_rmptable()``: read the RMP segment table (the page after the
    bookkeeping area) and record every entry with a mapped size: mapped GiB capped at the
    segment size ("RMP segment %u mapped size (%#llx) reduced to %#llx"), 16 bytes per
    mapped page at the entry's segment base, covering ``index << segment_shift``
    onwards.  Segments at or above the RAM's end (Trusted I/O MMIO) do not count towards
    RAM coverage; if the segments below it stop short of ``max_pfn``: "Segmented RMP
    does not cover full system RAM (expected %#llx got %#llx)" and False.  Then
    ``rst_max_index`` becomes the highest used index + 1."""
    if not st.probed_rmp_base:
        return False
    alloc_rmp_segment_table(st)
    rst_pa = st.probed_rmp_base + RMPTABLE_CPU_BOOKKEEPING_SZ
    rst = st.host.read(rst_pa, RST_SIZE)
    st.pr(f"Segmented RMP using {st.rmp_segment_size >> _GIB_SHIFT}GB segments")
    ram_pa_max = st.max_pfn << PAGE_SHIFT
    max_index = 0
    ram_pa_end = 0
    for i in range(st.rst_max_index):
        entry = int.from_bytes(rst[i * 8 : i * 8 + 8], "little")
        mapped = RST_ENTRY_MAPPED_SIZE(entry)
        if not mapped:
            continue
        max_index = i
        mapped <<= _GIB_SHIFT
        if mapped > st.rmp_segment_size:
            st.pr(f"RMP segment {i} mapped size ({mapped:#x}) reduced to {st.rmp_segment_size:#x}")
            mapped = st.rmp_segment_size
        segment = RST_ENTRY_SEGMENT_BASE(entry)
        rmp_size = (mapped >> PAGE_SHIFT) * RMP_ENTRY_SIZE
        pa = i << st.rmp_segment_shift
        if pa < ram_pa_max:
            ram_pa_end = pa + mapped
        if not alloc_rmp_segment_desc(st, segment, rmp_size, pa):
            st.rmp_segment_table = None
            return False
        st.pr(f"RMP segment {i} physical address [{segment:#x} - {segment + rmp_size - 1:#x}] "
              f"covering [{pa:#x} - {pa + mapped - 1:#x}]")
    if ram_pa_max > ram_pa_end:
        st.pr(f"Segmented RMP does not cover full system RAM (expected {ram_pa_max:#x} "
              f"got {ram_pa_end:#x})")
        st.rmp_segment_table = None
        return False
    st.rst_max_index = max_index + 1
    return True


@traced("kvm")
def snp_rmptable_init(st: SnpRmpTable) -> int:
    """``snp_rmptable_init()`` (v6.14+): with host SNP and the IOMMU's SNP support, set
    up the segment table (``setup_segmented_rmptable`` when RMP_CFG says so, else
    ``setup_contiguous_rmptable``); unless SYSCFG.SNP_EN is already set (a kexec'ed
    kernel), clear the bookkeeping area and every segment's entries and set SNP_EN and
    SNP_VMPL_EN.  Returns 0, or -ENOSYS when host SNP is off, the IOMMU did not enable
    SNP, or the set-up failed; a failure also clears ``host_sev_snp`` (the caller's
    ``cc_platform_clear``), so KVM offers no SNP VMs."""
    if not st.host_sev_snp or not st.amd_iommu_snp_en:
        st.host_sev_snp = False
        return -errno.ENOSYS
    ok = (setup_segmented_rmptable(st) if st.rmp_cfg & MSR_AMD64_SEG_RMP_ENABLED
          else setup_contiguous_rmptable(st))
    if not ok:
        st.host_sev_snp = False
        return -errno.ENOSYS
    return snp_prepare(st)


@traced("kvm")
def snp_prepare(st: SnpRmpTable) -> int:
    """``snp_prepare()`` (the delayed-enable series; before it ``snp_rmptable_init``
    did the same at boot): nothing when SYSCFG.SNP_EN is set; else ``clear_rmp`` (the
    bookkeeping area and all entries zeroed) and SNP_EN | SNP_VMPL_EN set on every
    CPU.  Returns 0 (the model has no offline CPUs, the series' -EOPNOTSUPP case)."""
    host = st.host
    val = host.rdmsr(MSR_AMD64_SYSCFG)
    if val & MSR_AMD64_SYSCFG_SNP_EN:
        return 0
    host.rmp_clear()
    host.wrmsr(MSR_AMD64_SYSCFG, val | MSR_AMD64_SYSCFG_SNP_EN | MSR_AMD64_SYSCFG_SNP_VMPL_EN)
    return 0


@traced("kvm")
def get_raw_rmpentry(st: SnpRmpTable, pfn: int) -> tuple[int, int]:
    """``get_raw_rmpentry(pfn)``: where the raw entry of ``pfn`` lives, for CPUs without
    RMPREAD.  Returns ``(0, spa of the 16-byte entry)``, or ``(-ENODEV, 0)`` before the
    table is set up and ``(-EFAULT, 0)`` when the PFN's segment-table index is at or
    above ``rst_max_index``, that index has no segment, or the PFN is past the
    segment's entries (an uncovered page)."""
    if st.rmp_segment_table is None:
        return -errno.ENODEV, 0
    paddr = pfn << PAGE_SHIFT
    rst_index = paddr >> st.rmp_segment_shift
    if rst_index >= st.rst_max_index:
        return -errno.EFAULT, 0
    desc = st.rmp_segment_table.get(rst_index)
    if desc is None:
        return -errno.EFAULT, 0
    segment_index = (paddr & st.rmp_segment_mask) >> PAGE_SHIFT
    if segment_index >= desc.max_index:
        return -errno.EFAULT, 0
    return 0, desc.rmp_entry + segment_index * RMP_ENTRY_SIZE


@traced("kvm")
def __snp_lookup_rmpentry(st: SnpRmpTable, pfn: int, *, rmpread: bool = False) -> tuple[int, Any, int]:
    """``__snp_lookup_rmpentry(pfn, &e, &level)``: the 4 KiB entry of ``pfn`` and the
    level from the 2 MiB-aligned entry's page size.  ``rmpread``: the CPU has RMPREAD
    (Linux then returns the instruction's code, 1 = FAIL_INPUT for an uncovered page,
    as a positive error); without it the raw table is indexed (``get_raw_rmpentry``:
    -ENODEV / -EFAULT).  -ENODEV when host SNP is off.  Returns ``(ret, entry,
    level)``; the entry is the architectural view (an RMPREAD result either way)."""
    if not st.host_sev_snp:
        return -errno.ENODEV, None, PG_LEVEL_4K
    host = st.host
    for p in (pfn, pfn & ~(PTRS_PER_PMD - 1)):
        if not rmpread:
            ret, _spa = get_raw_rmpentry(st, p)
            if ret:
                return ret, None, PG_LEVEL_4K
        code, ent = host.rmpread(p << PAGE_SHIFT)
        if code:
            return int(code), None, PG_LEVEL_4K
        if p == pfn:
            small = ent
    return 0, small, PG_LEVEL_2M if ent.pagesize else PG_LEVEL_4K
