# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Assembly: one SNP VM (platform + KVM + VMM + Linux guest), and the Python API's front door.

This is the only module that imports both the guest and the host side.  It wires them
together exactly as a real machine is wired: the guest's code is "loaded" into the
platform for the VM's ASID (the model's stand-in for the kernel image the VMSA's RIP
points into); the VMM builds the VM through KVM's ioctl surface, launches the guest's
pre-validated image with SNP_LAUNCH_UPDATE, and runs ``kvm_cpu_exec`` per vCPU.  After
that, guest and host meet only through the hardware.

Typical use::

    from snpsim.system import SnpSystem
    vm = SnpSystem(memory=64 << 20)
    res = vm.trace_conversion("set_memory_decrypted", pages=1)
    print(res.tree); print(res.state_text())

Observing a run (``docs/run.md``): :meth:`SnpSystem.run` takes a :class:`RunObserver`,
which counts what crosses the guest/host boundary -- userspace exits by reason, the
pages KVM asks the VMM to convert, the guest's VMGEXITs (GHCB and MSR protocol, PSC
requests and their entries) and PVALIDATE outcomes -- and can sample a picture of guest
physical memory (:class:`MemoryPicture`).  Its cost is a few dictionary updates per
VMGEXIT, PVALIDATE and userspace exit; tracing stays off.

Sizes are bytes; GPAs are guest physical addresses in bytes.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snpsim.costs import (
    CostTable,
    ModelClock,
    attach_kvm,
    attach_platform,
    attach_vcpu,
    current_costs,
)
from snpsim.guest.boot import build_launch_image, guest_entry, make_guest_kernel
from snpsim.guest.kernel import PROFILES as KERNEL_PROFILES
from snpsim.guest.kernel import GuestConfig, GuestKernel
from snpsim.guest.kernel import __va as _guest_va
from snpsim.guest.seed import SeedOutcome, seed_workload
from snpsim.hw.cpu import Platform
from snpsim.hw.npt import guest_walk
from snpsim.hw.ports import GuestPageFault, GuestPort
from snpsim.hw.rmp import RmpConfig
from snpsim.kvm.kvm_main import Kvm
from snpsim.kvm.profiles import DEFAULT_PROFILE as DEFAULT_KVM_PROFILE
from snpsim.kvm.profiles import KVM_PROFILES, KvmProfile
from snpsim.spec.checks import FIRED, reset_fired
from snpsim.spec.e820 import E820_TYPE_RAM, E820_TYPE_RESERVED
from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC, describe_exit_code
from snpsim.spec.ghcb import GHCB_FIELDS, GHCB_SHARED_BUF_OFFSET
from snpsim.spec.kvm_uapi import (
    KVM_EXIT_HYPERCALL,
    KVM_HC_MAP_GPA_RANGE,
    KVM_MAP_GPA_RANGE_ENCRYPTED,
    KVM_MAP_GPA_RANGE_PAGE_SZ_2M,
    KVM_MEMORY_ATTRIBUTE_PRIVATE,
    KVM_X86_SEV_ES_VM,
    KVM_X86_SEV_VM,
    KVM_X86_SNP_VM,
    KvmExitReason,
)
from snpsim.spec.msr_protocol import GHCB_MSR_INFO_MASK, GhcbMsrInfo
from snpsim.spec.psc import PSC_ENTRY_SIZE, PSC_HDR_SIZE, PscEntry, PscHdr
from snpsim.spec.rmp import PvalidateRet
from snpsim.spec.termination import describe_termination
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE, PMD_SIZE, PTRS_PER_PMD
from snpsim.trace.events import TraceEvent
from snpsim.trace.export_tree import format_tree
from snpsim.trace.progress import DEFAULT_LIVELOCK_REPEATS, Livelock
from snpsim.trace.record import Recorder, TraceFilter, tracing
from snpsim.vmm.kvm_all import QemuExit
from snpsim.vmm.machine import (
    Machine,
    PcMemoryLayout,
    RegionSpec,
    RunResult,
    pc_memory_layout,
    regions_e820,
)
from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE, QEMU_PROFILES, QemuProfile

__all__ = [
    "SnpSystem",
    "TeardownCheck",
    "host_e820",
    "DEFAULT_HOST_RAM",
    "HOST_SPA_SIZE",
    "MODES",
    "RunOutcome",
    "RunObserver",
    "RunStats",
    "MemoryPicture",
    "PAGE_STATES",
    "PageState",
    "TraceResult",
    "parse_size",
    "format_size",
]

#: ``SnpSystem(mode=...)`` -> the KVM VM type the VMM creates.
MODES: dict[str, int] = {"snp": KVM_X86_SNP_VM, "sev-es": KVM_X86_SEV_ES_VM,
                         "sev": KVM_X86_SEV_VM}

#: Largest guest the model builds: 1 TiB of RAM, 64 vCPUs (the CLI's ranges too).
MAX_MEMORY = 1 << 40
MAX_VCPUS = 64

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTkmgt]?)(iB|B)?\s*$", re.ASCII)


def parse_size(text: str) -> int:
    """Parse a size such as ``64M``, ``1.5G``, ``1T``, ``65536`` into bytes.  Every unit
    is binary (powers of 1024): ``1G``, ``1g``, ``1GB`` and ``1GiB`` all mean 2**30
    bytes, and a space before the unit is allowed; a lower-case ``b`` (bits, as in
    ``1Gb``) is refused.  Raises ValueError with a message naming the bad text, also for
    a fraction that is not a whole number of bytes.
    """
    from fractions import Fraction

    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"bad size {text!r}: use a number with an optional K, M, G or T suffix")
    n = Fraction(m.group(1)) * (1 << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2).upper()])
    if n.denominator != 1:
        raise ValueError(f"bad size {text!r}: not a whole number of bytes")
    return int(n)


