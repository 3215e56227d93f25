# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""guest_memfd: the file that holds a VM's private memory.

Mirrors ``virt/kvm/guest_memfd.c`` (commit 01f492e1, ~v7.0; kvm-qemu-host.md 6.2) with
the SNP hooks of ``arch/x86/kvm/svm/sev.c`` (``sev_gmem_prepare``, ``sev_gmem_invalidate``,
7.4-7.5).  Folios are order 0 (one 4 KiB page each), as in current kernels.

The file is a sparse map page index -> folio, held per 2 MiB chunk of indices: an
array of 512 slots for order-0 folios (4 bytes per slot while PFNs fit, only for chunks
that have any), or one int for a 2 MiB folio (:class:`GmemFile`).  Binding a memslot records
``(slot, start index, end index)``; ``index(gfn) = gfn - base_gfn + pgoff``.  A hole
punch visits only the chunks of its range that exist and frees each folio once: a
2 MiB folio inside the range is one ``kvm_gmem_free_folio`` of order 9, so one
``sev_gmem_invalidate`` over its 512 PFNs (one 2M ``rmp_make_shared`` when the RMP entry
is 2M), and its block goes back to the allocator whole.  Version difference (kvm-qemu-host.md 6.2 / 10): v7.0 zeroes a folio on first
use and calls the prepare hook on every ``kvm_gmem_get_pfn`` (the hook is idempotent);
v6.11-v6.17 prepared only once ("uptodate == prepared").  The profile knob
``gmem_prepare_every_get`` selects it.

Units: offsets/lengths in bytes, indices in pages, GFN/PFN in 4 KiB frames.  Errors are
negative errno.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from snpsim.spec.falloc import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
from snpsim.spec.kvm_uapi import (
    GUEST_MEMFD_FLAG_INIT_SHARED,
    KVM_MEM_GUEST_MEMFD,
    KVM_MEMORY_ATTRIBUTE_PRIVATE,
)
from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K
from snpsim.spec.units import HPAGE_PMD_ORDER, PAGE_SHIFT, PAGE_SIZE, PTRS_PER_PMD
from snpsim.trace.record import emit_instant, traced

from .kvm_host import KvmMemorySlot, KvmVm
from .virt_svm_sev import (
    rmp_make_private,
    rmp_make_shared,
    snp_lookup_rmpentry,
    snp_rmptable_psmash,
)

__all__ = [
    "GmemFile",
    "kvm_gmem_create",
    "kvm_gmem_bind",
    "kvm_gmem_get_pfn",
    "kvm_gmem_fallocate",
    "kvm_gmem_punch_hole",
    "kvm_gmem_free_folio",
    "kvm_gmem_populate",
    "kvm_gmem_release",
    "kvm_gmem_preassign",
    "GMEM_PREOWNERS",
    "sev_gmem_prepare",
    "sev_gmem_invalidate",
]


#: Page indices per chunk of a file's folio map (one 2 MiB folio's worth).
_CHUNK = PTRS_PER_PMD
_UPTODATE = 1
#: Largest slot value an ``int32`` chunk holds; a larger one widens the chunk to ``int64``.
_I32_MAX = 0x7FFF_FFFF


