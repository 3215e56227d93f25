# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The PSP driver's firmware pages: ``snp_alloc_firmware_page``,
``snp_free_firmware_page`` and the reclaim under the latter, ``snp_reclaim_pages``.

Mirrors ``drivers/crypto/ccp/sev-dev.c`` (v6.11+, unchanged in substance to v6.17).  KVM
takes its SNP guest context page from here (``snp_context_create``) and gives it back
after SNP_DECOMMISSION (``snp_decommission_context``).  A firmware page is a host page
whose RMP entry says Firmware (Assigned, ASID 0, Immutable); it can be freed only after
the firmware let it go (SNP_PAGE_RECLAIM) and an RMPUPDATE made it the hypervisor's
again; a page for which either step fails is leaked (``snp_leak_pages``), never freed.

Units: PFNs (4 KiB frames).  Errors: negative errno.  Model: SNP is always initialised
on the platform (``sev->snp_initialized``), so every page goes through the RMP; the
firmware's internal Context page state is not modelled (the page stays Firmware while
the context lives, docs/model-choices.md).
"""

from __future__ import annotations

import errno

from snpsim.spec.pgtable_types import PG_LEVEL_4K
from snpsim.spec.units import PAGE_SHIFT
from snpsim.trace.record import traced

from .kvm_host import KvmVm
from .virt_svm_sev import rmp_make_private, rmp_make_shared, snp_leak_pages

__all__ = [
    "snp_reclaim_pages",
    "snp_alloc_firmware_page",
    "snp_free_firmware_page",
]


@traced("kvm")
def snp_reclaim_pages(kvm: KvmVm, pfn: int, npages: int) -> int:
    """``snp_reclaim_pages(paddr, npages, locked)`` (drivers/crypto/ccp/sev-dev.c,
    v6.11+): for each page from ``pfn`` on, firmware SNP_PAGE_RECLAIM then
    ``rmp_make_shared(4K)``.  At the first failure the failing page and every page after
    it are leaked (``snp_leak_pages``) and the error is returned: -EIO for a firmware
    error (``sev_do_cmd``), -EFAULT from ``rmpupdate``.  Returns 0 or -errno.  ``kvm``
    carries the host port and allocator (the C function has no VM argument)."""
    for i in range(npages):
        p = pfn + i
        if kvm.host.firmware.snp_page_reclaim(p << PAGE_SHIFT):
            ret = -errno.EIO
        else:
            ret = rmp_make_shared(kvm, p, PG_LEVEL_4K)
        if ret:
            snp_leak_pages(kvm, p, npages - i)
            return ret
    return 0


@traced("kvm")
def snp_alloc_firmware_page(kvm: KvmVm) -> int:
    """``snp_alloc_firmware_page(gfp)`` (sev-dev.c ``__snp_alloc_firmware_pages`` with
    order 0, v6.11+): a zeroed page from the host allocator, made Firmware in the RMP
    (``rmp_mark_pages_firmware`` of one page: ``rmp_make_private(pfn, 0, 4K, asid 0,
    immutable)``; with one page there is nothing to give back on failure).  Returns its
    PFN, or -1 (NULL) when the RMP update fails -- the page is then neither freed nor
    leaked (the C function returns NULL without freeing it)."""
    pfn = kvm.allocator.alloc_page()
    if rmp_make_private(kvm, pfn, 0, PG_LEVEL_4K, 0, True):
        return -1
    return pfn


@traced("kvm")
def snp_free_firmware_page(kvm: KvmVm, pfn: int) -> None:
    """``snp_free_firmware_page(addr)`` (sev-dev.c ``__snp_free_firmware_pages``, order
    0, v6.11+): reclaim the page from the firmware (``snp_reclaim_pages``) and give it
    back to the allocator; when the reclaim fails the page was leaked and is not
    freed."""
    if pfn < 0:
        return
    if snp_reclaim_pages(kvm, pfn, 1):
        return
    kvm.allocator.free_page(pfn)
