# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The SEV firmware driver's SNP initialisation: ``__sev_snp_init_locked``, the HV-Fixed
range list (``snp_filter_reserved_mem_regions``, ``snp_add_hv_fixed_pages``) and the
HV-Fixed page allocator (``snp_alloc_hv_fixed_pages``, ``snp_free_hv_fixed_pages``);
and the firmware pages KVM takes for a VM (``snp_alloc_firmware_page``,
``snp_free_firmware_page`` and the reclaim under it, ``snp_reclaim_pages``: the SNP
guest context page from ``snp_context_create`` to ``snp_decommission_context``).  A
firmware page is a host page whose RMP entry says Firmware (Assigned, ASID 0,
Immutable); it is freed only after SNP_PAGE_RECLAIM and an RMPUPDATE made it the
hypervisor's again, else it is leaked (``snp_leak_pages``).  The firmware's internal
Context page state is not modelled (docs/model-choices.md).

Mirrors ``drivers/crypto/ccp/sev-dev.c`` with the HV-Fixed allocator (2025, "crypto: ccp -
Add new HV-Fixed page allocation/free API") and ``snp_prepare`` before SNP_INIT (the
delayed-SNP-enable series; the release that merged it is unconfirmed), plus the SEV-ES
TMR (``__sev_platform_init_handle_tmr``).  The firmware commands run on the platform
through the host port.  The rest of the SEV (non-SNP) platform init, the firmware's
version checks and SNP_DF_FLUSH are not modelled.  Units: SPAs and sizes in bytes, PFNs.  Errors: negative errno, the firmware
status in ``error``.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from snpsim.spec.e820 import E820_TYPE_ACPI, E820_TYPE_PMEM, E820_TYPE_RESERVED
from snpsim.spec.pgtable_types import PG_LEVEL_4K
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE, PMD_SIZE
from snpsim.trace.record import traced

from .kvm_host import KvmVm
from .virt_svm_sev import (
    SnpRmpTable,
    rmp_make_private,
    rmp_make_shared,
    snp_leak_pages,
    snp_prepare,
)

__all__ = [
    "SevDevice",
    "HvFixedPages",
    "snp_filter_reserved_mem_regions",
    "snp_add_hv_fixed_pages",
    "snp_alloc_hv_fixed_pages",
    "snp_free_hv_fixed_pages",
    "__sev_snp_init_locked",
    "rmp_mark_pages_firmware",
    "sev_fw_alloc",
    "__sev_platform_init_handle_tmr",
    "SNP_TMR_SIZE",
    "SEV_DATA_RANGE_LIST_HDR_SIZE",
    "SEV_DATA_RANGE_SIZE",
    "snp_reclaim_pages",
    "snp_alloc_firmware_page",
    "snp_free_firmware_page",
]

#: ``struct sev_data_range_list``: u32 num_elements, u32 reserved, then the ranges.
SEV_DATA_RANGE_LIST_HDR_SIZE = 8
#: ``struct sev_data_range``: u64 base, u32 page_count, u32 reserved.
SEV_DATA_RANGE_SIZE = 16
#: The SEV-ES Trusted Memory Region once SNP is on: 2 MiB, 2 MiB aligned (1 MiB without SNP).
SNP_TMR_SIZE = 2 << 20


@dataclass
class HvFixedPages:
    """``struct snp_hv_fixed_pages_entry``: ``pfn`` and ``order`` of one allocation,
    ``free`` (given back while HV-Fixed, kept for reuse), ``hv_fixed`` (page_state
    HV_FIXED: SNP_INIT_EX has run since it was allocated)."""

    pfn: int
    order: int
    free: bool = False
    hv_fixed: bool = False


@dataclass
class SevDevice:
    """``struct sev_device`` reduced to SNP initialisation (model-only container):
    ``host`` the host port, ``allocator`` the page allocator, ``rmptable`` the
    arch/x86/virt/svm/sev.c state, ``e820`` the host's firmware memory map ((SPA, size,
    E820_TYPE_*) triples, what ``walk_iomem_res_desc`` visits), ``snp_initialized``,
    ``snp_range_list`` (the (SPA, page count) pairs passed to the firmware),
    ``hv_fixed`` (the ``snp_hv_fixed_pages`` list), ``log`` the dev_* lines,
    ``sev_es_tmr`` the TMR's first PFN (-1: none)."""

    host: Any
    allocator: Any
    rmptable: SnpRmpTable
    e820: tuple[tuple[int, int, int], ...] = ()
    snp_initialized: bool = False
    snp_range_list: list[tuple[int, int]] = field(default_factory=list)
    hv_fixed: list[HvFixedPages] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    #: First PFN of the SEV-ES TMR (``sev_es_tmr``), -1 when none.
    sev_es_tmr: int = -1


