# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""QEMU's generic KVM accelerator: VM and memslot set-up, memory attributes,
``kvm_convert_memory`` and the vCPU loop ``kvm_cpu_exec``.

Mirrors QEMU ``accel/kvm/kvm-all.c`` (9.1-10.1 era, from the merged patch postings;
kvm-qemu-host.md 8.1, 8.2, 8.4, 8.5).  The VMM talks to the host only through
:mod:`snpsim.kvm.kvm_main` (ioctls, mmap, madvise, fallocate).

Errors follow QEMU: functions return 0 or a negative value (-1 or -errno) and log with
``error_report`` (kept in ``KVMState.errors``); ``exit(1)`` is :class:`QemuExit`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snpsim.kvm.kvm_main import (
    KVM_MEM_GUEST_MEMFD,
    Kvm,
    KvmMemoryAttributes,
    KvmRun,
    KvmUserspaceMemoryRegion2,
)
from snpsim.spec.kvm_uapi import (
    KVM_CREATE_VCPU,
    KVM_EXIT_HLT,
    KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_IO,
    KVM_EXIT_MEMORY_FAULT,
    KVM_EXIT_MMIO,
    KVM_EXIT_SHUTDOWN,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_EXIT_UNKNOWN,
    KVM_INTERNAL_ERROR_EMULATION,
    KVM_MEMORY_ATTRIBUTE_PRIVATE,
    KVM_MEMORY_EXIT_FLAG_PRIVATE,
    KVM_RUN,
    KVM_SET_MEMORY_ATTRIBUTES,
    KVM_SET_USER_MEMORY_REGION2,
    KVM_SYSTEM_EVENT_CRASH,
    KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
)
from snpsim.trace.record import emit_instant, traced

from .physmem import (
    RAMBlock,
    qemu_real_host_page_size,
    ram_block_discard_guest_memfd_range,
    ram_block_discard_range,
)
from .profiles import DEFAULT_QEMU_PROFILE, QemuProfile

__all__ = [
    "QemuExit",
    "MemoryRegion",
    "KVMState",
    "CPUState",
    "EXCP_INTERRUPT",
    "EXCP_HLT",
    "kvm_vm_ioctl",
    "kvm_vcpu_ioctl",
    "kvm_set_phys_mem",
    "kvm_set_memory_attributes",
    "kvm_set_memory_attributes_private",
    "kvm_set_memory_attributes_shared",
    "memory_region_find",
    "kvm_convert_memory",
    "kvm_cpu_exec",
    "kvm_cpu_kick",
    "cpu_exit",
    "kvm_eat_signals",
    "kvm_handle_memory_fault",
    "kvm_handle_internal_error",
    "address_space_rw",
    "cpu_dump_state",
    "MmioHandler",
]

#: QEMU ``EXCP_INTERRUPT`` / ``EXCP_HLT`` (include/exec/cpu-all.h): kvm_cpu_exec results.
EXCP_INTERRUPT = 0x10000
EXCP_HLT = 0x10001


