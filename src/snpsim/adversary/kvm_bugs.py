# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Historical KVM behaviour from public bug reports, as hooks on KVM functions by their
real names (:meth:`snpsim.api.Scenario.hook`, :func:`snpsim.api.hooked`) and knob sets.

Each hook is ``hook(original, *args)`` for the function it names and says which report
(``docs/bug-reports.md``) and which fix it predates.  The functions a hook
calls come from :func:`snpsim.api.function`; the model objects it gets (``vcpu``,
``kvm``) are read through their documented fields only.  Nothing here is a KVM version:
the fixed behaviour is the default of every profile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snpsim.api import function
from snpsim.spec.faults import PFERR_GUEST_RMP_MASK
from snpsim.spec.kvm_uapi import (
    KVM_ENOSYS,
    KVM_EXIT_HYPERCALL,
    KVM_HC_MAP_GPA_RANGE,
    KVM_MAP_GPA_RANGE_DECRYPTED,
    KVM_MAP_GPA_RANGE_ENCRYPTED,
    KVM_MAP_GPA_RANGE_PAGE_SZ_2M,
    KVM_MAP_GPA_RANGE_PAGE_SZ_4K,
)
from snpsim.spec.psc import (
    PSC_ENTRY_SIZE,
    PSC_HDR_SIZE,
    VMGEXIT_PSC_ERROR_GENERIC,
    VMGEXIT_PSC_ERROR_INVALID_ENTRY,
    VMGEXIT_PSC_ERROR_INVALID_HDR,
    VMGEXIT_PSC_MAX_COUNT,
    VMGEXIT_PSC_OP_PRIVATE,
    VMGEXIT_PSC_OP_SHARED,
    PscEntry,
)
from snpsim.spec.units import PAGE_SHIFT, PTRS_PER_PMD, u16, u64
from snpsim.trace.record import emit_instant

__all__ = [
    "snp_begin_psc_r1",
    "snp_complete_one_psc_entries_r1",
    "npf_interception_r2",
    "page_fault_can_be_fast_r3",
    "issue_snp_guest_request_r7",
    "snp_cleanup_guest_buf_r7",
    "copy_guest_response_r7",
    "R1_HOOKS",
    "R2_HOOKS",
    "R3_HOOKS",
    "R6_KNOBS",
    "R7_HOOKS",
]

Hook = Callable[..., Any]


# ---- R1: snp_begin_psc before "[PATCH v15 23/23] KVM: SEV: Fix PSC handling for SMASH/UNSMASH
# and partial update ops" --------------------------------------------------------------------------


def _r1_entry(vcpu: Any, idx: int) -> PscEntry:
    raw = vcpu.sev_es.ghcb_sa.read(vcpu.kvm.host, PSC_HDR_SIZE + PSC_ENTRY_SIZE * idx, PSC_ENTRY_SIZE)
    return PscEntry.decode(raw)


def _r1_set_cur_entry(vcpu: Any, value: int) -> None:
    vcpu.sev_es.ghcb_sa.write(vcpu.kvm.host, 0, u16(value).to_bytes(2, "little"))


def snp_complete_one_psc_entries_r1(original: Hook, vcpu: Any) -> None:
    """Hook on ``__snp_complete_one_psc`` (replaces it), bug report R1 (c): the in-flight
    entries were marked done with ``cur_page`` taken from KVM's own ``psc_2m`` flag (512
    if set, else 1), not from each entry's ``pagesize``; ``psc_2m`` is false for a 2M
    entry that was partly done (its rest goes as 4K pages), so that entry ends with
    ``cur_page`` 1.  Then ``hdr.cur_entry`` past the in-flight entries, as fixed."""
    es = vcpu.sev_es
    idx = es.psc_idx
    while es.psc_inflight:
        e = _r1_entry(vcpu, idx)
        cur_page = PTRS_PER_PMD if es.psc_2m else 1
        es.ghcb_sa.write(vcpu.kvm.host, PSC_HDR_SIZE + PSC_ENTRY_SIZE * idx,
                         PscEntry(cur_page, e.gfn, e.operation, e.pagesize, e.reserved).encode_bytes())
        es.psc_inflight -= 1
        idx += 1
    _r1_set_cur_entry(vcpu, idx)


