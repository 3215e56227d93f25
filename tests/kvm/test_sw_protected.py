# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 13 item 2: KVM_X86_SW_PROTECTED_VM as KVM has it.

Sources (Linux v6.18): arch/x86/kvm/mmu/mmu.c ``kvm_mmu_page_fault`` (for this VM type
the access is private exactly when the GFN's attribute is PRIVATE at the #NPF, reserved
faults excepted), ``kvm_mmu_faultin_pfn`` (private/shared mismatch ->
``kvm_prepare_memory_fault_exit`` with gpa = gfn << 12, size = 4096, flags
KVM_MEMORY_EXIT_FLAG_PRIVATE (8) iff the access is private; -EFAULT),
``kvm_mmu_faultin_pfn_gmem`` (private GFN in a slot without guest_memfd -> the same
exit), ``kvm_handle_noslot_fault``; virt/kvm/guest_memfd.c ``kvm_gmem_get_pfn``.
Expected behaviour from tools/testing/selftests/kvm/x86/private_mem_conversions_test.c
(conversions through KVM_HC_MAP_GPA_RANGE, punch hole on to-shared) and
private_mem_kvm_exits_test.c (``test_private_access_memslot_not_private``: KVM_RUN
fails with EFAULT, exit KVM_EXIT_MEMORY_FAULT, flags PRIVATE, gpa the test GPA, size one
page).
"""

import errno

from swprotguest import DATA, make, map_gpa_range, sync

from snpsim.api import hooked
from snpsim.spec.faults import PFERR_PRIVATE_ACCESS
from snpsim.spec.kvm_uapi import (
    KVM_CAP_MEMORY_ATTRIBUTES,
    KVM_CHECK_EXTENSION,
    KVM_EXIT_HYPERCALL,
    KVM_EXIT_MEMORY_FAULT,
    KVM_MEMORY_ATTRIBUTE_PRIVATE,
    KVM_MEMORY_EXIT_FLAG_PRIVATE,
)
from snpsim.spec.pgtable_types import PG_LEVEL_4K

SECRET = b"sw-protected secret"


def _leaf(v, gpa):
    return v.platform.host.npt_lookup(v.vm.npt, gpa >> 12)


def _gmem_pfn(v, gpa):
    folio = v.vm.memslots[1].gmem_file.folio_at((gpa - DATA) >> 12)
    return None if folio is None else folio[0]


def test_vm_type_has_private_memory_attribute():
    v = make(lambda cpu: None)
    # kvm_vm_ioctl_check_extension_generic: kvm_supported_mem_attributes() for this VM
    assert v.kvm.ioctl(v.vmfd, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES) == \
        KVM_MEMORY_ATTRIBUTE_PRIVATE


def test_private_access_is_served_from_guest_memfd():
    out = {}

    def body(cpu):
        cpu.write(DATA, SECRET)
        out["read"] = cpu.read(DATA, len(SECRET))

    v = make(body)
    assert v.set_attributes(DATA, 4096, private=True) == 0
    codes = []

    def mmu(original, vcpu, gpa, error_code):
        codes.append((gpa, error_code))
        return original(vcpu, gpa, error_code)

    with hooked({"kvm_mmu_page_fault": mmu}):
        assert v.run_until_sync() == 0xD0E
    # one KVM_RUN: no memory-fault exit, the guest's write was private
    assert v.exits == [(0, v.run.exit_reason)]
    assert out["read"] == SECRET
    # the hardware error code has no private bit; KVM added it from the attribute
    data_faults = [c for g, c in codes if g >> 12 == DATA >> 12]
    assert data_faults and not data_faults[0] & PFERR_PRIVATE_ACCESS
    leaf = _leaf(v, DATA)
    assert leaf.pfn == _gmem_pfn(v, DATA) and leaf.level == PG_LEVEL_4K
    # the shared backing never saw the data
    assert v.kvm.read_user(v.data_hva, len(SECRET)) == bytes(len(SECRET))


def test_shared_access_uses_the_shared_backing():
    def body(cpu):
        cpu.write(DATA + 0x1000, b"to the VMM")

    v = make(body)
    assert v.run_until_sync() == 0xD0E
    assert v.kvm.read_user(v.data_hva + 0x1000, 10) == b"to the VMM"
    assert _gmem_pfn(v, DATA + 0x1000) is None


def test_explicit_conversions_both_ways():
    """private_mem_conversions_test's guest_test_explicit_conversion, one page: the
    guest writes private, asks for shared (MAP_GPA_RANGE), the VMM punches the hole and
    flips the attribute, the guest sees the VMM's shared data, writes its own, asks for
    private again and reads zeros (a fresh guest_memfd page)."""
    out = {}

    def body(cpu):
        cpu.write(DATA, SECRET)
        out["to_shared"] = map_gpa_range(cpu, DATA, 1, private=False)
        sync(cpu, 1)
        out["shared_read"] = cpu.read(DATA, 8)
        cpu.write(DATA, b"guest shared")
        out["to_private"] = map_gpa_range(cpu, DATA, 1, private=True)
        out["private_read"] = cpu.read(DATA, len(SECRET))

    v = make(body)
    assert v.set_attributes(DATA, 4096, private=True) == 0
    hcs = []

    def on_hc(gpa, npages, private):
        hcs.append((gpa, npages, private))
        return -v.convert(gpa, npages << 12, private)

    assert v.run_until_sync(on_hypercall=on_hc) == 1
    assert v.vm.mem_attr_array.get(DATA >> 12) == 0
    assert _gmem_pfn(v, DATA) is None  # the private page was punched out
    assert v.kvm.read_user(v.data_hva, len(SECRET)) != SECRET
    v.kvm.write_user(v.data_hva, b"from VMM")
    assert v.run_until_sync(on_hypercall=on_hc) == 0xD0E
    assert hcs == [(DATA, 1, False), (DATA, 1, True)]
    assert out["to_shared"] == 0 and out["to_private"] == 0
    assert out["shared_read"] == b"from VMM"
    assert out["private_read"] == bytes(len(SECRET))
    assert v.vm.mem_attr_array.get(DATA >> 12) == KVM_MEMORY_ATTRIBUTE_PRIVATE
    assert _leaf(v, DATA).pfn == _gmem_pfn(v, DATA)
    # to private dropped the shared page (MADV_DONTNEED): the VMM reads zeros
    assert v.kvm.read_user(v.data_hva, 12) == bytes(12)
    assert sum(1 for _r, why in v.exits if why == KVM_EXIT_HYPERCALL) == 2


def _race(private_at_fault: bool):
    """The #NPF samples the attribute (kvm_mmu_page_fault), then the VMM flips it
    before kvm_mmu_faultin_pfn compares: the mismatch exit of a software-protected VM."""
    gpa = DATA + 0x3000
    out = {}

    def body(cpu):
        cpu.write(gpa, b"raced")
        out["read"] = cpu.read(gpa, 5)

    v = make(body)
    if private_at_fault:
        assert v.set_attributes(gpa, 4096, private=True) == 0
    flipped = []

    def tdp(original, vcpu, fault):
        if fault.gfn == gpa >> 12 and not flipped:
            flipped.append(fault.is_private)
            assert v.set_attributes(gpa, 4096, private=not private_at_fault) == 0
        return original(vcpu, fault)

    seen = []

    def on_fault(run):
        mf = run.memory_fault
        seen.append((run.exit_reason, mf.gpa, mf.size, mf.flags))
        # QEMU kvm_convert_memory: to_private = flags & KVM_MEMORY_EXIT_FLAG_PRIVATE
        assert v.convert(mf.gpa, mf.size, bool(mf.flags & KVM_MEMORY_EXIT_FLAG_PRIVATE)) == 0
        return False  # re-enter

    prepared = []

    def prep(original, vcpu, fault):
        prepared.append((fault.gfn, fault.is_private))
        return original(vcpu, fault)

    with hooked({"kvm_tdp_page_fault": tdp, "kvm_mmu_prepare_memory_fault_exit": prep}):
        assert v.run_until_sync(on_memory_fault=on_fault) == 0xD0E
    assert flipped == [private_at_fault]
    assert prepared == [(gpa >> 12, private_at_fault)]
    assert v.exits[0][0] == -errno.EFAULT
    flags = KVM_MEMORY_EXIT_FLAG_PRIVATE if private_at_fault else 0
    assert seen == [(KVM_EXIT_MEMORY_FAULT, gpa, 4096, flags)]
    assert out["read"] == b"raced"
    return v, gpa


def test_private_fault_racing_to_shared_exits_with_private_flag():
    v, gpa = _race(private_at_fault=True)
    assert v.vm.mem_attr_array.get(gpa >> 12) == KVM_MEMORY_ATTRIBUTE_PRIVATE
    assert _leaf(v, gpa).pfn == _gmem_pfn(v, gpa)
    assert v.kvm.read_user(v.data_hva + gpa - DATA, 5) == bytes(5)


def test_shared_fault_racing_to_private_exits_without_flags():
    v, gpa = _race(private_at_fault=False)
    assert v.vm.mem_attr_array.get(gpa >> 12) == 0
    assert v.kvm.read_user(v.data_hva + gpa - DATA, 5) == b"raced"


def test_private_gfn_in_slot_without_guest_memfd_exits():
    """private_mem_kvm_exits_test ``test_private_access_memslot_not_private``."""
    def body(cpu):
        cpu.read(DATA, 8)

    v = make(body, data_gmem=False)
    assert v.set_attributes(DATA, 4096, private=True) == 0
    assert v.run_once() == -errno.EFAULT
    mf = v.run.memory_fault
    assert (v.run.exit_reason, mf.gpa, mf.size, mf.flags) == \
        (KVM_EXIT_MEMORY_FAULT, DATA, 4096, KVM_MEMORY_EXIT_FLAG_PRIVATE)
    # nothing changed: the same access exits the same way again
    assert v.run_once() == -errno.EFAULT and v.run.memory_fault.gpa == DATA


def test_private_gfn_without_memslot_exits():
    """``kvm_handle_noslot_fault``: a private access with no memslot is a memory-fault
    exit (not MMIO emulation)."""
    gpa = 0x300000  # no memslot there

    def body2(cpu):
        cpu.read(0x1FF000, 8)  # the last PTE of the VMM's table points at ``gpa``

    v2 = make(body2)
    v2.kvm.write_user(v2.tables_hva + 0x3000 + 511 * 8, (gpa | 3).to_bytes(8, "little"))
    assert v2.set_attributes(gpa, 4096, private=True) == 0
    assert v2.run_once() == -errno.EFAULT
    mf = v2.run.memory_fault
    assert (v2.run.exit_reason, mf.gpa, mf.size, mf.flags) == \
        (KVM_EXIT_MEMORY_FAULT, gpa, 4096, KVM_MEMORY_EXIT_FLAG_PRIVATE)
