# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 14 item 4, CPU side: the VMSA bit of RMPADJUST and the checks VMRUN makes on an
SNP guest's VMSA page.

Sources: RMPADJUST return codes 0/1/2/6 and "VMSA ... Ignored when the current VMPL !=
0" -- the MSVC ``__rmpadjust`` page (hardware-and-ghcb.md 3.4); RDX bit 16 is Linux's
``RMPADJUST_VMSA_PAGE_BIT`` (asm/sev.h); FAIL_INUSE (3) for the VMSA bit of a running
VMSA is the model's reading of Linux ``shutdown_all_aps`` (arch/x86/coco/sev/core.c,
v6.17: the AP is kicked out of guest mode before RMPADJUST clears its VMSA bit;
docs/model-choices.md).  VMRUN: VMEXIT_INVALID is -1 (SVM_EXIT_ERR,
hardware-and-ghcb.md 7); the list of checks (assigned, ASID, VMSA, validated) is the
model's (:meth:`snpsim.hw.cpu.HostCpu.snp_vmsa_check`, docs/model-choices.md).
"""

from __future__ import annotations

from hw_machine import ASID, DATA_GPA, GVA, PT_GPA, assign, build, platform, run, spa

from snpsim.spec.exit_codes import SVM_EXIT_ERR, SVM_EXIT_VMGEXIT
from snpsim.spec.rmp import (
    RMPADJUST_FAIL_INPUT,
    RMPADJUST_FAIL_INUSE,
    RMPADJUST_FAIL_PERMISSION,
    RMPADJUST_FAIL_SIZEMISMATCH,
    RMPUPDATE_FAIL_INUSE,
    RmpState,
    rmpadjust_attrs,
)
from snpsim.spec.units import u64
from snpsim.spec.vmsa import VMSA_FIELDS

VMEXIT_INVALID = u64(SVM_EXIT_ERR)  # 0xFFFF_FFFF_FFFF_FFFF
VMSA_ON = rmpadjust_attrs(1, 0, vmsa=True)  # what Linux snp_set_vmsa passes: VMPL1 | BIT(16)
VMSA_OFF = rmpadjust_attrs(1, 0)


def entry(p, gpa=DATA_GPA):
    return p.rmp.lookup(spa(gpa) >> 12)


def test_rmpadjust_at_vmpl0_sets_and_clears_the_vmsa_bit():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    ret, _, faults = run(p, npt, lambda cpu: cpu.rmpadjust(GVA, 0, VMSA_ON))
    assert (ret, faults, entry(p).vmsa) == (0, [], True)
    ret, _, _ = run(p, npt, lambda cpu: cpu.rmpadjust(GVA, 0, VMSA_OFF))
    assert (ret, entry(p).vmsa) == (0, False)


def test_rmpadjust_vmsa_bit_is_ignored_below_vmpl0():
    # MSDOC __rmpadjust: the vmsa argument is "Ignored when the current VMPL != 0".
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    ret, _, _ = run(p, npt, lambda cpu: cpu.rmpadjust(GVA, 0, rmpadjust_attrs(2, 0, vmsa=True)), vmpl=1)
    assert (ret, entry(p).vmsa) == (0, False)


def test_rmpadjust_return_codes_with_the_vmsa_bit():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    # FAIL_PERMISSION (2): target VMPL0 is not below the current VMPL0 (Linux therefore
    # targets VMPL1: snp_set_vmsa's "attrs = 1").
    ret, _, _ = run(p, npt, lambda cpu: cpu.rmpadjust(GVA, 0, rmpadjust_attrs(0, 0, vmsa=True)))
    assert (ret, entry(p).vmsa) == (RMPADJUST_FAIL_PERMISSION, False)
    # FAIL_INPUT (1): target VMPL 4.
    ret, _, _ = run(p, npt, lambda cpu: cpu.rmpadjust(GVA, 0, rmpadjust_attrs(4, 0, vmsa=True)))
    assert (ret, entry(p).vmsa) == (RMPADJUST_FAIL_INPUT, False)
    # FAIL_SIZEMISMATCH (6): a 2 MiB request on a 4 KiB RMP entry (the GVA is 2M aligned).
    ret, _, _ = run(p, npt, lambda cpu: cpu.rmpadjust(GVA, 1, VMSA_ON))
    assert (ret, entry(p).vmsa) == (RMPADJUST_FAIL_SIZEMISMATCH, False)


def vmsa_vmcb(p, npt, gpa=DATA_GPA):
    """A VMCB whose VMSA page is the guest page at ``gpa``."""
    vmcb = p.host.new_vmcb(0, ASID, npt)
    vmcb.vmsa_pfn = spa(gpa) >> 12
    return vmcb


def test_rmpadjust_cannot_clear_the_vmsa_bit_of_the_running_vmsa():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    out = {}

    def body(cpu):
        out["set"] = cpu.rmpadjust(GVA, 0, VMSA_ON)  # no change: allowed while in use
        out["clear"] = cpu.rmpadjust(GVA, 0, VMSA_OFF)
        cpu.vmgexit()

    p.rmp.set_perms(spa(DATA_GPA) >> 12, 1, 0, vmsa=True)
    p.install_guest_code(ASID, lambda cpu: (cpu.write_cr3(PT_GPA), body(cpu)))
    ex = p.host.vmrun(vmsa_vmcb(p, npt))
    assert ex.exit_code == SVM_EXIT_VMGEXIT
    assert out == {"set": 0, "clear": RMPADJUST_FAIL_INUSE}
    assert entry(p).vmsa and not p.rmp.in_use  # in use only while the guest runs


def test_vmrun_on_a_proper_vmsa_enters_and_marks_it_in_use():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    p.rmp.set_perms(spa(DATA_GPA) >> 12, 1, 0, vmsa=True)
    seen = {}

    def body(cpu):
        seen["in_use"] = set(p.rmp.in_use)
        cpu.vmgexit()

    p.install_guest_code(ASID, body)
    ex = p.host.vmrun(vmsa_vmcb(p, npt))
    assert ex.exit_code == SVM_EXIT_VMGEXIT
    assert seen["in_use"] == {spa(DATA_GPA) >> 12}


def _vmrun_outcome(prepare):
    p = platform()
    npt = build(p)
    ran = []
    p.install_guest_code(ASID, lambda cpu: (ran.append(1), cpu.vmgexit()))
    prepare(p)
    ex = p.host.vmrun(vmsa_vmcb(p, npt))
    return ex.exit_code, ran, p.counters.get("VMEXIT_INVALID", 0)


def _vmsa_page(p, **kw):
    assign(p, DATA_GPA, **kw)
    p.rmp.set_perms(spa(DATA_GPA) >> 12, 1, 0, vmsa=True)


def test_vmrun_vmsa_checks_each_fail_with_vmexit_invalid():
    cases = {
        "unassigned": lambda p: None,
        "other asid": lambda p: _vmsa_page(p, asid=ASID + 1),
        "vmsa bit clear": lambda p: assign(p, DATA_GPA),
        "not validated": lambda p: _vmsa_page(p, validated=False),
    }
    for name, prepare in cases.items():
        code, ran, count = _vmrun_outcome(prepare)
        assert (code, ran, count) == (VMEXIT_INVALID, [], 1), name
    assert _vmrun_outcome(_vmsa_page)[:2] == (SVM_EXIT_VMGEXIT, [1])


def test_hostile_rmpupdate_of_a_vmsa_page():
    """The host cannot change a VMSA page's RMP entry while the vCPU runs on it
    (FAIL_INUSE, APM 15.36 in-use marking); when it does so between runs, the VMSA bit is
    gone (every RMPUPDATE clears it, model choice) and the next VMRUN fails."""
    p = platform()
    npt = build(p)
    _vmsa_page(p)
    vmcb = vmsa_vmcb(p, npt)
    p.install_guest_code(ASID, lambda cpu: cpu.vmgexit())
    p.rmp.in_use.add(vmcb.vmsa_pfn)  # as VMRUN marks it while the guest runs
    assert p.host.rmpupdate(spa(DATA_GPA), RmpState(0, 0, 0, 0, 0, 0)) == RMPUPDATE_FAIL_INUSE
    p.rmp.in_use.clear()
    # Re-assigned to the same ASID and GPA: assigned, but not a VMSA and not validated.
    assert p.host.rmpupdate(spa(DATA_GPA), RmpState(DATA_GPA, 1, 0, 0, 0, ASID)) == 0
    assert p.host.vmrun(vmcb).exit_code == VMEXIT_INVALID


def test_vmrun_on_a_new_vmsa_starts_a_new_context_with_its_state():
    p = platform()
    npt = build(p)
    for gpa in (DATA_GPA, DATA_GPA + 0x1000):
        assign(p, gpa)
        p.rmp.set_perms(spa(gpa) >> 12, 1, 0, vmsa=True)
    rip = VMSA_FIELDS["rip"]
    for gpa, value in ((DATA_GPA, 0xFFF0), (DATA_GPA + 0x1000, 0x1234)):
        p.mem.write_enc(spa(gpa) + rip.offset, value.to_bytes(8, "little"), ASID)
    seen = []
    p.install_guest_code(ASID, lambda cpu: [seen.append(cpu.vmsa["rip"]), cpu.hlt()])
    vmcb = vmsa_vmcb(p, npt)
    p.host.vmrun(vmcb)
    first = vmcb.cpu
    vmcb.vmsa_pfn = spa(DATA_GPA + 0x1000) >> 12  # what an SNP AP creation makes KVM do
    p.host.vmrun(vmcb)
    assert seen == [0xFFF0, 0x1234]
    assert vmcb.cpu is not first and p.retired_cpus == [first]


def test_no_check_for_a_guest_that_is_not_snp_active():
    p = platform()
    npt = build(p, tables_private=False)
    ran = []
    p.install_guest_code(ASID, lambda cpu: (ran.append(1), cpu.vmgexit()))
    vmcb = vmsa_vmcb(p, npt)  # an SEV-ES guest: its VMSA is not an RMP-checked page
    vmcb.snp_active = False
    assert p.host.vmrun(vmcb).exit_code == SVM_EXIT_VMGEXIT and ran == [1]