class QemuExit(Exception):
    """Model-only: QEMU called ``exit(status)`` (e.g. a failed launch step)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"exit({status}): {message}")
        self.status = status
        self.message = message


@dataclass
class MemoryRegion:
    """A guest-physical region (``MemoryRegion`` + its ``MemoryRegionSection`` in system
    memory): ``name``, ``addr`` (GPA, bytes), ``size`` (bytes), ``kind`` ("ram", "rom",
    "mmio"), ``ram_block`` for RAM/ROM and ``offset``, where the region starts in it
    (bytes; non-zero for an alias such as "ram-above-4g" into "pc.ram")."""

    name: str
    addr: int
    size: int
    kind: str
    ram_block: RAMBlock | None = None
    offset: int = 0

    def has_guest_memfd(self) -> bool:
        """``memory_region_has_guest_memfd(mr)``."""
        return self.ram_block is not None and self.ram_block.guest_memfd >= 0

    def is_ram(self) -> bool:
        """``memory_region_is_ram(mr)`` (ROMs are RAM with readonly set)."""
        return self.kind in ("ram", "rom")


@dataclass
class KVMState:
    """``struct KVMState``: the syscall surface ``kvm``, ``fd`` (/dev/kvm), ``vmfd``,
    ``regions`` (the system memory map), ``require_guest_memfd``, ``profile`` (QEMU
    knobs), ``errors`` (error_report lines, and the lines QEMU prints to stderr with
    ``fprintf``), ``shutdown_requested`` (the main loop's request), ``next_slot``,
    ``cpu_dumps`` (model-only: the vCPU indexes whose register state
    :func:`cpu_dump_state` printed)."""

    kvm: Kvm
    fd: int = -1
    vmfd: int = -1
    regions: list[MemoryRegion] = field(default_factory=list)
    require_guest_memfd: bool = True
    profile: QemuProfile = DEFAULT_QEMU_PROFILE
    errors: list[str] = field(default_factory=list)
    shutdown_requested: str | None = None
    next_slot: int = 0
    pre_fault_memory_supported: bool | None = None  # kvm_init: KVM_CAP_PRE_FAULT_MEMORY
    cpu_dumps: list[int] = field(default_factory=list)

    def error_report(self, msg: str) -> None:
        """``error_report(fmt, ...)``."""
        self.errors.append(msg)
        emit_instant("vmm", "error_report", msg=msg)


@dataclass
class CPUState:
    """``CPUState`` of one vCPU: ``cpu_index``, ``kvm_fd`` (the vCPU fd), ``kvm_run``,
    ``kvm_state``; ``exit_request``; ``last_run_ret`` (the last KVM_RUN result; model)."""

    cpu_index: int
    kvm_fd: int
    kvm_run: KvmRun
    kvm_state: KVMState
    exit_request: bool = False
    last_run_ret: int = 0
    stop_reason: str | None = None


def kvm_vm_ioctl(s: KVMState, request: int, arg: Any = 0) -> int:
    """``kvm_vm_ioctl(s, type, ...)``: the VM fd ioctl; returns the raw result."""
    return s.kvm.ioctl(s.vmfd, request, arg)


def kvm_vcpu_ioctl(cpu: CPUState, request: int, arg: Any = 0) -> int:
    """``kvm_vcpu_ioctl(cpu, type, ...)``: the vCPU fd ioctl."""
    return cpu.kvm_state.kvm.ioctl(cpu.kvm_fd, request, arg)


def kvm_create_vcpu(s: KVMState, index: int) -> CPUState | int:
    """``kvm_create_vcpu(cpu)``: KVM_CREATE_VCPU and mmap of ``kvm_run``; -errno."""
    fd = kvm_vm_ioctl(s, KVM_CREATE_VCPU, index)
    if fd < 0:
        return fd
    run = s.kvm.mmap_vcpu_run(fd)
    if isinstance(run, int):
        return run
    return CPUState(index, fd, run, s)


# ---- memory attributes (8.2) ----------------------------------------------------------------


@traced("vmm")
def kvm_set_memory_attributes(s: KVMState, start: int, size: int, attr: int) -> int:
    """``kvm_set_memory_attributes(start, size, attr)``: KVM_SET_MEMORY_ATTRIBUTES with
    {start, size, attr, flags 0}; on failure logs and returns the -errno."""
    assert attr & ~KVM_MEMORY_ATTRIBUTE_PRIVATE == 0, "unsupported attributes (QEMU assert)"
    ret = kvm_vm_ioctl(s, KVM_SET_MEMORY_ATTRIBUTES, KvmMemoryAttributes(start, size, attr, 0))
    if ret:
        s.error_report(f"failed to set memory (0x{start:x}+0x{size:x}) with attr 0x{attr:x} "
                       f"error '{errno.errorcode.get(-ret, ret)}'")
    return ret


def kvm_set_memory_attributes_private(s: KVMState, start: int, size: int) -> int:
    """``kvm_set_memory_attributes_private(start, size)``: attr 8."""
    return kvm_set_memory_attributes(s, start, size, KVM_MEMORY_ATTRIBUTE_PRIVATE)


def kvm_set_memory_attributes_shared(s: KVMState, start: int, size: int) -> int:
    """``kvm_set_memory_attributes_shared(start, size)``: attr 0."""
    return kvm_set_memory_attributes(s, start, size, 0)


# ---- memslots (8.1) -------------------------------------------------------------------------


@traced("vmm")
def kvm_set_phys_mem(s: KVMState, mr: MemoryRegion) -> int:
    """``kvm_set_phys_mem(kml, section, add=true)``: a memslot for a RAM/ROM region
    (KVM_SET_USER_MEMORY_REGION2, with the guest_memfd when the block has one); every
    guest_memfd slot is then set private at once (failure -> exit(1)).  MMIO regions get
    no slot.  Returns 0 or raises :class:`QemuExit`."""
    if not mr.is_ram() or mr.ram_block is None:
        return 0
    rb = mr.ram_block
    flags = KVM_MEM_GUEST_MEMFD if rb.guest_memfd >= 0 else 0
    if mr.kind == "rom":
        from snpsim.kvm.kvm_main import KVM_MEM_READONLY

        flags |= KVM_MEM_READONLY
    slot = s.next_slot
    s.next_slot += 1
    region = KvmUserspaceMemoryRegion2(slot, flags, mr.addr, mr.size, rb.host + mr.offset,
                                       mr.offset if rb.guest_memfd >= 0 else 0,
                                       max(rb.guest_memfd, 0))
    ret = kvm_vm_ioctl(s, KVM_SET_USER_MEMORY_REGION2, region)
    if ret:
        line = f"kvm_set_phys_mem: error registering slot: {errno.errorcode.get(-ret, ret)}"
        s.error_report(line)
        raise QemuExit(1, line)
    if rb.guest_memfd >= 0 and s.profile.knob("gmem_private_at_start"):
        if kvm_set_memory_attributes_private(s, mr.addr, mr.size):
            s.error_report(f"kvm_set_phys_mem: error setting private attributes for {mr.name}")
            raise QemuExit(1, "kvm_set_memory_attributes_private failed")
    return 0


def memory_region_find(s: KVMState, start: int, size: int) -> tuple[MemoryRegion | None, int]:
    """``memory_region_find(get_system_memory(), start, size)`` (system/memory.c): the
    section of the lowest-addressed region that intersects GPAs ``[start, start +
    size)`` -- not necessarily the one holding ``start``: a range starting in a hole
    finds the first region after it -- and the section's offset within the region's
    RAMBlock (``offset_within_region`` of the alias target: the alias offset plus
    ``max(start, region start) - region start``).  (None, 0) when nothing intersects
    (an unassigned range).  Only that first section is returned; the rest of the range
    is not looked at."""
    end = start + size
    found: MemoryRegion | None = None
    for mr in s.regions:
        if mr.addr < end and start < mr.addr + mr.size and (found is None or mr.addr < found.addr):
            found = mr
    if found is None:
        return None, 0
    return found, found.offset + max(start, found.addr) - found.addr


@traced("vmm")
def kvm_convert_memory(s: KVMState, start: int, size: int, to_private: bool) -> int:
    """``kvm_convert_memory(start, size, to_private)`` (accel/kvm/kvm-all.c, QEMU
    9.1-10.1; kvm-qemu-host.md 8.5), QEMU's exact order:

    1. ``start``/``size`` not aligned to the host page size, or ``size`` 0 -> -1;
    2. ``memory_region_find``: nothing intersects the range (unassigned GPAs, e.g. the
       32-bit PCI hole) -> 0 to shared, -1 to private;
    3. the first section's region has no guest_memfd: to shared on a region that is not
       RAM/ROM (MMIO) -> 0; otherwise (to private, or RAM without guest_memfd) the
       error_report "Convert non guest_memfd backed memory region (0x%HWADDR_PRIx ,+
       0x%HWADDR_PRIx) to %s" and -1;
    4. KVM_SET_MEMORY_ATTRIBUTES (private or shared) over the *whole* ``[start, start +
       size)`` -> its error;
    5. (QEMU >= 10.1) notify RamDiscardListeners;
    6. discard the now-unused backing of ``size`` bytes from the first section's offset
       in its RAMBlock: to private -> ``ram_block_discard_range`` (the shared copy;
       skipped for hugetlb blocks), to shared -> ``ram_block_discard_guest_memfd_range``
       (the private copy).

    So a range that crosses regions is decided by its first region alone: its
    attributes change everywhere KVM has them, and the discard runs ``size`` bytes on
    in the first region's RAMBlock -- for "ram-below-4g" that is the start of
    "ram-above-4g"'s backing (the same "pc.ram" block), however large the hole between
    them, or an overrun of the block ("Overrun block", -1).  Returns 0 or a negative value.
    ``start``/``size`` in bytes (GPA).
    """
    page = qemu_real_host_page_size()
    if start % page or size % page or not size:
        return -1
    mr, offset = memory_region_find(s, start, size)
    if mr is None:
        return -1 if to_private else 0
    ret = -1
    if not mr.has_guest_memfd():
        if not to_private and not mr.is_ram():
            ret = 0
        else:
            s.error_report(f"Convert non guest_memfd backed memory region (0x{start:x} ,+ "
                           f"0x{size:x}) to {'private' if to_private else 'shared'}")
        return ret
    if to_private:
        ret = kvm_set_memory_attributes_private(s, start, size)
    else:
        ret = kvm_set_memory_attributes_shared(s, start, size)
    if ret:
        return ret
    rb = mr.ram_block
    assert rb is not None
    if s.profile.knob("ram_discard_notify"):
        emit_instant("vmm", "ram_block_attributes_state_change", offset=offset, size=size,
                     to_private=to_private)
    if to_private:
        if rb.page_size != page:
            ret = 0  # hugetlb shared backing: not discarded
        else:
            ret = ram_block_discard_range(rb, offset, size, s.error_report)
    else:
        ret = ram_block_discard_guest_memfd_range(rb, offset, size)
    return ret


# ---- the vCPU loop (8.4) ------------------------------------------------------------------------

ExitHook = Callable[[CPUState, KvmRun], None]


def kvm_eat_signals(cpu: CPUState) -> None:
    """``kvm_eat_signals(cpu)``: with KVM_CAP_IMMEDIATE_EXIT, clear
    ``run->immediate_exit`` (set by ``kvm_cpu_kick``) after KVM_RUN returned -EINTR."""
    cpu.kvm_run.immediate_exit = 0


def kvm_cpu_kick(cpu: CPUState) -> None:
    """``qemu_cpu_kick`` -> ``kvm_cpu_kick(cpu)`` (accel/kvm/kvm-all.c): set
    ``run->immediate_exit`` and signal the vCPU thread (SIG_IPI); a vCPU blocked in
    KVM_RUN returns -EINTR, one about to enter does not enter.  The model's KVM reads
    the signal from ``immediate_exit`` (docs/host.md)."""
    cpu.kvm_run.immediate_exit = 1


def cpu_exit(cpu: CPUState) -> None:
    """``cpu_exit(cpu)``: request that the vCPU leave ``kvm_cpu_exec`` and kick it."""
    cpu.exit_request = True
    kvm_cpu_kick(cpu)


@traced("vmm")
def kvm_handle_memory_fault(cpu: CPUState, run: KvmRun) -> int:
    """The KVM_EXIT_MEMORY_FAULT case of ``kvm_cpu_exec`` (kvm-qemu-host.md 8.4): a flag
    other than KVM_MEMORY_EXIT_FLAG_PRIVATE -> "Unknown flag", -1; else
    ``kvm_convert_memory(gpa, size, flags & PRIVATE)``.  Returns 0 or negative."""
    s = cpu.kvm_state
    mf = run.memory_fault
    if mf.flags & ~KVM_MEMORY_EXIT_FLAG_PRIVATE:
        s.error_report(f"KVM_EXIT_MEMORY_FAULT: Unknown flag 0x{mf.flags:x}")
        return -1
    return kvm_convert_memory(s, mf.gpa, mf.size, bool(mf.flags & KVM_MEMORY_EXIT_FLAG_PRIVATE))


@traced("vmm")
def kvm_handle_io(cpu: CPUState, port: int, data: bytes, direction: int, size: int,
                  count: int, io_handler: Callable[[int, bytes, int, int], bytes | None]) -> None:
    """``kvm_handle_io(port, attrs, data, direction, size, count)``: each item goes to the
    I/O address space (``address_space_rw``); ``io_handler(port, data, direction, size)``
    is the machine's port dispatcher (IN data is written back into ``run->io``)."""
    out = bytearray()
    for i in range(count):
        item = data[i * size : (i + 1) * size]
        r = io_handler(port, item, direction, size)
        out += r if r is not None else bytes(size)
    if direction == 0:
        cpu.kvm_run.io.data = bytes(out)


