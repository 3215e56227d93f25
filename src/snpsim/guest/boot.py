# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The guest's launch image and boot: page tables, the BSP's early SEV setup, GHCBs,
the #VC handler, the workload and the ACPI power-off.

Mirrors, in boot order: the decompressor's ``sev_enable`` (``arch/x86/boot/compressed/
sev.c``: protocol negotiation -> (0, 1), hypervisor features must have SNP -> (0, 2)),
``sme_postprocess_startup`` (``arch/x86/boot/startup/map_kernel.c``: ``.bss..decrypted``
made shared), ``setup_ghcb`` (``arch/x86/coco/sev/core.c``: ``boot_ghcb`` registered
with ``snp_register_ghcb_early``), ``kvm_init_platform`` (``arch/x86/kernel/kvm.c``),
``sev_es_init_vc_handling`` / ``alloc_runtime_data`` / ``init_ghcb`` (core.c: the per-CPU
GHCB pages made shared through the early MSR path) and ``cpu_init_exception_handling``
-> ``setup_ghcb`` -> ``snp_register_per_cpu_ghcb`` (``sev_cfg.ghcbs_initialized``), v6.16/6.17
(linux-guest.md 5.1, 8.2, 9).  The power-off is ACPICA's ``acpi_hw_legacy_sleep`` reduced
to its final PM1a write (SLP_TYP(S5) | SLP_EN); the preceding PM1a read and SLP_TYP-only
write are not modelled.

Model simplifications: ``.bss..decrypted`` is one 4 KiB page (Linux pads the section to
2 MiB and converts all 512 pages through the identity map); the kernel image alias maps
only the launched region, with 4 KiB pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from snpsim.hw.ports import GuestPort
from snpsim.spec.acpi import (
    ACPI_BITMASK_SLEEP_ENABLE,
    ACPI_BITPOSITION_SLEEP_TYPE,
    ACPI_PM1_CNT_PORT,
    ACPI_SLP_TYP_S5,
)
from snpsim.spec.checks import check_enabled
from snpsim.spec.e820 import E820_TYPE_RAM, e820_ram_ranges
from snpsim.spec.kvm_uapi import KVM_SEV_SNP_PAGE_TYPE_NORMAL, KVM_SEV_SNP_PAGE_TYPE_ZERO
from snpsim.spec.msr_index import (
    MSR_AMD64_SEV,
    MSR_AMD64_SEV_ES_ENABLED,
    MSR_AMD64_SEV_SNP_ENABLED,
)
from snpsim.spec.msr_protocol import GHCB_HV_FT_SNP
from snpsim.spec.page_64_types import CONFIG_PHYSICAL_START, PAGE_OFFSET, __START_KERNEL_map
from snpsim.spec.pgtable_types import (
    _KERNPG_TABLE_NOENC,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_RW,
    pgd_index,
    pmd_index,
    pte_index,
    pud_index,
)
from snpsim.spec.termination import (
    GHCB_SEV_ES_GEN_REQ,
    GHCB_SEV_ES_PROT_UNSUPPORTED,
    GHCB_SNP_UNSUPPORTED,
    SEV_TERM_SET_GEN,
)
from snpsim.spec.units import PAGE_SIZE, PMD_SIZE, PUD_SIZE
from snpsim.trace.record import traced

from .kernel import (
    BootParams,
    GuestConfig,
    GuestKernel,
    GuestStop,
    PageAllocator,
    SevEsRuntimeData,
    __pa,
    __va,
    panic,
    register_cpu,
    this_cpu,
)
from .mem_encrypt_amd import early_set_memory_decrypted
from .set_memory import _PAGE_ENC, flush_tlb_all, lookup_address
from .sev_startup import early_snp_set_memory_shared, get_hv_features, sev_es_terminate
from .sev_vc import (
    install_vc_handler,
    native_out,
    sev_es_negotiate_protocol,
    snp_register_ghcb_early,
)
from .smp import (
    ap_entry,
    smp_init,
    smp_join_ap_workloads,
    snp_ap_entry,
    snp_ap_firmware_park,
    snp_guest_cpu,
    snp_started,
)

