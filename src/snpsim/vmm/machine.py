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
to port 0x604), ``"guest-terminated"`` (KVM_EXIT_SYSTEM_EVENT SEV_TERM: QEMU stops with
RUN_STATE_INTERNAL_ERROR, after "KVM: unknown exit reason 24" up to QEMU 10.0 and with no
message in 10.1 -- :mod:`snpsim.vmm.i386_kvm`; the reason set/code are decoded from
``data[0]``), ``"internal-error"`` (any other failure: QEMU's
``vm_stop(RUN_STATE_INTERNAL_ERROR)``), ``"shutdown"``/``"reset"`` (KVM_EXIT_SHUTDOWN,
system events), ``"halted"`` (all vCPUs halted, nothing can wake them: KVM's model
returns KVM_EXIT_HLT to the last one), ``"livelock"`` (the model's livelock watcher found
a loop that can never end -- guest, KVM or VMM -- and the VM was stopped:
``RunResult.livelock``), ``"stopped"`` (a vCPU left its loop for another reason, e.g. an
opt-in KVM_RUN entry limit), ``"qemu-exit"`` (QEMU called exit(), or the VMM panicked).

Several vCPUs: one host thread per vCPU (``thread_runner`` = the platform's
``World.run_threads``).  A halted vCPU blocks inside KVM_RUN; when any vCPU thread leaves
``kvm_cpu_exec`` (e.g. the BSP's ACPI power-off) the VM stops and every vCPU is kicked
(``pause_all_vcpus``), so the run ends with every thread finished.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from snpsim.kvm.kvm_main import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    Kvm,
    KvmCreateGuestMemfd,
    KvmRun,
)
from snpsim.spec.acpi import ACPI_BITMASK_SLEEP_ENABLE, ACPI_PM1_CNT_PORT
from snpsim.spec.e820 import E820_TYPE_RAM, E820_TYPE_RESERVED, E820Range
from snpsim.spec.kvm_uapi import (
    KVM_CAP_READONLY_MEM,
    KVM_CHECK_EXTENSION,
    KVM_CREATE_GUEST_MEMFD,
    KVM_CREATE_VM,
    KVM_EXIT_HYPERCALL,
    KVM_EXIT_IO_OUT,
    KVM_EXIT_MEMORY_FAULT,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_SYSTEM_EVENT_SEV_TERM,
    KVM_X86_SEV_ES_VM,
    KVM_X86_SEV_VM,
    KVM_X86_SNP_VM,
    KvmExitReason,
)
from snpsim.spec.msr_protocol import GHCB_MSR_INFO_MASK, GHCB_MSR_TERM_REQ
from snpsim.spec.termination import describe_termination
from snpsim.trace.progress import Livelock
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
    EXCP_INTERRUPT,
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

__all__ = [
    "Machine",
    "RegionSpec",
    "regions_e820",
    "RunResult",
    "DEFAULT_MMIO",
    "PcMemoryLayout",
    "pc_memory_layout",
    "pc_max_used_gpa",
    "pc_pci_hole64_start",
    "AMD_HT_START",
    "AMD_ABOVE_1TB_START",
]

#: Guest policy per VM type: SNP 0x30000 (SMT allowed, bit 17 reserved 1); SEV 0x1
#: (QEMU's ``sev-guest`` default, DEFAULT_GUEST_POLICY: debugging disabled); SEV-ES 0x5
#: (that plus SEV_POLICY_ES, bit 2, by which QEMU's ``sev_es_enabled`` selects SEV-ES)
#: [from memory of target/i386/sev.c, unconfirmed].
_DEFAULT_POLICY: dict[int, int] = {KVM_X86_SNP_VM: 0x30000, KVM_X86_SEV_VM: 0x1, KVM_X86_SEV_ES_VM: 0x5}

#: MMIO regions of the q35 machine (no memslot, not guest_memfd-backed), (name, GPA,
#: bytes): the PCIe MMCONFIG window where the firmware programs PCIEXBAR (0xE0000000,
#: 256 MiB: OVMF's base, the "reserved" e820 entry 0xe0000000-0xefffffff of
#: tests/data/dmesg/01-qemu-snp-6.16-4cpu-2g.log, a QEMU 10.0 + OVMF SNP guest; QEMU's reset value
#: MCH_HOST_BRIDGE_PCIEXBAR_DEFAULT 0xb0000000 is disabled until the firmware writes it),
#: the IOAPIC (IO_APIC_DEFAULT_ADDRESS, one 4 KiB page), the HPET (HPET_BASE, HPET_LEN
#: 0x400, include/hw/timer/hpet.h) and the local APIC / MSI window
#: (APIC_DEFAULT_ADDRESS, APIC_SPACE_SIZE 0x100000, target/i386/cpu.h).
DEFAULT_MMIO: tuple[tuple[str, int, int], ...] = (
    ("pcie-mmcfg-mmio", 0xE0000000, 0x10000000),
    ("ioapic", 0xFEC00000, 0x1000),
    ("hpet", 0xFED00000, 0x400),
    ("kvm-apic-msi", 0xFEE00000, 0x100000),
)

