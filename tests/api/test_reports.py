# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Bug reports R1-R16 (docs/bug-reports.md) written as a user writes them:
on the public scenario API (:mod:`snpsim.api`) only, each report one ``test_Rn`` of at
most 40 lines (tests/api/test_lines.py counts them).  The buggy host or VMM behaviour is
a hook on the real function, written here; a guest-side report's behaviour is guest
work.  Each test runs the report's scenario with the bug (its symptom) and without it
(the fixed behaviour).

Values asserted and their sources: termination (reason set, code) (1, 1) GHCB_TERM_PSC,
(1, 2) GHCB_TERM_PVALIDATE, (0, 0) GHCB_SEV_ES_GEN_REQ (linux-guest.md 1.3); #VC error
code 0x404 (page not validated) and Linux's line "Unsupported exit-code 0x404 in #VC
exception" (arch/x86/coco/sev/vc-handle.c; hardware-and-ghcb.md 8);
PVALIDATE FAIL_SIZEMISMATCH 6 (linux-guest.md 1.5); GHCB malformed input (2,
GHCB_ERR_INVALID_SCRATCH_AREA 3) (GHCB spec, sw_exit_info_1/2 answers);
KVM_MEMORY_EXIT_FLAG_PRIVATE 8, KVM_EXIT_MEMORY_FAULT 39, KVM_EXIT_SYSTEM_EVENT 24,
KVM_SYSTEM_EVENT_SEV_TERM 6 (include/uapi/linux/kvm.h); VMGEXIT_PSC_ERROR_GENERIC
(1 << 40), INVALID_HDR (1 << 32) | 1 (arch/x86/include/asm/sev-common.h); KVM's
"vmgexit: GHCB GPA [...] is not registered." (arch/x86/kvm/svm/sev.c); SIGBUS 7 /
BUS_OBJERR 3; SEV_RET_INVALID_PARAM 0x16 (include/uapi/linux/psp-sev.h).
"""

from errno import EIO

from snpsim import api
from snpsim.api import Scenario, enter
from snpsim.spec.exit_codes import GHCB_ERR_INVALID_SCRATCH_AREA
from snpsim.spec.faults import PFERR_GUEST_RMP_MASK
from snpsim.spec.kvm_uapi import (
    KVM_ENOSYS,
    KVM_EXIT_HYPERCALL,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_HC_MAP_GPA_RANGE,
    KVM_MAP_GPA_RANGE_DECRYPTED,
    KVM_MAP_GPA_RANGE_ENCRYPTED,
    KVM_MAP_GPA_RANGE_PAGE_SZ_2M,
    KVM_MEMORY_EXIT_FLAG_PRIVATE,
    KVM_SYSTEM_EVENT_SEV_TERM,
)
from snpsim.spec.psc import (
    PSC_ENTRY_SIZE,
    PSC_HDR_SIZE,
    VMGEXIT_PSC_ERROR_INVALID_HDR,
    VMGEXIT_PSC_MAX_COUNT,
    PscEntry,
    PscHdr,
    SnpPscDesc,
)
from snpsim.spec.psp_sev import SEV_RET_INVALID_PARAM
from snpsim.spec.sev_guest import SNP_MSG_REPORT_REQ, SnpGuestMsgHdr

MiB = 1 << 20
PRIVATE, SHARED, PSMASH = 1, 2, 3            # VMGEXIT_PSC_OP_* (GHCB spec 4.1.6)
VC_404 = "Unsupported exit-code 0x404 in #VC exception"
ENCRYPTED, DECRYPTED, PAGE_SZ_2M = (KVM_MAP_GPA_RANGE_ENCRYPTED, KVM_MAP_GPA_RANGE_DECRYPTED,
                                   KVM_MAP_GPA_RANGE_PAGE_SZ_2M)
FW_CFG_DMA_PORT = 0x518        # QEMU fw_cfg DMA address register, low half (FW_CFG_DMA_IO_BASE + 4)


def psc_desc(*entries: tuple[int, int, int, int]) -> bytes:
    """``struct snp_psc_desc`` bytes: entries (cur_page, gfn, operation, pagesize)."""
    return SnpPscDesc(PscHdr(0, len(entries) - 1), tuple(PscEntry(*e) for e in entries)).encode()


# ---- R8: a span the RMP holds as 4K pages, validated as 2M -------------------------------


def test_R8_4k_held_span_validated_as_2m_fails_sizemismatch():
    sc = Scenario("R8", memory="64M")

    @sc.guest
    def validate(g):
        gpa = g.unaccepted_gpa()                 # 2 MiB-aligned, never accepted
        va = g.va(gpa)
        g.result["gpa"] = gpa
        g.result["as_2m"] = g.pvalidate(va, "2M")            # COCONUT before svsm#512
        g.result["as_4k"] = {g.pvalidate(va + i * 4096, "4K") for i in range(512)}  # fix
        g.write(va + 8192, b"accepted")
        g.result["read"] = g.read(va + 8192, 8)

    res = sc.run()
    assert res.completed, res.describe()
    assert res.data["as_2m"] == (6, 0)          # PVALIDATE_FAIL_SIZEMISMATCH, CF 0
    assert res.data["as_4k"] == {(0, 0)} and res.data["read"] == b"accepted"
    rmp = res.host.rmp(res.host.spa(res.data["gpa"] + 8192))
    assert rmp["assigned"] and rmp["validated"] and rmp["pagesize"] == 0


# ---- R9: a #VC 0x404 must terminate, not be emulated ------------------------------------


def test_R9_vc_0x404_terminates_without_emulation():
    def scenario(emulating_handler):
        sc = Scenario("R9", memory="64M")

        @sc.guest
        def touch(g):
            g.result["gpa"] = g.unaccepted_gpa()
            g.result["read"] = g.read(g.va(g.result["gpa"]), 8)   # RMP: not validated

        if emulating_handler:     # COCONUT before svsm#929: validate the page, retry
            @sc.hook("vc_handle_exitcode")
            def emulate(original, kernel, ctxt, ghcb, exit_code):
                if exit_code != 0x404:
                    return original(kernel, ctxt, ghcb, exit_code)
                api.function("guest:pvalidate")(kernel, ctxt.fi.cr2 & ~0xFFF, 0, True)
                return 0                                    # ES_OK
        return sc.run()

    fixed = scenario(False)
    assert fixed.termination == (0, 0, "exc_vmm_communication")
    assert "read" not in fixed.data and VC_404 in fixed.outcome.warnings
    assert not fixed.page(fixed.data["gpa"]).rmp["validated"]   # nothing validated it
    buggy = scenario(True)
    assert buggy.completed and len(buggy.data["read"]) == 8     # trusted what it held
    assert buggy.page(buggy.data["gpa"]).rmp["validated"]


# ---- R11: memory written before it is accepted ---------------------------------------------


def test_R11_write_before_accept_faults_vc_0x404():
    def scenario(accept_first):
        sc = Scenario("R11", memory="64M")

        @sc.guest
        def nvstore(g):
            gpa = g.unaccepted_gpa()
            g.result["gpa"] = gpa
            if accept_first:                          # edk2#6285: accept, then write
                g.accept_memory(gpa, 2 * MiB)
            g.write(g.va(gpa), b"NvVarStore header")  # OVMF before the fix: write first
            g.result["read"] = g.read(g.va(gpa), 17)
        return sc.run()

    buggy = scenario(False)
    assert buggy.termination == (0, 0, "exc_vmm_communication")
    assert buggy.outcome.warnings[-1] == VC_404 and "read" not in buggy.data
    assert not buggy.page(buggy.data["gpa"]).rmp["validated"]
    fixed = scenario(True)
    assert fixed.completed and fixed.data["read"] == b"NvVarStore header"
    assert fixed.page(fixed.data["gpa"]).rmp["validated"]


# ---- R13: the VMM panicked on the guest's termination request ------------------------------


def test_R13_termination_request_is_reported_not_a_vmm_panic():
    def scenario(panicking_vmm):
        sc = Scenario("R13", memory="64M")

        @sc.guest
        def terminate(g):
            g.call("sev_es_terminate", 1, 2)     # MSR protocol TERM_REQ, GHCB_TERM_PVALIDATE

        if panicking_vmm:                        # Cloud Hypervisor before #7934
            @sc.hook("kvm_arch_handle_exit")
            def no_term_handler(original, cpu, run):
                if (run.exit_reason == KVM_EXIT_SYSTEM_EVENT
                        and run.system_event.type == KVM_SYSTEM_EVENT_SEV_TERM):
                    api.vmm_exit(101, f"unhandled GHCB exit {run.system_event.data[0]:#x}")
                return original(cpu, run)
        return sc.run()

    fixed = scenario(False)
    vmm = fixed.outcome.vmm
    assert vmm.result == "guest-terminated" and (vmm.reason_set, vmm.reason_code) == (1, 2)
    buggy = scenario(True)
    assert buggy.outcome.vmm.result == "qemu-exit" and buggy.outcome.vmm.reason_set is None
    # GHCB_MSR_TERM_REQ 0x100 | reason set 1 << 12 | code 2 << 16
    assert buggy.outcome.vmm.errors[-1] == "unhandled GHCB exit 0x21100"


# ---- R16: /dev/mem read of the not-validated BIOS area ---------------------------------------


def test_R16_devmem_read_of_bios_area_vc_0x404_sigbus_or_terminate():
    def scenario(user):
        sc = Scenario("R16", memory="64M")

        @sc.guest
        def devmem(g):
            g.result["read"] = g.call("devmem_read", 0xFE000, 16, user=user)
        return sc.run()

    user = scenario(True)
    assert user.completed, user.describe()                 # the machine survives
    sig = user.data["read"]
    assert (sig.signo, sig.code) == (7, 3)                 # SIGBUS, BUS_OBJERR
    assert user.outcome.warnings[-1] == VC_404
    kernel = scenario(False)
    assert kernel.termination == (0, 0, "exc_vmm_communication")
    assert kernel.outcome.warnings[-1] == VC_404 and "read" not in kernel.data


# ---- R6: the VMM never wrote hypercall.ret ---------------------------------------------------


def test_R6_stale_hypercall_ret_turns_a_done_psc_into_generic_error():
    def scenario(stale_ret, qemu_writes_ret=False):
        sc = Scenario("R6", memory="64M", qemu_knobs={"write_hypercall_ret": qemu_writes_ret})
        if stale_ret:            # KVM refactor: ret left at -KVM_ENOSYS in the PSC exits
            for name in ("snp_begin_psc", "snp_begin_psc_msr"):
                @sc.hook(name)
                def poison(original, vcpu, *a):
                    r = original(vcpu, *a)
                    if r == 0 and vcpu.run.exit_reason == KVM_EXIT_HYPERCALL:
                        vcpu.run.hypercall.ret = -KVM_ENOSYS & (2**64 - 1)
                    return r
        return sc.run()

    buggy = scenario(True)                            # Linux's first PSC gets GENERIC
    assert buggy.termination[:2] == (1, 1)            # SEV_TERM_SET_LINUX, GHCB_TERM_PSC
    assert buggy.outcome.vmm.result == "guest-terminated"
    assert scenario(True, qemu_writes_ret=True).completed   # QEMU 47e76d03b15 fix
    assert scenario(False).completed                        # KVM zeroes ret


# ---- R2 / R3: an implicit shared -> private conversion ------------------------------------


def implicit_private(sc):
    """Guest work of R2 and R3 (the report's trigger): a page made shared, written, then
    written through its private alias (C-bit set, no PSC): a shared<->private mismatch."""
    @sc.guest
    def implicit(g):
        va = g.alloc_page()
        g.result["gpa"] = g.pa(va)
        g.set_memory_decrypted(va)
        g.write(va, b"shared")
        g.set_c_bit(va, True)
        g.write(va, b"private")


def test_R2_memory_fault_exit_comes_before_any_rmp_fault_handling():
    def scenario(misread_rc):
        sc = Scenario("R2", memory="64M")
        implicit_private(sc)
        exits = []

        @sc.at(enter("kvm_handle_memory_fault"))
        def memory_fault(h):         # (gpa, size, flags, KVM's RMP-fault lines so far)
            mf = h.vcpu(0).run.memory_fault
            exits.append((mf.gpa, mf.size, mf.flags, [x for x in h.log if "RMP fault" in x]))

        if misread_rc:      # before "[PATCH v15 22/23]": only rc == 0 meant "went to userspace"
            @sc.hook("kvm_mmu_page_fault")
            def rmp_gate(original, vcpu, gpa, error_code):
                rc = original(vcpu, gpa, error_code)
                if rc < 0 and error_code & PFERR_GUEST_RMP_MASK:      # -EFAULT: exit
                    api.function("sev_handle_rmp_fault")(vcpu, gpa, error_code)
                return rc
        return sc.run(), exits

    fixed, exits = scenario(False)
    gpa = fixed.data["gpa"]
    assert exits == [(gpa, 4096, KVM_MEMORY_EXIT_FLAG_PRIVATE, [])]
    page = fixed.page(gpa)        # the VMM set the attribute, the re-fault made it private
    assert page.attribute_private and page.rmp["assigned"] and page.rmp["pagesize"] == 0
    assert fixed.counters.get("PSMASH", 0) == 0
    buggy, exits = scenario(True)
    [(_gpa, _size, flags, lines)] = exits
    assert flags == KVM_MEMORY_EXIT_FLAG_PRIVATE
    assert lines == [f"WARN: RMP fault on shared GFN {gpa >> 12:#x}"]   # before the exit


def test_R3_fast_path_never_swallows_a_fault_that_needs_userspace():
    def scenario(fast_path_for_private):
        sc = Scenario("R3", memory="64M")
        implicit_private(sc)
        exits, faults = [], []

        @sc.hook("kvm_handle_memory_fault")
        def memory_fault(original, cpu, run):
            exits.append((run.memory_fault.gpa, run.memory_fault.flags))
            return original(cpu, run)

        @sc.hook("kvm_mmu_page_fault")
        def npf(original, vcpu, gpa, error_code):
            faults.append(gpa)
            return original(vcpu, gpa, error_code)

        if fast_path_for_private:   # before "[PATCH 21/20] KVM: MMU: Disable fast path ..."
            @sc.hook("page_fault_can_be_fast")
            def any_slot(original, kvm, fault):
                return not fault.rsvd and fault.present and fault.write
        return sc.run(), exits, faults

    fixed, exits, faults = scenario(False)
    gpa = fixed.data["gpa"]
    assert exits == [(gpa, KVM_MEMORY_EXIT_FLAG_PRIVATE)]
    npfs = faults.count(gpa)
    assert fixed.page(gpa).attribute_private        # the exit, the conversion, the re-fault
    buggy, exits, faults = scenario(True)
    assert exits == [] and not buggy.completed and buggy.data["gpa"] == gpa  # same page
    assert faults.count(gpa) > npfs and set(faults[faults.index(gpa):]) == {gpa}  # spins
    page = buggy.page(gpa)                          # no userspace exit, no RMP change
    assert not page.attribute_private and not page.rmp["assigned"]


# ---- R15: no handler for KVM_EXIT_MEMORY_FAULT in the VMM ------------------------------------


def test_R15_first_private_access_memory_fault_handled_or_explicit_error():
    def scenario(no_handler):
        sc = Scenario("R15", memory="64M", qemu_knobs={"gmem_private_at_start": False})
        exits = []

        @sc.guest
        def first_private(g):
            g.result["pvalidate"] = g.pvalidate(g.va(0x1000))

        @sc.hook("kvm_handle_memory_fault")
        def memory_fault(original, cpu, run):
            mf = run.memory_fault
            exits.append((mf.flags, mf.gpa, mf.size))
            if no_handler:     # libkrun before #243: the exit falls to the catch-all
                return api.function("kvm_arch_handle_exit")(cpu, run)
            return original(cpu, run)
        return sc.run(), exits

    fixed, exits = scenario(False)     # MemoryFault { flags: 8, gpa: 4096, size: 4096 }
    assert exits == [(KVM_MEMORY_EXIT_FLAG_PRIVATE, 0x1000, 4096)]
    assert fixed.completed and fixed.data["pvalidate"] == (0, 0)
    page = fixed.page(0x1000)
    assert page.attribute_private and page.rmp["assigned"] and page.rmp["validated"]
    buggy, exits = scenario(True)
    assert exits == [(KVM_MEMORY_EXIT_FLAG_PRIVATE, 0x1000, 4096)]
    assert buggy.outcome.vmm.result == "internal-error"     # an explicit error, no hang
    assert "KVM: unknown exit reason 39" in buggy.outcome.vmm.errors
    assert "pvalidate" not in buggy.data and not buggy.page(0x1000).attribute_private


# ---- R4 / R5: the PSC scratch area ---------------------------------------------------------


def test_R4_psc_answer_does_not_depend_on_exit_info_2():
    def scenario(length_from_exit_info_2):
        sc = Scenario("R4", memory="64M")

        @sc.guest
        def psc(g):
            va = g.alloc_page()
            g.set_memory_decrypted(va)
            for info2 in (0, 0xFFFFFFFF):   # a valid one-entry buffer (page already shared)
                ans = g.psc(psc_desc((0, g.pa(va) >> 12, SHARED, 0)), exit_info_2=info2)
                g.result[info2] = (ans["sw_exit_info_1"], ans["sw_exit_info_2"])

        if length_from_exit_info_2:       # before 2be54670bdc0 (Fixes 9b54e248d264)
            @sc.hook("setup_vmgexit_scratch")
            def scratch(original, vcpu, sync, min_len):
                return original(vcpu, sync, max(min_len, vcpu.exit_info_2))
        return sc.run()

    fixed = scenario(False)
    assert fixed.completed and fixed.data == {0: (0, 0), 0xFFFFFFFF: (0, 0)}
    buggy = scenario(True)          # Linux passes 0 and "works"; the other is refused
    assert buggy.data[0] == (0, 0)
    assert buggy.data[0xFFFFFFFF] == (2, GHCB_ERR_INVALID_SCRATCH_AREA)  # malformed input


def test_R5_psc_near_the_end_of_the_shared_buffer_reads_nothing_past_it():
    def scenario(length_not_bounded):
        sc = Scenario("R5", memory="64M")

        @sc.guest
        def psc(g):               # sw_scratch = shared buffer + 0x7E8: room for the header
            hdr_only = SnpPscDesc(PscHdr(0, 252), ()).encode()[:PSC_HDR_SIZE]
            ans = g.psc(hdr_only, scratch_offset=0x800 + 0x7E8)
            g.result["answer"] = (ans["sw_exit_info_1"], ans["sw_exit_info_2"])

        if length_not_bounded:    # before 5867d7e202e0: not the end of the shared buffer
            @sc.hook("setup_vmgexit_scratch")
            def scratch(original, vcpu, sync, min_len):
                ret = original(vcpu, sync, min_len)
                if ret == 0:
                    vcpu.sev_es.ghcb_sa_len = PSC_HDR_SIZE + PSC_ENTRY_SIZE * VMGEXIT_PSC_MAX_COUNT
                return ret
        res = sc.run()
        return res, max(off + n for off, n in res.host.vcpu(0).sev_es.ghcb_sa.reads)

    fixed, end = scenario(False)
    assert fixed.data["answer"] == (0, VMGEXIT_PSC_ERROR_INVALID_HDR) and end <= PSC_HDR_SIZE
    buggy, end = scenario(True)     # header and entries 0..252 from GHCB offset 0xFE8
    assert end == PSC_HDR_SIZE + PSC_ENTRY_SIZE * 253 and 0xFE8 + end > 0x1000


# ---- R7: the guest-request response page left firmware-owned after a firmware error --------


def report_request(hdr_version: int) -> bytes:
    """An SNP_MSG_REPORT_REQ message (``struct snp_guest_msg_hdr`` + report request)."""
    payload = b"snpsim R7".ljust(64, b"\0") + bytes(32)
    return SnpGuestMsgHdr(msg_seqno=1, hdr_version=hdr_version, msg_type=SNP_MSG_REPORT_REQ,
                          msg_sz=len(payload)).encode() + payload


def test_R7_response_page_reclaimed_after_a_firmware_error():
    def scenario(no_cleanup_on_error):
        sc = Scenario("R7", memory="64M")

        @sc.guest
        def requests(g):
            req, resp = g.call("alloc_shared_pages", 4096), g.call("alloc_shared_pages", 4096)
            for name, version in (("malformed", 0), ("valid", 1)):   # Linux writes 1
                g.write(req, report_request(version))
                g.result[name] = g.guest_request(req, resp)

        if no_cleanup_on_error:   # AMDESE/AMDSEV#220: return before snp_cleanup_guest_buf
            fw_ret = []
            sc.hook("issue_snp_guest_request",
                    lambda original, kvm, data: fw_ret.append(original(kvm, data)) or fw_ret[-1])
            sc.hook("snp_cleanup_guest_buf",
                    lambda original, kvm, data: 0 if fw_ret[-1][0] else original(kvm, data))
        res = sc.run()
        return res, res.host.rmp(res.host.vm.sev.guest_resp_pfn << 12)

    fixed, page = scenario(False)
    assert fixed.data == {"malformed": (-EIO, SEV_RET_INVALID_PARAM), "valid": (0, 0)}
    assert fixed.completed and not page["assigned"]          # back to the hypervisor
    buggy, page = scenario(True)
    assert buggy.data == {"malformed": (-EIO, SEV_RET_INVALID_PARAM)}   # never returns
    assert page["assigned"] and page["asid"] == 0 and page["immutable"]  # firmware-owned
    [oops] = buggy.outcome.host_oopses           # KVM's write to it: host #PF, RMP + write
    assert "error_code=0x80000002" in oops and buggy.outcome.vmm.result == "internal-error"


# ---- R10: PVALIDATE after sharing, then a VMM DMA into the page ------------------------------


def test_R10_no_pvalidate_after_sharing_so_the_dma_reaches_the_guest():
    def scenario(pvalidate_after_sharing):
        sc = Scenario("R10", memory="64M")

        @sc.guest
        def share_then_dma(g):
            va = g.alloc_page()
            g.result["gpa"] = gpa = g.pa(va)
            g.result["decrypted"] = g.set_memory_decrypted(va)   # rescind + PSC(shared)
            if pvalidate_after_sharing:       # Oak stage0 before oak#4218, through the
                g.set_c_bit(va, True)         # encrypted mapping it still used
                g.result["pvalidate"] = g.pvalidate(va)
                g.set_c_bit(va, False)
            g.call("native_out", FW_CFG_DMA_PORT, gpa, 4)       # "DMA to this page"
            g.result["read"] = g.read(va, 13)

        @sc.at(enter("kvm_handle_io", where=lambda args: args["port"] == FW_CFG_DMA_PORT))
        def fw_cfg_dma(h):
            h.write(sc.data["gpa"], b"fw_cfg DMA ok")
        return sc.run()

    fixed = scenario(False)
    assert fixed.completed and fixed.data["read"] == b"fw_cfg DMA ok"
    page = fixed.page(fixed.data["gpa"])
    assert not page.attribute_private and not page.rmp["assigned"]
    buggy = scenario(True)
    assert buggy.data["pvalidate"] == (0, 0) and buggy.data["read"] != b"fw_cfg DMA ok"
    page = buggy.page(buggy.data["gpa"])     # assigned and validated, mapped shared
    assert page.rmp["assigned"] and page.rmp["validated"] and page.pte_c_bit is False
    assert page.host_read.startswith(b"fw_cfg DMA ok")    # the DMA went to the shared copy


# ---- R12: an access through the shared alias of a private page --------------------------------


def test_R12_shared_alias_access_to_private_ram_does_not_crash_the_vmm():
    def scenario(crash_on_shared_alias):
        sc = Scenario("R12", memory="64M")
        exits = []

        @sc.guest
        def shared_alias(g):
            va = g.alloc_page()                  # private, validated
            g.result["gpa"] = g.pa(va)
            g.write(va, b"private")
            g.set_c_bit(va, False)               # MMIO-style access, no PSC
            g.write(va, b"mmio-style")

        @sc.hook("kvm_handle_memory_fault")
        def memory_fault(original, cpu, run):
            mf = run.memory_fault
            exits.append((mf.gpa, mf.size, mf.flags))
            if crash_on_shared_alias and not mf.flags & KVM_MEMORY_EXIT_FLAG_PRIVATE:
                api.vmm_exit(101, f"guest accessed inaccessible gpa {mf.gpa:#x}: emulation failed")
            return original(cpu, run)
        return sc.run(), exits

    fixed, exits = scenario(False)            # QEMU: the page becomes shared, the write lands
    gpa = fixed.data["gpa"]
    assert exits == [(gpa, 4096, 0)] and fixed.completed
    assert fixed.host.read(gpa, 10) == b"mmio-style" and not fixed.page(gpa).attribute_private
    buggy, exits = scenario(True)             # OpenHCL before openvmm#1340: VTL2 crashed
    assert exits == [(gpa, 4096, 0)] and buggy.outcome.vmm.result == "qemu-exit"
    assert buggy.page(gpa).attribute_private  # VMM state unchanged, but the VMM is gone


# ---- R14: a VMGEXIT from a GHCB that was never registered -----------------------------------


def test_R14_psc_from_an_unregistered_ghcb_is_refused_before_any_conversion():
    def scenario(other_ghcb):
        sc = Scenario("R14", memory="64M")

        @sc.guest
        def psc(g):
            ghcb = g.alloc_page()
            g.set_memory_decrypted(ghcb)      # a shared page, never registered as the GHCB
            target = g.alloc_page()
            g.result["target"], g.result["ghcb"] = g.pa(target), g.pa(ghcb)
            ans = g.psc(psc_desc((0, g.pa(target) >> 12, SHARED, 0)),
                        ghcb_va=ghcb if other_ghcb else None)
            g.result["answer"] = (ans["sw_exit_info_1"], ans["sw_exit_info_2"])
        return sc.run()

    registered = scenario(False)
    assert registered.completed and registered.data["answer"] == (0, 0)
    assert not registered.page(registered.data["target"]).attribute_private
    other = scenario(True)                     # KVM_RUN -> -EINVAL, QEMU stops the VM
    assert f"vmgexit: GHCB GPA [{other.data['ghcb']:#x}] is not registered." in other.host.log
    assert other.outcome.vmm.errors == ["error: kvm run failed Invalid argument"] and "answer" not in other.data
    assert other.page(other.data["target"]).attribute_private       # nothing converted


# ---- R1: KVM's PSC loop and a trailing PSMASH entry --------------------------------------


def test_R1_trailing_psmash_entry_is_skipped_not_converted():
    def scenario(forward_trailing_psmash):
        sc, exits = Scenario("R1", memory="64M"), []

        @sc.guest
        def psc(g):     # [PRIVATE gfn a 4K, SHARED gfn b 4K, PSMASH gfn unit 2M]
            a, b, unit = g.pa(g.alloc_page()), g.pa(g.alloc_page()), g.unaccepted_gpa()
            g.set_memory_decrypted(g.va(b))
            g.accept_memory(unit, 2 * MiB)
            g.result.update(a=a, b=b, unit=unit)
            g.result["answer"] = g.psc(psc_desc((0, a >> 12, PRIVATE, 0), (0, b >> 12, SHARED, 0),
                                                (0, unit >> 12, PSMASH, 1)))

        @sc.hook("kvm_handle_hypercall")            # KVM_HC_MAP_GPA_RANGE exits of this PSC
        def hypercall(original, cpu, run):
            if "unit" in sc.data and "answer" not in sc.data:
                exits.append(tuple(run.hypercall.args[:3]))
            return original(cpu, run)

        if forward_trailing_psmash:   # before "[PATCH v15 23/23]": it became a shared 2M
            @sc.hook("snp_begin_psc")
            def begin(original, vcpu):
                ret, unit = original(vcpu), sc.data.get("unit")
                if ret == 1 and "answer" not in sc.data and exits[1:] and not exits[2:]:
                    hc = vcpu.run.hypercall
                    vcpu.run.exit_reason, hc.nr = KVM_EXIT_HYPERCALL, KVM_HC_MAP_GPA_RANGE
                    hc.args[:3] = [unit, 512, DECRYPTED | PAGE_SZ_2M]
                    vcpu.complete_userspace_io = lambda vcpu: 1
                    return 0
                return ret
        return sc.run(), exits

    fixed, exits = scenario(False)
    d = fixed.data
    assert exits == [(d["a"], 1, ENCRYPTED), (d["b"], 1, DECRYPTED)]   # no third exit:
    assert fixed.page(d["unit"]).attribute_private                  # the 2 MiB stays private
    assert (d["answer"]["sw_exit_info_1"], d["answer"]["sw_exit_info_2"]) == (0, 0)
    after = SnpPscDesc.decode(d["answer"]["buffer_after"])  # PSMASH done with no action;
    assert after.hdr.cur_entry == 3 and [e.cur_page for e in after.entries] == [1, 1, 512]  # (c)
    buggy, exits = scenario(True)
    assert exits[2:] == [(buggy.data["unit"], 512, DECRYPTED | PAGE_SZ_2M)]
    assert not buggy.page(buggy.data["unit"]).attribute_private  # the guest's 2 MiB, shared
