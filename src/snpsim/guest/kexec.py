# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""kexec and kdump: every shared page made private again before the next kernel runs.

Mirrors, for an SNP guest at VMPL0:

* the callers -- ``kernel_kexec`` (``kernel/kexec_core.c``: ``kexec_in_progress``, then
  ``machine_shutdown``), ``native_machine_shutdown`` (``arch/x86/kernel/reboot.c``:
  ``enc_kexec_begin`` while every CPU still runs, ``stop_other_cpus``,
  ``enc_kexec_finish``), the crash path ``__crash_kexec`` -> ``native_machine_crash_shutdown``
  (``arch/x86/kernel/crash.c`` at 01f492e1: interrupts off, ``crash_smp_send_stop`` shoots
  the other CPUs down with an NMI, *then* ``enc_kexec_begin`` and ``enc_kexec_finish``,
  both unconditionally) and ``kdump_nmi_callback`` on the CPUs shot down;
* the AMD hooks ``x86_platform.guest.enc_kexec_begin/finish`` = ``snp_kexec_begin`` /
  ``snp_kexec_finish`` (installed by ``sme_early_init``, ``arch/x86/mm/mem_encrypt_amd.c``
  v6.11+) and their helpers ``set_pte_enc``, ``unshare_all_memory`` and
  ``shutdown_all_aps`` (``arch/x86/coco/sev/core.c`` at 00d25566, v6.16/6.17, with the
  fix for a 2 MiB leaf holding a GHCB: the skip test is ``addr <= ghcb < addr + size``
  and the GHCB's leaf is converted from its aligned base);
* ``set_memory_enc_stop_conversion`` is in :mod:`snpsim.guest.set_memory`.

What stays shared (docs/guest.md "kexec and kdump"): after a kexec nothing the guest
shares through ``set_memory_decrypted`` (the direct map) or ``.bss..decrypted`` (the
kernel-image alias) stays shared -- in the RMP, in KVM's attributes (each PSC goes
through the VMM) or in the direct map.  Linux leaves: the PTEs of other aliases
(vmalloc, ``vmap``) with C=0, since the walk covers only the direct map (the next
kernel builds new page tables); and, on the crash path, a page whose conversion another
CPU (or the crashing one) had in flight, caught between its PSC and its PTE change
(``snp_kexec_begin`` only reports the race: "Failed to stop shared<->private
conversions").  The running CPU's own VMSA stays a VMSA page (it is only marked
offline for makedumpfile).

