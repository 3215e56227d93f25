# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The ``boot`` scenario: the page-state work of a Linux SEV-SNP guest's boot, real sizes.

What the guest model's own boot (``guest/boot.py`` ``start_kernel``) already does runs
first: protocol negotiation, ``.bss..decrypted``'s ``boot_ghcb_page`` made shared, the
boot GHCB, and every possible CPU's GHCB page made shared through the GHCB MSR protocol
(``init_ghcb`` -> ``early_set_memory_decrypted``), then registered.  This workload adds,
in Linux's boot order (v6.16/6.17; each step cites its source):

1. ``.bss..decrypted`` at its real size.  The linker script pads the section to
   ``PMD_SIZE`` (``arch/x86/kernel/vmlinux.lds.S`` ``BSS_DECRYPTED``) and
   ``sme_postprocess_startup`` (``arch/x86/boot/startup/map_kernel.c``) makes every
   page of it shared with ``early_snp_set_memory_shared`` -- one MSR-protocol PSC per
   page.  The model's kernel image holds only ``boot_ghcb_page`` there (guest/boot.py,
   model choice), so this step converts the other 511 pages of a 2 MiB-aligned block
   allocated for it, with ``early_set_memory_decrypted`` (which makes the same RMP change
   per page, then clears the C-bit).  Of those pages ``BSS_DECRYPTED_USED_PAGES`` hold
   data (``hv_clock_boot``, ``wall_clock``: ``arch/x86/kernel/kvmclock.c``); the rest is
   re-encrypted at the end of boot (step 8).
2. Per-CPU areas (``setup_per_cpu_areas`` -> ``pcpu_embed_first_chunk``): one unit of
   ``PCPU_UNIT_SIZE`` per possible CPU from memblock (accepted on allocation).
3. ``sev_map_percpu_data`` (``arch/x86/kernel/kvm.c``, from ``kvm_smp_prepare_boot_cpu``):
   for every possible CPU, ``early_set_memory_decrypted`` of the page holding
   ``apf_reason``, ``steal_time`` and ``kvm_apic_eoi`` (``DEFINE_PER_CPU_DECRYPTED``:
   one page-aligned ``.data..percpu..decrypted`` page per CPU); three calls per CPU,
   the second and third find the page already decrypted (``__set_clr_pte_enc``: "If prot
   is same then do nothing").
4. The swiotlb bounce buffer: sized by ``guest/swiotlb.py`` as the kernel sizes it for an
   SEV guest (``mem_encrypt_setup_arch``: 6 % of ``memblock_phys_mem_size()``, clamped
   to [64 MiB, 1 GiB], rounded to the swiotlb areas), allocated with
   ``memblock_alloc_low`` (``swiotlb_memblock_alloc``, ``kernel/dma/swiotlb.c``; SEV
   guests set ``SWIOTLB_FORCE``, not ``SWIOTLB_ANY``) and accepted.
5. ``kvmclock_init_mem`` (``arch/x86/kernel/kvmclock.c``): with more than
   ``HVC_BOOT_ARRAY_SIZE`` (64) CPUs, the extra ``pvclock_vsyscall_time_info`` entries
   (64 bytes each) are allocated and made shared with ``set_memory_decrypted``.
6. ``mem_encrypt_init`` -> ``swiotlb_update_mem_attributes`` (``kernel/dma/swiotlb.c``):
   ``set_memory_decrypted`` of the whole pool (GHCB PSC, 2M entries where aligned).
7. ``dma_atomic_pool_init`` (``kernel/dma/pool.c``): three atomic pools (GFP_KERNEL,
   GFP_DMA, GFP_DMA32, as log 01 prints for 6.16) of ``128 KiB per 1 GiB`` (min 128 KiB,
   at most ``MAX_PAGE_ORDER`` pages), each ``alloc_pages(get_order(size))`` and
   ``set_memory_decrypted`` of the ``1 << order`` pages (``atomic_pool_expand``).
8. virtio rings: QEMU's default virtio-net (one rx and one tx queue of 256 entries and a
   control queue of 64) and virtio-blk (one queue of 256 entries per vCPU: QEMU's
   ``num-queues`` default since 5.2); each split ring is ``vring_size(num,
   SMP_CACHE_BYTES)`` bytes (``include/uapi/linux/virtio_ring.h``; modern virtio-pci
   aligns to ``SMP_CACHE_BYTES`` = 64) from ``dma_alloc_coherent``.
