# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A QEMU-like SNP machine: RAM backed by guest_memfd memslots (+ the shared HVA
backing), MMIO holes, SNP launch, one ``kvm_cpu_exec`` per vCPU, ACPI power-off.

Model of the parts of QEMU's ``hw/i386/pc_q35.c`` / ``pc.c`` / ``system/vl.c`` the
page-state protocol needs (no devices beyond the ACPI PM1a control register at I/O port
0x604).  Entry points for ``system.py``::

    kvm = Kvm(platform.host)                       # snpsim.kvm.kvm_main
    m = Machine(kvm, ram_size=64 << 20, vcpus=1)   # VM, RAM slots all private, vCPUs
    platform.install_guest_code(m.asid, entry)     # (system.py, not the VMM)
    digest = m.snp_launch([(gpa, data, page_type), ...])
    result = m.run()                               # RunResult
    m.read_guest_ram(gpa, n) / m.write_guest_ram(gpa, data)   # shared view (HVAs)
    m.on_exit.append(lambda cpu, run: ...)         # observe each KVM_RUN return

Results (:class:`RunResult`): ``"completed"`` (ACPI S5 power-off: OUT 0x2000 with SLP_EN
to port 0x604), ``"guest-terminated"`` (KVM_EXIT_SYSTEM_EVENT SEV_TERM: QEMU reports
"unknown exit reason 24" and stops with RUN_STATE_INTERNAL_ERROR; the reason set/code are
decoded from ``data[0]``), ``"internal-error"`` (any other failure: QEMU's
``vm_stop(RUN_STATE_INTERNAL_ERROR)``), ``"shutdown"``/``"reset"`` (KVM_EXIT_SHUTDOWN,
system events), ``"halted"`` (all vCPUs halted, nothing can wake them: KVM's model
returns KVM_EXIT_HLT to the last one), ``"stopped"`` (a vCPU left its loop for another
reason, e.g. the model's KVM_RUN watchdog), ``"qemu-exit"`` (QEMU called exit(), or the
VMM panicked).

