# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The trigger of each ``bug/<name>`` scenario: the guest code that makes report <name>
(``docs/bug-reports.md``) show its symptom under the historical variant,
written on the public scenario API (:class:`snpsim.api.Guest`, :class:`snpsim.api.Host`).

Each :class:`BugTrigger` holds ``about`` (one line: what the report is about and what the
guest does), ``make(result)`` (the guest work, ``work(g)`` on vCPU 0 after boot; it
writes what the guest saw into ``result``) and ``inspect(host, outcome, result)`` (after
the run, adds what only the host side shows -- KVM log lines, scratch reads, page
state -- to ``result``).  The steps reuse what the tests of each report do
(tests/adversary, tests/kvm, tests/guest/test_bug_reports.py), written as guest code:
where Linux itself never does the step (a crafted PSC buffer, a C-bit flipped without a
PSC) ``about`` says so.  This module imports only :mod:`snpsim.api` and
:mod:`snpsim.spec` (an import-linter contract).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from snpsim.api import Guest, Host, function
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc
from snpsim.spec.sev_guest import SNP_MSG_REPORT_REQ, SnpGuestMsgHdr
from snpsim.spec.units import PAGE_SIZE, PMD_SIZE

__all__ = ["BugTrigger", "TRIGGERS", "report_order", "seed_round_trip"]

Work = Callable[[Guest], None]

PRIVATE, SHARED, PSMASH = 1, 2, 3
GHCB_SHARED_BUF = 0x800

#: What :func:`seed_round_trip` writes: before the conversions, and once private again.
SEED_PATTERN = b"private before conversion"
SEED_PAYLOAD = b"private: the VMM must see ciphertext"


@dataclass(frozen=True)
class BugTrigger:
    """``about`` (one line), ``make(result) -> work(g)`` (the guest work) and
    ``inspect(host, outcome, result)`` (host-side findings after the run, or None)."""

    about: str
    make: Callable[[dict[str, Any]], Work]
    inspect: Callable[[Host, Any, dict[str, Any]], None] | None = None


def report_order(name: str) -> tuple[int, str]:
    """Sort key: R1, R2, ..., R16 by number."""
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 1 << 30, name)


# -- guest helpers --------------------------------------------------------------------------


def seed_round_trip(g: Guest) -> tuple[int, int, int | None]:
    """The seed conversion (``snpsim run seed``, function ``set_memory_encrypted``): a
    free page written privately, made shared (``set_memory_decrypted``) and private
    again (``set_memory_encrypted``), then :data:`SEED_PAYLOAD` written and read back.
    Returns ``(va, gpa, ret)``: the page's direct-map GVA and GPA and
    ``set_memory_encrypted``'s return (0 or -errno; None if the guest stopped before)."""
    va = g.alloc_page()
    gpa = g.pa(va)
    g.write(va, SEED_PATTERN)
    g.set_memory_decrypted(va, 1)
    ret = g.set_memory_encrypted(va, 1)
    if ret == 0:
        g.write(va, SEED_PAYLOAD)
        g.read(va, len(SEED_PAYLOAD))
    return va, gpa, ret


def _shared_page(g: Guest, result: dict[str, Any]) -> int:
    """A page from the allocator made shared with ``set_memory_decrypted`` (4 KiB PTE):
    its GPA."""
    va = g.alloc_page()
    gpa = g.pa(va)
    result["gpa"] = gpa
    result["decrypt_ret"] = g.set_memory_decrypted(va, 1)
    return gpa


def _page(host: Host, gpa: int) -> dict[str, Any]:
    st = host.page(gpa)
    return {"gpa": gpa, "attribute": "private" if st.attribute_private else "shared",
            "pte_c_bit": st.pte_c_bit, "rmp": st.rmp}


# -- R1: a trailing PSMASH entry -----------------------------------------------------------


