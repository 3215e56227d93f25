# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Extra machine regions (issue 12, host part 1): RAM with and without guest_memfd,
MMIO, ROM / read-only slots, overlapping slots, several memslots over one RAMBlock.

Expected values come from the real code:

* virt/kvm/kvm_main.c ``check_memory_region_flags`` (v6.11+): KVM_MEM_READONLY is valid
  only when ``kvm_arch_has_readonly_mem(kvm)`` and the slot is not a guest_memfd slot;
  x86 defines it as ``!kvm->arch.has_protected_state``, true for SEV-ES and SNP VMs, so
  an SNP VM gets -EINVAL (22) for any read-only slot; KVM_CHECK_EXTENSION
  (KVM_CAP_READONLY_MEM, 31) on such a VM answers 0.
* ``__kvm_set_memory_region``: a new slot overlapping another -> -EEXIST (17).
* guest_memfd.c ``kvm_gmem_bind``: two slots bound to overlapping ranges of one file ->
  -EINVAL.
* QEMU accel/kvm/kvm-all.c ``kvm_convert_memory``: "Convert non guest_memfd backed
  memory region (0x%HWADDR_PRIx ,+ 0x%HWADDR_PRIx) to %s"; ``kvm_set_phys_mem``:
  "error registering slot" then abort.