9. ``free_initmem`` -> ``mem_encrypt_free_decrypted_mem`` (``arch/x86/mm/mem_encrypt_amd.c``):
   ``set_memory_encrypted`` of the unused part of ``.bss..decrypted``, then freed.

Lazy acceptance: every range above comes from :class:`~snpsim.scenarios.memblock.BootMemory`,
which accepts what it hands out (memblock: the exact range; the page allocator: 4 MiB
blocks).  Memory nothing allocates stays unaccepted, as in a real guest after boot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from snpsim.guest.kernel import GuestKernel, __va
from snpsim.guest.mem_encrypt_amd import early_set_memory_decrypted
from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
from snpsim.guest.swiotlb import swiotlb_sizing_for_sev
from snpsim.hw.ports import GuestPort
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE, PMD_SIZE
from snpsim.trace.record import traced

from .dma import dma_alloc_coherent
from .memblock import MAX_PAGE_ORDER, BootMemory, get_order

__all__ = [
    "BootPlan",
    "BootResult",
    "boot_workload",
    "vring_size",
    "atomic_pool_size",
    "PCPU_UNIT_SIZE",
    "BSS_DECRYPTED_USED_PAGES",
    "HVC_BOOT_ARRAY_SIZE",
    "SMP_CACHE_BYTES",
]

#: Per-CPU unit size, bytes: "percpu: Embedded 83 pages/cpu s217088 r8192 d114688
#: u524288" in log 01 (6.16, 4 CPUs); it depends on the kernel configuration.
PCPU_UNIT_SIZE = 512 << 10
#: Pages of ``.bss..decrypted`` that hold data: ``boot_ghcb_page`` (converted by
#: guest/boot.py), ``hv_clock_boot`` (one page) and ``wall_clock`` (kvmclock.c).
BSS_DECRYPTED_USED_PAGES = 3
#: ``arch/x86/kernel/kvmclock.c``: ``PAGE_SIZE / sizeof(struct pvclock_vsyscall_time_info)``.
HVC_BOOT_ARRAY_SIZE = PAGE_SIZE // 64
#: ``arch/x86/include/asm/cache.h``: ``L1_CACHE_BYTES`` (1 << 6) on x86-64.
SMP_CACHE_BYTES = 64
_ATOMIC_POOLS = ("GFP_KERNEL", "GFP_KERNEL|GFP_DMA", "GFP_KERNEL|GFP_DMA32")


def vring_size(num: int, align: int) -> int:
    """``vring_size(num, align)`` (``include/uapi/linux/virtio_ring.h``): bytes of a split
    ring of ``num`` entries: descriptors (16 B each) and the avail ring, aligned to
    ``align``, then the used ring (8 B per element)."""
    return ((16 * num + 2 * (3 + num) + align - 1) & ~(align - 1)) + 2 * 3 + 8 * num


def atomic_pool_size(memory_bytes: int) -> int:
    """``dma_atomic_pool_init``'s default pool size for ``memory_bytes`` of RAM (taken
    as ``totalram_pages() << PAGE_SHIFT``): 128 KiB per GiB, at least 128 KiB, at most
    ``MAX_PAGE_ORDER`` pages (``kernel/dma/pool.c``)."""
    pages = (memory_bytes >> PAGE_SHIFT) // ((1 << 30) // (128 << 10))
    pages = min(pages, 1 << MAX_PAGE_ORDER)
    return max(pages << PAGE_SHIFT, 128 << 10)


@dataclass(frozen=True)
class BootPlan:
    """The sizes of one boot.  ``memory_bytes`` (``memblock_phys_mem_size()``),
    ``nr_cpus`` (possible CPUs), ``kernel_version`` (for the swiotlb rules),
    ``swiotlb_param`` (``swiotlb=``), ``virtio_queues``: ring sizes (entries) of the
    virtio queues, in probe order (default: see the module doc)."""

    memory_bytes: int
    nr_cpus: int
    kernel_version: str = "6.16"
    swiotlb_param: str | None = None
    virtio_queues: tuple[int, ...] | None = None

    def queues(self) -> tuple[int, ...]:
        """The virtio queue sizes: the given ones, or net rx/tx/ctrl + one blk per CPU."""
        if self.virtio_queues is not None:
            return self.virtio_queues
        return (256, 256, 64) + (256,) * self.nr_cpus