@dataclass
class GmemFile:
    """One guest_memfd (``struct gmem_file`` + its inode).

    ``kvm`` the owning VM; ``size`` bytes; ``flags``; ``bindings`` (slot, start, end)
    page-index ranges; ``closed`` after close().  Folios (model-only layout): ``small``
    chunk -> 512 slots of ``pfn << 1 | uptodate`` for order-0 folios (-1: none; ``int32``,
    4 bytes a slot, while PFNs are below 2**30, else ``int64``);
    ``huge`` chunk -> ``head_pfn << 1 | uptodate`` for a 2 MiB folio (profile knob
    ``gmem_max_order``).  ``work``: chunks and folios visited by hole punches
    (model-only, for tests of the cost).  ``preowned``: page index -> (owner, ASID,
    GPA) for pages a scenario said start out owned by someone else when the file
    gets them (:func:`kvm_gmem_preassign`; only the indices named, consumed on use).
    """

    kvm: KvmVm
    size: int
    flags: int
    small: dict[int, np.ndarray] = field(default_factory=dict)
    huge: dict[int, int] = field(default_factory=dict)
    bindings: list[tuple[KvmMemorySlot, int, int]] = field(default_factory=list)
    closed: bool = False
    work: int = 0
    preowned: dict[int, tuple[str, int, int]] = field(default_factory=dict)

    def binding_at(self, index: int) -> KvmMemorySlot | None:
        """The slot bound at page ``index``, or None."""
        for slot, start, end in self.bindings:
            if start <= index < end:
                return slot
        return None

    def folio_at(self, index: int) -> tuple[int, int, bool] | None:
        """``(pfn of the page at index, folio order, folio up to date)`` or None when the
        file has no folio there (``filemap_get_folio``; model-only helper)."""
        h = index >> 9
        arr = self.small.get(h)
        if arr is not None:
            v = arr.item(index & (_CHUNK - 1))
            return None if v < 0 else (v >> 1, 0, bool(v & _UPTODATE))
        v = self.huge.get(h)
        if v is None:
            return None
        return (v >> 1) + (index & (_CHUNK - 1)), HPAGE_PMD_ORDER, bool(v & _UPTODATE)

    def set_small(self, index: int, pfn: int, uptodate: bool = False) -> None:
        """Record an order-0 folio at ``index`` (model-only)."""
        h = index >> 9
        v = pfn << 1 | int(uptodate)
        arr = self.small.get(h)
        if arr is None:
            arr = self.small[h] = np.full(_CHUNK, -1, dtype=np.int32)
        if v > _I32_MAX and arr.dtype != np.int64:
            arr = self.small[h] = arr.astype(np.int64)
        arr[index & (_CHUNK - 1)] = v

    def mark_uptodate(self, index: int) -> None:
        """``folio_mark_uptodate`` of the folio holding ``index`` (model-only)."""
        h = index >> 9
        arr = self.small.get(h)
        if arr is not None:
            arr[index & (_CHUNK - 1)] |= _UPTODATE
        elif h in self.huge:
            self.huge[h] |= _UPTODATE

    def drop(self, index: int) -> None:
        """Forget the folio at ``index`` (model-only; the caller frees its pages)."""
        h = index >> 9
        if self.huge.pop(h, None) is not None:
            return
        arr = self.small.get(h)
        if arr is not None:
            arr[index & (_CHUNK - 1)] = -1
            if not (arr >= 0).any():
                del self.small[h]

    def split_huge(self, h: int) -> None:
        """Split the 2 MiB folio of chunk ``h`` into 512 order-0 folios with the same PFNs
        and up-to-date state (``split_folio``; model-only)."""
        v = self.huge.pop(h)
        full = ((v >> 1) + np.arange(_CHUNK, dtype=np.int64)) << 1 | (v & _UPTODATE)
        self.small[h] = full if int(full[-1]) > _I32_MAX else full.astype(np.int32)

    def populated(self) -> int:
        """Number of page indices that have a folio (model-only)."""
        return sum(int(np.count_nonzero(a >= 0)) for a in self.small.values()) + _CHUNK * len(self.huge)

    def bytes_used(self) -> int:
        """Bytes of the folio map (model-only: 4 or 8 per slot of a chunk of order-0
        folios, 8 per 2 MiB folio)."""
        return sum(a.nbytes for a in self.small.values()) + 8 * len(self.huge)


_SUPPORTED_FLAGS = 0  # SNP VMs support neither MMAP nor INIT_SHARED


@traced("kvm")
def kvm_gmem_create(kvm: KvmVm, size: int, flags: int) -> GmemFile | int:
    """``kvm_gmem_create(kvm, args)``: a new guest_memfd of ``size`` bytes.

    Returns the file, or -EINVAL (unsupported ``flags``; ``size`` as a signed ``loff_t``
    not positive, i.e. 0 or at least 2**63, or not 4 KiB aligned).  Source:
    virt/kvm/guest_memfd.c ``kvm_gmem_create`` (v6.18).
    """
    if flags & ~_SUPPORTED_FLAGS:
        return -errno.EINVAL
    if size >= 1 << 63:
        size -= 1 << 64  # loff_t
    if size <= 0 or size & (PAGE_SIZE - 1):
        return -errno.EINVAL
    return GmemFile(kvm, size, flags)


