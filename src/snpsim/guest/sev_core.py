# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The runtime page state change through the GHCB: ``snp_set_memory_shared/private``,
``set_pages_state``, ``__set_pages_state``, ``pvalidate_pages``, ``vmgexit_psc``.

Mirrors ``arch/x86/coco/sev/core.c`` at 00d25566 (v6.16/6.17 development):
``snp_set_memory_shared``, ``snp_set_memory_private``, ``snp_accept_memory``,
``set_pages_state``, ``__set_pages_state``, ``pvalidate_pages``, ``pval_pages``,
``__pval_terminate``, ``vmgexit_psc`` (linux-guest.md 3, 4.2, 5.2, 8.1); and the SNP
guest request path ``alloc_shared_pages`` and ``snp_issue_guest_request`` (v6.13+ core.c;
hardware-and-ghcb.md 7, SVM_VMGEXIT_GUEST_REQUEST); and the AP bring-up of v6.17 core.c
(``snp_alloc_vmsa_page``, ``snp_set_vmsa``, ``snp_cleanup_vmsa``, ``vmgexit_ap_control``,
``wakeup_cpu_via_vmgexit``; the BSP's loop is :mod:`snpsim.guest.smp`).  The on-stack
``struct snp_psc_desc`` lives on the CPU's kernel stack (``kernel.psc_desc_page``: a
page the CPU has written since its entry, so filling the descriptor takes no #NPF, as
on Linux) and is copied into the GHCB shared buffer at 0x800 for each VMGEXIT.

Livelock (model-only, documented): Linux has no forward-progress check in
``vmgexit_psc`` -- a hypervisor that answers success without advancing ``cur_entry``, or
that puts ``cur_entry`` back to where the guest started, makes the guest re-issue the
request forever with interrupts off.  Each answer is reported to the platform's progress
watcher (loop ``vmgexit_psc``, state: the whole PSC buffer after the answer); the same
buffer ``livelock_repeats`` times in a row raises :class:`snpsim.trace.progress.Livelock`,
which stops the VM instead of hanging the simulation.  Any change of the buffer (one
more entry done, one more page of a 2M entry) is progress.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from snpsim.spec.addr import GVA
from snpsim.spec.checks import check_enabled
from snpsim.spec.exit_codes import (
    SVM_VMGEXIT_AP_CREATE,
    SVM_VMGEXIT_AP_CREATION,
    SVM_VMGEXIT_AP_DESTROY,
    SVM_VMGEXIT_GUEST_REQUEST,
    SVM_VMGEXIT_PSC,
)
from snpsim.spec.ghcb import GHCB_SHARED_BUF_OFFSET, GHCB_SHARED_BUF_SIZE
from snpsim.spec.msr_index import MSR_AMD64_SEV_SNP_ENABLED
from snpsim.spec.msr_protocol import GHCB_HV_FT_SNP_AP_CREATION
from snpsim.spec.psc import (
    PSC_ENTRY_SIZE,
    PSC_HDR_SIZE,
    SNP_PAGE_STATE_PRIVATE,
    SNP_PAGE_STATE_SHARED,
    PscEntry,
    PscHdr,
    SnpPscDesc,
)
from snpsim.spec.psp_sev import SEV_RET_NO_FW_CALL
from snpsim.spec.rmp import PVALIDATE_FAIL_SIZEMISMATCH, RMPADJUST_VMSA_PAGE_BIT
from snpsim.spec.sev_guest import SNP_GUEST_VMM_ERR, SNP_GUEST_VMM_ERR_BUSY
from snpsim.spec.termination import GHCB_TERM_PSC, GHCB_TERM_PVALIDATE, SEV_TERM_SET_LINUX
from snpsim.spec.units import (
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_SIZE,
    PTRS_PER_PMD,
    RMP_PG_SIZE_2M,
    RMP_PG_SIZE_4K,
)
from snpsim.spec.vmsa import (
    AP_INIT_CR0_DEFAULT,
    AP_INIT_CS_LIMIT,
    AP_INIT_DR6_DEFAULT,
    AP_INIT_GPAT_DEFAULT,
    AP_INIT_MXCSR_DEFAULT,
    AP_INIT_RFLAGS_DEFAULT,
    AP_INIT_X87_FCW_DEFAULT,
    AP_INIT_X87_FTW_DEFAULT,
    AP_INIT_XCR0_DEFAULT,
    DR7_RESET_VALUE,
    EFER_SVME,
    INIT_CS_ATTRIBS,
    VMSA_FIELDS,
)
from snpsim.trace.record import traced