def _r1(result: dict[str, Any]) -> Work:
    def work(g: Guest) -> None:
        a = _shared_page(g, result)
        b = g.unaccepted_gpa()
        assert b is not None
        g.accept_memory(b, PMD_SIZE)
        result["psmash_gpa"] = b
        # report R1 (a): [..., SHARED gfn 4K, PSMASH gfn 2M]; the shared entry is the page
        # already made shared (a no-op conversion), the PSMASH one the accepted 2 MiB unit
        desc = SnpPscDesc(PscHdr(0, 1), (PscEntry(0, a >> 12, SHARED, 0),
                                         PscEntry(0, b >> 12, PSMASH, 1))).encode()
        ans = g.psc(desc, scratch_offset=GHCB_SHARED_BUF)
        after = SnpPscDesc.decode(ans.pop("buffer_after"))
        result["psc_answer"] = ans
        result["cur_page_after"] = [e.cur_page for e in after.entries[:2]]
    return work


def _r1_inspect(host: Host, outcome: Any, result: dict[str, Any]) -> None:
    if "psmash_gpa" in result:
        result["psmash_unit_state"] = _page(host, result["psmash_gpa"])


# -- R2 / R3 / R15: an implicit shared -> private conversion -----------------------------------


def _implicit_private(result: dict[str, Any]) -> Work:
    def work(g: Guest) -> None:
        va = g.va(_shared_page(g, result))
        g.write(va, b"shared")
        g.set_c_bit(va, True)
        result["c1_write"] = "started"
        g.write(va, b"private")          # C=1 on a GPA whose attribute is shared
        result["c1_write"] = "done"
    return work


def _memory_fault_inspect(host: Host, outcome: Any, result: dict[str, Any]) -> None:
    warns = [line for line in host.log if "RMP fault" in line]
    result["kvm_rmp_fault_warnings"] = len(warns)
    result["kvm_first_rmp_fault_warning"] = warns[0] if warns else None
    if "gpa" in result:
        result["page_state"] = _page(host, result["gpa"])


# -- R4 / R5: the PSC scratch area ---------------------------------------------------------------


def _r4(result: dict[str, Any]) -> Work:
    def work(g: Guest) -> None:
        a = _shared_page(g, result)
        desc = SnpPscDesc(PscHdr(0, 0), (PscEntry(0, a >> 12, SHARED, 0),)).encode()
        for info2 in (0, 0xFFFFFFFF):
            ans = g.psc(desc, scratch_offset=GHCB_SHARED_BUF, exit_info_2=info2)
            ans.pop("buffer_after")
            result[f"exit_info_2={info2:#x}"] = ans
    return work


def _r5(result: dict[str, Any]) -> Work:
    def work(g: Guest) -> None:
        # sw_scratch = shared buffer + 0x7E8 (room for the 8-byte header only), end_entry 252
        desc = SnpPscDesc(PscHdr(0, 252), ()).encode()[:8]
        ans = g.psc(desc, scratch_offset=GHCB_SHARED_BUF + 0x7E8)
        ans.pop("buffer_after")
        result["psc_answer"] = ans
    return work


def _r5_inspect(host: Host, outcome: Any, result: dict[str, Any]) -> None:
    sa = host.vcpu(0).sev_es.ghcb_sa
    reads = list(getattr(sa, "reads", []) or [])
    end = max((off + n for off, n in reads), default=0)
    result["kvm_scratch_bytes_read"] = end
    result["kvm_read_end_in_ghcb"] = 0xFE8 + end
    result["read_past_ghcb_page"] = 0xFE8 + end > PAGE_SIZE


# -- R6 / R8 / R10: the seed conversion and one accepted 2 MiB unit ------------------------------


def _seed_and_accept(result: dict[str, Any]) -> Work:
    def work(g: Guest) -> None:
        _va, gpa, ret = seed_round_trip(g)
        result["gpa"] = gpa
        result["seed_ret"] = ret
        unit = g.unaccepted_gpa()
        if unit is not None:
            result["accepted_gpa"] = unit
            g.accept_memory(unit, PMD_SIZE)
    return work