Several vCPUs: one host thread per vCPU (``thread_runner`` = the platform's
``World.run_threads``).  A halted vCPU blocks inside KVM_RUN; when any vCPU thread leaves
``kvm_cpu_exec`` (e.g. the BSP's ACPI power-off) the VM stops and every vCPU is kicked
(``pause_all_vcpus``), so the run ends with every thread finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snpsim.kvm.kvm_main import Kvm, KvmCreateGuestMemfd, KvmRun
from snpsim.spec.acpi import ACPI_BITMASK_SLEEP_ENABLE, ACPI_PM1_CNT_PORT
from snpsim.spec.kvm_uapi import (
    KVM_CREATE_GUEST_MEMFD,
    KVM_CREATE_VM,
    KVM_EXIT_IO_OUT,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_SYSTEM_EVENT_SEV_TERM,
    KVM_X86_SEV_ES_VM,
    KVM_X86_SEV_VM,
    KVM_X86_SNP_VM,
)
from snpsim.spec.msr_protocol import GHCB_MSR_INFO_MASK, GHCB_MSR_TERM_REQ
from snpsim.spec.termination import describe_termination
from snpsim.trace.record import emit_instant, traced

from .i386_kvm import kvm_arch_handle_exit
from .i386_sev import (
    SnpLaunchUpdateData,
    sev_kvm_init,
    sev_launch_finish,
    sev_launch_get_measure,
    sev_launch_start,
    sev_launch_update_data,
    sev_snp_launch_finish,
    sev_snp_launch_start,
    snp_launch_update_data,
)
from .kvm_all import (
    EXCP_HLT,
    CPUState,
    KVMState,
    MemoryRegion,
    QemuExit,
    cpu_exit,
    kvm_cpu_exec,
    kvm_create_vcpu,
    kvm_set_phys_mem,
)
from .physmem import RAMBlock
from .profiles import DEFAULT_QEMU_PROFILE, QEMU_PROFILES, QemuProfile

__all__ = ["Machine", "RunResult", "DEFAULT_MMIO"]

#: Guest policy per VM type: SNP 0x30000 (SMT allowed, bit 17 reserved 1); SEV 0x1
#: (QEMU's ``sev-guest`` default, DEFAULT_GUEST_POLICY: debugging disabled); SEV-ES 0x5
#: (that plus SEV_POLICY_ES, bit 2, by which QEMU's ``sev_es_enabled`` selects SEV-ES)
#: [from memory of target/i386/sev.c, unconfirmed].
_DEFAULT_POLICY: dict[int, int] = {KVM_X86_SNP_VM: 0x30000, KVM_X86_SEV_VM: 0x1, KVM_X86_SEV_ES_VM: 0x5}

#: Default MMIO regions (no memslot): IOAPIC/HPET/LAPIC window below 4 GiB.
DEFAULT_MMIO: tuple[tuple[str, int, int], ...] = (("ioapic-hpet-lapic", 0xFEC00000, 0x1400000),)


@dataclass
class RunResult:
    """How a run ended: ``result`` (see module docstring), ``run_state`` (QEMU RunState
    name), ``reason_set``/``reason_code`` and ``description`` for a guest termination,
    ``ghcb_msr`` (``system_event.data[0]``), ``errors`` (QEMU's error_report lines),
    ``exits`` (KVM_RUN returns seen)."""

    result: str
    run_state: str
    reason_set: int | None = None
    reason_code: int | None = None
    description: str = ""
    ghcb_msr: int | None = None
    errors: list[str] = field(default_factory=list)
    exits: int = 0


class Machine:
    """One SNP VM as QEMU builds it.

    ``kvm``: the host's KVM syscall surface (:class:`snpsim.kvm.kvm_main.Kvm`);
    ``ram_size`` bytes of RAM at GPA 0 (split around the MMIO holes, which must not
    overlap it); ``vcpus``; ``mmio`` regions (name, GPA, size) without memslots;
    ``profile`` QEMU knobs; ``ghcb_version`` for KVM_SEV_INIT2 (0 = default 2; must be
    0 for SEV); ``policy`` the guest policy (default per VM type); ``vm_type``
    KVM_X86_SNP_VM (default), KVM_X86_SEV_VM or KVM_X86_SEV_ES_VM.
    Raises :class:`QemuExit` if QEMU would exit during set-up.
    """

    def __init__(self, kvm: Kvm, ram_size: int, vcpus: int = 1, *,
                 mmio: tuple[tuple[str, int, int], ...] = DEFAULT_MMIO,
                 profile: QemuProfile | str = DEFAULT_QEMU_PROFILE, ghcb_version: int = 0,
                 policy: int | None = None, vm_type: int = KVM_X86_SNP_VM) -> None:
        prof = QEMU_PROFILES[profile] if isinstance(profile, str) else profile
        self.kvm = kvm
        self.s = KVMState(kvm, profile=prof)
        self.vm_type = vm_type
        if policy is None:
            policy = _DEFAULT_POLICY.get(vm_type, 0)
        self.policy = policy
        self.on_exit: list[Callable[[CPUState, KvmRun], None]] = []
        self.launch_queue: list[SnpLaunchUpdateData] = []
        self.launched = False
        self.all_halted = False
        self.digest = b""
        s = self.s
        s.fd = kvm.open("/dev/kvm")
        s.vmfd = kvm.ioctl(s.fd, KVM_CREATE_VM, vm_type)
        if s.vmfd < 0:
            raise QemuExit(1, f"KVM_CREATE_VM failed: {s.vmfd}")
        sev_kvm_init(s, ghcb_version)
        for name, addr, size in mmio:
            s.regions.append(MemoryRegion(name, addr, size, "mmio"))
        self._add_ram("pc.ram", 0, ram_size)
        self.cpus: list[CPUState] = []
        for i in range(vcpus):
            cpu = kvm_create_vcpu(s, i)
            if isinstance(cpu, int):
                raise QemuExit(1, f"kvm_init_vcpu: KVM_CREATE_VCPU failed: {cpu}")
            self.cpus.append(cpu)

    # -- memory ---------------------------------------------------------------------------
    @traced("vmm")
    def _add_ram(self, name: str, addr: int, size: int) -> None:
        """``ram_block_add`` + ``kvm_set_phys_mem``: anonymous shared backing (HVA), a
        guest_memfd of the same size, a memslot, attributes private.  An SEV / SEV-ES VM
        gets no guest_memfd (QEMU requires one only for SNP): a plain memslot, encrypted
        by the guest's C-bit alone."""
        s, kvm = self.s, self.kvm
        hva = kvm.mmap(size)
        if hva < 0:
            raise QemuExit(1, "cannot allocate RAM")
        if self.vm_type != KVM_X86_SNP_VM:
            rb = RAMBlock(name, hva, size, kvm)
            mr = MemoryRegion(name, addr, size, "ram", rb)
            s.regions.append(mr)
            kvm_set_phys_mem(s, mr)
            return
        gmem = kvm.ioctl(s.vmfd, KVM_CREATE_GUEST_MEMFD, KvmCreateGuestMemfd(size, 0))
        if gmem < 0:
            s.error_report(f"{name}: error creating guest_memfd: {gmem}")
            raise QemuExit(1, "KVM_CREATE_GUEST_MEMFD failed")
        rb = RAMBlock(name, hva, size, kvm, guest_memfd=gmem)
        mr = MemoryRegion(name, addr, size, "ram", rb)
        s.regions.append(mr)
        kvm_set_phys_mem(s, mr)

    def _hva(self, gpa: int) -> tuple[MemoryRegion, int]:
        for mr in self.s.regions:
            if mr.ram_block is not None and mr.addr <= gpa < mr.addr + mr.size:
                return mr, mr.ram_block.host + (gpa - mr.addr)
        raise ValueError(f"GPA {gpa:#x} is not RAM")

    def read_guest_ram(self, gpa: int, n: int) -> bytes:
        """What QEMU reads at ``gpa`` through its RAM mapping (the shared backing; for a
        private page this is the stale/zero shared copy, never the guest's plaintext)."""
        out = bytearray()
        while n:
            mr, hva = self._hva(gpa)
            take = min(n, mr.addr + mr.size - gpa)
            out += self.kvm.read_user(hva, take)
            gpa += take
            n -= take
        return bytes(out)

    def write_guest_ram(self, gpa: int, data: bytes) -> None:
        """QEMU writes ``data`` at ``gpa`` through its RAM mapping (shared backing)."""
        pos = 0
        while pos < len(data):
            mr, hva = self._hva(gpa + pos)
            take = min(len(data) - pos, mr.addr + mr.size - (gpa + pos))
            self.kvm.write_user(hva, data[pos : pos + take])
            pos += take

    # -- launch ------------------------------------------------------------------------------
    @property
    def asid(self) -> int:
        """The guest's ASID (model-only: for installing the guest code on the platform)."""
        return self.kvm.vm_asid(self.s.vmfd)

    @traced("vmm")
    def snp_launch(self, regions: list[tuple[int, bytes, int]]) -> bytes:
        """SNP launch: LAUNCH_START (with the hypercall exit enabled), one
        LAUNCH_UPDATE per region ``(gpa, data, page_type)`` (data copied into QEMU's RAM
        first, padded to 4 KiB; GPA 4 KiB aligned), LAUNCH_FINISH.  Returns the 48-byte
        launch digest.  Raises :class:`QemuExit` on failure."""
        s = self.s
        sev_snp_launch_start(s, self.policy)
        for gpa, data, page_type in regions:
            length = (len(data) + 4095) & ~4095
            self.write_guest_ram(gpa, bytes(data).ljust(length, b"\0"))
            _mr, hva = self._hva(gpa)
            snp_launch_update_data(self.launch_queue, gpa, hva, length, page_type)
        self.digest = sev_snp_launch_finish(s, self.launch_queue)
        self.launched = True
        return self.digest

    @traced("vmm")
    def sev_launch(self, regions: list[tuple[int, bytes, int]]) -> bytes:
        """SEV / SEV-ES launch: LAUNCH_START (no hypercall exit enabled), the image
        ``(gpa, data, page_type)`` copied into QEMU's RAM and encrypted in place with
        LAUNCH_UPDATE_DATA (every page, measured; the SNP page type is ignored: SEV has
        no ZERO pages), LAUNCH_UPDATE_VMSA (SEV-ES) + LAUNCH_MEASURE, LAUNCH_FINISH.
        Returns the measurement (model: the launch digest).  Raises :class:`QemuExit`."""
        s = self.s
        sev_launch_start(s, self.policy)
        for gpa, data, _page_type in regions:
            length = (len(data) + 4095) & ~4095
            self.write_guest_ram(gpa, bytes(data).ljust(length, b"\0"))
            _mr, hva = self._hva(gpa)
            if sev_launch_update_data(s, hva, length):
                raise QemuExit(1, "LAUNCH_UPDATE_DATA failed")
        self.digest = sev_launch_get_measure(s, self.vm_type == KVM_X86_SEV_ES_VM)
        sev_launch_finish(s)
        self.launched = True
        return self.digest

    def launch(self, regions: list[tuple[int, bytes, int]]) -> bytes:
        """The launch for this VM's type: :meth:`snp_launch` or :meth:`sev_launch`."""
        if self.vm_type == KVM_X86_SNP_VM:
            return self.snp_launch(regions)
        return self.sev_launch(regions)

    # -- devices ---------------------------------------------------------------------------------
    def io_handler(self, port: int, data: bytes, direction: int, size: int) -> bytes | None:
        """The I/O port space: ACPI PM1a control (port 0x604): a write with SLP_EN (bit
        13) requests power-off (``qemu_system_shutdown_request``).  Other ports: reads
        give all ones, writes are ignored."""
        if direction == KVM_EXIT_IO_OUT:
            val = int.from_bytes(data, "little")
            if port == ACPI_PM1_CNT_PORT and val & ACPI_BITMASK_SLEEP_ENABLE:
                emit_instant("vmm", "acpi power-off", value=val)
                self.s.shutdown_requested = "guest-shutdown"
            return None
        return b"\xff" * size

    # -- run -----------------------------------------------------------------------------------------
    def _cpu_thread(self, cpu: CPUState) -> int:
        """``kvm_vcpu_thread_fn``: ``kvm_cpu_exec`` until it returns, then stop the VM.

        In QEMU a vCPU thread leaves its loop only when the VM stops (``vm_stop`` ->
        ``pause_all_vcpus`` kicks every vCPU), so whatever ended this vCPU's
        ``kvm_cpu_exec`` (power-off, error, guest termination, all vCPUs halted, the model
        watchdog) stops the others too: a vCPU blocked in KVM (HLT) returns -EINTR.
        Returns the ``kvm_cpu_exec`` result."""
        s = self.s
        handler = s.profile.call("kvm_arch_handle_exit", kvm_arch_handle_exit)
        ret = kvm_cpu_exec(cpu, handler, self.io_handler, self.on_exit)
        if ret == EXCP_HLT:
            self.all_halted = True
        self.pause_all_vcpus()
        return ret

    @traced("vmm")
    def pause_all_vcpus(self) -> None:
        """``vm_stop`` -> ``pause_all_vcpus``: ``cpu_exit`` (exit request + kick) on every
        vCPU (softmmu/cpus.c)."""
        for c in self.cpus:
            if not c.exit_request:
                cpu_exit(c)

    @traced("vmm")
    def run(self, thread_runner: Callable[[list[tuple[str, Callable[[], Any]]]], list[Any]] | None = None
            ) -> RunResult:
        """Run every vCPU (``kvm_cpu_exec``) until the VM stops.  With several vCPUs,
        ``thread_runner`` (the platform's ``World.run_threads``) runs one host thread per
        vCPU; with one vCPU it may be omitted.  Returns a :class:`RunResult`."""
        s = self.s
        exits = [0]

        def count(cpu: CPUState, run: KvmRun) -> None:
            exits[0] += 1

        self.on_exit.insert(0, count)
        try:
            if thread_runner is None:
                assert len(self.cpus) == 1, "several vCPUs need a thread_runner"
                rets = [self._cpu_thread(self.cpus[0])]
            else:
                rets = thread_runner([(f"host{c.cpu_index}", lambda c=c: self._cpu_thread(c))
                                      for c in self.cpus])
        except QemuExit as e:
            return RunResult("qemu-exit", "exit", errors=[*s.errors, e.message], exits=exits[0])
        finally:
            self.on_exit.remove(count)
        return self._result(rets, exits[0])

    def _result(self, rets: list[int], exits: int) -> RunResult:
        s = self.s
        for cpu, ret in zip(self.cpus, rets):
            if ret < 0:
                run = cpu.kvm_run
                if (run.exit_reason == KVM_EXIT_SYSTEM_EVENT
                        and run.system_event.type == KVM_SYSTEM_EVENT_SEV_TERM):
                    v = run.system_event.data[0]
                    if v & GHCB_MSR_INFO_MASK == GHCB_MSR_TERM_REQ:
                        rs, rc = (v >> 12) & 0xF, (v >> 16) & 0xFF
                    else:  # NAE form: data[0] is the GHCB GPA; reason not in the MSR
                        rs = rc = None
                    desc = describe_termination(rs, rc) if rs is not None else "NAE termination"
                    return RunResult("guest-terminated", "internal-error", rs, rc, desc, v,
                                     list(s.errors), exits)
                return RunResult("internal-error", "internal-error", errors=list(s.errors),
                                 exits=exits)
        if s.shutdown_requested == "guest-shutdown":
            return RunResult("completed", "shutdown", errors=list(s.errors), exits=exits)
        if s.shutdown_requested in ("guest-reset", "guest-panicked"):
            res = "reset" if s.shutdown_requested == "guest-reset" else "guest-panicked"
            return RunResult(res, s.shutdown_requested, errors=list(s.errors), exits=exits)
        if self.all_halted:
            return RunResult("halted", "running", errors=list(s.errors), exits=exits)
        return RunResult("stopped", "paused", errors=list(s.errors), exits=exits)