@traced("kvm")
def kvm_gmem_bind(kvm: KvmVm, slot: KvmMemorySlot, file: object, offset: int) -> int:
    """``kvm_gmem_bind(kvm, slot, fd, offset)`` (virt/kvm/guest_memfd.c, v6.18): bind
    ``slot`` to ``file`` (what the fd names in the file table; None for a closed fd) at
    byte ``offset`` (u64 from the uAPI, a signed ``loff_t`` here).  Returns 0, -EBADF
    (``fget`` fails: no such fd), -EINVAL (not a guest_memfd, another VM's, offset
    negative, unaligned or ``offset + size`` past the file's size, or overlapping an
    existing binding)."""
    if file is None:
        return -errno.EBADF
    if not isinstance(file, GmemFile) or file.kvm is not kvm or file.closed:
        return -errno.EINVAL
    if offset >= 1 << 63:
        offset -= 1 << 64  # loff_t
    size = slot.npages << PAGE_SHIFT
    if offset < 0 or offset & (PAGE_SIZE - 1) or offset + size > file.size:
        return -errno.EINVAL
    start = offset >> PAGE_SHIFT
    end = start + slot.npages
    for _s, bs, be in file.bindings:
        if bs < end and start < be:
            return -errno.EINVAL
    file.bindings.append((slot, start, end))
    slot.gmem_file = file
    slot.gmem_pgoff = start
    return 0


def kvm_gmem_unbind(slot: KvmMemorySlot) -> None:
    """``kvm_gmem_unbind(slot)``: drop the slot's binding (memslot deletion)."""
    f = slot.gmem_file
    if f is None:
        return
    f.bindings = [b for b in f.bindings if b[0] is not slot]
    slot.gmem_file = None


@traced("kvm")
def sev_gmem_prepare(kvm: KvmVm, pfn: int, gfn: int, max_order: int) -> int:
    """``sev_gmem_prepare(kvm, pfn, gfn, max_order)`` (arch/x86/kvm/svm/sev.c ~v6.17,
    kvm-qemu-host.md 7.4): make the folio private in the RMP for this guest.

    Not SNP -> 0; RMP lookup error -> -ENOENT; already assigned -> 0 (idempotent; also
    when the entry belongs to someone else -- the firmware, another ASID --, which the
    real function does not distinguish); 2 MiB only if ``max_order >= 9`` and all 512
    PFNs are unassigned (never with order-0 folios); ``rmp_make_private(pfn, gfn << 12,
    level, asid, immutable=False)`` failure (e.g. RMPUPDATE FAIL_PERMISSION on an
    HV-Fixed page) -> -EINVAL.  Log lines as the v6.11+ source's pr_err_ratelimited
    ("SEV: Failed to look up RMP entry: GFN %llx PFN %llx error %d", "SEV: Failed to
    update RMP entry: GFN %llx PFN %llx level %d error %d").
    """
    if not kvm.sev.snp:
        return 0
    rc, assigned, _level = snp_lookup_rmpentry(kvm, pfn)
    if rc:
        kvm.pr(f"SEV: Failed to look up RMP entry: GFN {gfn:x} PFN {pfn:x} error {rc}")
        return -errno.ENOENT
    if assigned:
        return 0
    level = PG_LEVEL_4K
    if max_order >= 9:
        base = pfn & ~(PTRS_PER_PMD - 1)
        if all(not snp_lookup_rmpentry(kvm, p)[1] for p in range(base, base + PTRS_PER_PMD)):
            level = PG_LEVEL_2M
            pfn, gfn = base, gfn & ~(PTRS_PER_PMD - 1)
    rc = rmp_make_private(kvm, pfn, gfn << PAGE_SHIFT, level, kvm.sev.asid, False)
    if rc:
        kvm.pr(f"SEV: Failed to update RMP entry: GFN {gfn:x} PFN {pfn:x} level {level} error {rc}")
        return -errno.EINVAL
    return 0


