# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Firmware pages: the PSP driver's ``snp_alloc_firmware_page`` / ``snp_free_firmware_page``
and KVM's guest context page (issue 14, item 3).

Sources: drivers/crypto/ccp/sev-dev.c (v6.11+) ``__snp_alloc_firmware_pages`` (alloc,
then ``rmp_mark_pages_firmware``: ``rmp_make_private(pfn, 0, 4K, 0, true)``),
``__snp_free_firmware_pages`` -> ``snp_reclaim_pages`` (per page SEV_CMD_SNP_PAGE_RECLAIM,
then ``rmp_make_shared(4K)``; at the first failure the rest are leaked with
``snp_leak_pages``: "Leaking PFN range 0x%llx-0x%llx"); arch/x86/kvm/svm/sev.c
``snp_context_create`` (the context page from ``snp_alloc_firmware_page``) and
``snp_decommission_context`` (SNP_DECOMMISSION, then ``snp_free_firmware_page``;
on a failed decommission it returns at once and ``sev_vm_destroy`` leaks the ASID).
Page states: Firmware = Assigned, ASID 0, Immutable (SNP firmware ABI 56860 "Page
States"; APM vol 2 table 15-35); SEV_RET_INVALID_PAGE_STATE is 0x1A (psp-sev.h).
"""

import errno

from fakeguest import make

from snpsim.kvm.sev_dev import snp_alloc_firmware_page, snp_free_firmware_page, snp_reclaim_pages


def _vm(poweroff=True):
    platform, kvm, m = make(lambda cpu: None, poweroff=poweroff)
    return platform, kvm, m, kvm.vm(m.s.vmfd)


def _state(platform, pfn):
    e = platform.rmp.lookup(pfn)
    return (bool(e.assigned), e.asid, bool(e.immutable))


def test_alloc_makes_a_firmware_page_and_free_gives_it_back():
    platform, kvm, _m, vm = _vm()
    pfn = snp_alloc_firmware_page(vm)
    assert _state(platform, pfn) == (True, 0, True) and kvm.allocator.is_allocated(pfn)
    reclaims = platform.counters.get("SNP_PAGE_RECLAIM", 0)
    snp_free_firmware_page(vm, pfn)
    assert platform.counters["SNP_PAGE_RECLAIM"] == reclaims + 1
    assert _state(platform, pfn) == (False, 0, False) and kvm.allocator.is_free(pfn)


def test_reclaim_failure_leaks_the_failing_page_and_the_rest():
    platform, kvm, _m, vm = _vm()
    a = snp_alloc_firmware_page(vm)
    b = kvm.allocator.alloc_page()          # not a firmware page: SNP_PAGE_RECLAIM refuses it
    c = snp_alloc_firmware_page(vm)
    assert (b, c) == (a + 1, a + 2)
    assert snp_reclaim_pages(vm, a, 3) == -errno.EIO
    assert _state(platform, a) == (False, 0, False)           # reclaimed before the failure
    assert kvm.allocator.leaked >= {b, c} and a not in kvm.allocator.leaked
    assert _state(platform, c) == (True, 0, True)             # never reached: still Firmware
    assert f"Leaking PFN range {b:#x}-{b + 2:#x}" in vm.log


def test_the_guest_context_page_lives_from_launch_start_to_decommission():
    platform, kvm, m, vm = _vm()
    ctx = vm.sev.snp_context
    assert ctx is not None and _state(platform, ctx) == (True, 0, True)
    assert m.run().result == "completed"
    m.teardown()
    assert vm.sev.snp_context is None and vm.sev.gctx is None
    assert _state(platform, ctx) == (False, 0, False) and kvm.allocator.is_free(ctx)


def test_failed_decommission_keeps_the_context_page_and_leaks_the_asid(monkeypatch):
    # sev_vm_destroy: snp_decommission_context fails -> return before sev_asid_free.
    platform, kvm, m, vm = _vm()
    ctx = vm.sev.snp_context
    asid = m.asid
    m.run()
    monkeypatch.setattr(kvm.host.firmware, "snp_decommission", lambda gctx: 0x10)  # INVALID_GUEST
    m.teardown()
    assert vm.destroyed and asid in kvm.asids_in_use
    assert _state(platform, ctx) == (True, 0, True) and kvm.allocator.is_allocated(ctx)
    assert any(line.startswith("WARN_ONCE: Failed to release guest context") for line in vm.log)
