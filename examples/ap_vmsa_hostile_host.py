# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""An SNP AP brought up through AP creation, and a host that takes its VMSA page away.

What it shows: the guest boots two vCPUs.  The BSP starts the AP as Linux does
(``wakeup_cpu_via_vmgexit``: a fresh VMSA page, RMPADJUST with the VMSA bit,
SVM_VMGEXIT_AP_CREATION); KVM records it (``sev_snp_ap_creation``) and switches the AP
to that page on the AP's next entry (``sev_snp_init_protected_guest_state``).  Just
then -- the AP is not running, so its VMSA page is not in use -- the host RMPUPDATEs the
page back to hypervisor-owned.

Expected outcome (sources: Linux arch/x86/coco/sev/core.c ``wakeup_cpu_via_vmgexit``,
v6.17; KVM arch/x86/kvm/svm/sev.c ``sev_snp_init_protected_guest_state`` at 0097f9df,
svm.c ``svm_handle_exit``; QEMU target/i386/kvm/kvm.c ``kvm_arch_handle_exit``; APM vol 2
15.36, VMRUN on a VMSA page; docs/model-choices.md for the model's VMRUN checks):

* before the host acts, the VMSA page is assigned to the guest, validated, with the VMSA
  bit set, at a GPA that is not 2 MiB aligned;
* the host's RMPUPDATE succeeds (0) and leaves the page hypervisor-owned, VMSA bit clear;
* the AP's VMRUN fails its VMSA checks (VMEXIT_INVALID): KVM_EXIT_FAIL_ENTRY, QEMU
  reports "KVM: entry failed, hardware error 0xffffffffffffffff" and stops the VM; the
  AP's work never runs and the run does not complete (exit status 1).

Run it: ``snpsim run examples/ap_vmsa_hostile_host.py``.
"""

from snpsim.api import Scenario, enter

scenario = Scenario("AP VMSA taken away by the host", memory="64M", vcpus=2)
data = scenario.data


@scenario.guest(vcpu=1)
def ap_work(g):
    data["ap_ran"] = True


@scenario.at(enter("sev_snp_init_protected_guest_state", vcpu=1))
def take_the_vmsa(h):
    gpa = h.vcpu(1).sev_es.snp_vmsa_gpa   # what the AP creation named
    if gpa >> 52:
        return                            # no AP creation pending yet
    spa = h.spa(gpa)
    data["vmsa_gpa"] = gpa
    data["rmp_before"] = h.rmp(spa)
    data["rmpupdate"] = h.rmpupdate(spa, assigned=False)
    data["rmp_after"] = h.rmp(spa)


@scenario.after
def what_qemu_said(h):
    data["vmm_errors"] = list(h.vmm_errors)