@traced("kvm")
def sev_gmem_invalidate(kvm: KvmVm, start: int, end: int) -> None:
    """``sev_gmem_invalidate(start, end)`` (kvm-qemu-host.md 7.5): return every assigned
    PFN of ``[start, end)`` to the hypervisor (PSMASH first when a 2 MiB entry is only
    partly freed); failures only WARN_ONCE ("SEV: Failed to update RMP entry for PFN
    0x%llx error %d", v6.11+), and the caller frees the page anyway: no leak, so a page
    whose entry could not be changed (e.g. Immutable) goes back to the allocator still
    owned by someone else."""
    pfn = start
    while pfn < end:
        rc, assigned, level = snp_lookup_rmpentry(kvm, pfn)
        if rc or not assigned:
            pfn += 1
            continue
        use_2m = pfn % PTRS_PER_PMD == 0 and end >= pfn + PTRS_PER_PMD and level > PG_LEVEL_4K
        if not use_2m and level > PG_LEVEL_4K:
            rc = snp_rmptable_psmash(kvm, pfn)
            if rc:
                kvm.pr(f"WARN_ONCE: SEV: Failed to PSMASH RMP entry for PFN {pfn:#x} error {rc}")
        rc = rmp_make_shared(kvm, pfn, PG_LEVEL_2M if use_2m else PG_LEVEL_4K)
        if rc:
            kvm.pr(f"WARN_ONCE: SEV: Failed to update RMP entry for PFN {pfn:#x} error {rc}")
        pfn += PTRS_PER_PMD if use_2m else 1


def _kvm_arch_gmem_prepare(kvm: KvmVm, gfn: int, pfn: int, max_order: int) -> int:
    return kvm.profile.call("sev_gmem_prepare", sev_gmem_prepare)(kvm, pfn, gfn, max_order)


@traced("kvm")
def kvm_gmem_get_pfn(kvm: KvmVm, slot: KvmMemorySlot, gfn: int) -> tuple[int, int, int]:
    """``kvm_gmem_get_pfn(kvm, slot, gfn, &pfn, &page, &max_order)``: the PFN backing
    ``gfn`` in the slot's guest_memfd, allocated (zeroed) on first use and prepared.

    Returns ``(ret, pfn, max_order)``: ret 0, -EFAULT (file no longer bound), -EIO (the
    binding at that index is another slot), or the prepare hook's error; ``max_order``
    is the folio's order (0, or 9 for a 2 MiB folio).
    """
    file = slot.gmem_file
    if file is None or file.closed:
        return -errno.EFAULT, 0, 0
    index = gfn - slot.base_gfn + slot.gmem_pgoff
    if file.binding_at(index) is not slot:
        return -errno.EIO, 0, 0
    # __kvm_gmem_get_pfn -> kvm_gmem_get_folio
    folio = file.folio_at(index)
    new_head = -1
    if folio is None:
        new_head = _kvm_gmem_alloc_folio(kvm, file, index)
        folio = file.folio_at(index)
        assert folio is not None
    pfn, order, uptodate = folio
    every = kvm.profile.knob("gmem_prepare_every_get")
    if not uptodate:
        kvm.host.zero_page(pfn << PAGE_SHIFT)  # kvm_gmem_mark_prepared / folio_zero_range
        if every:
            file.mark_uptodate(index)
    if every or not uptodate:
        r = _kvm_arch_gmem_prepare(kvm, gfn, pfn, order)
        if r:
            if new_head >= 0:
                file.drop(index)
                kvm.allocator.free_pages(new_head, order)
            return r, 0, 0
        file.mark_uptodate(index)
    return 0, pfn, order


def _kvm_gmem_alloc_folio(kvm: KvmVm, file: GmemFile, index: int) -> int:
    """``kvm_gmem_get_folio`` allocating a new folio for ``index``: order 0, or (profile
    knob ``gmem_max_order`` >= 9) a 2 MiB folio of 512 contiguous, aligned PFNs covering
    the aligned block of indices when the whole block is inside the file and has no
    folio yet.  Returns the new folio's first PFN."""
    h = index >> 9
    if (kvm.profile.knob("gmem_max_order") >= HPAGE_PMD_ORDER
            and (h + 1) << (9 + PAGE_SHIFT) <= file.size
            and h not in file.small and h not in file.huge):
        base = kvm.allocator.alloc_pages(HPAGE_PMD_ORDER)
        file.huge[h] = base << 1
        if file.preowned:
            for i in [i for i in file.preowned if i >> 9 == h]:
                _gmem_apply_preowned(kvm, file, i, base + (i & (_CHUNK - 1)))
        return base
    pfn = kvm.allocator.alloc_page()
    file.set_small(index, pfn)
    if file.preowned:
        _gmem_apply_preowned(kvm, file, index, pfn)
    return pfn


