# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Address translation and the RMP access checks.

* :class:`Npt`: the nested page table of one VM, GFN -> (PFN, level, writable), filled
  and zapped by KVM through the host port.  Model choice: it is a Python table owned by
  the platform rather than page-table pages in host memory; KVM reaches it only through
  ``HostPort.npt_*``.
* :func:`guest_walk`: the 4-level x86-64 guest page walk from CR3 over page-table pages
  that live in guest memory.  Every table read is an effective C=1 (private) access, as
  the APM requires for an SNP-active guest, so it goes through the NPT and the RMP checks
  too.  The C-bit of a leaf is the bit at the platform's C-bit position (CPUID
  0x8000001F EBX[5:0]); it is not part of the address.  The walk does not set the
  Accessed and Dirty bits (model choice).
* :func:`check_rmp_guest_access`: the RMP checks of APM vol 2 15.36.10, table 15-39, in
  priority order, raising #NPF (RMP bit 31, ENC bit 34 for C=1, GUEST_FINAL/GUEST_PAGE)
  or #VC 0x404 with CR2 = the GVA.  Host reads and C=0 guest reads are not checked: they
  return whatever DRAM holds (ciphertext for private pages).  The references give this
  medium confidence (hardware-and-ghcb.md 1.4 and 10.7); it is the model's choice.