from .asm_sev import (
    VMGEXIT,
    ghcb_field_is_valid,
    ghcb_get_field,
    ghcb_set_field,
    pvalidate,
    rmpadjust,
    sev_es_wr_ghcb_msr,
    vc_ghcb_invalidate,
)
from .kernel import (
    GhcbState,
    GuestKernel,
    __pa,
    __va,
    overridable,
    pfn_to_kaddr,
    this_cpu,
)
from .sev_startup import (
    PscDesc,
    __sev_get_ghcb,
    __sev_put_ghcb,
    early_set_pages_state,
    sev_es_terminate,
    sev_evict_cache,
    sev_snp_needs_sfw,
)
from .sev_vc import EsEmCtxt, sev_es_ghcb_hv_call
from .vmalloc import is_vmalloc_addr, vmalloc_to_pfn

__all__ = [
    "snp_psc_desc_size",
    "read_psc_desc",
    "pval_pages",
    "__pval_terminate",
    "pvalidate_pages",
    "vmgexit_psc",
    "__set_pages_state",
    "set_pages_state",
    "snp_set_memory_shared",
    "snp_set_memory_private",
    "snp_accept_memory",
    "SnpReqData",
    "SnpGuestReq",
    "alloc_shared_pages",
    "snp_issue_guest_request",
    "TRAMPOLINE_START",
    "SEV_ES_TRAMPOLINE_START",
    "snp_alloc_vmsa_page",
    "snp_set_vmsa",
    "snp_cleanup_vmsa",
    "vmgexit_ap_control",
    "wakeup_cpu_via_vmgexit",
]


def _snp(kernel: GuestKernel) -> bool:
    """``cc_platform_has(CC_ATTR_GUEST_SEV_SNP)``."""
    return bool(kernel.sev_status & MSR_AMD64_SEV_SNP_ENABLED)


def snp_psc_desc_size(kernel: GuestKernel) -> int:
    """``sizeof(struct snp_psc_desc)``: 8 + VMGEXIT_PSC_MAX_ENTRY * 8 bytes (520 for 64
    entries, 2032 for 253)."""
    return PSC_HDR_SIZE + kernel.profile.vmgexit_psc_max_entry * PSC_ENTRY_SIZE


def read_psc_desc(kernel: GuestKernel, desc: int) -> SnpPscDesc:
    """Model-only: decode the ``struct snp_psc_desc`` at GVA ``desc`` (header plus the
    entries up to ``end_entry``) with the spec codec."""
    cpu = this_cpu(kernel)
    hdr = PscHdr.decode(cpu.read(desc, PSC_HDR_SIZE))
    n = min(hdr.end_entry + 1, kernel.profile.vmgexit_psc_max_entry)
    raw = cpu.read(desc + PSC_HDR_SIZE, n * PSC_ENTRY_SIZE)
    return SnpPscDesc.decode(hdr.encode() + raw)


def _filled_entries(kernel: GuestKernel, desc: int) -> list[PscEntry]:
    """Model-only: the entries the guest filled in the descriptor at GVA ``desc``
    (indexes 0..``end_entry``), in order."""
    d = read_psc_desc(kernel, desc)
    return d.entries[: d.hdr.end_entry + 1]


def _rmp_size(entry: PscEntry) -> int:
    """Model-only: the PVALIDATE page size (RMP_PG_SIZE_*) matching a PSC entry."""
    return RMP_PG_SIZE_2M if entry.pagesize else RMP_PG_SIZE_4K


@traced("guest")
def __pval_terminate(kernel: GuestKernel, pfn: int, action: bool, page_size: int, ret: int,
                     svsm_ret: int) -> None:
    """``__pval_terminate(pfn, action, page_size, ret, svsm_ret)``: logs the kernel's
    WARN, whose text starts "PVALIDATE failure: " (core.c), then
    ``sev_es_terminate(SEV_TERM_SET_LINUX, GHCB_TERM_PVALIDATE)``.  Never returns."""
    kernel.warn(f"PVALIDATE failure: pfn: {pfn:#x}, action: {int(action)}, size: {page_size}, "
                f"ret: {ret}, svsm_ret: {svsm_ret:#x}")
    sev_es_terminate(kernel, SEV_TERM_SET_LINUX, GHCB_TERM_PVALIDATE)


def _pvalidate_2m_span_by_4k(kernel: GuestKernel, vaddr: int, first_pfn: int,
                             validate: bool) -> None:
    """Model-only: PVALIDATE the 512 4 KiB pages of the 2 MiB span at GVA ``vaddr`` one
    by one, after the hardware refused the span as a whole because the RMP holds it as
    4K pages.  The first failure is fatal (``__pval_terminate`` with that page's PFN)."""
    for k in range(PTRS_PER_PMD):
        rc = pvalidate(kernel, vaddr + k * PAGE_SIZE, RMP_PG_SIZE_4K, validate)
        if rc and check_enabled("pval_pages:failure"):
            __pval_terminate(kernel, first_pfn + k, validate, RMP_PG_SIZE_4K, rc, 0)