@dataclass
class BootResult:
    """What the boot workload did (bytes unless said): ``swiotlb_bytes`` (pool made
    shared), ``swiotlb_gpa``, ``swiotlb_ret`` (``set_memory_decrypted``'s result),
    ``bss_decrypted_gpa``, ``percpu_pages`` (decrypted per-CPU pages), ``atomic_pools``
    (bytes per pool), ``virtio_rings`` (bytes per ring), ``kvmclock_bytes``,
    ``accepted`` (bytes the boot's allocations accepted), ``errors``, ``phase``."""

    swiotlb_bytes: int = 0
    swiotlb_gpa: int | None = None
    swiotlb_ret: int | None = None
    swiotlb_messages: tuple[str, ...] = ()
    bss_decrypted_gpa: int | None = None
    percpu_pages: int = 0
    atomic_pools: list[int] = field(default_factory=list)
    virtio_rings: list[int] = field(default_factory=list)
    kvmclock_bytes: int = 0
    accepted: int = 0
    errors: list[str] = field(default_factory=list)
    phase: str = ""


@traced("guest")
def sev_map_percpu_data(kernel: GuestKernel, percpu: list[int]) -> None:
    """``sev_map_percpu_data()`` (``arch/x86/kernel/kvm.c``): for each possible CPU,
    ``__set_percpu_decrypted`` of ``apf_reason`` (64 B), ``steal_time`` (64 B) and
    ``kvm_apic_eoi`` (8 B), all in the CPU's decrypted per-CPU page at GVA ``percpu[cpu]``
    (offsets 0, 64, 128).  ``__set_percpu_decrypted`` aligns the start down to a page."""
    for base in percpu:
        for offset, size in ((0, 64), (64, 64), (128, 8)):
            ptr = base + offset
            start = ptr & ~(PAGE_SIZE - 1)
            early_set_memory_decrypted(kernel, start, ptr + size - start)


@traced("guest")
def swiotlb_update_mem_attributes(kernel: GuestKernel, vaddr: int, nbytes: int) -> int:
    """``swiotlb_update_mem_attributes()`` (``kernel/dma/swiotlb.c``):
    ``set_memory_decrypted((unsigned long)mem->vaddr, PFN_UP(bytes))``."""
    return set_memory_decrypted(kernel, vaddr, (nbytes + PAGE_SIZE - 1) >> PAGE_SHIFT)


@traced("guest")
def mem_encrypt_free_decrypted_mem(kernel: GuestKernel, vaddr: int, vaddr_end: int) -> int:
    """``mem_encrypt_free_decrypted_mem()`` (``arch/x86/mm/mem_encrypt_amd.c``): the unused
    part of ``.bss..decrypted``, GVAs [vaddr, vaddr_end), made private again with
    ``set_memory_encrypted`` before it is freed ("failed to free unused decrypted
    pages" on failure)."""
    r = set_memory_encrypted(kernel, vaddr, (vaddr_end - vaddr) >> PAGE_SHIFT)
    if r:
        kernel.warn("failed to free unused decrypted pages")
    return r