@traced("kvm")
def snp_filter_reserved_mem_regions(e820: tuple[tuple[int, int, int], ...]
                                    ) -> tuple[int, list[tuple[int, int]]]:
    """``walk_iomem_res_desc(..., snp_filter_reserved_mem_regions)``: every e820 range of
    type RESERVED, PMEM or ACPI becomes a range (start aligned down to a page, size in
    pages) of the list the firmware makes HV-Fixed.  The list lives in one page: a range
    that would not fit (more than 255 already in it) stops the walk with -E2BIG.
    Returns ``(0 or -E2BIG, ranges)``."""
    ranges: list[tuple[int, int]] = []
    for start, size, kind in sorted(e820):
        if len(ranges) * SEV_DATA_RANGE_SIZE + SEV_DATA_RANGE_LIST_HDR_SIZE > PAGE_SIZE:
            return -errno.E2BIG, ranges
        if kind in (E820_TYPE_RESERVED, E820_TYPE_PMEM, E820_TYPE_ACPI) and size > 0:
            ranges.append((start & ~(PAGE_SIZE - 1), size >> PAGE_SHIFT))
    return 0, ranges


@traced("kvm")
def snp_add_hv_fixed_pages(sev: SevDevice, ranges: list[tuple[int, int]]) -> None:
    """``snp_add_hv_fixed_pages(sev, range_list)``: append every allocation of the
    HV-Fixed allocator (free or not) to the range list, while it fits in the page."""
    for e in sev.hv_fixed:
        if (len(ranges) + 1) * SEV_DATA_RANGE_SIZE + SEV_DATA_RANGE_LIST_HDR_SIZE > PAGE_SIZE:
            break
        ranges.append((e.pfn << PAGE_SHIFT, 1 << e.order))


@traced("kvm")
def snp_alloc_hv_fixed_pages(sev: SevDevice, num_2mb_pages: int) -> int:
    """``snp_alloc_hv_fixed_pages(num_2mb_pages)``: pages a PSP sub-device needs in the
    HV-Fixed state, taken before SNP_INIT_EX (which makes them HV-Fixed).  Returns the
    first PFN, or -1 (NULL) once SNP is initialised.  A freed allocation of the same
    order is reused (exact fit).  Model restriction: one 2 MiB page per call (the
    model's allocator hands out order 0 and 9 only); more returns -1."""
    if sev.snp_initialized or num_2mb_pages != 1:
        return -1
    order = (PMD_SIZE >> PAGE_SHIFT).bit_length() - 1
    for e in sev.hv_fixed:
        if e.order == order and e.free:
            e.free = False
            sev.host.zero_pages(e.pfn << PAGE_SHIFT, 1 << order)
            return e.pfn
    pfn = sev.allocator.alloc_pages(order)
    sev.hv_fixed.append(HvFixedPages(pfn, order))
    return pfn


@traced("kvm")
def snp_free_hv_fixed_pages(sev: SevDevice, pfn: int) -> None:
    """``snp_free_hv_fixed_pages(page)``: an allocation made HV-Fixed cannot go back to
    the page allocator (HV-Fixed lasts until reboot, and a guest given such a page would
    fail), so it is only marked free for reuse; one never made HV-Fixed is freed."""
    for e in list(sev.hv_fixed):
        if e.pfn != pfn:
            continue
        if e.hv_fixed:
            e.free = True
        else:
            sev.allocator.free_pages(e.pfn, e.order)
            sev.hv_fixed.remove(e)
        return


