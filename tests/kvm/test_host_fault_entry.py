# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 13 item 4: a host RMP #PF raised inside the host kernel is recorded as an oops
the same way whatever the entry point (ioctl, fallocate, close), and never escapes
``SnpSystem.run()``.  The fault is real: a ``sev_gmem_invalidate`` override writes to the
folio before making it shared again, so the host write hits a guest-assigned RMP entry
(APM vol. 2 table 15-39, host row: a write to an assigned page is a #PF with
X86_PF_RMP)."""

import errno

from fakeguest import PML4, make

from snpsim.kvm.guest_memfd import sev_gmem_invalidate
from snpsim.kvm.profiles import KVM_PROFILES
from snpsim.spec.falloc import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
from snpsim.system import SnpSystem


def _touching_invalidate(kvm, start, end):
    kvm.host.write(start << 12, b"\xcc")  # the page is still the guest's: host #PF
    sev_gmem_invalidate(kvm, start, end)


PROFILE = KVM_PROFILES["v7.0.12"].derive("touch-before-invalidate",
                                         overrides={"sev_gmem_invalidate": _touching_invalidate})


def _launched():
    _p, kvm, m = make(lambda cpu: None, kvm_profile=PROFILE)
    return kvm, m, m.ram_blocks["pc.ram"].guest_memfd


def test_host_rmp_fault_under_fallocate_is_a_recorded_oops():
    kvm, _m, gmem = _launched()
    ret = kvm.fallocate(gmem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PML4, 4096)
    assert ret == -errno.EFAULT  # the model's answer for an oops, as under ioctl
    assert len(kvm.oopses) == 1 and "host #PF" in kvm.oopses[0]


def test_host_rmp_fault_under_close_is_a_recorded_oops():
    kvm, _m, gmem = _launched()
    assert kvm.close(gmem) == -errno.EFAULT
    assert len(kvm.oopses) == 1 and "host #PF" in kvm.oopses[0]
    assert kvm.close(gmem) == -errno.EBADF  # the fd is gone all the same


def test_host_rmp_fault_never_escapes_snp_system_run():
    # Booting converts pages to shared; QEMU punches them out of guest_memfd
    # (ram_block_discard_range -> fallocate), which reaches the override.
    out = SnpSystem(memory=64 << 20, kvm=PROFILE).run(None)
    assert out.host_oopses and all("host #PF" in o for o in out.host_oopses)
