# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A seeded fuzzer over the :class:`snpsim.kvm.kvm_main.Kvm` file table (issue 13 item 8):
random syscalls (open, close, ioctl, mmap, madvise, fallocate, mmap of kvm_run) with
argument values drawn from pools of good, boundary and wrongly typed values, and the
cross-VM invariants checked after each step.  Used by ``test_fuzz_ioctl.py`` (small,
Hypothesis-driven) and runnable as a script for a long run:

    python tests/kvm/ioctl_fuzz.py SEEDS STEPS

Every answer must be an int: >= 0 (0 or a new fd), or -errno with errno one of
:data:`ERRNOS`; mmap_vcpu_run may also answer a ``KvmRun``.  Sizes are kept bounded so
that no legitimate request asks for gigabytes (KVM would allocate them too).
"""

from __future__ import annotations

import errno
import random
import sys

import numpy as np

from snpsim.hw.cpu import Platform
from snpsim.kvm.guest_memfd import GmemFile
from snpsim.kvm.kvm_host import KvmVcpu, KvmVm
from snpsim.kvm.kvm_main import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    KVM_MEM_GUEST_MEMFD,
    KVM_MEM_LOG_DIRTY_PAGES,
    KVM_MEM_READONLY,
    MADV_DONTNEED,
    MADV_REMOVE,
    Kvm,
    KvmCreateGuestMemfd,
    KvmEnableCap,
    KvmMemoryAttributes,
    KvmPreFaultMemory,
    KvmRun,
    KvmSevCmd,
    KvmSevInit,
    KvmSevSnpLaunchFinish,
    KvmSevSnpLaunchStart,
    KvmSevSnpLaunchUpdate,
    KvmUserspaceMemoryRegion2,
)
from snpsim.spec import kvm_uapi as U

#: Every errno an answer may carry (the ones KVM, the VFS and mm return on these paths).
ERRNOS = frozenset({errno.EBADF, errno.EINVAL, errno.EFAULT, errno.ENOTTY, errno.EEXIST,
                    errno.EOPNOTSUPP, errno.ENODEV, errno.EFBIG, errno.ENOMEM, errno.EIO,
                    errno.EPERM, errno.ENOENT, errno.EINTR, errno.EAGAIN, errno.ENXIO,
                    errno.EBUSY, errno.ENOSPC, errno.E2BIG, 133})  # 133: EHWPOISON (asm-generic/errno.h)

U64 = (1 << 64) - 1
_BAD = (None, "x", 1.5, [], b"\x00", object())
_SIZES = (0, 4096, 8192, 0x10000, 2 << 20, (2 << 20) + 4096, 4095, 1, U64, 1 << 63,
          -4096, -1, (1 << 63) - 4096)
_OFFS = (0, 4096, 0x10000, 1 << 20, 2 << 20, 4095, U64, -4096, 1 << 62, (1 << 63) - 4096)
_GPAS = (0, 0x10000, 0x100000, 1 << 20, 2 << 20, 4 << 20, 1 << 32, 1 << 52, U64 - 4095, 123)
_REQS = (U.KVM_CREATE_VM, U.KVM_CHECK_EXTENSION, U.KVM_CREATE_VCPU,
         U.KVM_SET_USER_MEMORY_REGION2, U.KVM_CREATE_GUEST_MEMFD, U.KVM_SET_MEMORY_ATTRIBUTES,
         U.KVM_ENABLE_CAP, U.KVM_MEMORY_ENCRYPT_OP, U.KVM_RUN, U.KVM_PRE_FAULT_MEMORY)


class Fuzzer:
    """One fuzz run: a platform, a :class:`Kvm` and a seeded random stream.  ``step()``
    issues one random syscall and returns ``(description, answer)``; ``check()`` asserts
    the answer's shape and the cross-VM invariants."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.platform = Platform(cbit=51, seed=seed)
        self.kvm = Kvm(self.platform.host)
        self.hvas: list[tuple[int, int]] = []
        self.gmems: list[GmemFile] = []
        self.seen: set[int] = set()
        for asid in range(0, 16):
            self.platform.install_guest_code(asid, self._guest)
        self.prelude()

    def prelude(self) -> None:
        """A valid start, so that the random steps reach deep states: /dev/kvm, an SNP VM
        (INIT2, a 16 MiB guest_memfd slot at GPA 0 over a 16 MiB mmap, all private,
        SNP_LAUNCH_START, one vCPU), a default VM with a plain slot and a vCPU."""
        k = self.kvm
        dev = k.open()
        snp = k.ioctl(dev, U.KVM_CREATE_VM, U.KVM_X86_SNP_VM)
        k.ioctl(snp, U.KVM_MEMORY_ENCRYPT_OP, KvmSevCmd(U.KVM_SEV_INIT2, KvmSevInit()))
        g = k.ioctl(snp, U.KVM_CREATE_GUEST_MEMFD, KvmCreateGuestMemfd(16 << 20))
        hva = k.mmap(16 << 20)
        self.hvas.append((hva, 16 << 20))
        k.ioctl(snp, U.KVM_SET_USER_MEMORY_REGION2, KvmUserspaceMemoryRegion2(
            0, KVM_MEM_GUEST_MEMFD, 0, 16 << 20, hva, 0, g))
        k.ioctl(snp, U.KVM_SET_MEMORY_ATTRIBUTES, KvmMemoryAttributes(
            0, 16 << 20, U.KVM_MEMORY_ATTRIBUTE_PRIVATE))
        k.ioctl(snp, U.KVM_MEMORY_ENCRYPT_OP, KvmSevCmd(U.KVM_SEV_SNP_LAUNCH_START,
                                                        KvmSevSnpLaunchStart()))
        k.ioctl(snp, U.KVM_CREATE_VCPU, 0)
        dflt = k.ioctl(dev, U.KVM_CREATE_VM, U.KVM_X86_DEFAULT_VM)
        hva2 = k.mmap(4 << 20)
        self.hvas.append((hva2, 4 << 20))
        k.ioctl(dflt, U.KVM_SET_USER_MEMORY_REGION2, KvmUserspaceMemoryRegion2(
            0, 0, 0, 4 << 20, hva2))
        k.ioctl(dflt, U.KVM_CREATE_VCPU, 0)

    # -- guest code for KVM_RUN: a few accesses, then it returns (SHUTDOWN) ---------------
    def _guest(self, cpu) -> None:
        for gva in (0x1000, 0x200000):
            cpu.read(gva, 8)
        cpu.hlt()

    # -- argument pools -----------------------------------------------------------------
    def pick(self, pool):
        r = self.r
        if r.random() < 0.02:
            return r.choice(_BAD)
        return r.choice(pool)

    def fd(self):
        fds = list(self.kvm.files)
        if fds and self.r.random() < 0.97:
            return self.r.choice(fds)
        return self.r.choice((-1, 0, 999, 2**40, None, "3"))

    def fd_of(self, kind):
        fds = [fd for fd, o in self.kvm.files.items() if isinstance(o, kind)]
        return self.r.choice(fds) if fds and self.r.random() < 0.97 else self.fd()

    def hva(self):
        if self.hvas and self.r.random() < 0.7:
            base, length = self.r.choice(self.hvas)
            return base + self.r.choice((0, 4096, length - 4096, length, 8192))
        return self.pick((0, 0x1000, 0x7F00_0000_0000, 1 << 47, U64 - 4095, 123))

    def struct(self, obj):
        """``obj``, with one field sometimes replaced by a wrong type."""
        if self.r.random() < 0.05:
            name = self.r.choice(list(vars(obj)))
            setattr(obj, name, self.r.choice(_BAD))
        return obj

    # -- one step -------------------------------------------------------------------------
    def step(self):
        r = self.r
        op = r.choices(("ioctl", "open", "close", "mmap", "madvise", "fallocate", "mmap_run"),
                       (30, 1, 1, 2, 2, 4, 1))[0]
        k = self.kvm
        if op == "open":
            return op, k.open(r.choice(("/dev/kvm", "/dev/kvm", "/dev/null")))
        if op == "close":
            return op, k.close(self.fd())
        if op == "mmap":
            n = self.pick((4096, 2 << 20, 4 << 20, 16 << 20, 0, -1, 1 << 47, U64))
            ret = k.mmap(n)
            if isinstance(ret, int) and ret > 0:
                self.hvas.append((ret, (n + 4095) & ~4095))
            return op, ret
        if op == "madvise":
            return op, k.madvise(self.hva(), self.pick((4096, 2 << 20, 0, U64, -1)),
                                 self.pick((MADV_DONTNEED, MADV_REMOVE, 0, 8)))
        if op == "fallocate":
            mode = self.pick((FALLOC_FL_KEEP_SIZE, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
                              0, FALLOC_FL_PUNCH_HOLE, 0x10, 0x08 | 1, 0xFF, -1))
            off = self.pick(_OFFS)
            length = self.pick((4096, 8192, 2 << 20, 0, 4095, -4096, U64, 1 << 63))
            return op, k.fallocate(self.fd_of(GmemFile), mode, off, length)
        if op == "mmap_run":
            return op, k.mmap_vcpu_run(self.fd_of(KvmVcpu))
        req = r.choice(_REQS) if r.random() < 0.95 else self.pick((0, 0xDEADBEEF, -1))
        return (op, req), k.ioctl(self._fd_for(req), req, self._arg(req))

    def _fd_for(self, req):
        if req in (U.KVM_CREATE_VM,) or (req == U.KVM_CHECK_EXTENSION and self.r.random() < 0.3):
            return self._dev_fd()
        if req in (U.KVM_RUN, U.KVM_PRE_FAULT_MEMORY):
            return self.fd_of(KvmVcpu)
        return self.fd_of(KvmVm)

    def _dev_fd(self):
        fds = [fd for fd, o in self.kvm.files.items() if type(o).__name__ == "_DevKvm"]
        return self.r.choice(fds) if fds and self.r.random() < 0.9 else self.fd()

    def _arg(self, req):
        r = self.r
        if req == U.KVM_CREATE_VM:
            return self.pick((0, 1, 2, 3, 4, 4, 4, 5, 255, -1, U64))
        if req == U.KVM_CHECK_EXTENSION:
            return self.pick((0, 1, 233, 238, 239, 240, 999, -1))
        if req == U.KVM_CREATE_VCPU:
            return self.pick((0, 1, 2, 1023, 1024, -1, U64))
        if req == U.KVM_SET_USER_MEMORY_REGION2:
            flags = self.pick((0, 0, KVM_MEM_GUEST_MEMFD, KVM_MEM_GUEST_MEMFD, KVM_MEM_READONLY,
                               KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_GUEST_MEMFD | KVM_MEM_READONLY,
                               KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES, 8, U64))
            return self.struct(KvmUserspaceMemoryRegion2(
                self.pick((0, 1, 2, 0x10000, 0x7FFD, -1)), flags, self.pick(_GPAS),
                self.pick((4096, 2 << 20, 4 << 20, 0, 0, 4095, U64 - 4095, 1 << 44)),
                self.hva(), self.pick(_OFFS), self.fd_of(GmemFile)))
        if req == U.KVM_CREATE_GUEST_MEMFD:
            return self.struct(KvmCreateGuestMemfd(
                self.pick((4 << 20, 2 << 20, 4096, 16 << 20, 0, 4095, -4096, 1 << 63, 1 << 62)),
                self.pick((0, 0, 1, 2, 4, U64))))
        if req == U.KVM_SET_MEMORY_ATTRIBUTES:
            return self.struct(KvmMemoryAttributes(
                self.pick(_GPAS), self.pick(_SIZES),
                self.pick((U.KVM_MEMORY_ATTRIBUTE_PRIVATE, 0, 1, U64)),
                self.pick((0, 0, 0, 1))))
        if req == U.KVM_ENABLE_CAP:
            return self.struct(KvmEnableCap(self.pick((U.KVM_CAP_EXIT_HYPERCALL, 0, 999)),
                                            self.pick((0, 1)), [self.pick((0, 1 << 12, U64)),
                                                                0, 0, 0]))
        if req == U.KVM_RUN:
            return self.pick((0, 0, 0, 1))
        if req == U.KVM_PRE_FAULT_MEMORY:
            return self.struct(KvmPreFaultMemory(self.pick(_GPAS), self.pick(_SIZES),
                                                 self.pick((0, 0, 1))))
        if req == U.KVM_MEMORY_ENCRYPT_OP:
            cid = self.pick((U.KVM_SEV_INIT2, U.KVM_SEV_SNP_LAUNCH_START,
                             U.KVM_SEV_SNP_LAUNCH_UPDATE, U.KVM_SEV_SNP_LAUNCH_UPDATE,
                             U.KVM_SEV_SNP_LAUNCH_FINISH, U.KVM_SEV_LAUNCH_START,
                             U.KVM_SEV_LAUNCH_UPDATE_DATA, U.KVM_SEV_LAUNCH_MEASURE,
                             U.KVM_SEV_LAUNCH_FINISH, U.KVM_SEV_LAUNCH_UPDATE_VMSA, 7, 999))
            data = {
                U.KVM_SEV_INIT2: lambda: KvmSevInit(self.pick((0, 0, 1 << 5, 1)),
                                                    self.pick((0, 0, 1)), self.pick((0, 1, 2, 3))),
                U.KVM_SEV_SNP_LAUNCH_START: lambda: KvmSevSnpLaunchStart(
                    self.pick((0x30000, 0x30000, 0x10000, 0x70000, 0x130000, 1 << 63)),
                    bytes(16), self.pick((0, 0, 1))),
                U.KVM_SEV_SNP_LAUNCH_UPDATE: lambda: KvmSevSnpLaunchUpdate(
                    self.pick((0, 0x10, 0x100, 0x200, 0x400, 1 << 40)), self.hva(),
                    self.pick((4096, 8192, 0, 4095, 2 << 20, 1 << 40)),
                    self.pick((1, 1, 2, 3, 4, 5, 6, 7)), self.pick((0, 0, 1))),
                U.KVM_SEV_SNP_LAUNCH_FINISH: lambda: KvmSevSnpLaunchFinish(
                    self.hva(), self.hva(), self.pick((0, 0, 1)), 0, 0, bytes(32),
                    self.pick((0, 0, 1))),
            }.get(cid if isinstance(cid, int) else -1, lambda: r.choice((None, 0, KvmSevInit())))()
            if r.random() < 0.03:
                return r.choice((None, 0, "cmd"))
            return KvmSevCmd(cid, self.struct(data) if data is not None and not isinstance(
                data, int) else data)
        return self.pick((0, None))

    # -- the checks --------------------------------------------------------------------------
    def check(self, what, ret) -> None:
        """The answer is 0, a new fd or -errno from :data:`ERRNOS` (or a ``KvmRun`` from
        mmap_vcpu_run, an HVA from mmap); then the invariants."""
        assert isinstance(ret, (int, KvmRun)) and not isinstance(ret, bool), (what, ret)
        if isinstance(ret, int) and ret < 0:
            assert -ret in ERRNOS, (what, ret)
        for o in self.kvm.files.values():
            if isinstance(o, GmemFile) and all(o is not g for g in self.gmems):
                self.gmems.append(o)
        self.invariants()

    def invariants(self) -> None:
        """No PFN in two guest_memfds; none both in a guest_memfd and in the VMM's
        anonymous memory; no PFN that was handed out and is now free still assigned in
        the RMP (leaked pages are not free)."""
        owner: dict[int, int] = {}
        for i, g in enumerate(self.gmems):
            pfns = [int(v) >> 1 for a in g.small.values() for v in a[a >= 0]]
            for head in g.huge.values():
                pfns.extend(range(head >> 1, (head >> 1) + 512))
            for p in pfns:
                assert owner.setdefault(p, i) == i, f"PFN {p:#x} in two guest_memfds"
        shared = set()
        for v in self.kvm.mm.vmas:
            for a in v.chunks.values():
                shared.update(int(x) for x in a[a >= 0])
        both = shared & owner.keys()
        assert not both, f"PFNs both in guest_memfd and shared backing: {sorted(both)[:4]}"
        alloc = self.kvm.allocator
        self.seen |= shared | owner.keys()
        for vm in {id(o): o for o in self.kvm._vms_by_fd.values()}.values():
            for vc in vm.vcpus:
                if vc.vmcb.vmsa_pfn is not None:
                    self.seen.add(vc.vmcb.vmsa_pfn)
        rmp = self.platform.rmp
        for p in list(self.seen):
            if not alloc.is_allocated(p) and not alloc.is_leaked(p):
                assert not rmp.lookup(p).assigned, f"freed PFN {p:#x} still assigned in the RMP"
                self.seen.discard(p)


def run(seed: int, steps: int) -> int:
    """``steps`` random syscalls with ``seed``, checked after each; returns the number of
    steps done."""
    f = Fuzzer(seed)
    for _ in range(steps):
        what, ret = f.step()
        f.check(what, ret)
    return steps


if __name__ == "__main__":  # pragma: no cover - the long run
    import signal
    import traceback

    nseeds, nsteps = int(sys.argv[1]), int(sys.argv[2])
    fails = 0

    def _alarm(*_a):
        raise TimeoutError("hang")

    signal.signal(signal.SIGALRM, _alarm)
    for s in range(nseeds):
        f = Fuzzer(s)
        for i in range(nsteps):
            signal.alarm(10)
            try:
                what, ret = f.step()
                f.check(what, ret)
            except BaseException:  # noqa: BLE001 - report and go on
                fails += 1
                print(f"seed {s} step {i}:", traceback.format_exc(limit=6)[-1500:])
                break
            finally:
                signal.alarm(0)
    print("failures", fails, "np", np.__version__)
