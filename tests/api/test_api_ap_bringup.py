# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 14 item 4 through the public API only: a multi-vCPU SNP boot whose APs come up
through AP creation, with the RMP state of each VMSA page; hooks on the AP creation path
by real name; a hostile host and a buggy guest stopped by VMRUN's VMSA checks.

Sources: Linux ``wakeup_cpu_via_vmgexit`` / ``snp_alloc_vmsa_page`` / ``snp_set_vmsa``
(arch/x86/coco/sev/core.c, v6.17); KVM ``sev_snp_ap_creation`` and
``sev_snp_init_protected_guest_state`` (arch/x86/kvm/svm/sev.c, 0097f9df), KVM's initial
VMSA at ``INITIAL_VMSA_GPA`` 0xFFFFFFFFF000 (sev.c); ``svm_handle_exit``: SVM_EXIT_ERR
-> KVM_EXIT_FAIL_ENTRY (svm.c); QEMU ``kvm_arch_handle_exit``: "KVM: entry failed,
hardware error 0x%" PRIx64 (target/i386/kvm/kvm.c).
"""

from __future__ import annotations

from snpsim.api import Scenario, enter, function

INITIAL_VMSA_GPA = 0xFFFFFFFFF000
ENTRY_FAILED = "KVM: entry failed, hardware error 0xffffffffffffffff"


def test_multi_vcpu_boot_brings_every_ap_up_on_its_own_vmsa():
    sc = Scenario("ap bring-up", memory="64M", vcpus=3)
    creations = []

    @sc.hook("sev_snp_ap_creation")
    def note(original, vcpu):
        creations.append((vcpu.vcpu_id, vcpu.exit_info_1, vcpu.exit_info_2))
        return original(vcpu)

    for v in (1, 2):
        @sc.guest(vcpu=v)
        def work(g):
            g.result[f"ap{g.vcpu}"] = g.pa(g.kernel.sev_vmsa[g.vcpu])

    @sc.after
    def states(h):
        sc.data["vmsa"] = {i: h.vmsa(i) for i in range(3)}
        sc.data["asid"] = h.asid

    r = sc.run()
    assert r.completed, r.outcome.describe()
    # The BSP asked KVM once per AP: SVM_VMGEXIT_AP_CREATE (1) for APIC IDs 1 and 2.
    assert [(v, info1) for v, info1, _ in creations] == [(0, (1 << 32) | 1), (0, (2 << 32) | 1)]
    vmsa = r.data["vmsa"]
    bsp = vmsa[0]
    assert (bsp["guest_vmsa"], bsp["gpa"], bsp["rmp"]["vmsa"]) == (False, INITIAL_VMSA_GPA, True)
    for ap in (1, 2):
        s = vmsa[ap]
        gpa = r.data[f"ap{ap}"]
        assert creations[ap - 1][2] == gpa == s["gpa"]
        assert s["guest_vmsa"]
        assert gpa % (2 << 20) and gpa & 0x1FFF == 0x1000  # never 2 MiB aligned
        rmp = s["rmp"]
        assert (rmp["assigned"], rmp["asid"], rmp["vmsa"], rmp["validated"], rmp["pagesize"],
                rmp["owner"]) == (True, r.data["asid"], True, True, 0, "guest")


def test_a_hostile_host_that_unassigns_the_vmsa_page_stops_the_vm():
    """Between the AP creation and the AP's first run the VMSA page is not in use, so the
    host's RMPUPDATE succeeds -- and the VMRUN on it fails its checks (VMEXIT_INVALID):
    KVM_EXIT_FAIL_ENTRY, and QEMU stops the VM."""
    sc = Scenario("hostile vmsa", memory="64M", vcpus=2)

    @sc.at(enter("sev_snp_init_protected_guest_state", vcpu=1))
    def unassign(h):
        gpa = h.vcpu(1).sev_es.snp_vmsa_gpa
        if gpa >> 52:
            return  # the AP's own first entry, before any AP creation
        spa = h.spa(gpa)
        sc.data["rmpupdate"] = h.rmpupdate(spa, assigned=False)
        sc.data["rmp"] = h.rmp(spa)

    r = sc.run()
    assert r.data["rmpupdate"] == 0
    assert (r.data["rmp"]["assigned"], r.data["rmp"]["vmsa"]) == (False, False)
    assert not r.completed
    assert ENTRY_FAILED in r.host.vmm_errors


def test_a_guest_that_skips_the_rmpadjust_cannot_start_its_ap():
    """A guest whose ``snp_set_vmsa`` does nothing: KVM accepts the AP creation (it does
    not look at the RMP), the AP's VMRUN fails on a page without the VMSA bit."""
    sc = Scenario("no vmsa bit", memory="64M", vcpus=2)

    @sc.hook("snp_set_vmsa")
    def skip(original, kernel, va, caa, apic_id, make_vmsa):
        return 0 if make_vmsa else original(kernel, va, caa, apic_id, make_vmsa)

    @sc.after
    def states(h):
        sc.data["vmsa"] = h.vmsa(1)

    r = sc.run()
    assert not r.completed and ENTRY_FAILED in r.host.vmm_errors
    rmp = r.data["vmsa"]["rmp"]
    assert r.data["vmsa"]["guest_vmsa"] and (rmp["assigned"], rmp["vmsa"]) == (True, False)