@traced("guest")
@overridable
def pval_pages(kernel: GuestKernel, desc: int) -> None:
    """``pval_pages(desc)`` (VMPL0): PVALIDATE entries 0..end_entry of the descriptor at
    GVA ``desc`` through the direct-map address of each GFN (validate when the operation
    is PRIVATE).  A 2M entry answered FAIL_SIZEMISMATCH (6) is retried as 512 x 4K; any
    other failure, including 255 (CF = 1), goes to ``__pval_terminate``."""
    for entry in _filled_entries(kernel, desc):
        want_valid = entry.operation == SNP_PAGE_STATE_PRIVATE
        size = _rmp_size(entry)
        va = pfn_to_kaddr(kernel, entry.gfn)
        rc = pvalidate(kernel, va, size, want_valid)
        if rc == 0:
            continue
        # The RMP may hold a 2 MiB span as 4K pages (after a PSMASH or a partial
        # conversion): PVALIDATE then reports a size mismatch and the span is
        # retried page by page.  Every other failure ends the guest.
        if size == RMP_PG_SIZE_2M and rc == PVALIDATE_FAIL_SIZEMISMATCH:
            _pvalidate_2m_span_by_4k(kernel, va, entry.gfn, want_valid)
        elif check_enabled("pval_pages:failure"):
            __pval_terminate(kernel, entry.gfn, want_valid, size, rc, 0)


@traced("guest")
def pvalidate_pages(kernel: GuestKernel, desc: int) -> None:
    """``pvalidate_pages(desc)``: ``pval_pages`` (the SVSM variant for VMPL > 0 is not
    modelled), then, unless X86_FEATURE_COHERENCY_SFW_NO, ``sev_evict_cache`` over every
    PRIVATE entry (512 pages for 2M, 1 for 4K)."""
    pval_pages(kernel, desc)
    # The eviction is the mitigation for CPUs whose caches are not coherent across a
    # page's change to private; CPUs that report COHERENCY_SFW_NO skip it, and pages
    # going shared never need it.
    if not sev_snp_needs_sfw(kernel):
        return
    for entry in _filled_entries(kernel, desc):
        if entry.operation != SNP_PAGE_STATE_PRIVATE:
            continue
        npages = PTRS_PER_PMD if entry.pagesize else 1
        sev_evict_cache(kernel, pfn_to_kaddr(kernel, entry.gfn), npages)


def _psc_fail(kernel: GuestKernel, msg: str) -> int:
    """Model-only: log ``msg`` as the kernel's WARN and give the failure result (1)."""
    kernel.warn(msg)
    return 1


