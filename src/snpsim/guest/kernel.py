# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The guest kernel's context: the state the Linux functions of ``guest/`` share.

Model-only (no single kernel twin).  Linux keeps this state in globals and per-CPU
variables spread over ``arch/x86/coco/sev/core.c`` (``sev_cfg``, ``boot_ghcb``,
``runtime_data``, ``snp_vmpl``), ``arch/x86/mm/mem_encrypt_amd.c`` (the
``x86_platform.guest`` hooks), ``arch/x86/kernel/kvm.c`` (the paravirt
``notify_page_enc_status_changed``) and ``mm/`` (the page allocator, ``init_mm.pgd``).
Here one :class:`GuestKernel` holds it and is the first argument of every modelled
function (STYLE.md 2.1).  Version modelled: 6.16/6.17 (linux-guest.md section 0), with
the behaviours that changed across releases selectable by :class:`KernelProfile`.

Addresses: ``GVA`` for kernel virtual addresses (direct map at ``PAGE_OFFSET``, kernel
image alias at ``__START_KERNEL_map``), ``GPA`` for guest physical addresses (bytes);
``npages`` always counts 4 KiB pages.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from snpsim.hw.ports import GuestPort
from snpsim.spec.addr import GPA, GVA
from snpsim.spec.page_64_types import PAGE_OFFSET, __START_KERNEL_map
from snpsim.spec.pgtable_64_types import VMALLOC_START
from snpsim.spec.psc import VMGEXIT_PSC_MAX_ENTRY, VMGEXIT_PSC_MAX_ENTRY_PRE_6_5
from snpsim.spec.units import PAGE_SIZE
from snpsim.spec.variant import VariantProfile

__all__ = [
    "KernelProfile",
    "PROFILES",
    "PROFILE_6_17",
    "PROFILE_6_4",
    "overridable",
    "base_of",
    "GuestConfig",
    "BootParams",
    "SevConfig",
    "SevEsRuntimeData",
    "GhcbState",
    "PageAllocator",
    "GuestTermination",
    "GuestStop",
    "GuestKernel",
    "this_cpu",
    "register_cpu",
    "__pa",
    "__va",
    "pfn_to_kaddr",
    "kernel_caller",
    "panic",
]


@dataclass(frozen=True)
class KernelProfile(VariantProfile):
    """A guest kernel version or named variant (linux-guest.md 12): an override table
    merged onto a base, the py-evm fork shape of STYLE.md
    (:class:`snpsim.spec.variant.VariantProfile`).

    Knobs: ``vmgexit_psc_max_entry`` (entries per ``struct snp_psc_desc``: 64 since v6.5,
    commit 69dcb1e3bbbe; 253 in v5.19-6.4); ``psc_2m_entries`` (2M PSC entries and the
    descriptor-based PVALIDATE with 2M->4K fallback, v6.5, 15d9088779b8);
    ``sev_evict_cache`` (cache eviction after validation unless COHERENCY_SFW_NO,
    7b306dfa326f, 6.16.x/6.17).

    Overrides: kernel function name -> replacement with the same signature, consulted by
    the functions decorated :func:`overridable` (the points where historical or buggy
    code differed): ``snp_set_memory_shared``, ``snp_set_memory_private``,
    ``__set_pages_state``, ``pval_pages``, ``cpa_flush``, ``vc_handle_exitcode``,
    ``reserve_and_init``.  The named variants are in :mod:`snpsim.guest.variants`.
    """

    @property
    def vmgexit_psc_max_entry(self) -> int:
        """``VMGEXIT_PSC_MAX_ENTRY`` of this kernel (64 or 253)."""
        return int(self.knobs["vmgexit_psc_max_entry"])

    @property
    def psc_2m_entries(self) -> bool:
        """``__set_pages_state`` may build 2M entries (v6.5+)."""
        return bool(self.knobs["psc_2m_entries"])

    @property
    def sev_evict_cache(self) -> bool:
        """``pvalidate_pages`` has the cache-eviction mitigation (6.16.x/6.17)."""
        return bool(self.knobs["sev_evict_cache"])


_BASE_KNOBS: dict[str, Any] = {
    "vmgexit_psc_max_entry": VMGEXIT_PSC_MAX_ENTRY,
    "psc_2m_entries": True,
    "sev_evict_cache": True,
}