def format_size(n: int) -> str:
    """Bytes as the largest exact binary unit: ``4G``, ``64M``, ``1536K``, ``4100``."""
    for shift, unit in ((40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if n and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


#: States of the memory picture, in code order (:class:`MemoryPicture`).
PAGE_STATES: tuple[str, ...] = (
    "not RAM",
    "MMIO",
    "unaccepted",
    "private, not validated",
    "private, validated",
    "shared",
    "firmware",
)
_NOT_RAM, _MMIO, _UNACCEPTED, _UNVALIDATED, _VALIDATED, _SHARED, _FIRMWARE = range(7)
#: Most cells of one picture row: the cell grows (by powers of two) until the row's
#: GPA span fits, so a 1 TiB guest relocated above the AMD HT hole (2 TiB of GPA) is
#: drawn with 32 MiB cells.
PICTURE_MAX_CELLS = 1 << 16
#: Most 4 KiB pages the zoom's per-page history samples (8 GiB of GPA); past that the
#: report has no zoom panel.
PICTURE_MAX_FINE_PAGES = 1 << 21
_SW_EXIT_CODE = GHCB_FIELDS["sw_exit_code"].offset
# RMP entry flag bits as hw/rmp.py stores them (RMP_DTYPE "flags").
_RMP_ASSIGNED, _RMP_PAGESIZE, _RMP_VALIDATED = 1 << 0, 1 << 1, 1 << 4


#: The legacy VGA / option-ROM / BIOS window the firmware keeps out of the RAM it
#: reports: e820 has no entry for [0xa0000, 0x100000) in log 01 (QEMU 10.0 + OVMF).
LEGACY_HOLE = (0xA0000, 0x100000)


def firmware_e820(layout: PcMemoryLayout) -> tuple[tuple[int, int, int], ...]:
    """Model-only: the e820 map the firmware hands the guest kernel, from QEMU's table
    (``layout.e820``): the same entries, with the legacy window [0xa0000, 0x100000)
    taken out of the RAM below 1 MiB, as OVMF reports it (log 01: "usable" 0-0x9ffff,
    then from 0x100000).  The firmware's own reserved/ACPI ranges inside RAM are not
    modelled here; a boot configured from a log takes them from the log
    (``snpsim.scenarios.dmesg.guest_e820_for_log`` over this map).  Entries are (GPA,
    bytes, E820_TYPE_*), sorted."""
    lo, hi = LEGACY_HOLE
    out: list[tuple[int, int, int]] = []
    for addr, size, typ in layout.e820:
        if typ == E820_TYPE_RAM and addr < hi and lo < addr + size:
            if addr < lo:
                out.append((addr, lo - addr, typ))
            if addr + size > hi:
                out.append((hi, addr + size - hi, typ))
        else:
            out.append((addr, size, typ))
    return tuple(sorted(out))


@dataclass
class MemoryPicture:
    """Model-only: guest physical memory over a run, one row per sample.

    ``cell`` bytes per cell (4 KiB up to 256 MiB of RAM, else 2 MiB, doubled until the
    row has at most :data:`PICTURE_MAX_CELLS` cells); ``ncells`` cells from GPA 0 to the
    end of the highest RAM region, holes and MMIO between RAM regions included;
    ``rows`` of cell states (indices into :data:`PAGE_STATES`) and
    ``labels`` (what the sample followed: "start", a userspace exit, "end"); ``masks``,
    beside each row, which states occur in each cell at all (bit ``i`` set: some page of
    the cell is in ``PAGE_STATES[i]``; the report draws from these); ``regions``: the
    VMM's memory map as (name, "RAM" | "MMIO" | "firmware", GPA, bytes).

    A cell's state is that of most of its pages, except that a cell with any shared page
    is shown shared (so one converted 4 KiB page stays visible in a 2 MiB cell), and a
    cell wholly MMIO is MMIO.  The sources: the VMM's RAM regions (firmware regions such
    as "pc.bios", outside the guest's e820 RAM, are "firmware") and MMIO regions; the
    guest's unaccepted-memory bitmap
    (2 MiB units); KVM's memory attributes (shared where not private); the RMP (pages
    assigned to the guest's ASID and validated, at the GPA their entry holds).  At most
    ``max_rows`` rows are kept: past that, every other row is dropped and only every
    second later sample is kept (deterministic).
    """

    cell: int
    ncells: int
    rows: list[np.ndarray] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    max_rows: int = 400
    #: (GPA, pages) of each conversion KVM asked the VMM for, in order (the zoom's target).
    converted: list[tuple[int, int]] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    regions: tuple[tuple[str, str, int, int], ...] = ()
    _stride: int = 1
    _seen: int = 0
    _kept: list[int] = field(default_factory=list)
    # 4 KiB-cell history when ``cell`` is larger: per sample, (page indices, new states)
    # changed since the previous sample (the first one is the whole row).
    _fine: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    _fine_last: np.ndarray | None = None

    def add(self, row: np.ndarray, label: str, *, force: bool = False,
            fine: np.ndarray | None = None, mask: np.ndarray | None = None) -> None:
        """Keep ``row`` (subject to the thinning rule, unless ``force``); ``fine``: the same
        sample in 4 KiB cells (for the zoom, when ``cell`` is larger); ``mask``: the
        states present per cell (default: just the row's state)."""
        self._seen += 1
        if fine is not None:
            if self._fine_last is None:
                idx = np.arange(fine.size)
            else:
                idx = np.flatnonzero(fine != self._fine_last)
            self._fine.append((idx, fine[idx].copy()))
            self._fine_last = fine
        if not force and (self._seen - 1) % self._stride:
            return
        self.rows.append(row)
        self.masks.append(np.left_shift(1, row).astype(np.uint8) if mask is None else mask)
        self.labels.append(label)
        self._kept.append(self._seen - 1)
        if len(self.rows) > self.max_rows:
            self.rows = self.rows[::2]
            self.masks = self.masks[::2]
            self.labels = self.labels[::2]
            self._kept = self._kept[::2]
            self._stride *= 2

    @property
    def zoom_is_fine(self) -> bool:
        """The zoom has 4 KiB resolution: the cells are 4 KiB, or a 4 KiB history was kept
        (at most :data:`PICTURE_MAX_FINE_PAGES` pages of GPA)."""
        return self.cell == PAGE_SIZE or bool(self._fine)

    def zoom_window(self, margin: int = 32, max_pages: int = 1024) -> tuple[int, int]:
        """GPAs ``[lo, hi)`` of the zoom: the last conversion's pages +- ``margin`` pages
        (at most ``max_pages`` pages of it); the start of RAM when nothing was converted."""
        total = self.cell * self.ncells
        if not self.converted:
            return 0, min(total, (2 * margin + 1) * PAGE_SIZE)
        gpa, pages = self.converted[-1]
        lo = max(0, gpa - margin * PAGE_SIZE)
        hi = min(total, gpa + (min(pages, max_pages) + margin) * PAGE_SIZE)
        return lo, hi

    def zoom_rows(self, lo: int, hi: int) -> np.ndarray:
        """(kept rows, pages) states of the 4 KiB pages in GPAs ``[lo, hi)`` at each kept
        sample."""
        p0, p1 = lo // PAGE_SIZE, -(-hi // PAGE_SIZE)
        if self.cell == PAGE_SIZE or not self._fine:
            ppc = self.cell // PAGE_SIZE
            pages = np.arange(p0, p1) // ppc
            return np.vstack([r[pages] for r in self.rows])
        cur = np.zeros(p1 - p0, dtype=np.uint8)
        want = set(self._kept)
        out = []
        for i, (idx, vals) in enumerate(self._fine):
            m = (idx >= p0) & (idx < p1)
            cur[idx[m] - p0] = vals[m]
            if i in want:
                out.append(cur.copy())
        return np.vstack(out)

    def state_of(self, gpa: int, row: int = -1) -> str:
        """The state name of the cell holding ``gpa`` in row ``row`` (default: last)."""
        return PAGE_STATES[int(self.rows[row][gpa // self.cell])]


@dataclass
class RunStats:
    """What a :class:`RunObserver` counted over one run.

    - ``userspace_exits``: KVM_RUN returns to the VMM by ``exit_reason`` name (hypercall
      exits with their number, e.g. ``KVM_EXIT_HYPERCALL (KVM_HC_MAP_GPA_RANGE)``);
    - ``converted``: pages KVM asked the VMM to convert (the KVM_HC_MAP_GPA_RANGE exits
      of PSC, MSR-protocol PSC and the guest's hypercall), keyed ``"shared 4K"``,
      ``"shared 2M"``, ``"private 4K"``, ``"private 2M"`` (2M counts 2 MiB pages);
    - ``ghcb_exits``: VMGEXITs through a GHCB, by ``sw_exit_code`` name; ``msr_exits``:
      VMGEXITs with a GHCB MSR-protocol request, by request name;
    - ``psc_requests``: GHCB PSC VMGEXITs; ``psc_entries``: their entries still to do
      (``end_entry - cur_entry + 1``), and ``psc_entry_kinds`` by op and size;
    - ``pvalidate``: PVALIDATE results by ``"validate 4K: ok"``-style keys (ok, CF=1
      unchanged, FAIL_SIZEMISMATCH, FAIL_INPUT);
    - ``probes``: False when the platform did not let the observer attach to the vCPUs
      (the guest-side counts are then absent).
    """

    userspace_exits: Counter[str] = field(default_factory=Counter)
    converted: Counter[str] = field(default_factory=Counter)
    ghcb_exits: Counter[str] = field(default_factory=Counter)
    msr_exits: Counter[str] = field(default_factory=Counter)
    psc_requests: int = 0
    psc_entries: int = 0
    psc_entry_kinds: Counter[str] = field(default_factory=Counter)
    pvalidate: Counter[str] = field(default_factory=Counter)
    probes: bool = True


class RunObserver:
    """Watches one :meth:`SnpSystem.run` from outside the guest and the host.

    ``picture``: also sample a :class:`MemoryPicture` (at the start, after every
    userspace exit, at the end); ``progress``: called with ``(stats, elapsed seconds)``
    at most every ``progress_interval`` seconds while the run goes on.

    It attaches to the run at two points the system controls: the VMM's ``on_exit`` list
    (host context, after each KVM_RUN return) and each vCPU's guest port, where
    ``vmgexit`` and ``pvalidate`` are wrapped to read what the guest hands over -- the
    GHCB MSR value, and for a GHCB exit the ``sw_exit_code`` and the PSC header and
    entries in the GHCB's shared buffer, read raw at the page's SPA (the GHCB is shared,
    so these are the bytes the host reads) -- and the instruction's result.
    """

    def __init__(self, *, picture: bool = False,
                 progress: Callable[[RunStats, float], None] | None = None,
                 progress_interval: float = 0.2) -> None:
        self.stats = RunStats()
        self.want_picture = picture
        self.picture: MemoryPicture | None = None
        self.progress = progress
        self.progress_interval = progress_interval
        self.system: SnpSystem | None = None
        self.t0 = time.perf_counter()
        self._next_tick = self.t0 + progress_interval
        self._calls = 0

    # -- progress ----------------------------------------------------------------------------
    def tick(self) -> None:
        """Report progress if the interval has passed (cheap when it has not)."""
        if self.progress is None:
            return
        self._calls += 1
        if self._calls & 63:
            return
        now = time.perf_counter()
        if now >= self._next_tick:
            self._next_tick = now + self.progress_interval
            self.progress(self.stats, now - self.t0)

    # -- host side ---------------------------------------------------------------------------
    def on_exit(self, cpu: Any, run: Any) -> None:
        """The VMM's ``on_exit`` hook: count the exit, the conversion it asks for, sample."""
        reason = run.exit_reason
        try:
            name = KvmExitReason(reason).name
        except ValueError:
            name = f"exit reason {reason}"
        if reason == KVM_EXIT_HYPERCALL:
            nr = run.hypercall.nr
            hc = "KVM_HC_MAP_GPA_RANGE" if nr == KVM_HC_MAP_GPA_RANGE else f"nr {nr}"
            name = f"{name} ({hc})"
            if nr == KVM_HC_MAP_GPA_RANGE:
                npages, attrs = run.hypercall.args[1], run.hypercall.args[2]
                op = "private" if attrs & KVM_MAP_GPA_RANGE_ENCRYPTED else "shared"
                if attrs & KVM_MAP_GPA_RANGE_PAGE_SZ_2M:
                    self.stats.converted[f"{op} 2M"] += npages // PTRS_PER_PMD
                else:
                    self.stats.converted[f"{op} 4K"] += npages
                if self.picture is not None:
                    self.picture.converted.append((int(run.hypercall.args[0]), int(npages)))
        self.stats.userspace_exits[name] += 1
        if self.picture is not None and self.system is not None:
            self.system.sample_picture(self.picture, name)
        self._calls = 63
        self.tick()

    # -- guest side (vCPU port wrappers) -----------------------------------------------------
    def attach_vcpu(self, cpu: Any) -> None:
        """Wrap ``cpu.vmgexit`` and ``cpu.pvalidate`` of one vCPU (at its first entry)."""
        system = self.system
        assert system is not None
        stats = self.stats
        vmgexit, pvalidate = cpu.vmgexit, cpu.pvalidate

        def observed_vmgexit() -> None:
            v = cpu.msr_ghcb
            if v & GHCB_MSR_INFO_MASK:
                info = v & GHCB_MSR_INFO_MASK
                try:
                    stats.msr_exits[GhcbMsrInfo(info).name] += 1
                except ValueError:
                    stats.msr_exits[f"GHCBInfo {info:#x}"] += 1
            else:
                system._observe_ghcb(v, stats)
            vmgexit()
            self.tick()

        def observed_pvalidate(vaddr: int, rmp_psize: int, validate: bool) -> tuple[int, int]:
            rax, cf = pvalidate(vaddr, rmp_psize, validate)
            op = "validate" if validate else "rescind"
            size = "2M" if rmp_psize else "4K"
            if rax == 0:
                outcome = "unchanged (CF=1)" if cf else "ok"
            else:
                try:
                    outcome = PvalidateRet(rax).name
                except ValueError:
                    outcome = f"rax {rax}"
            stats.pvalidate[f"{op} {size}: {outcome}"] += 1
            self.tick()
            return rax, cf

        try:
            cpu.vmgexit = observed_vmgexit
            cpu.pvalidate = observed_pvalidate
        except AttributeError:  # a port without instance attributes: no guest-side counts
            stats.probes = False


@dataclass
class PageState:
    """The state of one guest page, seen from every party at once (model-only view).

    ``gpa``: the page's GPA; ``pte_c_bit``: the C-bit of the guest's direct-map PTE (None
    if unmapped); ``rmp``: the governing RMP entry of the page backing it (None when the
    NPT does not map it), as a dict (assigned, asid, gpa, pagesize, validated);
    ``attribute_private``: KVM's memory attribute; ``host_read``: what the VMM reads
    through its shared RAM mapping (40 bytes); ``spa_read``: what any host code reads at
    the backing SPA the NPT maps (40 bytes: ciphertext for a private page).
    """

    gpa: int
    pte_c_bit: bool | None
    rmp: dict[str, Any] | None
    spa: int | None
    attribute_private: bool
    host_read: bytes
    spa_read: bytes | None = None


@dataclass
class RunOutcome:
    """How a run ended: ``result`` from the VMM (completed, guest-terminated, ...),
    ``termination`` (reason set, code, guest function) when the guest asked to terminate,
    ``panic``/``livelock`` messages, ``counters`` (platform statistics, and KVM's
    ``kvm.stat`` entries prefixed ``"kvm "``), ``stats`` and
    ``picture`` when a :class:`RunObserver` watched the run, ``wall_time`` (seconds, the
    whole :meth:`SnpSystem.run`), ``modelled_time`` (what the run would take on the
    machine, from the cost table: :meth:`snpsim.costs.ModelClock.report`), ``warnings`` (the guest's WARN/pr_err lines),
    ``host_oopses`` (host kernel oopses KVM hit, e.g. a host #PF with X86_PF_RMP).

    A run the livelock watcher stopped (``vmm.result == "livelock"``,
    :mod:`snpsim.trace.progress`) has ``livelock`` (one line: "<loop> on vCPU n: <state>
    -- N times the same state"), ``livelock_loop`` (the real function that spins, e.g.
    ``vmgexit_psc``, ``kvm_mmu_page_fault``, ``kvm_cpu_exec``, ``vcpu_block``,
    ``rmpupdate``), ``livelock_vcpu`` (None for host code with no vCPU) and
    ``livelock_state``; all None otherwise.  ``kexec``: "kexec" or "kdump" when the guest
    ran the kexec or crash path to its end (:mod:`snpsim.guest.kexec`), None otherwise."""

    vmm: RunResult
    termination: tuple[int, int, str] | None = None
    panic: str | None = None
    livelock: str | None = None
    counters: dict[str, int] = field(default_factory=dict)
    stats: RunStats | None = None
    picture: MemoryPicture | None = None
    wall_time: float = 0.0
    warnings: list[str] = field(default_factory=list)
    host_oopses: list[str] = field(default_factory=list)
    livelock_loop: str | None = None
    livelock_vcpu: int | None = None
    livelock_state: str | None = None
    kexec: str | None = None
    #: The modelled time of the run (:meth:`snpsim.costs.ModelClock.report`).
    modelled_time: dict[str, Any] | None = None
    #: The named checks (:data:`snpsim.spec.checks.CHECKS`) that fired during the run and
    #: were in force, with how often: the checks that stopped what the host or guest did.
    checks: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lock = getattr(self.vmm, "livelock", None)
        if lock is not None:
            self.livelock = self.livelock or lock.describe()
            self.livelock_loop = lock.loop
            self.livelock_vcpu = lock.vcpu
            self.livelock_state = lock.state

    @property
    def completed(self) -> bool:
        """True when the guest powered off normally."""
        return self.vmm.result == "completed"

    def describe(self) -> str:
        """One line: completed, or the termination reason and who asked for it."""
        if self.completed:
            return "completed (guest powered off)"
        if self.termination is not None:
            rs, rc, fn = self.termination
            what = (self.vmm.description if self.vmm.result == "guest-terminated"
                    and self.vmm.description else describe_termination(rs, rc))
            asked = f"reason set {rs} code {rc} ({what}) requested by {fn}"
            if self.vmm.result != "guest-terminated":  # the VMM ended otherwise, e.g. it crashed
                said = f": {'; '.join(self.vmm.errors)}" if self.vmm.errors else ""
                return f"{self.vmm.result}{said}, after the guest asked for termination: {asked}"
            return f"guest terminated: {asked}"
        if self.panic:
            return f"guest panic: {self.panic}"
        if self.livelock_loop is not None:
            where = (f"on vCPU {self.livelock_vcpu}" if self.livelock_vcpu is not None
                     else "on the host")
            return f"livelock in {self.livelock_loop} {where}: {self.livelock_state}"
        if self.livelock:
            return f"guest livelock: {self.livelock}"
        if self.host_oopses:
            return f"host kernel oops: {self.host_oopses[0]}; {self.vmm.result}"
        if self.kexec is not None:
            return (f"{self.kexec}: the guest handed over to the next kernel (not modelled); "
                    f"{self.vmm.result}")
        lines = [*self.vmm.errors, *([self.vmm.description] if self.vmm.description else [])]
        extra = f": {'; '.join(lines)}" if lines else ""
        return f"{self.vmm.result}{extra}"


@dataclass
class TraceResult:
    """A traced conversion: ``events`` (all recorded, filtered when a filter was given),
    ``tree`` (the subtree of the traced function; with a filter that drops the function's
    own frame, the tree of the kept events recorded while it ran), ``seed`` (what the
    guest did), ``state`` of the first page after the run, ``run`` outcome."""

    function: str
    events: list[TraceEvent]
    tree: str
    seed: SeedOutcome
    state: PageState | None
    run: RunOutcome

    @property
    def completed(self) -> bool:
        """True when the guest completed the call and powered off."""
        return self.run.completed and self.seed.ret == 0

    @property
    def outcome(self) -> str:
        """The run's one-line outcome, with the call's return value."""
        return f"{self.run.describe()}; {self.function} returned {self.seed.ret}"

    def state_text(self) -> str:
        """The page's state as readable lines."""
        st = self.state
        if st is None:
            return "page state: (no page was converted)"
        lines = [f"page GPA {st.gpa:#x} (GVA {self.seed.vaddr:#x}) after {self.function}:"]
        lines.append(f"  guest PTE C-bit      : {'set (private)' if st.pte_c_bit else 'clear (shared)'}")
        if st.rmp is None:
            lines.append("  RMP entry            : (no backing page mapped in the NPT)")
        else:
            r = st.rmp
            lines.append(
                f"  RMP entry (SPA {st.spa:#x}): assigned={int(r['assigned'])} asid={r['asid']} "
                f"gpa={r['gpa']:#x} pagesize={'2M' if r['pagesize'] else '4K'} validated={int(r['validated'])}"
            )
        lines.append(f"  KVM memory attribute : {'private' if st.attribute_private else 'shared'}")
        lines.append(f"  guest reads          : {self.seed.guest_read!r}")
        lines.append(f"  VMM reads (its HVA)  : {st.host_read!r}")
        if st.spa_read is not None:
            lines.append(f"  host reads the SPA   : {st.spa_read!r}")
        return "\n".join(lines)


@dataclass(frozen=True)
class TeardownCheck:
    """Where every page stands after a VM teardown (model-only view; built by
    :meth:`SnpSystem.check_teardown`).  PFNs are 4 KiB host frames, sorted.

    ``asid``: the VM's ASID; ``vm_destroyed``: ``kvm_destroy_vm`` ran;
    ``asid_freed``: ``sev_asid_free`` ran (SNP_DECOMMISSION succeeded);
    ``assigned``: PFNs whose RMP entry is still assigned to the ASID (a 2 MiB entry
    counts its 512 pages); ``firmware``: PFNs the host allocator handed out that are
    still Firmware or Reclaim in the RMP (Assigned with ASID 0: a firmware page never
    reclaimed); ``freed_assigned``: PFNs back in the host's free pool while their RMP
    entry is assigned to anyone (a page freed without being made shared: the next
    owner's access is an RMP fault); ``leaked``: PFNs the kernel took out of circulation
    (``snp_leak_pages``: "Leaking PFN range"); ``allocated``: PFNs still allocated that
    are not the VMM's own memory (its anonymous RAM mappings) and not leaked -- pages KVM
    took for the VM and never freed (guest_memfd folios of a file still open, a VMSA, a
    context page...); ``open_fds``: the VMM's KVM fds still open; ``livelock``: the loop
    a teardown close spun in ("<loop>: <state>"), or None; ``oopses``: host kernel
    oopses; ``syscalls``: ``(syscall, fd, result)`` of the teardown, result None for a
    call that never returned.
    """

    asid: int
    vm_destroyed: bool
    asid_freed: bool
    assigned: tuple[int, ...]
    firmware: tuple[int, ...]
    freed_assigned: tuple[int, ...]
    leaked: tuple[int, ...]
    allocated: tuple[int, ...]
    open_fds: tuple[int, ...]
    livelock: str | None
    oopses: tuple[str, ...]
    syscalls: tuple[tuple[str, int, int | None], ...]

    @property
    def clean(self) -> bool:
        """True when the teardown left nothing behind: the VM destroyed and its ASID
        freed, no page assigned to the ASID, no firmware page, freed-but-assigned,
        leaked or still-allocated page, no fd open, no livelock, no oops."""
        return not self.problems()

    def problems(self) -> list[str]:
        """One line per thing left behind (empty for a clean teardown)."""
        out = []
        if self.livelock:
            out.append(f"teardown spun: {self.livelock}")
        if not self.vm_destroyed:
            out.append("the VM was not destroyed (kvm_destroy_vm did not run)")
        elif not self.asid_freed:
            out.append(f"ASID {self.asid} was not freed")
        for what, pfns in (("page(s) still assigned to the ASID", self.assigned),
                           ("firmware page(s) not reclaimed", self.firmware),
                           ("page(s) freed while assigned in the RMP", self.freed_assigned),
                           ("page(s) leaked (snp_leak_pages)", self.leaked),
                           ("page(s) allocated and never freed", self.allocated)):
            if pfns:
                out.append(f"{len(pfns)} {what}: {_pfn_runs(pfns)}")
        if self.open_fds:
            out.append(f"fds still open: {', '.join(map(str, self.open_fds))}")
        out += [f"host oops: {o}" for o in self.oopses]
        return out


def _pfn_runs(pfns: tuple[int, ...], limit: int = 4) -> str:
    """``0x1000-0x11ff, 0x2345`` (at most ``limit`` runs, then ``...``)."""
    runs: list[list[int]] = []
    for p in pfns:
        if runs and runs[-1][1] == p - 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    text = [f"{a:#x}" if a == b else f"{a:#x}-{b:#x}" for a, b in runs[:limit]]
    return ", ".join(text) + (", ..." if len(runs) > limit else "")


#: Host RAM the model's host has by default when it boots through SNP initialisation.
DEFAULT_HOST_RAM = 64 << 30
#: Bytes of host physical address space (sparse: its size costs nothing).
HOST_SPA_SIZE = 1 << 44


def host_e820(ram: int, rmp: RmpConfig) -> tuple[tuple[int, int, int], ...]:
    """Model-only: the host firmware's e820 for ``ram`` bytes of RAM from 0 -- RAM below
    the legacy hole (0x9F000), the hole reserved up to 1 MiB, RAM above -- with the
    RMP's own memory (:meth:`RmpConfig.table_extents`) reserved, as the BIOS reports it
    (Linux refuses SNP when it is not: "Memory for the RMP table has not been reserved
    by BIOS")."""
    reserved = sorted((a << PAGE_SHIFT, b << PAGE_SHIFT) for a, b in rmp.table_extents())
    out: list[tuple[int, int, int]] = [(0, 0x9F000, E820_TYPE_RAM),
                                       (0x9F000, 0x61000, E820_TYPE_RESERVED)]
    pos = 0x100000
    for a, b in reserved:
        if a > pos and pos < ram:
            out.append((pos, min(a, ram) - pos, E820_TYPE_RAM))
        out.append((a, b - a, E820_TYPE_RESERVED))
        pos = max(pos, b)
    if pos < ram:
        out.append((pos, ram - pos, E820_TYPE_RAM))
    return tuple(out)


class SnpSystem:
    """One SNP VM, ready to run.

    ``memory``: guest RAM in bytes (multiple of 2 MiB); ``vcpus``; ``kernel``: guest
    kernel profile name (``6.17`` default, ``6.4``); ``kvm``: KVM profile, a name of
    :data:`snpsim.kvm.profiles.KVM_PROFILES` (``v7.0.12`` default) or a
    :class:`KvmProfile` (e.g. an adversary variant's); ``qemu``: VMM profile, a name of
    :data:`snpsim.vmm.profiles.QEMU_PROFILES` or a :class:`QemuProfile`; ``seed``:
    scheduler and key seed; ``guest_options``: extra :class:`GuestConfig` fields (e.g.
    ``variant``, ``eager_accept``, ``pool_pages``); ``mode``: ``"snp"`` (default),
    ``"sev-es"`` or ``"sev"`` -- the VM type the VMM creates (KVM_X86_SNP_VM,
    KVM_X86_SEV_ES_VM, KVM_X86_SEV_VM) and hence the SEV status the guest reads: under
    SEV / SEV-ES there is no RMP, PVALIDATE, PSC or guest_memfd, and a conversion is the
    guest's page-table change plus ``enc_dec_hypercall``; ``livelock_repeats``: passes of
    one loop on one vCPU with an unchanged state before the model stops the VM as a
    livelock (default 64, >= 2; :mod:`snpsim.trace.progress`).  ``regions``: extra
    guest-physical regions (:class:`snpsim.vmm.machine.RegionSpec`: RAM with or without
    guest_memfd, ROM, MMIO, aliases of a RAMBlock as more memslots), added to the q35 map
    and, for RAM and ROM, to the guest's e820.  Raises ValueError for an unknown profile
    name or mode, or ``livelock_repeats`` < 2.
    """

    def __init__(self, memory: int = 64 << 20, vcpus: int = 1, *, kernel: str = "6.17",
                 kvm: str | KvmProfile = DEFAULT_KVM_PROFILE,
                 qemu: str | QemuProfile = DEFAULT_QEMU_PROFILE,
                 seed: int = 0, mode: str = "snp",
                 regions: tuple[RegionSpec, ...] | list[RegionSpec] = (),
                 livelock_repeats: int = DEFAULT_LIVELOCK_REPEATS,
                 costs: CostTable | None = None, **guest_options: Any) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: {', '.join(MODES)}")
        if not isinstance(vcpus, int) or not 1 <= vcpus <= MAX_VCPUS:
            raise ValueError(f"vcpus must be 1..{MAX_VCPUS}, got {vcpus!r}")
        if not isinstance(memory, int) or not 0 < memory <= MAX_MEMORY:
            raise ValueError(f"memory must be 1..{MAX_MEMORY} bytes (1 TiB), got {memory!r}")
        self.mode = mode
        if kernel not in KERNEL_PROFILES:
            raise ValueError(f"unknown kernel profile {kernel!r}: {', '.join(KERNEL_PROFILES)}")
        if isinstance(kvm, str):
            if kvm not in KVM_PROFILES:
                raise ValueError(f"unknown KVM profile {kvm!r}: {', '.join(KVM_PROFILES)}")
            kvm = KVM_PROFILES[kvm]
        if isinstance(qemu, str):
            if qemu not in QEMU_PROFILES:
                raise ValueError(f"unknown QEMU profile {qemu!r}: {', '.join(QEMU_PROFILES)}")
            qemu = QEMU_PROFILES[qemu]
        self.kvm_profile = kvm
        self.qemu_profile = qemu
        #: The q35 memory map (raises QemuExit as QEMU would for an impossible one).
        self.layout: PcMemoryLayout = pc_memory_layout(memory)
        self.mmio: tuple[tuple[str, int, int], ...] = self.layout.mmio
        self.memory = memory
        self.vcpus = vcpus
        self.seed = seed
        # QEMU does not put KVM_FEATURE_MIGRATION_CONTROL (CPUID 0x40000001 EAX bit 17)
        # in an SNP guest's CPUID by default [unconfirmed], so the guest's
        # notify_page_enc_status_changed stays a no-op; see docs/model-choices.md.
        guest_options.setdefault("kvm_feature_migration_control", False)
        profile = guest_options.pop("profile", KERNEL_PROFILES[kernel])
        self.regions: tuple[RegionSpec, ...] = tuple(regions)
        for r in self.regions:
            r.check()
        #: Pages that start out owned by someone else (:meth:`preassign`), applied when
        #: the machine is built.
        self.preassigned: list[tuple[int, str, int, int]] = []
        #: A deferred :meth:`host_init` (its arguments), run when :meth:`run` starts.
        self._host_boot: dict[str, Any] | None = None
        guest_options.setdefault(
            "e820", tuple(sorted((*firmware_e820(self.layout), *regions_e820(self.regions)))))
        self.config = GuestConfig(ram_size=memory, nr_cpus=vcpus, profile=profile,
                                  **guest_options)
        # Host physical memory: enough SPA space for guest RAM twice (shared + private
        # backing) plus the host's own pages; sparse, so its size costs nothing.
        self.platform = Platform(mem_size=HOST_SPA_SIZE, cbit=self.config.cbit, seed=seed,
                                 livelock_repeats=livelock_repeats)
        self.kvm = Kvm(self.platform.host, kvm)
        #: Modelled time (docs/costs.md): charged at the platform's counting points,
        #: KVM's syscall surface and each vCPU's guest port.
        self.clock = ModelClock(costs if costs is not None else current_costs(), vcpus)
        attach_platform(self.clock, self.platform)
        attach_kvm(self.clock, self.kvm)
        self.machine: Machine | None = None
        self.kernel: GuestKernel | None = None
        self._observer: RunObserver | None = None

    def preassign(self, gpa: int, owner: str, asid: int = 0, rmp_gpa: int = 0) -> None:
        """Model-only host set-up, applied when :meth:`run` builds the machine: the page
        that guest_memfd will allocate for GPA ``gpa`` starts out owned by ``owner`` --
        ``"firmware"``, ``"guest"`` (another guest: ``asid``, at ``rmp_gpa``) or
        ``"hv-fixed"`` (:meth:`snpsim.vmm.machine.Machine.preassign`).  The run raises
        ValueError if the machine refuses it (no guest_memfd region holds ``gpa``)."""
        if owner not in ("firmware", "guest", "hv-fixed"):
            raise ValueError(f"owner must be 'firmware', 'guest' or 'hv-fixed', not {owner!r}")
        self.preassigned.append((gpa, owner, asid, rmp_gpa))

    def host_init(self, rmp: RmpConfig, *, ram: int = DEFAULT_HOST_RAM,
                  e820: tuple[tuple[int, int, int], ...] | None = None,
                  hv_fixed_2m: int = 0, defer: bool = False) -> int:
        """Model-only: boot the host through SNP initialisation instead of starting with
        SNP ready (the default).  ``rmp``: where the BIOS put the RMP
        (:class:`snpsim.hw.rmp.RmpConfig`); ``ram``: bytes of host RAM (its end is
        ``max_pfn``); ``e820``: the host's memory map, default :func:`host_e820`
        (legacy hole and the RMP's memory reserved); ``hv_fixed_2m``: 2 MiB HV-Fixed
        allocations PSP sub-devices make before SNP_INIT.  Runs
        :meth:`snpsim.kvm.kvm_main.Kvm.snp_host_init` now, or with ``defer`` at the
        start of :meth:`run` (inside its tracing and hooks; returns 0 here); returns its
        result (0, or -errno: KVM then refuses the SNP VM and QEMU exits when the run
        builds it).  The log lines are in :attr:`host_log`."""
        if defer:
            self._host_boot = {"rmp": rmp, "ram": ram, "e820": e820, "hv_fixed_2m": hv_fixed_2m}
            return 0
        self.platform.set_rmp_config(rmp)
        if e820 is None:
            e820 = host_e820(ram, rmp)
        max_pfn = max((a + n for a, n, t in e820 if t == E820_TYPE_RAM), default=0) >> PAGE_SHIFT
        return self.kvm.snp_host_init(max_pfn, e820, hv_fixed_2m)

    @property
    def host_log(self) -> list[str]:
        """The host kernel's SNP initialisation lines (arch/x86/virt/svm/sev.c, then
        sev-dev.c), empty without :meth:`host_init`."""
        sev = self.kvm.sev_device
        return [] if sev is None else [*sev.rmptable.log, *sev.log]

    @property
    def reserved_ranges(self) -> tuple[tuple[int, int], ...]:
        """(GPA, size) of the machine's MMIO windows and firmware ("pc.bios"): not RAM
        for the guest's allocations (they are outside its e820 RAM too)."""
        fw = ((self.layout.bios_base, self.layout.bios_size),) if self.layout.bios_size else ()
        return tuple((addr, size) for _name, addr, size in self.mmio) + fw

    def _build(self, workload: Callable[[GuestKernel, GuestPort], Any] | None,
               ap_workloads: dict[int, Callable[[GuestKernel, GuestPort], Any]] | None = None
               ) -> None:
        observer = self._observer
        image = build_launch_image(self.config)
        self.kernel = make_guest_kernel(self.config, image.boot, workload)
        if ap_workloads:
            self.kernel.ap_workloads.update(ap_workloads)
        self.machine = Machine(self.kvm, self.memory, self.vcpus, layout=self.layout,
                               profile=self.qemu_profile, vm_type=MODES[self.mode],
                               extra_regions=self.regions)
        for gpa, owner, asid, rmp_gpa in self.preassigned:
            ret = self.machine.preassign(gpa, owner, asid, rmp_gpa)
            if ret:
                raise ValueError(f"cannot pre-assign GPA {gpa:#x} to {owner}: {ret}")
        if self.mode != "snp":
            # Unaccepted memory is an SNP (and TDX) firmware feature: OVMF hands an SEV or
            # SEV-ES guest all of its RAM already usable.
            self.kernel.unaccepted = None
        entry = guest_entry(self.kernel)
        clock = self.clock
        timed = entry

        def entry(cpu: GuestPort) -> None:
            attach_vcpu(clock, cpu)
            timed(cpu)

        if observer is not None:
            inner = entry

            def entry(cpu: GuestPort) -> None:
                observer.attach_vcpu(cpu)
                inner(cpu)

        self.platform.install_guest_code(self.machine.asid, entry)
        self.digest = self.machine.launch(image.records)

    def run(self, workload: Callable[[GuestKernel, GuestPort], Any] | None = None,
            observer: RunObserver | None = None, *,
            ap_workloads: dict[int, Callable[[GuestKernel, GuestPort], Any]] | None = None,
            driver: Callable[[], None] | None = None,
            before_run: Callable[[], None] | None = None) -> RunOutcome:
        """Boot the guest, run ``workload(kernel, cpu)`` on the BSP in guest context, power
        off; returns the :class:`RunOutcome`.  ``observer`` counts what crosses the
        boundary and samples the memory picture (:class:`RunObserver`).

        For the scenario API (:mod:`snpsim.api`): ``ap_workloads`` maps a vCPU index
        (1..vcpus-1) to that AP's workload; ``before_run`` is called once the VM is built
        and launched, before any vCPU runs; ``driver`` is the deterministic schedule
        (:meth:`snpsim.hw.world.World.run_threads`; with it every vCPU, even a single one,
        runs as a scheduled host thread)."""
        t0 = time.perf_counter()
        reset_fired()
        if observer is not None:
            observer.system = self
            observer.t0 = t0
        self._observer = observer
        boot, self._host_boot = self._host_boot, None
        if boot is not None:
            self.host_init(**boot)
        try:
            self._build(workload, ap_workloads)
            if before_run is not None:
                before_run()
        except Livelock as lock:  # a loop that cannot progress before any vCPU ran
            return RunOutcome(RunResult("livelock", "paused", livelock=lock),
                              wall_time=time.perf_counter() - t0,
                              modelled_time=self.clock.report())
        except QemuExit as e:  # QEMU gave up building or launching the VM
            errors = list(self.machine.s.errors) if self.machine is not None else []
            if e.message not in errors:
                errors.append(e.message)
            return RunOutcome(RunResult("qemu-exit", "prelaunch", errors=errors),
                              wall_time=time.perf_counter() - t0,
                              host_oopses=list(self.kvm.oopses),
                              modelled_time=self.clock.report())
        assert self.machine is not None and self.kernel is not None
        if observer is not None:
            self.machine.on_exit.append(observer.on_exit)
            if observer.want_picture:
                observer.picture = MemoryPicture(*self._picture_geometry(),
                                                 regions=self._picture_regions())
                self.sample_picture(observer.picture, "start", force=True)
        world = self.platform.world
        runner: Callable[[list[tuple[str, Callable[[], Any]]]], list[Any]] | None = None
        if driver is not None:
            def runner(threads: list[tuple[str, Callable[[], Any]]]) -> list[Any]:
                return world.run_threads(threads, driver)
        elif self.vcpus > 1:
            runner = world.run_threads
        clock = self.clock
        # A single vCPU runs on the main greenlet: its work is vCPU 0's, not the host's.
        clock.main_lane = 0 if runner is None else clock.host_lane
        if runner is not None:
            run_threads = runner

            def runner(threads: list[tuple[str, Callable[[], Any]]]) -> list[Any]:
                try:
                    return run_threads(threads)
                finally:
                    clock.end_vcpus()  # the main thread joined the vCPU threads

        clock.start_vcpus()
        try:
            vmm = self.machine.run(runner)
        finally:
            clock.main_lane = clock.host_lane
            clock.end_vcpus()
            if observer is not None:
                self.machine.on_exit.remove(observer.on_exit)
        k = self.kernel
        term = None
        if k.terminated is not None:
            term = (k.terminated.reason_set, k.terminated.reason_code, k.terminated.function)
        picture = None
        if observer is not None and observer.picture is not None:
            picture = observer.picture
            self.sample_picture(picture, "end", force=True)
        counters = dict(self.platform.counters)
        # KVM's own statistics (kvm.stat), e.g. KVM_PRE_FAULT_MEMORY calls, as "kvm <name>".
        counters.update({f"kvm {name}": n
                         for name, n in self.kvm.vm(self.machine.s.vmfd).stat.items()})
        return RunOutcome(vmm, term, k.panicked, k.livelock, counters,
                          observer.stats if observer is not None else None, picture,
                          time.perf_counter() - t0, list(k.warnings), list(self.kvm.oopses),
                          kexec=k.kexec, modelled_time=clock.report(), checks=dict(FIRED))

    # -- observation (model-only views) --------------------------------------------------------
    def _observe_ghcb(self, ghcb_gpa: int, stats: RunStats) -> None:
        """Count a VMGEXIT through the GHCB at ``ghcb_gpa``: its ``sw_exit_code`` and, for
        PSC, the header and entries of the shared buffer (raw bytes at the GHCB's SPA)."""
        assert self.machine is not None
        ent = self.kvm.vm(self.machine.s.vmfd).npt.lookup(ghcb_gpa >> PAGE_SHIFT)
        if ent is None:
            stats.ghcb_exits["(GHCB not mapped)"] += 1
            return
        page = (ent.pfn << PAGE_SHIFT) | (ghcb_gpa & (PAGE_SIZE - 1) & ~0xFFF)
        mem = self.platform.mem
        code = int.from_bytes(mem.read_raw(page + _SW_EXIT_CODE, 8), "little")
        stats.ghcb_exits[describe_exit_code(code)] += 1
        if code != SVM_VMGEXIT_PSC:
            return
        buf = page + GHCB_SHARED_BUF_OFFSET
        hdr = PscHdr.decode(mem.read_raw(buf, PSC_HDR_SIZE))
        stats.psc_requests += 1
        last = min(hdr.end_entry, (PAGE_SIZE - GHCB_SHARED_BUF_OFFSET - PSC_HDR_SIZE) // PSC_ENTRY_SIZE - 1)
        if hdr.cur_entry > last:
            return
        raw = mem.read_raw(buf + PSC_HDR_SIZE + hdr.cur_entry * PSC_ENTRY_SIZE,
                           (last - hdr.cur_entry + 1) * PSC_ENTRY_SIZE)
        for i in range(0, len(raw), PSC_ENTRY_SIZE):
            e = PscEntry.decode(raw[i : i + PSC_ENTRY_SIZE])
            op = {1: "private", 2: "shared"}.get(e.operation, f"op {e.operation}")
            stats.psc_entry_kinds[f"{op} {'2M' if e.pagesize else '4K'}"] += 1
            stats.psc_entries += 1

    def sample_picture(self, picture: MemoryPicture, label: str, *, force: bool = False) -> None:
        """Add one sample of guest memory to ``picture`` (and its 4 KiB-cell history when
        its cells are larger, for the zoom)."""
        fine = None
        if picture.cell != PAGE_SIZE and picture.cell * picture.ncells <= PICTURE_MAX_FINE_PAGES * PAGE_SIZE:
            fine = self.sample_memory(PAGE_SIZE)
        counts = self._sample_counts(picture.cell)
        weights = (1 << np.arange(len(PAGE_STATES), dtype=np.uint8))[:, None]
        mask = ((counts > 0) * weights).sum(axis=0).astype(np.uint8)
        picture.add(self._state_of_counts(counts, picture.cell), label, force=force,
                    fine=fine, mask=mask)

    def _picture_regions(self) -> tuple[tuple[str, str, int, int], ...]:
        """The VMM's regions as :attr:`MemoryPicture.regions` (the kinds
        :meth:`sample_memory` gives them), sorted by GPA."""
        assert self.machine is not None
        return tuple(sorted(
            ((mr.name, "MMIO" if mr.kind == "mmio" else
              "RAM" if mr.name.startswith("ram-") else "firmware", mr.addr, mr.size)
             for mr in self.machine.s.regions), key=lambda r: r[2]))

    def picture_span(self) -> int:
        """Bytes of GPA the memory picture covers: [0, end of the highest RAM region)."""
        return max(a + n for a, n in self.layout.ram_ranges())

    def _picture_geometry(self) -> tuple[int, int]:
        cell = PAGE_SIZE if self.memory <= 256 << 20 else PMD_SIZE
        span = self.picture_span()
        while -(-span // cell) > PICTURE_MAX_CELLS:
            cell *= 2
        return cell, -(-span // cell)

    def sample_memory(self, cell: int) -> np.ndarray:
        """Model-only: the state of guest memory [0, :meth:`picture_span`) in cells of
        ``cell`` bytes (a power of two, at least 4 KiB), as indices into
        :data:`PAGE_STATES` (rules: :class:`MemoryPicture`)."""
        return self._state_of_counts(self._sample_counts(cell), cell)

    @staticmethod
    def _state_of_counts(counts: np.ndarray, cell: int) -> np.ndarray:
        """Each cell's state from its (7, cells) page counts (rules: :class:`MemoryPicture`)."""
        state = np.argmax(counts, axis=0).astype(np.uint8)
        state[counts[_SHARED] > 0] = _SHARED
        state[counts[_MMIO] >= cell // PAGE_SIZE] = _MMIO
        return state

    def _sample_counts(self, cell: int) -> np.ndarray:
        """(7, cells) int64: pages of each cell in each state of :data:`PAGE_STATES`."""
        assert self.machine is not None and self.kernel is not None
        ppc = cell // PAGE_SIZE  # pages per cell
        ncells = -(-self.picture_span() // cell)
        npages = ncells * ppc
        counts = np.zeros((7, ncells), dtype=np.int64)

        def add_range(state: int, gfn_start: int, gfn_end: int) -> None:
            gfn_start, gfn_end = max(gfn_start, 0), min(gfn_end, npages)
            if gfn_start >= gfn_end:
                return
            c0, c1 = gfn_start // ppc, (gfn_end - 1) // ppc
            if c0 == c1:
                counts[state, c0] += gfn_end - gfn_start
                return
            counts[state, c0] += (c0 + 1) * ppc - gfn_start
            counts[state, c1] += gfn_end - c1 * ppc
            counts[state, c0 + 1 : c1] += ppc

        for mr in self.machine.s.regions:
            if mr.kind == "mmio":
                state = _MMIO
            else:
                state = _UNVALIDATED if mr.name.startswith("ram-") else _FIRMWARE
            add_range(state, mr.addr >> PAGE_SHIFT, (mr.addr + mr.size) >> PAGE_SHIFT)
        u = self.kernel.unaccepted
        if u is not None:
            bits = np.unpackbits(np.frombuffer(bytes(u.bitmap), dtype=np.uint8),
                                 bitorder="little")[: u.nbits]
            upages = u.unit_size // PAGE_SIZE
            base_pages = (u.phys_base >> PAGE_SHIFT) + np.flatnonzero(bits).astype(np.int64) * upages
            if ppc >= upages and ppc % upages == 0:  # whole units per cell: one bincount
                base_pages = base_pages[base_pages < npages]
                counts[_UNACCEPTED] += np.bincount(base_pages // ppc, minlength=ncells)[:ncells] * upages
            else:
                for base in base_pages.tolist():
                    add_range(_UNACCEPTED, base, base + upages)
        vm = self.kvm.vm(self.machine.s.vmfd)
        for mr in self.machine.s.regions:  # shared: RAM whose attribute is not private
            if mr.kind == "mmio" or not mr.name.startswith("ram-"):
                continue
            for g0, g1, val in vm.mem_attr_array.runs(mr.addr >> PAGE_SHIFT,
                                                      min((mr.addr + mr.size) >> PAGE_SHIFT, npages)):
                if not val & KVM_MEMORY_ATTRIBUTE_PRIVATE:
                    add_range(_SHARED, g0, g1)
        gfns = self._validated_gfns()
        if gfns.size:
            gfns = gfns[gfns < npages]
            counts[_VALIDATED] += np.bincount(gfns // ppc, minlength=ncells)[:ncells]
        # RAM pages not accounted for by another state are private, not validated.
        ram = counts[_UNVALIDATED].copy()
        counts[_UNVALIDATED] = np.maximum(
            ram - counts[_UNACCEPTED] - counts[_SHARED] - counts[_VALIDATED], 0)
        counts[_UNACCEPTED] = np.minimum(counts[_UNACCEPTED], ram)
        counts[_NOT_RAM] = np.maximum(ppc - ram - counts[_MMIO] - counts[_FIRMWARE], 0)
        return counts

    def _validated_gfns(self) -> np.ndarray:
        """GFNs of the pages the RMP holds assigned to the guest's ASID and validated."""
        assert self.machine is not None
        asid = self.machine.asid
        chunks = getattr(self.platform.rmp, "_chunks", None)
        out: list[np.ndarray] = []
        if chunks is None:
            return np.zeros(0, dtype=np.int64)
        for c in chunks.values():
            flags = c["flags"]
            if flags[0] & _RMP_ASSIGNED and flags[0] & _RMP_PAGESIZE:  # a 2 MiB entry
                if int(c["asid"][0]) == asid and flags[0] & _RMP_VALIDATED:
                    out.append(np.arange(PTRS_PER_PMD, dtype=np.int64) + int(c["gfn"][0]))
                continue
            mask = (flags & (_RMP_ASSIGNED | _RMP_VALIDATED)) == (_RMP_ASSIGNED | _RMP_VALIDATED)
            mask &= c["asid"] == asid
            if mask.any():
                out.append(c["gfn"][mask].astype(np.int64))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def page_state(self, gpa: int, vaddr: int | None = None) -> PageState:
        """The state of the page at ``gpa`` from every party (see :class:`PageState`).
        ``vaddr``: the guest's GVA for the page (its direct-map address by default)."""
        assert self.machine is not None and self.kernel is not None
        gpa &= ~(PAGE_SIZE - 1)
        va = int(_guest_va(self.kernel, gpa)) if vaddr is None else vaddr
        c_bit = self._pte_c_bit(va)
        vm = self.kvm.vm(self.machine.s.vmfd)
        ent = vm.npt.lookup(gpa >> PAGE_SHIFT)
        rmp = spa = None
        if ent is not None:
            spa = ent.pfn << PAGE_SHIFT
            e = self.platform.rmp.lookup(ent.pfn)
            rmp = {"assigned": e.assigned, "asid": e.asid, "gpa": e.gpa, "pagesize": e.pagesize,
                   "validated": e.validated}
        attr = vm.mem_attr_array.get(gpa >> PAGE_SHIFT) or 0
        spa_read = self.platform.mem.read_raw(spa, 40) if spa is not None else None
        return PageState(gpa, c_bit, rmp, spa, bool(attr & KVM_MEMORY_ATTRIBUTE_PRIVATE),
                         self.machine.read_guest_ram(gpa, 40), spa_read)

    def vmsa_state(self, index: int) -> dict[str, Any]:
        """The VMSA vCPU ``index`` runs on, as a dict: ``spa`` (the VMCB's VMSA pointer;
        None when it has none -- a VM without SEV-ES, or KVM's INVALID_PAGE after an AP
        destroy), ``guest_vmsa`` (the VMSA it runs on is a page of guest memory: an SNP
        AP creation switched it there, and it has one now -- False once an AP destroy
        left it none), ``snp_has_guest_vmsa`` (KVM's own flag, set by
        ``sev_snp_init_protected_guest_state`` and never cleared: it stays True after
        an AP destroy, arch/x86/kvm/svm/sev.c v6.11+), ``gpa`` (from the page's RMP
        entry; KVM's own VMSA is at 0xFFFFFFFFF000; None without a page), ``rmp``
        (assigned, asid, validated, vmsa, pagesize, owner of that entry; None without a
        page) and ``mp_state`` (KVM's).  Raises IndexError for a vCPU the VM does not
        have."""
        assert self.machine is not None
        v = self.kvm.vm(self.machine.s.vmfd).vcpus[index]
        pfn = v.vmcb.vmsa_pfn
        if pfn is not None and not self.platform.rmp.covered(pfn):
            pfn = None  # KVM's INVALID_PAGE
        rmp = None
        if pfn is not None:
            e = self.platform.rmp.lookup(pfn)
            rmp = {"assigned": e.assigned, "asid": e.asid, "gpa": e.gpa, "pagesize": e.pagesize,
                   "validated": e.validated, "vmsa": e.vmsa, "immutable": e.immutable,
                   "owner": e.owner}
        return {"spa": None if pfn is None else pfn << PAGE_SHIFT,
                "guest_vmsa": pfn is not None and bool(v.sev_es.snp_has_guest_vmsa),
                "snp_has_guest_vmsa": bool(v.sev_es.snp_has_guest_vmsa),
                "gpa": None if rmp is None else rmp["gpa"], "rmp": rmp, "mp_state": v.mp_state}

    def _pte_c_bit(self, va: int) -> bool | None:
        """Model-only debugger view: the C-bit of the guest's leaf PTE for ``va``, from
        the hardware page walk (:func:`snpsim.hw.npt.guest_walk`) over the guest's tables
        read with its key through the NPT, without RMP checks or faults; None when a
        level is not mapped."""
        assert self.machine is not None and self.kernel is not None
        mem, asid = self.platform.mem, self.machine.asid
        npt = self.kvm.vm(self.machine.s.vmfd).npt

        def read_table_u64(gpa: int) -> int:
            ent = npt.lookup(gpa >> PAGE_SHIFT)
            if ent is None:
                raise LookupError(gpa)
            raw = mem.read_enc((ent.pfn << PAGE_SHIFT) | (gpa & (PAGE_SIZE - 1)), 8, asid)
            return int.from_bytes(raw, "little")

        try:
            return guest_walk(read_table_u64, self.kernel.boot.cr3, va, self.config.cbit,
                              write=False, fetch=False).c_bit
        except (LookupError, GuestPageFault):
            return None

    def check_teardown(self) -> TeardownCheck:
        """Check every page after a teardown (:class:`TeardownCheck`): the RMP entries
        still assigned to the VM's ASID, firmware pages not reclaimed, pages freed while
        still assigned, leaked pages, pages allocated and never freed, fds still open,
        and what the teardown itself hit (livelock, oopses).  Callable at any time (before
        a teardown it lists what the VM holds).  Cost: the RMP's assigned entries and the
        allocator's extents, not the guest's size.  Raises RuntimeError before
        :meth:`run` built the machine."""
        m = self.machine
        if m is None:
            raise RuntimeError("no machine yet: run() builds it")
        kvm = self.kvm
        vm = kvm.vm(m.s.vmfd)
        asid = vm.sev.asid
        rmp = self.platform.rmp
        alloc = kvm.allocator
        assigned, firmware, freed = [], [], []
        for pfn in rmp.assigned_pfns():
            e = rmp.lookup(pfn)
            if asid and e.asid == asid:
                assigned.append(pfn)
            elif e.asid == 0 and (alloc.is_allocated(pfn) or alloc.is_free(pfn)):
                firmware.append(pfn)
            if alloc.is_free(pfn):
                freed.append(pfn)
        vmm_pages: set[int] = set()
        for vma in kvm.mm.vmas:
            for arr in vma.chunks.values():
                vmm_pages.update(int(p) for p in arr[arr >= 0])
        allocated = [p for a, b in alloc.allocated_runs() for p in range(a, b) if p not in vmm_pages]
        fds = sorted({m.s.fd, m.s.vmfd, *(c.kvm_fd for c in m.cpus),
                      *(rb.guest_memfd for rb in m.ram_blocks.values() if rb.guest_memfd >= 0)})
        ll = m.teardown_livelock
        return TeardownCheck(
            asid=asid, vm_destroyed=vm.destroyed, asid_freed=asid not in kvm.asids_in_use,
            assigned=tuple(sorted(assigned)), firmware=tuple(sorted(firmware)),
            freed_assigned=tuple(sorted(freed)), leaked=tuple(sorted(alloc.leaked)),
            allocated=tuple(allocated), open_fds=tuple(fd for fd in fds if fd in kvm.files),
            livelock=None if ll is None else f"{ll.loop}: {ll.state}",
            oopses=tuple(kvm.oopses), syscalls=tuple(m.teardown_log))

    def time_conversion(self, function: str, pages: int = 1) -> tuple[SeedOutcome, RunOutcome, float]:
        """Boot, run ``function`` (``set_memory_decrypted``, or ``set_memory_encrypted``
        after a decryption of the same pages) on ``pages`` contiguous 4 KiB pages, power
        off, tracing off.  Returns the guest's outcome, the run's outcome and the
        modelled seconds of the call alone (vCPU 0's clock before and after it, read
        from outside the guest; model-only).  Raises ValueError for another
        ``function``."""
        if function not in ("set_memory_decrypted", "set_memory_encrypted"):
            raise ValueError(f"cannot time {function!r}")
        outcome = SeedOutcome(function, pages)
        inner = seed_workload(function, pages, outcome)
        clock = self.clock
        span = [0, 0]

        def workload(kernel: GuestKernel, cpu: GuestPort) -> None:
            span[0] = clock.t[0]
            inner(kernel, cpu)
            span[1] = clock.t[0]

        run = self.run(workload)
        return outcome, run, clock.table.seconds(span[1] - span[0])

    def trace_conversion(self, function: str, pages: int = 1, *,
                         trace_filter: TraceFilter | None = None) -> TraceResult:
        """Boot, run ``function`` (``set_memory_decrypted`` or ``set_memory_encrypted``) on
        ``pages`` 4 KiB pages of guest memory with tracing on, power off.  Returns the
        :class:`TraceResult` with the call graph rooted at ``function``."""
        if function not in ("set_memory_decrypted", "set_memory_encrypted"):
            raise ValueError(f"cannot trace {function!r}")
        outcome = SeedOutcome(function, pages)
        rec = Recorder()
        with tracing(rec):
            run = self.run(seed_workload(function, pages, outcome))
        events = list(rec.events)
        # The call's window: from its frame's Enter to the matching Leave.
        first = next((i for i, e in enumerate(events)
                      if e.type == "enter" and e.name == function), None)
        last = len(events)
        if first is not None:
            last = next((i for i in range(first + 1, len(events))
                         if events[i].type == "leave" and events[i].name == function
                         and events[i].ctx == events[first].ctx), len(events) - 1) + 1
        if trace_filter is not None:
            kept = Recorder(filter=trace_filter)
            for e in events:
                kept.record(e)
            window = {e.seq for e in events[first:last]} if first is not None else set()
            events = list(kept.events)
            tree = format_tree(events, root=function)
            if not tree.strip():
                tree = format_tree([e for e in events if e.seq in window])
        else:
            tree = format_tree(events, root=function)
        state = self.page_state(outcome.gpa, outcome.vaddr) if outcome.gpa else None
        return TraceResult(function, events, tree, outcome, state, run)
