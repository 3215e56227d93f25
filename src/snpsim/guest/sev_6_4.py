# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The v5.19-6.4 structure of the runtime page state change, installed by the ``"6.4"``
kernel profile as overrides (:func:`snpsim.guest.variants.resolve_profile`).

Mirrors ``arch/x86/kernel/sev.c`` of v5.19-6.4 (linux-guest.md 3.1, 4.2 "v5.19 - 6.4",
5.2 last bullet, 12: before commits 69dcb1e3bbbe, 15d9088779b8 and 7006b75592fe of v6.5):

* ``snp_set_memory_shared(vaddr, npages)`` = ``pvalidate_pages(vaddr, npages, false)``
  **then** ``set_pages_state(.., SHARED)``; ``snp_set_memory_private`` =
  ``set_pages_state(.., PRIVATE)`` **then** ``pvalidate_pages(vaddr, npages, true)``;
* ``pvalidate_pages(vaddr, npages, validate)`` takes a virtual range and issues 4 KiB
  PVALIDATEs only, through the caller's address; any non-zero result WARNs "Failed to
  validate address 0x%lx ret %d" and terminates with (SEV_TERM_SET_LINUX,
  GHCB_TERM_PVALIDATE);
* ``__set_pages_state`` builds only 4K entries, at most ``VMGEXIT_PSC_MAX_ENTRY`` = 253
  per descriptor (2032 bytes, exactly the GHCB shared buffer), and the PSC takes the
  per-CPU GHCB itself (``local_irq_save`` + ``__sev_get_ghcb``; NULL -> failure), as
  5.19's ``vmgexit_psc(desc)`` did; a failure terminates with GHCB_TERM_PSC.  No
  PVALIDATE inside, no cache eviction.

What stays 6.16/6.17-shaped under this profile (documented in docs/guest.md): the
``vmgexit_psc`` loop body (6.17 starts with ``vc_ghcb_invalidate``; 5.19 did not --
whether 6.4 did is unconfirmed), the MSR-protocol fallback of ``set_pages_state`` when
``boot_ghcb`` is NULL (6.5+), the early path (``early_set_pages_state`` with per-page
PVALIDATE, 6.11+; 6.4 did PSC only and validated in ``early_snp_set_memory_*``), the
descriptor living on the per-CPU "stack" page (6.4: ``kmalloc``, panic on failure), the
GHCB set-up (``sev_cfg.ghcbs_initialized``) and the int-returning CPA hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snpsim.spec.psc import (
    SNP_PAGE_STATE_PRIVATE,
    SNP_PAGE_STATE_SHARED,
    PscEntry,
    PscHdr,
)
from snpsim.spec.termination import GHCB_TERM_PSC, GHCB_TERM_PVALIDATE, SEV_TERM_SET_LINUX
from snpsim.spec.units import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, RMP_PG_SIZE_4K
from snpsim.trace.record import traced

from .asm_sev import pvalidate
from .kernel import GhcbState, GuestKernel, __pa, this_cpu
from .sev_startup import __sev_get_ghcb, __sev_put_ghcb, sev_es_terminate

__all__ = ["pvalidate_pages", "OVERRIDES_6_4"]


@traced("guest")
def pvalidate_pages(kernel: GuestKernel, vaddr: int, npages: int, validate: bool) -> None:
    """v5.19-6.4 ``pvalidate_pages(vaddr, npages, validate)`` (kernel/sev.c): 4 KiB
    PVALIDATE of each of ``npages`` pages from GVA ``vaddr`` (aligned down); any non-zero
    result (255 for CF = 1 included) WARNs "Failed to validate address 0x%lx ret %d" and
    terminates with (SEV_TERM_SET_LINUX, GHCB_TERM_PVALIDATE).  No 2M, no fallback."""
    first = vaddr & PAGE_MASK
    for va in range(first, first + npages * PAGE_SIZE, PAGE_SIZE):
        rc = pvalidate(kernel, va, RMP_PG_SIZE_4K, validate)
        if rc:
            kernel.warn(f"Failed to validate address {va:#x} ret {rc}")
            sev_es_terminate(kernel, SEV_TERM_SET_LINUX, GHCB_TERM_PVALIDATE)


