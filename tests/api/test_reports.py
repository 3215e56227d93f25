# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Bug reports R1-R16 (shared/reference/bug-reports.md) written as a user writes them:
on the public scenario API (:mod:`snpsim.api`) only, each report one ``test_Rn`` of at
most 40 lines (tests/api/test_lines.py counts them).  The buggy host or VMM behaviour is
a hook on the real function, written here; a guest-side report's behaviour is guest
work.  Each test runs the report's scenario with the bug (its symptom) and without it
(the fixed behaviour).

Values asserted and their sources: termination (reason set, code) (1, 1) PSC, (1, 2)
PVALIDATE, (0, 0) general (GHCB spec 4.1.13, linux-guest.md 1.5); #VC error code 0x404
SVM_EXIT_NPF-not-validated and Linux's line "Unsupported exit-code 0x404 in #VC
exception" (arch/x86/coco/sev/vc-handle.c); PVALIDATE FAIL_SIZEMISMATCH 6 (APM vol 3);
KVM_MEMORY_EXIT_FLAG_PRIVATE 8, KVM_EXIT_MEMORY_FAULT 39, KVM_EXIT_SYSTEM_EVENT 24,
KVM_SYSTEM_EVENT_SEV_TERM 6 (include/uapi/linux/kvm.h); VMGEXIT_PSC_ERROR_GENERIC
(1 << 40), INVALID_HDR (1 << 32) | 1 (arch/x86/include/asm/sev-common.h); KVM's
"vmgexit: GHCB GPA [...] is not registered." (arch/x86/kvm/svm/sev.c); SIGBUS 7 /
BUS_OBJERR 3; SEV_RET_INVALID_PARAM 0x16 (include/uapi/linux/psp-sev.h).
"""

from snpsim import api
from snpsim.api import Scenario, enter
from snpsim.spec.faults import PFERR_GUEST_RMP_MASK
from snpsim.spec.kvm_uapi import (
    KVM_ENOSYS,
    KVM_EXIT_HYPERCALL,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_MEMORY_EXIT_FLAG_PRIVATE,
    KVM_SYSTEM_EVENT_SEV_TERM,
)
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc

MiB = 1 << 20
PRIVATE, SHARED, PSMASH = 1, 2, 3            # VMGEXIT_PSC_OP_* (GHCB spec 4.1.6)
VC_404 = "Unsupported exit-code 0x404 in #VC exception"


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
        exits = []

        @sc.hook("kvm_handle_memory_fault")
        def memory_fault(original, cpu, run):
            exits.append((run.memory_fault.gpa, run.memory_fault.flags))
            return original(cpu, run)

        if fast_path_for_private:   # before "[PATCH 21/20] KVM: MMU: Disable fast path ..."
            @sc.hook("page_fault_can_be_fast")
            def any_slot(original, kvm, fault):
                return not fault.rsvd and fault.present and fault.write
        return sc.run(), exits

    fixed, exits = scenario(False)
    assert exits == [(fixed.data["gpa"], KVM_MEMORY_EXIT_FLAG_PRIVATE)]
    assert fixed.page(fixed.data["gpa"]).attribute_private
    buggy, exits = scenario(True)
    assert exits == [] and not buggy.completed      # re-entered, #NPF again, forever
    page = buggy.page(buggy.data["gpa"])            # no userspace exit, no RMP change
    assert not page.attribute_private and not page.rmp["assigned"]
    assert buggy.counters["#NPF"] > 1000 > fixed.counters["#NPF"]


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
