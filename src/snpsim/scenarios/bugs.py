# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The trigger of each ``bug/<name>`` scenario: the guest code that makes report <name>
(``shared/reference/bug-reports.md``) show its symptom under the historical variant.

Each :class:`BugTrigger` holds ``about`` (one line: what the report is about and what the
guest does), ``make(result, reserved)`` (the guest workload; it writes what the guest
saw into ``result``) and ``inspect(system, outcome, result)`` (after the run, adds what
only the host side shows -- KVM log lines, exits, page state -- to ``result``).  The
steps reuse what the tests of each report do (tests/adversary, tests/kvm,
tests/guest/test_bug_reports.py), written as guest code: where Linux itself never does
the step (a crafted PSC buffer, a C-bit flipped without a PSC) ``about`` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from snpsim.guest.kernel import GuestKernel, __va
from snpsim.guest.set_memory import (
    _PAGE_ENC,
    flush_tlb_one_kernel,
    lookup_address,
    set_memory_decrypted,
    set_memory_encrypted,
)
from snpsim.guest.unaccepted_memory import accept_memory
from snpsim.hw.ports import GuestPort
from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc
from snpsim.spec.units import PAGE_SIZE, PMD_SIZE

__all__ = ["BugTrigger", "TRIGGERS", "report_order"]

Workload = Callable[[GuestKernel, GuestPort], None]
Reserved = tuple[tuple[int, int], ...]

PRIVATE, SHARED, PSMASH = 1, 2, 3
GHCB_SHARED_BUF = 0x800


@dataclass(frozen=True)
class BugTrigger:
    about: str
    make: Callable[[dict[str, Any], Reserved], Workload]
    inspect: Callable[[Any, Any, dict[str, Any]], None] | None = None


def report_order(name: str) -> tuple[int, str]:
    """Sort key: R1, R2, ..., R16 by number."""
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 1 << 30, name)


# -- guest helpers --------------------------------------------------------------------------


def _unaccepted_unit(kernel: GuestKernel, reserved: Reserved) -> int | None:
    """GPA of the highest 2 MiB unit still unaccepted (outside the MMIO windows)."""
    u = kernel.unaccepted
    if u is None:
        return None
    for i in range(u.nbits - 1, -1, -1):
        gpa = u.phys_base + i * u.unit_size
        if u.test(i) and not any(a <= gpa < a + s for a, s in reserved):
            return int(gpa)
    return None


def _set_c_bit(kernel: GuestKernel, cpu: GuestPort, va: int, enc: bool) -> None:
    """Flip the C-bit of the 4 KiB direct-map PTE of ``va`` and INVLPG it, with no PSC
    and no PVALIDATE: an access through the other alias."""
    kpte, _level = lookup_address(kernel, va)
    assert kpte is not None
    pte = cpu.read_u64(kpte)
    cpu.write_u64(kpte, pte | _PAGE_ENC(kernel) if enc else pte & ~_PAGE_ENC(kernel))
    flush_tlb_one_kernel(kernel, va)


def _shared_page(kernel: GuestKernel, cpu: GuestPort, result: dict[str, Any]) -> int:
    """A page from the allocator made shared with ``set_memory_decrypted`` (4 KiB PTE)."""
    assert kernel.page_alloc is not None
    gpa = kernel.page_alloc.alloc_page()
    assert gpa is not None
    result["gpa"] = int(gpa)
    result["decrypt_ret"] = set_memory_decrypted(kernel, __va(kernel, gpa), 1)
    return int(gpa)


def _raw_psc(kernel: GuestKernel, cpu: GuestPort, desc: bytes, *, scratch_off: int = GHCB_SHARED_BUF,
             exit_info_2: int = 0) -> dict[str, Any]:
    """One GHCB PSC VMGEXIT with the buffer ``desc`` at GHCB offset ``scratch_off`` and
    ``exit_info_2``, built by hand on this CPU's GHCB (``__sev_get_ghcb``); returns the
    answer (``sw_exit_info_1``/``_2``, the buffer afterwards) without Linux's checks."""
    from snpsim.guest.asm_sev import ghcb_get_field, ghcb_set_field, vc_ghcb_invalidate
    from snpsim.guest.kernel import GhcbState, __pa
    from snpsim.guest.sev_startup import __sev_get_ghcb, __sev_put_ghcb
    from snpsim.guest.sev_vc import EsEmCtxt, sev_es_ghcb_hv_call

    state = GhcbState()
    ghcb = __sev_get_ghcb(kernel, state)
    try:
        vc_ghcb_invalidate(kernel, ghcb)
        cpu.write(ghcb + scratch_off, desc)
        ghcb_set_field(kernel, ghcb, "sw_scratch", int(__pa(kernel, ghcb + scratch_off)))
        es = sev_es_ghcb_hv_call(kernel, ghcb, EsEmCtxt(cpu.regs), SVM_VMGEXIT_PSC, 0, exit_info_2)
        after = cpu.read(ghcb + scratch_off, min(len(desc), PAGE_SIZE - scratch_off))
        return {"es_result": int(es),
                "sw_exit_info_1": ghcb_get_field(kernel, ghcb, "sw_exit_info_1"),
                "sw_exit_info_2": ghcb_get_field(kernel, ghcb, "sw_exit_info_2"),
                "buffer_after": after}
    finally:
        __sev_put_ghcb(kernel, state)