Model choices: the next kernel is not modelled -- ``machine_kexec`` records
``kernel.kexec`` and halts the CPU for good, so the run ends "halted" with
``RunOutcome.kexec`` set; ``stop_other_cpus`` joins the APs' workloads instead of
interrupting them (conversions are refused with -EBUSY by then anyway);
``migrate_to_reboot_cpu`` is not modelled (the kexec runs on the CPU that asked);
device shutdown, ``crash_save_cpu`` and the purgatory are not modelled.
"""

from __future__ import annotations

import errno

from snpsim.spec.exit_codes import SVM_VMGEXIT_AP_DESTROY
from snpsim.spec.msr_index import MSR_AMD64_SEV_SNP_ENABLED
from snpsim.spec.page_64_types import PAGE_OFFSET
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE
from snpsim.trace.record import traced

from .kernel import GuestKernel, __pa, this_cpu
from .mem_encrypt_amd import prepare_pte_enc, set_pte_enc_mask
from .set_memory import (
    _PAGE_ENC,
    flush_tlb_all,
    lookup_address,
    pg_level_to_pfn,
    set_memory_enc_stop_conversion,
)

__all__ = [
    "set_pte_enc",
    "unshare_all_memory",
    "snp_kexec_begin",
    "shutdown_all_aps",
    "snp_kexec_finish",
    "stop_other_cpus",
    "native_machine_shutdown",
    "crash_smp_send_stop",
    "kdump_nmi_callback",
    "native_machine_crash_shutdown",
    "machine_kexec",
    "kernel_kexec",
    "__crash_kexec",
]


def _snp(kernel: GuestKernel) -> bool:
    """``cc_platform_has(CC_ATTR_GUEST_SEV_SNP)``."""
    return bool(kernel.sev_status & MSR_AMD64_SEV_SNP_ENABLED)


def _level_size(level: int) -> int:
    """``page_level_size(level)`` for PG_LEVEL_4K (1) up to PG_LEVEL_512G (4), the level
    ``lookup_address`` reports for an absent top-level entry: bytes."""
    return 1 << (PAGE_SHIFT + 9 * (level - 1))


def _pte_val(kernel: GuestKernel, kpte: int | None) -> int:
    """Model-only: the entry at GVA ``kpte`` (0, i.e. ``pte_none``, when there is none)."""
    return 0 if kpte is None else this_cpu(kernel).read_u64(kpte)


def _pte_decrypted(kernel: GuestKernel, val: int) -> bool:
    """``pte_decrypted(pte)``: ``cc_mkdec(pte) == pte``, i.e. the C-bit is clear."""
    return not val & _PAGE_ENC(kernel)


@traced("guest")
def set_pte_enc(kernel: GuestKernel, kpte: int, level: int, va: int) -> None:
    """``set_pte_enc(kpte, level, va)`` (core.c): ``prepare_pte_enc`` (the leaf's PFN and
    its protection with ``_PAGE_ENC``, the leaf flushed from the caches) then
    ``set_pte_enc_mask``: the leaf at GVA ``kpte`` (``level`` PG_LEVEL_*) maps the same
    frames encrypted.  ``va`` is the GVA the leaf maps (its base).

    Linux quirk kept: ``set_pte_enc_mask`` runs whatever ``prepare_pte_enc`` found, from
    a descriptor that starts zeroed, so a leaf whose frame is PFN 0 is overwritten with
    an empty entry (``pfn_pte(0, 0)``); an already encrypted leaf is rewritten as is."""
    pfn = pg_level_to_pfn(kernel, level, kpte)
    change = prepare_pte_enc(kernel, kpte, level, True)
    if change is not None:
        pfn, new_prot, _pa, _size = change
        set_pte_enc_mask(kernel, kpte, pfn, new_prot)
    elif pfn == 0:
        set_pte_enc_mask(kernel, kpte, 0, 0)


def _holds_ghcb(kernel: GuestKernel, addr: int, size: int) -> bool:
    """Model-only: some possible CPU's GHCB page lies in the leaf ``[addr, addr + size)``
    (GVAs), the test of ``unshare_all_memory`` (00d25566: ``addr <= ghcb < addr + size``)."""
    return any(addr <= data.ghcb_page < addr + size for data in kernel.runtime_data.values())


@traced("guest")
def unshare_all_memory(kernel: GuestKernel) -> None:
    """``unshare_all_memory()`` (core.c): make private again every leaf of the direct map
    ``[PAGE_OFFSET, PAGE_OFFSET + get_max_mapped())`` that is present and mapped
    decrypted -- ``set_pte_enc`` first, then ``snp_set_memory_private`` over the whole
    leaf (4 KiB, 2 MiB or 1 GiB of it) -- except a leaf holding a possible CPU's GHCB,
    which ``snp_kexec_finish`` does last.  Then ``.bss..decrypted`` from
    ``__start_bss_decrypted`` to ``__start_bss_decrypted_unused`` through its kernel-image
    alias: each decrypted page's PTE, then one ``snp_set_memory_private`` over the whole
    used part (pages already private included).  Then ``__flush_tlb_all``.

    Cost: one ``lookup_address`` per leaf, so proportional to the direct map's leaves
    (2 MiB and 1 GiB leaves where nothing was split), not to its pages.  Model:
    ``.bss..decrypted`` is one page (``boot.bss_decrypted_gpa``), so
    ``__start_bss_decrypted_unused`` is one page after its start."""
    from .boot import bss_decrypted_vaddr
    from .sev_core import snp_set_memory_private

    # THE DIRECT MAP: leaf by leaf; holes (no entry) and encrypted leaves are skipped.
    addr = PAGE_OFFSET
    end = PAGE_OFFSET + (kernel.boot.max_pfn_mapped << PAGE_SHIFT)
    while addr < end:
        kpte, level = lookup_address(kernel, addr)
        size = _level_size(level)
        val = _pte_val(kernel, kpte)
        if kpte is not None and val and _pte_decrypted(kernel, val) and not _holds_ghcb(kernel, addr, size):
            set_pte_enc(kernel, kpte, level, addr)
            snp_set_memory_private(kernel, addr, size >> PAGE_SHIFT)
        addr += size

    # .BSS..DECRYPTED: its PTEs one page at a time, then the RMP for the whole used part.
    start = bss_decrypted_vaddr(kernel)
    unused = start + PAGE_SIZE
    for va in range(start, unused, PAGE_SIZE):
        kpte, level = lookup_address(kernel, va)
        val = _pte_val(kernel, kpte)
        if kpte is None or not val or not _pte_decrypted(kernel, val):
            continue
        set_pte_enc(kernel, kpte, level, va)
    snp_set_memory_private(kernel, start, (unused - start) >> PAGE_SHIFT)

    flush_tlb_all(kernel)


@traced("guest")
def snp_kexec_begin(kernel: GuestKernel) -> None:
    """``snp_kexec_begin()`` (core.c, ``x86_platform.guest.enc_kexec_begin``): SNP only;
    stop new shared<->private conversions with ``set_memory_enc_stop_conversion`` --
    which on the crash path is only a try-lock -- and when that fails log the kernel's
    warning, "Failed to stop shared<->private conversions", and go on."""
    if not _snp(kernel):
        return
    if not set_memory_enc_stop_conversion(kernel):
        kernel.warn("Failed to stop shared<->private conversions")


@traced("guest")
def shutdown_all_aps(kernel: GuestKernel) -> None:
    """``shutdown_all_aps()`` (core.c): for every CPU with a guest-made VMSA page
    (``per_cpu(sev_vmsa)``, here ``kernel.sev_vmsa``): the running CPU's cannot lose its
    VMSA bit while it runs, so its page is only marked offline (``__SetPageOffline``:
    ``kernel.offline_pfns``) for makedumpfile; any other CPU is kicked out of the guest
    with ``vmgexit_ap_control(SVM_VMGEXIT_AP_DESTROY)`` and its page cleared of the VMSA
    bit (``snp_cleanup_vmsa``).  The BSP and CPUs started without a guest VMSA have
    nothing to undo."""
    from .sev_core import snp_cleanup_vmsa, vmgexit_ap_control

    me = this_cpu(kernel).vcpu_id
    for cpu, vmsa in sorted(kernel.sev_vmsa.items()):
        if cpu == me:
            kernel.offline_pfns.add(__pa(kernel, vmsa) >> PAGE_SHIFT)
            continue
        # Model: the APIC ID of a CPU is its vCPU index (cpuid_to_apicid[]).
        if vmgexit_ap_control(kernel, SVM_VMGEXIT_AP_DESTROY, vmsa, cpu) == 0:
            # The host will not run it again: wherever it was (in the NMI handler's halt
            # after a crash, or not yet back from its last exit), it is stopped for good.
            kernel.ap_state[cpu] = "stopped"
        snp_cleanup_vmsa(kernel, vmsa, cpu)


@traced("guest")
def snp_kexec_finish(kernel: GuestKernel) -> None:
    """``snp_kexec_finish()`` (core.c, ``x86_platform.guest.enc_kexec_finish``): SNP only;
    ``shutdown_all_aps``, ``unshare_all_memory``; then ``boot_ghcb`` = NULL and
    ``sev_cfg.ghcbs_initialized`` = false, so that every later page state change goes
    through the MSR protocol; then each possible CPU's GHCB leaf, from its base (the
    leaf can be 2 MiB): ``set_pte_enc`` and ``snp_set_memory_private`` over the leaf.
    From here on no GHCB exit is possible until the next kernel sets one up."""
    from .sev_core import snp_set_memory_private

    if not _snp(kernel):
        return
    shutdown_all_aps(kernel)
    unshare_all_memory(kernel)

    # THE GHCBS LAST: they carried every PSC above, and the MSR protocol takes over now.
    kernel.boot_ghcb = None
    kernel.sev_cfg.ghcbs_initialized = False
    for _cpu, data in sorted(kernel.runtime_data.items()):
        kpte, level = lookup_address(kernel, data.ghcb_page)
        if kpte is None:
            continue  # not in Linux, whose GHCBs are always mapped
        size = _level_size(level)
        base = data.ghcb_page & ~(size - 1)
        set_pte_enc(kernel, kpte, level, base)
        snp_set_memory_private(kernel, base, size >> PAGE_SHIFT)


# -- the callers: kexec and kdump -------------------------------------------------------------


@traced("guest")
def stop_other_cpus(kernel: GuestKernel) -> None:
    """``stop_other_cpus()`` (smp_ops, ``native_stop_other_cpus``): every other CPU stops
    and halts.  Model: the other APs' workloads are joined
    (:func:`snpsim.guest.smp.smp_join_ap_workloads`), then every other CPU is marked
    stopped and ``kernel.stopping_cpu`` set, so a CPU still running (the BSP, when an AP
    kexecs) halts at its next spin-wait or return from a VMGEXIT; Linux interrupts them
    with the REBOOT vector instead."""
    from .smp import smp_join_ap_workloads

    me = this_cpu(kernel).vcpu_id
    smp_join_ap_workloads(kernel, exclude=me)
    kernel.stopping_cpu = me  # a CPU still running (the BSP, when an AP kexecs) halts
    for cpu in range(kernel.config.nr_cpus):
        if cpu != me:
            kernel.ap_state[cpu] = "stopped"


@traced("guest")
def native_machine_shutdown(kernel: GuestKernel) -> None:
    """``native_machine_shutdown()`` (reboot.c): with ``kexec_in_progress``,
    ``enc_kexec_begin`` first, while the other CPUs still run and a conversion in flight
    can finish; ``stop_other_cpus``; then ``enc_kexec_finish``.  (The IO-APIC, LAPIC,
    HPET and IOMMU shutdowns in between are not modelled.)"""
    if kernel.kexec_in_progress:
        snp_kexec_begin(kernel)
    stop_other_cpus(kernel)
    if kernel.kexec_in_progress:
        snp_kexec_finish(kernel)


@traced("guest")
def crash_smp_send_stop(kernel: GuestKernel) -> None:
    """``crash_smp_send_stop()`` (crash.c) -> ``kdump_nmi_shootdown_cpus``: an NMI to every
    other CPU, whose handler (``kdump_nmi_callback``) stops it where it is.  Model:
    ``kernel.nmi_shootdown`` = this CPU; another CPU takes the NMI the next time it
    returns into the guest from a VMGEXIT (:func:`snpsim.guest.asm_sev.VMGEXIT`), a CPU
    idle in HLT is stopped at once.  The crashing CPU does not wait for the others."""
    me = this_cpu(kernel).vcpu_id
    kernel.nmi_shootdown = me
    for cpu in range(kernel.config.nr_cpus):
        if cpu != me and kernel.ap_state.get(cpu) in ("done", "parked"):
            kernel.ap_state[cpu] = "stopped"


def take_stop_interrupt(kernel: GuestKernel) -> None:
    """Model-only: where a CPU resumes in the guest (after a VMGEXIT or a PAUSE exit), it
    takes a stop another CPU asked for: the crash NMI (``kernel.nmi_shootdown``, then
    :func:`kdump_nmi_callback`) or the REBOOT vector of ``stop_other_cpus``
    (``kernel.stopping_cpu``, then HLT for good).  Returns only when neither applies."""
    cpu = this_cpu(kernel)
    if kernel.nmi_shootdown is not None and cpu.vcpu_id != kernel.nmi_shootdown:
        kdump_nmi_callback(kernel)
    if kernel.stopping_cpu is not None and cpu.vcpu_id != kernel.stopping_cpu:
        kernel.ap_state[cpu.vcpu_id] = "stopped"
        while True:
            cpu.hlt()


def kdump_nmi_callback(kernel: GuestKernel) -> None:
    """``kdump_nmi_callback(cpu, regs)`` (crash.c) on a CPU shot down by the crashing one,
    then the NMI handler's endless halt (``nmi_shootdown_cpus``).  Never returns: the
    CPU stays where it was stopped, with whatever it held -- a ``mem_enc_lock`` read hold
    included."""
    cpu = this_cpu(kernel)
    kernel.ap_state[cpu.vcpu_id] = "stopped"
    while True:
        cpu.hlt()


@traced("guest")
def native_machine_crash_shutdown(kernel: GuestKernel) -> None:
    """``native_machine_crash_shutdown(regs)`` (crash.c at 01f492e1): interrupts off,
    ``crash_smp_send_stop``, then -- after the other CPUs were stopped, unlike the
    kexec path -- ``enc_kexec_begin`` (a try-lock now: ``oops_in_progress``) and
    ``enc_kexec_finish``, both always called.  (Virtualisation, IO-APIC, LAPIC and
    HPET shutdown and ``crash_save_cpu`` are not modelled.)"""
    cpu = this_cpu(kernel)
    kernel.irqs_disabled[cpu.vcpu_id] = True
    crash_smp_send_stop(kernel)
    snp_kexec_begin(kernel)
    snp_kexec_finish(kernel)


def machine_kexec(kernel: GuestKernel, kind: str) -> None:
    """``machine_kexec(image)`` (machine_kexec_64.c): jump to the next kernel (``kind``
    "kexec" or "kdump").  Model-only: the next kernel is not modelled; the CPU records
    ``kernel.kexec`` = ``kind`` and halts for good.  Never returns."""
    kernel.kexec = kind
    cpu = this_cpu(kernel)
    while True:
        cpu.hlt()


@traced("guest")
def kernel_kexec(kernel: GuestKernel) -> int:
    """``kernel_kexec()`` (kexec_core.c), the ``reboot(LINUX_REBOOT_CMD_KEXEC)`` path with a
    kexec image loaded: ``kexec_in_progress`` = true, ``machine_shutdown``
    (``native_machine_shutdown``), ``machine_kexec``.  Returns -EBUSY (-16) at once
    when another CPU holds ``kexec_lock`` (``kexec_trylock`` failed: a kexec or kdump is
    already under way); otherwise never returns."""
    if kernel.kexec_lock is not None:
        return -errno.EBUSY
    kernel.kexec_lock = this_cpu(kernel).vcpu_id
    kernel.kexec_in_progress = True
    native_machine_shutdown(kernel)
    machine_kexec(kernel, "kexec")
    return 0  # not reached: machine_kexec halts


@traced("guest")
def __crash_kexec(kernel: GuestKernel) -> int:
    """``__crash_kexec(regs)`` (kexec_core.c) as ``panic()`` reaches it with a crash kernel
    loaded: ``panic`` has set ``oops_in_progress`` (``bust_spinlocks(1)``);
    ``machine_crash_shutdown`` (``native_machine_crash_shutdown``), ``machine_kexec``.
    When another CPU holds ``kexec_lock`` (``kexec_trylock`` fails) it does
    nothing and returns -EBUSY (the C function returns and ``panic`` goes on); otherwise
    never returns."""
    if kernel.kexec_lock is not None:
        return -errno.EBUSY
    kernel.kexec_lock = this_cpu(kernel).vcpu_id
    kernel.oops_in_progress = True
    native_machine_crash_shutdown(kernel)
    machine_kexec(kernel, "kdump")
    return 0  # not reached: machine_kexec halts
