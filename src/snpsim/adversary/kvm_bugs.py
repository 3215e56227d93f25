# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Historical KVM behaviour from public bug reports, as override functions and knob sets
merged onto a KVM profile (:meth:`snpsim.kvm.profiles.KvmProfile.derive`).

Each function has the signature of the override point it replaces and names the report
(``shared/reference/bug-reports.md``) and the fix it predates.  Nothing here is a KVM
version: the fixed behaviour is the default of every profile.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from snpsim.kvm.kvm_host import KvmVcpu, KvmVm
from snpsim.kvm.mmu import KvmPageFault, page_fault_can_be_fast_any_slot
from snpsim.kvm.svm_sev import (
    SevDataSnpGuestRequest,
    copy_guest_response,
    issue_snp_guest_request,
    snp_cleanup_guest_buf,
    snp_complete_psc,
    snp_setup_guest_buf,
)
from snpsim.kvm.x86 import user_exit_on_hypercall
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
from snpsim.trace.record import emit_instant, traced

__all__ = [
    "npf_rmp_fault_gate_r2",
    "page_fault_can_be_fast_r3",
    "snp_begin_psc_r1",
    "snp_complete_one_psc_r1",
    "R1_OVERRIDES",
    "R2_OVERRIDES",
    "R3_OVERRIDES",
    "R6_KNOBS",
    "snp_handle_guest_req_r7",
    "R7_OVERRIDES",
]


# ---- R1: snp_begin_psc before "[PATCH v15 23/23] KVM: SEV: Fix PSC handling for SMASH/UNSMASH
# and partial update ops" --------------------------------------------------------------------------


def _r1_entry(vcpu: KvmVcpu, idx: int) -> PscEntry:
    raw = vcpu.sev_es.ghcb_sa.read(vcpu.kvm.host, PSC_HDR_SIZE + PSC_ENTRY_SIZE * idx, PSC_ENTRY_SIZE)
    return PscEntry.decode(raw)


def _r1_set_cur_entry(vcpu: KvmVcpu, value: int) -> None:
    vcpu.sev_es.ghcb_sa.write(vcpu.kvm.host, 0, u16(value).to_bytes(2, "little"))


@traced("kvm")
def __snp_complete_one_psc_r1(vcpu: KvmVcpu) -> None:
    """Bug report R1 (c): ``__snp_complete_one_psc`` marked the in-flight entries done
    with ``cur_page`` from the KVM-internal ``psc_2m`` flag (512 if set, else 1) instead of
    each entry's own ``pagesize``.  ``psc_2m`` is false for a partly done 2M entry
    (processed as 4K pages), which then ends with ``cur_page`` 1.  Sets ``hdr.cur_entry``
    past the in-flight entries."""
    es = vcpu.sev_es
    idx = es.psc_idx
    while es.psc_inflight:
        e = _r1_entry(vcpu, idx)
        cur_page = PTRS_PER_PMD if es.psc_2m else 1
        vcpu.sev_es.ghcb_sa.write(vcpu.kvm.host, PSC_HDR_SIZE + PSC_ENTRY_SIZE * idx,
                                  PscEntry(cur_page, e.gfn, e.operation, e.pagesize,
                                           e.reserved).encode_bytes())
        es.psc_inflight -= 1
        idx += 1
    _r1_set_cur_entry(vcpu, idx)


@traced("kvm")
def snp_complete_one_psc_r1(vcpu: KvmVcpu) -> int:
    """The ``complete_userspace_io`` callback of :func:`snp_begin_psc_r1`: as
    ``snp_complete_one_psc`` (``hypercall.ret != 0`` -> GENERIC), with R1's completion
    (:func:`__snp_complete_one_psc_r1`) and R1's ``snp_begin_psc``.  Returns 1 or 0."""
    if vcpu.run.hypercall.ret:
        snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_GENERIC)
        return 1
    __snp_complete_one_psc_r1(vcpu)
    return snp_begin_psc_r1(vcpu)


@traced("kvm")
def snp_begin_psc_r1(vcpu: KvmVcpu) -> int:
    """Bug report R1 (kvm list, "[PATCH v15 23/23] KVM: SEV: Fix PSC handling for
    SMASH/UNSMASH and partial update ops", review 2024-05-10): ``snp_begin_psc`` with the
    three bugs the patch fixed.  Model reconstruction from the report's description (the
    pre-fix source is not in the references); otherwise as the fixed function (header
    bounds, INVALID_ENTRY checks, exit format, the profile's scratch bound):

    * (a) the scan for the start of work skips PSMASH/UNSMASH entries (``continue``) but
      takes "``npages`` != 0" as "found": a skipped 2M/4K hint at the *end* of the buffer
      leaves ``npages`` set, so it is forwarded -- and since the exit takes every op other
      than PRIVATE as "decrypted", as a private->shared conversion;
    * (b) coalescing does not stop at an entry with ``cur_page != 0``: a done entry in a
      contiguous run is converted again;
    * (c) completion through :func:`snp_complete_one_psc_r1` (``cur_page`` from
      ``psc_2m``).

    Returns 1 (answered) or 0 (KVM_EXIT_HYPERCALL set up).
    """
    kvm = vcpu.kvm
    es = vcpu.sev_es
    if not user_exit_on_hypercall(kvm, KVM_HC_MAP_GPA_RANGE):
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
    # FIND THE START OF WORK
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
    # Bug (a): "nothing left" is tested with npages, not with idx > idx_end.
    if not npages or e is None:
        snp_complete_psc(vcpu, 0)
        return 1
    es.psc_2m = huge
    es.psc_idx = idx
    es.psc_inflight = 1
    # COALESCE -- bug (b): no cur_page test.
    for nxt in range(idx + 1, idx_end + 1):
        f = _r1_entry(vcpu, nxt)
        if f.operation != e.operation or f.gfn != e.gfn + npages or bool(f.pagesize) != huge:
            break
        es.psc_inflight += 1
        npages += PTRS_PER_PMD if huge else 1
    # EXIT TO USERSPACE: every op other than PRIVATE is taken as "decrypted".
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
    vcpu.complete_userspace_io = snp_complete_one_psc_r1
    emit_instant("kvm", "KVM_EXIT_HYPERCALL", gpa=gfn << PAGE_SHIFT, npages=npages, attrs=attrs)
    return 0