def _page(system: Any, gpa: int) -> dict[str, Any]:
    st = system.page_state(gpa)
    return {"gpa": gpa, "attribute": "private" if st.attribute_private else "shared",
            "pte_c_bit": st.pte_c_bit, "rmp": st.rmp}


def _kvm_vm(system: Any) -> Any:
    return system.kvm.vm(system.machine.s.vmfd)


# -- R1: a trailing PSMASH entry -----------------------------------------------------------


def _r1(result: dict[str, Any], reserved: Reserved) -> Workload:
    def wl(kernel: GuestKernel, cpu: GuestPort) -> None:
        a = _shared_page(kernel, cpu, result)
        b = _unaccepted_unit(kernel, reserved)
        assert b is not None
        accept_memory(kernel, b, PMD_SIZE)
        result["psmash_gpa"] = b
        # report R1 (a): [..., SHARED gfn 4K, PSMASH gfn 2M]; the shared entry is the page
        # already made shared (a no-op conversion), the PSMASH one the accepted 2 MiB unit
        desc = SnpPscDesc(PscHdr(0, 1), (PscEntry(0, a >> 12, SHARED, 0),
                                         PscEntry(0, b >> 12, PSMASH, 1))).encode()
        ans = _raw_psc(kernel, cpu, desc)
        after = SnpPscDesc.decode(ans.pop("buffer_after"))
        result["psc_answer"] = ans
        result["cur_page_after"] = [e.cur_page for e in after.entries[:2]]
    return wl


def _r1_inspect(system: Any, outcome: Any, result: dict[str, Any]) -> None:
    if "psmash_gpa" in result:
        result["psmash_unit_state"] = _page(system, result["psmash_gpa"])


# -- R2 / R3 / R15: an implicit shared -> private conversion -----------------------------------


def _implicit_private(result: dict[str, Any], reserved: Reserved) -> Workload:
    def wl(kernel: GuestKernel, cpu: GuestPort) -> None:
        gpa = _shared_page(kernel, cpu, result)
        va = __va(kernel, gpa)
        cpu.write(va, b"shared")
        _set_c_bit(kernel, cpu, va, True)
        result["c1_write"] = "started"
        cpu.write(va, b"private")        # C=1 on a GPA whose attribute is shared
        result["c1_write"] = "done"
    return wl


def _memory_fault_inspect(system: Any, outcome: Any, result: dict[str, Any]) -> None:
    vm = _kvm_vm(system)
    warns = [line for line in vm.log if "RMP fault" in line]
    result["kvm_rmp_fault_warnings"] = len(warns)
    result["kvm_first_rmp_fault_warning"] = warns[0] if warns else None
    if "gpa" in result:
        result["page_state"] = _page(system, result["gpa"])


# -- R4 / R5: the PSC scratch area ---------------------------------------------------------------


def _r4(result: dict[str, Any], reserved: Reserved) -> Workload:
    def wl(kernel: GuestKernel, cpu: GuestPort) -> None:
        a = _shared_page(kernel, cpu, result)
        desc = SnpPscDesc(PscHdr(0, 0), (PscEntry(0, a >> 12, SHARED, 0),)).encode()
        for info2 in (0, 0xFFFFFFFF):
            ans = _raw_psc(kernel, cpu, desc, exit_info_2=info2)
            ans.pop("buffer_after")
            result[f"exit_info_2={info2:#x}"] = ans
    return wl


def _r5(result: dict[str, Any], reserved: Reserved) -> Workload:
    def wl(kernel: GuestKernel, cpu: GuestPort) -> None:
        # sw_scratch = shared buffer + 0x7E8 (room for the 8-byte header only), end_entry 252
        desc = SnpPscDesc(PscHdr(0, 252), ()).encode()[:8]
        ans = _raw_psc(kernel, cpu, desc, scratch_off=GHCB_SHARED_BUF + 0x7E8)
        ans.pop("buffer_after")
        result["psc_answer"] = ans
    return wl