#: Owners :func:`kvm_gmem_preassign` accepts (RMP page states, hw/rmp.py).
GMEM_PREOWNERS = ("firmware", "guest", "hv-fixed")


def _gmem_apply_preowned(kvm: KvmVm, file: GmemFile, index: int, pfn: int) -> None:
    """The page ``pfn`` just handed to ``file`` at ``index`` is in the RMP state a
    scenario asked for (model-only; consumes the request)."""
    req = file.preowned.pop(index, None)
    if req is None:
        return
    owner, asid, gpa = req
    kvm.host.rmp_set_page_state(pfn << PAGE_SHIFT, owner, asid=asid, gpa=gpa,
                                validated=owner == "guest")
    emit_instant("kvm", "pre-owned page", pfn=pfn, index=index, owner=owner, asid=asid)


def kvm_gmem_preassign(file: GmemFile, offset: int, owner: str, asid: int = 0, gpa: int = 0) -> int:
    """Model-only: the page the file will hold at byte ``offset`` starts out owned by
    someone else in the RMP when the allocator hands it over -- ``owner`` one of
    :data:`GMEM_PREOWNERS`: ``"firmware"`` (Firmware page state), ``"guest"`` (assigned
    to ``asid``, another guest's, at ``gpa``, validated), ``"hv-fixed"`` (HV-Fixed).
    Models a host whose page allocator returns a page still owned elsewhere (e.g. one
    ``sev_gmem_invalidate`` failed to make shared and freed anyway).  If the file
    already has a folio there, that page takes the state at once.

    Returns 0, or -EINVAL (offset unaligned or beyond the file, unknown owner, a
    ``"guest"`` owner with ASID 0 or this VM's own ASID).
    """
    if offset < 0 or offset & (PAGE_SIZE - 1) or offset >= file.size or owner not in GMEM_PREOWNERS:
        return -errno.EINVAL
    if owner == "guest" and (asid <= 0 or asid == file.kvm.sev.asid):
        return -errno.EINVAL
    index = offset >> PAGE_SHIFT
    file.preowned[index] = (owner, asid if owner == "guest" else 0, gpa)
    folio = file.folio_at(index)
    if folio is not None:
        _gmem_apply_preowned(file.kvm, file, index, folio[0])
    return 0


@traced("kvm")
def kvm_gmem_free_folio(kvm: KvmVm, pfn: int, order: int = 0) -> None:
    """``kvm_gmem_free_folio(folio)`` (virt/kvm/guest_memfd.c, v6.11+): the folio's last
    reference is gone: ``kvm_arch_gmem_invalidate(pfn, pfn + (1 << order))`` ->
    ``sev_gmem_invalidate`` over the whole folio, then its pages go back to the allocator
    (``order`` 0 or 9)."""
    kvm.profile.call("sev_gmem_invalidate", sev_gmem_invalidate)(kvm, pfn, pfn + (1 << order))
    kvm.allocator.free_pages(pfn, order)