@traced("guest")
def vmgexit_psc(kernel: GuestKernel, ghcb: int, desc: int) -> int:
    """``vmgexit_psc(ghcb, desc)`` (core.c): invalidate the GHCB, copy the descriptor at
    GVA ``desc`` into the shared buffer (GHCB + 0x800), then while ``cur_entry <=
    end_entry``: ``sw_scratch`` = GPA of the buffer, ``sev_es_ghcb_hv_call(SVM_VMGEXIT_PSC,
    0, 0)``, and check the answer as Linux does.  The three WARNs (core.c, quoted with
    their format): a non-OK call or a non-zero ``sw_exit_info_2`` ("SNP: PSC failed
    ret=%d exit_info_2=%llx"), a non-zero header ``reserved`` ("Reserved bit is set in
    the PSC header"), ``end_entry`` grown or ``cur_entry`` below its initial value ("SNP:
    PSC processing going backward").  Returns 0, or 1 after such a WARN (the caller
    terminates)."""
    cpu = this_cpu(kernel)
    desc_size = snp_psc_desc_size(kernel)

    # COPY IN: the host reads and updates the request in the GHCB's shared buffer, so
    # the guest keeps its own copy untouched and looks only at the buffer from here on.
    vc_ghcb_invalidate(kernel, ghcb)
    buf = ghcb + GHCB_SHARED_BUF_OFFSET
    cpu.write(buf, cpu.read(desc, min(GHCB_SHARED_BUF_SIZE, desc_size)))
    hdr = PscHdr.decode(cpu.read(buf, PSC_HDR_SIZE))
    first_cur, first_end = hdr.cur_entry, hdr.end_entry

    ctxt = EsEmCtxt(cpu.regs)
    watcher = cpu.progress
    watcher.progress("vmgexit_psc", cpu.vcpu_id)
    # EXCHANGE: one VMGEXIT per pass.  A host is allowed to resume the vCPU with only
    # some entries done (hardware-and-ghcb.md 5), so the same buffer goes back until
    # the host's cur_entry is past end_entry.
    while hdr.cur_entry <= hdr.end_entry:
        ghcb_set_field(kernel, ghcb, "sw_scratch", __pa(kernel, buf))
        ret = sev_es_ghcb_hv_call(kernel, ghcb, ctxt, SVM_VMGEXIT_PSC, 0, 0)

        # CHECK THE ANSWER: a host-reported error, a header the host corrupted, or
        # indexes that moved the wrong way all end the conversion.
        host_error = ghcb_get_field(kernel, ghcb, "sw_exit_info_2")
        if ((ret and check_enabled("vmgexit_psc:result"))
                or (host_error and check_enabled("vmgexit_psc:exit_info_2"))):
            return _psc_fail(kernel, f"SNP: PSC failed ret={ret} exit_info_2={host_error:x}")
        hdr = PscHdr.decode(cpu.read(buf, PSC_HDR_SIZE))
        if hdr.reserved and check_enabled("vmgexit_psc:reserved"):
            return _psc_fail(kernel, "Reserved bit is set in the PSC header")
        if ((hdr.end_entry > first_end or hdr.cur_entry < first_cur)
                and check_enabled("vmgexit_psc:going-backward")):
            return _psc_fail(kernel, f"SNP: PSC processing going backward, end_entry {first_end} "
                                     f"(got {hdr.end_entry}) cur_entry {first_cur} (got {hdr.cur_entry})")

        # PROGRESS (model-only): an answer that leaves the whole buffer as the last one
        # did is a pass with no progress; the watcher ends the run after enough of them.
        if hdr.cur_entry <= hdr.end_entry:
            watcher.watch("vmgexit_psc", cpu.vcpu_id, cpu.read(buf, desc_size),
                          lambda h=hdr: f"the host answers the PSC request without progress "
                                        f"(cur_entry {h.cur_entry}, end_entry {h.end_entry})")
    watcher.progress("vmgexit_psc", cpu.vcpu_id)
    return 0


def _next_psc_entry(kernel: GuestKernel, vaddr: int, vaddr_end: int, op: int) -> tuple[PscEntry, int]:
    """Model-only: the PSC entry for the page at GVA ``vaddr`` and the GVA after it.

    The entry covers 2 MiB when the profile allows large entries, ``vaddr`` is a
    direct-map (not vmalloc) address on a 2 MiB boundary and the range still holds 2 MiB;
    otherwise 4 KiB.  A vmalloc page's frame comes from its own PTE, since it is not
    physically contiguous with its neighbours."""
    if is_vmalloc_addr(vaddr):
        gfn, large_ok = vmalloc_to_pfn(kernel, vaddr), False
    else:
        gfn, large_ok = __pa(kernel, vaddr) >> PAGE_SHIFT, kernel.profile.psc_2m_entries
    if large_ok and vaddr % PMD_SIZE == 0 and vaddr_end - vaddr >= PMD_SIZE:
        return PscEntry(cur_page=0, gfn=gfn, operation=op, pagesize=RMP_PG_SIZE_2M), vaddr + PMD_SIZE
    return PscEntry(cur_page=0, gfn=gfn, operation=op, pagesize=RMP_PG_SIZE_4K), vaddr + PAGE_SIZE