#: The machine's MMIO dispatcher: ``(gpa, data, length, is_write) -> bytes | None``
#: (the bytes a read returns; None for a write).
MmioHandler = Callable[[int, bytes, int, bool], "bytes | None"]


def unassigned_mem_read(addr: int, size: int) -> bytes:
    """``unassigned_mem_read`` (system/memory.c): a read nothing claims returns 0."""
    return bytes(size)


@traced("vmm")
def address_space_rw(cpu: CPUState, addr: int, data: bytes, length: int, is_write: bool,
                     mmio_handler: MmioHandler | None) -> None:
    """The KVM_EXIT_MMIO case of ``kvm_cpu_exec``: ``address_space_rw(&address_space_memory,
    run->mmio.phys_addr, attrs, run->mmio.data, run->mmio.len, run->mmio.is_write)``
    (accel/kvm/kvm-all.c; system/physmem.c).  ``mmio_handler`` is the machine's device
    dispatch; without one, or when it returns None for a read, the access is
    unassigned: a write is dropped and a read gives zeros (``unassigned_mem_read``).
    A read's bytes go back into ``run->mmio.data`` (``length`` bytes, at most 8)."""
    out = mmio_handler(addr, data[:length], length, is_write) if mmio_handler else None
    if is_write:
        return
    value = out if out is not None else unassigned_mem_read(addr, length)
    cpu.kvm_run.mmio.data = bytes(value[:length]).ljust(8, b"\0")


