# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""KVM's in-kernel state: ``struct kvm``, ``struct kvm_vcpu`` (with ``vcpu_svm`` and
``vcpu_sev_es_state``), memslots and the memory-attribute map.

Mirrors ``include/linux/kvm_host.h``, ``arch/x86/include/asm/kvm_host.h`` and
``arch/x86/kvm/svm/svm.h`` (Linux ~v6.17 field names).  Model choices: one struct per
concept (``KvmVcpu`` also holds what ``struct vcpu_svm`` holds); the memory-attribute
xarray is an interval map (:class:`RangeMap`), so setting 1 TiB private costs one entry.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .uapi import KvmRun

if TYPE_CHECKING:
    from .guest_memfd import GmemFile
    from .host_mm import HostMm, PageAllocator
    from .profiles import KvmProfile

__all__ = ["KernelOops", "RangeMap", "KvmMemorySlot", "KvmSevInfo", "KvmVm", "VcpuSevEsState", "KvmVcpu"]


class KernelOops(Exception):
    """Model-only: host kernel code hit a bug (a bad pointer, an out-of-bounds access).
    Like a host #PF inside KVM (``delivered_to == "host"``), the ioctl surface records it
    in ``Kvm.oopses`` and the ioctl returns -EFAULT."""

    delivered_to = "host"


