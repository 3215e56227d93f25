"""The Reverse Map Table and the host RMP instructions RMPUPDATE, PSMASH and RMPREAD.

One entry per 4 KiB of system physical memory (APM vol 2 15.36.4).  Entry fields
(APM table 15-34): Assigned, Page_Size, Immutable, GPA, ASID, VMSA, Validated and one
VMPL permission mask per VMPL (4 VMPLs).  A 2 MiB entry is the entry at the 2 MiB-aligned
PFN (the "head") with Page_Size = 1; it governs all 512 pages of its range, whose own
entries are not consulted (Linux ``__snp_lookup_rmpentry`` reads the head the same way).

Storage is sparse: entries live in numpy chunks of 512 (one per 2 MiB of SPA space),
allocated on first write; an untouched chunk reads as all-zero entries (hypervisor-owned),
which is the architectural initial state.  One entry costs 17 bytes.

Pages at or above ``coverage`` (bytes of SPA covered by the table) are permanently
hypervisor-owned; RMP instructions on them fail with FAIL_INPUT.

Model choices (see docs/model-choices.md), where the references are unconfirmed:

* every successful RMPUPDATE clears Validated and VMSA and resets the permission masks
  (VMPL0 all, others none, when assigned; all zero when not) -- hardware-and-ghcb.md 3.1
  recommends this;
* a structural overlap returns FAIL_OVERLAP (4): a 4 KiB RMPUPDATE of a non-head page
  under an assigned 2 MiB entry, and a 2 MiB RMPUPDATE over a range in which a non-head
  4 KiB entry is assigned (hardware-and-ghcb.md 1.3);
* a 4 KiB RMPUPDATE of the head of an assigned 2 MiB entry turns the range into 512
  4 KiB entries of which only the head is written; the other 511 become unassigned.

Sources: AMD APM vol 2 15.36 (as restated in hardware-and-ghcb.md 1 and 3), MSDOC
``__rmpupdate``/``__psmash``/``__rmpread`` return codes, Linux ``arch/x86/virt/svm/sev.c``
(v6.16) for how the host uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snpsim.spec.rmp import (
    PSMASH_FAIL_BADADDR,
    PSMASH_FAIL_INPUT,
    PSMASH_FAIL_INUSE,
    PSMASH_FAIL_PERMISSION,
    RMPREAD_FAIL_INPUT,
    RMPREAD_FAIL_PERMISSION,
    RMPUPDATE_FAIL_INPUT,
    RMPUPDATE_FAIL_INUSE,
    RMPUPDATE_FAIL_OVERLAP,
    RMPUPDATE_FAIL_PERMISSION,
    RmpPerm,
    RmpState,
)
from snpsim.spec.units import PAGE_SHIFT, PTRS_PER_PMD

__all__ = ["RmpEntry", "Rmp", "RMP_DTYPE", "VMPL_COUNT"]

VMPL_COUNT = 4

# flags byte
_ASSIGNED = 1 << 0
_PAGESIZE = 1 << 1
_IMMUTABLE = 1 << 2
_VMSA = 1 << 3
_VALIDATED = 1 << 4

RMP_DTYPE = np.dtype([("gfn", "<u8"), ("asid", "<u4"), ("flags", "u1"), ("perms", "u1", (VMPL_COUNT,))])

_PERM_ALL = int(RmpPerm.READ | RmpPerm.WRITE | RmpPerm.EXEC_USER | RmpPerm.EXEC_SUPER)


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
        """``hypervisor``, ``guest`` or ``firmware`` (APM table 15-35)."""
        if not self.assigned:
            return "hypervisor"
        if self.asid == 0 and self.immutable:
            return "firmware"
        return "guest"


class Rmp:
    """The RMP of one platform.

    ``coverage``: bytes of SPA space the table covers (pages above are hypervisor-owned).
    ``in_use``: PFNs currently in use as the VMSA of a running vCPU (FAIL_INUSE);
    maintained by the world switch.
    """

    def __init__(self, coverage: int) -> None:
        self.coverage = coverage
        self._chunks: dict[int, np.ndarray] = {}
        self.in_use: set[int] = set()
        self.counters: dict[str, int] = {}

    # -- storage -------------------------------------------------------------------
    def _chunk(self, pfn: int, create: bool) -> np.ndarray | None:
        c = self._chunks.get(pfn >> 9)
        if c is None and create:
            c = np.zeros(PTRS_PER_PMD, dtype=RMP_DTYPE)
            self._chunks[pfn >> 9] = c
        return c

    def _raw(self, pfn: int) -> RmpEntry:
        c = self._chunk(pfn, False)
        if c is None:
            return RmpEntry()
        e = c[pfn & 511]
        f = int(e["flags"])
        return RmpEntry(
            assigned=bool(f & _ASSIGNED),
            pagesize=1 if f & _PAGESIZE else 0,
            immutable=bool(f & _IMMUTABLE),
            gpa=int(e["gfn"]) << PAGE_SHIFT,
            asid=int(e["asid"]),
            vmsa=bool(f & _VMSA),
            validated=bool(f & _VALIDATED),
            perms=tuple(int(p) for p in e["perms"]),  # type: ignore[arg-type]
        )

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

    def covered(self, pfn: int) -> bool:
        """True when ``pfn`` is below the RMP coverage limit."""
        return 0 <= pfn < (self.coverage >> PAGE_SHIFT)

    def head_2m(self, pfn: int) -> RmpEntry | None:
        """The assigned 2 MiB entry governing ``pfn``, or None."""
        head = self._raw(pfn & ~511)
        if head.assigned and head.pagesize == 1:
            return head
        return None

    def lookup(self, pfn: int) -> RmpEntry:
        """The entry that governs ``pfn`` for access checks.

        Inside an assigned 2 MiB entry this is the head entry with its GPA advanced to
        ``pfn``'s offset (Page_Size stays 1).  Pages beyond coverage read as unassigned.
        """
        if not self.covered(pfn):
            return RmpEntry()
        head = self.head_2m(pfn)
        if head is not None:
            off = (pfn & 511) << PAGE_SHIFT
            return RmpEntry(
                head.assigned, 1, head.immutable, head.gpa + off, head.asid, head.vmsa,
                head.validated, head.perms,
            )
        return self._raw(pfn)

    def entry(self, pfn: int) -> RmpEntry:
        """The raw 4 KiB entry at ``pfn`` (model-only: what a debugger would dump)."""
        return self._raw(pfn)

    def set_validated(self, pfn: int, validated: bool) -> None:
        """Write the Validated bit of the governing entry (PVALIDATE's effect)."""
        head = self.head_2m(pfn)
        target = pfn & ~511 if head is not None else pfn
        ent = self._raw(target)
        self._write(target, RmpEntry(ent.assigned, ent.pagesize, ent.immutable, ent.gpa,
                                     ent.asid, ent.vmsa, validated, ent.perms))

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
        SPA that is not 2 MiB aligned), FAIL_PERMISSION (2: executed with ASID != 0, or the
        current entry is Immutable), FAIL_INUSE (3: the page is a running vCPU's VMSA),
        FAIL_OVERLAP (4: 4K/2M overlap, see module docstring).
        Source: APM vol 3 RMPUPDATE; MSDOC ``__rmpupdate``; hardware-and-ghcb.md 3.1.
        """
        self._count("RMPUPDATE")
        pfn = spa >> PAGE_SHIFT
        if current_asid != 0:
            return RMPUPDATE_FAIL_PERMISSION
        if not self.covered(pfn) or state.pagesize not in (0, 1):
            return RMPUPDATE_FAIL_INPUT
        if state.pagesize == 1 and (pfn & 511 or not self.covered(pfn | 511)):
            return RMPUPDATE_FAIL_INPUT
        cur = self._raw(pfn)
        if cur.immutable:
            return RMPUPDATE_FAIL_PERMISSION
        span = range(pfn, pfn + (PTRS_PER_PMD if state.pagesize else 1))
        if any(p in self.in_use for p in span):
            return RMPUPDATE_FAIL_INUSE
        head = self.head_2m(pfn)
        if state.pagesize == 0 and head is not None and pfn & 511:
            return RMPUPDATE_FAIL_OVERLAP
        if state.pagesize == 1:
            c = self._chunk(pfn, False)
            if c is not None and np.any(c["flags"][1:] & _ASSIGNED):
                return RMPUPDATE_FAIL_OVERLAP
        if head is not None and state.pagesize == 0:
            # Head of a 2M entry turned into 4K: the other 511 entries become unassigned.
            c = self._chunk(pfn, True)
            assert c is not None
            c[1:] = np.zeros(PTRS_PER_PMD - 1, dtype=RMP_DTYPE)
        assigned = bool(state.assigned)
        perms = (_PERM_ALL, 0, 0, 0) if assigned else (0, 0, 0, 0)
        self._write(pfn, RmpEntry(
            assigned=assigned,
            pagesize=state.pagesize,
            immutable=bool(state.immutable),
            gpa=state.gpa & ~0xFFF & ((1 << 52) - 1),
            asid=state.asid,
            vmsa=False,
            validated=False,
            perms=perms,
        ))
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
        if any(p in self.in_use for p in range(pfn, pfn + PTRS_PER_PMD)):
            return PSMASH_FAIL_INUSE
        c = self._chunk(pfn, True)
        assert c is not None
        gfn0 = head.gpa >> PAGE_SHIFT
        c["gfn"] = np.arange(gfn0, gfn0 + PTRS_PER_PMD, dtype=np.uint64)
        c["asid"] = head.asid
        c["flags"] = int(c["flags"][0]) & ~_PAGESIZE
        c["perms"] = head.perms
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

    # -- model-only --------------------------------------------------------------------
    def assigned_pfns(self) -> list[int]:
        """PFNs whose governing entry is assigned (model-only, for invariants and reports)."""
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
