# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Early SEV code shared by the decompressor and the kernel: termination, GHCB get/put,
the MSR-protocol page state change, hypervisor features.

Mirrors ``arch/x86/boot/startup/sev-shared.c`` (``sev_es_terminate``, ``get_hv_features``,
``pvalidate_4k_page``, ``__page_state_change``) and ``arch/x86/boot/startup/sev-startup.c``
(``__sev_get_ghcb``, ``__sev_put_ghcb``, ``early_set_pages_state``,
``early_snp_set_memory_private/shared``), v6.16/6.17 (linux-guest.md 1.3, 4.4, 5.1, 7).
``sev_evict_cache`` is the 6.16.x/6.17 inline of ``arch/x86/include/asm/sev.h``
(commit 7b306dfa326f).  The MSR protocol carries one 4 KiB page per VMGEXIT.
"""

from __future__ import annotations

from dataclasses import dataclass

from snpsim.spec.checks import check_enabled
from snpsim.spec.msr_index import MSR_AMD64_SEV_SNP_ENABLED
from snpsim.spec.msr_protocol import (
    GHCB_MSR_HV_FT_REQ,
    GHCB_MSR_HV_FT_RESP,
    GHCB_MSR_PSC_REQ_GFN,
    GHCB_MSR_PSC_RESP,
    GHCB_MSR_PSC_RESP_VAL,
    GHCB_MSR_TERM_REQ,
    GHCB_RESP_CODE,
    GHCB_SEV_TERM_REASON,
)
from snpsim.spec.psc import SNP_PAGE_STATE_PRIVATE, SNP_PAGE_STATE_SHARED
from snpsim.spec.termination import GHCB_TERM_PSC, GHCB_TERM_PVALIDATE, SEV_TERM_SET_LINUX
from snpsim.spec.units import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, RMP_PG_SIZE_4K
from snpsim.trace.record import traced

from .asm_sev import VMGEXIT, pvalidate, sev_es_rd_ghcb_msr, sev_es_wr_ghcb_msr, vc_ghcb_invalidate
from .kernel import (
    GhcbState,
    GuestKernel,
    GuestTermination,
    kernel_caller,
    panic,
    this_cpu,
)

__all__ = [
    "PscDesc",
    "sev_es_terminate",
    "get_hv_features",
    "__sev_get_ghcb",
    "__sev_put_ghcb",
    "sev_evict_cache",
    "sev_evict_cache_per_page",
    "sev_snp_needs_sfw",
    "msr_protocol_exchange",
    "pvalidate_4k_page",
    "__page_state_change",
    "early_set_pages_state",
    "early_snp_set_memory_private",
    "early_snp_set_memory_shared",
]


@dataclass(frozen=True)
class PscDesc:
    """``struct psc_desc`` (sev-startup.c, 6.16+): the operation and the SVSM calling
    area (``ca`` GVA, ``caa_pa``); the model runs at VMPL0 without an SVSM (None/0)."""

    op: int
    ca: int | None = None
    caa_pa: int = 0


@traced("guest")
def sev_es_terminate(kernel: GuestKernel, set: int, reason: int) -> None:
    """``sev_es_terminate(set, reason)`` (startup/sev-shared.c): write
    ``GHCB_MSR_TERM_REQ`` | set[15:12] | reason[23:16] to the GHCB MSR, VMGEXIT, then
    ``hlt`` forever.  Never returns.  The request and the calling kernel function are
    recorded first in ``kernel.terminated`` (the run's outcome)."""
    if kernel.terminated is None:
        kernel.terminated = GuestTermination(set, reason, kernel_caller())
    val = GHCB_MSR_TERM_REQ | GHCB_SEV_TERM_REASON(set, reason)
    sev_es_wr_ghcb_msr(kernel, val)
    VMGEXIT(kernel)
    cpu = this_cpu(kernel)
    while True:
        cpu.hlt()


def msr_protocol_exchange(kernel: GuestKernel, request: int) -> int:
    """Model-only: one GHCB MSR protocol round trip -- ``request`` (u64) into the GHCB
    MSR, VMGEXIT, and the MSR's value once the host resumes the vCPU (the answer)."""
    sev_es_wr_ghcb_msr(kernel, request)
    VMGEXIT(kernel)
    return sev_es_rd_ghcb_msr(kernel)


@traced("guest")
def get_hv_features(kernel: GuestKernel) -> int:
    """``get_hv_features()`` (startup/sev-shared.c): 0 if the negotiated GHCB protocol
    version is below 2; else the MSR exchange 0x080 -> 0x081 and the feature bitmap in
    bits 63:12 of the response (0 if the response code is wrong)."""
    if kernel.ghcb_version < 2:
        return 0  # the request exists from GHCB protocol version 2 on
    answer = msr_protocol_exchange(kernel, GHCB_MSR_HV_FT_REQ)
    return answer >> 12 if GHCB_RESP_CODE(answer) == GHCB_MSR_HV_FT_RESP else 0


@traced("guest")
def __sev_get_ghcb(kernel: GuestKernel, state: GhcbState) -> int:
    """``__sev_get_ghcb(state)`` (sev-startup.c; noinstr.c later): this CPU's GHCB GVA.

    Not active: mark it active, ``state.ghcb`` = None.  Active (nested use): if the backup
    is in use too, clear both flags and panic (the kernel's message, quoted: "Unable to
    handle #VC exception! GHCB and Backup GHCB are already in use"); otherwise mark the
    backup active, point ``state.ghcb`` at it and copy the whole 4 KiB GHCB into it.
    Always returns the same per-CPU page.
    """
    cpu = this_cpu(kernel)
    pcpu = kernel.runtime_data[cpu.vcpu_id]
    if not pcpu.ghcb_active:
        pcpu.ghcb_active = True
        state.ghcb = None
        return pcpu.ghcb_page
    # Nested use (a #VC raised while this CPU's GHCB is held): one level of nesting is
    # absorbed by saving the GHCB to the backup page, which __sev_put_ghcb restores.
    if pcpu.backup_ghcb_active:
        # Two nested users are the limit; a third is fatal.
        pcpu.ghcb_active = False
        pcpu.backup_ghcb_active = False
        panic(kernel, "Unable to handle #VC exception! GHCB and Backup GHCB are already in use")
    pcpu.backup_ghcb_active = True
    state.ghcb = pcpu.backup_ghcb
    cpu.write(pcpu.backup_ghcb, cpu.read(pcpu.ghcb_page, PAGE_SIZE))
    return pcpu.ghcb_page


@traced("guest")
def __sev_put_ghcb(kernel: GuestKernel, state: GhcbState) -> None:
    """``__sev_put_ghcb(state)``: restore the GHCB from the backup when nested (and free
    the backup); otherwise invalidate it (``vc_ghcb_invalidate``) and mark it
    inactive."""
    cpu = this_cpu(kernel)
    pcpu = kernel.runtime_data[cpu.vcpu_id]
    if state.ghcb is None:
        # Outermost release: a GHCB left with valid fields could be replayed by a
        # VMGEXIT the kernel did not issue.
        vc_ghcb_invalidate(kernel, pcpu.ghcb_page)
        pcpu.ghcb_active = False
        return
    cpu.write(pcpu.ghcb_page, cpu.read(state.ghcb, PAGE_SIZE))
    pcpu.backup_ghcb_active = False
    state.ghcb = None


def sev_snp_needs_sfw(kernel: GuestKernel) -> bool:
    """``sev_snp_needs_sfw`` (early flag, 6.16.x/6.17): the cache-eviction mitigation is
    needed, i.e. CPUID 0x8000001F EBX[31] (COHERENCY_SFW_NO) is clear.  Always False
    under a kernel profile that predates the mitigation."""
    return kernel.profile.sev_evict_cache and not kernel.config.coherency_sfw_no


#: The bytes of each 4 KiB page ``sev_evict_cache`` loads: the first and the last.
_EVICT_OFFSETS = (0, PAGE_SIZE - 1)


@traced("guest")
def sev_evict_cache(kernel: GuestKernel, va: int, npages: int) -> None:
    """``sev_evict_cache(va, npages)`` (asm/sev.h, 7b306dfa326f): for each 4 KiB page at
    GVA ``va``, read the first and the last byte through the guest key (C=1), which
    evicts the page's lines from the cache on non-coherent parts.  The values are
    discarded, so the loads are one ``touch_pages`` over the range: the same checks and
    faults, page by page, as :func:`sev_evict_cache_per_page` (tests/guest prove it)."""
    this_cpu(kernel).touch_pages(va, npages, _EVICT_OFFSETS)


def sev_evict_cache_per_page(kernel: GuestKernel, va: int, npages: int) -> None:
    """Reference for :func:`sev_evict_cache`: the two one-byte reads per page, one by
    one, as the C loop does them (model-only; used by the differential test)."""
    cpu = this_cpu(kernel)
    for i in range(npages):
        page = va + i * PAGE_SIZE
        cpu.read(page, 1)
        cpu.read(page + PAGE_SIZE - 1, 1)


@traced("guest")
def pvalidate_4k_page(kernel: GuestKernel, vaddr: int, paddr: int, validate: bool,
                      caa: int | None = None, caa_pa: int = 0) -> None:
    """``pvalidate_4k_page(vaddr, paddr, validate, caa, caa_pa)`` (startup/sev-shared.c):
    PVALIDATE one 4 KiB page at GVA ``vaddr``; any non-zero result (including 255,
    CF = 1) terminates with (SEV_TERM_SET_LINUX, GHCB_TERM_PVALIDATE) without a WARN.
    After validating, ``sev_evict_cache(vaddr, 1)`` when ``sev_snp_needs_sfw``.  The
    SVSM branch (``snp_vmpl`` != 0) is not modelled."""
    if (pvalidate(kernel, vaddr, RMP_PG_SIZE_4K, validate)
            and check_enabled("pvalidate_4k_page:failure")):
        sev_es_terminate(kernel, SEV_TERM_SET_LINUX, GHCB_TERM_PVALIDATE)
    if validate and sev_snp_needs_sfw(kernel):
        sev_evict_cache(kernel, vaddr, 1)


def _msr_psc_exchange(kernel: GuestKernel, paddr: int, op: int) -> bool:
    """Model-only: one MSR-protocol page state request for the 4 KiB page at GPA
    ``paddr``; True when the host answered with GHCB_MSR_PSC_RESP and no error."""
    answer = msr_protocol_exchange(kernel, GHCB_MSR_PSC_REQ_GFN(paddr >> PAGE_SHIFT, op))
    ok = GHCB_RESP_CODE(answer) == GHCB_MSR_PSC_RESP and not GHCB_MSR_PSC_RESP_VAL(answer)
    if ok or not check_enabled("__page_state_change:response"):
        return True
    kernel.warn(f"MSR PSC failed: response {answer:#x} for gpa {paddr:#x}")
    return False


@traced("guest")
def __page_state_change(kernel: GuestKernel, vaddr: int, paddr: int, desc: PscDesc) -> None:
    """``__page_state_change(vaddr, paddr, desc)`` (startup/sev-shared.c): one 4 KiB page
    over the GHCB MSR protocol.  Shared: rescind validation first.  Save the GHCB MSR,
    send ``GHCB_MSR_PSC_REQ_GFN(paddr >> 12, op)`` (0x014), VMGEXIT; a response code other
    than 0x015 or a non-zero error in bits 63:32 terminates with (1, GHCB_TERM_PSC);
    restore the MSR.  Private: validate afterwards.  ``vaddr`` is a GVA, ``paddr`` a GPA."""
    # RESCIND (shared)
    if desc.op == SNP_PAGE_STATE_SHARED:
        pvalidate_4k_page(kernel, vaddr, paddr, False, desc.ca, desc.caa_pa)
    # REQUEST: the MSR is borrowed for the message, so whatever it held (the GHCB's GPA
    # once one is registered) is put back afterwards.
    saved_msr = sev_es_rd_ghcb_msr(kernel)
    if not _msr_psc_exchange(kernel, paddr, desc.op):
        sev_es_terminate(kernel, SEV_TERM_SET_LINUX, GHCB_TERM_PSC)
    sev_es_wr_ghcb_msr(kernel, saved_msr)
    # VALIDATE (private)
    if desc.op == SNP_PAGE_STATE_PRIVATE:
        pvalidate_4k_page(kernel, vaddr, paddr, True, desc.ca, desc.caa_pa)


@traced("guest")
def early_set_pages_state(kernel: GuestKernel, vaddr: int, paddr: int, npages: int, desc: PscDesc) -> None:
    """``early_set_pages_state(vaddr, paddr, npages, desc)`` (startup/sev-startup.c): align
    GVA ``vaddr`` and GPA ``paddr`` down to 4 KiB and change ``npages`` 4 KiB pages one
    MSR-protocol exit each (no 2M operations)."""
    va = vaddr & PAGE_MASK
    first_gpa = paddr & PAGE_MASK
    for gpa in range(first_gpa, first_gpa + (npages << PAGE_SHIFT), PAGE_SIZE):
        __page_state_change(kernel, va, gpa, desc)
        va += PAGE_SIZE


def _snp_enabled(kernel: GuestKernel) -> bool:
    """Model-only: the SEV status MSR reports SNP (MSR_AMD64_SEV_SNP_ENABLED)."""
    return bool(kernel.sev_status & MSR_AMD64_SEV_SNP_ENABLED)


@traced("guest")
def early_snp_set_memory_private(kernel: GuestKernel, vaddr: int, paddr: int, npages: int) -> None:
    """``early_snp_set_memory_private(vaddr, paddr, npages)``: only when the SEV status MSR
    has SNP (bit 2, an open-coded check); PSC private then validate, per page, MSR
    protocol."""
    if not _snp_enabled(kernel):
        return
    early_set_pages_state(kernel, vaddr, paddr, npages, PscDesc(SNP_PAGE_STATE_PRIVATE))


@traced("guest")
def early_snp_set_memory_shared(kernel: GuestKernel, vaddr: int, paddr: int, npages: int) -> None:
    """``early_snp_set_memory_shared(vaddr, paddr, npages)``: only with SNP; rescind then
    PSC shared, per page, MSR protocol."""
    if not _snp_enabled(kernel):
        return
    early_set_pages_state(kernel, vaddr, paddr, npages, PscDesc(SNP_PAGE_STATE_SHARED))
