# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 14 item 4: a built-in multi-vCPU run reports each vCPU's VMSA.  The BSP runs on
KVM's VMSA (``INITIAL_VMSA_GPA`` 0xFFFFFFFFF000, arch/x86/kvm/svm/sev.c, launched by
SNP_LAUNCH_FINISH with the VMSA bit); each AP on the page Linux's
``wakeup_cpu_via_vmgexit`` made (arch/x86/coco/sev/core.c: never 2 MiB aligned), which
KVM's ``sev_snp_init_protected_guest_state`` switched it to."""

import json

from click.testing import CliRunner

from snpsim.cli import main

INITIAL_VMSA_GPA = 0xFFFFFFFFF000


def test_seed_with_three_vcpus_reports_the_ap_vmsas():
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "3", "--json"])
    assert r.exit_code == 0, r.output
    vmsas = json.loads(r.stdout)["vmsas"]
    assert [v["vcpu"] for v in vmsas] == [0, 1, 2]
    bsp, *aps = vmsas
    assert (bsp["gpa"], bsp["guest_vmsa"]) == (INITIAL_VMSA_GPA, False)
    for v in vmsas:
        assert (v["assigned"], v["vmsa"], v["validated"]) == (True, True, True)
    for v in aps:
        assert v["guest_vmsa"] and v["gpa"] % (2 << 20) and v["gpa"] & 0x1FFF == 0x1000
    assert len({v["gpa"] for v in aps}) == 2


def test_sev_es_reports_no_vmsas():
    """An SEV-ES VM's VMSAs are not RMP pages: nothing to report."""
    r = CliRunner().invoke(main, ["run", "seed", "--memory", "64M", "--vcpus", "2",
                                  "--mode", "sev-es", "--json"])
    assert r.exit_code == 0, r.output
    vmsas = json.loads(r.stdout)["vmsas"]
    assert vmsas == []


def test_an_ap_left_without_a_vmsa_is_listed_as_such(tmp_path):
    # AP_DESTROY (SVM_VMGEXIT_AP_DESTROY = 2, KVM's sev_snp_ap_creation) leaves vCPU 1
    # with no VMSA: the summary lists it with no GPA and not on a guest page.
    path = tmp_path / "destroy.py"
    path.write_text("from snpsim.api import Scenario\n\n"
                    "scenario = Scenario('ap destroy', memory='64M', vcpus=2)\n\n"
                    "@scenario.guest(vcpu=0)\n"
                    "def destroy(g):\n"
                    "    g.call('vmgexit_ap_control', 2, g.kernel.sev_vmsa[1], 1)\n")
    r = CliRunner().invoke(main, ["run", str(path), "--json"])
    assert r.exit_code == 0, r.output
    vmsas = json.loads(r.stdout)["vmsas"]
    assert [v["vcpu"] for v in vmsas] == [0, 1]
    ap = vmsas[1]
    assert (ap["gpa"], ap["guest_vmsa"], ap["assigned"], ap["vmsa"]) == (None, False, None, None)
    text = CliRunner().invoke(main, ["run", str(path)])   # the table renders such an AP too
    assert text.exit_code == 0 and "Traceback" not in text.output, text.output