def boot_workload(plan: BootPlan, result: BootResult,
                  reserved: tuple[tuple[int, int], ...] = ()
                  ) -> Callable[[GuestKernel, GuestPort], None]:
    """The ``boot`` scenario's guest workload for ``plan`` (see the module doc); results
    go to ``result``.  ``reserved``: GPA ranges that are not RAM (MMIO windows)."""

    def fail(msg: str) -> None:
        result.errors.append(msg)

    def workload(kernel: GuestKernel, cpu: GuestPort) -> None:
        mem = BootMemory(kernel, reserved)
        # 1. .bss..decrypted: the rest of the 2 MiB section, per page (MSR protocol).
        result.phase = "boot: .bss..decrypted"
        bss = mem.memblock_alloc(PMD_SIZE, PMD_SIZE)
        if bss is None:
            return fail("no memory for .bss..decrypted")
        result.bss_decrypted_gpa = bss
        bss_va = int(__va(kernel, bss))
        # The first page stands for boot_ghcb_page, already shared by guest/boot.py.
        if early_set_memory_decrypted(kernel, bss_va + PAGE_SIZE, PMD_SIZE - PAGE_SIZE):
            return fail("early_set_memory_decrypted(.bss..decrypted) failed")
        # 2. per-CPU areas.
        result.phase = "boot: per-CPU areas"
        first_chunk = mem.memblock_alloc(PCPU_UNIT_SIZE * plan.nr_cpus, PMD_SIZE)
        if first_chunk is None:
            return fail("no memory for the per-CPU areas")
        # The decrypted per-CPU page: the unit's second page (after .data..percpu..first).
        percpu = [int(__va(kernel, first_chunk + c * PCPU_UNIT_SIZE + PAGE_SIZE))
                  for c in range(plan.nr_cpus)]
        # 3. sev_map_percpu_data.
        result.phase = "boot: sev_map_percpu_data"
        sev_map_percpu_data(kernel, percpu)
        result.percpu_pages = len(percpu)
        # 4. swiotlb: size, allocate below 4 GiB, accepted.
        result.phase = "boot: swiotlb allocation"
        sizing = swiotlb_sizing_for_sev(plan.memory_bytes, plan.nr_cpus,
                                        kernel_version=plan.kernel_version,
                                        swiotlb_param=plan.swiotlb_param)
        result.swiotlb_messages = sizing.messages
        tlb = None
        if not sizing.disabled:
            tlb = mem.memblock_alloc_low(sizing.bytes, PAGE_SIZE)
            if tlb is None:
                fail(f"swiotlb: cannot allocate {sizing.bytes} bytes below 4 GiB")
        # 5. kvmclock_init_mem: more CPUs than the boot array holds.
        if plan.nr_cpus > HVC_BOOT_ARRAY_SIZE:
            result.phase = "boot: kvmclock"
            ncpus = plan.nr_cpus - HVC_BOOT_ARRAY_SIZE
            size = (ncpus * 64 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
            order = get_order(size)
            hv = mem.alloc_pages(order)
            if hv is not None and not set_memory_decrypted(kernel, int(__va(kernel, hv)),
                                                           1 << order):
                result.kvmclock_bytes = PAGE_SIZE << order
        # 6. mem_encrypt_init -> swiotlb_update_mem_attributes.
        if tlb is not None:
            result.phase = f"boot: swiotlb {sizing.bytes >> 20} MiB made shared"
            result.swiotlb_gpa = tlb
            result.swiotlb_ret = swiotlb_update_mem_attributes(kernel, int(__va(kernel, tlb)),
                                                               sizing.bytes)
            if result.swiotlb_ret == 0:
                result.swiotlb_bytes = sizing.bytes
            else:
                fail(f"swiotlb_update_mem_attributes returned {result.swiotlb_ret}")
        # 7. dma_atomic_pool_init.
        result.phase = "boot: DMA atomic pools"
        pool = atomic_pool_size(plan.memory_bytes)
        for _gfp in _ATOMIC_POOLS:
            order = min(get_order(pool), MAX_PAGE_ORDER)
            page = mem.alloc_pages(order)
            if page is None:
                fail("DMA: failed to allocate atomic pool")
                continue
            if set_memory_decrypted(kernel, int(__va(kernel, page)), 1 << order):
                fail("DMA: atomic pool: set_memory_decrypted failed")
                continue
            result.atomic_pools.append(PAGE_SIZE << order)
        # 8. virtio rings.
        result.phase = "boot: virtio rings"
        for num in plan.queues():
            buf = dma_alloc_coherent(kernel, mem, vring_size(num, SMP_CACHE_BYTES))
            if buf is None:
                fail(f"virtio: dma_alloc_coherent of a {num}-entry ring failed")
                continue
            result.virtio_rings.append(buf.size)
        # 9. free_initmem -> mem_encrypt_free_decrypted_mem.
        result.phase = "boot: free unused .bss..decrypted"
        unused = bss_va + BSS_DECRYPTED_USED_PAGES * PAGE_SIZE
        mem_encrypt_free_decrypted_mem(kernel, unused, bss_va + PMD_SIZE)
        result.accepted = mem.accepted

    return workload
