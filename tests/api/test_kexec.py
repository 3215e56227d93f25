# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""kexec and kdump of an SNP guest, through the public API (issue 14 item 5): after the
hand-over no page stays shared -- not in the RMP, not in KVM's memory attributes, not in
the guest's direct map or ``.bss..decrypted`` -- except what Linux leaves.

Sources: arch/x86/coco/sev/core.c at 00d25566 (v6.16/6.17) ``snp_kexec_begin``,
``snp_kexec_finish``, ``unshare_all_memory``, ``set_pte_enc``, ``shutdown_all_aps``;
arch/x86/mm/pat/set_memory.c (v6.11+) ``set_memory_enc_stop_conversion`` and the
``mem_enc_lock`` try-lock in ``__set_memory_enc_dec`` (-EBUSY); arch/x86/kernel/reboot.c
``native_machine_shutdown`` (begin while the CPUs run, finish after ``stop_other_cpus``)
and arch/x86/kernel/crash.c at 01f492e1 ``native_machine_crash_shutdown`` (kdump: the
other CPUs are stopped first, then begin -- a try-lock under ``oops_in_progress`` -- and
finish, both always).  What Linux leaves shared: PTEs of aliases outside the direct map
(the walk covers only ``PAGE_OFFSET .. get_max_mapped()`` and ``.bss..decrypted``), and on
the crash path a conversion caught between its PSC and its PTE change (the try-lock only
reports it: "Failed to stop shared<->private conversions")."""

import errno

from snpsim.api import Scenario, function

KIB, MIB = 1 << 10, 1 << 20
#: __START_KERNEL_map (arch/x86/include/asm/page_64_types.h): the kernel image alias.
START_KERNEL_MAP = 0xFFFFFFFF80000000
SHARED_OP = 2  # SNP_PAGE_STATE_SHARED (sev-common.h)


def shared_everywhere(result):
    """Every RAM page (e820 RAM of the 64 MiB guest, [0, 64 MiB)) that is shared in some
    view: ``rmp`` (mapped in the NPT to a page not assigned to the guest's ASID),
    ``attr`` (KVM attribute not PRIVATE), ``pte`` (direct-map leaf with C=0)."""
    host = result.host
    out = {"rmp": [], "attr": [], "pte": []}
    for gpa in range(0, 64 * MIB, 4 * KIB):
        p = host.page(gpa)
        if p.rmp is not None and not (p.rmp["assigned"] and p.rmp["asid"] == host.asid):
            out["rmp"].append(gpa)
        if not p.attribute_private:
            out["attr"].append(gpa)
        if p.pte_c_bit is False:
            out["pte"].append(gpa)
    return out


def share_things(g):
    """Share pages the ways Linux does: two 4 KiB direct-map pages, a whole 2 MiB
    direct-map leaf (a 2M PSC entry), a guest-request page (``alloc_shared_pages``) and a
    page through a ``vmap`` alias (``cpa_process_alias`` clears its direct-map C-bit too).
    Records GPAs, the GHCB GPAs, the vmalloc GVA and the ``.bss..decrypted`` GPA."""
    a, b = g.alloc_page(), g.alloc_page()
    assert g.set_memory_decrypted(a) == 0 and g.set_memory_decrypted(b) == 0
    big = g.unaccepted_gpa()
    g.accept_memory(big, 2 * MIB)
    assert g.set_memory_decrypted(g.va(big), 512) == 0
    req = g.call("alloc_shared_pages", 4096)
    c = g.alloc_page()
    vm = g.call("vmap", [g.pa(c)])
    assert g.set_memory_decrypted(vm) == 0
    g.result.update(
        small=[g.pa(a), g.pa(b), g.pa(req), g.pa(c)], big=big, vmalloc=(vm, g.pa(c)),
        ghcbs=[g.pa(d.ghcb_page) for _c, d in sorted(g.kernel.runtime_data.items())],
        bss=g.kernel.boot.bss_decrypted_gpa)


def scenario(end, vcpus=1):
    sc = Scenario("kexec", memory="64M", vcpus=vcpus)

    @sc.guest
    def work(g):
        share_things(g)
        end(g)

    return sc


def bss_alias_c_bit(result):
    bss = result.data["bss"]
    return result.host.system.page_state(bss, vaddr=START_KERNEL_MAP + bss).pte_c_bit


def test_without_kexec_the_shared_pages_are_seen_in_every_view():
    # The control: the same guest powering off normally keeps its shared pages, so the
    # checks below can fail.
    r = scenario(lambda g: None).run()
    assert r.completed, r.describe()
    seen = shared_everywhere(r)
    shared = set(r.data["small"]) | set(range(r.data["big"], r.data["big"] + 2 * MIB, 4 * KIB))
    for view in ("rmp", "attr", "pte"):
        assert shared <= set(seen[view]), view
    assert set(r.data["ghcbs"]) <= set(seen["rmp"]) & set(seen["attr"]) & set(seen["pte"])
    assert bss_alias_c_bit(r) is False


def test_kexec_leaves_no_shared_page():
    r = scenario(lambda g: g.kexec(), vcpus=2).run()
    assert r.errors == []
    assert r.outcome.kexec == "kexec"
    assert r.describe().startswith("kexec: the guest handed over to the next kernel")
    assert shared_everywhere(r) == {"rmp": [], "attr": [], "pte": []}
    # .bss..decrypted (the boot GHCB) through its kernel-image alias, and both CPUs'
    # GHCBs (for_each_possible_cpu: the AP's too), private and validated again.
    assert bss_alias_c_bit(r) is True
    for gpa in r.data["ghcbs"] + [r.data["bss"]] + r.data["small"]:
        assert r.page(gpa).rmp["validated"], hex(gpa)
    # The GHCBs went last, over the MSR protocol: no GHCB is left to the guest.
    kernel = r.host.system.kernel
    assert kernel.boot_ghcb is None and not kernel.sev_cfg.ghcbs_initialized
    assert r.outcome.warnings == []


def test_kexec_leaves_the_vmalloc_alias_decrypted():
    # unshare_all_memory walks the direct map only: the vmap alias keeps C=0 in its PTE
    # (the next kernel builds new page tables) while the page itself is private again.
    r = scenario(lambda g: g.kexec()).run()
    vm, gpa = r.data["vmalloc"]
    assert r.host.system.page_state(gpa, vaddr=vm).pte_c_bit is False
    p = r.page(gpa)
    assert p.pte_c_bit is True and p.attribute_private and p.rmp["validated"]


def test_kdump_unshares_as_kexec_does():
    # The crash path runs the same begin/finish pair (crash.c calls both unconditionally).
    r = scenario(lambda g: g.crash_kexec()).run()
    assert r.outcome.kexec == "kdump"
    assert shared_everywhere(r) == {"rmp": [], "attr": [], "pte": []}
    assert bss_alias_c_bit(r) is True
    assert r.outcome.warnings == []


def test_kdump_during_a_conversion_leaves_that_page_shared():
    # A panic between the PSC (page shared in the RMP and in KVM) and the PTE change of a
    # set_memory_decrypted: the crash path's try-lock fails (the conversion holds
    # mem_enc_lock for read), Linux warns and unshares what the page tables show; the page
    # in flight still has C=1 in the direct map, so it stays shared.
    sc = Scenario("kdump mid-conversion", memory="64M")
    data = sc.data

    def crash_after_psc(original, kernel, vaddr, npages, op):
        original(kernel, vaddr, npages, op)
        if op == SHARED_OP and data.get("arm"):
            function("__crash_kexec")(kernel)

    sc.hook("set_pages_state", crash_after_psc)

    @sc.guest
    def work(g):
        other = g.alloc_page()
        assert g.set_memory_decrypted(other) == 0
        victim = g.alloc_page()
        g.result.update(other=g.pa(other), victim=g.pa(victim))
        g.result["arm"] = True
        g.set_memory_decrypted(victim)

    r = sc.run()
    assert r.outcome.kexec == "kdump"
    assert "Failed to stop shared<->private conversions" in r.outcome.warnings
    seen = shared_everywhere(r)
    victim = r.data["victim"]
    assert seen["rmp"] == [victim] and seen["attr"] == [victim]
    assert seen["pte"] == []  # its PTE was never cleared
    assert r.page(r.data["other"]).rmp["validated"]


def test_conversions_fail_with_ebusy_once_kexec_began():
    sc = Scenario("stop conversions", memory="64M")

    @sc.guest
    def work(g):
        va = g.alloc_page()
        g.write(va, b"private")
        g.call("snp_kexec_begin")
        g.result["dec"] = g.set_memory_decrypted(va)
        g.result["enc"] = g.set_memory_encrypted(va)
        g.result["gpa"] = g.pa(va)

    r = sc.run()
    assert r.completed, r.describe()
    assert r.data["dec"] == r.data["enc"] == -errno.EBUSY
    p = r.page(r.data["gpa"])
    assert p.pte_c_bit is True and p.attribute_private and p.rmp["validated"]


def test_kexec_clears_the_vmsa_bit_of_a_stopped_ap():
    # shutdown_all_aps: another CPU's guest-made VMSA is destroyed (SVM_VMGEXIT_AP_CREATION
    # with SVM_VMGEXIT_AP_DESTROY = 2; KVM forgets the VMSA GPA, arch/x86/kvm/svm/sev.c
    # sev_snp_ap_creation) and loses the VMSA bit (RMPADJUST); the running CPU's own VMSA
    # keeps it and is marked offline for makedumpfile.
    sc = Scenario("AP VMSA", memory="64M", vcpus=2)

    @sc.guest
    def work(g):
        mine, ap = g.alloc_page(), g.alloc_page()
        for va, cpu in ((mine, 0), (ap, 1)):
            assert g.call("snp_set_vmsa", va, None, cpu, True) == 0
            g.kernel.sev_vmsa[cpu] = va
        g.result.update(mine=g.pa(mine), ap=g.pa(ap))
        g.kexec()

    r = sc.run()
    host = r.host
    assert r.outcome.kexec == "kexec" and r.outcome.warnings == []
    assert host.rmp(host.spa(r.data["ap"]))["vmsa"] is False
    assert host.rmp(host.spa(r.data["mine"]))["vmsa"] is True
    assert host.vcpu(1).sev_es.snp_vmsa_gpa == (1 << 64) - 1  # INVALID_PAGE
    assert host.system.kernel.offline_pfns == {r.data["mine"] >> 12}


def test_a_second_stop_conversion_is_a_named_livelock():
    # down_write on a mem_enc_lock whose write side is already taken (snp_kexec_begin
    # twice, v6.11+ set_memory.c) never returns in Linux; the model ends it by name.
    sc = Scenario("begin twice", memory="64M")

    @sc.guest
    def work(g):
        g.call("snp_kexec_begin")
        g.call("snp_kexec_begin")

    r = sc.run()
    assert r.outcome.livelock_loop == "set_memory_enc_stop_conversion"
    assert r.outcome.livelock_vcpu == 0


def _from_ap(call, both=False):
    """A 2-vCPU guest whose AP shares a page then kexecs (``call`` "kexec" or
    "crash_kexec"); with ``both`` the BSP kexecs too, after the AP started."""
    sc = Scenario("kexec from an AP", memory="64M", vcpus=2)
    data = sc.data

    @sc.guest(vcpu=1)
    def ap(g):
        assert g.set_memory_decrypted(g.alloc_page()) == 0
        data["ap"] = getattr(g, call)()

    if both:
        @sc.guest(vcpu=0)
        def bsp(g):
            g.set_memory_decrypted(g.alloc_page())
            data["bsp"] = g.kexec()

    return sc.run(), data


def test_kexec_and_kdump_from_an_ap_stop_the_bsp_and_hand_over():
    """reboot.c ``native_machine_shutdown`` / crash.c: the CPU that kexecs stops the
    others (``stop_other_cpus`` / NMI shootdown), whichever CPU it is; the BSP, waiting
    for its APs, halts; nothing stays shared."""
    for call, kind in (("kexec", "kexec"), ("crash_kexec", "kdump")):
        r, data = _from_ap(call)
        assert r.outcome.kexec == kind, r.describe()
        assert "ap" not in data  # it never returned
        assert shared_everywhere(r)["rmp"] == []


def test_a_second_kexec_gets_ebusy_from_kexec_trylock():
    """kexec_core.c ``kernel_kexec``: ``if (!kexec_trylock()) return -EBUSY``; the first
    caller's kexec goes on and completes."""
    r, data = _from_ap("kexec", both=True)
    assert r.outcome.kexec == "kexec", r.describe()
    assert -errno.EBUSY in (data.get("ap"), data.get("bsp"))