def _r5_inspect(system: Any, outcome: Any, result: dict[str, Any]) -> None:
    sa = _kvm_vm(system).vcpus[0].sev_es.ghcb_sa
    reads = list(getattr(sa, "reads", []) or [])
    end = max((off + n for off, n in reads), default=0)
    result["kvm_scratch_bytes_read"] = end
    result["kvm_read_end_in_ghcb"] = 0xFE8 + end
    result["read_past_ghcb_page"] = 0xFE8 + end > PAGE_SIZE


# -- R6 / R8 / R10: the seed conversion and one accepted 2 MiB unit ------------------------------


def _seed_and_accept(result: dict[str, Any], reserved: Reserved) -> Workload:
    from snpsim.guest.seed import SeedOutcome, seed_workload

    out = SeedOutcome("set_memory_encrypted", 1)
    seed = seed_workload("set_memory_encrypted", 1, out)

    def wl(kernel: GuestKernel, cpu: GuestPort) -> None:
        seed(kernel, cpu)
        result["gpa"] = out.gpa
        result["seed_ret"] = out.ret
        gpa = _unaccepted_unit(kernel, reserved)
        if gpa is not None:
            result["accepted_gpa"] = gpa
            accept_memory(kernel, gpa, PMD_SIZE)
    return wl


def _r10(result: dict[str, Any], reserved: Reserved) -> Workload:
    def wl(kernel: GuestKernel, cpu: GuestPort) -> None:
        _shared_page(kernel, cpu, result)
    return wl


def _page_inspect(system: Any, outcome: Any, result: dict[str, Any]) -> None:
    if result.get("gpa"):
        result["page_state"] = _page(system, result["gpa"])


# -- R7: a malformed, then a valid SNP guest request -------------------------------------------------


def _r7(result: dict[str, Any], reserved: Reserved) -> Workload:
    def wl(kernel: GuestKernel, cpu: GuestPort) -> None:
        from snpsim.guest.kernel import __pa
        from snpsim.guest.sev_core import (
            SnpGuestReq,
            SnpReqData,
            alloc_shared_pages,
            snp_issue_guest_request,
        )
        from snpsim.spec.sev_guest import SNP_MSG_REPORT_REQ, SnpGuestMsgHdr

        req_va = alloc_shared_pages(kernel, PAGE_SIZE)
        resp_va = alloc_shared_pages(kernel, PAGE_SIZE)
        assert req_va is not None and resp_va is not None
        data = SnpReqData(int(__pa(kernel, req_va)), int(__pa(kernel, resp_va)))
        payload = b"snpsim bug/R7".ljust(64, b"\0") + bytes(32)
        for name, ver in (("malformed", 0), ("valid", 1)):
            hdr = SnpGuestMsgHdr(msg_seqno=1, hdr_version=ver, msg_type=SNP_MSG_REPORT_REQ,
                                 msg_sz=len(payload))
            cpu.write(req_va, hdr.encode() + payload)
            req = SnpGuestReq(input=data)
            result[f"{name}_request"] = "sent"
            ret = snp_issue_guest_request(kernel, req)
            result[f"{name}_request"] = {"ret": ret, "exitinfo2": req.exitinfo2}
    return wl


def _r7_inspect(system: Any, outcome: Any, result: dict[str, Any]) -> None:
    rmp = system.platform.rmp
    fw = []
    for pfn in rmp.assigned_pfns():
        e = rmp.lookup(pfn)
        if e.assigned and e.asid == 0 and e.immutable:
            fw.append(int(pfn))
    result["firmware_owned_pfns"] = fw
    result["host_oopses"] = list(system.kvm.oopses)


# -- R9 / R11 / R16: guest paths ------------------------------------------------------------------------


def _r9(result: dict[str, Any], reserved: Reserved) -> Workload:
    def wl(kernel: GuestKernel, cpu: GuestPort) -> None:
        gpa = _unaccepted_unit(kernel, reserved)
        assert gpa is not None
        result["gpa"] = gpa
        result["read"] = "started"
        data = cpu.read(__va(kernel, gpa), 8)   # not accepted: RMP assigned, not validated
        result["read"] = data.hex()
    return wl


def _r11(result: dict[str, Any], reserved: Reserved) -> Workload:
    from snpsim.guest.unaccepted_memory import reserve_and_init

    def wl(kernel: GuestKernel, cpu: GuestPort) -> None:
        gpa = _unaccepted_unit(kernel, reserved)
        assert gpa is not None
        result["gpa"] = gpa
        reserve_and_init(kernel, gpa, b"NvVarStore header")
        result["read_back"] = cpu.read(__va(kernel, gpa), 17).decode(errors="replace")
    return wl


# -- R12 / R13: VMM cases ----------------------------------------------------------------------------------


