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

Sizes are bytes; GPAs are guest physical addresses in bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snpsim.guest.boot import build_launch_image, guest_entry, make_guest_kernel
from snpsim.guest.kernel import PROFILES as KERNEL_PROFILES
from snpsim.guest.kernel import GuestConfig, GuestKernel
from snpsim.guest.kernel import __va as _guest_va
from snpsim.hw.cpu import Platform
from snpsim.hw.npt import guest_walk
from snpsim.hw.ports import GuestPageFault, GuestPort
from snpsim.kvm.kvm_main import Kvm
from snpsim.scenarios.seed import SeedOutcome, seed_workload
from snpsim.spec.kvm_uapi import KVM_MEMORY_ATTRIBUTE_PRIVATE
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE
from snpsim.trace.events import TraceEvent
from snpsim.trace.export_tree import format_tree
from snpsim.trace.record import Recorder, TraceFilter, tracing
from snpsim.vmm.machine import Machine, RunResult

__all__ = ["SnpSystem", "RunOutcome", "PageState", "TraceResult", "parse_size"]

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Parse a size such as ``64M``, ``4G``, ``1T``, ``65536`` into bytes (powers of 1024).

    Raises ValueError with a message naming the bad text.
    """
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"bad size {text!r}: use a number with an optional K, M, G or T suffix")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2).upper()]


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
    ``panic``/``livelock`` messages, ``counters`` (platform statistics)."""

    vmm: RunResult
    termination: tuple[int, int, str] | None = None
    panic: str | None = None
    livelock: str | None = None
    counters: dict[str, int] = field(default_factory=dict)

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
            return f"guest terminated: reason set {rs} code {rc} ({self.vmm.description}) requested by {fn}"
        if self.panic:
            return f"guest panic: {self.panic}"
        if self.livelock:
            return f"guest livelock: {self.livelock}"
        extra = f": {'; '.join(self.vmm.errors)}" if self.vmm.errors else ""
        return f"{self.vmm.result}{extra}"


@dataclass
class TraceResult:
    """A traced conversion: ``events`` (all recorded), ``tree`` (the subtree of the
    traced function), ``seed`` (what the guest did), ``state`` of the first page after the
    run, ``run`` outcome."""

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


class SnpSystem:
    """One SNP VM, ready to run.

    ``memory``: guest RAM in bytes (multiple of 2 MiB); ``vcpus``; ``kernel``: guest
    kernel profile name (``6.17`` default, ``6.4``); ``seed``: scheduler and key seed;
    ``guest_options``: extra :class:`GuestConfig` fields.
    """

    def __init__(self, memory: int = 64 << 20, vcpus: int = 1, *, kernel: str = "6.17",
                 seed: int = 0, **guest_options: Any) -> None:
        if kernel not in KERNEL_PROFILES:
            raise ValueError(f"unknown kernel profile {kernel!r}: {', '.join(KERNEL_PROFILES)}")
        self.memory = memory
        self.vcpus = vcpus
        self.seed = seed
        # QEMU does not put KVM_FEATURE_MIGRATION_CONTROL (CPUID 0x40000001 EAX bit 17)
        # in an SNP guest's CPUID by default [unconfirmed], so the guest's
        # notify_page_enc_status_changed stays a no-op; see docs/model-choices.md.
        guest_options.setdefault("kvm_feature_migration_control", False)
        self.config = GuestConfig(ram_size=memory, nr_cpus=vcpus, profile=KERNEL_PROFILES[kernel],
                                  **guest_options)
        # Host physical memory: enough SPA space for guest RAM twice (shared + private
        # backing) plus the host's own pages; sparse, so its size costs nothing.
        self.platform = Platform(mem_size=1 << 44, cbit=self.config.cbit, seed=seed)
        self.kvm = Kvm(self.platform.host)
        self.machine: Machine | None = None
        self.kernel: GuestKernel | None = None

    def _build(self, workload: Callable[[GuestKernel, GuestPort], Any] | None) -> None:
        image = build_launch_image(self.config)
        self.kernel = make_guest_kernel(self.config, image.boot, workload)
        self.machine = Machine(self.kvm, self.memory, self.vcpus)
        self.platform.install_guest_code(self.machine.asid, guest_entry(self.kernel))
        self.digest = self.machine.snp_launch(image.records)

    def run(self, workload: Callable[[GuestKernel, GuestPort], Any] | None = None) -> RunOutcome:
        """Boot the guest, run ``workload(kernel, cpu)`` on the BSP in guest context, power
        off; returns the :class:`RunOutcome`."""
        self._build(workload)
        assert self.machine is not None and self.kernel is not None
        runner = self.platform.world.run_threads if self.vcpus > 1 else None
        vmm = self.machine.run(runner)
        k = self.kernel
        term = None
        if k.terminated is not None:
            term = (k.terminated.reason_set, k.terminated.reason_code, k.terminated.function)
        return RunOutcome(vmm, term, k.panicked, k.livelock, dict(self.platform.counters))

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

    def trace_conversion(self, function: str, pages: int = 1, *,
                         trace_filter: TraceFilter | None = None) -> TraceResult:
        """Boot, run ``function`` (``set_memory_decrypted`` or ``set_memory_encrypted``) on
        ``pages`` 4 KiB pages of guest memory with tracing on, power off.  Returns the
        :class:`TraceResult` with the call graph rooted at ``function``."""
        if function not in ("set_memory_decrypted", "set_memory_encrypted"):
            raise ValueError(f"cannot trace {function!r}")
        outcome = SeedOutcome(function, pages)
        rec = Recorder(filter=trace_filter)
        with tracing(rec):
            run = self.run(seed_workload(function, pages, outcome))
        events = list(rec.events)
        state = self.page_state(outcome.gpa, outcome.vaddr) if outcome.gpa else None
        return TraceResult(function, events, format_tree(events, root=function), outcome, state, run)