"""

import errno

import pytest
from fakeguest import make, msr_call

from snpsim.hw.cpu import Platform
from snpsim.kvm.kvm_main import (
    KVM_MEM_GUEST_MEMFD,
    KVM_MEM_READONLY,
    Kvm,
    KvmUserspaceMemoryRegion2,
)
from snpsim.spec.e820 import E820_TYPE_RAM, E820_TYPE_RESERVED, E820Range
from snpsim.spec.kvm_uapi import (
    KVM_CAP_READONLY_MEM,
    KVM_CHECK_EXTENSION,
    KVM_CREATE_VM,
    KVM_SET_USER_MEMORY_REGION2,
    KVM_X86_DEFAULT_VM,
    KVM_X86_SEV_VM,
    KVM_X86_SNP_VM,
)
from snpsim.spec.msr_protocol import GHCB_MSR_PSC_REQ_GFN
from snpsim.spec.psc import SNP_PAGE_STATE_PRIVATE
from snpsim.vmm.kvm_all import QemuExit, kvm_convert_memory
from snpsim.vmm.machine import Machine, RegionSpec, regions_e820

MiB = 1 << 20
X = 0x40000000  # 1 GiB: above the 16 MiB test RAM, below the PCI hole


def _machine(regions, vm_type=KVM_X86_SNP_VM):
    platform = Platform(cbit=51)
    kvm = Kvm(platform.host)
    return platform, kvm, Machine(kvm, 16 * MiB, extra_regions=regions, vm_type=vm_type)


def _slot_at(kvm, m, gpa):
    vm = kvm.vm(m.s.vmfd)
    return next(s for s in vm.memslots.values() if s.contains(gpa >> 12))


def test_ram_region_without_guest_memfd_is_a_plain_slot_and_cannot_go_private():
    _p, kvm, m = _machine([RegionSpec("plain", X, 2 * MiB, "ram", guest_memfd=False)])
    slot = _slot_at(kvm, m, X)
    assert (slot.base_gfn, slot.npages, slot.flags, slot.gmem_file) == (X >> 12, 512, 0, None)
    assert kvm_convert_memory(m.s, X, 4096, True) == -1
    assert m.s.errors[-1] == ("Convert non guest_memfd backed memory region "
                              "(0x40000000 ,+ 0x1000) to private")
    # To shared is an error as well for RAM without guest_memfd (QEMU: only non-RAM
    # regions are let through).
    assert kvm_convert_memory(m.s, X, 4096, False) == -1


def test_guest_psc_to_private_on_non_guest_memfd_ram_stops_the_vm():
    out = {}

    def body(cpu):
        out["ret"] = msr_call(cpu, GHCB_MSR_PSC_REQ_GFN(X >> 12, SNP_PAGE_STATE_PRIVATE))

    _platform, _kvm, m = make(body, extra_regions=[
        RegionSpec("plain", X, 2 * MiB, "ram", guest_memfd=False)])
    r = m.run()
    # KVM forwards the PSC as KVM_HC_MAP_GPA_RANGE; QEMU's kvm_convert_memory fails and
    # the hypercall handler's -1 stops the VM (RUN_STATE_INTERNAL_ERROR); the guest never
    # gets an answer.
    assert r.result == "internal-error"
    assert "ret" not in out
    assert r.errors == ["Convert non guest_memfd backed memory region (0x40000000 ,+ 0x1000) to private"]


def test_mmio_region_has_no_slot_and_converts_to_shared_only():
    _p, kvm, m = _machine([RegionSpec("dev", X, 0x10000, "mmio")])
    vm = kvm.vm(m.s.vmfd)
    assert not any(s.contains(X >> 12) for s in vm.memslots.values())
    assert kvm_convert_memory(m.s, X, 4096, False) == 0
    assert kvm_convert_memory(m.s, X, 4096, True) == -1
    assert regions_e820([RegionSpec("dev", X, 0x10000, "mmio")]) == ()


def test_readonly_slot_refused_by_kvm_for_snp_allowed_for_default_vm():
    platform = Platform(cbit=51)
    kvm = Kvm(platform.host)
    sysfd = kvm.open("/dev/kvm")
    hva = kvm.mmap(2 * MiB)
    results = {}
    for vm_type in (KVM_X86_DEFAULT_VM, KVM_X86_SEV_VM, KVM_X86_SNP_VM):
        vmfd = kvm.ioctl(sysfd, KVM_CREATE_VM, vm_type)
        region = KvmUserspaceMemoryRegion2(0, KVM_MEM_READONLY, X, 2 * MiB, hva, 0, 0)
        results[vm_type] = (kvm.ioctl(vmfd, KVM_SET_USER_MEMORY_REGION2, region),
                            kvm.ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM))
    assert results == {KVM_X86_DEFAULT_VM: (0, 1), KVM_X86_SEV_VM: (0, 1),
                       KVM_X86_SNP_VM: (-errno.EINVAL, 0)}
    assert kvm.ioctl(sysfd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) == 1


def test_readonly_with_guest_memfd_is_einval():
    _p, kvm, m = _machine([])
    gmem = m.ram_blocks["pc.ram"].guest_memfd
    region = KvmUserspaceMemoryRegion2(9, KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD, X, 2 * MiB,
                                       kvm.mmap(2 * MiB), 0, gmem)
    assert kvm.ioctl(m.s.vmfd, KVM_SET_USER_MEMORY_REGION2, region) == -errno.EINVAL


def test_rom_region_in_snp_vm_becomes_writable_slot_in_sev_vm_readonly():
    rom = RegionSpec("option-rom", X, 64 * 1024, "rom", guest_memfd=False)
    _p, kvm, m = _machine([rom])
    assert _slot_at(kvm, m, X).flags == 0  # kvm_readonly_mem_allowed false: no flag
    _p, kvm, m = _machine([rom], vm_type=KVM_X86_SEV_VM)
    assert _slot_at(kvm, m, X).flags == KVM_MEM_READONLY
    assert regions_e820([rom]) == (E820Range(X, 64 * 1024, E820_TYPE_RESERVED),)


def test_overlapping_slot_is_eexist_and_qemu_aborts():
    platform = Platform(cbit=51)
    kvm = Kvm(platform.host)
    with pytest.raises(QemuExit):
        Machine(kvm, 16 * MiB, extra_regions=[RegionSpec("clash", 8 * MiB, 2 * MiB, "ram")])
    # What QEMU logged, and the raw ioctl's answer for the slot KVM refused.
    _p, kvm, m = _machine([])
    with pytest.raises(QemuExit):
        m._add_region(RegionSpec("clash", 8 * MiB, 2 * MiB, "ram"))
    assert m.s.errors[-1] == "kvm_set_phys_mem: error registering slot: EEXIST"
    region = KvmUserspaceMemoryRegion2(9, 0, 8 * MiB, 2 * MiB, kvm.mmap(2 * MiB), 0, 0)
    assert kvm.ioctl(m.s.vmfd, KVM_SET_USER_MEMORY_REGION2, region) == -errno.EEXIST


def test_several_memslots_over_one_ramblock_and_its_guest_memfd():
    # A 4 MiB block with a guest_memfd, mapped by two 2 MiB slots at distant GPAs, as
    # "ram-below-4g"/"ram-above-4g" map "pc.ram": each slot binds its own range of the
    # one guest_memfd (slot's gmem_pgoff 0 and 512 pages).
    _p, kvm, m = _machine([
        RegionSpec("hiram", X, 2 * MiB, "ram", block_size=4 * MiB),
        RegionSpec("hiram-hi", X + 64 * MiB, 2 * MiB, "ram", alias_of="hiram", offset=2 * MiB),
    ])
    lo, hi = _slot_at(kvm, m, X), _slot_at(kvm, m, X + 64 * MiB)
    assert lo.gmem_file is hi.gmem_file is not None
    assert (lo.gmem_pgoff, hi.gmem_pgoff, lo.npages, hi.npages) == (0, 512, 512, 512)
    assert kvm_convert_memory(m.s, X + 64 * MiB, 4096, False) == 0
    assert m.e820()[1] == E820Range(X, 2 * MiB, E820_TYPE_RAM)
    assert E820Range(X + 64 * MiB, 2 * MiB, E820_TYPE_RAM) in m.e820()


def test_two_slots_over_the_same_guest_memfd_range_are_refused():
    # "pc.ram" is wholly bound by ram-below-4g; a second window into it overlaps that
    # binding: kvm_gmem_bind -> -EINVAL, QEMU aborts.
    platform = Platform(cbit=51)
    with pytest.raises(QemuExit):
        Machine(Kvm(platform.host), 16 * MiB, extra_regions=[
            RegionSpec("dup", X, 2 * MiB, "ram", alias_of="pc.ram", offset=8 * MiB)])


def test_bad_region_specs_are_value_errors():
    for spec in (RegionSpec("a", X, 0), RegionSpec("b", X + 1, 4096), RegionSpec("c", X, 4096, "disk"),
                 RegionSpec("d", X, 4096, alias_of="nope")):
        platform = Platform(cbit=51)
        with pytest.raises(ValueError):
            Machine(Kvm(platform.host), 16 * MiB, extra_regions=[spec])