@traced("vmm")
def kvm_handle_internal_error(cpu: CPUState, run: KvmRun) -> int:
    """``kvm_handle_internal_error(cpu, run)`` (accel/kvm/kvm-all.c, QEMU 9.1-10.1):
    print "KVM internal error. Suberror: %d", then "extra data[%d]: 0x%016" PRIx64 for
    each of the ``ndata`` words; for KVM_INTERNAL_ERROR_EMULATION also "emulation
    failure" and, if ``kvm_arch_stop_on_emulation_error`` says the guest may go on (a
    user-mode guest instruction), dump the registers and return EXCP_INTERRUPT.  That
    test reads CR0.PE and the CPL from the vCPU state; a protected guest's state (SEV-ES,
    SNP) reads as zeros, so it always stops (model: the model's guests always do).
    Returns -1."""
    s = cpu.kvm_state
    internal = run.internal
    s.error_report(f"KVM internal error. Suberror: {internal.suberror}")
    for i in range(min(internal.ndata, len(internal.data))):
        s.error_report(f"extra data[{i}]: 0x{internal.data[i]:016x}")
    if internal.suberror == KVM_INTERNAL_ERROR_EMULATION:
        s.error_report("emulation failure")
    return -1


@traced("vmm")
def cpu_dump_state(cpu: CPUState) -> None:
    """``cpu_dump_state(cpu, stderr, CPU_DUMP_CODE)`` after ``kvm_cpu_exec`` ends with
    an error (accel/kvm/kvm-all.c): the register dump ("EAX=... EIP=... CR0=..."; all
    zeros for a protected guest).  Model: the dump is recorded as the vCPU index in
    ``KVMState.cpu_dumps``, not printed into ``errors``."""
    cpu.kvm_state.cpu_dumps.append(cpu.cpu_index)