def _r10(result: dict[str, Any]) -> Work:
    def work(g: Guest) -> None:
        _shared_page(g, result)
    return work


def _page_inspect(host: Host, outcome: Any, result: dict[str, Any]) -> None:
    if result.get("gpa"):
        result["page_state"] = _page(host, result["gpa"])


# -- R7: a malformed, then a valid SNP guest request -------------------------------------------------

def _r7(result: dict[str, Any]) -> Work:
    def work(g: Guest) -> None:
        req_va = g.call("alloc_shared_pages", PAGE_SIZE)
        resp_va = g.call("alloc_shared_pages", PAGE_SIZE)
        assert req_va is not None and resp_va is not None
        payload = b"snpsim bug/R7".ljust(64, b"\0") + bytes(32)
        for name, ver in (("malformed", 0), ("valid", 1)):
            hdr = SnpGuestMsgHdr(msg_seqno=1, hdr_version=ver, msg_type=SNP_MSG_REPORT_REQ,
                                 msg_sz=len(payload))
            g.write(req_va, hdr.encode() + payload)
            result[f"{name}_request"] = "sent"
            ret, exitinfo2 = g.guest_request(req_va, resp_va)
            result[f"{name}_request"] = {"ret": ret, "exitinfo2": exitinfo2}
    return work


def _r7_inspect(host: Host, outcome: Any, result: dict[str, Any]) -> None:
    rmp = host.platform.rmp
    fw = []
    for pfn in rmp.assigned_pfns():
        e = rmp.lookup(pfn)
        if e.assigned and e.asid == 0 and e.immutable:
            fw.append(int(pfn))
    result["firmware_owned_pfns"] = fw
    result["host_oopses"] = list(host.kvm.oopses)


# -- R9 / R11: guest paths ----------------------------------------------------------------------------


def _r9(result: dict[str, Any]) -> Work:
    def work(g: Guest) -> None:
        gpa = g.unaccepted_gpa()
        assert gpa is not None
        result["gpa"] = gpa
        result["read"] = "started"
        data = g.read(g.va(gpa), 8)      # not accepted: RMP assigned, not validated
        result["read"] = data.hex()
    return work


def _r11(result: dict[str, Any]) -> Work:
    def work(g: Guest) -> None:
        gpa = g.unaccepted_gpa()
        assert gpa is not None
        result["gpa"] = gpa
        g.call("reserve_and_init", gpa, b"NvVarStore header")
        result["read_back"] = g.read(g.va(gpa), 17).decode(errors="replace")
    return work


# -- R12 / R13: VMM cases ----------------------------------------------------------------------------------


def _r12(result: dict[str, Any]) -> Work:
    def work(g: Guest) -> None:
        va = g.va(_shared_page(g, result))
        result["encrypt_ret"] = g.set_memory_encrypted(va, 1)   # private, 4 KiB PTE
        g.write(va, b"private")
        g.set_c_bit(va, False)
        result["c0_write"] = "started"
        g.write(va, b"mmio-style")       # C=0 on a GPA whose attribute is private
        result["c0_write"] = "done"
    return work


def _r12_inspect(host: Host, outcome: Any, result: dict[str, Any]) -> None:
    if "gpa" in result:
        st = _page(host, result["gpa"])
        st["vmm_reads"] = host.read(result["gpa"], 10).decode(errors="replace")
        result["page_state"] = st


def _r13(result: dict[str, Any]) -> Work:
    def bug_r13_terminate(g: Guest) -> None:
        result["terminate_request"] = [1, 2]
        # GHCB_TERM_PVALIDATE by the MSR protocol (0x100); called here, not through
        # g.call, so that the termination names this function as the requester
        function("sev_es_terminate")(g.kernel, 1, 2)
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
