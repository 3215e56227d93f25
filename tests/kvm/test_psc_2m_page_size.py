# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The RMP page size KVM gives a guest's 2M Page State Change, and the guest's 2M
PVALIDATE that follows (issue 14 item 6), through the public API.

The chain (sources):

* the guest: ``snp_accept_memory`` -> ``__set_pages_state`` builds a 2M PSC entry for a
  2 MiB-aligned direct-map range and, after the PSC, ``pval_pages`` PVALIDATEs it at 2M;
  on PVALIDATE_FAIL_SIZEMISMATCH (6) it retries the 512 pages at 4K, any other failure
  terminates (arch/x86/coco/sev/core.c at 00d25566, ``pval_pages``).  The same fallback
  serves a 2M rescind (``set_memory_decrypted``).
* KVM: ``snp_begin_psc`` only forwards the entry to userspace (KVM_HC_MAP_GPA_RANGE with
  KVM_MAP_GPA_RANGE_PAGE_SZ_2M); the RMP changes when the PVALIDATE faults the page in:
  ``kvm_gmem_get_pfn`` reports the folio order as ``max_order`` and ``sev_gmem_prepare``
  makes one 2M RMP entry only when the order is >= 9 and all 512 PFNs of the aligned
  range are unassigned (``is_large_rmp_possible`` / ``is_pfn_range_shared``), else a 4K
  entry (arch/x86/kvm/svm/sev.c, v6.11+).
* guest_memfd: upstream allocates order-0 folios only -- ``kvm_gmem_get_folio`` has
  "TODO: Support huge pages." and a WARN_ON_ONCE on a non-zero folio order
  (virt/kvm/guest_memfd.c at 01f492e1, ~v7.0) -- so upstream KVM never makes a 2M RMP
  entry for a PSC, and a Linux guest's 2M PVALIDATE always takes the 4K fallback.  The
  model's KVM knob ``gmem_max_order`` 9 (``snpsim run --gmem-2m``) stands for the pending
  huge-page work.
* SNP launch: ``sev_gmem_post_populate`` assigns each launched page with a 4K
  ``rmp_make_private`` whatever the folio, so the image stays 4K with 2 MiB folios too.