@traced("vmm")
def kvm_cpu_exec(cpu: CPUState, arch_handle_exit: Callable[[CPUState, KvmRun], int],
                 io_handler: Callable[[int, bytes, int, int], bytes | None],
                 on_exit: list[ExitHook] | None = None,
                 mmio_handler: MmioHandler | None = None) -> int:
    """``kvm_cpu_exec(cpu)`` (accel/kvm/kvm-all.c, QEMU 9.1-10.1): KVM_RUN until a
    handler returns non-zero.  QEMU's lines are quoted as it prints them.

    KVM_RUN < 0: -EINTR/-EAGAIN -> ``kvm_eat_signals``, EXCP_INTERRUPT; -EFAULT with
    KVM_EXIT_MEMORY_FAULT is not an error; anything else "error: kvm run failed %s"
    (``strerror``), -1.  Exits:

    * IO -> ``kvm_handle_io``, re-enter (0); MMIO -> :func:`address_space_rw` with
      ``mmio_handler``, re-enter;
    * SHUTDOWN (triple fault) -> ``qemu_system_reset_request(GUEST_RESET)``,
      EXCP_INTERRUPT;
    * UNKNOWN -> "KVM: unknown exit, hardware reason %" PRIx64, -1;
      INTERNAL_ERROR -> :func:`kvm_handle_internal_error` (-1);
    * SYSTEM_EVENT: SHUTDOWN -> shutdown request, EXCP_INTERRUPT; RESET -> reset request,
      EXCP_INTERRUPT; CRASH -> ``qemu_system_guest_panicked``, re-enter (the panic
      request stops the loop); any other type (SEV_TERM) -> ``kvm_arch_handle_exit``;
    * MEMORY_FAULT -> :func:`kvm_handle_memory_fault` (QEMU >= 9.0);
    * anything else (HYPERCALL, HLT, FAIL_ENTRY, ...) -> ``kvm_arch_handle_exit``.

    A negative result is followed by ``cpu_dump_state`` (:func:`cpu_dump_state`) and
    ``vm_stop(RUN_STATE_INTERNAL_ERROR)`` (the caller stops the VM).  Returns EXCP_* or
    -1.  ``on_exit`` hooks see every exit.

    Model-only: each KVM_EXIT_MEMORY_FAULT is a pass of this loop for the livelock
    watcher (:mod:`snpsim.trace.progress`; state: the exit's GPA, size and flags), any
    other exit is progress.  A VMM that answers the fault without converting (profile
    override ``kvm_handle_memory_fault`` returning 0) gets the same fault back at every
    KVM_RUN and is stopped as a livelock in ``kvm_cpu_exec``.  The watcher is the
    platform's, reached through the KVM object (``Kvm.host.progress``).
    """
    ret = _kvm_cpu_exec_loop(cpu, arch_handle_exit, io_handler, on_exit, mmio_handler)
    if ret < 0:
        cpu_dump_state(cpu)
    return ret