@traced("guest")
@overridable
def __set_pages_state(kernel: GuestKernel, data: int, vaddr: int, vaddr_end: int, op: int) -> int:
    """``__set_pages_state(data, vaddr, vaddr_end, op)`` (core.c): one chunk of at most
    VMGEXIT_PSC_MAX_ENTRY entries built in the descriptor at GVA ``data`` -- a 2M entry
    when ``vaddr`` is not a vmalloc address, is 2 MiB aligned and at least 2 MiB remain,
    else 4K (a vmalloc address's PFN comes from ``vmalloc_to_pfn``) -- then rescind
    (shared) / PSC / validate (private).  A PSC failure or a missing GHCB terminates with
    (SEV_TERM_SET_LINUX, GHCB_TERM_PSC).  Returns the GVA where the next chunk starts."""
    cpu = this_cpu(kernel)

    # BUILD ENTRIES: as many as one descriptor holds, stopping at the end of the range.
    entries: list[PscEntry] = []
    while vaddr < vaddr_end and len(entries) < kernel.profile.vmgexit_psc_max_entry:
        entry, vaddr = _next_psc_entry(kernel, vaddr, vaddr_end, op)
        entries.append(entry)
    hdr = PscHdr(cur_entry=0, end_entry=max(len(entries) - 1, 0), reserved=0)
    body = hdr.encode() + b"".join(e.encode_bytes() for e in entries)
    cpu.write(data, body.ljust(snp_psc_desc_size(kernel), b"\0"))

    # RESCIND VALIDATION (shared): PVALIDATE(0) comes first, so no page the guest
    # still counts as validated is ever writable by the host.
    if op == SNP_PAGE_STATE_SHARED:
        pvalidate_pages(kernel, data)

    # VMGEXIT: with interrupts off, on the per-CPU GHCB once those exist (else the boot
    # GHCB).  No GHCB, or any failed exchange, ends the guest.
    irqs_were_off = kernel.irqs_disabled.get(cpu.vcpu_id, False)
    kernel.irqs_disabled[cpu.vcpu_id] = True
    per_cpu = kernel.sev_cfg.ghcbs_initialized
    state = GhcbState()
    ghcb: int | None = __sev_get_ghcb(kernel, state) if per_cpu else kernel.boot_ghcb
    if ghcb is None or vmgexit_psc(kernel, ghcb, data):
        sev_es_terminate(kernel, SEV_TERM_SET_LINUX, GHCB_TERM_PSC)
    if per_cpu:
        __sev_put_ghcb(kernel, state)
    kernel.irqs_disabled[cpu.vcpu_id] = irqs_were_off

    # VALIDATE (private): the RMP now assigns the pages to the guest but not yet as
    # validated; PVALIDATE makes them usable.
    if op == SNP_PAGE_STATE_PRIVATE:
        pvalidate_pages(kernel, data)
    return vaddr


@traced("guest")
def set_pages_state(kernel: GuestKernel, vaddr: int, npages: int, op: int) -> None:
    """``set_pages_state(vaddr, npages, op)``: without ``boot_ghcb`` use the MSR protocol
    (``early_set_pages_state``, one page per exit); else align GVA ``vaddr`` down and call
    ``__set_pages_state`` chunk by chunk over ``npages`` 4 KiB pages."""
    if kernel.boot_ghcb is None:
        # Too early for a GHCB: fall back to one page per MSR-protocol exit.
        early_set_pages_state(kernel, vaddr, __pa(kernel, vaddr), npages, PscDesc(op))
        return
    scratch = kernel.psc_desc_page[this_cpu(kernel).vcpu_id]
    start = vaddr & PAGE_MASK
    stop = start + npages * PAGE_SIZE
    while start < stop:
        start = __set_pages_state(kernel, scratch, start, stop, op)


@traced("guest")
@overridable
def snp_set_memory_shared(kernel: GuestKernel, vaddr: int, npages: int) -> None:
    """``snp_set_memory_shared(vaddr, npages)``: SNP only; ``set_pages_state(.., SHARED)``."""
    if not _snp(kernel):
        return
    set_pages_state(kernel, vaddr, npages, SNP_PAGE_STATE_SHARED)


@traced("guest")
@overridable
def snp_set_memory_private(kernel: GuestKernel, vaddr: int, npages: int) -> None:
    """``snp_set_memory_private(vaddr, npages)``: SNP only; ``set_pages_state(.., PRIVATE)``."""
    if not _snp(kernel):
        return
    set_pages_state(kernel, vaddr, npages, SNP_PAGE_STATE_PRIVATE)


@traced("guest")
@overridable
def snp_accept_memory(kernel: GuestKernel, start: int, end: int) -> None:
    """``snp_accept_memory(start, end)`` (core.c): GPAs ``[start, end)``; SNP only;
    ``set_pages_state(__va(start), (end - start) >> 12, PRIVATE)``: PSC private then
    PVALIDATE (2M entries where aligned)."""
    if not _snp(kernel):
        return
    vaddr = __va(kernel, start)
    npages = (end - start) >> PAGE_SHIFT
    set_pages_state(kernel, vaddr, npages, SNP_PAGE_STATE_PRIVATE)


# ---- SNP guest requests (core.c, v6.13+: alloc_shared_pages, snp_issue_guest_request) ----------


@dataclass
class SnpReqData:
    """``struct snp_req_data`` (arch/x86/include/asm/sev.h): ``req_gpa``, ``resp_gpa``
    (GPAs of the shared request and response pages), ``data_gpa``/``data_npages`` (the
    certificate pages of an extended request; unused here)."""

    req_gpa: int = 0
    resp_gpa: int = 0
    data_gpa: int = 0
    data_npages: int = 0