__all__ = [
    "LaunchImage",
    "build_launch_image",
    "make_guest_kernel",
    "guest_entry",
    "bss_decrypted_vaddr",
    "sev_enable",
    "sme_postprocess_startup",
    "setup_ghcb",
    "alloc_runtime_data",
    "init_ghcb",
    "sev_es_init_vc_handling",
    "snp_register_per_cpu_ghcb",
    "start_kernel",
    "acpi_power_off",
    "STACK_FRAME_BYTES",
]

#: Bytes of the first frame a CPU pushes on its kernel stack at entry (model: the return
#: address and frame pointer, 2 x 8 bytes).
STACK_FRAME_BYTES = 16

#: ``__PAGE_KERNEL`` without the C-bit (present, RW, accessed, dirty, global, NX).
_PAGE_KERNEL_NOENC = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL | _PAGE_NX


@dataclass
class LaunchImage:
    """What the VMM launches: ``records`` of (gpa, 4096 bytes, KVM_SEV_SNP_PAGE_TYPE_*)
    -- every page of ``[boot.image_start, boot.image_end)`` exactly once, measured and
    pre-validated through SNP_LAUNCH_UPDATE -- and the ``boot`` parameters the guest entry
    needs (CR3 = ``boot.cr3``)."""

    records: list[tuple[int, bytes, int]]
    boot: BootParams