Sources: AMD APM vol 2 15.36.10 (as restated in hardware-and-ghcb.md 1.4), vol 2 5.3
(long-mode page walk), Linux ``arch/x86/include/asm/pgtable_types.h`` (PTE bits),
``arch/x86/include/asm/kvm_host.h`` (PFERR_GUEST_* bits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from snpsim.spec.checks import check_enabled
from snpsim.spec.exit_codes import SVM_EXIT_PAGE_NOT_VALIDATED
from snpsim.spec.faults import (
    PFERR,
    PFERR_FETCH_MASK,
    PFERR_GUEST_ENC_MASK,
    PFERR_GUEST_FINAL_MASK,
    PFERR_GUEST_PAGE_MASK,
    PFERR_GUEST_RMP_MASK,
    PFERR_GUEST_VMPL_MASK,
    PFERR_PRESENT_MASK,
    PFERR_USER_MASK,
    PFERR_WRITE_MASK,
)
from snpsim.spec.pgtable_types import (
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_USER,
    PG_LEVEL_1G,
    PG_LEVEL_2M,
    PG_LEVEL_4K,
)
from snpsim.spec.rmp import RmpPerm
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE

from .faults import GuestPageFault, NestedPageFault, VmmCommunicationException
from .rmp import Rmp

__all__ = ["Npt", "NptEntry", "Translation", "guest_walk", "check_rmp_guest_access"]


@dataclass(frozen=True, slots=True)
class NptEntry:
    """One NPT leaf: ``pfn`` of its first 4 KiB page, ``level`` (PG_LEVEL_4K/2M), writable."""

    pfn: int
    level: int = PG_LEVEL_4K
    writable: bool = True


#: GFNs per 2 MiB chunk of the table (one PMD's worth of 4 KiB leaves).
_CHUNK = 512
#: Chunks of looked-up leaves kept as :class:`NptEntry` objects (the lookup cache bound).
_CACHE_CHUNKS = 64
#: Largest slot value an ``int32`` chunk holds; a larger one widens the chunk to ``int64``.
_I32_MAX = 0x7FFF_FFFF


class Npt:
    """The nested page table of one VM (GFN -> leaf), 4 KiB and 2 MiB leaves.

    Storage (cost follows what is mapped): 4 KiB leaves live in one array of 512 slots
    per 2 MiB chunk of GFNs that has any (``pfn << 1 | writable``, -1 = not present),
    ``int32`` (4 bytes per slot) while every PFN is below 2**30, widened to ``int64``
    otherwise, and dropped when its last leaf goes; a 2 MiB leaf is one int per chunk.  ``unmap`` visits only the chunks of the requested range that exist.  A
    bounded cache (at most ``_CACHE_CHUNKS`` chunks) keeps the :class:`NptEntry` objects
    ``lookup`` returns; any change to a chunk drops that chunk's cache.  ``work`` counts
    chunks visited by ``unmap`` (model-only, for tests of the cost).
    """

    __slots__ = ("_4k", "_2m", "_cache", "work")

    def __init__(self) -> None:
        self._4k: dict[int, np.ndarray] = {}
        self._2m: dict[int, int] = {}
        self._cache: dict[int, dict[int, NptEntry]] = {}
        self.work = 0

    def map(self, gfn: int, pfn: int, level: int = PG_LEVEL_4K, writable: bool = True) -> None:
        """Install a leaf for ``gfn`` (2 MiB leaves need 512-aligned gfn and pfn)."""
        h = gfn >> 9
        self._cache.pop(h, None)
        if level == PG_LEVEL_2M:
            assert gfn % _CHUNK == 0 and pfn % _CHUNK == 0, "2M NPT leaf must be 2M aligned"
            self._4k.pop(h, None)
            self._2m[h] = pfn << 1 | int(writable)
            return
        assert level == PG_LEVEL_4K
        v = pfn << 1 | int(writable)
        arr = self._4k.get(h)
        if arr is None:
            big = self._2m.pop(h, None)
            if big is not None:  # splitting a 2M leaf: keep the rest mapped at 4K
                full = ((big >> 1) + np.arange(_CHUNK, dtype=np.int64)) << 1 | (big & 1)
                arr = full if int(full[-1]) > _I32_MAX else full.astype(np.int32)
            else:
                arr = np.full(_CHUNK, -1, dtype=np.int32)
            self._4k[h] = arr
        if v > _I32_MAX and arr.dtype != np.int64:
            arr = self._4k[h] = arr.astype(np.int64)
        arr[gfn & (_CHUNK - 1)] = v

    def unmap(self, gfn_start: int, gfn_end: int) -> int:
        """Zap every leaf that overlaps ``[gfn_start, gfn_end)``; returns leaves zapped."""
        if gfn_start >= gfn_end:
            return 0
        h0, h1 = gfn_start >> 9, ((gfn_end - 1) >> 9) + 1
        if h1 - h0 <= len(self._4k) + len(self._2m):
            chunks: list[int] | range = range(h0, h1)
        else:
            chunks = sorted(h for h in (*self._4k, *self._2m) if h0 <= h < h1)
        n = 0
        for h in chunks:
            self.work += 1
            if self._2m.pop(h, None) is not None:
                self._cache.pop(h, None)
                n += 1
                continue
            arr = self._4k.get(h)
            if arr is None:
                continue
            self._cache.pop(h, None)
            base = h << 9
            lo = max(gfn_start - base, 0)
            hi = min(gfn_end - base, _CHUNK)
            part = arr[lo:hi]
            n += int(np.count_nonzero(part >= 0))
            part[:] = -1
            if not (arr >= 0).any():
                del self._4k[h]
        return n

    def lookup(self, gfn: int) -> NptEntry | None:
        """The leaf mapping ``gfn`` with ``pfn`` adjusted to that page, or None."""
        h = gfn >> 9
        cached = self._cache.get(h)
        if cached is not None:
            e = cached.get(gfn)
            if e is not None:
                return e
        arr = self._4k.get(h)
        if arr is not None:
            v = arr.item(gfn & (_CHUNK - 1))
            if v < 0:
                return None
            e = NptEntry(v >> 1, PG_LEVEL_4K, bool(v & 1))
        else:
            big = self._2m.get(h)
            if big is None:
                return None
            e = NptEntry((big >> 1) + (gfn & (_CHUNK - 1)), PG_LEVEL_2M, bool(big & 1))
        if cached is None:
            if len(self._cache) >= _CACHE_CHUNKS:
                self._cache.clear()
            cached = self._cache[h] = {}
        cached[gfn] = e
        return e

    def mapped_gfns(self) -> int:
        """Number of 4 KiB GFNs mapped (model-only)."""
        return sum(int(np.count_nonzero(a >= 0)) for a in self._4k.values()) + _CHUNK * len(self._2m)

    def bytes_used(self) -> int:
        """Bytes held by the table's leaves (model-only: the arrays' buffers, 4 or 8 bytes
        per slot of a chunk with 4 KiB leaves, plus 8 per 2 MiB leaf; dict overhead and
        the bounded lookup cache not counted)."""
        return sum(a.nbytes for a in self._4k.values()) + 8 * len(self._2m)


@dataclass(frozen=True, slots=True)
class Translation:
    """Result of a guest page walk for one GVA: ``gpa`` (bytes, with the page offset),
    ``c_bit`` of the leaf, ``writable``/``user``/``nx`` effective permissions and the
    leaf ``level`` (PG_LEVEL_4K/2M/1G)."""

    gpa: int
    c_bit: bool
    writable: bool
    user: bool
    nx: bool
    level: int


# (shift, level, PG_LEVEL of a leaf at that level, whether the level can hold a leaf)
_LEVELS: tuple[tuple[int, int, int, bool], ...] = (
    (39, 4, 0, False),  # a PML4 entry is never a leaf
    (30, 3, PG_LEVEL_1G, True),
    (21, 2, PG_LEVEL_2M, True),
    (12, 1, PG_LEVEL_4K, True),
)

# The hot paths below compute with plain ints (an IntFlag operation costs ~1 us) and
# convert to the spec's IntFlag types only where a fault is raised, so every fault
# carries the same typed error code as before.
_PRESENT = int(PFERR_PRESENT_MASK)
_WRITE = int(PFERR_WRITE_MASK)
_USER = int(PFERR_USER_MASK)
_FETCH = int(PFERR_FETCH_MASK)
_GUEST_PAGE = int(PFERR_GUEST_PAGE_MASK)
_GUEST_FINAL = int(PFERR_GUEST_FINAL_MASK)
_GUEST_ENC = int(PFERR_GUEST_ENC_MASK)
_GUEST_RMP = int(PFERR_GUEST_RMP_MASK)
_GUEST_VMPL = int(PFERR_GUEST_VMPL_MASK)
_PERM_READ = int(RmpPerm.READ)
_PERM_WRITE = int(RmpPerm.WRITE)
_PERM_EXEC_USER = int(RmpPerm.EXEC_USER)
_PERM_EXEC_SUPER = int(RmpPerm.EXEC_SUPER)


def guest_walk(
    read_table_u64: Callable[[int], int], cr3: int, gva: int, cbit: int, *, write: bool, fetch: bool
) -> Translation:
    """Walk the guest page tables for ``gva``.

    ``read_table_u64(gpa)`` reads one 8-byte entry as a private (C=1) access; it may raise
    #NPF (with GUEST_PAGE set) or #VC.  ``cr3`` is the GPA of the PML4 (C-bit stripped).
    Raises :class:`GuestPageFault` (#PF, error code P/W/I bits) when an entry is not
    present or the access is not allowed.
    """
    addr_mask = ((1 << cbit) - 1) & ~(PAGE_SIZE - 1)
    table = cr3 & addr_mask
    writable = True
    user = True
    nx = False
    for shift, level, lvl, can_be_leaf in _LEVELS:
        idx = (gva >> shift) & 511
        pte = read_table_u64(table + idx * 8)
        if not pte & _PAGE_PRESENT:
            raise GuestPageFault(gva, _pf_bits(write, fetch), f"level {level} entry not present")
        writable = writable and bool(pte & _PAGE_RW)
        user = user and bool(pte & _PAGE_USER)
        nx = nx or bool(pte & _PAGE_NX)
        if can_be_leaf and (level == 1 or pte & _PAGE_PSE):
            base = pte & addr_mask & ~((1 << shift) - 1)
            c_bit = bool((pte >> cbit) & 1)
            if write and not writable:
                raise GuestPageFault(gva, _pf_bits(write, fetch) | PFERR_PRESENT_MASK,
                                     "write to read-only page")
            if fetch and nx:
                raise GuestPageFault(gva, _pf_bits(write, fetch) | PFERR_PRESENT_MASK,
                                     "fetch from NX page")
            return Translation(base | (gva & ((1 << shift) - 1)), c_bit, writable, user, nx, lvl)
        table = pte & addr_mask
    raise AssertionError("unreachable")


def _pf_bits(write: bool, fetch: bool) -> int:
    """The W/I bits of a guest #PF error code, typed as before (``PFERR`` when set)."""
    return (PFERR_WRITE_MASK if write else 0) | (PFERR_FETCH_MASK if fetch else 0)


def check_rmp_guest_access(
    rmp: Rmp,
    *,
    pfn: int,
    gpa: int,
    gva: int,
    asid: int,
    npt_level: int,
    c_bit: bool,
    write: bool,
    fetch: bool = False,
    table_walk: bool = False,
    vmpl: int = 0,
    user: bool = False,
    snp_active: bool = True,
) -> None:
    """The RMP checks of a guest access, APM table 15-39, in priority order.

    ``pfn``: the SPA frame the NPT gave; ``gpa``: the guest physical address (bytes);
    ``gva``: for CR2 on #VC.  A private access (C=1, a fetch, or a page-table access) must
    pass RMP-Covered, Guest-Owned, Reverse-Map, Mutable and Page-Size (else #NPF with the
    RMP bit), then Validated (else #VC 0x404, CR2 = ``gva``), then VMPL (else #NPF with RMP
    and VMPL bits).  A C=0 data write must pass Hypervisor-Owned (else #NPF).  A C=0 read
    is not checked.  ``user``: the access is at CPL 3 (sets PFERR_USER; a fetch then needs
    Execute-User instead of Execute-Supervisor).  ``snp_active`` False: the guest is not
    SNP-active, and only data writes and page-table accesses are checked, against
    Hypervisor-Owned (else #NPF with the RMP bit).  Hypervisor-Owned under a 2 MiB NPT
    leaf requires all 512 pages of the 2 MiB range to be unassigned.
    Raises :class:`NestedPageFault` or :class:`VmmCommunicationException`.
    Source: APM vol 2 15.36.10, table 15-39 (hardware-and-ghcb.md 1.4).
    """
    private = c_bit or fetch or table_walk
    if not snp_active:
        if not (write or table_walk):
            return
        private = False  # only the Hypervisor-Owned check below, ENC only for C=1
        enc = _GUEST_ENC if c_bit else 0
    elif not private:
        if not write:
            return
        enc = 0
    else:
        enc = _GUEST_ENC
    base = (
        _PRESENT
        | (_WRITE if write else 0)
        | (_USER if user else 0)
        | (_FETCH if fetch else 0)
        | (_GUEST_PAGE if table_walk else _GUEST_FINAL)
        | enc
    )
    if not private:
        if npt_level == PG_LEVEL_2M:
            owned = rmp.any_assigned_2m(pfn)
        else:
            owned = rmp.lookup(pfn).assigned
        if owned and check_enabled("rmp:hypervisor-owned"):
            raise NestedPageFault(gpa, PFERR(base | _GUEST_RMP),
                                  "Hypervisor-Owned check (shared write to assigned page)")
        return
    rmp_npf = base | _GUEST_RMP
    if not rmp.covered(pfn):
        raise NestedPageFault(gpa, PFERR(rmp_npf), "RMP-Covered check")
    ent = rmp.lookup(pfn)
    if (not ent.assigned or ent.asid != asid) and check_enabled("rmp:guest-owned"):
        raise NestedPageFault(gpa, PFERR(rmp_npf), "Guest-Owned check")
    if ent.gpa != gpa & ~(PAGE_SIZE - 1) and check_enabled("rmp:reverse-map"):
        raise NestedPageFault(gpa, PFERR(rmp_npf), f"Reverse-Map check (RMP GPA {ent.gpa:#x})")
    if ent.immutable:
        raise NestedPageFault(gpa, PFERR(rmp_npf), "Mutable check")
    want = 1 if npt_level == PG_LEVEL_2M or npt_level == PG_LEVEL_1G else 0
    if ent.pagesize != want and check_enabled("rmp:page-size"):
        raise NestedPageFault(gpa, PFERR(rmp_npf), "Page-Size check")
    if not ent.validated and check_enabled("rmp:validated"):
        raise VmmCommunicationException(SVM_EXIT_PAGE_NOT_VALIDATED, gva, "Validated check")
    if fetch:
        need = _PERM_EXEC_USER if user else _PERM_EXEC_SUPER
    else:
        need = _PERM_READ | (_PERM_WRITE if write else 0)
    if (ent.perms[vmpl] & need) != need:
        raise NestedPageFault(gpa, PFERR(rmp_npf | _GUEST_VMPL), "VMPL check")


def gfn_of(gpa: int) -> int:
    """GPA (bytes) -> GFN."""
    return gpa >> PAGE_SHIFT