@dataclass
class SnpGuestReq:
    """The parts of ``struct snp_guest_req`` that ``snp_issue_guest_request`` uses:
    ``exit_code`` (SVM_VMGEXIT_GUEST_REQUEST), ``input`` (:class:`SnpReqData`) and
    ``exitinfo2`` (u64 out: ``sw_exit_info_2`` of the answer, ``(vmm_err << 32) |
    fw_err``; SEV_RET_NO_FW_CALL when no answer came back; in v6.12 this is
    ``rio->exitinfo2``)."""

    exit_code: int = SVM_VMGEXIT_GUEST_REQUEST
    input: SnpReqData = field(default_factory=SnpReqData)
    exitinfo2: int = SEV_RET_NO_FW_CALL


@traced("guest")
def alloc_shared_pages(kernel: GuestKernel, sz: int) -> GVA | None:
    """``alloc_shared_pages(sz)`` (arch/x86/coco/sev/core.c v6.13+; sev-guest.c before):
    ``alloc_pages`` then ``set_memory_decrypted`` of ``PAGE_ALIGN(sz) >> PAGE_SHIFT``
    pages; returns the direct-map GVA, or None (NULL) when no page is free or the
    conversion fails (logs "failed to mark page shared, ret=%d").  Model: at most one
    4 KiB page (``sz`` <= 4096, else None): the model's allocator has no higher orders."""
    from .set_memory import set_memory_decrypted

    if sz > PAGE_SIZE or kernel.page_alloc is None:
        return None
    gpa = kernel.page_alloc.alloc_page()
    if gpa is None:
        return None
    va = __va(kernel, gpa)
    ret = set_memory_decrypted(kernel, va, 1)
    if ret:
        kernel.warn(f"failed to mark page shared, ret={ret}")
        return None
    return va


@traced("guest")
def snp_issue_guest_request(kernel: GuestKernel, req: SnpGuestReq) -> int:
    """``snp_issue_guest_request(req)`` (arch/x86/coco/sev/core.c; v6.14+ form, in v6.12
    ``(req, input, rio)`` with the same steps): ``exitinfo2`` = SEV_RET_NO_FW_CALL; take
    the GHCB (no GHCB: -EIO); invalidate it; ``sev_es_ghcb_hv_call(exit_code,
    input.req_gpa, input.resp_gpa)`` (a non-OK es_result is returned as is); then
    ``exitinfo2`` = ``sw_exit_info_2`` and: 0 -> 0; ``SNP_GUEST_VMM_ERR(BUSY)`` ->
    -EAGAIN; ``SNP_GUEST_VMM_ERR(INVALID_LEN)`` -> -EIO (-ENOSPC only for extended
    requests, not modelled); anything else (a firmware error in bits 31:0) -> -EIO.
    Returns 0, -errno or an es_result."""
    state = GhcbState()
    req.exitinfo2 = SEV_RET_NO_FW_CALL
    ghcb = __sev_get_ghcb(kernel, state)
    if not ghcb:
        return -errno.EIO
    try:
        vc_ghcb_invalidate(kernel, ghcb)
        ctxt = EsEmCtxt(this_cpu(kernel).regs)
        ret = sev_es_ghcb_hv_call(kernel, ghcb, ctxt, req.exit_code, req.input.req_gpa,
                                  req.input.resp_gpa)
        if ret:
            return ret
        answer = ghcb_get_field(kernel, ghcb, "sw_exit_info_2")
        req.exitinfo2 = answer
        if answer == 0:
            return 0
        # The host asks for a retry with VMM_ERR_BUSY; any other non-zero answer (a
        # firmware error in bits 31:0 or another VMM error) fails the request.
        return -errno.EAGAIN if answer == SNP_GUEST_VMM_ERR(SNP_GUEST_VMM_ERR_BUSY) else -errno.EIO
    finally:
        __sev_put_ghcb(kernel, state)


# ---- AP bring-up (core.c: snp_alloc_vmsa_page, snp_set_vmsa, snp_cleanup_vmsa,
# vmgexit_ap_control, wakeup_cpu_via_vmgexit); the BSP's side is guest/smp.py ------------

#: Model values: ``real_mode_header->trampoline_start`` (where ``reserve_real_mode``
#: put the real-mode trampoline, below 1 MiB) and ``->sev_es_trampoline_start``, the
#: SEV-ES/SNP AP entry in it.  Only their use as the VMSA's CS base and RIP matters.
TRAMPOLINE_START = 0x9A000
SEV_ES_TRAMPOLINE_START = TRAMPOLINE_START + 0x40


def _vmsa_write(kernel: GuestKernel, vmsa: int, name: str, value: int) -> None:
    """Store ``value`` in the VMSA field ``name`` of the page at GVA ``vmsa``."""
    f = VMSA_FIELDS[name]
    this_cpu(kernel).write(vmsa + f.offset, (value & ((1 << (8 * f.size)) - 1)).to_bytes(f.size, "little"))