def _r12(result: dict[str, Any], reserved: Reserved) -> Workload:
    def wl(kernel: GuestKernel, cpu: GuestPort) -> None:
        gpa = _shared_page(kernel, cpu, result)
        va = __va(kernel, gpa)
        result["encrypt_ret"] = set_memory_encrypted(kernel, va, 1)   # private, 4 KiB PTE
        cpu.write(va, b"private")
        _set_c_bit(kernel, cpu, va, False)
        result["c0_write"] = "started"
        cpu.write(va, b"mmio-style")     # C=0 on a GPA whose attribute is private
        result["c0_write"] = "done"
    return wl


def _r12_inspect(system: Any, outcome: Any, result: dict[str, Any]) -> None:
    if "gpa" in result:
        st = _page(system, result["gpa"])
        st["vmm_reads"] = system.machine.read_guest_ram(result["gpa"], 10).decode(errors="replace")
        result["page_state"] = st


def _r13(result: dict[str, Any], reserved: Reserved) -> Workload:
    def bug_r13_terminate(kernel: GuestKernel, cpu: GuestPort) -> None:
        from snpsim.guest.sev_startup import sev_es_terminate

        result["terminate_request"] = [1, 2]
        sev_es_terminate(kernel, 1, 2)   # GHCB_TERM_PVALIDATE, MSR protocol 0x100
    return bug_r13_terminate


#: report name -> trigger (guest and host reports alike).
TRIGGERS: dict[str, BugTrigger] = {
    "R1": BugTrigger(
        "KVM snp_begin_psc forwarded a trailing PSMASH entry as a shared conversion: the guest "
        "sends a hand-built PSC buffer [SHARED 4K, PSMASH 2M] (Linux never sends PSMASH)",
        _r1, _r1_inspect),
    "R2": BugTrigger(
        "KVM misread the RMP #NPF return code: an implicit conversion (the guest sets the C-bit "
        "of a shared page without a PSC, then writes) warns 'RMP fault on shared GFN' before "
        "the KVM_EXIT_MEMORY_FAULT", _implicit_private, _memory_fault_inspect),
    "R3": BugTrigger(
        "KVM's fast page-fault path swallowed private faults: the same implicit conversion as "
        "R2 spins in #NPF with no userspace exit (ends as a livelock in kvm_mmu_page_fault)",
        _implicit_private, _memory_fault_inspect),
    "R4": BugTrigger(
        "KVM took the PSC scratch length from SW_EXITINFO2: a valid one-entry PSC sent with "
        "exit_info_2 0 and 0xffffffff (hand-built; Linux passes 0) is refused for the latter",
        _r4),
    "R5": BugTrigger(
        "KVM's PSC scratch length ignored the end of the GHCB shared buffer: a hand-built PSC at "
        "buffer + 0x7E8 with end_entry 252 (Linux always uses offset 0) reads past the GHCB",
        _r5, _r5_inspect),
    "R6": BugTrigger(
        "the VMM never wrote hypercall.ret for KVM_HC_MAP_GPA_RANGE: the guest's first PSC "
        "sees GENERIC error and terminates (1, 1)", _seed_and_accept, _page_inspect),
    "R7": BugTrigger(
        "KVM did not reclaim the guest-request response page after a firmware error: the guest "
        "sends a malformed SNP guest request (header version 0), then a valid one",
        _r7, _r7_inspect),
    "R8": BugTrigger(
        "COCONUT validated a 4K-mapped span as 2M: the guest accepts a 2 MiB unit the RMP holds "
        "as 4K pages; the buggy PVALIDATE fails SIZEMISMATCH and terminates (1, 2)",
        _seed_and_accept, _page_inspect),
    "R9": BugTrigger(
        "COCONUT emulated a #VC 0x404 instead of panicking: the guest reads memory it never "
        "accepted; buggy validates it and goes on, Linux terminates (0, 0)", _r9),
    "R10": BugTrigger(
        "Oak stage0 ran PVALIDATE after sharing a page: the guest makes a page shared; buggy "
        "leaves it assigned and validated while the guest maps it shared", _r10, _page_inspect),
    "R11": BugTrigger(
        "OVMF initialised memory before accepting it: the guest writes a 2 MiB unit it has not "
        "accepted yet; buggy takes #VC 0x404 and terminates (0, 0)", _r11),
    "R12": BugTrigger(
        "OpenHCL crashed on a guest access with the wrong shared/private bit: the guest clears "
        "the C-bit of a private page without a PSC and writes; buggy VMM stops", _r12,
        _r12_inspect),
    "R13": BugTrigger(
        "Cloud Hypervisor panicked on the guest's termination request: the guest asks to "
        "terminate with reason (1, 2); buggy VMM panics instead of reporting it", _r13),
    "R15": BugTrigger(
        "libkrun had no KVM_EXIT_MEMORY_FAULT handler: an implicit conversion (C-bit set "
        "without a PSC) stops the VM with 'unknown exit reason 39'", _implicit_private,
        _memory_fault_inspect),
}