def test_an_ap_that_never_starts_times_out_and_the_boot_goes_on():
    """A host that accepts the AP creation but never switches the AP to its VMSA: the
    BSP's wait for the AP (``cpuhp_bp_sync_alive``, the model's pass count) ends with
    "CPU1 failed to report alive state" and the guest boots on without CPU 1."""
    sc = Scenario("ap never starts", memory="64M", vcpus=2)
    sc.hook("sev_snp_init_protected_guest_state", lambda original, vcpu: None)

    @sc.guest(vcpu=1)
    def work(g):
        g.result["ap ran"] = True

    r = sc.run()
    assert r.completed, r.outcome.describe()
    assert "CPU1 failed to report alive state" in r.outcome.warnings
    assert "ap ran" not in r.data


def test_a_refused_ap_creation_is_cleaned_up_by_the_guest():
    """KVM refuses (GHCB_ERR_INVALID_INPUT): Linux's ``snp_cleanup_vmsa`` clears the VMSA
    bit again (RMPADJUST) and frees the page; the AP is not started."""
    sc = Scenario("ap refused", memory="64M", vcpus=2)
    sc.hook("sev_snp_ap_creation", lambda original, vcpu: -22)

    @sc.hook("snp_cleanup_vmsa")
    def note(original, kernel, vmsa, apic_id):
        sc.data["vmsa_gpa"] = int(function("__pa")(kernel, vmsa))
        return original(kernel, vmsa, apic_id)

    @sc.after
    def state(h):
        sc.data["rmp"] = h.rmp(h.spa(sc.data["vmsa_gpa"]))

    r = sc.run()
    assert r.completed, r.outcome.describe()
    assert "SNP AP CREATE error" in r.outcome.warnings
    assert "do_boot_cpu failed(-22) to wakeup CPU#1" in r.outcome.warnings
    rmp = r.data["rmp"]
    assert (rmp["assigned"], rmp["vmsa"], rmp["validated"]) == (True, False, True)


def test_teardown_of_a_multi_vcpu_vm_reclaims_every_vmsa():
    """After teardown no RMP entry is left with the guest's ASID: the APs' guest VMSA
    pages go back with guest_memfd (``sev_gmem_invalidate``), KVM's own VMSA pages with
    ``sev_free_vcpu`` (``kvm_rmp_make_shared``)."""
    sc = Scenario("teardown with APs", memory="64M", vcpus=3)

    @sc.after
    def tear_down(h):
        vmsas = [h.vmsa(i) for i in range(3)]
        sc.data["guest_vmsa"] = [v["guest_vmsa"] for v in vmsas]
        sc.data["closes"] = sorted({ret for _fd, ret in h.teardown()})
        sc.data["assigned_after"] = h.assigned_to_guest()
        sc.data["owners_after"] = [h.rmp(v["spa"])["owner"] for v in vmsas]

    r = sc.run()
    assert r.completed, r.outcome.describe()
    assert r.data["guest_vmsa"] == [False, True, True]
    assert r.data["closes"] == [0] and r.data["assigned_after"] == 0
    assert r.data["owners_after"] == ["hypervisor"] * 3


def test_after_an_ap_destroy_the_vcpu_has_no_vmsa_and_no_guest_vmsa():
    # AP_DESTROY (SVM_VMGEXIT_AP_DESTROY = 2): KVM's sev_snp_ap_creation sets the target's
    # snp_vmsa_gpa to INVALID_PAGE and the AP's next entry (__sev_snp_update_protected_
    # guest_state) clears the VMCB's VMSA pointer and halts it.  h.vmsa(1) then reports
    # no page (spa, gpa, rmp None) and guest_vmsa False, consistently; KVM's own
    # snp_has_guest_vmsa is never cleared (sev.c), so that key stays True.
    sc = Scenario("ap destroy", memory="64M", vcpus=2)

    @sc.guest(vcpu=0)
    def destroy(g):
        g.call("vmgexit_ap_control", 2, g.kernel.sev_vmsa[1], 1)

    @sc.after
    def states(h):
        sc.data["vmsa"] = h.vmsa(1)

    r = sc.run()
    assert r.errors == [], r.errors
    v = r.data["vmsa"]
    assert isinstance(v, dict)
    assert (v["spa"], v["gpa"], v["rmp"]) == (None, None, None)
    assert v["guest_vmsa"] is False and v["snp_has_guest_vmsa"] is True
    assert r.host.vcpu(1).sev_es.snp_vmsa_gpa == (1 << 64) - 1  # INVALID_PAGE
