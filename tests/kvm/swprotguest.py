# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A KVM_X86_SW_PROTECTED_VM driven the way the KVM selftests drive one
(tools/testing/selftests/kvm/x86/private_mem_conversions_test.c and
private_mem_kvm_exits_test.c): the VMM opens /dev/kvm, creates the VM, a guest_memfd
and the memslots, writes the guest's page tables itself (no C-bit: this VM type has no
encryption, no RMP, no GHCB), enables the KVM_HC_MAP_GPA_RANGE exit and runs one vCPU
with ``KVM_RUN`` in a loop.

Guest memory (identity GVA = GPA below 2 MiB, 4 KiB leaves):
  0x10000 PML4, 0x11000 PDPT, 0x12000 PD, 0x13000 PT  -- slot 0 ``TABLES``, shared
  0x100000.. data pages                                -- slot 1 ``DATA`` (guest_memfd)

The vCPU starts at the guest code with CR3 already pointing at the VMM's PML4 (the
model has no KVM_SET_SREGS; the entry loads it).  The guest reports to the VMM with
``OUT`` to :data:`SYNC_PORT` (a stand-in for the selftests' ucall).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snpsim.hw.cpu import Platform
from snpsim.kvm.kvm_main import Kvm
from snpsim.kvm.uapi import (
    KvmCreateGuestMemfd,
    KvmEnableCap,
    KvmMemoryAttributes,
    KvmUserspaceMemoryRegion2,
)
from snpsim.spec.falloc import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
from snpsim.spec.kvm_uapi import (
    KVM_CAP_EXIT_HYPERCALL,
    KVM_CREATE_GUEST_MEMFD,
    KVM_CREATE_VCPU,
    KVM_CREATE_VM,
    KVM_ENABLE_CAP,
    KVM_EXIT_HYPERCALL,
    KVM_EXIT_IO,
    KVM_HC_MAP_GPA_RANGE,
    KVM_MAP_GPA_RANGE_ENCRYPTED,
    KVM_MEM_GUEST_MEMFD,
    KVM_MEMORY_ATTRIBUTE_PRIVATE,
    KVM_RUN,
    KVM_SET_MEMORY_ATTRIBUTES,
    KVM_SET_USER_MEMORY_REGION2,
    KVM_X86_SW_PROTECTED_VM,
)
from snpsim.spec.mman import MADV_DONTNEED
from snpsim.spec.pgtable_types import _PAGE_PRESENT, _PAGE_RW

PML4 = 0x10000
TABLES = 0x10000
TABLES_SIZE = 0x10000
DATA = 0x100000
DATA_SIZE = 0x100000
SYNC_PORT = 0xF4


def page_tables() -> bytes:
    """The four tables at ``TABLES`` (PML4, PDPT, PD, PT), identity-mapping 0..2 MiB
    with present + writable 4 KiB leaves and no C-bit."""
    pml4, pdpt, pd, pt = (bytearray(4096) for _ in range(4))
    flags = _PAGE_PRESENT | _PAGE_RW
    pml4[0:8] = ((PML4 + 0x1000) | flags).to_bytes(8, "little")
    pdpt[0:8] = ((PML4 + 0x2000) | flags).to_bytes(8, "little")
    pd[0:8] = ((PML4 + 0x3000) | flags).to_bytes(8, "little")
    for i in range(512):
        pt[i * 8 : i * 8 + 8] = ((i << 12) | flags).to_bytes(8, "little")
    return bytes(pml4 + pdpt + pd + pt)


def map_gpa_range(cpu, gpa: int, npages: int, private: bool) -> int:
    """Guest: KVM_HC_MAP_GPA_RANGE (VMMCALL, RAX = 12, RBX = gpa, RCX = npages, RDX =
    attributes); returns RAX (0 on success)."""
    cpu.regs.update(rax=KVM_HC_MAP_GPA_RANGE, rbx=gpa, rcx=npages,
                    rdx=KVM_MAP_GPA_RANGE_ENCRYPTED if private else 0)
    cpu.vmmcall()
    return cpu.regs["rax"]


def sync(cpu, value: int = 0) -> None:
    """Guest: hand control to the VMM (``OUT`` to SYNC_PORT)."""
    cpu.out(SYNC_PORT, value, 4)


@dataclass
class SwProtVm:
    """The VMM's handles: ``platform``, ``kvm`` (the syscall surface), ``vmfd``,
    ``vcpufd``, ``gmem`` (fd), ``tables_hva``/``data_hva`` (the shared backing),
    ``run`` (``struct kvm_run``), ``exits`` (each KVM_RUN's (ret, exit_reason)), ``data``
    (GPA of the data slot)."""

    platform: Platform
    kvm: Kvm
    vmfd: int
    vcpufd: int
    gmem: int
    tables_hva: int
    data_hva: int
    run: object
    exits: list[tuple[int, int]] = field(default_factory=list)
    data: int = DATA

    @property
    def vm(self):
        return self.kvm.vm(self.vmfd)

    def set_attributes(self, gpa: int, size: int, private: bool) -> int:
        return self.kvm.ioctl(self.vmfd, KVM_SET_MEMORY_ATTRIBUTES, KvmMemoryAttributes(
            gpa, size, KVM_MEMORY_ATTRIBUTE_PRIVATE if private else 0))

    def convert(self, gpa: int, size: int, private: bool) -> int:
        """The selftest's conversion (``handle_exit_hypercall``): to shared punches the
        guest_memfd hole, to private drops the shared pages; then the attributes."""
        if private:
            self.kvm.madvise(self.data_hva + gpa - self.data, size, MADV_DONTNEED)
        else:
            r = self.kvm.fallocate(self.gmem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                   gpa - self.data, size)
            if r:
                return r
        return self.set_attributes(gpa, size, private)

    def run_once(self) -> int:
        """One KVM_RUN; records and returns its result."""
        r = self.kvm.ioctl(self.vcpufd, KVM_RUN, 0)
        self.exits.append((r, self.run.exit_reason))
        return r

    def run_until_sync(self, on_hypercall=None, on_memory_fault=None, limit: int = 32) -> int:
        """KVM_RUN until the guest's ``sync``; MAP_GPA_RANGE exits are served by
        ``on_hypercall(gpa, npages, attrs)`` (default :meth:`convert`, answer 0),
        -EFAULT memory-fault exits by ``on_memory_fault(run)`` (default: stop and
        return -EFAULT).  Returns the sync value, or the failing KVM_RUN result."""
        for _ in range(limit):
            r = self.run_once()
            run = self.run
            if r < 0:
                if on_memory_fault is None or on_memory_fault(run):
                    return r
                continue
            if run.exit_reason == KVM_EXIT_IO and run.io.port == SYNC_PORT:
                return int.from_bytes(run.io.data, "little")
            if run.exit_reason == KVM_EXIT_HYPERCALL:
                gpa, npages, attrs = run.hypercall.args[:3]
                private = bool(attrs & KVM_MAP_GPA_RANGE_ENCRYPTED)
                if on_hypercall is not None:
                    run.hypercall.ret = on_hypercall(gpa, npages, private)
                else:
                    run.hypercall.ret = -self.convert(gpa, npages << 12, private)
                continue
            raise AssertionError(f"unexpected exit {run.exit_reason} ({r})")
        raise AssertionError("guest never synced")


def make(body, *, data_gmem: bool = True, kvm_profile: str | object = "v7.0.12",
         data: int = DATA, data_size: int = DATA_SIZE) -> SwProtVm:
    """Build the VM with ``body(cpu)`` as the guest (after it loads CR3).  ``data_gmem``
    False: the data slot has no guest_memfd (private_mem_kvm_exits_test's "memslot not
    private").  ``data``/``data_size``: the data slot's GPA and size (the guest's tables
    map only GPAs below 2 MiB; tests that fault directly may put the slot elsewhere)."""
    platform = Platform(seed=0)
    kvm = Kvm(platform.host, kvm_profile)
    sys_fd = kvm.open("/dev/kvm")
    vmfd = kvm.ioctl(sys_fd, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM)
    assert vmfd >= 0, vmfd
    tables_hva = kvm.mmap(TABLES_SIZE)
    data_hva = kvm.mmap(data_size)
    r = kvm.ioctl(vmfd, KVM_SET_USER_MEMORY_REGION2,
                  KvmUserspaceMemoryRegion2(0, 0, TABLES, TABLES_SIZE, tables_hva))
    assert r == 0, r
    gmem = -1
    if data_gmem:
        gmem = kvm.ioctl(vmfd, KVM_CREATE_GUEST_MEMFD, KvmCreateGuestMemfd(data_size))
        assert gmem >= 0, gmem
        mem = KvmUserspaceMemoryRegion2(1, KVM_MEM_GUEST_MEMFD, data, data_size, data_hva,
                                        0, gmem)
    else:
        mem = KvmUserspaceMemoryRegion2(1, 0, data, data_size, data_hva)
    r = kvm.ioctl(vmfd, KVM_SET_USER_MEMORY_REGION2, mem)
    assert r == 0, r
    r = kvm.ioctl(vmfd, KVM_ENABLE_CAP,
                  KvmEnableCap(KVM_CAP_EXIT_HYPERCALL, 0, [1 << KVM_HC_MAP_GPA_RANGE, 0, 0, 0]))
    assert r == 0, r
    kvm.write_user(tables_hva, page_tables())
    vcpufd = kvm.ioctl(vmfd, KVM_CREATE_VCPU, 0)
    assert vcpufd >= 0, vcpufd

    def entry(cpu):
        cpu.write_cr3(PML4)
        body(cpu)
        while True:
            sync(cpu, 0xD0E)

    platform.install_guest_code(kvm.vm(vmfd).sev.asid, entry)
    return SwProtVm(platform, kvm, vmfd, vcpufd, gmem, tables_hva, data_hva,
                    kvm.mmap_vcpu_run(vcpufd), data=data)
