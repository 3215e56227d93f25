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

    Stands in for ``kvm->mem_attr_array`` (an xarray indexed by GFN).
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._vals: list[int] = []

    def get(self, gfn: int) -> int:
        """The value at ``gfn`` (0 when unset)."""
        i = bisect.bisect_right(self._starts, gfn) - 1
        if i >= 0 and gfn < self._ends[i]:
            return self._vals[i]
        return 0

    def runs(self, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        """Yield (start, end, value) covering ``[start, end)`` exactly, gaps as value 0."""
        pos = start
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while pos < end:
            if i < len(self._starts) and self._starts[i] < end and self._ends[i] > pos:
                s, e, v = self._starts[i], self._ends[i], self._vals[i]
                if s > pos:
                    yield pos, s, 0
                    pos = s
                hi = min(e, end)
                yield pos, hi, v
                pos = hi
                i += 1
            elif i < len(self._starts) and self._ends[i] <= pos:
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
        out: list[tuple[int, int, int]] = []
        for s, e, v in zip(self._starts, self._ends, self._vals):
            if e <= start or s >= end:
                out.append((s, e, v))
                continue
            if s < start:
                out.append((s, start, v))
            if e > end:
                out.append((end, e, v))
        if value:
            out.append((start, end, value))
        out.sort()
        merged: list[tuple[int, int, int]] = []
        for s, e, v in out:
            if merged and merged[-1][1] == s and merged[-1][2] == v:
                merged[-1] = (merged[-1][0], e, v)
            else:
                merged.append((s, e, v))
        self._starts = [m[0] for m in merged]
        self._ends = [m[1] for m in merged]
        self._vals = [m[2] for m in merged]


@dataclass
class KvmMemorySlot:
    """``struct kvm_memory_slot``: ``id``, ``base_gfn``, ``npages`` (4 KiB pages),
    ``userspace_addr`` (HVA of the shared backing), ``flags`` (KVM_MEM_*), and for
    guest_memfd slots ``gmem_file`` with ``gmem_pgoff`` (page index of the slot's first
    GFN in the file)."""

    id: int
    base_gfn: int
    npages: int
    userspace_addr: int
    flags: int
    gmem_file: GmemFile | None = None
    gmem_pgoff: int = 0

    def contains(self, gfn: int) -> bool:
        """True when ``gfn`` lies in the slot."""
        return self.base_gfn <= gfn < self.base_gfn + self.npages


@dataclass
class KvmSevInfo:
    """``struct kvm_sev_info``: ``active``/``es_active``/``snp``, ``asid``,
    ``ghcb_version`` (u16), ``policy``, firmware guest context ``gctx``,
    ``snp_finished`` (SNP_LAUNCH_FINISH done), ``guest_req_pfn``/``guest_resp_pfn`` (KVM's
    pages for SNP guest requests, ``guest_req_buf``/``guest_resp_buf``; None until the
    first request)."""

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


@dataclass
class KvmVm:
    """``struct kvm``: one VM (named KvmVm: ``Kvm`` is the /dev/kvm syscall surface).

    ``host`` the host port; ``mm``/``allocator`` the host memory manager; ``vm_type``
    (KVM_X86_*); ``memslots`` by slot id; ``mem_attr_array`` (GFN -> attributes);
    ``hypercall_exit_enabled`` (``kvm->arch.hypercall_exit_enabled``, u64 bitmap of
    hypercall numbers); ``sev``; ``npt`` (the root of the TDP MMU, via the host port);
    ``vcpus``; ``profile`` (the KVM version profile and variant overrides);
    ``mmu_invalidate_seq``; ``bugged`` (KVM_BUG_ON fired); ``log`` (pr_* / WARN
    messages, model-only).
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
    bugged: bool = False
    log: list[str] = field(default_factory=list)

    def pr(self, msg: str) -> None:
        """Record a kernel log line (pr_info/pr_err/WARN; model-only)."""
        self.log.append(msg)


@dataclass
class VcpuSevEsState:
    """``struct vcpu_sev_es_state`` (arch/x86/kvm/svm/svm.h, ~v6.17).

    ``ghcb``: the mapped GHCB (a :class:`GhcbMap`) or None; ``valid_bitmap``: KVM's
    snapshot of the GHCB valid bitmap (u128); ``sw_scratch`` (u64); ``ghcb_sa``: the
    scratch area (a ``Scratch``) with ``ghcb_sa_len`` (bytes), ``ghcb_sa_sync``,
    ``ghcb_sa_free``; ``ghcb_registered_gpa``; ``psc_idx``/``psc_inflight`` (u16) and
    ``psc_2m``; ``ap_reset_hold_type``; ``jump_table`` (AP jump table GPA).
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


@dataclass
class KvmVcpu:
    """``struct kvm_vcpu`` with ``struct vcpu_svm``.

    ``vcpu_id``; ``kvm``; ``run`` (the mmap'd ``struct kvm_run``); ``vmcb`` (from the host
    port); ``regs`` (``vcpu->arch.regs``: rax, rbx, rcx, rdx, rsi, ... u64); ``cpl``;
    ``xcr0``; ``complete_userspace_io`` (``vcpu->arch.complete_userspace_io``);
    ``exit_code``/``exit_info_1``/``exit_info_2``: the VMCB control fields as KVM sees them
    (for SEV-ES, copied from the GHCB by ``sev_es_sync_from_ghcb``; u64); ``mp_state``;
    ``sev_es``; ``exits`` (model-only count); ``blocked`` (model-only: the vCPU sleeps
    in ``vcpu_block``).
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