@traced("guest")
def snp_alloc_vmsa_page(kernel: GuestKernel, cpu: int) -> int | None:
    """``snp_alloc_vmsa_page(cpu)`` (arch/x86/coco/sev/core.c, v6.17): an order-1 (8 KiB,
    8 KiB-aligned) zeroed block, split; its first page goes back to the allocator (it
    could sit on a 2 MiB or 1 GiB boundary, which the SNP erratum on VMSA pages rules
    out) and the second, never so aligned, is the VMSA.  Returns its GVA, or None
    (``-ENOMEM`` for the caller) when no block is free."""
    assert kernel.page_alloc is not None
    p = kernel.page_alloc.alloc_pages(1)
    if p is None:
        return None
    kernel.page_alloc.free_page(p)
    va = __va(kernel, p + PAGE_SIZE)
    this_cpu(kernel).write(va, bytes(PAGE_SIZE))  # __GFP_ZERO
    return va


@traced("guest")
def snp_set_vmsa(kernel: GuestKernel, va: int, caa: int | None, apic_id: int, make_vmsa: bool) -> int:
    """``snp_set_vmsa(va, caa, apic_id, make_vmsa)`` (core.c, v6.17): at VMPL0, RMPADJUST
    the 4 KiB page at ``va`` with target VMPL1 (RMPADJUST only succeeds on a
    lower-privileged VMPL) and, for ``make_vmsa``, ``RMPADJUST_VMSA_PAGE_BIT``; clearing
    passes no VMSA bit.  Returns RMPADJUST's EAX (0 success).  The SVSM path (VMPL !=
    0: SVSM_CORE_CREATE_VCPU/DELETE_VCPU) is not modelled: -EINVAL."""
    if kernel.snp_vmpl:
        return -errno.EINVAL
    attrs = 1
    if make_vmsa:
        attrs |= RMPADJUST_VMSA_PAGE_BIT
    return rmpadjust(kernel, va, RMP_PG_SIZE_4K, attrs)


@traced("guest")
def snp_cleanup_vmsa(kernel: GuestKernel, vmsa: int, apic_id: int) -> None:
    """``snp_cleanup_vmsa(vmsa, apic_id)`` (core.c): clear the VMSA bit
    (:func:`snp_set_vmsa`); on failure the page is leaked ("clear VMSA page failed (%u),
    leaking page"), else freed."""
    err = snp_set_vmsa(kernel, vmsa, None, apic_id, False)
    if err:
        kernel.warn(f"clear VMSA page failed ({err & 0xFFFFFFFF}), leaking page")  # %u
        return
    assert kernel.page_alloc is not None
    kernel.page_alloc.free_page(__pa(kernel, vmsa))


@traced("guest")
def vmgexit_ap_control(kernel: GuestKernel, event: int, vmsa: int, apic_id: int) -> int:
    """``vmgexit_ap_control(event, vmsa, apic_id)`` (core.c, v6.17): on this CPU's GHCB,
    SVM_VMGEXIT_AP_CREATION with EXITINFO1 = APIC ID << 32 | ``snp_vmpl`` << 16 |
    ``event`` (SVM_VMGEXIT_AP_CREATE or SVM_VMGEXIT_AP_DESTROY), EXITINFO2 = the VMSA's
    GPA and, unless destroying, RAX = the VMSA's ``sev_features``.  An answer whose
    ``sw_exit_info_1`` is not valid or has non-zero low 32 bits is an error ("SNP AP %s
    error", CREATE or DESTROY): -EINVAL.  Interrupts are off meanwhile
    (``local_irq_save``).  Returns 0 or -EINVAL."""
    create = event != SVM_VMGEXIT_AP_DESTROY
    cpu = this_cpu(kernel)
    irqs_were_off = kernel.irqs_disabled.get(cpu.vcpu_id, False)
    kernel.irqs_disabled[cpu.vcpu_id] = True  # local_irq_save
    state = GhcbState()
    ghcb = __sev_get_ghcb(kernel, state)
    vc_ghcb_invalidate(kernel, ghcb)
    if create:
        f = VMSA_FIELDS["sev_features"]
        ghcb_set_field(kernel, ghcb, "rax", int.from_bytes(cpu.read(vmsa + f.offset, f.size), "little"))
    ghcb_set_field(kernel, ghcb, "sw_exit_code", SVM_VMGEXIT_AP_CREATION)
    ghcb_set_field(kernel, ghcb, "sw_exit_info_1", (apic_id << 32) | (kernel.snp_vmpl << 16) | event)
    ghcb_set_field(kernel, ghcb, "sw_exit_info_2", __pa(kernel, vmsa))
    sev_es_wr_ghcb_msr(kernel, __pa(kernel, ghcb))
    VMGEXIT(kernel)
    ret = 0
    if (not ghcb_field_is_valid(kernel, ghcb, "sw_exit_info_1")
            or ghcb_get_field(kernel, ghcb, "sw_exit_info_1") & 0xFFFFFFFF):
        kernel.warn(f"SNP AP {'CREATE' if create else 'DESTROY'} error")
        ret = -errno.EINVAL
    __sev_put_ghcb(kernel, state)
    kernel.irqs_disabled[cpu.vcpu_id] = irqs_were_off  # local_irq_restore
    return ret


