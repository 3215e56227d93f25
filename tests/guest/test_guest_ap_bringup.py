# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 14 item 4, guest side: the BSP brings each AP up the SNP way, as Linux
``arch/x86/coco/sev/core.c`` (v6.17) does -- ``wakeup_cpu_via_vmgexit``,
``snp_alloc_vmsa_page`` (the second page of an 8 KiB block: never 2 MiB aligned),
the VMSA's initial state (the ``AP_INIT_*`` values, CS/RIP from the trampoline, EFER.SVME,
SEV_FEATURES = ``sev_status >> 2``), ``snp_set_vmsa`` (RMPADJUST, VMPL1 | VMSA bit),
``vmgexit_ap_control`` (SVM_VMGEXIT_AP_CREATION, EXITINFO1 = APIC ID << 32 | VMPL << 16
| request), ``snp_cleanup_vmsa`` on failure, and SVM_VMGEXIT_AP_DESTROY followed by
``snp_cleanup_vmsa`` (what Linux's kexec path, ``shutdown_all_aps``, does per AP).  The host is the fake host of ``guest_fakehost`` (it starts the
target on the named VMSA, or refuses with GHCB_ERR_INVALID_INPUT)."""

from __future__ import annotations

from guest_fakehost import ASID, SEV_STATUS, SPA_BASE, SmpFakeHost

from snpsim.api import hooked
from snpsim.guest.kernel import GuestConfig, __pa
from snpsim.guest.sev_core import (
    SEV_ES_TRAMPOLINE_START,
    snp_cleanup_vmsa,
    vmgexit_ap_control,
    wakeup_cpu_via_vmgexit,
)
from snpsim.spec.exit_codes import SVM_VMGEXIT_AP_CREATE, SVM_VMGEXIT_AP_DESTROY
from snpsim.spec.msr_protocol import GHCB_HV_FT_SNP
from snpsim.spec.vmsa import VMSA_FIELDS

CFG = dict(coherency_sfw_no=True)


def boot(nr_cpus=2, seed=0, workload=None, ap_workloads=None, **kw):
    h = SmpFakeHost(GuestConfig(nr_cpus=nr_cpus, **CFG), workload=workload, **kw)
    for v, w in (ap_workloads or {}).items():
        h.kernel.ap_workloads[v] = w
    out = h.run_smp(seed)
    return h, out


def vmsa_field(h, gpa, name):
    f = VMSA_FIELDS[name]
    raw = h.p.mem.read_enc(SPA_BASE + gpa + f.offset, f.size, ASID)
    return int.from_bytes(raw, "little")


def test_each_ap_comes_up_through_ap_creation():
    h, out = boot(nr_cpus=3, ap_workloads={1: lambda k, c: "ap1", 2: lambda k, c: "ap2"})
    k = h.kernel
    assert out == "poweroff" and k.warnings == []
    assert k.ap_results == {1: "ap1", 2: "ap2"} and k.ap_state == {1: "done", 2: "done"}
    assert [(r, a) for r, a, _g in h.ap_creations] == [(SVM_VMGEXIT_AP_CREATE, 1),
                                                       (SVM_VMGEXIT_AP_CREATE, 2)]
    for _r, apic, gpa in h.ap_creations:
        # snp_alloc_vmsa_page: the second 4 KiB of an 8 KiB-aligned block.
        assert gpa & 0x1FFF == 0x1000 and gpa == __pa(k, k.sev_vmsa[apic])
        e = h.p.rmp.lookup((SPA_BASE + gpa) >> 12)
        assert (e.assigned, e.asid, e.vmsa, e.validated, e.pagesize) == (True, ASID, True, True, 0)
        assert h.vmcbs[apic].vmsa_pfn == (SPA_BASE + gpa) >> 12


def test_the_vmsa_holds_linux_initial_ap_state():
    h, _out = boot()
    gpa = h.ap_creations[0][2]
    want = {
        "cs.base": SEV_ES_TRAMPOLINE_START & ~0xFFF,
        "cs.selector": (SEV_ES_TRAMPOLINE_START >> 12) << 8,
        "cs.limit": 0xFFFF, "cs.attrib": 0x9A,       # P | S | R | code
        "rip": SEV_ES_TRAMPOLINE_START & 0xFFF,
        "cr0": 0x60000010, "dr7": 0x400, "dr6": 0xFFFF0FF0, "rflags": 0x2,
        "g_pat": 0x0007040600070406, "xcr0": 0x1, "mxcsr": 0x1F80,
        "x87_ftw": 0x5555, "x87_fcw": 0x0040,
        "efer": 1 << 12,                               # EFER_SVME
        "vmpl": 0,
        "sev_features": SEV_STATUS >> 2,               # SNP_ACTIVE
    }
    got = {name: vmsa_field(h, gpa, name) for name in want}
    assert got == want


def test_no_ap_starts_without_the_ap_creation_feature():
    # wakeup_cpu_via_vmgexit: -EOPNOTSUPP without GHCB_HV_FT_SNP_AP_CREATION.
    h, out = boot(hv_features=int(GHCB_HV_FT_SNP), ap_workloads={1: lambda k, c: "never"})
    k = h.kernel
    assert out == "poweroff" and h.ap_creations == []
    assert k.ap_state == {1: "failed"} and 1 not in k.ap_results and k.sev_vmsa == {}
    assert k.warnings == [f"do_boot_cpu failed({-95}) to wakeup CPU#1"]


def test_a_refused_ap_creation_cleans_the_vmsa_up():
    h, out = boot(ap_refuse=True)
    k = h.kernel
    assert out == "poweroff"
    (_r, _apic, gpa), = h.ap_creations
    e = h.p.rmp.lookup((SPA_BASE + gpa) >> 12)
    # snp_cleanup_vmsa: the VMSA bit cleared again and the page back in the allocator.
    assert not e.vmsa and gpa in k.page_alloc.free
    assert k.sev_vmsa == {} and k.ap_state == {1: "failed"}
    assert k.warnings == ["SNP AP CREATE error", f"do_boot_cpu failed({-22}) to wakeup CPU#1"]


def test_ap_destroy_then_cleanup_clears_each_ap_vmsa():
    seen = {}

    def bsp(kernel, cpu):
        seen["gpas"] = {v: __pa(kernel, va) for v, va in kernel.sev_vmsa.items()}
        for apic, va in sorted(kernel.sev_vmsa.items()):
            seen[apic] = vmgexit_ap_control(kernel, SVM_VMGEXIT_AP_DESTROY, va, apic)
            snp_cleanup_vmsa(kernel, va, apic)

    h, out = boot(nr_cpus=3, workload=bsp)
    k = h.kernel
    assert out == "poweroff" and k.warnings == [] and seen[1] == seen[2] == 0
    destroys = [(a, g) for r, a, g in h.ap_creations if r == SVM_VMGEXIT_AP_DESTROY]
    assert destroys == [(1, seen["gpas"][1]), (2, seen["gpas"][2])]
    for gpa in seen["gpas"].values():
        assert not h.p.rmp.lookup((SPA_BASE + gpa) >> 12).vmsa and gpa in k.page_alloc.free


def test_cleanup_of_a_running_cpus_own_vmsa_leaks_it():
    """RMPADJUST cannot clear the VMSA bit of the VMSA a vCPU is running on (FAIL_INUSE
    3, model choice): ``snp_cleanup_vmsa`` logs "clear VMSA page failed (3), leaking
    page" and keeps the page out of the allocator."""
    seen = {}

    def ap1(kernel, cpu):
        va = kernel.sev_vmsa[1]
        seen["gpa"] = __pa(kernel, va)
        snp_cleanup_vmsa(kernel, va, 1)

    h, out = boot(ap_workloads={1: ap1})
    k = h.kernel
    assert out == "poweroff"
    assert k.warnings == ["clear VMSA page failed (3), leaking page"]
    assert h.p.rmp.lookup((SPA_BASE + seen["gpa"]) >> 12).vmsa and seen["gpa"] not in k.page_alloc.free