@traced("kvm")
def kvm_gmem_punch_hole(file: GmemFile, offset: int, length: int) -> int:
    """``kvm_gmem_punch_hole(inode, offset, len)``: for each VM bound to the range, zap
    the private NPT mappings of the affected GFNs (``kvm_gmem_invalidate_begin``), then
    truncate the folios (each freed folio -> ``kvm_gmem_free_folio``).  Returns 0 or
    -EINVAL (``offset``/``length`` not 4 KiB aligned).

    Cost: the chunks of the range that hold folios, and the folios in it; never what the
    file holds elsewhere.  A 2 MiB folio wholly inside the range is freed as one folio.
    Model choice for a 2 MiB folio only partly inside (no current kernel has 2 MiB
    guest_memfd folios): it is split (``truncate_inode_partial_folio`` ->
    ``split_folio``) and the pages inside are freed as order-0 folios, so the first
    ``sev_gmem_invalidate`` PSMASHes its 2M RMP entry.
    """
    from .mmu import kvm_mmu_invalidate_begin, kvm_mmu_invalidate_end, kvm_mmu_unmap_gfn_range

    if offset & (PAGE_SIZE - 1) or length & (PAGE_SIZE - 1):
        return -errno.EINVAL
    start = offset >> PAGE_SHIFT
    end = (offset + length) >> PAGE_SHIFT
    kvm = file.kvm
    # kvm_gmem_invalidate_begin: an invalidation only when a binding overlaps the range
    bound = False
    for slot, bs, be in list(file.bindings):
        s, e = max(start, bs), min(end, be)
        if s < e:
            if not bound:
                bound = True
                kvm_mmu_invalidate_begin(kvm)
            gfn_start = slot.base_gfn + s - slot.gmem_pgoff
            kvm_mmu_unmap_gfn_range(kvm, gfn_start, gfn_start + (e - s),
                                    "shared" if file.flags & GUEST_MEMFD_FLAG_INIT_SHARED else "private")
    # truncate_inode_pages_range, in index order over the chunks that exist
    if start < end:
        h0, h1 = start >> 9, ((end - 1) >> 9) + 1
        chunks: list[int] | range
        if h1 - h0 <= len(file.small) + len(file.huge):
            chunks = range(h0, h1)
        else:
            chunks = sorted(h for h in (*file.small, *file.huge) if h0 <= h < h1)
        for h in chunks:
            file.work += 1
            base = h << 9
            lo, hi = max(start - base, 0), min(end - base, _CHUNK)
            head = file.huge.get(h)
            if head is not None:
                if lo == 0 and hi == _CHUNK:
                    del file.huge[h]
                    file.work += 1
                    kvm_gmem_free_folio(kvm, head >> 1, HPAGE_PMD_ORDER)
                    continue
                file.split_huge(h)
            arr = file.small.get(h)
            if arr is None:
                continue
            part = arr[lo:hi]
            present = part[part >= 0].tolist()
            part[:] = -1
            if not (arr >= 0).any():
                del file.small[h]
            for v in present:
                file.work += 1
                kvm_gmem_free_folio(kvm, v >> 1)
    if bound:  # kvm_gmem_invalidate_end
        kvm_mmu_invalidate_end(kvm)
    return 0


@traced("kvm")
def kvm_gmem_fallocate(file: GmemFile, mode: int, offset: int, length: int) -> int:
    """``kvm_gmem_fallocate(file, mode, offset, len)`` (virt/kvm/guest_memfd.c, v6.18 /
    commit 01f492e1), after ``vfs_fallocate`` checked the generic arguments
    (:func:`snpsim.kvm.kvm_main.vfs_fallocate`): KEEP_SIZE is required (-EOPNOTSUPP,
    so mode 0 too), the only other bit allowed is PUNCH_HOLE (-EOPNOTSUPP), ``offset``
    and ``len`` must be 4 KiB aligned (-EINVAL).  PUNCH_HOLE frees the range; KEEP_SIZE
    alone preallocates (``kvm_gmem_allocate``: the range must end inside the file, else
    -EINVAL; folios are allocated, not prepared).  Returns 0 or -errno.
    """
    if not mode & FALLOC_FL_KEEP_SIZE:
        return -errno.EOPNOTSUPP
    if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE):
        return -errno.EOPNOTSUPP
    if offset & (PAGE_SIZE - 1) or length & (PAGE_SIZE - 1):
        return -errno.EINVAL
    if mode & FALLOC_FL_PUNCH_HOLE:
        return kvm_gmem_punch_hole(file, offset, length)
    if offset + length > file.size:
        return -errno.EINVAL
    for index in range(offset >> PAGE_SHIFT, (offset + length) >> PAGE_SHIFT):
        if file.folio_at(index) is None:
            pfn = file.kvm.allocator.alloc_page()
            file.set_small(index, pfn)
            if file.preowned:
                _gmem_apply_preowned(file.kvm, file, index, pfn)
    return 0


PostPopulate = Callable[[KvmVm, int, int, int], int]