#: Default: the newest kernel of the reference (6.16/6.17 development).
PROFILE_6_17 = KernelProfile("6.17", dict(_BASE_KNOBS))
#: v5.19-6.4: 253 4K entries per PSC, VA-range ``pvalidate_pages`` called by
#: ``snp_set_memory_shared/private`` around ``set_pages_state``, no cache eviction.  Its
#: overrides are installed by :mod:`snpsim.guest.variants` (``profile_6_4``); what stays
#: 6.17-shaped is listed in docs/guest.md.
PROFILE_6_4 = KernelProfile("6.4", {
    **_BASE_KNOBS, "vmgexit_psc_max_entry": VMGEXIT_PSC_MAX_ENTRY_PRE_6_5,
    "psc_2m_entries": False, "sev_evict_cache": False,
})
PROFILES: dict[str, KernelProfile] = {"6.17": PROFILE_6_17, "6.16": PROFILE_6_17, "6.4": PROFILE_6_4}


def overridable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Model-only: make kernel function ``fn`` (first argument the :class:`GuestKernel`)
    an override point: when the kernel's profile has an override under ``fn.__name__``,
    the override runs instead, with the same arguments; it can reach the base through
    ``base_of(fn)``.  Place it under ``@traced`` so the trace shows the kernel name."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(kernel: GuestKernel, *args: Any, **kw: Any) -> Any:
        return kernel.profile.call(name, fn)(kernel, *args, **kw)

    wrapper.__overridable_base__ = fn  # type: ignore[attr-defined]
    return wrapper