@traced("kvm")
def __sev_snp_init_locked(sev: SevDevice) -> tuple[int, int]:
    """``__sev_snp_init_locked(&error, max_snp_asid)`` (ciphertext hiding not modelled):
    SNP initialisation of the platform.

    Phases: nothing to do when already initialised (0); -ENODEV without host SNP
    (``cc_platform_has``; the caller then initialises plain SEV only); ``snp_prepare``
    (clear the RMP, set SNP_EN); the range list from the host's e820 (failure: the
    walk's error) plus the HV-Fixed allocations; SNP_INIT_EX with INIT_RMP = 1 and the
    list.  A firmware failure returns -EIO with the status in ``error`` and logs
    "SEV-SNP: SNP_INIT_EX failed rc %d, error %#x"; success marks every HV-Fixed
    allocation HV_FIXED and ``snp_initialized``.  Returns ``(rc, error)``."""
    if sev.snp_initialized:
        return 0, 0
    if not sev.rmptable.host_sev_snp:
        return -errno.ENODEV, 0
    # PREPARE: RMP cleared and SNP enabled on every CPU (delayed-enable series; else at boot).
    rc = snp_prepare(sev.rmptable)
    if rc:
        return rc, 0
    # RANGE LIST: the host's reserved memory and the HV-Fixed allocations.
    rc, ranges = snp_filter_reserved_mem_regions(sev.e820)
    if rc:
        sev.log.append(f"SEV: SNP_INIT_EX failed to walk reserved memory regions, rc {rc}")
        return rc, 0
    snp_add_hv_fixed_pages(sev, ranges)
    sev.snp_range_list = ranges
    # FIRMWARE
    error = int(sev.host.firmware.snp_init_ex(True, ranges))
    if error:
        sev.log.append(f"SEV-SNP: SNP_INIT_EX failed rc {-errno.EIO}, error {error:#x}")
        return -errno.EIO, error
    for e in sev.hv_fixed:
        e.hv_fixed = True
    sev.snp_initialized = True
    return 0, 0


def _snp_reclaim_pages(sev: SevDevice, pfn: int, npages: int) -> int:
    """``snp_reclaim_pages(paddr, npages, locked)``: each page SNP_PAGE_RECLAIM then
    ``rmp_make_shared``; at the first failure the rest are leaked.  Returns 0 or the
    failure (-EIO for a firmware error)."""
    for i in range(npages):
        if sev.host.firmware.snp_page_reclaim((pfn + i) << PAGE_SHIFT):
            ret = -errno.EIO
        else:
            ret = rmp_make_shared(sev.rmptable, pfn + i, PG_LEVEL_4K)  # type: ignore[arg-type]
        if ret:
            snp_leak_pages(_LeakSink(sev), pfn + i, npages - i)  # type: ignore[arg-type]
            return ret
    return 0


@dataclass
class _LeakSink:
    """Model-only: what ``snp_leak_pages`` needs (a log and the page allocator)."""

    sev: SevDevice

    @property
    def allocator(self) -> Any:
        return self.sev.allocator

    def pr(self, msg: str) -> None:
        self.sev.rmptable.pr(msg)


@traced("kvm")
def rmp_mark_pages_firmware(sev: SevDevice, pfn: int, npages: int) -> int:
    """``rmp_mark_pages_firmware(paddr, npages, locked)``: each 4 KiB page into the
    Firmware state with ``rmp_make_private(pfn, 0, PG_LEVEL_4K, 0, true)``; on a failure
    the pages already changed are reclaimed (``snp_reclaim_pages``).  Returns 0 or the
    failure."""
    for i in range(npages):
        rc = rmp_make_private(sev.rmptable, pfn + i, 0, PG_LEVEL_4K, 0, True)  # type: ignore[arg-type]
        if rc:
            _snp_reclaim_pages(sev, pfn, i)
            return rc
    return 0


@traced("kvm")
def sev_fw_alloc(sev: SevDevice, length: int) -> int:
    """``sev_fw_alloc(len)`` -> ``__snp_alloc_firmware_pages(GFP_KERNEL, get_order(len))``:
    pages for the firmware, made firmware-owned in the RMP once SNP is initialised.
    Returns the first PFN, or -1 (NULL) when marking them failed.  Model restriction:
    orders 0 and 9 (one page, 2 MiB)."""
    order = max(0, (length - 1).bit_length() - PAGE_SHIFT)
    pfn = sev.allocator.alloc_pages(order) if order else sev.allocator.alloc_page()
    if sev.snp_initialized and rmp_mark_pages_firmware(sev, pfn, 1 << order):
        return -1
    return pfn


@traced("kvm")
def __sev_platform_init_handle_tmr(sev: SevDevice) -> None:
    """``__sev_platform_init_handle_tmr(sev)``: the SEV-ES TMR, once, of ``SNP_TMR_SIZE``
    when SNP is initialised -- so 512 pages the firmware owns from then on; a failure
    logs "SEV: TMR allocation failed, SEV-ES support unavailable"."""
    if sev.sev_es_tmr >= 0:
        return
    size = SNP_TMR_SIZE if sev.snp_initialized else SNP_TMR_SIZE // 2
    sev.sev_es_tmr = sev_fw_alloc(sev, size)
    if sev.sev_es_tmr < 0:
        sev.log.append("SEV: TMR allocation failed, SEV-ES support unavailable")


# ---- firmware pages of a VM (sev-dev.c v6.11+) ----------------------------------------

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