def snp_begin_psc_r1(original: Hook, vcpu: Any) -> int:
    """Hook on ``snp_begin_psc`` (replaces it), bug report R1 (kvm list, "[PATCH v15
    23/23] KVM: SEV: Fix PSC handling for SMASH/UNSMASH and partial update ops", review
    2024-05-10): the function with the three bugs the patch fixed.  Model reconstruction
    from the report's description (the pre-fix source is not in the references);
    otherwise as the fixed function (header bounds, INVALID_ENTRY checks, exit format,
    the profile's scratch bound):

    * (a) the scan for the start of work skips PSMASH/UNSMASH entries but takes
      "``npages`` != 0" as "found": a skipped 2M/4K hint at the *end* of the buffer
      leaves ``npages`` set, so it is forwarded -- and since the exit takes every op other
      than PRIVATE as "decrypted", as a private->shared conversion;
    * (b) coalescing does not stop at an entry with ``cur_page != 0``: a done entry in a
      contiguous run is converted again;
    * (c) the completion (``__snp_complete_one_psc``, hooked by
      :func:`snp_complete_one_psc_entries_r1`) takes ``cur_page`` from ``psc_2m``.

    Every call goes through this hook, the first range of a request and the next ones
    (``snp_complete_one_psc`` calls ``snp_begin_psc`` again).  Returns 1 (answered) or 0
    (KVM_EXIT_HYPERCALL set up)."""
    kvm = vcpu.kvm
    es = vcpu.sev_es
    snp_complete_psc = function("snp_complete_psc")
    if not function("user_exit_on_hypercall")(kvm, KVM_HC_MAP_GPA_RANGE):
        snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_GENERIC)
        return 1
    max_nr_entries = VMGEXIT_PSC_MAX_COUNT
    if kvm.profile.knob("scratch") != "original":
        max_nr_entries = min((es.ghcb_sa_len - PSC_HDR_SIZE) // PSC_ENTRY_SIZE, VMGEXIT_PSC_MAX_COUNT)
    if es.psc_inflight:
        kvm.pr("WARN: PSC with entries still in flight")
        snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_GENERIC)
        return 1
    raw = es.ghcb_sa.read(kvm.host, 0, 4)
    idx_start, idx_end = int.from_bytes(raw[0:2], "little"), int.from_bytes(raw[2:4], "little")
    if idx_end >= max_nr_entries:
        snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_INVALID_HDR)
        return 1
    # the start of work
    npages = 0
    gfn = 0
    huge = False
    e = None
    idx = idx_start
    cur_entry = idx_start
    while idx <= idx_end:
        e = _r1_entry(vcpu, idx)
        gfn = e.gfn
        huge = bool(e.pagesize)
        npages = PTRS_PER_PMD if huge else 1
        if e.cur_page > npages or gfn % npages:
            snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_INVALID_ENTRY)
            return 1
        if e.cur_page:
            npages -= e.cur_page
            gfn += e.cur_page
            huge = False
        skip = e.operation not in (VMGEXIT_PSC_OP_PRIVATE, VMGEXIT_PSC_OP_SHARED)
        if not skip and npages:
            break
        idx += 1
        cur_entry += 1
        _r1_set_cur_entry(vcpu, cur_entry)
    # Bug (a): "nothing left" is decided on npages, not on idx > idx_end.
    if not npages or e is None:
        snp_complete_psc(vcpu, 0)
        return 1
    es.psc_2m = huge
    es.psc_idx = idx
    es.psc_inflight = 1
    # Bug (b): the run of entries to join ignores cur_page.
    for nxt in range(idx + 1, idx_end + 1):
        f = _r1_entry(vcpu, nxt)
        if f.operation != e.operation or f.gfn != e.gfn + npages or bool(f.pagesize) != huge:
            break
        es.psc_inflight += 1
        npages += PTRS_PER_PMD if huge else 1
    # The exit: every op other than PRIVATE is taken as "decrypted".
    run = vcpu.run
    run.exit_reason = KVM_EXIT_HYPERCALL
    run.hypercall.nr = KVM_HC_MAP_GPA_RANGE
    if kvm.profile.knob("zero_hypercall_ret"):
        run.hypercall.ret = 0
    run.hypercall.args[0] = u64(gfn << PAGE_SHIFT)
    run.hypercall.args[1] = npages
    attrs = KVM_MAP_GPA_RANGE_ENCRYPTED if e.operation == VMGEXIT_PSC_OP_PRIVATE else KVM_MAP_GPA_RANGE_DECRYPTED
    attrs |= KVM_MAP_GPA_RANGE_PAGE_SZ_2M if e.pagesize else KVM_MAP_GPA_RANGE_PAGE_SZ_4K
    run.hypercall.args[2] = attrs
    vcpu.complete_userspace_io = function("snp_complete_one_psc")
    emit_instant("kvm", "KVM_EXIT_HYPERCALL", gpa=gfn << PAGE_SHIFT, npages=npages, attrs=attrs)
    return 0


# ---- R2 / R3 -------------------------------------------------------------------------------------


