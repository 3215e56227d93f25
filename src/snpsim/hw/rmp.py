# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The Reverse Map Table, the host RMP instructions RMPUPDATE, PSMASH and RMPREAD, and the
RMP side of the guest instructions PVALIDATE and RMPADJUST.

One entry per 4 KiB of system physical memory (APM vol 2 15.36.4).  Entry fields
(APM table 15-34): Assigned, Page_Size, Immutable, GPA, ASID, VMSA, Validated and one
VMPL permission mask per VMPL (4 VMPLs).  A 2 MiB entry is the entry at the 2 MiB-aligned
PFN (the "head") with Page_Size = 1; it governs all 512 pages of its range, whose own
entries are not consulted (Linux ``__snp_lookup_rmpentry`` reads the head the same way).

Storage is sparse: entries live in numpy chunks of 512 (one per 2 MiB of SPA space),
allocated on first write; an untouched chunk reads as all-zero entries (hypervisor-owned),
which is the architectural initial state.  One entry costs 16 bytes, the size of a
hardware RMP entry (u64 GFN, u16 ASID, u8 flags, a spare byte, 4 x u8 VMPL masks), so a
densely touched 2 MiB costs 8192 bytes plus one numpy array header and one dict slot
(about 16.2 bytes per page; ``benchmarks/bench_rmp.py`` measures it).  A chunk is
allocated whole, so the worst case is one touched page per 2 MiB (8 KiB).  Reads
(``lookup``, ``rmpread``, the access checks, :meth:`Rmp.private_read_run`) never
allocate.

ASIDs: an entry holds ASIDs up to ``RMP_ASID_MAX`` (0xFFFF); RMPUPDATE of a larger ASID
returns FAIL_INPUT (model choice: real parts have at most about a thousand SNP ASIDs and
a narrower field, Linux ``struct rmpentry_raw`` ``asid:10``; what hardware answers for an
ASID beyond its maximum is unconfirmed).