"""

from snpsim.api import Scenario, function

MIB = 1 << 20
PVALIDATE_FAIL_SIZEMISMATCH = 6  # APM vol 3 PVALIDATE; asm/sev.h
RMP_PG_SIZE_4K, RMP_PG_SIZE_2M = 0, 1
PG_LEVEL_4K, PG_LEVEL_2M = 1, 2


def accept_2m(gmem_max_order, *, then_share=False):
    """A 64 MiB guest accepts one unaccepted 2 MiB unit (one 2M PSC entry, then the 2M
    PVALIDATE); with ``then_share`` it makes the unit shared again with one
    ``set_memory_decrypted`` (2M rescind, then a 2M PSC).  Records every guest
    ``pvalidate(vaddr, size, validate)`` and its return, and every ``sev_gmem_prepare``
    ``max_order`` KVM saw, from the acceptance on."""
    sc = Scenario("2M PSC", memory="64M", kvm_knobs={"gmem_max_order": gmem_max_order})
    data = sc.data  # emptied when the run starts: the lists are made by the work

    def rec_pvalidate(original, kernel, vaddr, size, validate):
        rc = original(kernel, vaddr, size, validate)
        if data.get("on"):
            data["pv"].append((size, validate, rc))
        return rc

    def rec_prepare(original, kvm, pfn, gfn, max_order):
        if data.get("on"):
            data["orders"].append(max_order)
        return original(kvm, pfn, gfn, max_order)

    sc.hook("pvalidate", rec_pvalidate)
    sc.hook("sev_gmem_prepare", rec_prepare)

    @sc.guest
    def work(g):
        gpa = g.unaccepted_gpa()
        g.result.update(gpa=gpa, pv=[], orders=[], on=True)
        g.accept_memory(gpa, 2 * MIB)
        g.result["accepted_pv"] = list(g.result["pv"])
        if then_share:
            g.result["pv"].clear()
            g.result["dec"] = g.set_memory_decrypted(g.va(gpa), 512)
        g.result["on"] = False

    r = sc.run()
    assert r.completed, r.describe()
    return r


def rmp_sizes(r, gpa):
    """The RMP page size of each of the 512 pages at ``gpa`` (from the NPT's SPA)."""
    host = r.host
    return {host.rmp(host.spa(gpa + i * 4096))["pagesize"] for i in range(512)}


def test_order_0_folios_4k_rmp_sizemismatch_then_512_4k_pvalidates():
    # Upstream: order-0 folios, so KVM answers every fault with a 4K RMP entry and the
    # 2M PVALIDATE gets SIZEMISMATCH; pval_pages then validates page by page.
    r = accept_2m(0)
    gpa = r.data["gpa"]
    assert gpa % (2 * MIB) == 0
    assert set(r.data["orders"]) == {0}
    assert rmp_sizes(r, gpa) == {RMP_PG_SIZE_4K}
    pv = r.data["accepted_pv"]
    assert pv[0] == (RMP_PG_SIZE_2M, True, PVALIDATE_FAIL_SIZEMISMATCH)
    assert pv[1:] == [(RMP_PG_SIZE_4K, True, 0)] * 512
    host = r.host
    assert all(host.rmp(host.spa(gpa + i * 4096))["validated"] for i in range(512))
    assert host.vm.npt.lookup(gpa >> 12).level == PG_LEVEL_4K


def test_2m_folios_one_2m_rmp_entry_and_one_2m_pvalidate():
    # A 2 MiB folio whose 512 PFNs are all unassigned: sev_gmem_prepare makes one 2M RMP
    # entry, the NPT maps 2M (folio order and unmixed attributes) and the single 2M
    # PVALIDATE succeeds.
    r = accept_2m(9)
    gpa = r.data["gpa"]
    assert set(r.data["orders"]) == {9}
    assert rmp_sizes(r, gpa) == {RMP_PG_SIZE_2M}
    assert r.data["accepted_pv"] == [(RMP_PG_SIZE_2M, True, 0)]
    host = r.host
    head = host.rmp(host.spa(gpa))
    assert head["validated"] and head["gpa"] == gpa and head["asid"] == host.asid
    assert host.vm.npt.lookup(gpa >> 12).level == PG_LEVEL_2M
    assert r.counters.get("PSMASH", 0) == 0


def test_2m_rescind_on_4k_rmp_falls_back_to_4k_too():
    # set_memory_decrypted of the whole unit: the rescind (PVALIDATE with validate 0) is
    # 2M first; on the 4K entries of upstream KVM it is SIZEMISMATCH and pval_pages
    # rescinds the 512 pages at 4K before the PSC makes them shared.
    r = accept_2m(0, then_share=True)
    assert r.data["dec"] == 0
    pv = r.data["pv"]
    assert pv[0] == (RMP_PG_SIZE_2M, False, PVALIDATE_FAIL_SIZEMISMATCH)
    assert pv[1:] == [(RMP_PG_SIZE_4K, False, 0)] * 512
    p = r.page(r.data["gpa"])
    assert not p.attribute_private and p.pte_c_bit is False


def test_2m_rescind_on_a_2m_entry_is_one_instruction():
    r = accept_2m(9, then_share=True)
    assert r.data["dec"] == 0
    assert r.data["pv"] == [(RMP_PG_SIZE_2M, False, 0)]
    p = r.page(r.data["gpa"])
    assert not p.attribute_private and p.pte_c_bit is False


def test_no_2m_psc_no_2m_entry_and_the_launch_stays_4k():
    # The "no 2M RMP entry in a default 64M run, even with --gmem-2m" is the
    # modelled KVM's answer: a boot with no work sends no 2M PSC (the image is launched,
    # the rest stays unaccepted), and the launched image is assigned page by page
    # (sev_gmem_post_populate, PG_LEVEL_4K) even inside 2 MiB folios.
    sc = Scenario("boot only", memory="64M", kvm_knobs={"gmem_max_order": 9})

    @sc.guest
    def work(g):
        g.result["image"] = (g.kernel.boot.image_start, g.kernel.boot.image_end)

    r = sc.run()
    assert r.completed, r.describe()
    host = r.host
    rmp = host.platform.rmp
    assert not [p for p in rmp.assigned_pfns() if rmp.lookup(p).pagesize]
    start, end = r.data["image"]
    assert end - start >= 2 * MIB  # at least one whole 2 MiB folio launched
    # every image page went through SNP_LAUNCH_UPDATE, and none of them is in a 2M
    # entry (checked above; the boot later shares the GHCB pages)
    assert r.counters["LAUNCH_UPDATE"] >= (end - start) >> 12


def test_4k_share_inside_a_2m_entry_smashes_it_and_later_2m_pvalidates_fall_back():
    # With 2 MiB folios: the unit is accepted as one 2M entry; making one 4 KiB page of
    # it shared starts with a 4K rescind PVALIDATE on that 2M entry, an #NPF with SIZEM
    # that KVM answers with PSMASH (sev_handle_rmp_fault); the PSC then frees the 4 KiB
    # page through guest_memfd (sev_gmem_invalidate, 4K rmp_make_shared); the other 511
    # pages keep their (now 4K) validated entries (APM vol 3 PSMASH copies Validated).  The
    # page made private again gets a 4K entry, so a later 2M rescind of the whole unit
    # takes the SIZEMISMATCH fallback.
    sc = Scenario("4K inside 2M", memory="64M", kvm_knobs={"gmem_max_order": 9})
    data = sc.data

    def rec_pvalidate(original, kernel, vaddr, size, validate):
        rc = original(kernel, vaddr, size, validate)
        if data.get("on"):
            data["pv"].append((size, validate, rc))
        return rc

    sc.hook("pvalidate", rec_pvalidate)

    def rec_prepare(original, kvm, pfn, gfn, max_order):
        ret = original(kvm, pfn, gfn, max_order)
        if data.get("accepting") and "level_after_prepare" not in data:  # the unit's fault
            data["level_after_prepare"] = function("snp_lookup_rmpentry")(kvm, pfn)[2]
        return ret

    def rec_rmp_fault(original, vcpu, gpa, error_code):
        data.setdefault("rmp_faults", []).append(gpa)
        return original(vcpu, gpa, error_code)

    sc.hook("sev_gmem_prepare", rec_prepare)
    sc.hook("sev_handle_rmp_fault", rec_rmp_fault)

    @sc.guest
    def work(g):
        gpa = g.unaccepted_gpa()
        g.result["accepting"] = True
        g.accept_memory(gpa, 2 * MIB)
        g.result.update(gpa=gpa, accepting=False)
        g.result["dec1"] = g.set_memory_decrypted(g.va(gpa) + 4096)
        g.result["enc1"] = g.set_memory_encrypted(g.va(gpa) + 4096)
        # every page of the unit is still validated: a private read of one that lost
        # it would be #VC 0x404 and the guest would terminate
        g.result["reads"] = [g.read(g.va(gpa) + i * 4096, 1) for i in range(512)]
        g.result.update(pv=[], on=True)
        g.result["dec_all"] = g.set_memory_decrypted(g.va(gpa), 512)
        g.result["on"] = False

    r = sc.run()
    assert r.completed, r.describe()
    assert r.data["dec1"] == r.data["enc1"] == r.data["dec_all"] == 0
    assert r.counters.get("PSMASH", 0) >= 1
    assert r.data["gpa"] + 4096 in r.data["rmp_faults"]  # the 4K rescind's #NPF
    assert r.data["level_after_prepare"] == PG_LEVEL_2M
    # PSMASH keeps Validated on the 511 others: all 512 private reads were done, and the
    # run completed (a read of a page that lost Validated is #VC 0x404 -> terminate)
    assert len(r.data["reads"]) == 512 and r.termination is None
    pv = r.data["pv"]
    assert pv[0] == (RMP_PG_SIZE_2M, False, PVALIDATE_FAIL_SIZEMISMATCH)
    assert pv[1:] == [(RMP_PG_SIZE_4K, False, 0)] * 512
