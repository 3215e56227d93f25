# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 14 item 4, KVM side: what KVM does with an SNP AP creation after accepting it
(arch/x86/kvm/svm/sev.c at 0097f9df, ~v6.17): ``sev_snp_ap_creation`` raises
KVM_REQ_UPDATE_PROTECTED_GUEST_STATE on the target and kicks it; on the target's next
entry ``vcpu_enter_guest`` -> ``kvm_vcpu_reset(vcpu, true)`` ->
``sev_snp_init_protected_guest_state`` makes it HALTED with no VMSA, then RUNNABLE on the
guest's VMSA page only when the GPA is in a memslot and ``kvm_gmem_get_pfn`` gives a PFN;
a destroy leaves it HALTED.  A VMSA page that fails the VMRUN checks gives
KVM_EXIT_FAIL_ENTRY (svm.c ``svm_handle_exit``, SVM_EXIT_ERR).

The fake guest's BSP prepares the VMSA page itself (private write, PVALIDATE, RMPADJUST
with the VMSA bit, as Linux ``wakeup_cpu_via_vmgexit`` does) and issues the GHCB
request; the AP halts until it is started on a VMSA whose RIP is :data:`AP_RIP`.
"""

from __future__ import annotations

from fakeguest import DATA_GPA, ghcb_call, make

from snpsim.hw.cpu import Platform
from snpsim.kvm.kvm_main import Kvm
from snpsim.kvm.uapi import KvmSevCmd, KvmSevInit
from snpsim.spec import ghcb as G
from snpsim.spec import kvm_uapi as U
from snpsim.spec.exit_codes import (
    SVM_VMGEXIT_AP_CREATE,
    SVM_VMGEXIT_AP_CREATION,
    SVM_VMGEXIT_AP_DESTROY,
)
from snpsim.spec.kvm_uapi import KVM_EXIT_FAIL_ENTRY
from snpsim.spec.rmp import rmpadjust_attrs
from snpsim.spec.vmsa import VMSA_FIELDS
from snpsim.vmm.machine import RegionSpec

AP_RIP = 0x9A040
VMSA_GPA = DATA_GPA + 0x1000  # page aligned, not 2 MiB aligned, in guest_memfd RAM
SNP_ACTIVE = 1
INVALID_PAGE = (1 << 64) - 1


def ap_body(cpu):
    """The AP: halt until the VMRUN on a new VMSA starts it at AP_RIP, then note it."""
    if cpu.vmsa.get("rip") == AP_RIP:
        cpu.platform.counters["ap started"] = cpu.platform.counters.get("ap started", 0) + 1
    while True:
        cpu.hlt()


def make_vmsa(cpu, gpa, *, vmsa_bit=True):
    """BSP: the page at ``gpa`` (identity-mapped, C=1) becomes a VMSA with RIP = AP_RIP."""
    rip = VMSA_FIELDS["rip"]
    assert cpu.pvalidate(gpa, 0, True) == (0, 0)  # its #NPF makes KVM assign a gmem page
    cpu.write(gpa + rip.offset, AP_RIP.to_bytes(8, "little"))
    if vmsa_bit:
        assert cpu.rmpadjust(gpa, 0, rmpadjust_attrs(1, 0, vmsa=True)) == 0


def ap_control(cpu, request, gpa, apic=1):
    g = ghcb_call(cpu, SVM_VMGEXIT_AP_CREATION, (apic << 32) | request, gpa,
                  fields={"rax": SNP_ACTIVE} if request != SVM_VMGEXIT_AP_DESTROY else None)
    return G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2")


def wait_for_ap(cpu, n=1, passes=200):
    for _ in range(passes):
        if cpu.platform.counters.get("ap started", 0) >= n:
            return True
        cpu.pause()
    return False


def run(body, **kw):
    out = {}
    platform, kvm, m = make(lambda cpu: body(cpu, out), vcpus=2, ap_body=ap_body, **kw)
    out["result"] = m.run(platform.world.run_threads)
    vm = kvm.vm(m.s.vmfd)
    return out, platform, vm, m


def test_ap_create_switches_the_target_to_the_guest_vmsa():
    def body(cpu, out):
        make_vmsa(cpu, VMSA_GPA)
        out["info"] = ap_control(cpu, SVM_VMGEXIT_AP_CREATE, VMSA_GPA)
        out["started"] = wait_for_ap(cpu)

    out, platform, vm, _m = run(body)
    assert out["info"] == (0, 0) and out["started"]
    ap = vm.vcpus[1]
    spa = vm.npt.lookup(VMSA_GPA >> 12).pfn
    assert ap.vmcb.vmsa_pfn == spa and ap.sev_es.snp_has_guest_vmsa
    assert ap.sev_es.snp_vmsa_gpa == INVALID_PAGE and not ap.sev_es.snp_ap_waiting_for_reset
    e = platform.rmp.lookup(spa)
    assert (e.assigned, e.asid, e.gpa, e.vmsa, e.validated) == (True, vm.sev.asid, VMSA_GPA, True, True)
    # KVM's own VMSA page stays with the vCPU (freed by sev_free_vcpu at teardown).
    assert ap.sev_es.vmsa_pfn not in (None, spa)


def test_ap_create_on_a_page_without_the_vmsa_bit_fails_the_vmrun():
    def body(cpu, out):
        make_vmsa(cpu, VMSA_GPA, vmsa_bit=False)
        out["info"] = ap_control(cpu, SVM_VMGEXIT_AP_CREATE, VMSA_GPA)
        out["started"] = wait_for_ap(cpu, passes=50)

    out, platform, vm, m = run(body)
    assert out["info"] == (0, 0)  # KVM does not look at the page's RMP entry
    ap = vm.vcpus[1]
    assert ap.run.exit_reason == KVM_EXIT_FAIL_ENTRY
    assert ap.run.fail_entry.hardware_entry_failure_reason == INVALID_PAGE  # SVM_EXIT_ERR
    assert platform.counters.get("VMEXIT_INVALID") == 1 and "ap started" not in platform.counters
    assert any("entry failed, hardware error 0xffffffffffffffff" in e for e in m.s.errors)


def test_ap_create_outside_any_memslot_leaves_the_target_halted():
    gpa = 0x7000_1000  # page aligned, not 2M aligned, below MAXPHYADDR, no memslot

    def body(cpu, out):
        out["info"] = ap_control(cpu, SVM_VMGEXIT_AP_CREATE, gpa)
        out["started"] = wait_for_ap(cpu, passes=50)

    out, platform, vm, _m = run(body)
    ap = vm.vcpus[1]
    assert out["info"] == (0, 0) and not out["started"]
    assert ap.mp_state == "halted" and not ap.sev_es.snp_has_guest_vmsa
    assert ap.vmcb.vmsa_pfn == INVALID_PAGE >> 12 and ap.sev_es.snp_vmsa_gpa == INVALID_PAGE
    assert "VMEXIT_INVALID" not in platform.counters  # it never reaches VMRUN


def test_ap_create_in_a_memslot_without_guest_memfd_leaves_the_target_halted():
    shared_ram = 0x0200_0000

    def body(cpu, out):
        out["info"] = ap_control(cpu, SVM_VMGEXIT_AP_CREATE, shared_ram + 0x1000)
        out["started"] = wait_for_ap(cpu, passes=50)

    out, _platform, vm, _m = run(body, extra_regions=[
        RegionSpec("shared", shared_ram, 0x10000, kind="ram", guest_memfd=False)])
    ap = vm.vcpus[1]
    assert out["info"] == (0, 0) and not out["started"]
    assert ap.mp_state == "halted" and ap.vmcb.vmsa_pfn == INVALID_PAGE >> 12


def test_ap_destroy_makes_a_running_ap_not_runnable():
    def body(cpu, out):
        make_vmsa(cpu, VMSA_GPA)
        out["create"] = ap_control(cpu, SVM_VMGEXIT_AP_CREATE, VMSA_GPA)
        out["started"] = wait_for_ap(cpu)
        out["destroy"] = ap_control(cpu, SVM_VMGEXIT_AP_DESTROY, VMSA_GPA)
        for _ in range(20):
            cpu.pause()

    out, platform, vm, _m = run(body)
    assert out["create"] == out["destroy"] == (0, 0) and out["started"]
    ap = vm.vcpus[1]
    assert ap.mp_state == "halted" and ap.vmcb.vmsa_pfn == INVALID_PAGE >> 12
    assert not ap.sev_es.snp_ap_waiting_for_reset
    # The guest's page keeps its VMSA bit: clearing it is the guest's job (RMPADJUST).
    assert platform.rmp.lookup(vm.npt.lookup(VMSA_GPA >> 12).pfn).vmsa


def _request(info1, gpa, rax, features=None):
    """One AP creation request from the BSP; ``features``: the VM's ``vmsa_features``
    as KVM_SEV_INIT2 would have set them (model state set before the guest runs)."""
    out = {}

    def body(cpu):
        g = ghcb_call(cpu, SVM_VMGEXIT_AP_CREATION, info1, gpa, fields={"rax": rax})
        out["info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))

    platform, kvm, m = make(body, vcpus=2, ap_body=ap_body)
    vm = kvm.vm(m.s.vmfd)
    if features is not None:
        vm.sev.vmsa_features = features
    m.run(platform.world.run_threads)
    return out["info"], vm


def test_ap_create_with_a_vmpl_in_exit_info_1_is_refused():
    """v6.17 has no VMPL support: EXITINFO1 bits 19:16 make the request unknown
    ("invalid AP creation request"), GHCB_ERR_INVALID_INPUT (2, 5)."""
    info, vm = _request((1 << 32) | (1 << 16) | SVM_VMGEXIT_AP_CREATE, VMSA_GPA, SNP_ACTIVE)
    assert info == (2, 5)
    assert any("invalid AP creation request [0x10001]" in line for line in vm.log)


def test_ap_create_rax_must_equal_the_vms_vmsa_features():
    """sev_snp_ap_creation: RAX != sev->vmsa_features -> -EINVAL (GHCB_ERR_INVALID_INPUT);
    with DebugSwap (SVM_SEV_FEAT_DEBUG_SWAP, bit 5) the VM's features are 0x21."""
    features = SNP_ACTIVE | (1 << 5)
    info, vm = _request((1 << 32) | SVM_VMGEXIT_AP_CREATE, VMSA_GPA, SNP_ACTIVE, features)
    assert info == (2, 5) and vm.vcpus[1].sev_es.snp_vmsa_gpa == INVALID_PAGE
    info, vm = _request((1 << 32) | SVM_VMGEXIT_AP_CREATE, VMSA_GPA, features, features)
    assert info == (0, 0)


def test_init2_features_reach_the_vms_vmsa_features_and_the_status_msr():
    """__sev_guest_init: ``vmsa_features`` = KVM_SEV_INIT2's, | SVM_SEV_FEAT_SNP_ACTIVE for
    an SNP VM; the guest's SEV status MSR reports SEV_FEATURES from bit 2 (DebugSwap,
    SEV_FEATURES bit 5, is MSR_AMD64_SNP_DEBUG_SWAP, bit 7), which is what Linux's
    ``sev_status >> 2`` in a new VMSA relies on to match KVM's check."""
    k = Kvm(Platform(cbit=51).host)
    fd = k.ioctl(k.open(), U.KVM_CREATE_VM, U.KVM_X86_SNP_VM)
    assert k.ioctl(fd, U.KVM_MEMORY_ENCRYPT_OP, KvmSevCmd(U.KVM_SEV_INIT2, KvmSevInit(1 << 5))) == 0
    vm = k.vm(fd)
    assert vm.sev.vmsa_features == 0x21
    vcpu_fd = k.ioctl(fd, U.KVM_CREATE_VCPU, 0)
    assert k.vcpu(vcpu_fd).vmcb.sev_status == 0b111 | (1 << 7)
