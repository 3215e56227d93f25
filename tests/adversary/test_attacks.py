# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A malicious hypervisor through the full system (``SnpSystem(...).run``): each attack of
``snpsim.adversary.ATTACKS`` against the Linux guest model, and the check that stops it.

Expected values come from the references, not from program output:

* termination (reason set, code) -- linux-guest.md 1.3: (0, 0) GHCB_SEV_ES_GEN_REQ,
  (0, 1) GHCB_SEV_ES_PROT_UNSUPPORTED, (0, 2) GHCB_SNP_UNSUPPORTED, (1, 0)
  GHCB_TERM_REGISTER, (1, 1) GHCB_TERM_PSC;
* the guest function that asks for it -- linux-guest.md 3.3 (``__set_pages_state``
  terminates when ``vmgexit_psc`` fails), 7.1 (``__page_state_change``), 5.1
  (``snp_register_ghcb_early``), 8.2 (the decompressor's ``sev_enable``: negotiation ->
  (0, 1), no SNP feature -> (0, 2)); the #VC handler for 0x404 (vc-handle.c, guest
  ``exc_vmm_communication``: unsupported exit code -> (0, 0));
* WARN texts and the es_result numbers -- linux-guest.md 5.2 and 1.7 (ES_VMM_ERROR 2,
  ES_EXCEPTION 4);
* fault codes -- hardware-and-ghcb.md 1.4: #VC 0x404; #NPF EXITINFO1 bit 31 RMP, bit 32
  GUEST_FINAL, bit 34 ENC, EXITINFO2 the GPA; host #PF bit 31 (X86_PF_RMP), bit 1 write.