def npf_interception_r2(original: Hook, vcpu: Any) -> int:
    """Hook on ``npf_interception`` (wraps it), bug report R2 ("[PATCH v15 22/23] KVM: SEV:
    Fix return code interpretation for RMP nested page faults", 2024-05-09): the handler
    took only a return of 0 from ``kvm_mmu_page_fault`` as "exited to userspace", so
    after a ``KVM_EXIT_MEMORY_FAULT`` (-EFAULT) it still ran ``sev_handle_rmp_fault`` on
    an RMP #NPF: warnings during implicit conversions and needless PSMASH/zaps.  The
    fixed function handles the RMP fault for a return > 0; this adds the call for a
    negative one.  Returns the MMU's result."""
    rc = original(vcpu)
    if rc < 0 and vcpu.exit_info_1 & PFERR_GUEST_RMP_MASK:
        function("sev_handle_rmp_fault")(vcpu, vcpu.exit_info_2, vcpu.exit_info_1)
    return rc


def page_fault_can_be_fast_r3(original: Hook, kvm: Any, fault: Any) -> bool:
    """Hook on ``page_fault_can_be_fast`` (replaces it), bug report R3 (before "[PATCH
    21/20] KVM: MMU: Disable fast path for private memslots", May 2024): the lockless fast
    path was allowed for VMs with private memory, so a present, writable SPTE made an RMP
    #NPF that needs KVM_EXIT_MEMORY_FAULT look spurious; the guest was re-entered and
    faulted again forever.  Only the slot-independent rules
    (``page_fault_can_be_fast_any_slot``).  Returns a bool."""
    return bool(function("page_fault_can_be_fast_any_slot")(kvm, fault))


R1_HOOKS: dict[str, Hook] = {"snp_begin_psc": snp_begin_psc_r1,
                             "__snp_complete_one_psc": snp_complete_one_psc_entries_r1}
R2_HOOKS: dict[str, Hook] = {"npf_interception": npf_interception_r2}
R3_HOOKS: dict[str, Hook] = {"page_fault_can_be_fast": page_fault_can_be_fast_r3}

#: Bug report R6 (Dec 2024, "i386/kvm: Set return value after handling
#: KVM_EXIT_HYPERCALL" and the KVM proposal to zero ``ret``): a KVM refactor left
#: -KVM_ENOSYS in ``run->hypercall.ret`` of the PSC exits instead of zeroing it.
R6_KNOBS: dict[str, Any] = {"zero_hypercall_ret": False,
                            "stale_hypercall_ret": u64(-KVM_ENOSYS)}


# ---- R7: __snp_handle_guest_req without the cleanup on the error path -------------------------------

# The request buffers (``struct sev_data_snp_guest_request``) whose firmware command
# failed and whose handler has not finished yet: id -> object (holding it keeps the id).
_R7_FAILED: dict[int, Any] = {}


def issue_snp_guest_request_r7(original: Hook, kvm: Any, data: Any) -> tuple[int, int]:
    """Hook on ``issue_snp_guest_request`` (the firmware's SNP_GUEST_REQUEST; wraps it),
    bug report R7 (github.com/AMDESE/AMDSEV/issues/220, 2024-07, AMDESE
    ``snp-host-latest`` ``arch/x86/kvm/svm/sev.c``): ``__snp_handle_guest_req`` returned
    as soon as the command failed, before ``snp_cleanup_guest_buf``.  Notes a failure so
    that the two steps after it (:func:`snp_cleanup_guest_buf_r7`,
    :func:`copy_guest_response_r7`) do nothing: the handler then returns ``(ret,
    fw_err)`` with the response page still firmware-owned and nothing copied back, as
    the buggy one did.  The next request's setup writes that page from the host: host
    #PF with X86_PF_RMP, a host oops, KVM_RUN returns -EFAULT and the VM stops.
    Returns ``(ret, fw_err)``."""
    ret, fw_err = original(kvm, data)
    if ret:
        _R7_FAILED[id(data)] = data
    return ret, fw_err


def snp_cleanup_guest_buf_r7(original: Hook, kvm: Any, data: Any) -> int:
    """Hook on ``snp_cleanup_guest_buf`` (R7): after a failed firmware command, no
    reclaim (the page stays firmware-owned); otherwise the fixed cleanup.  In a trace the
    skipped step shows as a call that returns 0 at once.  Returns 0 or -EIO."""
    if id(data) in _R7_FAILED:
        return 0
    return int(original(kvm, data))


def copy_guest_response_r7(original: Hook, kvm: Any, data: Any, resp_gpa: int) -> int:
    """Hook on ``copy_guest_response`` (R7): after a failed firmware command nothing is
    copied back (the buggy handler had returned already); otherwise as fixed.  Returns
    0 or -EIO."""
    if _R7_FAILED.pop(id(data), None) is not None:
        return 0
    return int(original(kvm, data, resp_gpa))


#: Bug report R7: the guest-request handler without the cleanup on the error path.
R7_HOOKS: dict[str, Hook] = {"issue_snp_guest_request": issue_snp_guest_request_r7,
                             "snp_cleanup_guest_buf": snp_cleanup_guest_buf_r7,
                             "copy_guest_response": copy_guest_response_r7}
