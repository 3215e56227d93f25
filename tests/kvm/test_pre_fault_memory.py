# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""KVM_PRE_FAULT_MEMORY: the argument checks and errnos of ``kvm_vcpu_pre_fault_memory``
(virt/kvm/kvm_main.c, v6.11+), ``kvm_arch_vcpu_pre_fault_memory`` and
``kvm_tdp_map_page`` (arch/x86/kvm/mmu/mmu.c, v6.11+; -EOPNOTSUPP while
``kvm->arch.pre_fault_allowed`` is false, which for SNP lasts until ``snp_launch_finish``,
arch/x86/kvm/svm/sev.c), and what a successful call leaves: the range written back, NPT
leaves, RMP entries made private by ``sev_gmem_prepare``."""

from __future__ import annotations

import errno

from fakeguest import RAM, make

from snpsim.kvm.kvm_main import KvmPreFaultMemory
from snpsim.kvm.profiles import DEFAULT_PROFILE
from snpsim.spec.kvm_uapi import KVM_CAP_PRE_FAULT_MEMORY, KVM_CHECK_EXTENSION, KVM_PRE_FAULT_MEMORY
from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K
from snpsim.trace.events import Enter
from snpsim.trace.record import Recorder, tracing
from snpsim.vmm.machine import Machine

GPA = 8 << 20


def _launched(kvm_profile=DEFAULT_PROFILE):
    platform, kvm, m = make(lambda cpu: None, kvm_profile=kvm_profile)
    return platform, kvm, m, m.cpus[0].kvm_fd


def _ioctl(kvm, fd, gpa, size, flags=0):
    r = KvmPreFaultMemory(gpa, size, flags)
    return kvm.ioctl(fd, KVM_PRE_FAULT_MEMORY, r), r


def test_cap_is_reported():
    _p, kvm, m, _fd = _launched()
    assert kvm.ioctl(m.s.vmfd, KVM_CHECK_EXTENSION, KVM_CAP_PRE_FAULT_MEMORY) == 1


def test_bad_arguments_are_einval_and_leave_the_range():
    _p, kvm, _m, fd = _launched()
    for gpa, size, flags in ((GPA, 4096, 1), (GPA + 1, 4096, 0), (GPA, 4095, 0), (GPA, 0, 0),
                             ((1 << 64) - 4096, 8192, 0)):
        ret, r = _ioctl(kvm, fd, gpa, size, flags)
        assert ret == -errno.EINVAL
        assert (r.gpa, r.size) == (gpa, size)


def test_snp_vm_before_launch_finish_is_eopnotsupp():
    from snpsim.hw.cpu import Platform
    from snpsim.kvm.kvm_main import Kvm

    platform = Platform(cbit=51)
    kvm = Kvm(platform.host)
    m = Machine(kvm, RAM, 1)
    ret, r = _ioctl(kvm, m.cpus[0].kvm_fd, GPA, 4096)
    assert ret == -errno.EOPNOTSUPP and (r.gpa, r.size) == (GPA, 4096)
    assert kvm.vm(m.s.vmfd).npt.lookup(GPA >> 12) is None


def test_private_range_is_mapped_and_made_private_and_written_back():
    platform, kvm, m, fd = _launched()
    vm = kvm.vm(m.s.vmfd)
    ret, r = _ioctl(kvm, fd, GPA, 4 * 4096)
    assert ret == 0 and (r.gpa, r.size) == (GPA + 4 * 4096, 0)
    for i in range(4):
        leaf = vm.npt.lookup((GPA >> 12) + i)
        assert leaf is not None and leaf.level == PG_LEVEL_4K
        ent = platform.rmp.lookup(leaf.pfn)
        assert ent.assigned and ent.asid == vm.sev.asid and ent.gpa == GPA + i * 4096
        assert not ent.validated  # the guest still has to PVALIDATE
    assert vm.stat["KVM_PRE_FAULT_MEMORY"] == 1 and vm.stat["pre_fault_pages"] == 4


def test_a_range_running_off_ram_stops_at_the_hole():
    _p, kvm, m, fd = _launched()
    ret, r = _ioctl(kvm, fd, RAM - 4096, 3 * 4096)
    assert ret == 0  # one page mapped: success, the rest is left in the range
    assert (r.gpa, r.size) == (RAM, 2 * 4096)
    # no memslot: kvm_tdp_map_page sees RET_PF_EMULATE -> -ENOENT, nothing consumed
    ret, r2 = _ioctl(kvm, fd, r.gpa, r.size)
    assert ret == -errno.ENOENT and (r2.gpa, r2.size) == (RAM, 2 * 4096)


def test_pending_signal_is_eintr():
    _p, kvm, m, fd = _launched()
    m.cpus[0].kvm_run.immediate_exit = 1
    ret, r = _ioctl(kvm, fd, GPA, 4096)
    assert ret == -errno.EINTR and (r.gpa, r.size) == (GPA, 4096)


def test_2m_folio_is_one_step_one_2m_leaf():
    prof = DEFAULT_PROFILE.derive("2M folios", knobs={"gmem_max_order": 9})
    platform, kvm, m, fd = _launched(prof)
    vm = kvm.vm(m.s.vmfd)
    with tracing(Recorder()) as rec:
        ret, r = _ioctl(kvm, fd, GPA, 2 << 20)
    assert ret == 0 and r.size == 0
    steps = [e for e in rec.events if isinstance(e, Enter) and e.name == "kvm_arch_vcpu_pre_fault_memory"]
    assert len(steps) == 1  # the 2 MiB mapping covers the whole range
    leaf = vm.npt.lookup(GPA >> 12)
    assert leaf is not None and leaf.level == PG_LEVEL_2M
    assert platform.rmp.lookup(leaf.pfn).pagesize == 1
