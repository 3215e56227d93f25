# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Host pages owned by someone else when guest_memfd gets them (issue 12, host part 2).

The guest PVALIDATEs a private page (0x30000, not launched), so KVM's private fault
allocates the guest_memfd folio and calls ``sev_gmem_prepare``
(arch/x86/kvm/svm/sev.c, v6.11+):

* the RMP entry is already assigned (Firmware page: Assigned, ASID 0, Immutable; or
  another guest's page) -> "already assigned", return 0: KVM maps the page, the guest's
  access fails the RMP check (#NPF with the RMP bit), ``sev_handle_rmp_fault`` finds a
  4K entry and does nothing, and the guest faults again: KVM's #NPF loop, which the
  model's KVM_RUN watchdog stops;
* HV-Fixed (Assigned 0, Immutable 1, SNP firmware ABI 56860): not assigned, so
  ``rmp_make_private`` runs; RMPUPDATE on an Immutable entry is FAIL_PERMISSION (2),
  ``rmpupdate`` -EFAULT, ``sev_gmem_prepare`` -EINVAL, which ``kvm_mmu_faultin_pfn``
  returns from KVM_RUN with the memory-fault exit filled in (exit_reason 39); QEMU:
  "kvm run failed" and the VM stops (internal error).
"""

import errno

import pytest
from fakeguest import DATA_GPA, make

from snpsim.kvm.profiles import KVM_PROFILES
from snpsim.spec.kvm_uapi import KVM_EXIT_MEMORY_FAULT

#: A short watchdog so KVM's #NPF loop stops after a few hundred guest entries.
SHORT = KVM_PROFILES["v7.0.12"].derive("short-watchdog", knobs={"max_entries_per_run": 200})


def _run(owner, asid=0):
    out = {}

    def body(cpu):
        out["pvalidate"] = cpu.pvalidate(DATA_GPA, 0, True)

    platform, kvm, m = make(body, kvm_profile=SHORT)
    gmem = m.ram_blocks["pc.ram"].guest_memfd
    assert kvm.preassign(gmem, DATA_GPA, owner, asid, gpa=0x5000) == 0
    r = m.run()
    folio = kvm.files[gmem].folio_at(DATA_GPA >> 12)
    return platform, kvm, m, r, out, folio


@pytest.mark.parametrize(("owner", "asid"), [("firmware", 0), ("guest", 7)])
def test_assigned_page_is_taken_as_prepared_and_the_guest_loops_on_npf(owner, asid):
    platform, kvm, m, r, out, folio = _run(owner, asid)
    assert folio is not None
    e = platform.rmp.lookup(folio[0])
    # sev_gmem_prepare left the entry alone: still the other owner's.
    assert (e.assigned, e.asid, e.immutable) == (True, asid, owner == "firmware")
    assert e.owner == ("firmware" if owner == "firmware" else "guest")
    # The guest never completed its PVALIDATE: the same #NPF (RMP) came back with nothing
    # changed, which the progress watcher ends as a livelock in KVM's #NPF loop.
    assert "pvalidate" not in out
    assert r.result == "livelock"
    assert (r.livelock.loop, r.livelock.vcpu) == ("kvm_mmu_page_fault", 0)
    assert platform.counters["#NPF"] >= platform.progress.repeats
    # KVM mapped the foreign page in the guest's NPT.
    vm = kvm.vm(m.s.vmfd)
    assert platform.host.npt_lookup(vm.npt, DATA_GPA >> 12).pfn == folio[0]


def test_hv_fixed_page_fails_rmp_make_private_and_kvm_run_returns_einval():
    platform, kvm, m, r, out, folio = _run("hv-fixed")
    vm = kvm.vm(m.s.vmfd)
    assert "pvalidate" not in out
    assert r.result == "internal-error"
    assert m.cpus[0].last_run_ret == -errno.EINVAL
    assert m.cpus[0].kvm_run.exit_reason == KVM_EXIT_MEMORY_FAULT
    assert m.cpus[0].kvm_run.memory_fault.gpa == DATA_GPA
    assert r.errors == ["error: kvm run failed Invalid argument"]
    # RMPUPDATE said FAIL_PERMISSION (2); nothing was assigned to the guest.
    assert any("error 2" in line for line in vm.log)
    assert folio is None  # the model drops the folio that failed to prepare


def test_preassign_bad_input():
    _platform, kvm, m = make(lambda cpu: None)
    gmem = m.ram_blocks["pc.ram"].guest_memfd
    assert kvm.preassign(gmem, DATA_GPA + 1, "firmware") == -errno.EINVAL
    assert kvm.preassign(gmem, 1 << 40, "firmware") == -errno.EINVAL
    assert kvm.preassign(gmem, DATA_GPA, "nobody") == -errno.EINVAL
    assert kvm.preassign(gmem, DATA_GPA, "guest", 0) == -errno.EINVAL
    assert kvm.preassign(gmem, DATA_GPA, "guest", m.asid) == -errno.EINVAL
    assert kvm.preassign(m.s.vmfd, DATA_GPA, "firmware") == -errno.EBADF


def test_preassign_of_a_page_the_file_already_holds_applies_at_once():
    _platform, kvm, m = make(lambda cpu: None)
    gmem = m.ram_blocks["pc.ram"].guest_memfd
    f = kvm.files[gmem]
    pfn = f.folio_at(0x10000 >> 12)[0]  # a launched page-table page
    platform = m.kvm.host.platform
    assert platform.rmp.lookup(pfn).asid == m.asid
    assert kvm.preassign(gmem, 0x10000, "firmware") == 0
    assert platform.rmp.lookup(pfn).owner == "firmware"


@pytest.mark.parametrize(("owner", "asid", "ret"), [
    ("firmware", 0, -errno.EIO), ("guest", 7, -errno.EIO), ("hv-fixed", 0, -errno.EIO)])
def test_preowned_page_in_the_launch_image_fails_snp_launch_update(owner, asid, ret):
    # sev_gmem_post_populate (arch/x86/kvm/svm/sev.c, v6.11+): an assigned RMP entry is
    # not "the initial shared state" -> -EEXIST; an HV-Fixed one passes that check and
    # then rmp_make_private's RMPUPDATE fails (FAIL_PERMISSION) -> rmpupdate's -EFAULT.
    # snp_launch_update (sev.c, mainline 0097f9df) turns any kvm_gmem_populate failure
    # before the first page into -EIO (``count < 0`` -> ``ret = -EIO``), fw_error 0.
    from fakeguest import PML4, RAM, page_tables

    from snpsim.hw.cpu import Platform
    from snpsim.kvm.kvm_main import Kvm
    from snpsim.vmm.kvm_all import QemuExit
    from snpsim.vmm.machine import Machine

    platform = Platform(cbit=51)
    kvm = Kvm(platform.host)
    m = Machine(kvm, RAM)
    gmem = m.ram_blocks["pc.ram"].guest_memfd
    assert kvm.preassign(gmem, PML4, owner, asid) == 0
    with pytest.raises(QemuExit):
        m.snp_launch(page_tables())
    assert m.s.errors[-1] == f"SNP_LAUNCH_UPDATE ret={ret} fw_error=0 gpa=0x10000"
    pfn = kvm.files[gmem].folio_at(PML4 >> 12)[0]
    assert platform.rmp.lookup(pfn).owner == ("guest" if owner == "guest" else owner)
    assert platform.rmp.lookup(pfn).asid == asid


def test_machine_preassign_by_gpa_reaches_the_right_guest_memfd_page():
    _platform, kvm, m = make(lambda cpu: None)
    assert m.preassign(DATA_GPA, "hv-fixed") == 0
    f = kvm.files[m.ram_blocks["pc.ram"].guest_memfd]
    assert f.preowned == {DATA_GPA >> 12: ("hv-fixed", 0, 0)}
    bios = m.layout.bios_base
    assert m.preassign(bios + 0x3000, "firmware") == 0
    assert 3 in kvm.files[m.ram_blocks["pc.bios"].guest_memfd].preowned
    assert m.preassign(0xE0000000, "firmware") == -errno.EINVAL  # MMCONFIG: no guest_memfd
