# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Bug reports R2-R6, R12, R13, R15 (docs/bug-reports.md) as named variants:
each variant shows the reported symptom, the default stack the fixed behaviour.  Values
(GPAs, sizes, flags, codes) are the reports' own, or the reference's constants
(kvm-qemu-host.md) where a report gives none."""

import errno

import pytest
from fakeguest import (
    DATA_GPA,
    EXTRA_GVA,
    GHCB_GPA,
    ghcb_call,
    make,
    msr_call,
    page_tables,
    set_pte_c,
)

from snpsim.adversary import VARIANTS, Variant, get_variant
from snpsim.kvm.kvm_main import KvmProfile
from snpsim.spec import ghcb as G
from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC
from snpsim.spec.kvm_uapi import KVM_EXIT_MEMORY_FAULT
from snpsim.spec.msr_protocol import GHCB_MSR_TERM_REQ_VAL
from snpsim.spec.psc import VMGEXIT_PSC_ERROR_INVALID_HDR, PscEntry, PscHdr, SnpPscDesc
from snpsim.spec.rmp import PVALIDATE_SUCCESS
from snpsim.vmm.profiles import QemuProfile


def memory_faults(m):
    seen = []
    m.on_exit.append(lambda cpu, run: seen.append(
        (cpu.last_run_ret, run.memory_fault.gpa, run.memory_fault.size, run.memory_fault.flags))
        if run.exit_reason == KVM_EXIT_MEMORY_FAULT else None)
    return seen


# ---- the registry ----------------------------------------------------------------------------


def test_registry_lists_each_variant_with_its_report_and_profiles():
    assert set(VARIANTS) == {"R1", "R2", "R3", "R4", "R5", "R6", "R7", "R12", "R13", "R15"}
    for name, v in VARIANTS.items():
        assert isinstance(v, Variant) and v.name == name and v.report == name
        assert isinstance(v.kvm, KvmProfile) and isinstance(v.qemu, QemuProfile)
        assert v.description and "\n" not in v.description
        assert v.component in ("kvm", "vmm")
        # exactly one side differs from the default stack
        assert (v.kvm.name == "v7.0.12") == (v.component == "vmm")
        # the historical code is in hooks on real function names, not in the profiles
        assert not v.kvm.overrides and not v.qemu.overrides
        assert all(isinstance(n, str) and callable(h) for n, h in v.hooks.items())
    assert get_variant("bug/R6") is VARIANTS["R6"]
    # hooks or knobs: R4/R5 only change the base profile, R6/R15 only knobs
    assert {n for n, v in VARIANTS.items() if v.hooks} == {"R1", "R2", "R3", "R7", "R12", "R13"}
    assert VARIANTS["R4"].kvm_base == VARIANTS["R5"].kvm_base == "v6.17"


# ---- R2 / R3: a private access to a shared page whose SPTE is present -----------------------------


def private_write_to_shared_page(out):
    """Guest: DATA_GPA made shared (GHCB PSC) and mapped by a C=0 write, then written with
    C=1 (an implicit shared->private conversion).  Its #VC 0x404 handler validates the
    page, so the write completes once the page is private."""
    def body(cpu):
        buf = SnpPscDesc(PscHdr(0, 0), (PscEntry(0, DATA_GPA >> 12, 2, 0),)).encode()
        ghcb_call(cpu, SVM_VMGEXIT_PSC, 0, 0, fields={"sw_scratch": GHCB_GPA + 0x800},
                  shared_buf=buf)
        set_pte_c(cpu, DATA_GPA, False)
        cpu.write(DATA_GPA, b"shared")
        cpu.set_idt_handler(29, lambda c, f: out.setdefault("vc", []).append(
            (f.error_code, c.pvalidate(DATA_GPA, 0, True))))
        set_pte_c(cpu, DATA_GPA, True)
        cpu.write(DATA_GPA, b"private")
        out["read"] = cpu.read(DATA_GPA, 7)
    return body


@pytest.mark.bug_report("R2")
def test_r2_fixed_memory_fault_exit_first_and_no_rmp_fault_handling():
    out = {}
    platform, kvm, m = make(private_write_to_shared_page(out))
    vm = kvm.vm(m.s.vmfd)
    faults = memory_faults(m)
    log_at_exit = []
    m.on_exit.append(lambda cpu, run: log_at_exit.append(list(vm.log))
                     if run.exit_reason == KVM_EXIT_MEMORY_FAULT else None)
    assert m.run().result == "completed"
    assert faults == [(-errno.EFAULT, DATA_GPA, 4096, 8)]   # flags PRIVATE
    assert not any("RMP fault" in line for line in log_at_exit[0] + vm.log)
    assert out["vc"] == [(0x404, (PVALIDATE_SUCCESS, 0))] and out["read"] == b"private"
    assert platform.counters.get("PSMASH", 0) == 0


@pytest.mark.bug_report("R2")
def test_r2_variant_handles_the_rmp_fault_before_the_userspace_exit():
    out = {}
    v = VARIANTS["R2"]
    platform, kvm, m = make(private_write_to_shared_page(out), kvm_profile=v.kvm)
    vm = kvm.vm(m.s.vmfd)
    faults = memory_faults(m)
    log_at_exit = []
    m.on_exit.append(lambda cpu, run: log_at_exit.append(list(vm.log))
                     if run.exit_reason == KVM_EXIT_MEMORY_FAULT else None)
    with v.installed():
        assert m.run().result == "completed"
    assert faults == [(-errno.EFAULT, DATA_GPA, 4096, 8)]
    # the symptom: sev_handle_rmp_fault warned (shared GFN) before KVM_RUN returned
    assert any(f"RMP fault on shared GFN {DATA_GPA >> 12:#x}" in line for line in log_at_exit[0])


@pytest.mark.bug_report("R3")
def test_r3_fixed_mismatch_fault_goes_to_userspace():
    out = {}
    platform, kvm, m = make(private_write_to_shared_page(out))
    faults = memory_faults(m)
    assert m.run().result == "completed"
    assert faults == [(-errno.EFAULT, DATA_GPA, 4096, 8)] and out["read"] == b"private"


@pytest.mark.bug_report("R3")
def test_r3_variant_fast_path_spins_without_userspace_exit():
    out = {}
    platform, kvm, m = make(private_write_to_shared_page(out), kvm_profile=VARIANTS["R3"].kvm)
    faults = memory_faults(m)
    npf_before = []
    m.on_exit.insert(0, lambda cpu, run: npf_before.append(platform.counters.get("#NPF", 0)))
    with VARIANTS["R3"].installed():
        res = m.run()
    # no memory-fault exit, ever: the same #NPF is resumed as spurious until the livelock
    # watcher stops the VM in the #NPF loop; attributes and RMP unchanged (still shared)
    assert faults == [] and res.result == "livelock"
    assert (res.livelock.loop, res.livelock.vcpu) == ("kvm_mmu_page_fault", 0)
    assert f"GPA {DATA_GPA:#x}" in res.livelock.state
    assert platform.counters["#NPF"] - npf_before[-1] >= platform.progress.repeats
    vm = kvm.vm(m.s.vmfd)
    assert vm.mem_attr_array.get(DATA_GPA >> 12) == 0
    assert "read" not in out


# ---- R4 / R5: the scratch area --------------------------------------------------------------------


def psc_at(profile, scratch_off, end_entry):
    res = {}
    buf = SnpPscDesc(PscHdr(0, end_entry), ()).encode()

    def body(cpu):
        g = ghcb_call(cpu, SVM_VMGEXIT_PSC, 0, 0, fields={"sw_scratch": GHCB_GPA + scratch_off},
                      shared_buf=bytes(scratch_off - 0x800) + buf)
        res["hdr"] = bytes(g[scratch_off : scratch_off + 8])
        res["info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))

    platform, kvm, m = make(body, kvm_profile=profile)
    assert m.run().result == "completed"
    sa = kvm.vm(m.s.vmfd).vcpus[0].sev_es.ghcb_sa
    assert res["hdr"][2:4] == end_entry.to_bytes(2, "little")
    return res["info"], max(off + n for off, n in sa.reads)


@pytest.mark.bug_report("R4")
def test_r4_variant_is_the_v6_17_scratch():
    assert VARIANTS["R4"].kvm.knob("scratch") == "original"


@pytest.mark.bug_report("R5")
def test_r5_fixed_reads_stay_in_the_shared_buffer():
    # sw_scratch = shared buffer + 0x7F0 - 8: 8 bytes (the header) left to 0xFF0
    info, end = psc_at(VARIANTS["R5"].kvm.derive("hardened", knobs={"scratch": "hardened"}),
                       0x800 + 0x7E8, 252)
    assert info == (0, VMGEXIT_PSC_ERROR_INVALID_HDR) and end <= 8


@pytest.mark.bug_report("R5")
def test_r5_variant_reads_past_the_end_of_the_ghcb_shared_buffer():
    info, end = psc_at(VARIANTS["R5"].kvm, 0x800 + 0x7E8, 252)
    # v6.17 checks only the start (len = exit_info_2 = 0) and reads the header and
    # entries 0..252 from GHCB offset 0xFE8: past 0xFF0 and past the GHCB page itself
    assert end == 8 + 8 * 253 and 0xFE8 + end > 0x1000



# ---- R6: hypercall.ret ------------------------------------------------------------------------------


def one_psc_shared(out):
    def body(cpu):
        buf = SnpPscDesc(PscHdr(0, 0), (PscEntry(0, DATA_GPA >> 12, 2, 0),)).encode()
        g = ghcb_call(cpu, SVM_VMGEXIT_PSC, 0, 0, fields={"sw_scratch": GHCB_GPA + 0x800},
                      shared_buf=buf)
        out["info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))
    return body


@pytest.mark.bug_report("R6")
def test_r6_fixed_guest_sees_psc_success():
    out = {}
    _p, kvm, m = make(one_psc_shared(out))
    assert m.run().result == "completed" and out["info"] == (0, 0)


@pytest.mark.bug_report("R6")
def test_r6_variant_successful_conversion_reaches_the_guest_as_generic_error():
    out = {}
    v = VARIANTS["R6"]
    # the GHCB page's own MSR-protocol PSC fails too; the guest (fake) carries on
    _p, kvm, m = make(one_psc_shared(out), kvm_profile=v.kvm, qemu_profile=v.qemu)
    assert m.run().result == "completed"
    assert out["info"] == (0, 0x10000000000)  # VMGEXIT_PSC_ERROR_GENERIC
    # ... although the VMM did convert the page
    assert kvm.vm(m.s.vmfd).mem_attr_array.get(DATA_GPA >> 12) == 0


@pytest.mark.bug_report("R6")
def test_r6_variant_with_qemu_writing_ret_is_success():
    out = {}
    v = VARIANTS["R6"]
    qemu = v.qemu.derive("qemu-sets-ret", knobs={"write_hypercall_ret": True})
    _p, kvm, m = make(one_psc_shared(out), kvm_profile=v.kvm, qemu_profile=qemu)
    assert m.run().result == "completed" and out["info"] == (0, 0)


# ---- R12: shared access to a private page ---------------------------------------------------------

R12_GPA = 0x666D9000


def shared_write_to_private_page(cpu):
    assert cpu.pvalidate(EXTRA_GVA, 0, True) == (PVALIDATE_SUCCESS, 0)
    cpu.write(EXTRA_GVA, b"private")
    set_pte_c(cpu, EXTRA_GVA, False)
    cpu.write(EXTRA_GVA, b"mmio-style")


@pytest.mark.bug_report("R12")
def test_r12_fixed_qemu_converts_the_page_to_shared():
    _p, kvm, m = make(shared_write_to_private_page, ram=2 << 30,
                      launch=page_tables(extra=(R12_GPA,)))
    faults = memory_faults(m)
    assert m.run().result == "completed"
    assert faults == [(-errno.EFAULT, R12_GPA, 4096, 0)]
    assert m.read_guest_ram(R12_GPA, 10) == b"mmio-style"


@pytest.mark.bug_report("R12")
def test_r12_variant_vmm_crashes_and_leaves_the_page_private():
    _p, kvm, m = make(shared_write_to_private_page, ram=2 << 30,
                      launch=page_tables(extra=(R12_GPA,)), qemu_profile=VARIANTS["R12"].qemu)
    faults = memory_faults(m)
    with VARIANTS["R12"].installed():
        res = m.run()
    assert faults == [(-errno.EFAULT, R12_GPA, 4096, 0)]
    assert res.result == "qemu-exit"
    assert any("gpa=0x666d9000 is_shared=false" in e for e in res.errors)
    assert kvm.vm(m.s.vmfd).mem_attr_array.get(R12_GPA >> 12) == 8  # unchanged: private


# ---- R13: termination request ----------------------------------------------------------------------


def terminate_1_2(cpu):
    msr_call(cpu, GHCB_MSR_TERM_REQ_VAL(1, 2))


@pytest.mark.bug_report("R13")
def test_r13_fixed_reports_guest_terminated_1_2():
    _p, _k, m = make(terminate_1_2)
    res = m.run()
    assert res.result == "guest-terminated" and (res.reason_set, res.reason_code) == (1, 2)


@pytest.mark.bug_report("R13")
def test_r13_variant_vmm_panics_on_the_termination_request():
    _p, _k, m = make(terminate_1_2, qemu_profile=VARIANTS["R13"].qemu)
    with VARIANTS["R13"].installed():
        res = m.run()
    assert res.result == "qemu-exit" and res.reason_set is None
    assert "panicked" in res.errors[-1] and "0x21100" in res.errors[-1]


# ---- R15: RAM starts shared, first private access ------------------------------------------------------


def validate_0x1000(out):
    def body(cpu):
        out["pvalidate"] = cpu.pvalidate(0x1000, 0, True)
    return body


@pytest.mark.bug_report("R15")
def test_r15_fixed_memory_fault_private_then_resume():
    out = {}
    qemu = VARIANTS["R15"].qemu.derive("libkrun-fixed", knobs={"handle_memory_fault": True})
    platform, kvm, m = make(validate_0x1000(out), qemu_profile=qemu)
    faults = memory_faults(m)
    assert m.run().result == "completed"
    assert faults == [(-errno.EFAULT, 0x1000, 4096, 8)]   # MemoryFault{flags 8, 4096, 4096}
    assert out["pvalidate"] == (PVALIDATE_SUCCESS, 0)
    vm = kvm.vm(m.s.vmfd)
    e = platform.rmp.lookup(platform.host.npt_lookup(vm.npt, 1).pfn)
    assert e.assigned and e.gpa == 0x1000 and e.validated


@pytest.mark.bug_report("R15")
def test_r15_variant_without_handler_stops_with_an_explicit_error():
    out = {}
    _p, kvm, m = make(validate_0x1000(out), qemu_profile=VARIANTS["R15"].qemu)
    faults = memory_faults(m)
    res = m.run()
    assert faults == [(-errno.EFAULT, 0x1000, 4096, 8)]
    assert res.result == "internal-error" and "KVM: unknown exit reason 39" in res.errors
    assert "pvalidate" not in out


@pytest.mark.bug_report("R6")
def test_r6_variant_linux_guest_terminates_reason_set_1_code_1():
    """Full system: with the stale ret the Linux guest's first PSC (early MSR protocol,
    ``__page_state_change``) fails and Linux terminates with reason set 1, code 1 (PSC),
    as the report's mutation test expects; the default stack boots and powers off."""
    from snpsim.system import SnpSystem

    v = VARIANTS["R6"]
    out = SnpSystem(memory=64 << 20, kvm=v.kvm, qemu=v.qemu).run()
    assert out.vmm.result == "guest-terminated" and out.termination[:2] == (1, 1)
    assert SnpSystem(memory=64 << 20).run().completed