#: q35 low-RAM split (``pc_q35_init``, hw/i386/pc_q35.c): RAM of at least
#: 0xb0000000 bytes keeps 2 GiB below 4 GiB, smaller RAM up to 0xb0000000.
Q35_LOWMEM_SMALL = 0xB0000000
Q35_LOWMEM_LARGE = 0x80000000
#: ``Q35_PCI_HOST_HOLE64_SIZE_DEFAULT`` (hw/pci-host/q35.c): 32 GiB of 64-bit PCI hole.
Q35_PCI_HOST_HOLE64_SIZE_DEFAULT = 1 << 35
#: hw/i386/pc.c: the AMD HyperTransport range [AMD_HT_START, AMD_HT_END] and where
#: ram-above-4g goes when it would reach it.
AMD_HT_START = 0xFD00000000
AMD_HT_END = 0xFFFFFFFFFF
AMD_ABOVE_1TB_START = AMD_HT_END + 1
AMD_HT_SIZE = AMD_ABOVE_1TB_START - AMD_HT_START
#: target/i386/kvm/kvm.c ``kvm_arch_init``: the EPT identity map + TSS, 4 pages below
#: a 16 MiB BIOS, an e820 "reserved" entry (0xfeffc000-0xfeffffff in log 01).
KVM_IDENTITY_BASE = 0xFEFFC000
KVM_IDENTITY_SIZE = 0x4000
#: Model choice: the size of the firmware image ("pc.bios", mapped ending at 4 GiB;
#: QEMU takes the file's size, a multiple of 64 KiB).  4 MiB is an OVMF build's size.
DEFAULT_BIOS_SIZE = 4 << 20
#: Model choice: guest physical address bits (QEMU ``phys-bits``): 48, what
#: ``-cpu host`` (host-phys-bits=on) gives on EPYC hosts.  With a named CPU model QEMU
#: defaults to 40 [from memory, unconfirmed], and then refuses guests above ~978 GiB
#: (see :func:`pc_memory_layout`).
DEFAULT_PHYS_BITS = 48


@dataclass(frozen=True)
class PcMemoryLayout:
    """Where the q35 machine puts its memory (model of ``X86MachineState`` fields and the
    regions ``pc_memory_init`` adds), all in bytes:

    ``ram_size`` (the one "pc.ram" RAMBlock), ``below_4g_mem_size`` (alias
    "ram-below-4g" at GPA 0, RAMBlock offset 0), ``above_4g_mem_size`` and
    ``above_4g_mem_start`` (alias "ram-above-4g", RAMBlock offset
    ``below_4g_mem_size``; 4 GiB, or 1 TiB when relocated above the AMD HT hole),
    ``bios_size`` ("pc.bios" at 4 GiB - ``bios_size``), ``mmio`` (name, GPA, size) and
    ``e820`` the table QEMU gives the firmware, as (addr, size, E820_TYPE_*) sorted by
    address."""

    ram_size: int
    below_4g_mem_size: int
    above_4g_mem_size: int
    above_4g_mem_start: int
    bios_size: int
    mmio: tuple[tuple[str, int, int], ...]
    e820: tuple[E820Range, ...]

    @property
    def bios_base(self) -> int:
        """GPA of "pc.bios" (``0x100000000 - bios_size``)."""
        return (1 << 32) - self.bios_size

    def ram_ranges(self) -> list[tuple[int, int]]:
        """(GPA, bytes) of ram-below-4g and (if any) ram-above-4g."""
        out = [(0, self.below_4g_mem_size)]
        if self.above_4g_mem_size:
            out.append((self.above_4g_mem_start, self.above_4g_mem_size))
        return out


