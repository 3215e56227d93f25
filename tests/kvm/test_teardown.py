# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""VM teardown through KVM's release and destroy paths (issue 12, host part 3).

Sources: virt/kvm/kvm_main.c (``kvm_vm_release``/``kvm_vcpu_release`` ->
``kvm_put_kvm`` -> ``kvm_destroy_vm``; the VM, each vCPU fd and each guest_memfd hold a
reference), virt/kvm/guest_memfd.c (``kvm_gmem_release``, then the inode's folios through
``kvm_gmem_free_folio`` -> ``sev_gmem_invalidate``), arch/x86/kvm/x86.c
``kvm_arch_destroy_vm`` (v6.14+, commit 17bcd7144263: vCPUs freed before VM state),
arch/x86/kvm/svm/sev.c ``sev_free_vcpu`` (VMSA: ``kvm_rmp_make_shared``, on failure
the page is leaked -- ``snp_leak_pages``: "Leaking PFN range 0x%llx-0x%llx" -- and not
freed) and ``sev_vm_destroy`` (SNP: ``snp_guest_req_cleanup``, SNP_DECOMMISSION,
``sev_asid_free``); ``sev_gmem_invalidate`` only WARNs when ``rmp_make_shared`` fails
and frees the page anyway (no leak).
"""

import errno

from fakeguest import DATA_GPA, make

from snpsim.kvm.profiles import KVM_PROFILES
from snpsim.spec.kvm_uapi import KVM_RUN


def _guest_pages(platform, asid):
    rmp = platform.rmp
    return [p for p in rmp.assigned_pfns() if rmp.lookup(p).asid == asid]


def _validate_and_write(cpu):
    cpu.pvalidate(DATA_GPA, 0, True)
    cpu.write(DATA_GPA, b"secret" * 8)


def test_teardown_after_poweroff_leaves_nothing_assigned_to_the_asid():
    platform, kvm, m = make(_validate_and_write)
    assert m.run().result == "completed"
    asid = m.asid
    vm = kvm.vm(m.s.vmfd)
    vmsa = vm.vcpus[0].vmcb.vmsa_pfn
    pages = _guest_pages(platform, asid)
    assert vmsa in pages and len(pages) == 7  # 5 page tables, the data page, the VMSA
    assert asid in kvm.asids_in_use
    closed = m.teardown()
    assert [ret for _fd, ret in closed] == [0, 0, 0, 0, 0]
    assert _guest_pages(platform, asid) == []
    assert vm.destroyed and vm.memslots == {} and asid not in kvm.asids_in_use
    assert kvm.vm is not None and m.s.vmfd not in kvm.files
    assert not kvm.allocator.is_allocated(vmsa)
    assert platform.counters["SNP_DECOMMISSION"] == 1
    assert m.teardown() == []


def test_vm_outlives_its_fd_while_guest_memfd_and_vcpus_hold_references():
    platform, kvm, m = make(_validate_and_write)
    m.run()
    vm = kvm.vm(m.s.vmfd)
    assert vm.users_count == 4  # VM fd, 2 guest_memfds ("pc.ram", "pc.bios"), 1 vCPU
    assert kvm.close(m.s.vmfd) == 0
    assert not vm.destroyed and _guest_pages(platform, m.asid)
    gmem_ram = m.ram_blocks["pc.ram"].guest_memfd
    assert kvm.close(gmem_ram) == 0
    # guest_memfd release: its folios are shared again; only the VMSA is still the guest's.
    assert _guest_pages(platform, m.asid) == [vm.vcpus[0].vmcb.vmsa_pfn]
    assert kvm.close(m.cpus[0].kvm_fd) == 0
    assert not vm.destroyed  # "pc.bios" guest_memfd still holds the VM
    assert kvm.close(m.ram_blocks["pc.bios"].guest_memfd) == 0
    assert vm.destroyed and _guest_pages(platform, m.asid) == []
    assert kvm.close(m.s.vmfd) == -errno.EBADF


def test_teardown_in_the_middle_of_a_run():
    # The VMM stops the VM at the guest's first exit to userspace (the GHCB's page-state
    # change), with the guest paused mid-way, and tears it down.
    seen = []

    def body(cpu):
        _validate_and_write(cpu)
        seen.append("never")

    platform, kvm, m = make(body)

    def stop_at_first_exit(cpu, run):
        if not seen:
            seen.append(run.exit_reason)
            m.pause_all_vcpus()

    m.on_exit.append(stop_at_first_exit)
    r = m.run()
    assert r.result == "stopped" and "never" not in seen
    asid = m.asid
    assert _guest_pages(platform, asid)
    m.teardown()
    assert _guest_pages(platform, asid) == []
    assert kvm.ioctl(m.cpus[0].kvm_fd, KVM_RUN, 0) == -errno.EBADF


def test_vmsa_that_cannot_be_made_shared_is_leaked():
    platform, kvm, m = make(_validate_and_write)
    m.run()
    vm = kvm.vm(m.s.vmfd)
    vmsa = vm.vcpus[0].vmcb.vmsa_pfn
    # Model stand-in for a VMSA still in use by the hardware: RMPUPDATE FAIL_INUSE (3).
    platform.rmp.in_use.add(vmsa)
    m.teardown()
    platform.rmp.in_use.discard(vmsa)
    assert kvm.allocator.is_leaked(vmsa)
    assert f"Leaking PFN range {vmsa:#x}-{vmsa + 1:#x}" in vm.log
    assert vm.bugged
    # The leaked VMSA is the only page left assigned to the ASID.
    assert _guest_pages(platform, m.asid) == [vmsa]


def test_preowned_firmware_page_is_freed_still_firmware_owned():
    # sev_gmem_invalidate: rmp_make_shared on an Immutable entry fails (FAIL_PERMISSION),
    # WARN_ONCE, and the page goes back to the allocator anyway.
    short = KVM_PROFILES["v7.0.12"].derive("short-watchdog", knobs={"max_entries_per_run": 50})
    platform, kvm, m = make(_validate_and_write, kvm_profile=short)
    gmem = m.ram_blocks["pc.ram"].guest_memfd
    kvm.preassign(gmem, DATA_GPA, "firmware")
    m.run()
    pfn = kvm.files[gmem].folio_at(DATA_GPA >> 12)[0]
    vm = kvm.vm(m.s.vmfd)
    m.teardown()
    assert platform.rmp.lookup(pfn).owner == "firmware"
    assert not kvm.allocator.is_allocated(pfn) and not kvm.allocator.is_leaked(pfn)
    assert f"WARN_ONCE: SEV: Failed to update RMP entry for PFN {pfn:#x} error {-errno.EFAULT}" in vm.log


def test_preowned_page_of_another_guest_is_taken_from_it_at_teardown():
    short = KVM_PROFILES["v7.0.12"].derive("short-watchdog", knobs={"max_entries_per_run": 50})
    platform, kvm, m = make(_validate_and_write, kvm_profile=short)
    gmem = m.ram_blocks["pc.ram"].guest_memfd
    kvm.preassign(gmem, DATA_GPA, "guest", 9, gpa=0x7000)
    m.run()
    pfn = kvm.files[gmem].folio_at(DATA_GPA >> 12)[0]
    assert platform.rmp.lookup(pfn).asid == 9
    m.teardown()
    # sev_gmem_invalidate made it shared: the other guest (ASID 9) lost its page.
    assert platform.rmp.lookup(pfn).owner == "hypervisor"


def test_teardown_of_two_vcpus_with_a_2m_private_entry():
    # gmem_max_order 9: the guest's 2M PVALIDATE at GPA 4 MiB gets a 2 MiB folio and a
    # 2M RMP entry (sev_gmem_prepare, is_large_rmp_possible); the 4K page at 0x30000 a
    # 4K entry; the GHCB page was made shared.  Teardown frees the 2 MiB folio as one
    # order-9 folio (one 2M rmp_make_shared) and both VMSAs.
    from fakeguest import EXTRA_GVA, page_tables

    big = KVM_PROFILES["v7.0.12"].derive("gmem-2m", knobs={"gmem_max_order": 9})
    out = []

    def body(cpu):
        out.append(cpu.pvalidate(EXTRA_GVA, 1, True))
        out.append(cpu.pvalidate(DATA_GPA, 0, True))

    platform, kvm, m = make(body, kvm_profile=big, vcpus=2, launch=page_tables(extra=(0x400000,)))
    assert m.run(platform.world.run_threads).result == "completed"
    assert out == [(0, 0), (0, 0)]
    f = kvm.files[m.ram_blocks["pc.ram"].guest_memfd]
    head = f.folio_at(0x400000 >> 12)[0]
    assert platform.rmp.lookup(head).pagesize == 1
    assert len(_guest_pages(platform, m.asid)) == 5 + 512 + 1 + 2  # tables, 2M, 4K, VMSAs
    updates = platform.counters["RMPUPDATE"]
    m.teardown()
    assert _guest_pages(platform, m.asid) == []
    # 5 table pages + 1 data page + 1 2M entry + 2 VMSAs + the guest context page
    # (snp_decommission_context -> snp_free_firmware_page): 10 RMPUPDATEs, no PSMASH.
    assert platform.counters["RMPUPDATE"] - updates == 10
    assert platform.counters["SNP_PAGE_RECLAIM"] == 1
    assert "PSMASH" not in platform.counters
    assert kvm.allocator.nr_allocated == 6  # only QEMU's shared (HVA) pages are left