Coverage is a list of PFN extents: ``[0, coverage)`` for a contiguous RMP, one extent
per mapped segment for a segmented one, with holes between (:class:`RmpConfig` says
which, from RMP_BASE / RMP_END or RMP_CFG and the RMP segment table).  Pages outside
every extent are permanently hypervisor-owned (APM 15.36.4): ``lookup`` reads them as
unassigned, so host writes and C=0 guest writes to them pass the Hypervisor-Owned check;
a private guest access fails the RMP-Covered check (#NPF); RMPUPDATE, PSMASH and RMPREAD
return FAIL_INPUT (model choice: the references give no code for an uncovered SPA), and
PVALIDATE/RMPADJUST take #NPF with the RMP bit.

Preset extents (:meth:`Rmp.set_preset_extents`) give whole ranges a starting state other
than zero -- the Firmware state SNP_INIT_EX gives the RMP's own pages, the HV-Fixed state
of its range list -- read where no chunk exists and copied into a chunk when it is first
written, so a 1 TiB host's 4 GiB RMP costs no storage.

Owners (APM table 15-35): hypervisor (Assigned=0), guest (Assigned=1, ASID != 0),
firmware / AMD-SP (Assigned=1, ASID=0, Immutable=1); see :attr:`RmpEntry.owner`.  The
SNP firmware ABI (56860, "Page States") adds HV-Fixed: Assigned=0 with Immutable=1, a
hypervisor page the firmware pinned (Linux ``snp_hv_fixed_pages_state_update``), which
RMPUPDATE refuses like any Immutable entry.  :meth:`Rmp.set_page_state` puts a page in
one of these states before a run (model-only: the state another party left it in).

Model choices (see docs/model-choices.md), where the references are unconfirmed:

* every successful RMPUPDATE clears Validated and VMSA and resets the permission masks
  (VMPL0 all -- ``RMP_PERM_ALL``, SSS included --, others none, when assigned; all zero
  when not) -- hardware-and-ghcb.md 3.1 recommends this;
* a structural overlap returns FAIL_OVERLAP (4): a 4 KiB RMPUPDATE of any page under an
  assigned 2 MiB entry, its head included (the 2 MiB entry must be PSMASHed first, or
  replaced by a 2 MiB RMPUPDATE), and a 2 MiB RMPUPDATE over a range in which a non-head
  4 KiB entry is assigned (hardware-and-ghcb.md 1.3).  Linux's ``rmpupdate()`` retries
  FAIL_OVERLAP without bound, so a host that skips the PSMASH spins: the model's KVM
  ends that as a named livelock (``kvm/virt_svm_sev.py``);
* RMPUPDATE does not check that the new (ASID, GPA) is unused elsewhere: a hypervisor
  can assign two SPAs at one GPA.  The Reverse-Map check and the Validated bit (a newly
  assigned page is never validated) are what protect the guest; KVM's guest_memfd keeps
  one PFN per GFN (tests/hw/test_rmp.py::test_rmpupdate_does_not_prevent_gpa_aliases);
* PVALIDATE and RMPADJUST: see :meth:`Rmp.pvalidate` and :meth:`Rmp.rmpadjust`.

Sources: AMD APM vol 2 15.36 (as restated in hardware-and-ghcb.md 1 and 3), MSDOC
``__rmpupdate``/``__psmash``/``__rmpread`` return codes, Linux ``arch/x86/virt/svm/sev.c``
(v6.16) for how the host uses them.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

import numpy as np

from snpsim.spec.exit_codes import SVM_EXIT_PAGE_NOT_VALIDATED
from snpsim.spec.faults import PFERR_GUEST_RMP_MASK, PFERR_GUEST_SIZEM_MASK
from snpsim.spec.rmp import (
    PSMASH_FAIL_BADADDR,
    PSMASH_FAIL_INPUT,
    PSMASH_FAIL_INUSE,
    PSMASH_FAIL_PERMISSION,
    PVALIDATE_FAIL_SIZEMISMATCH,
    RMP_ADDR_MASK,
    RMP_ENTRY_SIZE,
    RMP_PERM_ALL,
    RMP_PERM_RESERVED_MASK,
    RMPADJUST_FAIL_INPUT,
    RMPADJUST_FAIL_INUSE,
    RMPADJUST_FAIL_PERMISSION,
    RMPADJUST_FAIL_SIZEMISMATCH,
    RMPADJUST_PERM_SHIFT,
    RMPADJUST_TARGET_VMPL_MASK,
    RMPADJUST_VMSA_PAGE_BIT,
    RMPREAD_FAIL_INPUT,
    RMPREAD_FAIL_PERMISSION,
    RMPTABLE_CPU_BOOKKEEPING_SZ,
    RMPUPDATE_FAIL_INPUT,
    RMPUPDATE_FAIL_INUSE,
    RMPUPDATE_FAIL_OVERLAP,
    RMPUPDATE_FAIL_PERMISSION,
    RST_ENTRY_MAPPED_SIZE,
    RST_ENTRY_SEGMENT_BASE,
    RST_MAX_INDEX,
    RST_SIZE,
    RmpPerm,
    RmpReadOut,
    RmpState,
)
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE, PTRS_PER_PMD

from .faults import NestedPageFault, VmmCommunicationException

__all__ = ["RmpEntry", "Rmp", "RmpConfig", "RMP_DTYPE", "RMP_LOOKUP_DTYPE", "RMP_ASID_MAX",
           "VMPL_COUNT"]

VMPL_COUNT = 4

# flags byte
_ASSIGNED = 1 << 0
_PAGESIZE = 1 << 1
_IMMUTABLE = 1 << 2
_VMSA = 1 << 3
_VALIDATED = 1 << 4

#: One entry, 16 bytes as on hardware: GFN, ASID (16 bits, see ``RMP_ASID_MAX``), flags,
#: one spare byte, the four VMPL permission masks.
RMP_DTYPE = np.dtype({"names": ["gfn", "asid", "flags", "perms"],
                      "formats": ["<u8", "<u2", "u1", ("u1", (VMPL_COUNT,))],
                      "offsets": [0, 8, 10, 12], "itemsize": 16})
#: What :meth:`Rmp.lookup_range` returns per page: the fields of :class:`RmpEntry`.
RMP_LOOKUP_DTYPE = np.dtype([("assigned", "?"), ("pagesize", "u1"), ("immutable", "?"),
                             ("gpa", "<u8"), ("asid", "<u4"), ("vmsa", "?"), ("validated", "?"),
                             ("perms", "u1", (VMPL_COUNT,))])
#: Largest ASID an entry holds (model-only width; hardware's field is narrower still).
RMP_ASID_MAX = 0xFFFF
# One RMP_DTYPE record as bytes (16 bytes): read with struct straight from the
# chunk's buffer, ~30x faster than indexing the structured array field by field.
_REC = struct.Struct("<QHBx4B")
_REC_SIZE = _REC.size
_FLAGS_OFF = 10  # offset of ``flags`` in a record
_U8 = struct.Struct("B")
assert RMP_DTYPE.itemsize == _REC_SIZE and RMP_DTYPE.fields is not None
assert RMP_DTYPE.fields["flags"][1] == _FLAGS_OFF
#: Model-only bound on the lookup cache (chunks of 512 entries whose lookups are kept).
_LOOKUP_CACHE_CHUNKS = 64

_PERM_READ = int(RmpPerm.READ)
#: Runs of at most this many 4 KiB entries are checked entry by entry (model-only).
_SCALAR_RUN = 16

#: What RMPUPDATE gives VMPL0 ("full permissions", APM 15.36.7): every defined bit.
_PERM_ALL = int(RMP_PERM_ALL)


@dataclass(frozen=True, slots=True)
class RmpEntry:
    """The architectural contents of one RMP entry (a read-only snapshot).

    ``gpa`` in bytes (4 KiB aligned), ``asid`` u32, ``pagesize`` 0 = 4 KiB / 1 = 2 MiB,
    ``perms`` the four VMPL permission masks (``RmpPerm`` bits).
    """

    assigned: bool = False
    pagesize: int = 0
    immutable: bool = False
    gpa: int = 0
    asid: int = 0
    vmsa: bool = False
    validated: bool = False
    perms: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def owner(self) -> str:
        """``hypervisor``, ``hv-fixed``, ``guest`` or ``firmware`` (APM table 15-35; the
        HV-Fixed page state of the SNP firmware ABI 56860: Assigned=0, Immutable=1)."""
        if not self.assigned:
            return "hv-fixed" if self.immutable else "hypervisor"
        if self.asid == 0 and self.immutable:
            return "firmware"
        return "guest"


_UNASSIGNED = RmpEntry()
_FIRMWARE_ENTRY = RmpEntry(assigned=True, immutable=True)
_HV_FIXED_ENTRY = RmpEntry(immutable=True)


def _preset_entry(flags: int) -> RmpEntry:
    """The entry a never-written page with preset ``flags`` reads as."""
    if not flags:
        return _UNASSIGNED
    return _FIRMWARE_ENTRY if flags & _ASSIGNED else _HV_FIXED_ENTRY


class Rmp:
    """The RMP of one platform.

    ``coverage``: bytes of SPA space the table covers (pages above are hypervisor-owned).
    ``in_use``: PFNs currently in use as the VMSA of a running vCPU (FAIL_INUSE);
    maintained by the world switch.

    Model-only speed-up: :meth:`lookup` results are kept per chunk (at most
    ``_LOOKUP_CACHE_CHUNKS`` chunks) and dropped by every write to the entry, or to the
    whole chunk when its head entry (which can govern all 512 pages) or several entries
    change.  Entries are frozen, so a cached one is the same value a fresh read gives.
    """

    def __init__(self, coverage: int) -> None:
        self._chunks: dict[int, np.ndarray] = {}
        self._lookups: dict[int, dict[int, RmpEntry]] = {}
        #: Model-only: extents (start PFN, end PFN, flags byte) whose entries start in a
        #: state other than all-zero (SNP_INIT's Firmware and HV-Fixed pages), read where
        #: no chunk was written yet and copied into a chunk when it is first written.
        self._preset: list[tuple[int, int, int]] = []
        self._preset_starts: list[int] = []
        self.coverage = coverage
        self.in_use: set[int] = set()
        self.counters: dict[str, int] = {}

    # -- coverage: one extent from 0 (contiguous RMP) or one per segment -----------------
    @property
    def coverage(self) -> int:
        """Bytes of SPA space up to the end of the highest covered extent (the whole
        coverage for a contiguous RMP; a segmented RMP may have holes below it, see
        :meth:`coverage_extents`)."""
        return self._covered_pfns << PAGE_SHIFT

    @coverage.setter
    def coverage(self, value: int) -> None:
        self.set_coverage_extents([(0, value >> PAGE_SHIFT)] if value > 0 else [])

    def set_coverage_extents(self, extents: list[tuple[int, int]]) -> None:
        """Cover exactly the PFN ranges ``[start, end)`` of ``extents`` (what RMP_BASE /
        RMP_END or the RMP segment table say, :class:`RmpConfig`); pages outside read
        as hypervisor-owned.  Adjacent extents are merged.  Raises ValueError for an
        empty or overlapping extent."""
        merged: list[tuple[int, int]] = []
        for start, end in sorted(extents):
            if not 0 <= start < end:
                raise ValueError(f"bad RMP coverage extent [{start:#x}, {end:#x})")
            if merged and start < merged[-1][1]:
                raise ValueError("overlapping RMP coverage extents")
            if merged and start == merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        self._extents = merged
        self._extent_starts = [a for a, _b in merged]
        self._covered_pfns = merged[-1][1] if merged else 0
        #: True when some PFN below ``_covered_pfns`` is not covered (a segmented RMP).
        self._gaps = not (len(merged) <= 1 and (not merged or merged[0][0] == 0))
        self._lookups.clear()

    def coverage_extents(self) -> list[tuple[int, int]]:
        """The covered PFN ranges ``[start, end)``, sorted."""
        return list(self._extents)

    def _extent_of(self, pfn: int) -> tuple[int, int] | None:
        """The covered extent holding ``pfn``, or None."""
        i = bisect.bisect_right(self._extent_starts, pfn) - 1
        if i >= 0 and pfn < self._extents[i][1]:
            return self._extents[i]
        return None

    def covered_run(self, pfn: int, n: int) -> tuple[bool, int]:
        """Model-only: whether ``pfn`` is covered, and for how many pages from ``pfn``
        (at most ``n``, at least 1) that answer stays the same."""
        if not self._gaps:
            if 0 <= pfn < self._covered_pfns:
                return True, min(n, self._covered_pfns - pfn)
            return False, n
        ext = self._extent_of(pfn)
        if ext is not None:
            return True, min(n, ext[1] - pfn)
        i = bisect.bisect_right(self._extent_starts, pfn)
        nxt = self._extent_starts[i] if i < len(self._extent_starts) else pfn + n
        return False, min(n, nxt - pfn)

    # -- the state pages start in (SNP_INIT) ------------------------------------------
    def set_preset_extents(self, extents: list[tuple[int, int, str]]) -> None:
        """Model-only: the pages of each ``(start PFN, end PFN, owner)`` extent start in
        the RMP state ``owner`` -- ``"firmware"`` (Assigned, ASID 0, Immutable) or
        ``"hv-fixed"`` (Immutable only) -- without storing anything per page: what
        SNP_INIT leaves for the RMP's own pages and the HV-Fixed range list
        (:meth:`snpsim.hw.firmware.SnpFirmware.snp_init_ex`).  Replaces earlier
        extents; pages already written keep their entries.  Raises ValueError for an
        unknown owner or overlapping extents."""
        flags = {"firmware": _ASSIGNED | _IMMUTABLE, "hv-fixed": _IMMUTABLE}
        out: list[tuple[int, int, int]] = []
        for start, end, owner in sorted(extents):
            if owner not in flags or not 0 <= start < end:
                raise ValueError(f"bad preset extent ({start:#x}, {end:#x}, {owner!r})")
            if out and start < out[-1][1]:
                raise ValueError("overlapping preset extents")
            out.append((start, end, flags[owner]))
        self._preset = out
        self._preset_starts = [a for a, _b, _f in out]
        self._lookups.clear()

    def preset_extents(self) -> list[tuple[int, int, str]]:
        """The ``(start PFN, end PFN, owner)`` extents of :meth:`set_preset_extents`."""
        names = {_ASSIGNED | _IMMUTABLE: "firmware", _IMMUTABLE: "hv-fixed"}
        return [(a, b, names[f]) for a, b, f in self._preset]

    def _preset_flags(self, pfn: int) -> int:
        """Flags byte a never-written entry at ``pfn`` has (0 outside every preset extent)."""
        if not self._preset:
            return 0
        i = bisect.bisect_right(self._preset_starts, pfn) - 1
        if i >= 0 and pfn < self._preset[i][1]:
            return self._preset[i][2]
        return 0

    def _preset_in_chunk(self, base: int) -> list[tuple[int, int, int]]:
        """Preset extents clipped to chunk ``base`` (indices ``[lo, hi)`` and flags)."""
        lo_pfn, hi_pfn = base << 9, (base + 1) << 9
        i = max(0, bisect.bisect_right(self._preset_starts, lo_pfn) - 1)
        out = []
        while i < len(self._preset) and self._preset[i][0] < hi_pfn:
            a, b, f = self._preset[i]
            if b > lo_pfn:
                out.append((max(a, lo_pfn) - lo_pfn, min(b, hi_pfn) - lo_pfn, f))
            i += 1
        return out

    def reset(self) -> None:
        """Model-only: every entry back to zero and no preset extents (the RMP memory
        cleared, as ``snp_rmptable_init`` / SNP_INIT with INIT_RMP do)."""
        self._chunks.clear()
        self._lookups.clear()
        self._preset = []
        self._preset_starts = []

    # -- storage -------------------------------------------------------------------
    def _chunk(self, pfn: int, create: bool) -> np.ndarray | None:
        c = self._chunks.get(pfn >> 9)
        if c is None and create:
            c = np.zeros(PTRS_PER_PMD, dtype=RMP_DTYPE)
            for lo, hi, f in self._preset_in_chunk(pfn >> 9):
                c["flags"][lo:hi] = f
            self._chunks[pfn >> 9] = c
        return c

    @staticmethod
    def _decode(c: np.ndarray, i: int, gpa_add: int = 0) -> RmpEntry:
        """The entry at index ``i`` of chunk ``c`` (``gpa_add`` bytes added to its GPA)."""
        gfn, asid, f, p0, p1, p2, p3 = _REC.unpack_from(c, i * _REC_SIZE)  # type: ignore[arg-type]
        return RmpEntry(
            bool(f & _ASSIGNED), 1 if f & _PAGESIZE else 0, bool(f & _IMMUTABLE),
            (gfn << PAGE_SHIFT) + gpa_add, asid, bool(f & _VMSA), bool(f & _VALIDATED),
            (p0, p1, p2, p3),
        )

    @staticmethod
    def _head_is_2m(c: np.ndarray) -> bool:
        """Whether chunk ``c``'s head entry is an assigned 2 MiB entry."""
        f = _U8.unpack_from(c, _FLAGS_OFF)[0]  # type: ignore[arg-type]
        return bool(f & _ASSIGNED and f & _PAGESIZE)

    def _raw(self, pfn: int) -> RmpEntry:
        c = self._chunks.get(pfn >> 9)
        if c is None:
            return _preset_entry(self._preset_flags(pfn))
        return self._decode(c, pfn & 511)

    def _forget(self, pfn: int) -> None:
        """Drop cached lookups the entry at ``pfn`` may govern (the chunk, for a head)."""
        if pfn & 511:
            cc = self._lookups.get(pfn >> 9)
            if cc is not None:
                cc.pop(pfn & 511, None)
        else:
            self._lookups.pop(pfn >> 9, None)

    def _write(self, pfn: int, ent: RmpEntry) -> None:
        c = self._chunk(pfn, True)
        assert c is not None
        f = (
            (_ASSIGNED if ent.assigned else 0)
            | (_PAGESIZE if ent.pagesize else 0)
            | (_IMMUTABLE if ent.immutable else 0)
            | (_VMSA if ent.vmsa else 0)
            | (_VALIDATED if ent.validated else 0)
        )
        c[pfn & 511] = (ent.gpa >> PAGE_SHIFT, ent.asid, f, ent.perms)
        self._forget(pfn)

    def covered(self, pfn: int) -> bool:
        """True when the RMP has an entry for ``pfn`` (RMP-Covered, APM vol 2 15.36.10)."""
        if not self._gaps:
            return 0 <= pfn < self._covered_pfns
        return self._extent_of(pfn) is not None

    def head_2m(self, pfn: int) -> RmpEntry | None:
        """The assigned 2 MiB entry governing ``pfn``, or None."""
        c = self._chunks.get(pfn >> 9)
        if c is None or not self._head_is_2m(c):
            return None
        return self._decode(c, 0)

    def lookup(self, pfn: int) -> RmpEntry:
        """The entry that governs ``pfn`` for access checks.

        Inside an assigned 2 MiB entry this is the head entry with its GPA advanced to
        ``pfn``'s offset (Page_Size stays 1).  Pages beyond coverage read as unassigned.
        """
        base = pfn >> 9
        cc = self._lookups.get(base)
        if cc is not None:
            e = cc.get(pfn & 511)
            if e is not None:
                return e
        if not 0 <= pfn < self._covered_pfns or (self._gaps and self._extent_of(pfn) is None):
            return _UNASSIGNED
        c = self._chunks.get(base)
        if c is None:
            return _preset_entry(self._preset_flags(pfn))
        if self._head_is_2m(c):
            e = self._decode(c, 0, (pfn & 511) << PAGE_SHIFT)
        else:
            e = self._decode(c, pfn & 511)
        if cc is None:
            if len(self._lookups) >= _LOOKUP_CACHE_CHUNKS:
                self._lookups.clear()
            cc = self._lookups[base] = {}
        cc[pfn & 511] = e
        return e

    def any_assigned_2m(self, pfn: int) -> bool:
        """Model-only: whether any page of the 2 MiB region holding ``pfn`` is assigned,
        as :meth:`lookup` sees it (``any(lookup(p).assigned for p in the region)``)."""
        base = pfn & ~511
        inside, k = self.covered_run(base, PTRS_PER_PMD)
        if not inside or k < PTRS_PER_PMD:
            return any(self.lookup(p).assigned for p in range(base, base + PTRS_PER_PMD))
        c = self._chunks.get(pfn >> 9)
        if c is None:
            return any(f & _ASSIGNED for _lo, _hi, f in self._preset_in_chunk(pfn >> 9))
        return bool(np.any(c["flags"] & _ASSIGNED))

    def lookup_range(self, pfn: int, n: int) -> np.ndarray:
        """Model-only range form of :meth:`lookup`: the governing entries of the ``n``
        pages from SPA frame ``pfn``, as a structured array of ``n`` records with the
        fields of :class:`RmpEntry` (``assigned``, ``pagesize``, ``immutable``, ``gpa``
        bytes, ``asid``, ``vmsa``, ``validated``, ``perms`` (4,)); record ``i`` equals
        ``lookup(pfn + i)`` field by field (pages beyond coverage read unassigned).
        Costs O(``n``) numpy work and one Python step per 2 MiB chunk.
        """
        assert pfn >= 0 and n >= 0, "lookup_range: negative frame or count"
        out = np.zeros(n, dtype=RMP_LOOKUP_DTYPE)
        done = 0
        while done < n:
            p = pfn + done
            if p >= self._covered_pfns:
                break  # the rest reads unassigned
            lo = p & 511
            inside, k = self.covered_run(p, min(n - done, PTRS_PER_PMD - lo))
            if not inside:
                done += k  # a hole between segments reads unassigned
                continue
            c = self._chunks.get(p >> 9)
            if c is None and self._preset:
                for a, b, f in self._preset_in_chunk(p >> 9):
                    a, b = max(a, lo), min(b, lo + k)
                    if a < b:
                        dst = out[done + a - lo : done + b - lo]
                        dst["assigned"] = bool(f & _ASSIGNED)
                        dst["immutable"] = bool(f & _IMMUTABLE)
            if c is not None:
                dst = out[done : done + k]
                if self._head_is_2m(c):
                    src = np.broadcast_to(c[0], (k,))
                    dst["gpa"] = (int(c["gfn"][0]) + lo + np.arange(k, dtype=np.uint64)) << PAGE_SHIFT
                else:
                    src = c[lo : lo + k]
                    dst["gpa"] = src["gfn"] << np.uint64(PAGE_SHIFT)
                f = src["flags"]
                dst["assigned"] = (f & _ASSIGNED) != 0
                dst["pagesize"] = (f & _PAGESIZE) != 0
                dst["immutable"] = (f & _IMMUTABLE) != 0
                dst["vmsa"] = (f & _VMSA) != 0
                dst["validated"] = (f & _VALIDATED) != 0
                dst["asid"] = src["asid"]
                dst["perms"] = src["perms"]
            done += k
        return out

    def private_read_run(self, pfn: int, gpa: int, n: int, *, asid: int, pagesize: int,
                         vmpl: int) -> int:
        """Model-only range form of the private-read RMP checks: how many of the ``n``
        pages from SPA frame ``pfn``, mapped at consecutive GPAs from ``gpa`` (bytes, page
        aligned), in a row from the first, pass every check a C=1 data read at VMPL
        ``vmpl`` by the guest of ``asid`` passes in
        :func:`snpsim.hw.npt.check_rmp_guest_access`: RMP-Covered, Guest-Owned,
        Reverse-Map, Mutable, Page-Size (the governing entry's Page_Size equals
        ``pagesize``, 1 under a 2 MiB NPT leaf), Validated and the VMPL read permission.
        Same answer as checking page by page with :meth:`lookup`; costs O(``n``) numpy
        work and one Python step per 2 MiB chunk.  Never allocates table storage.
        """
        done = 0
        gfn = gpa >> PAGE_SHIFT
        while done < n:
            p = pfn + done
            lo = p & 511
            inside, k = self.covered_run(p, min(n - done, PTRS_PER_PMD - lo))
            if not inside:
                return done
            c = self._chunks.get(p >> 9)
            if c is None:
                return done
            g = gfn + done
            if self._head_is_2m(c):
                gfn0, a, f, *perms = _REC.unpack_from(c, 0)  # type: ignore[arg-type]
                ok = (a == asid and gfn0 + lo == g and not f & _IMMUTABLE and pagesize == 1
                      and f & _VALIDATED and perms[vmpl] & _PERM_READ)
                if not ok:
                    return done
            elif k <= _SCALAR_RUN:  # a few entries: numpy's per-call cost would dominate
                want = _ASSIGNED | _VALIDATED | (_PAGESIZE if pagesize else 0)
                for j in range(k):
                    gfn_j, a, f, *perms = _REC.unpack_from(c, (lo + j) * _REC_SIZE)  # type: ignore[arg-type]
                    if ((f & (_ASSIGNED | _VALIDATED | _PAGESIZE | _IMMUTABLE)) != want
                            or a != asid or gfn_j != g + j or not perms[vmpl] & _PERM_READ):
                        return done + j
            else:
                seg = c[lo : lo + k]
                f = seg["flags"]
                want = _ASSIGNED | _VALIDATED | (_PAGESIZE if pagesize else 0)
                good = (f & (_ASSIGNED | _VALIDATED | _PAGESIZE | _IMMUTABLE)) == want
                good &= seg["asid"] == asid
                good &= seg["gfn"] == np.arange(g, g + k, dtype=np.uint64)
                good &= (seg["perms"][:, vmpl] & _PERM_READ) != 0
                if not good.all():
                    return done + int(np.argmin(good))
            done += k
        return done

    def entry(self, pfn: int) -> RmpEntry:
        """The raw 4 KiB entry at ``pfn`` (model-only: what a debugger would dump)."""
        return self._raw(pfn)

    def set_validated(self, pfn: int, validated: bool) -> None:
        """Write the Validated bit of the governing entry (PVALIDATE's effect)."""
        c = self._chunk(pfn, True)
        assert c is not None
        target = pfn & ~511 if self._head_is_2m(c) else pfn
        off = (target & 511) * _REC_SIZE + _FLAGS_OFF
        f = _U8.unpack_from(c, off)[0]  # type: ignore[arg-type]
        f = (f | _VALIDATED) if validated else (f & ~_VALIDATED)
        _U8.pack_into(c, off, f)  # type: ignore[arg-type]
        self._forget(target)

    def set_perms(self, pfn: int, vmpl: int, perms: int, vmsa: bool | None = None) -> None:
        """Write one VMPL's permission mask (and optionally the VMSA bit): RMPADJUST's effect."""
        head = self.head_2m(pfn)
        target = pfn & ~511 if head is not None else pfn
        ent = self._raw(target)
        p = list(ent.perms)
        p[vmpl] = perms
        self._write(target, RmpEntry(ent.assigned, ent.pagesize, ent.immutable, ent.gpa,
                                     ent.asid, ent.vmsa if vmsa is None else vmsa,
                                     ent.validated, tuple(p)))  # type: ignore[arg-type]

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    # -- instructions ----------------------------------------------------------------
    def rmpupdate(self, spa: int, state: RmpState, *, current_asid: int = 0) -> int:
        """RMPUPDATE: write the entry of the page at ``spa`` (bytes) from ``state``.

        Returns the EAX code: 0 success, FAIL_INPUT (1: SPA not covered, 2 MiB state on a
        SPA that is not 2 MiB aligned, ASID above ``RMP_ASID_MAX``), FAIL_PERMISSION (2: executed with ASID != 0, or the
        current entry is Immutable), FAIL_INUSE (3: the page is a running vCPU's VMSA),
        FAIL_OVERLAP (4: a 4K update under an assigned 2M entry, head included, or a 2M
        update over assigned 4K entries; see module docstring).
        Source: APM vol 3 RMPUPDATE; MSDOC ``__rmpupdate``; hardware-and-ghcb.md 3.1.
        """
        self._count("RMPUPDATE")
        pfn = spa >> PAGE_SHIFT
        if current_asid != 0:
            return RMPUPDATE_FAIL_PERMISSION
        if not self.covered(pfn) or state.pagesize not in (0, 1) or state.asid > RMP_ASID_MAX:
            return RMPUPDATE_FAIL_INPUT
        if state.pagesize == 1 and (pfn & 511 or not self.covered(pfn | 511)):
            return RMPUPDATE_FAIL_INPUT
        c = self._chunks.get(pfn >> 9)
        cur_flags = self._preset_flags(pfn) if c is None else 0
        if c is not None:
            cur_flags = _U8.unpack_from(c, (pfn & 511) * _REC_SIZE + _FLAGS_OFF)[0]  # type: ignore[arg-type]
        if cur_flags & _IMMUTABLE:
            return RMPUPDATE_FAIL_PERMISSION
        if self.in_use and (
                not self.in_use.isdisjoint(range(pfn, pfn + PTRS_PER_PMD)) if state.pagesize
                else pfn in self.in_use):
            return RMPUPDATE_FAIL_INUSE
        if state.pagesize == 0 and c is not None and self._head_is_2m(c):
            return RMPUPDATE_FAIL_OVERLAP
        if state.pagesize == 1:
            if c is not None and np.any(c["flags"][1:] & _ASSIGNED):
                return RMPUPDATE_FAIL_OVERLAP
        # WRITE THE ENTRY: Validated and VMSA clear, VMPL0 all permissions when assigned.
        assigned = bool(state.assigned)
        flags = ((_ASSIGNED if assigned else 0) | (_PAGESIZE if state.pagesize else 0)
                 | (_IMMUTABLE if state.immutable else 0))
        if c is None:
            c = self._chunk(pfn, True)
            assert c is not None
        _REC.pack_into(c, (pfn & 511) * _REC_SIZE,  # type: ignore[arg-type]
                       (state.gpa & ~0xFFF & ((1 << 52) - 1)) >> PAGE_SHIFT, state.asid, flags,
                       _PERM_ALL if assigned else 0, 0, 0, 0)
        self._forget(pfn)
        return 0

    def psmash(self, spa: int, *, current_asid: int = 0) -> int:
        """PSMASH: split the 2 MiB entry at ``spa`` (2 MiB-aligned, bytes) into 512 4 KiB
        entries with consecutive GPAs; every other field, Validated included, is copied.

        Returns 0, FAIL_INPUT (1: not 2 MiB aligned or not covered), FAIL_PERMISSION
        (2: ASID != 0), FAIL_INUSE (3: a running VMSA in the range), FAIL_BADADDR (7: the
        entry is not an assigned 2 MiB entry).  Source: MSDOC ``__psmash``; APM 15.36.11.
        """
        self._count("PSMASH")
        pfn = spa >> PAGE_SHIFT
        if current_asid != 0:
            return PSMASH_FAIL_PERMISSION
        if spa & ((1 << 21) - 1) or not self.covered(pfn):
            return PSMASH_FAIL_INPUT
        head = self.head_2m(pfn)
        if head is None:
            return PSMASH_FAIL_BADADDR
        if self.in_use and not self.in_use.isdisjoint(range(pfn, pfn + PTRS_PER_PMD)):
            return PSMASH_FAIL_INUSE
        c = self._chunk(pfn, True)
        assert c is not None
        gfn0 = head.gpa >> PAGE_SHIFT
        c["gfn"] = np.arange(gfn0, gfn0 + PTRS_PER_PMD, dtype=np.uint64)
        c["asid"] = head.asid
        c["flags"] = int(c["flags"][0]) & ~_PAGESIZE
        c["perms"] = head.perms
        self._lookups.pop(pfn >> 9, None)
        return 0

    def rmpread(self, spa: int, *, current_asid: int = 0) -> tuple[int, RmpEntry | None]:
        """RMPREAD: the architectural view of the entry of ``spa``.

        Returns (0, entry) or (FAIL_INPUT 1, None) for an uncovered SPA, (FAIL_PERMISSION
        2, None) with ASID != 0.  The caller must ignore ``validated`` and ``perms``:
        RMPREAD does not return them (hardware-and-ghcb.md 3.6).
        """
        self._count("RMPREAD")
        pfn = spa >> PAGE_SHIFT
        if current_asid != 0:
            return RMPREAD_FAIL_PERMISSION, None
        if not self.covered(pfn):
            return RMPREAD_FAIL_INPUT, None
        return 0, self.lookup(pfn)

    def rmpread_out(self, spa: int, *, current_asid: int = 0) -> tuple[int, RmpReadOut | None]:
        """RMPREAD with its 16-byte output block (Linux ``struct rmpentry``).

        Same return codes as :meth:`rmpread`.  ``pagesize`` bit 0 is the governing
        entry's Page_Size; bit 1 (2 MiB-region status) is set when any page of the
        enclosing 2 MiB region is assigned (model reading of MSDOC ``__rmpread``: the
        exact hardware definition is unconfirmed).  Validated and the VMPL masks are not
        part of the output.  Source: MSDOC ``__rmpread``; arch/x86/virt/svm/sev.c.
        """
        code, ent = self.rmpread(spa, current_asid=current_asid)
        if ent is None:
            return code, None
        pfn = spa >> PAGE_SHIFT
        region = self.any_assigned_2m(pfn)
        return code, RmpReadOut(
            gpa=ent.gpa, assigned=int(ent.assigned), pagesize=ent.pagesize | (2 if region else 0),
            immutable=int(ent.immutable), rsvd=0, asid=ent.asid,
        )

    # -- the RMP side of the guest instructions ---------------------------------------------
    def _guest_owned_or_npf(self, pfn: int, gpa: int, asid: int, pferr: int, what: str) -> RmpEntry:
        """RMP-Covered, Guest-Owned and Mutable for PVALIDATE/RMPADJUST, else
        #NPF(``pferr`` | RMP)."""
        if not self.covered(pfn):
            raise NestedPageFault(gpa, pferr | PFERR_GUEST_RMP_MASK, f"{what}: page not covered by the RMP")
        e = self.lookup(pfn)
        if not e.assigned or e.asid != asid:
            raise NestedPageFault(gpa, pferr | PFERR_GUEST_RMP_MASK, f"{what}: page not guest-owned")
        if e.immutable:
            raise NestedPageFault(gpa, pferr | PFERR_GUEST_RMP_MASK, f"{what}: immutable page")
        return e

    def _size_and_gpa(self, e: RmpEntry, gpa: int, rmp_psize: int, pferr: int, what: str) -> bool:
        """The Page_Size/GPA checks shared by PVALIDATE and RMPADJUST.  Returns False for
        FAIL_SIZEMISMATCH (2 MiB requested on a 4 KiB entry); raises #NPF(``pferr`` | RMP)
        for a GPA mismatch and #NPF(RMP|SIZEM) for 4 KiB requested on a 2 MiB entry."""
        if rmp_psize == 1:
            if e.pagesize == 0:
                return False
            if e.gpa != gpa or gpa & ((1 << 21) - 1):
                raise NestedPageFault(gpa, pferr | PFERR_GUEST_RMP_MASK, f"{what}: GPA mismatch")
        else:
            if e.gpa != gpa:
                raise NestedPageFault(gpa, pferr | PFERR_GUEST_RMP_MASK, f"{what}: GPA mismatch")
            if e.pagesize == 1:
                raise NestedPageFault(gpa, pferr | PFERR_GUEST_RMP_MASK | PFERR_GUEST_SIZEM_MASK,
                                      f"{what}: 4K on a 2M RMP entry")
        return True

    def pvalidate(self, pfn: int, gpa: int, *, asid: int, rmp_psize: int, validate: bool,
                  pferr: int) -> tuple[int, int]:
        """The RMP part of PVALIDATE, for the page at SPA frame ``pfn`` that the guest's
        GVA translated to ``gpa`` (bytes, page aligned) in the guest of ``asid``.

        The caller (:meth:`snpsim.hw.cpu.GuestCpu.pvalidate`) has done the #GP, FAIL_INPUT
        (misaligned 2 MiB), guest-walk and NPT steps; ``pferr`` is the #NPF error code base
        it computed (present, GUEST_FINAL, ENC when the mapping has C=1).

        Returns ``(rax, cf)``: (0, 0) Validated changed; (0, 1) it already had the value;
        (FAIL_SIZEMISMATCH 6, 0) 2 MiB requested on a 4 KiB entry.  Raises
        :class:`NestedPageFault` with ``pferr | RMP`` (bit 31) when the page is not covered,
        not guest-owned (unassigned, or another ASID), immutable, or the RMP GPA differs;
        with ``RMP | SIZEM`` (bit 35) for 4 KiB requested on a 2 MiB entry (decided on the
        RMP Page_Size, hardware-and-ghcb.md 10.6).  The VMPL masks are not checked.
        Source: APM vol 3 PVALIDATE; MSDOC ``__pvalidate``; hardware-and-ghcb.md 2.
        """
        e = self._guest_owned_or_npf(pfn, gpa, asid, pferr, "PVALIDATE")
        if not self._size_and_gpa(e, gpa, rmp_psize, pferr, "PVALIDATE"):
            return PVALIDATE_FAIL_SIZEMISMATCH, 0
        if e.validated == bool(validate):
            return 0, 1
        self.set_validated(pfn, bool(validate))
        return 0, 0

    def rmpadjust(self, pfn: int, gpa: int, *, asid: int, vmpl: int, rmp_psize: int, attrs: int,
                  pferr: int, gva: int) -> int:
        """The RMP part of RMPADJUST at VMPL ``vmpl`` for the page at SPA frame ``pfn``,
        mapped at ``gpa`` (bytes, page aligned) in the guest of ``asid``; ``attrs`` is RDX:
        target VMPL [7:0], permission mask [15:8], VMSA [16].

        Steps, in the model's order (the APM's order is unconfirmed):

        1. FAIL_INPUT (1): ``rmp_psize`` not 0/1, a target VMPL >= 4, reserved mask bits
           7:5, or any RDX bit above 16 set (model choice for the last two);
        2. FAIL_PERMISSION (2): target VMPL <= current VMPL;
        3. #NPF(``pferr`` | RMP) when the page is not covered, not guest-owned, immutable or
           at another GPA; FAIL_SIZEMISMATCH (6) for 2 MiB on a 4 KiB entry; #NPF(RMP |
           SIZEM) for 4 KiB on a 2 MiB entry;
        4. #VC 0x404 (CR2 = ``gva``) when the page is not validated (VERISMO's model;
           unconfirmed, hardware-and-ghcb.md 10.4);
        5. FAIL_PERMISSION (2): the requested mask is not a subset of the current VMPL's;
        6. FAIL_INUSE (3): at VMPL0, a request that would change the VMSA bit of a page
           that is the VMSA of a running vCPU (``in_use``, marked by VMRUN).  Model
           choice: MSDOC lists no 3 for RMPADJUST; Linux ``shutdown_all_aps``
           (arch/x86/coco/sev/core.c, v6.17) issues AP_DESTROY first so that the AP is
           out of guest mode before its VMSA bit is cleared, and skips the running
           CPU's own VMSA; the code is the one RMPUPDATE/PSMASH give for a page in use;
        7. write the target VMPL's mask; the VMSA bit is written only at VMPL0 and
           ignored otherwise (MSDOC ``__rmpadjust``: "Ignored when the current VMPL !=
           0"; EDK2 ``SevSnpRmpAdjust`` comment).

        Returns the EAX code (0 on success).
        Source: APM vol 2 15.36.7, vol 3 RMPADJUST (as restated in hardware-and-ghcb.md
        3.4); MSDOC ``__rmpadjust``; VERISMO ``rmpadjust``; EDK2 ``SevSnpRmpAdjust``.
        """
        target = attrs & RMPADJUST_TARGET_VMPL_MASK
        perms = (attrs >> RMPADJUST_PERM_SHIFT) & 0xFF
        vmsa = bool(attrs & RMPADJUST_VMSA_PAGE_BIT)
        if (rmp_psize not in (0, 1) or target >= VMPL_COUNT or perms & RMP_PERM_RESERVED_MASK
                or attrs >> 17):
            return RMPADJUST_FAIL_INPUT
        if target <= vmpl:
            return RMPADJUST_FAIL_PERMISSION
        e = self._guest_owned_or_npf(pfn, gpa, asid, pferr, "RMPADJUST")
        if not self._size_and_gpa(e, gpa, rmp_psize, pferr, "RMPADJUST"):
            return RMPADJUST_FAIL_SIZEMISMATCH
        if not e.validated:
            raise VmmCommunicationException(SVM_EXIT_PAGE_NOT_VALIDATED, gva,
                                            "RMPADJUST on a page that is not validated")
        if perms & ~e.perms[vmpl]:
            return RMPADJUST_FAIL_PERMISSION
        if vmpl == 0 and vmsa != e.vmsa and self.in_use:
            head = pfn & ~511 if e.pagesize else pfn
            if (not self.in_use.isdisjoint(range(head, head + PTRS_PER_PMD)) if e.pagesize
                    else pfn in self.in_use):
                return RMPADJUST_FAIL_INUSE
        self.set_perms(pfn, target, perms, vmsa if vmpl == 0 else None)
        return 0

    # -- model-only --------------------------------------------------------------------
    def set_page_state(self, pfn: int, owner: str, *, asid: int = 0, gpa: int = 0,
                       validated: bool = False) -> None:
        """Model-only: write the 4 KiB entry of ``pfn`` as another party left it, without
        the RMPUPDATE checks (the page's history before the run: SNP_INIT, another VM).

        ``owner``: ``"hypervisor"`` (all zero), ``"firmware"`` (Assigned, ASID 0,
        Immutable: the Firmware page state, what Linux ``rmp_mark_pages_firmware`` makes
        with ``rmp_make_private(pfn, 0, 4K, 0, true)``), ``"guest"`` (Assigned to
        ``asid`` != 0 at ``gpa`` (bytes), ``validated`` as given: a page of another
        guest), ``"hv-fixed"`` (Assigned=0, Immutable=1: SNP firmware ABI 56860 HV-Fixed).
        Raises ValueError for an unknown owner, a guest owner with ASID 0 or above
        ``RMP_ASID_MAX``, or a PFN beyond coverage.
        """
        if not self.covered(pfn):
            raise ValueError(f"PFN {pfn:#x} is beyond RMP coverage")
        if owner == "hypervisor":
            ent = _UNASSIGNED
        elif owner == "firmware":
            ent = RmpEntry(assigned=True, immutable=True)
        elif owner == "hv-fixed":
            ent = RmpEntry(immutable=True)
        elif owner == "guest":
            if not 0 < asid <= RMP_ASID_MAX:
                raise ValueError(f"a guest page needs an ASID in 1..{RMP_ASID_MAX}, not {asid}")
            ent = RmpEntry(assigned=True, gpa=gpa & ~0xFFF, asid=asid, validated=validated,
                           perms=(_PERM_ALL, 0, 0, 0))
        else:
            raise ValueError(f"unknown RMP owner {owner!r}")
        c = self._chunks.get(pfn >> 9)
        if c is not None and self._head_is_2m(c):
            raise ValueError(f"PFN {pfn:#x} is under a 2 MiB RMP entry")
        self._write(pfn, ent)

    def assigned_pfns(self) -> list[int]:
        """PFNs whose governing entry is assigned (model-only, for invariants and reports).
        Pages still in the Firmware state SNP_INIT gave them and never written since are
        not listed (they are :meth:`preset_extents`, possibly gigabytes)."""
        out: list[int] = []
        for base, c in self._chunks.items():
            f = c["flags"]
            if f[0] & _ASSIGNED and f[0] & _PAGESIZE:
                out.extend(range(base << 9, (base << 9) + PTRS_PER_PMD))
                continue
            for i in np.nonzero(f & _ASSIGNED)[0]:
                out.append((base << 9) + int(i))
        return out

    def bytes_used(self) -> int:
        """Bytes of numpy storage held by the table (model-only, for the memory benchmark)."""
        return sum(c.nbytes for c in self._chunks.values())


_GIB_SHIFT = 30


def _check_placement_int(name: str, value: object) -> None:
    """TypeError unless ``value`` is an int (a bool is not one here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")


def _check_rmp_base(rmp_base: int) -> None:
    """ValueError unless ``rmp_base`` fits RMP_BASE's address bits 51:13 and is set."""
    if rmp_base <= 0 or rmp_base & ~RMP_ADDR_MASK:
        raise ValueError(f"rmp_base must be a non-zero multiple of 8 KiB below 2**52 "
                         f"(RMP_BASE bits 51:13), not {rmp_base:#x}")


@dataclass(frozen=True)
class RmpConfig:
    """Where the BIOS put the RMP, as the MSRs and the RMP segment table say (the state
    the OS finds at boot; model-only container, fields in the hardware's encodings).

    ``rmp_base`` / ``rmp_end``: MSR RMP_BASE (0xC0010132, first byte of the table) and
    RMP_END (0xC0010133, last byte; 0 for a segmented RMP).  ``rmp_cfg``: MSR RMP_CFG
    (0xC0010136): bit 0 segmented, bits 13:8 the segment shift.  ``rst``: the RMP
    segment table's u64 entries by index (bits 19:0 mapped GiB, bits 51:20 the
    segment's SPA), which the BIOS writes into the page at ``rmp_base + 0x4000``.
    ``segment_shift_min`` / ``_max`` and ``rst_limit`` are what CPUID 0x80000025
    reports (EAX[5:0], EAX[11:6]; EBX[9:0] with EBX bit 10 when ``rst_limit`` is set);
    the defaults are model choices (docs/model-choices.md).

    Sources: hardware-and-ghcb.md 1.1 (table location, bookkeeping, coverage);
    arch/x86/virt/svm/sev.c v6.14+ (``probe_segmented_rmptable_info``,
    ``setup_segmented_rmptable``) for the segment table's encoding.
    """

    rmp_base: int = 0
    rmp_end: int = 0
    rmp_cfg: int = 0
    rst: tuple[tuple[int, int], ...] = ()
    segment_shift_min: int = 30
    segment_shift_max: int = 52
    rst_limit: int | None = None

    @classmethod
    def contiguous(cls, rmp_base: int, covered: int) -> RmpConfig:
        """A contiguous RMP at ``rmp_base`` (bytes) whose entries cover SPA ``[0,
        covered)`` (bytes): RMP_END = base + 16 KiB + 16 bytes per page - 1.

        RMP_BASE and RMP_END hold an address in bits 51:13 (``RMP_ADDR_MASK``, which
        ``snp_probe_rmptable_info`` reads), so ``rmp_base`` must be a non-zero multiple
        of 8 KiB below 2**52 and the table must end on an 8 KiB boundary: ``covered`` a
        positive multiple of 2 MiB (512 entries of 16 bytes).  TypeError for a
        non-int, ValueError for anything else out of range.  (A BIOS that got the MSRs
        wrong is modelled with the plain constructor, which takes any values.)"""
        _check_placement_int("rmp_base", rmp_base)
        _check_placement_int("covered", covered)
        _check_rmp_base(rmp_base)
        if covered <= 0 or covered % (PTRS_PER_PMD * PAGE_SIZE):
            raise ValueError(f"covered must be a positive multiple of 2 MiB (the table ends on "
                             f"RMP_END's 8 KiB granule), not {covered:#x}")
        rmp_end = rmp_base + RMPTABLE_CPU_BOOKKEEPING_SZ + (covered >> PAGE_SHIFT) * RMP_ENTRY_SIZE - 1
        if rmp_end >> 52:
            raise ValueError(f"an RMP at {rmp_base:#x} covering {covered:#x} bytes ends past "
                             "2**52, beyond RMP_END's address bits 51:13")
        return cls(rmp_base=rmp_base, rmp_end=rmp_end)

    @classmethod
    def segmented(cls, rmp_base: int, segment_shift: int,
                  segments: dict[int, tuple[int, int]], **cpuid: int) -> RmpConfig:
        """A segmented RMP: bookkeeping and segment table at ``rmp_base``; segment
        ``index`` covers SPA from ``index << segment_shift`` for ``mapped_gib`` GiB, its
        entries at ``segment_spa``: ``segments = {index: (segment_spa, mapped_gib)}``.
        ``cpuid``: ``segment_shift_min``, ``segment_shift_max`` (CPUID 0x80000025
        EAX[5:0] / EAX[11:6], each 0..63, defaults 30 and 52), ``rst_limit`` (EBX[9:0],
        0..1023).

        Checked as the fields hold them: ``rmp_base`` a non-zero multiple of 8 KiB below
        2**52 (RMP_BASE bits 51:13); ``segment_shift`` within the CPUID bounds (else
        ``probe_segmented_rmptable_info`` refuses the table); ``index`` 0..511 (one
        page of u64 entries, ``RST_MAX_INDEX``); ``segment_spa`` a non-zero multiple of
        1 MiB below 2**52 (bits 51:20); ``mapped_gib`` 0..2**20-1 (bits 19:0).  TypeError
        for a non-int, ValueError for a value out of range.  (A BIOS that got them wrong
        is modelled with the plain constructor.)"""
        _check_placement_int("rmp_base", rmp_base)
        _check_placement_int("segment_shift", segment_shift)
        _check_rmp_base(rmp_base)
        unknown = set(cpuid) - {"segment_shift_min", "segment_shift_max", "rst_limit"}
        if unknown:
            raise TypeError(f"unknown CPUID field {sorted(unknown)[0]!r}: segment_shift_min, "
                            "segment_shift_max or rst_limit")
        for name in ("segment_shift_min", "segment_shift_max", "rst_limit"):
            if name in cpuid:
                _check_placement_int(name, cpuid[name])
                top = 0x3FF if name == "rst_limit" else 0x3F
                if not 0 <= cpuid[name] <= top:
                    raise ValueError(f"{name} must be 0..{top}, not {cpuid[name]}")
        lo = cpuid.get("segment_shift_min", cls.segment_shift_min)
        hi = cpuid.get("segment_shift_max", cls.segment_shift_max)
        if not lo <= segment_shift <= hi:
            raise ValueError(f"segment_shift must be {lo}..{hi} (CPUID 0x80000025 EAX), "
                             f"not {segment_shift}")
        if not isinstance(segments, dict):
            raise TypeError(f"segments must be {{index: (segment_spa, mapped_gib)}}, not {segments!r}")
        rst = []
        for i, value in segments.items():
            _check_placement_int("segment index", i)
            if not 0 <= i < RST_MAX_INDEX:
                raise ValueError(f"segment index must be 0..{RST_MAX_INDEX - 1}, not {i}")
            if not isinstance(value, tuple) or len(value) != 2:
                raise TypeError(f"segment {i} must be (segment_spa, mapped_gib), not {value!r}")
            spa, gib = value
            _check_placement_int("segment_spa", spa)
            _check_placement_int("mapped_gib", gib)
            if spa <= 0 or spa % (1 << 20) or spa >> 52:
                raise ValueError(f"segment {i}: segment_spa must be a non-zero multiple of 1 MiB "
                                 f"below 2**52, not {spa:#x}")
            if not 0 <= gib < 1 << 20:
                raise ValueError(f"segment {i}: mapped_gib must be 0..{(1 << 20) - 1}, not {gib}")
            rst.append((i, spa | gib))
        return cls(rmp_base=rmp_base, rmp_cfg=1 | segment_shift << 8, rst=tuple(sorted(rst)),
                   **cpuid)

    @property
    def is_segmented(self) -> bool:
        """RMP_CFG bit 0 (segmented RMP enabled)."""
        return bool(self.rmp_cfg & 1)

    @property
    def segment_shift(self) -> int:
        """RMP_CFG[13:8]."""
        return (self.rmp_cfg >> 8) & 0x3F

    def rst_page(self) -> bytes:
        """The 4 KiB RMP segment table page as the BIOS writes it (u64 little-endian)."""
        page = bytearray(RST_SIZE)
        for i, entry in self.rst:
            if 0 <= i < RST_MAX_INDEX:
                page[i * 8 : i * 8 + 8] = (entry & ((1 << 64) - 1)).to_bytes(8, "little")
        return bytes(page)

    def _segments(self) -> list[tuple[int, int, int]]:
        """(covered SPA, covered bytes, segment SPA) of each mapped segment the hardware
        uses (index below the RST limit; mapped size capped at the segment size)."""
        limit = RST_MAX_INDEX if self.rst_limit is None else self.rst_limit
        size = 1 << self.segment_shift
        out = []
        for i, entry in self.rst:
            mapped = RST_ENTRY_MAPPED_SIZE(entry) << _GIB_SHIFT
            if mapped and 0 <= i < limit:
                out.append((i << self.segment_shift, min(mapped, size), RST_ENTRY_SEGMENT_BASE(entry)))
        return out

    def covered_extents(self) -> list[tuple[int, int]]:
        """The PFN ranges the hardware has RMP entries for: ``[0, entries)`` for a
        contiguous RMP ((RMP_END + 1 - RMP_BASE - 16 KiB) / 16 entries); one range per
        mapped segment for a segmented one; none when RMP_BASE is unset."""
        if not self.rmp_base & RMP_ADDR_MASK:
            return []
        if self.is_segmented:
            return [(pa >> PAGE_SHIFT, (pa + size) >> PAGE_SHIFT) for pa, size, _s in self._segments()]
        if not self.rmp_end & RMP_ADDR_MASK or self.rmp_end < self.rmp_base:
            return []
        entries = (self.rmp_end + 1 - self.rmp_base - RMPTABLE_CPU_BOOKKEEPING_SZ) // RMP_ENTRY_SIZE
        return [(0, entries)] if entries > 0 else []

    def table_extents(self) -> list[tuple[int, int]]:
        """PFN ranges ``[start, end)`` of the RMP's own memory: bookkeeping and entries
        (contiguous), or bookkeeping, segment table and each segment's entries."""
        base = self.rmp_base & ~(PAGE_SIZE - 1)
        if self.is_segmented:
            out = [(base >> PAGE_SHIFT, (base + RMPTABLE_CPU_BOOKKEEPING_SZ + RST_SIZE) >> PAGE_SHIFT)]
            for _pa, size, seg in self._segments():
                nbytes = (size >> PAGE_SHIFT) * RMP_ENTRY_SIZE
                out.append((seg >> PAGE_SHIFT, (seg + nbytes + PAGE_SIZE - 1) >> PAGE_SHIFT))
            return out
        if self.rmp_end < self.rmp_base:
            return []
        return [(base >> PAGE_SHIFT, (self.rmp_end >> PAGE_SHIFT) + 1)]