def _round_up(x: int, a: int) -> int:
    return -(-x // a) * a


def pc_pci_hole64_start(above_4g_mem_start: int, above_4g_mem_size: int) -> int:
    """``pc_pci_hole64_start()`` (hw/i386/pc.c, QEMU 9.1+) without CXL or memory
    hotplug: the end of above-4G RAM (``pc_above_4g_end``) rounded up to 1 GiB."""
    return _round_up(above_4g_mem_start + above_4g_mem_size, 1 << 30)


def pc_max_used_gpa(above_4g_mem_start: int, above_4g_mem_size: int,
                    pci_hole64_size: int = Q35_PCI_HOST_HOLE64_SIZE_DEFAULT) -> int:
    """``pc_max_used_gpa(pcms, pci_hole64_size)`` for a 64-bit (long mode) CPU: the last
    byte of the 64-bit PCI hole, ``pc_pci_hole64_start() + pci_hole64_size - 1``."""
    return pc_pci_hole64_start(above_4g_mem_start, above_4g_mem_size) + pci_hole64_size - 1


def pc_memory_layout(ram_size: int, *, max_ram_below_4g: int = 0,
                     bios_size: int = DEFAULT_BIOS_SIZE, phys_bits: int = DEFAULT_PHYS_BITS,
                     amd: bool = True,
                     pci_hole64_size: int = Q35_PCI_HOST_HOLE64_SIZE_DEFAULT,
                     mmio: tuple[tuple[str, int, int], ...] = DEFAULT_MMIO) -> PcMemoryLayout:
    """The q35 memory map for ``ram_size`` bytes, as QEMU 9.1-10.1 builds it:

    1. ``pc_q35_init`` (hw/i386/pc_q35.c): ``lowmem`` = 0x80000000 if ``ram_size`` >=
       0xb0000000 else 0xb0000000, lowered to ``max_ram_below_4g`` (0 = 4 GiB, the
       machine property ``max-ram-below-4g``); RAM >= lowmem splits into
       ``below_4g_mem_size`` = lowmem and ``above_4g_mem_size`` = the rest, else all of
       it is below 4 GiB.
    2. ``pc_memory_init`` (hw/i386/pc.c): on an AMD CPU (machine types >= 7.1,
       ``enforce_amd_1tb_hole``), when ``pc_max_used_gpa`` reaches ``AMD_HT_START``,
       ram-above-4g starts at ``AMD_ABOVE_1TB_START`` (1 TiB); with ``phys_bits`` >= 40
       the HT range is an e820 "reserved" entry whether or not RAM moved.  Then a
       ``pc_max_used_gpa`` beyond ``(1 << phys_bits) - 1`` is fatal: error_report
       "Address space limit 0x%PRIx64 < 0x%PRIx64 phys-bits too low (%u)" and exit(1)
       (:class:`QemuExit`).  e820 RAM entries for ram-below-4g and ram-above-4g.
    3. ``kvm_arch_init`` (target/i386/kvm/kvm.c): the 16 KiB identity-map/TSS entry at
       0xfeffc000, "reserved".
    4. The firmware's MMCONFIG window is "reserved" in the map the guest sees (OVMF
       adds it; log 01 shows it).

    SEV-SNP guests are AMD guests, so ``amd`` defaults to True.  ``ram_size`` must be
    a positive multiple of 2 MiB (the model's unit; QEMU allows any page multiple).
    Raises ValueError for a bad size, :class:`QemuExit` for too few ``phys_bits``.
    """
    if ram_size <= 0 or ram_size % (2 << 20):
        raise ValueError(f"ram_size {ram_size:#x} must be a positive multiple of 2 MiB")
    lowmem = Q35_LOWMEM_LARGE if ram_size >= Q35_LOWMEM_SMALL else Q35_LOWMEM_SMALL
    max_below = max_ram_below_4g or (1 << 32)
    lowmem = min(lowmem, max_below)
    if ram_size >= lowmem:
        below, above = lowmem, ram_size - lowmem
    else:
        below, above = ram_size, 0
    above_start = 1 << 32
    e820: list[E820Range] = []
    if amd:
        if pc_max_used_gpa(above_start, above, pci_hole64_size) >= AMD_HT_START:
            above_start = AMD_ABOVE_1TB_START
        if phys_bits >= 40:
            e820.append(E820Range(AMD_HT_START, AMD_HT_SIZE, E820_TYPE_RESERVED))
    maxusedaddr = pc_max_used_gpa(above_start, above, pci_hole64_size)
    maxphysaddr = (1 << phys_bits) - 1
    if maxphysaddr < maxusedaddr:
        raise QemuExit(1, f"Address space limit 0x{maxphysaddr:x} < 0x{maxusedaddr:x} "
                          f"phys-bits too low ({phys_bits})")
    e820.append(E820Range(0, below, E820_TYPE_RAM))
    if above:
        e820.append(E820Range(above_start, above, E820_TYPE_RAM))
    e820.append(E820Range(KVM_IDENTITY_BASE, KVM_IDENTITY_SIZE, E820_TYPE_RESERVED))
    for name, addr, size in mmio:
        if name == "pcie-mmcfg-mmio":
            e820.append(E820Range(addr, size, E820_TYPE_RESERVED))
    return PcMemoryLayout(ram_size, below, above, above_start, bios_size, mmio,
                          tuple(sorted(e820)))


@dataclass
class RunResult:
    """How a run ended: ``result`` (see module docstring), ``run_state`` (QEMU RunState
    name), ``reason_set``/``reason_code`` and ``description`` for a guest termination
    (for an internal error, ``description`` says which vCPU's KVM_RUN or exit handler
    failed and with what),
    ``ghcb_msr`` (``system_event.data[0]``), ``errors`` (QEMU's error_report lines),
    ``exits`` (KVM_RUN returns seen), ``livelock`` (the
    :class:`snpsim.trace.progress.Livelock` that stopped the VM, or None)."""

    result: str
    run_state: str
    reason_set: int | None = None
    reason_code: int | None = None
    description: str = ""
    ghcb_msr: int | None = None
    errors: list[str] = field(default_factory=list)
    exits: int = 0
    livelock: Livelock | None = None


def _internal_error_detail(cpu: CPUState, ret: int) -> str:
    """Model-only: one line saying why ``kvm_cpu_exec`` ended vCPU ``cpu`` with ``ret``
    < 0 -- KVM_RUN's own error, or the exit (and for a hypercall its number) whose
    handler returned ``ret`` -- and what QEMU then does (``cpu_dump_state``, then
    ``vm_stop(RUN_STATE_INTERNAL_ERROR)``, accel/kvm/kvm-all.c ``kvm_cpu_exec``).  QEMU
    itself prints only the register dump for a handler's error; the line names the exit
    so a summary is not a bare "internal-error"."""
    run = cpu.kvm_run
    after = "QEMU dumped its registers and stopped the VM (RUN_STATE_INTERNAL_ERROR)"
    last = cpu.last_run_ret
    if last < 0 and not (last == -errno.EFAULT and run.exit_reason == KVM_EXIT_MEMORY_FAULT):
        return f"vCPU {cpu.cpu_index}: KVM_RUN returned {last}; {after}"
    try:
        what = KvmExitReason(run.exit_reason).name
    except ValueError:
        what = f"exit reason {run.exit_reason}"
    if run.exit_reason == KVM_EXIT_HYPERCALL:
        what += f" (nr {run.hypercall.nr}, args {[hex(a) for a in run.hypercall.args[:3]]})"
    return f"vCPU {cpu.cpu_index}: QEMU's handler of {what} returned {ret}; {after}"


#: Kinds of :class:`RegionSpec`.
REGION_KINDS = ("ram", "rom", "mmio")


@dataclass(frozen=True)
class RegionSpec:
    """One extra guest-physical region of a :class:`Machine`, as a board would add it
    with ``memory_region_init_ram*`` / ``_rom`` / ``_io`` + ``memory_region_add_subregion``:

    ``name`` (the MemoryRegion and, for RAM/ROM, its RAMBlock's idstr), ``gpa`` and
    ``size`` (bytes, 4 KiB aligned, size > 0), ``kind``: ``"ram"`` (its own RAMBlock and
    memslot), ``"rom"`` (RAM marked read-only: a KVM_MEM_READONLY slot where KVM allows
    one, see :meth:`Machine._add_region`), ``"mmio"`` (no memslot: accesses exit to the
    VMM).  ``guest_memfd``: the RAMBlock gets a guest_memfd (``RAM_GUEST_MEMFD``; only
    in an SNP VM); False gives RAM that can only ever be shared -- converting it to
    private fails in ``kvm_convert_memory``.  ``alias_of``: instead of a new RAMBlock,
    map bytes ``[offset, offset + size)`` of an existing one (its idstr, e.g.
    ``"pc.ram"``), as "ram-below-4g"/"ram-above-4g" do: several memslots over one
    RAMBlock and its guest_memfd.  ``guest_memfd`` is then the block's.
    ``block_size``: bytes of the new RAMBlock when larger than the window this region
    maps at ``gpa`` (0: ``size``), so that later ``alias_of`` regions can map the rest."""

    name: str
    gpa: int
    size: int
    kind: str = "ram"
    guest_memfd: bool = True
    alias_of: str | None = None
    offset: int = 0
    block_size: int = 0

    def check(self) -> None:
        """Raise ValueError for a kind not in ("ram", "rom", "mmio"), a size of 0, or a GPA
        or size not 4 KiB aligned (QEMU's page granularity for KVM slots)."""
        if self.kind not in REGION_KINDS:
            raise ValueError(f"region {self.name}: kind {self.kind!r} not one of {REGION_KINDS}")
        if self.size <= 0 or self.size % 4096 or self.gpa % 4096 or self.gpa < 0:
            raise ValueError(f"region {self.name}: GPA {self.gpa:#x} and size {self.size:#x} "
                             "must be 4 KiB aligned, size > 0")
        if self.alias_of is not None and (self.offset < 0 or self.offset % 4096):
            raise ValueError(f"region {self.name}: alias offset {self.offset:#x} not 4 KiB aligned")
        if self.block_size and (self.block_size < self.size or self.block_size % 4096):
            raise ValueError(f"region {self.name}: block_size {self.block_size:#x} must be "
                             "4 KiB aligned and at least size")


def regions_e820(regions: Sequence[RegionSpec]) -> tuple[E820Range, ...]:
    """Model choice: the e820 entries of extra regions as the firmware would report
    them -- "ram" regions as E820_TYPE_RAM, "rom" as E820_TYPE_RESERVED, "mmio" not
    listed (QEMU's ``e820_add_entry`` is called by the board for its own RAM only; a
    board that adds RAM adds its entry the same way).  Sorted by address; merge with
    ``PcMemoryLayout.e820`` for the guest's map."""
    out = []
    for r in regions:
        if r.kind == "ram":
            out.append(E820Range(r.gpa, r.size, E820_TYPE_RAM))
        elif r.kind == "rom":
            out.append(E820Range(r.gpa, r.size, E820_TYPE_RESERVED))
    return tuple(sorted(out))


class Machine:
    """One SNP VM as QEMU builds it on the q35 machine.

    ``kvm``: the host's KVM syscall surface (:class:`snpsim.kvm.kvm_main.Kvm`);
    ``ram_size`` bytes of RAM laid out by :func:`pc_memory_layout` (or ``layout``, one
    such layout computed by the caller): one "pc.ram" RAMBlock with one guest_memfd of
    ``ram_size`` bytes, mapped by two alias regions, each its own memslot --
    "ram-below-4g" (GPA 0, guest_memfd offset 0) and "ram-above-4g" (GPA
    ``above_4g_mem_start``, guest_memfd offset ``below_4g_mem_size``) -- as QEMU's
    ``pc_memory_init`` aliases ``machine->ram`` and KVM's listener gives each flat
    range a slot at its offset in the block's guest_memfd; "pc.bios" ending at 4 GiB,
    its own RAMBlock and (SNP) guest_memfd (``x86_bios_rom_init``, QEMU 9.1+); ``mmio``
    regions (name, GPA, size) without memslots.  ``vcpus``; ``profile`` QEMU knobs;
    ``ghcb_version`` for KVM_SEV_INIT2 (0 = default 2; must be 0 for SEV); ``policy``
    the guest policy (default per VM type); ``vm_type`` KVM_X86_SNP_VM (default),
    KVM_X86_SEV_VM or KVM_X86_SEV_ES_VM.  Raises :class:`QemuExit` if QEMU would exit
    during set-up (e.g. phys-bits too low for the layout).
    """

    def __init__(self, kvm: Kvm, ram_size: int, vcpus: int = 1, *,
                 mmio: tuple[tuple[str, int, int], ...] | None = None,
                 layout: PcMemoryLayout | None = None,
                 profile: QemuProfile | str = DEFAULT_QEMU_PROFILE, ghcb_version: int = 0,
                 policy: int | None = None, vm_type: int = KVM_X86_SNP_VM,
                 extra_regions: Sequence[RegionSpec] = ()) -> None:
        prof = QEMU_PROFILES[profile] if isinstance(profile, str) else profile
        if layout is None:
            layout = pc_memory_layout(ram_size, mmio=DEFAULT_MMIO if mmio is None else mmio)
        if layout.ram_size != ram_size:
            raise ValueError(f"layout is for {layout.ram_size:#x} bytes, not {ram_size:#x}")
        self.layout = layout
        self.kvm = kvm
        self.s = KVMState(kvm, profile=prof)
        self.vm_type = vm_type
        if policy is None:
            policy = _DEFAULT_POLICY.get(vm_type, 0)
        self.policy = policy
        self.on_exit: list[Callable[[CPUState, KvmRun], None]] = []
        #: MMIO devices by region name: ``fn(offset, data, length, is_write) -> bytes |
        #: None`` (``offset`` from the region's start); see :meth:`mmio_handler`.
        self.mmio_devices: dict[str, Callable[[int, bytes, int, bool], bytes | None]] = {}
        self.launch_queue: list[SnpLaunchUpdateData] = []
        self.launched = False
        self.all_halted = False
        self.digest = b""
        self.ram_blocks: dict[str, RAMBlock] = {}
        self.extra_regions = tuple(extra_regions)
        for spec in self.extra_regions:
            spec.check()
        self.torn_down = False
        #: Model-only: ``(syscall, fd, result)`` of each teardown syscall (result None:
        #: it never returned).
        self.teardown_log: list[tuple[str, int, int | None]] = []
        s = self.s
        s.fd = kvm.open("/dev/kvm")
        s.vmfd = kvm.ioctl(s.fd, KVM_CREATE_VM, vm_type)
        if s.vmfd < 0:
            raise QemuExit(1, f"KVM_CREATE_VM failed: {s.vmfd}")
        sev_kvm_init(s, ghcb_version)
        for name, addr, size in layout.mmio:
            s.regions.append(MemoryRegion(name, addr, size, "mmio"))
        ram = self._ram_block("pc.ram", layout.ram_size)
        self._add_ram("ram-below-4g", 0, layout.below_4g_mem_size, ram, 0)
        if layout.above_4g_mem_size:
            self._add_ram("ram-above-4g", layout.above_4g_mem_start, layout.above_4g_mem_size,
                          ram, layout.below_4g_mem_size)
        if layout.bios_size:
            bios = self._ram_block("pc.bios", layout.bios_size)
            self._add_ram("pc.bios", layout.bios_base, layout.bios_size, bios, 0)
        for spec in self.extra_regions:
            self._add_region(spec)
        self.cpus: list[CPUState] = []
        for i in range(vcpus):
            cpu = kvm_create_vcpu(s, i)
            if isinstance(cpu, int):
                raise QemuExit(1, f"kvm_init_vcpu: KVM_CREATE_VCPU failed: {cpu}")
            self.cpus.append(cpu)

    # -- memory ---------------------------------------------------------------------------
    @traced("vmm")
    def _ram_block(self, name: str, size: int, guest_memfd: bool = True) -> RAMBlock:
        """``ram_block_add``: anonymous shared backing (HVA) of ``size`` bytes and, for an
        SNP VM, a guest_memfd of the same size (``memory_region_init_ram_guest_memfd``).
        An SEV / SEV-ES VM gets no guest_memfd (QEMU requires one only for SNP): its
        memory is encrypted by the guest's C-bit alone.  ``guest_memfd`` False: no
        guest_memfd even in an SNP VM (a block allocated without RAM_GUEST_MEMFD)."""
        s, kvm = self.s, self.kvm
        hva = kvm.mmap(size)
        if hva < 0:
            raise QemuExit(1, "cannot allocate RAM")
        if self.vm_type != KVM_X86_SNP_VM or not guest_memfd:
            rb = RAMBlock(name, hva, size, kvm)
            self.ram_blocks[name] = rb
            return rb
        gmem = kvm.ioctl(s.vmfd, KVM_CREATE_GUEST_MEMFD, KvmCreateGuestMemfd(size, 0))
        if gmem < 0:
            s.error_report(f"{name}: error creating guest_memfd: {gmem}")
            raise QemuExit(1, "KVM_CREATE_GUEST_MEMFD failed")
        rb = RAMBlock(name, hva, size, kvm, guest_memfd=gmem)
        self.ram_blocks[name] = rb
        return rb

    @traced("vmm")
    def _add_region(self, spec: RegionSpec) -> None:
        """Add one extra region (``memory_region_add_subregion`` of a RAM, ROM or I/O
        region, then the KVM memory listener's ``kvm_set_phys_mem``):

        * "mmio": a MemoryRegion, no slot;
        * "ram"/"rom": a new RAMBlock (with a guest_memfd when ``spec.guest_memfd`` and
          the VM is SNP) or, with ``alias_of``, a window into an existing one; then a
          memslot.  A ROM asks for KVM_MEM_READONLY only when the VM allows read-only
          memory: QEMU's ``kvm_mem_flags`` adds the flag only if
          ``kvm_readonly_mem_allowed`` (KVM_CHECK_EXTENSION(KVM_CAP_READONLY_MEM) on the
          VM, which an SEV-ES/SNP VM answers 0), so in an SNP VM a ROM becomes a
          writable slot.

        Model choice: regions are not flattened (QEMU lets a later subregion cover an
        earlier one by priority); every RAM/ROM region goes to KVM as its own slot, and a
        slot overlapping an existing one is refused by KVM with -EEXIST, on which QEMU's
        ``kvm_set_phys_mem`` reports "error registering slot" and aborts
        (:class:`QemuExit`).  An unknown ``alias_of`` or a window past its block ->
        ValueError (QEMU asserts)."""
        s = self.s
        if spec.kind == "mmio":
            s.regions.append(MemoryRegion(spec.name, spec.gpa, spec.size, "mmio"))
            return
        if spec.alias_of is not None:
            rb = self.ram_blocks.get(spec.alias_of)
            if rb is None or spec.offset + spec.size > rb.max_length:
                raise ValueError(f"region {spec.name}: no RAMBlock {spec.alias_of!r} with "
                                 f"{spec.offset + spec.size:#x} bytes")
            offset = spec.offset
        else:
            rb = self._ram_block(spec.name, spec.block_size or spec.size, spec.guest_memfd)
            offset = 0
        kind = spec.kind
        if kind == "rom" and s.kvm.ioctl(s.vmfd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0:
            kind = "ram"  # kvm_readonly_mem_allowed is false: the slot is writable
        mr = MemoryRegion(spec.name, spec.gpa, spec.size, kind, rb, offset)
        s.regions.append(mr)
        kvm_set_phys_mem(s, mr)

    def preassign(self, gpa: int, owner: str, asid: int = 0, rmp_gpa: int = 0) -> int:
        """Model-only host set-up: the page that will back GPA ``gpa`` (when its
        region's guest_memfd allocates it) starts out owned by ``owner`` in the RMP --
        ``"firmware"``, ``"guest"`` (ASID ``asid``, at ``rmp_gpa``) or ``"hv-fixed"``
        (:meth:`snpsim.kvm.kvm_main.Kvm.preassign` on the region's guest_memfd at the
        GPA's offset in its RAMBlock).  Returns 0, -EINVAL (no guest_memfd region holds
        ``gpa``, or the owner is refused), or the answer of ``Kvm.preassign``."""
        for mr in self.s.regions:
            if mr.has_guest_memfd() and mr.addr <= gpa < mr.addr + mr.size:
                assert mr.ram_block is not None
                return self.kvm.preassign(mr.ram_block.guest_memfd,
                                          mr.offset + ((gpa - mr.addr) & ~0xFFF),
                                          owner, asid, rmp_gpa)
        return -errno.EINVAL

    def e820(self) -> tuple[E820Range, ...]:
        """The e820 table QEMU gives the firmware: the q35 layout's entries plus those of
        the extra regions (:func:`regions_e820`), sorted."""
        return tuple(sorted((*self.layout.e820, *regions_e820(self.extra_regions))))

    @traced("vmm")
    def _add_ram(self, name: str, addr: int, size: int, rb: RAMBlock, offset: int) -> None:
        """``memory_region_init_alias`` + ``memory_region_add_subregion`` +
        ``kvm_set_phys_mem``: region ``name`` maps ``rb`` bytes ``[offset, offset +
        size)`` at GPA ``addr``; its memslot has that HVA and guest_memfd offset, and is
        set private at once (SNP)."""
        mr = MemoryRegion(name, addr, size, "ram", rb, offset)
        self.s.regions.append(mr)
        kvm_set_phys_mem(self.s, mr)

    def _hva(self, gpa: int) -> tuple[MemoryRegion, int]:
        for mr in self.s.regions:
            if mr.ram_block is not None and mr.addr <= gpa < mr.addr + mr.size:
                return mr, mr.ram_block.host + mr.offset + (gpa - mr.addr)
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

    def mmio_handler(self, gpa: int, data: bytes, length: int, is_write: bool) -> bytes | None:
        """The memory address space for a KVM_EXIT_MMIO (QEMU's ``address_space_rw``
        dispatch): the "mmio" region holding ``gpa`` calls its device from
        ``mmio_devices`` with the offset into the region; a region without a device,
        or an address no region claims, is unassigned (None: writes are dropped, reads
        give zeros, :func:`snpsim.vmm.kvm_all.unassigned_mem_read`)."""
        for mr in self.s.regions:
            if mr.kind == "mmio" and mr.addr <= gpa < mr.addr + mr.size:
                dev = self.mmio_devices.get(mr.name)
                return dev(gpa - mr.addr, data, length, is_write) if dev else None
        return None

    # -- run -----------------------------------------------------------------------------------------
    #: Model-only: the livelock that stopped the VM (set by ``_cpu_thread``).
    livelock: Livelock | None = None

    def _cpu_thread(self, cpu: CPUState) -> int:
        """``kvm_vcpu_thread_fn``: ``kvm_cpu_exec`` until it returns, then stop the VM.

        In QEMU a vCPU thread leaves its loop only when the VM stops (``vm_stop`` ->
        ``pause_all_vcpus`` kicks every vCPU), so whatever ended this vCPU's
        ``kvm_cpu_exec`` (power-off, error, guest termination, all vCPUs halted, the model
        watchdog) stops the others too: a vCPU blocked in KVM (HLT) returns -EINTR.
        A :class:`Livelock` raised anywhere below (guest, KVM, this loop) is kept in
        ``self.livelock`` and stops the VM the same way (model-only: QEMU would spin).
        Returns the ``kvm_cpu_exec`` result (EXCP_INTERRUPT after a livelock)."""
        s = self.s
        handler = s.profile.call("kvm_arch_handle_exit", kvm_arch_handle_exit)
        try:
            ret = kvm_cpu_exec(cpu, handler, self.io_handler, self.on_exit, self.mmio_handler)
        except Livelock as e:
            if self.livelock is None:
                self.livelock = e
            emit_instant("vmm", "livelock", loop=e.loop, vcpu=-1 if e.vcpu is None else e.vcpu)
            ret = EXCP_INTERRUPT
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

    #: Named teardown orders (model-only names; :meth:`teardown`): each a sequence of
    #: steps.  Every one is an order the kernel allows a VMM process to produce.
    TEARDOWN_ORDERS: dict[str, tuple[str, ...]] = {
        "exit": ("exit",),
        "vm-first": ("vm", "vcpus", "gmem", "exit"),
        "gmem-first": ("gmem", "vcpus", "vm", "exit"),
        "punch-first": ("punch", "exit"),
    }
    #: The steps a teardown order is made of (see :meth:`teardown`).
    TEARDOWN_STEPS = ("exit", "kvm", "vm", "vcpus", "gmem", "punch")

    def _teardown_fds(self, step: str, only_open: bool = True) -> list[int]:
        """The fds a teardown step closes (or punches, for "punch"), in order; with
        ``only_open``, only those still open."""
        s = self.s
        gmem = sorted({rb.guest_memfd for rb in self.ram_blocks.values() if rb.guest_memfd >= 0})
        by_step = {"kvm": [s.fd], "vm": [s.vmfd], "vcpus": [c.kvm_fd for c in self.cpus],
                   "gmem": gmem, "punch": gmem}
        if step == "exit":
            fds = sorted({s.fd, s.vmfd, *gmem, *(c.kvm_fd for c in self.cpus)})
        else:
            fds = by_step[step]
        return [fd for fd in fds if fd in self.kvm.files or not only_open]

    def _gmem_size(self, fd: int) -> int:
        """The size QEMU gave the guest_memfd ``fd`` (its RAMBlock's length)."""
        return max(rb.max_length for rb in self.ram_blocks.values() if rb.guest_memfd == fd)

    def _teardown_punch_range(self, step: tuple[Any, ...]) -> tuple[int, int, int]:
        """``("punch", gpa, size)`` -> (guest_memfd fd, offset, length) of the region
        holding ``[gpa, gpa + size)``, as QEMU's ``ram_block_discard_guest_memfd_range``
        computes it.  ValueError when the step is malformed or the range is not inside
        one guest_memfd-backed region."""
        if len(step) != 3 or step[0] != "punch" or not all(isinstance(x, int) for x in step[1:]):
            raise ValueError(f"a teardown range step is ('punch', gpa, size), not {step!r}")
        _, gpa, size = step
        for mr in self.s.regions:
            rb = mr.ram_block
            if rb is not None and mr.has_guest_memfd() and mr.addr <= gpa and gpa + size <= mr.addr + mr.size:
                return rb.guest_memfd, mr.offset + gpa - mr.addr, size
        raise ValueError(f"[{gpa:#x}, {gpa + size:#x}) is not in one guest_memfd-backed region")

    @traced("vmm")
    def teardown(self, order: Sequence[Any] | str | None = None) -> list[tuple[int, int]]:
        """QEMU's exit path as KVM sees it: the VM is stopped (``pause_all_vcpus``: no
        vCPU re-enters KVM_RUN, so this may run between two KVM_RUNs, e.g. from an
        ``on_exit`` hook, with the guest paused mid-run), then the process's KVM file
        descriptors are closed.  QEMU does not close them itself on ``exit()``; the
        kernel's ``exit_files`` -> ``close_files`` releases them in ascending fd order
        (/dev/kvm, the VM fd, each RAMBlock's guest_memfd, the vCPU fds, as opened).
        KVM's release paths run from these closes (:meth:`snpsim.kvm.kvm_main.Kvm.close`):
        guest_memfd pages reclaimed by ``sev_gmem_invalidate``, and with the last
        reference ``kvm_destroy_vm`` (VMSAs, SNP_DECOMMISSION, the context page, ASID).

        ``order`` (model-only) chooses another order the kernel allows:

        * None or ``"exit"``: process exit, as above;
        * a name from :data:`TEARDOWN_ORDERS`: ``"vm-first"`` (the VM fd closed while the
          guest_memfds still hold the VM: ``kvm_destroy_vm`` runs at the last guest_memfd's
          release, before that file's folios are freed), ``"gmem-first"`` (every
          guest_memfd closed, so every private page reclaimed, while the VM lives),
          ``"punch-first"`` (``fallocate(PUNCH_HOLE|KEEP_SIZE)`` over each whole
          guest_memfd, as a discard does, then process exit);
        * a sequence of step names from :data:`TEARDOWN_STEPS` (``"kvm"``, ``"vm"``,
          ``"vcpus"``, ``"gmem"``, ``"punch"``, ``"exit"`` = every fd still open); a
          sequence without ``"exit"`` may leave fds open (e.g. ``("vm", "vcpus")``: the
          guest_memfds keep the VM alive), and a later call goes on from there;
        * a sequence of ints: those fds closed in that order;
        * steps and fds mixed, and ``("punch", gpa, size)``: ``fallocate(PUNCH_HOLE|
          KEEP_SIZE)`` of that guest range on the guest_memfd backing it, as a discard
          of part of RAM before the closes.

        A step whose close spins in the kernel (a :class:`snpsim.trace.progress.Livelock`,
        e.g. an RMPUPDATE that keeps failing with FAIL_OVERLAP) ends the teardown there:
        the task never returns from that ``close()``, so nothing after it runs; the
        livelock is kept in :attr:`teardown_livelock` and the VMM is torn down for good.
        Every syscall made is logged in :attr:`teardown_log` as ``(syscall, fd,
        result)``.  A named step other than ``"exit"`` acts on its fds even when they
        are closed already, so ``("vm", "vm")`` gives -EBADF for the second close, as
        close(2) does.  Idempotent once every fd is closed.  Returns ``[(fd, result),
        ...]``, one pair per syscall of this call in the order made: a close's result,
        or a punch's fallocate result (0 or -errno; :attr:`teardown_log` names the
        syscall).  ValueError for an unknown order or step, or one of the wrong type."""
        if self.torn_down:
            return []
        if isinstance(order, str):
            if order not in self.TEARDOWN_ORDERS:
                raise ValueError(f"unknown teardown order {order!r} (one of "
                                 f"{', '.join(self.TEARDOWN_ORDERS)})")
            order = self.TEARDOWN_ORDERS[order]
        if order is None:
            order = ("exit",)
        if isinstance(order, (bytes, bytearray)) or not isinstance(order, Sequence):
            raise ValueError(f"a teardown order is a name or a sequence of steps, not {order!r}")
        steps = list(order)
        punches: dict[tuple[Any, ...], tuple[int, int, int]] = {}
        for st in steps:
            if isinstance(st, tuple):
                punches[st] = self._teardown_punch_range(st)
            elif isinstance(st, str):
                if st not in self.TEARDOWN_STEPS:
                    raise ValueError(f"unknown teardown step {st!r} (one of {', '.join(self.TEARDOWN_STEPS)})")
            elif isinstance(st, bool) or not isinstance(st, int):
                raise ValueError(f"a teardown step is a step name, an fd or ('punch', gpa, size), not {st!r}")
        self.pause_all_vcpus()
        out: list[tuple[int, int]] = []
        for st in steps:
            plan: list[tuple[str, int, int, int]]
            if isinstance(st, tuple):
                plan = [("fallocate", *punches[st])]
            elif isinstance(st, str):
                # A named step other than "exit" acts on its fds whether or not they are
                # still open: a second "vm" closes a closed fd, and close(2) says -EBADF.
                plan = [("fallocate", fd, 0, self._gmem_size(fd)) if st == "punch" else ("close", fd, 0, 0)
                        for fd in self._teardown_fds(st, only_open=st == "exit")]
            else:
                plan = [("close", int(st), 0, 0)]
            for syscall, fd, offset, length in plan:
                try:
                    if syscall == "close":
                        ret = self.kvm.close(fd)
                    else:
                        ret = self.kvm.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)
                    out.append((fd, ret))
                except Livelock as e:
                    self.teardown_livelock = e
                    self.teardown_log.append((syscall, fd, None))
                    self.torn_down = True
                    emit_instant("vmm", "livelock", loop=e.loop, vcpu=-1)
                    return out
                self.teardown_log.append((syscall, fd, ret))
        if not any(fd in self.kvm.files for fd in self._teardown_fds("exit")):
            self.torn_down = True
        emit_instant("vmm", "teardown", fds=len(out))
        return out

    #: Model-only: the livelock that stopped a teardown (see :meth:`teardown`).
    teardown_livelock: Livelock | None = None

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
        if self.livelock is not None:
            return RunResult("livelock", "paused", errors=list(s.errors), exits=exits,
                             livelock=self.livelock)
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
                return RunResult("internal-error", "internal-error",
                                 description=_internal_error_detail(cpu, ret),
                                 errors=list(s.errors), exits=exits)
        if s.shutdown_requested == "guest-shutdown":
            return RunResult("completed", "shutdown", errors=list(s.errors), exits=exits)
        if s.shutdown_requested in ("guest-reset", "guest-panicked"):
            res = "reset" if s.shutdown_requested == "guest-reset" else "guest-panicked"
            return RunResult(res, s.shutdown_requested, errors=list(s.errors), exits=exits)
        if self.all_halted:
            return RunResult("halted", "running", errors=list(s.errors), exits=exits)
        return RunResult("stopped", "paused", errors=list(s.errors), exits=exits)