def _kvm_cpu_exec_loop(cpu: CPUState, arch_handle_exit: Callable[[CPUState, KvmRun], int],
                       io_handler: Callable[[int, bytes, int, int], bytes | None],
                       on_exit: list[ExitHook] | None,
                       mmio_handler: MmioHandler | None) -> int:
    s = cpu.kvm_state
    run = cpu.kvm_run
    watcher = s.kvm.host.progress
    while True:
        if cpu.exit_request or s.shutdown_requested:
            return EXCP_INTERRUPT
        run_ret = kvm_vcpu_ioctl(cpu, KVM_RUN, 0)
        cpu.last_run_ret = run_ret
        emit_instant("vmm", "KVM_RUN returned", ret=run_ret, exit_reason=run.exit_reason)
        for hook in on_exit or ():
            hook(cpu, run)
        if run_ret < 0:
            if run_ret in (-errno.EINTR, -errno.EAGAIN):
                kvm_eat_signals(cpu)
                return EXCP_INTERRUPT
            if not (run_ret == -errno.EFAULT and run.exit_reason == KVM_EXIT_MEMORY_FAULT):
                s.error_report(f"error: kvm run failed {os.strerror(-run_ret)}")
                return -1
        reason = run.exit_reason
        if reason != KVM_EXIT_MEMORY_FAULT:
            watcher.progress("kvm_cpu_exec", cpu.cpu_index)
        if reason == KVM_EXIT_IO:
            kvm_handle_io(cpu, run.io.port, run.io.data, run.io.direction, run.io.size,
                          run.io.count, io_handler)
            ret = 0
        elif reason == KVM_EXIT_MMIO:
            m = run.mmio
            address_space_rw(cpu, m.phys_addr, m.data, m.len, bool(m.is_write), mmio_handler)
            ret = 0
        elif reason == KVM_EXIT_SHUTDOWN:
            s.shutdown_requested = s.shutdown_requested or "guest-reset"
            ret = EXCP_INTERRUPT
        elif reason == KVM_EXIT_UNKNOWN:
            s.error_report(f"KVM: unknown exit, hardware reason {run.hw.hardware_exit_reason:x}")
            ret = -1
        elif reason == KVM_EXIT_INTERNAL_ERROR:
            ret = kvm_handle_internal_error(cpu, run)
        elif reason == KVM_EXIT_HLT:
            ret = EXCP_HLT
        elif reason == KVM_EXIT_SYSTEM_EVENT:
            t = run.system_event.type
            if t == KVM_SYSTEM_EVENT_SHUTDOWN:
                s.shutdown_requested = "guest-shutdown"
                ret = EXCP_INTERRUPT
            elif t == KVM_SYSTEM_EVENT_RESET:
                s.shutdown_requested = "guest-reset"
                ret = EXCP_INTERRUPT
            elif t == KVM_SYSTEM_EVENT_CRASH:
                s.shutdown_requested = "guest-panicked"
                ret = 0
            else:
                ret = arch_handle_exit(cpu, run)
        elif reason == KVM_EXIT_MEMORY_FAULT and s.profile.knob("handle_memory_fault"):
            mf = run.memory_fault
            watcher.watch("kvm_cpu_exec", cpu.cpu_index, (mf.gpa, mf.size, mf.flags),
                          lambda mf=mf: f"KVM_EXIT_MEMORY_FAULT at GPA {mf.gpa:#x} size {mf.size:#x} "
                                  f"flags {mf.flags:#x} comes back after the VMM answered it")
            ret = s.profile.call("kvm_handle_memory_fault", kvm_handle_memory_fault)(cpu, run)
        else:
            ret = arch_handle_exit(cpu, run)
        if ret != 0:
            return ret