def _set_pages_state_6_4(kernel: GuestKernel, data: int, vaddr: int, vaddr_end: int, op: int) -> int:
    """v5.19-6.4 ``__set_pages_state(data, vaddr, vaddr_end, op)``: up to 253 4K entries
    from GVA ``vaddr``, then the 5.19-shaped ``vmgexit_psc(desc)`` (GHCB taken inside,
    IRQs off); failure -> terminate (1, GHCB_TERM_PSC).  Returns the next GVA."""
    from .sev_core import snp_psc_desc_size, vmgexit_psc

    cpu = this_cpu(kernel)

    # BUILD ENTRIES: 4K only, one per page of the direct map.
    count = min(-(-(vaddr_end - vaddr) // PAGE_SIZE), kernel.profile.vmgexit_psc_max_entry)
    entries = [PscEntry(cur_page=0, gfn=__pa(kernel, vaddr + k * PAGE_SIZE) >> PAGE_SHIFT,
                        operation=op, pagesize=RMP_PG_SIZE_4K) for k in range(max(count, 0))]
    hdr = PscHdr(cur_entry=0, end_entry=max(len(entries) - 1, 0))
    body = hdr.encode() + b"".join(e.encode_bytes() for e in entries)
    cpu.write(data, body.ljust(snp_psc_desc_size(kernel), b"\0"))

    # VMGEXIT: the GHCB is taken and released around the exchange with interrupts off;
    # unlike 6.5+, a failure is acted on only after the GHCB is released.
    irqs_were_off = kernel.irqs_disabled.get(cpu.vcpu_id, False)
    kernel.irqs_disabled[cpu.vcpu_id] = True
    per_cpu = kernel.sev_cfg.ghcbs_initialized
    state = GhcbState()
    ghcb = __sev_get_ghcb(kernel, state) if per_cpu else kernel.boot_ghcb
    failed = ghcb is None or bool(vmgexit_psc(kernel, ghcb, data))
    if per_cpu:
        __sev_put_ghcb(kernel, state)
    kernel.irqs_disabled[cpu.vcpu_id] = irqs_were_off
    if failed:
        sev_es_terminate(kernel, SEV_TERM_SET_LINUX, GHCB_TERM_PSC)
    return vaddr + len(entries) * PAGE_SIZE


def _snp_set_memory_shared_6_4(kernel: GuestKernel, vaddr: int, npages: int) -> None:
    """v5.19-6.4 ``snp_set_memory_shared``: rescind (``pvalidate_pages(.., false)``)
    before the PSC to shared."""
    from .sev_core import _snp, set_pages_state

    if not _snp(kernel):
        return
    pvalidate_pages(kernel, vaddr, npages, False)
    set_pages_state(kernel, vaddr, npages, SNP_PAGE_STATE_SHARED)


def _snp_set_memory_private_6_4(kernel: GuestKernel, vaddr: int, npages: int) -> None:
    """v5.19-6.4 ``snp_set_memory_private``: the PSC to private, then
    ``pvalidate_pages(.., true)``."""
    from .sev_core import _snp, set_pages_state

    if not _snp(kernel):
        return
    set_pages_state(kernel, vaddr, npages, SNP_PAGE_STATE_PRIVATE)
    pvalidate_pages(kernel, vaddr, npages, True)


def _snp_accept_memory_6_4(kernel: GuestKernel, start: int, end: int) -> None:
    """Model choice: unaccepted memory arrived in v6.5 (6c3211796326), so a 6.4 kernel
    never accepts memory; under this profile acceptance is the 6.4 private conversion of
    the direct-map range (PSC private, then 4 KiB ``pvalidate_pages``).  GPAs
    ``[start, end)``."""
    from .kernel import __va

    _snp_set_memory_private_6_4(kernel, __va(kernel, start), (end - start) >> PAGE_SHIFT)


#: The override table of the 6.4 profile.
OVERRIDES_6_4: dict[str, Callable[..., Any]] = {
    "snp_accept_memory": _snp_accept_memory_6_4,
    "__set_pages_state": _set_pages_state_6_4,
    "snp_set_memory_shared": _snp_set_memory_shared_6_4,
    "snp_set_memory_private": _snp_set_memory_private_6_4,
}