@traced("kvm")
def kvm_gmem_populate(kvm: KvmVm, gfn: int, src_hva: int, npages: int,
                      post_populate: PostPopulate) -> int:
    """``kvm_gmem_populate(kvm, gfn, src, npages, post_populate, opaque)`` (v7.0, commit
    01f492e1): ``npages`` <= 0 or ``src_hva`` not 4 KiB aligned -> -EINVAL (a WARN in
    the kernel); the memslot of ``gfn`` must have a guest_memfd (-EINVAL) still open
    (-EFAULT); ``npages`` is cut at the end of that memslot.  Then per page: the source
    page must be mapped (``get_user_pages_fast``: -EFAULT), get the folio (no prepare),
    require the PRIVATE attribute (else -EINVAL), call ``post_populate(kvm, gfn, pfn,
    src_hva)`` and mark the folio up to date.  Returns the number of pages done, or the
    error if none were done."""
    from .kvm_main import gfn_to_memslot

    if npages <= 0 or src_hva & (PAGE_SIZE - 1):
        return -errno.EINVAL
    first = gfn_to_memslot(kvm, gfn)
    if first is None or not first.flags & KVM_MEM_GUEST_MEMFD:
        return -errno.EINVAL
    if first.gmem_file is None:
        return -errno.EFAULT
    npages = min(npages, first.npages - (gfn - first.base_gfn))
    done = 0
    ret = 0
    for i in range(npages):
        g = gfn + i
        if src_hva and kvm.mm.get_user_page(src_hva + i * PAGE_SIZE, write=False) < 0:
            ret = -errno.EFAULT
            break
        slot = first
        if slot.gmem_file is None:
            ret = -errno.EFAULT
            break
        file = slot.gmem_file
        index = g - slot.base_gfn + slot.gmem_pgoff
        if not kvm.mem_attr_array.get(g) & KVM_MEMORY_ATTRIBUTE_PRIVATE:
            ret = -errno.EINVAL
            break
        folio = file.folio_at(index)
        if folio is not None and folio[2]:
            ret = -errno.EEXIST
            break
        if folio is None:
            pfn = kvm.allocator.alloc_page()
            file.set_small(index, pfn)
            if file.preowned:
                _gmem_apply_preowned(kvm, file, index, pfn)
        else:
            pfn = folio[0]
        ret = post_populate(kvm, g, pfn, src_hva + i * PAGE_SIZE if src_hva else 0)
        if ret:
            break
        file.mark_uptodate(index)
        done += 1
    else:
        return done
    return done if done else ret


@traced("kvm")
def kvm_gmem_release(file: GmemFile) -> int:
    """``kvm_gmem_release(inode, file)`` (virt/kvm/guest_memfd.c, v6.8+) and the eviction
    of the file's inode that follows the last ``close()``, in that order:

    1. for every memslot bound to the file: zap its private NPT mappings inside an MMU
       invalidation (``kvm_gmem_invalidate_begin``/``end`` over the whole file), then
       unbind it (the slot stays, with no file: a later private fault on it fails,
       ``kvm_gmem_get_pfn`` -EFAULT);
    2. drop the file's reference on the VM (``kvm_put_kvm``): the caller does this, as
       it may destroy the VM (``kvm_destroy_vm``) before step 3;
    3. (``truncate_inode_pages_final``) every folio is freed through
       ``kvm_gmem_free_folio`` -> ``sev_gmem_invalidate``: returned to the hypervisor in
       the RMP, then to the allocator -- :func:`kvm_gmem_truncate_all`.

    This function does step 1.  Returns 0.
    """
    from .mmu import kvm_mmu_invalidate_begin, kvm_mmu_invalidate_end, kvm_mmu_unmap_gfn_range

    kvm = file.kvm
    if file.bindings:
        kvm_mmu_invalidate_begin(kvm)
        for slot, bs, be in list(file.bindings):
            gfn_start = slot.base_gfn + bs - slot.gmem_pgoff
            kvm_mmu_unmap_gfn_range(kvm, gfn_start, gfn_start + (be - bs), "private")
        kvm_mmu_invalidate_end(kvm)
    for slot, _bs, _be in list(file.bindings):
        slot.gmem_file = None
    file.bindings.clear()
    file.closed = True
    return 0


@traced("kvm")
def kvm_gmem_truncate_all(file: GmemFile) -> int:
    """``truncate_inode_pages_final`` of a guest_memfd inode (model: the eviction after
    the last reference is gone): every folio goes through ``kvm_gmem_free_folio``, in
    index order.  Returns the number of folios freed."""
    n = 0
    for h in sorted((*file.small, *file.huge)):
        head = file.huge.pop(h, None)
        if head is not None:
            kvm_gmem_free_folio(file.kvm, head >> 1, HPAGE_PMD_ORDER)
            n += 1
            continue
        arr = file.small.pop(h)
        for v in arr[arr >= 0].tolist():
            kvm_gmem_free_folio(file.kvm, v >> 1)
            n += 1
    file.preowned.clear()
    return n