def _direct_map_ranges(ram: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """GPA ranges [start, end) the direct map covers: each e820 RAM range widened to
    whole 2 MiB pages (the model's smallest direct-map leaf), the first MiB always
    (``init_mem_mapping`` maps the ISA range whatever e820 says), overlapping or
    touching ranges merged."""
    out: list[tuple[int, int]] = []
    for start, size in sorted(ram + [(0, 1 << 20)]):
        a, b = start // PMD_SIZE * PMD_SIZE, -(-(start + size) // PMD_SIZE) * PMD_SIZE
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def build_launch_image(config: GuestConfig) -> LaunchImage:
    """The initial guest image (model of the kernel's early page tables plus the boot
    loader's placement), from ``config``:

    * a PML4 at ``CONFIG_PHYSICAL_START`` (16 MiB);
    * the direct map at ``PAGE_OFFSET`` (0xffff888000000000) of the e820 RAM ranges
      (``config.e820``, else ``[0, ram_size)``; see :func:`_direct_map_ranges`), with
      1 GiB leaves where a whole aligned GiB is mapped, else 2 MiB leaves, C-bit set;
      holes (the 32-bit PCI hole, the gap below a relocated ram-above-4g) stay unmapped,
      as Linux maps only what e820 calls RAM (``init_range_memory_mapping``);
    * the kernel image alias at ``__START_KERNEL_map`` (0xffffffff80000000) of the launched
      region, 4 KiB leaves, C-bit set;
    * one ``.bss..decrypted`` page (``boot_ghcb_page``) and ``config.pool_pages`` (or more,
      up to the next 2 MiB) zero pages for the page allocator.

    Page tables are NORMAL pages, the rest ZERO pages.  Raises ValueError for a RAM size
    that is not 2 MiB aligned, or RAM at ``CONFIG_PHYSICAL_START`` too small for the image.
    """
    ram = config.ram_size
    if ram % PMD_SIZE or ram <= 0:
        raise ValueError(f"ram_size {ram:#x} must be a positive multiple of 2 MiB")
    e820 = list(config.e820) if config.e820 is not None else [(0, ram, E820_TYPE_RAM)]
    e820_ram = e820_ram_ranges(e820)
    direct = _direct_map_ranges(e820_ram)
    cbit = config.cbit
    enc = 1 << cbit
    start = CONFIG_PHYSICAL_START
    # Direct-map tables: one PDPT per 512 GiB slot touched, one PD per GiB partly mapped.
    pgds: set[int] = set()
    n_pd = 0
    for a, b in direct:
        for g in range(a // PUD_SIZE, -(-b // PUD_SIZE)):
            pgds.add(pgd_index(PAGE_OFFSET + g * PUD_SIZE))
            if not (a <= g * PUD_SIZE and (g + 1) * PUD_SIZE <= b):
                n_pd += 1
    dm_tables = len(pgds) + n_pd
    guess = 1 + dm_tables + 2 + 1 + config.pool_pages
    k_pts = -(-(guess * PAGE_SIZE) // PMD_SIZE) + 1
    n_tables = 1 + dm_tables + 2 + k_pts
    image_pages = n_tables + 1 + config.pool_pages
    image_size = -(-(image_pages * PAGE_SIZE) // PMD_SIZE) * PMD_SIZE
    if image_size // PMD_SIZE > k_pts:
        raise AssertionError("kernel alias PT count underestimated")
    image_end = start + image_size
    if not any(s <= start and image_end <= s + n for s, n in e820_ram):
        raise ValueError(f"RAM too small for the image ending at {image_end:#x}")

    pages: dict[int, bytearray] = {}
    nxt = start

    def table() -> int:
        nonlocal nxt
        gpa = nxt
        nxt += PAGE_SIZE
        pages[gpa] = bytearray(PAGE_SIZE)
        return gpa

    def put(tbl: int, idx: int, val: int) -> None:
        pages[tbl][idx * 8 : idx * 8 + 8] = val.to_bytes(8, "little")

    kernpg = _KERNPG_TABLE_NOENC | enc
    leaf = _PAGE_KERNEL_NOENC | enc
    pml4 = table()
    # direct map
    pdpts: dict[int, int] = {}
    pds: dict[int, int] = {}
    for lo, hi in direct:
        for gib in range(lo // PUD_SIZE, -(-hi // PUD_SIZE)):
            base = gib * PUD_SIZE
            pgd = pgd_index(PAGE_OFFSET + base)
            if pgd not in pdpts:
                pdpts[pgd] = table()
                put(pml4, pgd, pdpts[pgd] | kernpg)
            pdpt = pdpts[pgd]
            if lo <= base and base + PUD_SIZE <= hi:
                put(pdpt, pud_index(PAGE_OFFSET + base), base | leaf | _PAGE_PSE)
                continue
            if gib not in pds:
                pds[gib] = table()
                put(pdpt, pud_index(PAGE_OFFSET + base), pds[gib] | kernpg)
            for a in range(max(base, lo), min(base + PUD_SIZE, hi), PMD_SIZE):
                put(pds[gib], pmd_index(PAGE_OFFSET + a), a | leaf | _PAGE_PSE)
    # kernel image alias
    kpdpt = table()
    put(pml4, pgd_index(__START_KERNEL_map), kpdpt | kernpg)
    kpd = table()
    put(kpdpt, pud_index(__START_KERNEL_map + start), kpd | kernpg)
    for a2 in range(start, image_end, PMD_SIZE):
        pt = table()
        put(kpd, pmd_index(__START_KERNEL_map + a2), pt | kernpg)
        for a in range(a2, a2 + PMD_SIZE, PAGE_SIZE):
            put(pt, pte_index(__START_KERNEL_map + a), a | leaf)
    bss_dec = nxt
    nxt += PAGE_SIZE
    pool_start = nxt
    records: list[tuple[int, bytes, int]] = []
    for gpa in range(start, image_end, PAGE_SIZE):
        if gpa in pages:
            records.append((gpa, bytes(pages[gpa]), int(KVM_SEV_SNP_PAGE_TYPE_NORMAL)))
        else:
            records.append((gpa, bytes(PAGE_SIZE), int(KVM_SEV_SNP_PAGE_TYPE_ZERO)))
    boot = BootParams(
        cr3=pml4, image_start=start, image_end=image_end, pool_start=pool_start,
        pool_end=image_end, bss_decrypted_gpa=bss_dec,
        ram_size=sum(n for _s, n in e820_ram), e820_ram=e820_ram,
        acpi_pm1a_cnt_blk=ACPI_PM1_CNT_PORT, cbit=cbit,
        e820=[tuple(e) for e in sorted(e820)], direct_map=direct,  # type: ignore[misc]
    )
    return LaunchImage(records, boot)


def make_guest_kernel(config: GuestConfig, boot: BootParams,
                      workload: Callable[[GuestKernel, GuestPort], object] | None = None) -> GuestKernel:
    """Model-only: the :class:`GuestKernel` for a launched image, its page allocator over
    the image's pool and the unaccepted-memory bitmap (everything outside the image)."""
    from .unaccepted_memory import UnacceptedMemory

    k = GuestKernel(config=config, boot=boot, workload=workload)
    k.page_alloc = PageAllocator(boot.pool_start, boot.pool_end)
    k.unaccepted = UnacceptedMemory.for_boot(boot)
    return k


def bss_decrypted_vaddr(kernel: GuestKernel) -> int:
    """GVA of ``__start_bss_decrypted`` (the kernel-image alias of ``boot_ghcb_page``)."""
    return __START_KERNEL_map + kernel.boot.bss_decrypted_gpa


# -- boot steps ---------------------------------------------------------------------------


@traced("guest")
def sev_enable(kernel: GuestKernel) -> None:
    """Decompressor ``sev_enable(bp)`` (boot/compressed/sev.c), SEV part: read the SEV
    status MSR; with SEV-ES (MSR bit 1) negotiate the GHCB protocol (failure: terminate
    (0, GHCB_SEV_ES_PROT_UNSUPPORTED)); for SNP the hypervisor features must include
    GHCB_HV_FT_SNP (else (0, GHCB_SNP_UNSUPPORTED))."""
    cpu = this_cpu(kernel)
    kernel.sev_status = cpu.rdmsr(MSR_AMD64_SEV)
    # Negotiate the GHCB protocol version (SEV-ES and SNP only: a plain SEV guest has no
    # GHCB and never talks the MSR protocol).
    if kernel.sev_status & MSR_AMD64_SEV_ES_ENABLED and not sev_es_negotiate_protocol(kernel):
        sev_es_terminate(kernel, SEV_TERM_SET_GEN, GHCB_SEV_ES_PROT_UNSUPPORTED)
    if kernel.sev_status & MSR_AMD64_SEV_SNP_ENABLED:
        hv_features = get_hv_features(kernel)
        if not hv_features & GHCB_HV_FT_SNP and check_enabled("sev_enable:hv_ft_snp"):
            sev_es_terminate(kernel, SEV_TERM_SET_GEN, GHCB_SNP_UNSUPPORTED)


@traced("guest")
def sme_postprocess_startup(kernel: GuestKernel) -> None:
    """``sme_postprocess_startup`` (startup/map_kernel.c): make ``.bss..decrypted`` shared
    in the RMP (``early_snp_set_memory_shared``, MSR protocol) and then clear the C-bit
    in its kernel-image PTE (the RMP changes before the page table)."""
    vaddr = bss_decrypted_vaddr(kernel)
    paddr = kernel.boot.bss_decrypted_gpa
    early_snp_set_memory_shared(kernel, vaddr, paddr, 1)
    kpte, _level = lookup_address(kernel, vaddr)
    assert kpte is not None
    cpu = this_cpu(kernel)
    cpu.write_u64(kpte, cpu.read_u64(kpte) & ~_PAGE_ENC(kernel))
    flush_tlb_all(kernel)


@traced("guest")
def snp_register_per_cpu_ghcb(kernel: GuestKernel) -> None:
    """``snp_register_per_cpu_ghcb()`` (core.c): register this CPU's GHCB page GPA."""
    data = kernel.runtime_data[this_cpu(kernel).vcpu_id]
    snp_register_ghcb_early(kernel, __pa(kernel, data.ghcb_page))


@traced("guest")
def setup_ghcb(kernel: GuestKernel) -> bool:
    """``setup_ghcb()`` (core.c): negotiate the protocol (failure: terminate (0,
    GHCB_SEV_ES_GEN_REQ)); with the runtime #VC handler, register the per-CPU GHCB (SNP)
    and set ``sev_cfg.ghcbs_initialized``; otherwise zero ``boot_ghcb_page``, point
    ``boot_ghcb`` at it and register its GPA (SNP).  A guest without
    CC_ATTR_GUEST_STATE_ENCRYPT (plain SEV) has no GHCB: returns False at once.
    Returns True."""
    if not kernel.sev_status & MSR_AMD64_SEV_ES_ENABLED:
        return False
    # No GHCB use at all until both sides agree on a protocol version.
    if not sev_es_negotiate_protocol(kernel):
        sev_es_terminate(kernel, SEV_TERM_SET_GEN, GHCB_SEV_ES_GEN_REQ)
    snp = bool(kernel.sev_status & MSR_AMD64_SEV_SNP_ENABLED)
    # Once the runtime #VC handler is installed every CPU has its own GHCB page (made
    # by sev_es_init_vc_handling); only the boot GHCB is needed before that.
    if kernel.runtime_vc_handler:
        if snp:
            snp_register_per_cpu_ghcb(kernel)
        kernel.sev_cfg.ghcbs_initialized = True
        return True
    boot_ghcb = bss_decrypted_vaddr(kernel)
    # A fresh page: no stale fields or valid bits from before.
    this_cpu(kernel).write(boot_ghcb, bytes(PAGE_SIZE))
    # From here on the early code uses it instead of the MSR protocol.
    kernel.boot_ghcb = boot_ghcb
    # Under SNP the host accepts GHCB exits only at a GPA the guest registered.
    if snp:
        snp_register_ghcb_early(kernel, __pa(kernel, boot_ghcb))
    return True


@traced("guest")
def alloc_runtime_data(kernel: GuestKernel, cpu: int) -> None:
    """``alloc_runtime_data(cpu)`` (core.c): ``struct sev_es_runtime_data`` from memblock
    (model: two pool pages, the GHCB page and the backup GHCB).  Panics "Can't allocate
    SEV-ES runtime data" when the pool is empty."""
    assert kernel.page_alloc is not None
    g = kernel.page_alloc.alloc_page()
    b = kernel.page_alloc.alloc_page()
    if g is None or b is None:
        panic(kernel, "Can't allocate SEV-ES runtime data")
        return
    kernel.runtime_data[cpu] = SevEsRuntimeData(__va(kernel, g), __va(kernel, b))


@traced("guest")
def init_ghcb(kernel: GuestKernel, cpu: int) -> None:
    """``init_ghcb(cpu)`` (core.c): map the GHCB page decrypted with
    ``early_set_memory_decrypted`` (panic "Can't map GHCBs unencrypted" on failure), zero
    it, clear ``ghcb_active`` and ``backup_ghcb_active``."""
    data = kernel.runtime_data[cpu]
    err = early_set_memory_decrypted(kernel, data.ghcb_page, PAGE_SIZE)
    if err:
        panic(kernel, "Can't map GHCBs unencrypted")
    this_cpu(kernel).write(data.ghcb_page, bytes(PAGE_SIZE))
    data.ghcb_active = False
    data.backup_ghcb_active = False


@traced("guest")
def sev_es_init_vc_handling(kernel: GuestKernel) -> None:
    """``sev_es_init_vc_handling()`` (core.c): SNP needs GHCB_HV_FT_SNP (else terminate (0,
    GHCB_SNP_UNSUPPORTED)); for every possible CPU ``alloc_runtime_data`` and
    ``init_ghcb``; then the runtime #VC handler becomes the initial one.  Nothing without
    CC_ATTR_GUEST_STATE_ENCRYPT (plain SEV)."""
    if not kernel.sev_status & MSR_AMD64_SEV_ES_ENABLED:
        return
    if kernel.sev_status & MSR_AMD64_SEV_SNP_ENABLED:
        kernel.sev_hv_features = get_hv_features(kernel)
        if (not kernel.sev_hv_features & GHCB_HV_FT_SNP
                and check_enabled("sev_es_init_vc_handling:hv_ft_snp")):
            sev_es_terminate(kernel, SEV_TERM_SET_GEN, GHCB_SNP_UNSUPPORTED)
    # One GHCB page (and its backup) per possible CPU.
    for cpu in range(kernel.config.nr_cpus):
        alloc_runtime_data(kernel, cpu)
        init_ghcb(kernel, cpu)
    # APs start after this point, so they only ever see the runtime handler.
    kernel.runtime_vc_handler = True


@traced("guest")
def start_kernel(kernel: GuestKernel) -> None:
    """Model-only: the BSP's boot, in Linux order -- ``sev_enable`` (decompressor),
    ``sme_postprocess_startup``, the early #VC handler, ``setup_ghcb`` (what the first #VC
    does), ``kvm_init_platform``, the unaccepted-memory setup (and eager acceptance),
    ``sev_es_init_vc_handling``, ``cpu_init_exception_handling`` -> ``setup_ghcb``."""
    from .kvm import kvm_init_platform
    from .unaccepted_memory import accept_memory

    sev_enable(kernel)
    sme_postprocess_startup(kernel)
    install_vc_handler(kernel)
    setup_ghcb(kernel)  # the first #VC's work; returns at once for plain SEV (no #VC)
    kvm_init_platform(kernel)
    sev_es_init_vc_handling(kernel)
    # trap_init() -> cpu_init_exception_handling() -> setup_ghcb()
    install_vc_handler(kernel)
    setup_ghcb(kernel)
    if kernel.config.eager_accept:
        for start, size in kernel.boot.e820_ram:
            accept_memory(kernel, start, size)


@traced("guest")
def acpi_power_off(kernel: GuestKernel) -> None:
    """``acpi_power_off()`` -> ``acpi_enter_sleep_state(ACPI_STATE_S5)``, reduced to the
    PM1a control write of SLP_TYP(S5) | SLP_EN (0x2000 on QEMU q35) to the FADT's PM1a
    control port (0x604): an ``outw`` that is a #VC IOIO under SNP.  Then HLT forever."""
    kernel.powered_off = True
    value = (ACPI_SLP_TYP_S5 << ACPI_BITPOSITION_SLEEP_TYPE) | ACPI_BITMASK_SLEEP_ENABLE
    native_out(kernel, kernel.boot.acpi_pm1a_cnt_blk, value, 2)
    cpu = this_cpu(kernel)
    while True:
        cpu.hlt()


def guest_entry(kernel: GuestKernel) -> Callable[[GuestPort], None]:
    """The code each vCPU starts running (what ``Platform.install_guest_code`` wants).

    Every vCPU loads CR3 = ``kernel.boot.cr3`` and allocates its kernel stack page, the
    page that holds the on-stack ``struct snp_psc_desc`` of ``set_pages_state``
    (arch/x86/coco/sev/core.c, v6.5+), and writes its first frame there
    (``STACK_FRAME_BYTES`` at the top): a real CPU has used its stack long before its
    first page state change, so the descriptor's write takes no #NPF.  vCPU 0 (the BSP) runs ``start_kernel``, ``smp_init`` (the APs may start), then
    ``kernel.workload(kernel, cpu)`` (result in ``kernel.workload_result``), waits for the
    APs' workloads (``smp_join_ap_workloads``), then ``acpi_power_off``.  An AP of an
    SNP guest first parks in the firmware (:func:`snpsim.guest.smp.snp_ap_firmware_park`)
    until the BSP's AP creation starts it again on the kernel's VMSA, at the trampoline:
    then :func:`snpsim.guest.smp.snp_ap_entry`.  APs of other guests run
    :func:`snpsim.guest.smp.ap_entry` (start-up, ``kernel.ap_workloads[cpu]``, HLT).
    A panic (:class:`GuestStop`) makes the entry return, which the platform reports as
    a shutdown exit; a livelock (:class:`snpsim.trace.progress.Livelock`) passes through
    to the VMM, which stops the VM.
    """

    def entry(cpu: GuestPort) -> None:
        register_cpu(kernel, cpu)
        try:
            started = snp_started(cpu)
            if cpu.vcpu_id != 0 and not started and snp_guest_cpu(cpu):
                snp_ap_firmware_park(cpu)
                return
            cpu.write_cr3(kernel.boot.cr3)
            assert kernel.page_alloc is not None
            stack = kernel.page_alloc.alloc_page()
            if stack is None:
                panic(kernel, "out of memory for the kernel stack")
                return
            stack_va = __va(kernel, stack)
            kernel.psc_desc_page[cpu.vcpu_id] = stack_va
            # The CPU runs on this stack from here on: its first frame is written now, so
            # a later on-stack PSC descriptor lands on a page already faulted in, as on
            # a real kernel stack (no #NPF or guest_memfd prepare inside the PSC).
            cpu.write(stack_va + PAGE_SIZE - STACK_FRAME_BYTES, bytes(STACK_FRAME_BYTES))
            if cpu.vcpu_id != 0:
                if started:
                    snp_ap_entry(kernel, cpu)
                else:
                    ap_entry(kernel, cpu)
                return
            start_kernel(kernel)
            smp_init(kernel)
            if kernel.workload is not None:
                kernel.workload_result = kernel.workload(kernel, cpu)
            smp_join_ap_workloads(kernel)
            acpi_power_off(kernel)
        except GuestStop:
            return

    return entry