class RangeMap:
    """Model-only: a sparse map GFN -> int over half-open ranges; absent = 0.

    Stands in for ``kvm->mem_attr_array`` (an xarray indexed by GFN).  Held as three
    sorted, parallel lists of maximal runs (``start``, ``end``, ``value``), never two
    adjacent runs with the same value and no run of value 0.  ``get`` is one bisection;
    ``set`` bisects to the runs the range touches and replaces only those (O(log n + runs
    changed) Python steps, whatever else is stored).  ``work`` counts the runs visited by
    ``set`` and ``runs`` (model-only: tests use it to show the cost follows the request).
    Memory: three list slots (~24 bytes plus the ints) per run, not per GFN.
    """

    __slots__ = ("_starts", "_ends", "_vals", "work")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._vals: list[int] = []
        self.work = 0

    def get(self, gfn: int) -> int:
        """The value at ``gfn`` (0 when unset)."""
        i = bisect.bisect_right(self._starts, gfn) - 1
        if i >= 0 and gfn < self._ends[i]:
            return self._vals[i]
        return 0

    def runs(self, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        """Yield (start, end, value) covering ``[start, end)`` exactly, gaps as value 0."""
        starts, ends, vals = self._starts, self._ends, self._vals
        pos = start
        i = max(bisect.bisect_right(starts, start) - 1, 0)
        n = len(starts)
        while pos < end:
            self.work += 1
            if i < n and ends[i] <= pos:
                i += 1
                continue
            if i < n and starts[i] < end:
                s, e, v = starts[i], ends[i], vals[i]
                if s > pos:
                    yield pos, s, 0
                    pos = s
                hi = min(e, end)
                yield pos, hi, v
                pos = hi
                i += 1
            else:
                yield pos, end, 0
                pos = end

    def all_equal(self, start: int, end: int, value: int) -> bool:
        """True when every GFN of ``[start, end)`` has ``value``."""
        return all(v == value for _, _, v in self.runs(start, end))

    def set(self, start: int, end: int, value: int) -> None:
        """Give ``[start, end)`` the value ``value`` (0 erases)."""
        if start >= end:
            return
        starts, ends, vals = self._starts, self._ends, self._vals
        # The runs [lo, hi) overlap or touch [start, end): they are the only ones that
        # can change.  Only the first can reach left of ``start`` and only the last right
        # of ``end`` (a run that merely touches does so too); what sticks out is kept,
        # or merged into the new run when its value is the same.
        lo = bisect.bisect_left(ends, start)
        hi = bisect.bisect_right(starts, end)
        self.work += hi - lo + 1
        new_s: list[int] = []
        new_e: list[int] = []
        new_v: list[int] = []
        left_s, right_e = start, end
        if lo < hi and starts[lo] < start:
            if vals[lo] == value:
                left_s = starts[lo]
            else:
                new_s.append(starts[lo])
                new_e.append(start)
                new_v.append(vals[lo])
        tail: tuple[int, int, int] | None = None
        if lo < hi and ends[hi - 1] > end:
            if vals[hi - 1] == value:
                right_e = ends[hi - 1]
            else:
                tail = (end, ends[hi - 1], vals[hi - 1])
        if value:
            new_s.append(left_s)
            new_e.append(right_e)
            new_v.append(value)
        if tail is not None:
            new_s.append(tail[0])
            new_e.append(tail[1])
            new_v.append(tail[2])
        starts[lo:hi] = new_s
        ends[lo:hi] = new_e
        vals[lo:hi] = new_v

    def nruns(self) -> int:
        """Number of stored runs (model-only)."""
        return len(self._starts)


@dataclass
class KvmMemorySlot:
    """``struct kvm_memory_slot``: ``id``, ``base_gfn``, ``npages`` (4 KiB pages),
    ``userspace_addr`` (HVA of the shared backing), ``flags`` (KVM_MEM_*), and for
    guest_memfd slots ``gmem_file`` with ``gmem_pgoff`` (page index of the slot's first
    GFN in the file).  ``lpage_mixed``: the 2 MiB-aligned GFN ranges of the slot (as
    ``gfn >> 9``) whose memory attributes are not all the same -- the
    ``KVM_LPAGE_MIXED_FLAG`` bit of the slot's 2 MiB ``lpage_info.disallow_lpage``
    (arch/x86/kvm/mmu/mmu.c, v6.8+), held as a set of the mixed ranges only."""

    id: int
    base_gfn: int
    npages: int
    userspace_addr: int
    flags: int
    gmem_file: GmemFile | None = None
    gmem_pgoff: int = 0
    lpage_mixed: set[int] = field(default_factory=set)

    def contains(self, gfn: int) -> bool:
        """True when ``gfn`` lies in the slot."""
        return self.base_gfn <= gfn < self.base_gfn + self.npages


@dataclass
class KvmSevInfo:
    """``struct kvm_sev_info``: ``active``/``es_active``/``snp``, ``asid``,
    ``ghcb_version`` (u16), ``policy``, firmware guest context ``gctx``,
    ``snp_finished`` (SNP_LAUNCH_FINISH done), ``guest_req_pfn``/``guest_resp_pfn`` (KVM's
    pages for SNP guest requests, ``guest_req_buf``/``guest_resp_buf``; None until the
    first request), ``snp_context`` (PFN of the SNP guest context page, a firmware page
    from SNP_LAUNCH_START until SNP_DECOMMISSION; None otherwise)."""

    active: bool = False
    es_active: bool = False
    snp: bool = False
    asid: int = 0
    ghcb_version: int = 0
    policy: int = 0
    gctx: Any = None
    snp_finished: bool = False
    guest_req_pfn: int | None = None
    guest_resp_pfn: int | None = None
    snp_context: int | None = None


@dataclass
class KvmVm:
    """``struct kvm``: one VM (named KvmVm: ``Kvm`` is the /dev/kvm syscall surface).

    ``host`` the host port; ``mm``/``allocator`` the host memory manager; ``vm_type``
    (KVM_X86_*); ``memslots`` by slot id; ``mem_attr_array`` (GFN -> attributes);
    ``hypercall_exit_enabled`` (``kvm->arch.hypercall_exit_enabled``, u64 bitmap of
    hypercall numbers); ``sev``; ``npt`` (the root of the TDP MMU, via the host port);
    ``vcpus``; ``profile`` (the KVM version profile and variant overrides);
    ``mmu_invalidate_seq`` (bumped when an invalidation ends),
    ``mmu_invalidate_in_progress`` (invalidations begun and not ended) and
    ``mmu_invalidate_range_start``/``_end`` (the GFNs they cover, ``INVALID_GPA`` before
    the first ``kvm_mmu_invalidate_range_add``; include/linux/kvm_host.h, v6.8+);
    ``bugged`` (KVM_BUG_ON fired); ``log`` (pr_* / WARN
    messages, model-only); ``pre_fault_allowed`` (``kvm->arch.pre_fault_allowed``:
    KVM_PRE_FAULT_MEMORY is accepted; for an SNP VM only after SNP_LAUNCH_FINISH);
    ``stat`` (model-only counters, e.g. ``KVM_PRE_FAULT_MEMORY`` ioctls and
    ``pre_fault_pages`` mapped by them); ``users_count`` (``kvm->users_count``: the VM
    fd, each vCPU fd and each guest_memfd hold one reference; ``kvm_destroy_vm`` runs
    when the last one goes); ``destroyed`` (model-only: ``kvm_destroy_vm`` ran).
    """

    host: Any
    mm: HostMm
    allocator: PageAllocator
    vm_type: int
    profile: KvmProfile
    npt: Any
    memslots: dict[int, KvmMemorySlot] = field(default_factory=dict)
    mem_attr_array: RangeMap = field(default_factory=RangeMap)
    hypercall_exit_enabled: int = 0
    has_private_mem: bool = False
    sev: KvmSevInfo = field(default_factory=KvmSevInfo)
    vcpus: list[KvmVcpu] = field(default_factory=list)
    mmu_invalidate_seq: int = 0
    mmu_invalidate_in_progress: int = 0
    mmu_invalidate_range_start: int = (1 << 64) - 1
    mmu_invalidate_range_end: int = (1 << 64) - 1
    bugged: bool = False
    log: list[str] = field(default_factory=list)
    pre_fault_allowed: bool = False
    stat: Counter[str] = field(default_factory=Counter)
    users_count: int = 1
    destroyed: bool = False

    def pr(self, msg: str) -> None:
        """Record a kernel log line (pr_info/pr_err/WARN; model-only)."""
        self.log.append(msg)

    def pr_once(self, msg: str) -> None:
        """``pr_warn_once``: record ``msg`` the first time this VM logs it (model: once
        per VM rather than once per host boot)."""
        if msg not in self.log:
            self.log.append(msg)


@dataclass
class VcpuSevEsState:
    """``struct vcpu_sev_es_state`` (arch/x86/kvm/svm/svm.h, ~v6.17).

    ``ghcb``: the mapped GHCB (a :class:`GhcbMap`) or None; ``valid_bitmap``: KVM's
    snapshot of the GHCB valid bitmap (u128); ``sw_scratch`` (u64); ``ghcb_sa``: the
    scratch area (a ``Scratch``) with ``ghcb_sa_len`` (bytes), ``ghcb_sa_sync``,
    ``ghcb_sa_free``; ``ghcb_registered_gpa``; ``psc_idx``/``psc_inflight`` (u16) and
    ``psc_2m``; ``ap_reset_hold_type``; ``jump_table`` (AP jump table GPA);
    ``snp_vmsa_gpa`` (the VMSA GPA an SNP AP creation named for this vCPU, INVALID_PAGE =
    all ones when none) and ``snp_ap_waiting_for_reset`` (an AP creation or destroy is
    pending for it).
    """

    ghcb: Any = None
    valid_bitmap: int = 0
    sw_scratch: int = 0
    ghcb_sa: Any = None
    ghcb_sa_len: int = 0
    ghcb_sa_sync: bool = False
    ghcb_sa_free: bool = False
    ghcb_registered_gpa: int = 0
    psc_idx: int = 0
    psc_inflight: int = 0
    psc_2m: bool = False
    ap_reset_hold_type: int = 0
    jump_table: int = 0
    snp_vmsa_gpa: int = (1 << 64) - 1
    snp_ap_waiting_for_reset: bool = False


@dataclass
class KvmVcpu:
    """``struct kvm_vcpu`` with ``struct vcpu_svm``.

    ``vcpu_id``; ``kvm``; ``run`` (the mmap'd ``struct kvm_run``); ``vmcb`` (from the host
    port); ``regs`` (``vcpu->arch.regs``: rax, rbx, rcx, rdx, rsi, ... u64); ``cpl``;
    ``xcr0``; ``complete_userspace_io`` (``vcpu->arch.complete_userspace_io``);
    ``exit_code``/``exit_info_1``/``exit_info_2``: the VMCB control fields as KVM sees them
    (for SEV-ES, copied from the GHCB by ``sev_es_sync_from_ghcb``; u64); ``mp_state``;
    ``sev_es``; ``exits`` (model-only count); ``blocked`` (model-only: the vCPU sleeps
    in ``vcpu_block``); ``msrs`` (MSR index -> value the guest wrote, for the MSRs
    :func:`snpsim.kvm.x86.kvm_get_msr_common` knows).
    """

    vcpu_id: int
    kvm: KvmVm
    vmcb: Any
    run: KvmRun = field(default_factory=KvmRun)
    regs: dict[str, int] = field(default_factory=dict)
    cpl: int = 0
    xcr0: int = 1
    complete_userspace_io: Callable[[KvmVcpu], int] | None = None
    exit_code: int = 0
    exit_info_1: int = 0
    exit_info_2: int = 0
    mp_state: str = "runnable"
    sev_es: VcpuSevEsState = field(default_factory=VcpuSevEsState)
    exits: int = 0
    blocked: bool = False
    msrs: dict[int, int] = field(default_factory=dict)
