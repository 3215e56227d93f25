# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 13 item 1: each refusal of the KVM syscall surface with the errno the real code
returns, cited to the function that returns it.  Versions: virt/kvm/kvm_main.c v6.18.38;
virt/kvm/guest_memfd.c commit 01f492e1 (~v7.0); arch/x86/kvm/svm/sev.c mainline snapshot
0097f9df; fs/open.c ``vfs_fallocate`` (mainline 2025-26); mm/madvise.c."""

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snpsim.hw.cpu import Platform
from snpsim.kvm.kvm_main import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    KVM_MEM_GUEST_MEMFD,
    KVM_MEM_LOG_DIRTY_PAGES,
    KVM_MEM_READONLY,
    MADV_DONTNEED,
    Kvm,
    KvmCreateGuestMemfd,
    KvmMemoryAttributes,
    KvmSevCmd,
    KvmSevInit,
    KvmSevSnpLaunchFinish,
    KvmSevSnpLaunchStart,
    KvmSevSnpLaunchUpdate,
    KvmUserspaceMemoryRegion2,
)
from snpsim.spec import kvm_uapi as U

E = errno
MB = 1 << 20
U64 = 2**64 - 1
PRIVATE = U.KVM_MEMORY_ATTRIBUTE_PRIVATE


class Vm:
    """/dev/kvm, one VM of ``vm_type`` (SEV types INIT2'd), 16 MiB of VMM memory, and for
    VMs with private memory a 16 MiB guest_memfd."""

    def __init__(self, vm_type=U.KVM_X86_SNP_VM, init=True):
        self.platform = Platform(cbit=51)
        self.kvm = k = Kvm(self.platform.host)
        self.dev = k.open()
        self.fd = k.ioctl(self.dev, U.KVM_CREATE_VM, vm_type)
        if init and vm_type in (U.KVM_X86_SEV_VM, U.KVM_X86_SEV_ES_VM, U.KVM_X86_SNP_VM):
            assert self.sev(U.KVM_SEV_INIT2, KvmSevInit()) == 0
        self.hva = k.mmap(16 * MB)
        self.gmem = None
        if vm_type in (U.KVM_X86_SNP_VM, U.KVM_X86_SW_PROTECTED_VM):
            self.gmem = k.ioctl(self.fd, U.KVM_CREATE_GUEST_MEMFD, KvmCreateGuestMemfd(16 * MB))

    def ioctl(self, req, arg):
        return self.kvm.ioctl(self.fd, req, arg)

    def sev(self, cid, data):
        self.cmd = KvmSevCmd(cid, data)
        return self.ioctl(U.KVM_MEMORY_ENCRYPT_OP, self.cmd)

    def slot(self, slot=0, flags=None, gpa=0, size=16 * MB, hva=None, off=0, gmem=None):
        if flags is None:
            flags = KVM_MEM_GUEST_MEMFD if self.gmem is not None else 0
        return self.ioctl(U.KVM_SET_USER_MEMORY_REGION2, KvmUserspaceMemoryRegion2(
            slot, flags, gpa, size, self.hva if hva is None else hva, off,
            (self.gmem or 0) if gmem is None else gmem))

    def attrs(self, address, size, attributes=PRIVATE, flags=0):
        return self.ioctl(U.KVM_SET_MEMORY_ATTRIBUTES,
                          KvmMemoryAttributes(address, size, attributes, flags))

    def started(self):
        """Slot, all private, SNP_LAUNCH_START."""
        assert self.slot() == 0 and self.attrs(0, 16 * MB) == 0
        assert self.sev(U.KVM_SEV_SNP_LAUNCH_START, KvmSevSnpLaunchStart()) == 0
        return self


# ---- file table and request dispatch ------------------------------------------------------


def test_bad_fds_are_ebadf():
    # ksys_ioctl / ksys_fallocate / close_fd: fdget fails -> -EBADF.
    v = Vm(U.KVM_X86_DEFAULT_VM)
    for fd in (999, -1, None, "3", 1.0):
        assert v.kvm.ioctl(fd, U.KVM_CREATE_VCPU, 0) == -E.EBADF
        assert v.kvm.fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096) == -E.EBADF
        assert v.kvm.close(fd) == -E.EBADF
        assert v.kvm.mmap_vcpu_run(fd) == -E.EBADF


def test_unknown_request_per_file_kind():
    v = Vm(U.KVM_X86_SNP_VM)
    vcpu = v.ioctl(U.KVM_CREATE_VCPU, 0)
    assert v.kvm.ioctl(v.dev, 0xDEAD, 0) == -E.EINVAL      # kvm_arch_dev_ioctl default
    assert v.kvm.ioctl(v.fd, 0xDEAD, 0) == -E.ENOTTY       # kvm_arch_vm_ioctl default
    assert v.kvm.ioctl(vcpu, 0xDEAD, 0) == -E.EINVAL       # kvm_arch_vcpu_ioctl default
    assert v.kvm.ioctl(v.gmem, U.KVM_CREATE_VCPU, 0) == -E.ENOTTY  # vfs_ioctl: no ioctl op
    assert v.kvm.ioctl(vcpu, U.KVM_CREATE_VCPU, 1) == -E.EINVAL    # a VM ioctl on a vCPU


def test_wrong_argument_types():
    # Model choice documented in Kvm.ioctl: a struct KVM cannot read -> -EFAULT (as
    # copy_from_user of a bad pointer); an integer argument that is not one -> -EINVAL.
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.ioctl(U.KVM_SET_USER_MEMORY_REGION2, None) == -E.EFAULT
    assert v.ioctl(U.KVM_SET_USER_MEMORY_REGION2, KvmCreateGuestMemfd(4096)) == -E.EFAULT
    assert v.ioctl(U.KVM_SET_USER_MEMORY_REGION2,
                   KvmUserspaceMemoryRegion2(0, "x", 0, 4096, v.hva)) == -E.EFAULT
    assert v.ioctl(U.KVM_CREATE_GUEST_MEMFD, KvmCreateGuestMemfd(4096.0)) == -E.EFAULT
    assert v.ioctl(U.KVM_SET_MEMORY_ATTRIBUTES, KvmMemoryAttributes(0, None, PRIVATE)) == -E.EFAULT
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_START, KvmSevSnpLaunchStart(gosvw=b"short")) == -E.EFAULT
    assert v.ioctl(U.KVM_CREATE_VCPU, "0") == -E.EINVAL
    assert v.kvm.ioctl(v.dev, U.KVM_CREATE_VM, None) == -E.EINVAL
    assert v.kvm.ioctl(v.dev, U.KVM_CHECK_EXTENSION, []) == -E.EINVAL


def test_negative_ints_are_their_c_values():
    # A -1 in a u64 field is 2**64 - 1: kvm_gmem_create sees a loff_t size < 0 -> -EINVAL.
    v = Vm(U.KVM_X86_SNP_VM)
    arg = KvmCreateGuestMemfd(-1)
    assert v.ioctl(U.KVM_CREATE_GUEST_MEMFD, arg) == -E.EINVAL
    assert arg.size == U64


def test_vcpu_mmap_of_other_files_is_enodev():
    # do_mmap: a file without an mmap operation -> -ENODEV.
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.kvm.mmap_vcpu_run(v.fd) == -E.ENODEV
    assert v.kvm.mmap_vcpu_run(v.dev) == -E.ENODEV


def test_kvm_run_arg_must_be_zero():
    # kvm_vcpu_ioctl KVM_RUN: ``if (arg) goto out`` with r = -EINVAL.
    v = Vm(U.KVM_X86_SNP_VM)
    vcpu = v.ioctl(U.KVM_CREATE_VCPU, 0)
    assert v.kvm.ioctl(vcpu, U.KVM_RUN, 1) == -E.EINVAL
    assert v.kvm.ioctl(vcpu, U.KVM_RUN, None) == -E.EINVAL


# ---- memslots (kvm_set_memory_region, check_memory_region_flags) ---------------------------


@pytest.mark.parametrize(("kw", "err"), [
    ({"size": 4095}, E.EINVAL),                      # memory_size unaligned
    ({"gpa": 123}, E.EINVAL),                        # guest_phys_addr unaligned
    ({"hva": 1}, E.EINVAL),                          # userspace_addr unaligned
    ({"hva": (1 << 47) - 4096}, E.EINVAL),           # access_ok fails
    ({"off": 4095}, E.EINVAL),                       # guest_memfd_offset unaligned
    ({"off": U64 - 4095}, E.EINVAL),                 # offset + size wraps
    ({"slot": 1 << 16}, E.EINVAL),                   # as_id 1 (no SMM AS for private VMs)
    ({"slot": 0x7FFD}, E.EINVAL),                    # >= KVM_USER_MEM_SLOTS (ioctl wrapper)
    ({"gpa": U64 - 4095, "size": 8192}, E.EINVAL),   # gpa + size wraps
    ({"gpa": 1 << 52}, E.EINVAL),                    # beyond kvm_mmu_max_gfn (prepare)
    ({"size": 0}, E.EINVAL),                         # delete of a slot that does not exist
    ({"gmem": 999}, E.EBADF),                        # kvm_gmem_bind: fget fails
    ({"off": 4096}, E.EINVAL),                       # kvm_gmem_bind: offset + size > i_size
    ({"flags": KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES}, E.EINVAL),  # flags
    ({"flags": KVM_MEM_READONLY}, E.EINVAL),         # SNP: no readonly memory
    ({"flags": 1 << 5}, E.EINVAL),                   # unknown flag
])
def test_memslot_refusals_snp(kw, err):
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.slot(**kw) == -err


def test_memslot_gmem_fd_of_wrong_kind_and_overlap():
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.slot(gmem=v.fd) == -E.EINVAL            # kvm_gmem_bind: f_op != kvm_gmem_fops
    assert v.slot(size=8 * MB) == 0
    assert v.slot(slot=1, gpa=4 * MB, size=8 * MB, off=8 * MB) == -E.EEXIST  # overlap
    assert v.slot(slot=1, gpa=8 * MB, size=8 * MB, off=4 * MB) == -E.EINVAL  # bindings overlap
    assert v.slot(slot=0, size=8 * MB) == -E.EINVAL  # a guest_memfd slot is immutable


def test_memslot_flags_per_vm_type():
    # check_memory_region_flags: GUEST_MEMFD only with private memory; READONLY only
    # where kvm_arch_has_readonly_mem (not SEV-ES/SNP) and never with GUEST_MEMFD.
    d = Vm(U.KVM_X86_DEFAULT_VM)
    assert d.slot(flags=KVM_MEM_GUEST_MEMFD) == -E.EINVAL
    assert d.slot(flags=KVM_MEM_READONLY) == 0
    es = Vm(U.KVM_X86_SEV_ES_VM)
    assert es.slot(flags=KVM_MEM_READONLY) == -E.EINVAL
    sw = Vm(U.KVM_X86_SW_PROTECTED_VM)
    assert sw.slot(flags=KVM_MEM_GUEST_MEMFD | KVM_MEM_READONLY) == -E.EINVAL


def test_memslot_move_and_flags_only():
    # kvm_set_memory_region: same values -> 0; a new GPA -> KVM_MR_MOVE (overlap ->
    # -EEXIST); another size or HVA -> -EINVAL.
    v = Vm(U.KVM_X86_DEFAULT_VM)
    assert v.slot(size=4 * MB) == 0
    assert v.slot(slot=1, gpa=8 * MB, size=4 * MB, hva=v.hva + 4 * MB) == 0
    assert v.slot(size=4 * MB) == 0
    assert v.slot(size=4 * MB, flags=KVM_MEM_LOG_DIRTY_PAGES) == 0
    assert v.slot(gpa=8 * MB, size=4 * MB) == -E.EEXIST
    assert v.slot(gpa=16 * MB, size=4 * MB) == 0
    assert v.kvm.vm(v.fd).memslots[0].base_gfn == (16 * MB) >> 12
    assert v.slot(gpa=16 * MB, size=8 * MB) == -E.EINVAL


def test_unmapped_userspace_addr_is_accepted_and_read_faults():
    # KVM accepts a slot whose HVA is not mapped (only access_ok is checked); a later
    # kvm_read_guest through it is -EFAULT (here: None), not a crash.
    from snpsim.kvm.kvm_main import kvm_read_guest, kvm_write_guest

    v = Vm(U.KVM_X86_DEFAULT_VM)
    assert v.slot(hva=0x1000_0000, size=4 * MB) == 0
    assert kvm_read_guest(v.kvm.vm(v.fd), 0x1000, 8) is None
    assert kvm_write_guest(v.kvm.vm(v.fd), 0x1000, b"x") == -E.EFAULT


# ---- guest_memfd create and fallocate ------------------------------------------------------


@pytest.mark.parametrize(("size", "flags"), [
    (0, 0), (4095, 0), (1 << 63, 0), (U64, 0), (4096, 1), (4096, 2), (4096, 1 << 40)])
def test_gmem_create_refusals(size, flags):
    # kvm_gmem_create: flags outside the supported set, size <= 0 (loff_t) or unaligned.
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.ioctl(U.KVM_CREATE_GUEST_MEMFD, KvmCreateGuestMemfd(size, flags)) == -E.EINVAL


@pytest.mark.parametrize(("mode", "off", "length", "err"), [
    (FALLOC_FL_KEEP_SIZE, -4096, 4096, E.EINVAL),          # vfs_fallocate: offset < 0
    (FALLOC_FL_KEEP_SIZE, 0, 0, E.EINVAL),                 # vfs_fallocate: len <= 0
    (FALLOC_FL_KEEP_SIZE | 0x100, 0, 4096, E.EOPNOTSUPP),  # vfs_fallocate: unknown bit
    (FALLOC_FL_PUNCH_HOLE, 0, 4096, E.EOPNOTSUPP),         # vfs: punch without KEEP_SIZE
    (0x08 | FALLOC_FL_KEEP_SIZE, 0, 4096, E.EOPNOTSUPP),   # vfs: collapse with KEEP_SIZE
    (FALLOC_FL_KEEP_SIZE, (1 << 63) - 4096, 8192, E.EFBIG),  # vfs: offset + len overflows
    (0, 0, 4096, E.EOPNOTSUPP),                            # kvm_gmem_fallocate: no KEEP_SIZE
    (0x10 | FALLOC_FL_KEEP_SIZE, 0, 4096, E.EOPNOTSUPP),   # kvm_gmem_fallocate: ZERO_RANGE
    (FALLOC_FL_KEEP_SIZE, 1, 4096, E.EINVAL),              # kvm_gmem_fallocate: unaligned
    (FALLOC_FL_KEEP_SIZE, 0, 4095, E.EINVAL),
    (FALLOC_FL_KEEP_SIZE, 16 * MB, 4096, E.EINVAL),        # kvm_gmem_allocate: past i_size
    (FALLOC_FL_KEEP_SIZE, 0, 1 << 40, E.EINVAL),
])
def test_gmem_fallocate_refusals(mode, off, length, err):
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.kvm.fallocate(v.gmem, mode, off, length) == -err


def test_fallocate_on_non_gmem_file_is_enodev_after_mode_checks():
    # vfs_fallocate: the mode checks come first, then !S_ISREG -> -ENODEV.
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.kvm.fallocate(v.fd, FALLOC_FL_KEEP_SIZE, 0, 4096) == -E.ENODEV
    assert v.kvm.fallocate(v.fd, FALLOC_FL_PUNCH_HOLE, 0, 4096) == -E.EOPNOTSUPP


def test_gmem_punch_past_end_and_allocate_inside():
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.kvm.fallocate(v.gmem, FALLOC_FL_KEEP_SIZE, 0, 8192) == 0
    assert v.kvm.fallocate(v.gmem, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 1 << 40) == 0


# ---- KVM_SET_MEMORY_ATTRIBUTES (kvm_vm_ioctl_set_mem_attributes) --------------------------


@pytest.mark.parametrize(("address", "size", "attributes", "flags"), [
    (0, 4096, PRIVATE, 1),          # flags
    (0, 4096, 1, 0),                # unsupported attribute bit
    (0, 0, PRIVATE, 0),             # size 0
    (U64 - 4095, 8192, PRIVATE, 0),  # wraps
    (1, 4096, PRIVATE, 0),          # unaligned
    (0, 4095, PRIVATE, 0),
])
def test_memory_attributes_refusals(address, size, attributes, flags):
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.attrs(address, size, attributes, flags) == -E.EINVAL


def test_private_attribute_unsupported_on_default_vm():
    # kvm_supported_mem_attributes: 0 for a VM without private memory.
    assert Vm(U.KVM_X86_DEFAULT_VM).attrs(0, 4096) == -E.EINVAL


# ---- SEV commands (sev_mem_enc_ioctl and its commands) -------------------------------------


def test_encrypt_op_null_argp_is_zero():
    # sev_mem_enc_ioctl: ``if (!argp) return 0;``
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.ioctl(U.KVM_MEMORY_ENCRYPT_OP, None) == 0
    assert v.ioctl(U.KVM_MEMORY_ENCRYPT_OP, "cmd") == -E.EFAULT


@pytest.mark.parametrize(("data", "err"), [
    (KvmSevInit(flags=1), E.EINVAL),                 # __sev_guest_init: flags
    (KvmSevInit(vmsa_features=1), E.EINVAL),         # vmsa_features not supported
    (KvmSevInit(ghcb_version=3), E.EINVAL),          # > GHCB_VERSION_MAX
    (None, E.EFAULT),                                # copy_from_user of NULL
])
def test_init2_refusals(data, err):
    v = Vm(U.KVM_X86_SNP_VM, init=False)
    assert v.sev(U.KVM_SEV_INIT2, data) == -err


def test_init2_vmsa_features_per_type():
    # sev_supported_vmsa_features (DEBUG_SWAP in the model) only for SEV-ES/SNP.
    assert Vm(U.KVM_X86_SNP_VM, init=False).sev(U.KVM_SEV_INIT2, KvmSevInit(1 << 5)) == 0
    assert Vm(U.KVM_X86_SEV_VM, init=False).sev(U.KVM_SEV_INIT2, KvmSevInit(1 << 5)) == -E.EINVAL
    # sev_guest_init2: not an SEV VM type.
    assert Vm(U.KVM_X86_DEFAULT_VM).sev(U.KVM_SEV_INIT2, KvmSevInit()) == -E.EINVAL


def test_snp_guest_refuses_non_snp_commands_with_eperm():
    # sev_mem_enc_ioctl: an SNP guest and sev_cmd.id < KVM_SEV_SNP_LAUNCH_START -> -EPERM
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.sev(U.KVM_SEV_INIT2, KvmSevInit()) == -E.EPERM
    assert v.sev(U.KVM_SEV_LAUNCH_START, None) == -E.EPERM
    assert v.sev(999, None) == -E.EINVAL             # unknown id


@pytest.mark.parametrize(("policy", "flags", "err"), [
    (0x30000, 1, E.EINVAL),        # params.flags
    (0x10000, 0, E.EINVAL),        # RSVD_MBO (bit 17) clear
    (0x70000, 0, E.EINVAL),        # bit 18 is not in SNP_POLICY_MASK_VALID
    (0x30000 | 1 << 21, 0, E.EINVAL),
    (0x30000 | 1 << 63, 0, E.EINVAL),
])
def test_snp_launch_start_policy_refusals(policy, flags, err):
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_START, KvmSevSnpLaunchStart(policy, bytes(16), flags)) == -err


def test_snp_launch_start_accepts_debug_smt_single_socket():
    v = Vm(U.KVM_X86_SNP_VM)
    policy = 0x20000 | 1 << 16 | 1 << 19 | 1 << 20
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_START, KvmSevSnpLaunchStart(policy)) == 0
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_START, KvmSevSnpLaunchStart()) == -E.EINVAL  # 2nd context


def test_snp_launch_commands_on_non_snp_vm():
    v = Vm(U.KVM_X86_SEV_ES_VM)
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_START, KvmSevSnpLaunchStart()) == -E.ENOTTY  # snp_launch_start
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_UPDATE,
                 KvmSevSnpLaunchUpdate(0, v.hva, 4096, 1)) == -E.EINVAL     # snp_launch_update
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_FINISH, KvmSevSnpLaunchFinish()) == -E.ENOTTY


@pytest.mark.parametrize(("kw", "err"), [
    ({"len": 4095}, E.EINVAL),                 # snp_launch_update: len unaligned
    ({"flags": 1}, E.EINVAL),                  # flags
    ({"type": 2}, E.EINVAL),                   # VMSA is not a launch-update type
    ({"type": 7}, E.EINVAL),
    ({"gfn_start": 1 << 30}, E.EINVAL),        # no private memslot at gfn_start
    ({"len": 0}, E.EIO),                       # kvm_gmem_populate(npages 0): -EINVAL -> -EIO
    ({"uaddr": "hva+1"}, E.EIO),               # source unaligned: -EINVAL -> -EIO
    ({"uaddr": 0x1000}, E.EIO),                # source not mapped: -EFAULT -> -EIO
])
def test_snp_launch_update_refusals(kw, err):
    v = Vm(U.KVM_X86_SNP_VM).started()
    args = {"gfn_start": 0, "uaddr": v.hva, "len": 4096, "type": 1, "flags": 0, **kw}
    if args["uaddr"] == "hva+1":
        args["uaddr"] = v.hva + 1
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_UPDATE, KvmSevSnpLaunchUpdate(**args)) == -err
    assert v.cmd.error == 0


def test_snp_launch_update_source_running_off_the_mapping_stops_there():
    # kvm_gmem_populate stops at the first unmapped source page (get_user_pages_fast:
    # -EFAULT) after doing the pages before it; snp_launch_update then returns 0 and
    # writes the progress back.
    v = Vm(U.KVM_X86_SNP_VM).started()
    upd = KvmSevSnpLaunchUpdate(0, v.hva + 16 * MB - 4096, 3 * 4096, 1)
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_UPDATE, upd) == 0
    assert (upd.gfn_start, upd.len, upd.uaddr) == (1, 2 * 4096, v.hva + 16 * MB)


def test_snp_launch_update_range_is_cut_at_the_slot_end():
    v = Vm(U.KVM_X86_SNP_VM).started()
    upd = KvmSevSnpLaunchUpdate(4095, 0, 2 * 4096, U.KVM_SEV_SNP_PAGE_TYPE_ZERO)
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_UPDATE, upd) == 0
    assert (upd.gfn_start, upd.len) == (4096, 4096)


def test_snp_launch_finish_refusals():
    v = Vm(U.KVM_X86_SNP_VM)
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_FINISH, KvmSevSnpLaunchFinish()) == -E.EINVAL  # no context
    v.started()
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_FINISH, None) == -E.EFAULT
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_FINISH, KvmSevSnpLaunchFinish(flags=1)) == -E.EINVAL
    # psp_copy_user_blob: an ID block at an unmapped address -> -EFAULT; at 0 -> -EINVAL
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_FINISH,
                 KvmSevSnpLaunchFinish(0x1000, v.hva, id_block_en=1)) == -E.EFAULT
    assert v.sev(U.KVM_SEV_SNP_LAUNCH_FINISH,
                 KvmSevSnpLaunchFinish(0, v.hva, id_block_en=1)) == -E.EINVAL


# ---- mmap / madvise -------------------------------------------------------------------------


def test_mmap_and_madvise_refusals():
    k = Vm(U.KVM_X86_DEFAULT_VM).kvm
    assert k.mmap(0) == -E.EINVAL                    # do_mmap: !len
    assert k.mmap(1 << 47) == -E.ENOMEM              # larger than user space
    assert k.mmap(U64) == -E.ENOMEM                  # PAGE_ALIGN wraps
    hva = k.mmap(8192)
    assert k.madvise(hva, 4096, 8) == -E.EINVAL      # madvise_behavior_valid
    assert k.madvise(hva + 1, 4096, MADV_DONTNEED) == -E.EINVAL  # start unaligned
    assert k.madvise(hva, U64, MADV_DONTNEED) == -E.EINVAL      # PAGE_ALIGN(len) wraps
    assert k.madvise(hva, 0, MADV_DONTNEED) == 0                 # end == start
    assert k.madvise(hva, 1 << 30, MADV_DONTNEED) == -E.ENOMEM  # range not mapped


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.integers(-(2**65), 2**65), st.integers(-(2**65), 2**65), st.integers(-3, 2**33))
def test_fallocate_never_raises(off, length, mode):
    v = Vm(U.KVM_X86_SNP_VM)
    ret = v.kvm.fallocate(v.gmem, mode, off, length)
    assert ret == 0 or -ret in (E.EINVAL, E.EOPNOTSUPP, E.EFBIG)


def test_guest_access_through_unmapped_hva_is_a_memory_fault_exit():
    # hva_to_pfn fails -> kvm_handle_error_pfn -> kvm_mmu_prepare_memory_fault_exit and
    # -EFAULT from KVM_RUN (arch/x86/kvm/mmu/mmu.c, v6.8+), not an exception.
    v = Vm(U.KVM_X86_DEFAULT_VM)
    assert v.slot(hva=0x1000_0000, size=4 * MB) == 0
    vcpu = v.ioctl(U.KVM_CREATE_VCPU, 0)
    v.platform.install_guest_code(0, lambda cpu: cpu.read(0x1000, 8))
    assert v.kvm.ioctl(vcpu, U.KVM_RUN, 0) == -E.EFAULT
    run = v.kvm.mmap_vcpu_run(vcpu)
    assert run.exit_reason == U.KVM_EXIT_MEMORY_FAULT
    assert run.memory_fault.gpa == 0 and run.memory_fault.size == 4096
