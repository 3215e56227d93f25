# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 12 item 4: every loop the real system can spin in ends as a named livelock.

One test per loop kind; each asserts the loop's real function name and the vCPU (None
for host code with no vCPU) and that the run ended (no hang).  The loops and what they
retry on, from the sources:

- ``vmgexit_psc`` (arch/x86/coco/sev/core.c): re-issues the PSC while ``cur_entry <=
  end_entry``, no forward-progress check (linux-guest.md 5.2);
- ``kvm_mmu_page_fault``: a fault the MMU resolves as RET_PF_SPURIOUS/RETRY returns 1
  and ``vcpu_run`` re-enters the guest, which faults again (bug report R3);
- ``kvm_cpu_exec`` (QEMU accel/kvm/kvm-all.c): KVM_RUN again after a handler returned 0;
- ``vcpu_block`` (arch/x86/kvm/x86.c): sleeps until an event or a signal;
- ``rmpupdate`` (arch/x86/virt/svm/sev.c): ``do { RMPUPDATE } while (ret ==
  RMPUPDATE_FAIL_OVERLAP)``;
- ``snp_rmptable_psmash`` (arch/x86/kvm/svm/sev.c): ``do { psmash } while (ret ==
  PSMASH_FAIL_INUSE)``.
"""

import pytest
from fakeguest import DATA_GPA, GHCB_GPA, ghcb_call, make, set_pte_c

from snpsim.adversary import ATTACKS, VARIANTS
from snpsim.adversary.vmm_bugs import IGNORE_MEMORY_FAULT_OVERRIDES
from snpsim.guest.seed import SeedOutcome, seed_workload
from snpsim.kvm.virt_svm_sev import (
    rmp_make_private,
    rmp_make_shared,
    rmpupdate,
    snp_rmptable_psmash,
)
from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC
from snpsim.spec.kvm_uapi import KVM_EXIT_MEMORY_FAULT
from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc
from snpsim.spec.rmp import RmpState
from snpsim.system import SnpSystem
from snpsim.trace.progress import Livelock
from snpsim.vmm.i386_kvm import kvm_arch_handle_exit
from snpsim.vmm.kvm_all import kvm_cpu_exec
from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE

MiB = 1 << 20


def test_vmgexit_psc_never_advanced_is_a_livelock_on_the_converting_vcpu():
    v = ATTACKS["psc-never-advance"]
    system = SnpSystem(64 * MiB, 1, kvm=v.kvm, livelock_repeats=8)
    with v.installed():
        out = system.run(seed_workload("set_memory_decrypted", 1, SeedOutcome("set_memory_decrypted", 1)))
    assert out.vmm.result == "livelock" and out.termination is None
    assert (out.livelock_loop, out.livelock_vcpu) == ("vmgexit_psc", 0)
    assert out.describe() == f"livelock in vmgexit_psc on vCPU 0: {out.livelock_state}"
    assert out.livelock.endswith("-- 8 times the same state")


def _implicit_private_write(cpu):
    """Guest: DATA_GPA made shared (GHCB PSC) and written with C=0, then written with
    C=1 without a PSC (an implicit conversion: bug report R3's trigger)."""
    buf = SnpPscDesc(PscHdr(0, 0), (PscEntry(0, DATA_GPA >> 12, 2, 0),)).encode()
    ghcb_call(cpu, SVM_VMGEXIT_PSC, 0, 0, fields={"sw_scratch": GHCB_GPA + 0x800}, shared_buf=buf)
    set_pte_c(cpu, DATA_GPA, False)
    cpu.write(DATA_GPA, b"shared")
    cpu.set_idt_handler(29, lambda c, f: c.pvalidate(DATA_GPA, 0, True))
    set_pte_c(cpu, DATA_GPA, True)
    cpu.write(DATA_GPA, b"private")


def test_npf_resumed_as_spurious_is_a_livelock_in_kvm_mmu_page_fault():
    platform, kvm, m = make(_implicit_private_write, kvm_profile=VARIANTS["R3"].kvm)
    with VARIANTS["R3"].installed():
        res = m.run()
    assert res.result == "livelock"
    assert (res.livelock.loop, res.livelock.vcpu) == ("kvm_mmu_page_fault", 0)
    assert res.livelock.repeats == platform.progress.repeats == 64
    assert f"#NPF at GPA {DATA_GPA:#x}" in res.livelock.state


def test_the_fixed_kvm_takes_the_same_fault_to_userspace_and_completes():
    platform, kvm, m = make(_implicit_private_write)
    assert m.run().result == "completed"
    assert platform.progress.tripped is None


def _shared_write_to_private(cpu):
    """Guest: a C=0 write to DATA_GPA, which is private in KVM's attributes (QEMU sets
    every guest_memfd slot private): KVM_EXIT_MEMORY_FAULT, flags 0."""
    set_pte_c(cpu, DATA_GPA, False)
    cpu.write(DATA_GPA, b"shared")


def test_vmm_ignoring_memory_faults_is_a_livelock_in_kvm_cpu_exec():
    qemu = DEFAULT_QEMU_PROFILE.derive("ignores-memory-faults",
                                       overrides=IGNORE_MEMORY_FAULT_OVERRIDES)
    platform, kvm, m = make(_shared_write_to_private, qemu_profile=qemu)
    faults = []
    m.on_exit.append(lambda cpu, run: faults.append(run.memory_fault.gpa)
                     if run.exit_reason == KVM_EXIT_MEMORY_FAULT else None)
    res = m.run()
    assert res.result == "livelock"
    assert (res.livelock.loop, res.livelock.vcpu) == ("kvm_cpu_exec", 0)
    assert f"GPA {DATA_GPA:#x} size 0x1000 flags 0x0" in res.livelock.state
    # the same memory fault came back from 64 KVM_RUNs in a row, then the VM stopped
    assert faults == [DATA_GPA] * 64


def test_qemu_converting_the_same_fault_completes():
    platform, kvm, m = make(_shared_write_to_private)
    assert m.run().result == "completed"


def _halt(cpu):
    cpu.hlt()


def test_vcpu_block_with_a_sibling_that_never_runs_is_a_livelock_under_the_scheduler():
    # a 2-vCPU VM whose VMM starts only vCPU 0's thread: the halted vCPU 0 waits for a
    # vCPU that can never run (and so never blocks, nor wakes it)
    platform, kvm, m = make(_halt, vcpus=2, poweroff=False)
    res = m.run(lambda threads: platform.world.run_threads(threads[:1]))
    assert res.result == "livelock"
    assert (res.livelock.loop, res.livelock.vcpu) == ("vcpu_block", 0)
    assert res.livelock.state == "nothing can wake it (vCPU 1 never entered)"
    assert not any(v.blocked for v in kvm.vm(m.s.vmfd).vcpus)


def test_kvm_cpu_exec_on_one_vcpu_of_two_without_a_scheduler_raises_livelock():
    # one thread, no scheduler: QEMU's vCPU loop for vCPU 0 alone; its HLT blocks in KVM
    platform, kvm, m = make(_halt, vcpus=2, poweroff=False)
    with pytest.raises(Livelock) as info:
        kvm_cpu_exec(m.cpus[0], kvm_arch_handle_exit, m.io_handler)
    assert (info.value.loop, info.value.vcpu) == ("vcpu_block", 0)
    assert platform.progress.tripped is info.value


def _vm(kvm, m):
    return kvm.vm(m.s.vmfd)


def test_rmpupdate_fail_overlap_forever_is_a_livelock_on_the_host():
    platform, kvm, m = make(lambda cpu: None)
    vm = _vm(kvm, m)
    pfn = 0x800_0000  # SPA 512 GiB: nothing of the host or the guest lives there
    assert rmpupdate(vm, pfn, RmpState(gpa=0x800000, assigned=1, pagesize=1, asid=m.asid)) == 0
    # a 4 KiB update inside an assigned 2 MiB entry: RMPUPDATE_FAIL_OVERLAP every time
    with pytest.raises(Livelock) as info:
        rmpupdate(vm, pfn + 1, RmpState(gpa=0x801000, assigned=1, pagesize=0, asid=m.asid))
    assert (info.value.loop, info.value.vcpu) == ("rmpupdate", None)
    assert f"PFN {pfn + 1:#x}" in info.value.state


@pytest.mark.parametrize("sub", [0, 1, 511])
def test_rmp_make_shared_4k_without_psmash_spins_for_every_page_of_a_2m_entry(sub):
    """The head page is no exception: a host that returns one 4 KiB page of an assigned
    2 MiB entry without PSMASHing it first (what ``sev_gmem_invalidate`` does for a
    partial range, arch/x86/kvm/svm/sev.c v6.17) gets FAIL_OVERLAP forever from
    RMPUPDATE, and Linux's ``rmpupdate()`` keeps retrying; after the PSMASH it works."""
    platform, kvm, m = make(lambda cpu: None)
    vm = _vm(kvm, m)
    pfn = 0x800_0000
    assert rmp_make_private(vm, pfn, 0x800000, PG_LEVEL_2M, m.asid, False) == 0
    with pytest.raises(Livelock) as info:
        rmp_make_shared(vm, pfn + sub, PG_LEVEL_4K)
    assert (info.value.loop, info.value.vcpu) == ("rmpupdate", None)
    assert platform.rmp.lookup(pfn + sub).assigned
    assert snp_rmptable_psmash(vm, pfn + sub) == 0
    assert rmp_make_shared(vm, pfn + sub, PG_LEVEL_4K) == 0
    assert not platform.rmp.lookup(pfn + sub).assigned
    assert platform.rmp.lookup(pfn + (sub + 1) % 512).assigned


def test_rmpupdate_that_succeeds_leaves_nothing_watched():
    platform, kvm, m = make(lambda cpu: None)
    assert rmpupdate(_vm(kvm, m), 0x800_0000, RmpState(gpa=0x800000, assigned=1, asid=m.asid)) == 0
    assert len(platform.progress) == 0


def test_psmash_fail_inuse_forever_is_a_livelock_in_snp_rmptable_psmash():
    platform, kvm, m = make(lambda cpu: None)
    vm = _vm(kvm, m)
    pfn = 0x800_0000
    assert rmpupdate(vm, pfn, RmpState(gpa=0x800000, assigned=1, pagesize=1, asid=m.asid)) == 0
    platform.rmp.in_use.add(pfn + 0x10)     # a VMSA in the range that never stops running
    with pytest.raises(Livelock) as info:
        snp_rmptable_psmash(vm, pfn + 3)
    assert (info.value.loop, info.value.vcpu) == ("snp_rmptable_psmash", None)
    platform.rmp.in_use.discard(pfn + 0x10)
    assert snp_rmptable_psmash(vm, pfn + 3) == 0


def test_livelock_repeats_is_validated():
    with pytest.raises(ValueError):
        SnpSystem(64 * MiB, 1, livelock_repeats=1)


def test_a_livelock_on_one_vcpu_stops_every_vcpu_thread():
    # vCPU 0 spins in vmgexit_psc while the APs sleep in HLT: the whole VM stops, the
    # blocked vCPUs are kicked out of KVM_RUN, no thread is left running
    v = ATTACKS["psc-never-advance"]
    system = SnpSystem(64 * MiB, 2, kvm=v.kvm, seed=5)
    with v.installed():
        out = system.run(seed_workload("set_memory_decrypted", 1, SeedOutcome("set_memory_decrypted", 1)))
    assert (out.vmm.result, out.livelock_loop, out.livelock_vcpu) == ("livelock", "vmgexit_psc", 0)
    vm = system.kvm.vm(system.machine.s.vmfd)
    assert not any(v.blocked for v in vm.vcpus)
    assert all(c.exit_request for c in system.machine.cpus)


def test_the_json_summary_names_the_loop_vcpu_and_state():
    from snpsim.report.summary import summarize
    from snpsim.scenarios.catalog import run_scenario

    s = summarize(run_scenario("attack/psc-never-advance", memory=64 * MiB, vcpus=1))["outcome"]
    assert s["result"] == "livelock"
    assert (s["livelock_loop"], s["livelock_vcpu"]) == ("vmgexit_psc", 0)
    assert "cur_entry 0, end_entry 0" in s["livelock_state"]
    assert s["description"] == f"livelock in vmgexit_psc on vCPU 0: {s['livelock_state']}"
    ok = summarize(run_scenario("boot", memory=64 * MiB, vcpus=1))["outcome"]
    assert (ok["livelock_loop"], ok["livelock_vcpu"], ok["livelock_state"]) == (None, None, None)
