# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Host RMP operations: ``rmpupdate``, ``rmp_make_private``, ``rmp_make_shared``,
``psmash``, ``snp_lookup_rmpentry``, ``snp_leak_pages``, and KVM's wrappers
``snp_rmptable_psmash`` and ``kvm_rmp_make_shared``.

Mirrors ``arch/x86/virt/svm/sev.c`` (commit 0cbc0258, ~v6.14/6.15) and the wrappers in
``arch/x86/kvm/svm/sev.c`` (~v6.17); kvm-qemu-host.md sections 7.1-7.3.  The instructions
themselves run on the platform through the host port.  Units: PFNs (4 KiB frames), GPAs
in bytes; levels are ``PG_LEVEL_4K`` (1) / ``PG_LEVEL_2M`` (2).  Errors: negative errno.
"""

from __future__ import annotations

import errno

from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K
from snpsim.spec.rmp import PSMASH_FAIL_INUSE, RMPUPDATE_FAIL_OVERLAP, RmpState
from snpsim.spec.units import PAGE_SHIFT, PTRS_PER_PMD, RMP_PG_SIZE_2M, RMP_PG_SIZE_4K
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