def base_of(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Model-only: the base (un-overridden) body of an :func:`overridable` function."""
    f = fn
    while not hasattr(f, "__overridable_base__") and hasattr(f, "__wrapped__"):
        f = f.__wrapped__
    return f.__overridable_base__  # type: ignore[no-any-return]


@dataclass
class GuestConfig:
    """What the guest is built with and what it sees of the platform.

    ``ram_size``: bytes of guest RAM (a multiple of 2 MiB; where it lies: ``e820``);
    ``nr_cpus``;
    ``profile``; ``kvm_feature_migration_control``: the guest sees KVM CPUID leaf
    0x40000001 EAX bit 17, so ``kvm_init_platform`` installs
    ``kvm_sev_hc_page_enc_status``; ``coherency_sfw_no``: CPUID 0x8000001F EBX[31];
    ``sme_coherent``: CPUID 0x8000001F EAX[10]; ``cbit``: the C-bit position the page
    tables are built with; ``pool_pages``: pre-validated 4 KiB pages the page allocator
    starts with; ``eager_accept``: accept all RAM at boot (``accept_memory=eager``);
    ``variant``: the name of a variant in
    :data:`snpsim.guest.variants.KERNEL_VARIANTS` whose overrides are merged onto
    ``profile`` (e.g. ``"R8-buggy"``), None for the plain kernel; ``e820``: the memory
    map the firmware hands the guest, (GPA, bytes, E820_TYPE_*) entries (the VMM's
    layout; None: one RAM range ``[0, ram_size)``, for guests built without a VMM).
    """

    ram_size: int = 64 << 20
    nr_cpus: int = 1
    profile: KernelProfile = PROFILE_6_17
    kvm_feature_migration_control: bool = True
    coherency_sfw_no: bool = False
    sme_coherent: bool = True
    cbit: int = 51
    pool_pages: int = 128
    eager_accept: bool = False
    variant: str | None = None
    e820: tuple[tuple[int, int, int], ...] | None = None


@dataclass
class BootParams:
    """What ``build_launch_image`` tells the guest entry (the boot_params/zero page and
    the firmware tables of a real boot).  All ``*_gpa`` are GPAs (bytes).

    ``cr3``: GPA of the PML4; ``image_start``/``image_end``: the launched (pre-validated)
    region; ``pool_start``/``pool_end``: the page allocator's initial free pages;
    ``bss_decrypted_gpa``: the ``.bss..decrypted`` page (``boot_ghcb_page``);
    ``e820_ram``: (start, size) RAM ranges; ``acpi_pm1a_cnt_blk``: the FADT PM1a control
    port; ``ram_size``: bytes of RAM (the sum of ``e820_ram``); ``e820``: the whole map,
    (GPA, bytes, E820_TYPE_*) entries; ``direct_map``: the GPA ranges [start, end) the
    direct map covers (Linux's ``pfn_mapped[]``: e820 RAM, extended to whole 2 MiB
    pages, the first MiB included as ``init_mem_mapping`` maps the ISA range).
    """

    cr3: int
    image_start: int
    image_end: int
    pool_start: int
    pool_end: int
    bss_decrypted_gpa: int
    ram_size: int
    e820_ram: list[tuple[int, int]]
    acpi_pm1a_cnt_blk: int
    cbit: int
    e820: list[tuple[int, int, int]] = field(default_factory=list)
    direct_map: list[tuple[int, int]] = field(default_factory=list)

    @property
    def max_pfn_mapped(self) -> int:
        """``max_pfn_mapped``: the page frame after the highest direct-mapped page."""
        if not self.direct_map:
            return self.ram_size >> 12
        return max(e for _s, e in self.direct_map) >> 12

    def pfn_range_is_mapped(self, start_pfn: int, end_pfn: int) -> bool:
        """``pfn_range_is_mapped(start_pfn, end_pfn)`` (arch/x86/mm/init.c): the page
        frames ``[start_pfn, end_pfn)`` lie in one direct-mapped range."""
        ranges = self.direct_map or [(0, self.ram_size)]
        return any(s >> 12 <= start_pfn and end_pfn <= e >> 12 for s, e in ranges)


@dataclass
class SevConfig:
    """``struct sev_config`` (core.c): ``ghcbs_initialized`` (v6.5+, 7006b75592fe), the
    per-CPU GHCBs are registered and usable."""

    ghcbs_initialized: bool = False
    debug: bool = False


@dataclass
class SevEsRuntimeData:
    """``struct sev_es_runtime_data`` of one CPU (core.c).  ``ghcb_page`` and
    ``backup_ghcb`` are the GVAs (direct map) of two 4 KiB pages; the GHCB page is mapped
    decrypted by ``init_ghcb``."""

    ghcb_page: GVA
    backup_ghcb: GVA
    ghcb_active: bool = False
    backup_ghcb_active: bool = False


@dataclass
class GhcbState:
    """``struct ghcb_state``: ``ghcb`` is the backup GHCB's GVA while nested, else None."""

    ghcb: GVA | None = None


class PageAllocator:
    """Model-only: the buddy allocator reduced to a free list of pre-validated 4 KiB pages
    (GPAs) from the launch image's pool.  ``alloc_page`` returns a GPA or None (the C
    code's NULL, i.e. -ENOMEM for its caller)."""

    def __init__(self, start: int, end: int) -> None:
        self.free: list[int] = list(range(end - PAGE_SIZE, start - 1, -PAGE_SIZE))
        self.allocated = 0

    def alloc_page(self) -> GPA | None:
        """One free page's GPA, or None when the pool is exhausted."""
        if not self.free:
            return None
        self.allocated += 1
        return GPA(self.free.pop())

    def alloc_pages(self, order: int) -> GPA | None:
        """``alloc_pages(gfp, order)``: the GPA of ``1 << order`` free, contiguous pages
        aligned to their size (as the buddy allocator gives them): the first such block
        found scanning from the pages :meth:`alloc_page` would hand out next; None when
        no such block is free.  Costs one pass over the free list at most."""
        n = 1 << order
        size = n * PAGE_SIZE
        free = set(self.free) if n > 1 else None
        for i in range(len(self.free) - 1, -1, -1):
            base = self.free[i]
            if base % size:
                continue
            if free is not None and any(base + k * PAGE_SIZE not in free for k in range(1, n)):
                continue
            block = {base + k * PAGE_SIZE for k in range(n)}
            self.free = [g for g in self.free if g not in block]
            self.allocated += n
            return GPA(base)
        return None

    def free_page(self, gpa: int) -> None:
        """``free_page``/``__free_page``: the page at ``gpa`` is free again (next to be
        handed out)."""
        self.allocated -= 1
        self.free.append(gpa)


class GuestTermination(NamedTuple):
    """A termination request the guest sent: GHCB MSR 0x100 reason ``reason_set`` and
    ``reason_code``, and the guest ``function`` that called ``sev_es_terminate``."""

    reason_set: int
    reason_code: int
    function: str


class GuestStop(Exception):
    """Model-only: unwinds the guest context to ``guest_entry`` after a panic.  The entry
    then returns, which the platform reports as a shutdown exit: the model's stand-in
    for a CPU that spins forever.  (A livelock unwinds further, as
    :class:`snpsim.trace.progress.Livelock`, and stops the whole VM.)"""


@dataclass
class GuestKernel:
    """The guest kernel's shared state (see the module doc).

    Outcomes recorded for the run's report: ``terminated`` (a :class:`GuestTermination`),
    ``panicked`` (the panic message), ``livelock`` (None: livelocks now unwind as
    :class:`snpsim.trace.progress.Livelock` and are read from ``Platform.progress``; the
    field stays for callers that test it),
    ``warnings`` (every WARN/pr_err text, in order), ``powered_off``.
    ``psc_desc_page``: per CPU, the GVA of the page that holds the on-stack
    ``struct snp_psc_desc`` of ``set_pages_state``: the CPU's kernel stack page, in use
    (written) from the CPU's entry (:func:`snpsim.guest.boot.guest_entry`).
    ``pending_insn``: model-only, the I/O or MSR instruction a CPU is executing (for the
    #VC handler's instruction decode and the exception-table fixup); ``msr_faulted``:
    per CPU, the last MSR access took a #GP that was fixed up (:mod:`snpsim.guest.msr`).  Several vCPUs (:mod:`snpsim.guest.smp`):
    ``ap_workloads`` (vCPU id -> ``fn(kernel, cpu)`` run on that AP once it is online),
    ``ap_results``, ``ap_state`` (per AP: offline, booting, waiting, online, done,
    parked, stopped, failed), ``smp_released`` (the BSP ran ``smp_init``), ``sev_vmsa``
    (per CPU: the GVA of the VMSA page the kernel made for it, Linux's per-CPU
    ``sev_vmsa``; absent for the BSP and CPUs without one), ``accept_waits`` (retries of
    ``accept_memory``'s overlap wait, all CPUs).  ``vmalloc_next``: the next free GVA of
    the model's vmalloc area (:mod:`snpsim.guest.vmalloc`).

    kexec/kdump (:mod:`snpsim.guest.kexec`): ``mem_enc_readers`` (per CPU, how many
    conversions hold ``mem_enc_lock`` for read), ``mem_enc_stopped`` (the write side was
    taken by ``set_memory_enc_stop_conversion`` and is never given back);
    ``oops_in_progress`` (set by the crash path: sleeping waits become try-locks);
    ``kexec_in_progress``; ``kexec_lock`` (the CPU that won ``kexec_trylock``, or None);
    ``stopping_cpu`` (the CPU that ran ``stop_other_cpus``: every other CPU halts at its
    next spin-wait or return to the guest); ``nmi_shootdown`` (the crashing CPU once
    ``crash_smp_send_stop`` ran: every other CPU stops at its next return to the guest);
    ``sev_vmsa`` (above: the VMSA pages ``shutdown_all_aps`` undoes); ``offline_pfns`` (pages marked
    ``PageOffline`` for makedumpfile); ``kexec`` (``"kexec"`` or ``"kdump"`` once the
    kernel handed the machine to the next kernel, None before).
    """

    config: GuestConfig
    boot: BootParams
    sev_cfg: SevConfig = field(default_factory=SevConfig)
    sev_status: int = 0
    ghcb_version: int = 0
    sev_hv_features: int = 0
    snp_vmpl: int = 0
    boot_ghcb: GVA | None = None
    runtime_data: dict[int, SevEsRuntimeData] = field(default_factory=dict)
    page_alloc: PageAllocator | None = None
    runtime_vc_handler: bool = False
    kvm_pv_enc_status: bool = False
    irqs_disabled: dict[int, bool] = field(default_factory=dict)
    unaccepted: Any = None
    workload: Callable[[GuestKernel, GuestPort], Any] | None = None
    workload_result: Any = None
    terminated: GuestTermination | None = None
    panicked: str | None = None
    livelock: str | None = None
    warnings: list[str] = field(default_factory=list)
    powered_off: bool = False
    #: Model-only statistic: 4 KiB pages whose C-bit the kernel changed (CPA and the early
    #: path), by direction "shared"/"private": the count of conversions in every mode
    #: (SEV and SEV-ES send no PSC or KVM_HC_MAP_GPA_RANGE the host could count).
    enc_dec_pages: dict[str, int] = field(default_factory=lambda: {"shared": 0, "private": 0})
    cpus: dict[int, GuestPort] = field(default_factory=dict)
    psc_desc_page: dict[int, GVA] = field(default_factory=dict)
    pending_insn: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    msr_faulted: dict[int, bool] = field(default_factory=dict)
    _ctx_cpu: dict[Any, int] = field(default_factory=dict)
    _profile: KernelProfile | None = None
    ap_workloads: dict[int, Callable[[GuestKernel, GuestPort], Any]] = field(default_factory=dict)
    ap_results: dict[int, Any] = field(default_factory=dict)
    ap_state: dict[int, str] = field(default_factory=dict)
    smp_released: bool = False
    sev_vmsa: dict[int, GVA] = field(default_factory=dict)
    accept_waits: int = 0
    vmalloc_next: int = VMALLOC_START
    mem_enc_readers: dict[int, int] = field(default_factory=dict)
    mem_enc_stopped: bool = False
    oops_in_progress: bool = False
    kexec_in_progress: bool = False
    kexec_lock: int | None = None
    stopping_cpu: int | None = None
    nmi_shootdown: int | None = None
    offline_pfns: set[int] = field(default_factory=set)
    kexec: str | None = None

    @property
    def profile(self) -> KernelProfile:
        """The kernel profile in force: ``config.profile`` with the 6.4 structure when it
        is the 6.4 profile and ``config.variant``'s overrides merged on top (resolved once,
        by :func:`snpsim.guest.variants.resolve_profile`)."""
        p = self._profile
        if p is None:
            from .variants import resolve_profile

            p = self._profile = resolve_profile(self.config.profile, self.config.variant)
        return p

    @property
    def pgd(self) -> GVA:
        """``init_mm.pgd``: the direct-map GVA of the PML4."""
        return GVA(self.boot.cr3 + PAGE_OFFSET)  # __va (no call: a method would mangle it)

    def warn(self, msg: str) -> None:
        """WARN()/pr_err(): record ``msg`` (model: the console line)."""
        self.warnings.append(msg)


# -- the running CPU -------------------------------------------------------------------


def _current_context() -> Any:
    import greenlet

    return greenlet.getcurrent()


def register_cpu(kernel: GuestKernel, cpu: GuestPort) -> None:
    """Model-only: remember that the running guest context is ``cpu`` (done once by
    ``guest_entry`` on each vCPU), so ``this_cpu`` can answer ``smp_processor_id()``."""
    kernel.cpus[cpu.vcpu_id] = cpu
    kernel._ctx_cpu[_current_context()] = cpu.vcpu_id


def this_cpu(kernel: GuestKernel) -> GuestPort:
    """Model-only: the GuestPort of the vCPU running this code (``smp_processor_id``)."""
    vid = kernel._ctx_cpu.get(_current_context())
    if vid is None:
        assert len(kernel.cpus) == 1, "this_cpu: context not registered"
        return next(iter(kernel.cpus.values()))
    return kernel.cpus[vid]


# -- address conversions (arch/x86/include/asm/page.h, page_64.h) -----------------------


def __va(kernel: GuestKernel, pa: int) -> GVA:
    """``__va(pa)``: the direct-map GVA of GPA ``pa`` (``pa + PAGE_OFFSET``)."""
    return GVA(pa + PAGE_OFFSET)


def __pa(kernel: GuestKernel, va: int) -> GPA:
    """``__pa(va)`` (``__phys_addr``): GPA of a direct-map or kernel-image GVA.

    Kernel-image addresses (at or above ``__START_KERNEL_map``) translate with
    ``phys_base`` = 0 (no relocation modelled); anything else is taken as direct map.
    """
    if va >= __START_KERNEL_map:
        return GPA(va - __START_KERNEL_map)
    return GPA(va - PAGE_OFFSET)


def pfn_to_kaddr(kernel: GuestKernel, pfn: int) -> GVA:
    """``pfn_to_kaddr(pfn)``: direct-map GVA of page frame ``pfn``."""
    return __va(kernel, pfn * PAGE_SIZE)


def kernel_caller(depth: int = 1) -> str:
    """Model-only: the name of the modelled kernel function that called the function
    running this (skipping the ``traced`` wrappers), for termination reports."""
    f = sys._getframe(depth + 1)
    while f is not None and (f.f_code.co_name == "wrapper" or f.f_code.co_filename.endswith("record.py")):
        f = f.f_back
    return f.f_code.co_name if f is not None else "?"


def panic(kernel: GuestKernel, msg: str) -> None:
    """``panic(msg)`` (kernel/panic.c): never returns.

    Model choice: Linux prints "Kernel panic - not syncing: <msg>" and, with the default
    ``panic_timeout`` 0, spins forever with interrupts off.  The model records ``msg`` in
    ``kernel.panicked`` and unwinds the guest context (:class:`GuestStop`), which the
    platform reports as a shutdown exit instead of a vCPU that never exits again.
    """
    kernel.panicked = msg
    kernel.warn(f"Kernel panic - not syncing: {msg}")
    raise GuestStop(f"panic: {msg}")