@traced("guest")
def wakeup_cpu_via_vmgexit(kernel: GuestKernel, apic_id: int, start_ip: int, cpu: int) -> int:
    """``wakeup_cpu_via_vmgexit(apic_id, start_ip, cpu)`` (core.c, v6.17): the hypervisor
    must offer GHCB_HV_FT_SNP_AP_CREATION (else -EOPNOTSUPP: no AP starts); ``start_ip``
    must be the trampoline (else WARN "Unsupported SNP start_ip", -EINVAL) and is
    replaced by its SEV-ES entry.  A new VMSA page every time
    (:func:`snp_alloc_vmsa_page`, -ENOMEM): CS from the SIPI vector (base, selector,
    limit, attributes), RIP = the entry's low 12 bits, the APM's AP INIT values (CR0,
    DR6, DR7, RFLAGS, G_PAT, XCR0, MXCSR, x87 FTW/FCW; model: the other segments, CR4 and
    Secure TSC are not written), EFER.SVME, VMPL = ``snp_vmpl``, SEV_FEATURES =
    ``sev_status >> 2``.  Then :func:`snp_set_vmsa` (failure: "set VMSA page failed
    (%u)", free, -EINVAL), AP_CREATE (:func:`vmgexit_ap_control`; failure:
    :func:`snp_cleanup_vmsa`, no VMSA recorded), clean up the CPU's previous VMSA, and
    record the new one in ``kernel.sev_vmsa``.  Returns 0 or -errno."""
    if not kernel.sev_hv_features & GHCB_HV_FT_SNP_AP_CREATION:
        return -errno.EOPNOTSUPP
    if start_ip != TRAMPOLINE_START:
        kernel.warn(f"Unsupported SNP start_ip: {start_ip:x}")
        return -errno.EINVAL
    start_ip = SEV_ES_TRAMPOLINE_START
    cur_vmsa = kernel.sev_vmsa.get(cpu)
    vmsa = snp_alloc_vmsa_page(kernel, cpu)
    if vmsa is None:
        return -errno.ENOMEM
    sipi_vector = start_ip >> 12
    for name, value in (("cs.base", sipi_vector << 12), ("cs.limit", AP_INIT_CS_LIMIT),
                        ("cs.attrib", INIT_CS_ATTRIBS), ("cs.selector", sipi_vector << 8),
                        ("rip", start_ip & 0xFFF), ("cr0", AP_INIT_CR0_DEFAULT),
                        ("dr7", DR7_RESET_VALUE), ("dr6", AP_INIT_DR6_DEFAULT),
                        ("rflags", AP_INIT_RFLAGS_DEFAULT), ("g_pat", AP_INIT_GPAT_DEFAULT),
                        ("xcr0", AP_INIT_XCR0_DEFAULT), ("mxcsr", AP_INIT_MXCSR_DEFAULT),
                        ("x87_ftw", AP_INIT_X87_FTW_DEFAULT), ("x87_fcw", AP_INIT_X87_FCW_DEFAULT),
                        ("efer", EFER_SVME), ("vmpl", kernel.snp_vmpl),
                        ("sev_features", kernel.sev_status >> 2)):
        _vmsa_write(kernel, vmsa, name, value)
    ret = snp_set_vmsa(kernel, vmsa, None, apic_id, True)
    if ret:
        kernel.warn(f"set VMSA page failed ({ret & 0xFFFFFFFF})")  # %u
        assert kernel.page_alloc is not None
        kernel.page_alloc.free_page(__pa(kernel, vmsa))
        return -errno.EINVAL
    new: int | None = vmsa
    ret = vmgexit_ap_control(kernel, SVM_VMGEXIT_AP_CREATE, vmsa, apic_id)
    if ret:
        snp_cleanup_vmsa(kernel, vmsa, apic_id)
        new = None
    if cur_vmsa is not None:
        snp_cleanup_vmsa(kernel, cur_vmsa, apic_id)
    if new is None:
        kernel.sev_vmsa.pop(cpu, None)
    else:
        kernel.sev_vmsa[cpu] = new
    return ret