"""

import pytest

from snpsim.adversary import ATTACKS, VARIANTS, Variant, all_variants, get_variant
from snpsim.adversary.attacks import HOST_WRITE_DATA, attack_log
from snpsim.guest.kernel import __va
from snpsim.guest.seed import SHARED_PAYLOAD, SeedOutcome, seed_workload
from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
from snpsim.kvm.profiles import DEFAULT_PROFILE
from snpsim.system import RunObserver, SnpSystem

MEM = 64 << 20
PAGE = 4096
KVM_MEMORY_ATTRIBUTE_PRIVATE = 1 << 3   # kvm-qemu-host.md (uapi kvm.h)
SVM_EXIT_NPF = 0x400                    # hardware-and-ghcb.md: #VMEXIT(NPF)
SVM_EXIT_VMGEXIT = 0x403
NPF_RMP, NPF_GUEST_FINAL, NPF_ENC = 1 << 31, 1 << 32, 1 << 34
X86_PF_WRITE, X86_PF_RMP = 1 << 1, 1 << 31


def run_seed(variant, function="set_memory_decrypted", observer=None):
    """The seed workload (one page made shared by a GHCB PSC) under ``variant``."""
    system = SnpSystem(memory=MEM, kvm=variant.kvm, qemu=variant.qemu)
    seed = SeedOutcome(function, 1)
    with variant.installed():
        out = system.run(seed_workload(function, 1, seed), observer)
    return system, seed, out


PRIVATE_AGAIN = b"private again"


def encrypt_then_exit_then_read(result):
    """Guest workload: a page made shared and private again (GHCB PSCs), written
    privately, then a PAUSE (an exit to the host), then read back privately."""
    def workload(kernel, cpu):
        gpa = kernel.page_alloc.alloc_page()
        va = __va(kernel, gpa)
        result["gpa"] = int(gpa)
        assert set_memory_decrypted(kernel, va, 1) == 0
        assert set_memory_encrypted(kernel, va, 1) == 0
        cpu.write(va, PRIVATE_AGAIN)
        cpu.pause()
        result["read"] = cpu.read(va, len(PRIVATE_AGAIN))
    return workload


def run_rmp_attack(variant):
    result = {}
    system = SnpSystem(memory=MEM, kvm=variant.kvm, qemu=variant.qemu)
    with variant.installed():
        out = system.run(encrypt_then_exit_then_read(result))
    vm = system.kvm.vm(system.machine.s.vmfd)
    return system, vm, result, out


# ---- the registry --------------------------------------------------------------------------------


def test_attack_registry_one_lookup_api():
    assert not set(ATTACKS) & set(VARIANTS)
    assert all_variants() == {**VARIANTS, **ATTACKS}
    for name, v in ATTACKS.items():
        assert isinstance(v, Variant) and v.name == name and v.kind == "attack"
        assert v.component == "kvm" and v.description and "\n" not in v.description
        assert v.check and "\n" not in v.check
        # the attack only adds hooks on the default KVM; knobs are the default's
        assert dict(v.kvm.knobs) == dict(DEFAULT_PROFILE.knobs) and v.hooks
        assert not v.kvm.overrides and v.kvm_base is None
        assert get_variant(name) is v and get_variant(f"attack/{name}") is v
    for name, v in VARIANTS.items():
        assert v.kind == "bug" and get_variant(name) is v and get_variant(f"bug/{name}") is v
    with pytest.raises(KeyError):
        get_variant("attack/R6")


def test_default_stack_completes_both_workloads():
    v = VARIANTS["R2"]  # any variant's QEMU profile is the default on the KVM side
    system = SnpSystem(memory=MEM)
    seed = SeedOutcome("set_memory_decrypted", 1)
    assert system.run(seed_workload("set_memory_decrypted", 1, seed)).completed
    assert seed.ret == 0 and seed.guest_read == SHARED_PAYLOAD
    result = {}
    out = SnpSystem(memory=MEM, qemu=v.qemu).run(encrypt_then_exit_then_read(result))
    assert out.completed and result["read"] == PRIVATE_AGAIN


# ---- GHCB PSC misanswers: vmgexit_psc / sev_es_ghcb_hv_call (linux-guest.md 5.2, 6) ------------

# attack, the named checks that stop it (outcome.checks; snpsim.spec.checks), from how Linux
# checks the answer (linux-guest.md 5.2, 6): verify_exception_info turns info1 = 2, or
# info1 = 1 with an event other than #GP/#UD, into ES_VMM_ERROR (2); a #GP is ES_EXCEPTION
# (4); vmgexit_psc fails on a result != ES_OK before it looks at sw_exit_info_2.
PSC_TERMINATIONS = [
    ("psc-info2-error", {"vmgexit_psc:exit_info_2"}),
    ("psc-malformed-input", {"verify_exception_info:status", "vmgexit_psc:result"}),
    ("psc-vmm-error-no-info2", {"verify_exception_info:status", "vmgexit_psc:result"}),
    ("psc-inject-pf", {"verify_exception_info:event", "vmgexit_psc:result"}),
    ("psc-inject-gp", {"vmgexit_psc:result"}),
    ("psc-reserved-set", {"vmgexit_psc:reserved"}),
    ("psc-end-entry-grown", {"vmgexit_psc:going-backward"}),
    ("psc-end-entry-grown-once", {"vmgexit_psc:going-backward"}),
]


@pytest.mark.parametrize(("name", "checks"), [
    pytest.param(n, c, marks=pytest.mark.check(*sorted(c)), id=n) for n, c in PSC_TERMINATIONS])
def test_psc_misanswer_terminates_1_1_from_set_pages_state(name, checks):
    _system, seed, out = run_seed(ATTACKS[name])
    assert out.vmm.result == "guest-terminated"
    assert out.termination == (1, 1, "__set_pages_state")     # GHCB_TERM_PSC
    assert set(out.checks) == checks                           # the checks that stopped it
    assert seed.ret is None                                    # set_memory_decrypted never returned


@pytest.mark.check("vmgexit_psc:result", "verify_exception_info:status")
def test_vmm_error_with_zero_exit_info_2_is_caught_only_by_the_result_check():
    """info1 = 2, info2 = 0: verify_exception_info gives ES_VMM_ERROR (2) and vmgexit_psc's
    result check is the only one that fails the PSC (its exit_info_2 check sees 0)."""
    _system, seed, out = run_seed(ATTACKS["psc-vmm-error-no-info2"])
    assert out.termination == (1, 1, "__set_pages_state")
    assert dict(out.checks) == {"verify_exception_info:status": 1, "vmgexit_psc:result": 1}
    assert "vmgexit_psc:exit_info_2" not in out.checks


def test_psc_cur_entry_backwards_livelocks_linux_and_the_watcher_names_vmgexit_psc():
    obs = RunObserver()
    system, seed, out = run_seed(ATTACKS["psc-cur-entry-backwards"], observer=obs)
    # Linux compares cur_entry with its initial value (0): the check passes, no termination
    assert out.termination is None and not out.completed
    assert out.vmm.result == "livelock"
    assert out.checks == {}                       # no named check stops it
    assert (out.livelock_loop, out.livelock_vcpu) == ("vmgexit_psc", 0)
    assert "cur_entry 0" in out.livelock_state
    assert out.describe().startswith("livelock in vmgexit_psc on vCPU 0: ")
    bound = system.platform.progress.repeats
    assert obs.stats.ghcb_exits["SVM_VMGEXIT_PSC"] >= bound
    # the conversion itself was done: the page is shared in KVM's attributes
    vm = system.kvm.vm(system.machine.s.vmfd)
    assert not vm.mem_attr_array.get(seed.gpa // PAGE) & KVM_MEMORY_ATTRIBUTE_PRIVATE


def test_psc_never_advance_livelocks_linux_and_the_watcher_names_vmgexit_psc():
    obs = RunObserver()
    system, seed, out = run_seed(ATTACKS["psc-never-advance"], observer=obs)
    assert out.termination is None and not out.completed
    assert (out.vmm.result, out.livelock_loop, out.livelock_vcpu) == ("livelock", "vmgexit_psc", 0)
    assert out.checks == {}
    assert "cur_entry 0, end_entry 0" in out.livelock_state
    assert obs.stats.ghcb_exits["SVM_VMGEXIT_PSC"] >= system.platform.progress.repeats
    # nothing was converted: no KVM_HC_MAP_GPA_RANGE exit for the guest's PSC
    vm = system.kvm.vm(system.machine.s.vmfd)
    assert vm.mem_attr_array.get(seed.gpa // PAGE) & KVM_MEMORY_ATTRIBUTE_PRIVATE


# ---- MSR protocol misanswers (linux-guest.md 5.1, 7.1, 8.2) --------------------------------------------


@pytest.mark.check("__page_state_change:response")
@pytest.mark.parametrize("name", ["msr-psc-error", "msr-psc-wrong-response"])
def test_msr_psc_misanswer_terminates_1_1_from_page_state_change(name):
    system, seed, out = run_seed(ATTACKS[name])
    assert set(out.checks) == {"__page_state_change:response"}
    assert out.vmm.result == "guest-terminated"
    assert out.termination == (1, 1, "__page_state_change")   # GHCB_TERM_PSC
    assert seed.gpa == 0                                       # boot never reached the workload
    assert (out.vmm.reason_set, out.vmm.reason_code) == (1, 1)


@pytest.mark.check("snp_register_ghcb_early:gfn")
def test_msr_register_other_gfn_terminates_1_0():
    _s, seed, out = run_seed(ATTACKS["msr-register-other-gfn"])
    assert set(out.checks) == {"snp_register_ghcb_early:gfn"}
    assert out.vmm.result == "guest-terminated"
    assert out.termination == (1, 0, "snp_register_ghcb_early")  # GHCB_TERM_REGISTER
    assert seed.gpa == 0


@pytest.mark.check("sev_es_negotiate_protocol:version")
@pytest.mark.parametrize("name", ["msr-sev-info-max-0", "msr-sev-info-min-3"])
def test_sev_info_outside_1_2_terminates_0_1_in_the_decompressor(name):
    _s, _seed, out = run_seed(ATTACKS[name])
    assert set(out.checks) == {"sev_es_negotiate_protocol:version"}
    assert out.vmm.result == "guest-terminated"
    assert out.termination == (0, 1, "sev_enable")             # GHCB_SEV_ES_PROT_UNSUPPORTED


@pytest.mark.check("sev_enable:hv_ft_snp")
def test_hv_features_without_snp_only_for_the_decompressor_terminates_0_2_there():
    _s, seed, out = run_seed(ATTACKS["msr-hv-features-no-snp-early"])
    assert out.vmm.result == "guest-terminated"
    assert out.termination == (0, 2, "sev_enable")                # GHCB_SNP_UNSUPPORTED
    assert set(out.checks) == {"sev_enable:hv_ft_snp"}
    assert seed.gpa == 0


@pytest.mark.check("sev_es_init_vc_handling:hv_ft_snp")
def test_hv_features_without_snp_only_for_the_kernel_proper_terminates_0_2_there():
    _s, seed, out = run_seed(ATTACKS["msr-hv-features-no-snp-late"])
    assert out.vmm.result == "guest-terminated"
    assert out.termination == (0, 2, "sev_es_init_vc_handling")  # GHCB_SNP_UNSUPPORTED
    assert set(out.checks) == {"sev_es_init_vc_handling:hv_ft_snp"}
    assert seed.gpa == 0


@pytest.mark.check("sev_enable:hv_ft_snp")
def test_hv_features_without_snp_terminates_0_2():
    _s, _seed, out = run_seed(ATTACKS["msr-hv-features-no-snp"])
    assert set(out.checks) == {"sev_enable:hv_ft_snp"}
    assert out.vmm.result == "guest-terminated"
    assert out.termination == (0, 2, "sev_enable")             # GHCB_SNP_UNSUPPORTED


# ---- RMP-level attacks (hardware-and-ghcb.md 1.4) ------------------------------------------------------


@pytest.mark.check("rmp:validated", "exc_vmm_communication:terminate")
def test_npt_remap_of_a_validated_page_is_stopped_by_the_validated_check():
    system, vm, result, out = run_rmp_attack(ATTACKS["npt-remap-validated"])
    log = attack_log(vm)
    gfn = result["gpa"] // PAGE
    [(action, struck_gfn, new_pfn)] = log.struck
    assert (action, struck_gfn) == ("remap", gfn)
    assert system.platform.host.npt_lookup(vm.npt, gfn).pfn == new_pfn
    e = system.platform.rmp.lookup(new_pfn)     # passes Reverse-Map, fails Validated
    assert e.assigned and e.asid == system.machine.asid and e.gpa == result["gpa"] and not e.validated
    # the guest's read: #VC 0x404 (PAGE_NOT_VALIDATED), Linux terminates (0, 0)
    assert dict(out.checks) == {"rmp:validated": 1, "exc_vmm_communication:terminate": 1}
    assert out.termination == (0, 0, "exc_vmm_communication")
    assert "read" not in result
    # the only exit after the strike is the termination VMGEXIT: no #NPF, the RMP fault is a #VC
    assert [x[0] for x in log.exits] == [SVM_EXIT_VMGEXIT]


@pytest.mark.check("rmp:guest-owned", "rmp:validated", "exc_vmm_communication:terminate")
def test_rmp_make_shared_under_the_guest_is_stopped_by_the_guest_owned_check():
    system, vm, result, out = run_rmp_attack(ATTACKS["rmp-make-shared-under-guest"])
    log = attack_log(vm)
    gpa = result["gpa"]
    [(action, gfn, pfn)] = log.struck
    assert (action, gfn) == ("rmp-shared", gpa // PAGE)
    # the guest's next private access: #NPF with the RMP, GUEST_FINAL and ENC bits at the GPA
    code, info1, info2 = log.exits[0]
    assert code == SVM_EXIT_NPF and info2 == gpa
    assert info1 & NPF_RMP and info1 & NPF_GUEST_FINAL and info1 & NPF_ENC
    # KVM (attribute still private) faults the gmem page in again: assigned, not validated,
    # so the retried access gets #VC 0x404 and Linux terminates (0, 0)
    e = system.platform.rmp.lookup(pfn)
    assert e.assigned and e.gpa == gpa and not e.validated
    assert set(out.checks) == {"rmp:guest-owned", "rmp:validated", "exc_vmm_communication:terminate"}
    assert out.termination == (0, 0, "exc_vmm_communication")
    assert "read" not in result


@pytest.mark.check("rmp:hypervisor-owned")
def test_host_write_to_a_private_page_is_stopped_by_the_hypervisor_owned_check():
    system, vm, result, out = run_rmp_attack(ATTACKS["host-write-private"])
    log = attack_log(vm)
    [(action, gfn, pfn)] = log.struck
    assert (action, gfn) == ("host-write", result["gpa"] // PAGE)
    [(spa, error_code)] = log.host_faults
    assert spa == pfn * PAGE and error_code & X86_PF_RMP and error_code & X86_PF_WRITE
    # a host #PF inside KVM is a host oops; KVM_RUN fails with -EFAULT and the VMM stops
    assert len(system.kvm.oopses) == 1 and f"spa={spa:#x}" in system.kvm.oopses[0]
    assert out.vmm.result == "internal-error" and out.termination is None
    assert set(out.checks) == {"rmp:hypervisor-owned"}
    # nothing was written: the guest's plaintext is intact
    mem = system.platform.mem
    assert mem.read_enc(spa, len(PRIVATE_AGAIN), system.machine.asid) == PRIVATE_AGAIN
    assert HOST_WRITE_DATA not in mem.read_raw(spa, PAGE)


@pytest.mark.check("rmp:guest-owned")
def test_npt_remap_to_another_guests_validated_page_is_stopped_only_by_the_guest_owned_check():
    """The foreign page is assigned (to ASID + 1), at the victim's GPA, 4K, validated:
    Reverse-Map, Page-Size and Validated pass and the entry's ASID is the only thing the
    RMP can refuse (hardware-and-ghcb.md 1.4: Guest-Owned, #NPF with the RMP bit)."""
    system, vm, result, out = run_rmp_attack(ATTACKS["npt-remap-other-guest"])
    log = attack_log(vm)
    gpa = result["gpa"]
    [(action, gfn, foreign)] = log.struck
    assert (action, gfn) == ("remap-other-guest", gpa // PAGE)
    code, info1, info2 = log.exits[0]
    assert code == SVM_EXIT_NPF and info2 == gpa
    assert info1 & NPF_RMP and info1 & NPF_GUEST_FINAL and info1 & NPF_ENC
    assert dict(out.checks) == {"rmp:guest-owned": 1}
    # KVM maps the guest_memfd page back (the GPA is private in its attributes): the guest
    # reads its own plaintext, never the other guest's page, and powers off
    assert out.completed and result["read"] == PRIVATE_AGAIN
    e = system.platform.rmp.lookup(foreign)
    assert e.assigned and e.asid == system.machine.asid + 1 and e.gpa == gpa and e.validated
    assert system.platform.host.npt_lookup(vm.npt, gfn).pfn != foreign


@pytest.mark.check("rmp:reverse-map")
def test_npt_remap_to_another_private_page_of_the_guest_is_stopped_only_by_the_reverse_map_check():
    """The substitute page is the guest's own: assigned to its ASID, 4K, validated, but at
    another GPA; only the Reverse-Map check refuses it (hardware-and-ghcb.md 1.4)."""
    system, vm, result, out = run_rmp_attack(ATTACKS["npt-remap-other-gpa"])
    log = attack_log(vm)
    gpa = result["gpa"]
    [(action, gfn, other)] = log.struck
    assert (action, gfn) == ("remap-other-gpa", gpa // PAGE)
    e = system.platform.rmp.lookup(other)
    assert e.assigned and e.asid == system.machine.asid and e.validated and e.gpa != gpa
    code, info1, info2 = log.exits[0]
    assert code == SVM_EXIT_NPF and info2 == gpa and info1 & NPF_RMP
    assert dict(out.checks) == {"rmp:reverse-map": 1}
    # KVM maps the guest_memfd page back: the guest reads its own plaintext
    assert out.completed and result["read"] == PRIVATE_AGAIN
    assert system.platform.host.npt_lookup(vm.npt, gfn).pfn != other


@pytest.mark.check("verify_exception_info:event", "exc_vmm_communication:terminate")
def test_a_pf_asked_for_in_the_answer_to_an_emulated_rdmsr_terminates_0_0():
    """The attack scenario's workload ends with an RDMSR of MSR_IA32_APICBASE: a #VC 0x7c
    the guest forwards through the GHCB.  The #PF the host asks for is neither #GP nor
    #UD, so verify_exception_info answers ES_VMM_ERROR and the #VC handler (kernel mode)
    terminates (0, 0) GHCB_SEV_ES_GEN_REQ (linux-guest.md 1.3, 6)."""
    from snpsim.scenarios.catalog import ScenarioParams, variant_scenario

    sc, result, _finish, _config = variant_scenario(
        "attack/vc-msr-inject-pf", ScenarioParams(memory=MEM, vcpus=1))
    out = sc.run().outcome
    assert result["read_back"] is True and "msr_read" not in result
    assert out.termination == (0, 0, "exc_vmm_communication")
    assert dict(out.checks) == {"verify_exception_info:event": 1,
                                "exc_vmm_communication:terminate": 1}