def npf_rmp_fault_gate_r2(vcpu: KvmVcpu, rc: int, gpa: int, error_code: int,
                          handler: Callable[[KvmVcpu, int, int], None]) -> int:
    """Bug report R2 ("[PATCH v15 22/23] KVM: SEV: Fix return code interpretation for RMP
    nested page faults", 2024-05-09): ``npf_interception`` took only a return of 0 as
    "exited to userspace", so after a ``KVM_EXIT_MEMORY_FAULT`` (``kvm_mmu_page_fault``
    returns -EFAULT) it still ran ``sev_handle_rmp_fault`` on an RMP #NPF: warnings
    during implicit conversions and needless PSMASH/zaps.  Returns ``rc``."""
    if rc != 0 and error_code & PFERR_GUEST_RMP_MASK:
        handler(vcpu, gpa, error_code)
    return rc


def page_fault_can_be_fast_r3(kvm: KvmVm, fault: KvmPageFault) -> bool:
    """Bug report R3 (before "[PATCH 21/20] KVM: MMU: Disable fast path for private
    memslots", May 2024): the lockless fast path was allowed for VMs with private memory,
    so a present, writable SPTE made an RMP #NPF that needs KVM_EXIT_MEMORY_FAULT look
    spurious; the guest was re-entered and faulted again forever.  Returns a bool."""
    return page_fault_can_be_fast_any_slot(kvm, fault)


R1_OVERRIDES: dict[str, Any] = {"snp_begin_psc": snp_begin_psc_r1}
R2_OVERRIDES: dict[str, Any] = {"npf_rmp_fault_gate": npf_rmp_fault_gate_r2}
R3_OVERRIDES: dict[str, Any] = {"page_fault_can_be_fast": page_fault_can_be_fast_r3}

#: Bug report R6 (Dec 2024, "i386/kvm: Set return value after handling
#: KVM_EXIT_HYPERCALL" and the KVM proposal to zero ``ret``): a KVM refactor left
#: -KVM_ENOSYS in ``run->hypercall.ret`` of the PSC exits instead of zeroing it.
R6_KNOBS: dict[str, Any] = {"zero_hypercall_ret": False,
                            "stale_hypercall_ret": u64(-KVM_ENOSYS)}


@traced("kvm", name="__snp_handle_guest_req")
def snp_handle_guest_req_r7(kvm: KvmVm, req_gpa: int, resp_gpa: int) -> tuple[int, int]:
    """Bug report R7 (github.com/AMDESE/AMDSEV/issues/220, 2024-07, AMDESE
    ``snp-host-latest`` ``arch/x86/kvm/svm/sev.c``): ``__snp_handle_guest_req`` returned
    as soon as ``sev_issue_cmd(SEV_CMD_SNP_GUEST_REQUEST)`` failed, before
    ``snp_cleanup_guest_buf``: after a firmware error (e.g. INVALID_PARAM for a malformed
    message) the response page stays firmware-owned and no response is copied back.
    The next request's setup writes that page from the host: host #PF with X86_PF_RMP,
    a host oops, KVM_RUN returns -EFAULT and the VM stops.  Otherwise as the fixed
    :func:`snpsim.kvm.svm_sev.__snp_handle_guest_req`.  Returns ``(ret, fw_err)``."""
    if not kvm.sev.snp:
        return -errno.EINVAL, 0
    data = SevDataSnpGuestRequest()
    ret = snp_setup_guest_buf(kvm, data, req_gpa, resp_gpa)
    if ret:
        return ret, 0
    ret, fw_err = issue_snp_guest_request(kvm, data)
    if ret:
        return ret, fw_err  # the bug: no snp_cleanup_guest_buf on this path
    ret = snp_cleanup_guest_buf(kvm, data)
    if ret:
        return ret, fw_err
    return copy_guest_response(kvm, data, resp_gpa), fw_err


#: Bug report R7: the guest-request handler without the cleanup on the error path.
R7_OVERRIDES: dict[str, Any] = {"__snp_handle_guest_req": snp_handle_guest_req_r7}