def test_no_free_block_for_the_vmsa_is_enomem():
    """snp_alloc_vmsa_page returns NULL -> wakeup_cpu_via_vmgexit -ENOMEM (-12); nothing is
    sent to the host."""
    h = SmpFakeHost(GuestConfig(nr_cpus=2, **CFG))
    h.kernel.page_alloc.alloc_pages = lambda order: None  # an allocator with no 8 KiB block
    out = h.run_smp(0)
    assert out == "poweroff" and h.ap_creations == []
    assert h.kernel.warnings == [f"do_boot_cpu failed({-12}) to wakeup CPU#1"]


def test_a_failing_rmpadjust_frees_the_page_and_sends_nothing():
    """snp_set_vmsa fails (here RMPADJUST answers FAIL_PERMISSION 2): "set VMSA page
    failed (2)", the page is freed, -EINVAL; no AP creation is sent."""
    with hooked({"guest:rmpadjust": lambda original, kernel, va, size, attrs: 2}):
        h, out = boot()
    k = h.kernel
    assert out == "poweroff" and h.ap_creations == []
    assert k.warnings == ["set VMSA page failed (2)", f"do_boot_cpu failed({-22}) to wakeup CPU#1"]
    assert k.sev_vmsa == {} and k.ap_state == {1: "failed"}


def test_an_unexpected_start_ip_is_refused():
    """wakeup_cpu_via_vmgexit: a start_ip other than the trampoline's -> WARN "Unsupported
    SNP start_ip: %lx", -EINVAL, nothing allocated or sent."""
    seen = {}

    def bsp(kernel, cpu):
        free = len(kernel.page_alloc.free)
        seen["ret"] = wakeup_cpu_via_vmgexit(kernel, 1, 0x1000, 1)
        seen["freed"] = len(kernel.page_alloc.free) - free

    h, out = boot(workload=bsp)
    assert out == "poweroff" and seen == {"ret": -22, "freed": 0}
    assert h.kernel.warnings[-1] == "Unsupported SNP start_ip: 1000"
    assert [r for r, _a, _g in h.ap_creations] == [SVM_VMGEXIT_AP_CREATE]  # smp_init's only
