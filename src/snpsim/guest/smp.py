# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Several vCPUs: the APs' start-up, their work, and the spin-wait between CPUs.

Mirrors, reduced to what page-state work needs: ``smp_init`` / ``bringup_nonboot_cpus``
on the BSP with ``cpuhp_bp_sync_alive`` (``kernel/cpu.c``) and ``native_kick_ap`` ->
``do_boot_cpu`` (``arch/x86/kernel/smpboot.c``); for
an SNP guest the AP is started the SNP way (``arch/x86/coco/sev/core.c``, v6.17):
``wakeup_cpu_via_vmgexit`` allocates a VMSA page (``snp_alloc_vmsa_page``: the second
half of an 8 KiB block, so never 2 MiB aligned -- the SNP erratum), fills its initial
state, makes it a VMSA with RMPADJUST (``snp_set_vmsa``: VMSA bit, target VMPL1, at
VMPL0) and asks the hypervisor to start the AP on it (``vmgexit_ap_control``,
SVM_VMGEXIT_AP_CREATION / SVM_VMGEXIT_AP_CREATE); on failure, or for the AP's previous
VMSA, ``snp_cleanup_vmsa`` clears the VMSA bit and frees the page (leaks it if that
fails); those core.c functions are in :mod:`snpsim.guest.sev_core`.  The AP then runs
``start_secondary`` -> ``cpu_init`` -> ``cpu_init_exception_handling`` ->
``setup_ghcb`` (``arch/x86/kernel/smpboot.c``,
``cpu/common.c``: the AP registers its own per-CPU GHCB, linux-guest.md 5.1), and
``cpu_relax()`` is PAUSE (``rep; nop``, ``arch/x86/include/asm/vdso/processor.h``).

Model choices (docs/guest.md, docs/model-choices.md):

* Before the kernel starts it, an AP of an SNP guest runs on KVM's initial VMSA in the
  firmware (:func:`snp_ap_firmware_park`: OVMF parks its APs in the AP reset hold, GHCB
  MSR protocol request 0x006), so the AP creation's request wakes it
  (``kvm_vcpu_has_events``).  The new VMSA's CS base + RIP must be
  :data:`SEV_ES_TRAMPOLINE_START`: the VMRUN on it starts a new guest context (the
  platform loads the VMSA), which the model routes to ``start_secondary``.  The real
  mode trampoline and its GPA are model values; the SVSM path (``snp_vmpl`` != 0) is
  not modelled.
* SEV and SEV-ES guests (INIT-SIPI or the AP jump table, not modelled) keep the release
  flag: every vCPU starts in ``guest_entry``; an AP waits until the BSP calls
  :func:`smp_init`, then runs ``start_secondary``.
* The BSP waits for a started AP to report alive (``cpuhp_bp_sync_alive``, 10 s in
  Linux) by :func:`cpu_relax`; the model's timeout is :data:`AP_ALIVE_TIMEOUT_PASSES`
  passes in which the AP's state did not change, after which the BSP logs that the CPU
  failed to report alive, marks it ``failed`` and boots on without it.
* A guest context runs until it exits, so a spin-wait must exit for another vCPU to run.
  :func:`cpu_relax` executes PAUSE through the GuestPort's ``pause()`` when the platform
  offers it (PAUSE intercept / pause-loop exiting: an automatic exit that KVM answers
  with ``kvm_vcpu_on_spin`` and re-enters); without it the only exit left is HLT, and a
  vCPU that halts may never run again on a host with no wake-up (the VMM model ends a
  halted vCPU's thread).
* The BSP waits for the APs' workloads to finish before the power-off (model-only join,
  like a workload joining its kthreads); a wait also stops (HLT) once another CPU has
  terminated, panicked or livelocked the guest, standing in for QEMU's ``vm_stop``
  pausing every vCPU.
"""

from __future__ import annotations

import errno

from snpsim.hw.ports import GuestPort
from snpsim.spec.msr_index import MSR_AMD64_SEV, MSR_AMD64_SEV_ES_GHCB, MSR_AMD64_SEV_SNP_ENABLED
from snpsim.spec.msr_protocol import GHCB_MSR_AP_RESET_HOLD_REQ
from snpsim.trace.record import traced

from .kernel import GuestKernel, this_cpu
from .sev_core import SEV_ES_TRAMPOLINE_START, TRAMPOLINE_START, wakeup_cpu_via_vmgexit

__all__ = [
    "platform_can_pause",
    "cpu_relax",
    "guest_stopped",
    "smp_init",
    "native_kick_ap",
    "do_boot_cpu",
    "cpuhp_bp_sync_alive",
    "start_secondary",
    "ap_entry",
    "snp_ap_entry",
    "snp_ap_firmware_park",
    "smp_join_ap_workloads",
    "snp_started",
    "snp_guest_cpu",
    "vmsa_entry",
    "AP_ALIVE_TIMEOUT_PASSES",
]

#: ``kernel.ap_state`` values: not yet run; being started by the BSP (SNP); waiting for
#: smp_init (SEV, SEV-ES); GHCB set up and running its workload; workload finished;
#: halted while it had to wait (no PAUSE exit); stopped because another CPU ended the
#: guest; did not report alive (SNP: the AP creation failed or the AP never ran).
AP_STATES = ("offline", "booting", "waiting", "online", "done", "parked", "stopped", "failed")

#: Model stand-in for Linux's 10 s wait for a started AP (``cpuhp_bp_sync_alive``,
#: kernel/cpu.c): PAUSE passes of the BSP in which the AP's state did not change.  Each
#: pass lets the scheduler run other vCPU threads, so an AP that can run reaches
#: "online" long before (it needs a few scheduler turns, each about as likely as the
#: BSP's next pass); an AP that cannot costs this many PAUSE exits.
AP_ALIVE_TIMEOUT_PASSES = 256


def platform_can_pause(cpu: GuestPort) -> bool:
    """Model-only: the GuestPort offers ``pause()`` (a PAUSE that exits to the host)."""
    return callable(getattr(cpu, "pause", None))


def guest_stopped(kernel: GuestKernel) -> bool:
    """Model-only: some CPU already ended the guest (termination request, panic or a
    detected livelock), so the VMM stops every vCPU (QEMU ``vm_stop``)."""
    return kernel.terminated is not None or kernel.panicked is not None or kernel.livelock is not None


def cpu_relax(kernel: GuestKernel) -> None:
    """``cpu_relax()``: PAUSE (``rep; nop``) in a spin-wait.  Model: ``cpu.pause()`` when
    the platform offers it (the vCPU exits and another vCPU may run before it resumes);
    otherwise HLT (see the module doc).  If another CPU has already ended the guest, HLT
    forever: the machine is stopping; if another CPU is stopping this one for a kexec or
    a crash, the stop is taken here (:func:`snpsim.guest.kexec.take_stop_interrupt`)."""
    cpu = this_cpu(kernel)
    if guest_stopped(kernel):
        while True:
            cpu.hlt()
    if platform_can_pause(cpu):
        cpu.pause()  # type: ignore[attr-defined]
    else:
        cpu.hlt()
    if kernel.nmi_shootdown is not None or kernel.stopping_cpu is not None:
        from .kexec import take_stop_interrupt

        take_stop_interrupt(kernel)


def _snp(kernel: GuestKernel) -> bool:
    """``cc_platform_has(CC_ATTR_GUEST_SEV_SNP)``."""
    return bool(kernel.sev_status & MSR_AMD64_SEV_SNP_ENABLED)


@traced("guest")
def smp_init(kernel: GuestKernel) -> None:
    """``smp_init()`` -> ``bringup_nonboot_cpus`` (kernel/cpu.c), on the BSP after the
    per-CPU GHCBs exist.  SNP: for every AP in turn, ``native_kick_ap`` (the wake-up is
    ``wakeup_cpu_via_vmgexit``, set by ``snp_set_wakeup_secondary_cpu``), then
    ``cpuhp_bp_sync_alive``; a CPU that fails either is ``failed`` and the boot goes on
    without it.  SEV, SEV-ES: the release flag the waiting APs poll (model, see the
    module doc)."""
    kernel.smp_released = True
    if not _snp(kernel):
        return
    for cpu in range(1, kernel.config.nr_cpus):
        kernel.ap_state[cpu] = "booting"
        if native_kick_ap(kernel, cpu) or cpuhp_bp_sync_alive(kernel, cpu):
            kernel.ap_state[cpu] = "failed"


@traced("guest")
def native_kick_ap(kernel: GuestKernel, cpu: int) -> int:
    """``native_kick_ap(cpu, tidle)`` (arch/x86/kernel/smpboot.c, v6.5+): the APIC ID
    (model: the vCPU id), :func:`do_boot_cpu`; an error is logged ("do_boot_cpu
    failed(%d) to wakeup CPU#%u") and returned.  Returns 0 or -errno."""
    err = do_boot_cpu(kernel, cpu, cpu)
    if err:
        kernel.warn(f"do_boot_cpu failed({err}) to wakeup CPU#{cpu}")
    return err


@traced("guest")
def do_boot_cpu(kernel: GuestKernel, apicid: int, cpu: int) -> int:
    """``do_boot_cpu(apicid, cpu, idle)`` (arch/x86/kernel/smpboot.c), reduced to the SNP
    wake-up: ``apic->wakeup_secondary_cpu`` is ``wakeup_cpu_via_vmgexit`` with
    ``start_ip`` = the real-mode trampoline.  Returns its 0 or -errno."""
    return wakeup_cpu_via_vmgexit(kernel, apicid, TRAMPOLINE_START, cpu)


@traced("guest")
def cpuhp_bp_sync_alive(kernel: GuestKernel, cpu: int) -> int:
    """``cpuhp_bp_sync_alive(cpu)`` (kernel/cpu.c, v6.5+): wait for the AP to report
    alive; Linux gives up after 10 s ("CPU%u failed to report alive state", -EIO).
    Model: the AP is alive once it left "booting" (``start_secondary`` ran, or another
    CPU ended the guest); the wait is :func:`cpu_relax` and the timeout
    :data:`AP_ALIVE_TIMEOUT_PASSES` passes without a change of the AP's state.  Without
    a PAUSE exit the BSP cannot wait: 0 at once.  Returns 0 or -EIO."""
    if not platform_can_pause(this_cpu(kernel)):
        return 0
    still = 0
    last = kernel.ap_state.get(cpu)
    while kernel.ap_state.get(cpu) == "booting" and not guest_stopped(kernel):
        cpu_relax(kernel)
        state = kernel.ap_state.get(cpu)
        still = still + 1 if state == last else 0
        last = state
        if still >= AP_ALIVE_TIMEOUT_PASSES:
            kernel.warn(f"CPU{cpu} failed to report alive state")
            return -errno.EIO
    return 0


def snp_ap_firmware_park(cpu: GuestPort) -> None:
    """Model-only: what an AP of an SNP guest runs on KVM's initial VMSA until the kernel
    creates it -- the firmware's AP park, the GHCB MSR protocol AP reset hold (request
    0x006, VMGEXIT) in a loop (OVMF parks its APs this way; KVM answers with
    ``kvm_emulate_ap_reset_hold``: the vCPU blocks until an event).  Never returns: the
    AP creation's VMSA starts a new guest context instead."""
    while True:
        cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, GHCB_MSR_AP_RESET_HOLD_REQ)
        cpu.vmgexit()


def vmsa_entry(cpu: GuestPort) -> int | None:
    """Model-only: the linear entry address (CS base + RIP) of the VMSA the vCPU's guest
    context was loaded from, or None when it has none (``GuestCpu.vmsa``)."""
    vmsa = getattr(cpu, "vmsa", None)
    if not vmsa:
        return None
    return vmsa.get("cs.base", 0) + vmsa.get("rip", 0)


def snp_started(cpu: GuestPort) -> bool:
    """Model-only: the vCPU runs on a VMSA whose entry is the SEV-ES trampoline, i.e. the
    kernel created it with :func:`wakeup_cpu_via_vmgexit`."""
    return vmsa_entry(cpu) == SEV_ES_TRAMPOLINE_START


def snp_guest_cpu(cpu: GuestPort) -> bool:
    """Model-only: the firmware's test whether the guest is SNP (SEV status MSR)."""
    return bool(cpu.rdmsr(MSR_AMD64_SEV) & MSR_AMD64_SEV_SNP_ENABLED)


@traced("guest")
def start_secondary(kernel: GuestKernel) -> None:
    """``start_secondary`` (smpboot.c), SEV part: ``cpu_init_exception_handling`` loads
    the runtime IDT (#VC) and calls ``setup_ghcb``, which registers this CPU's GHCB page
    (``snp_register_per_cpu_ghcb``, MSR protocol); the CPU is then online."""
    from .boot import setup_ghcb
    from .sev_vc import install_vc_handler

    install_vc_handler(kernel)
    setup_ghcb(kernel)


def snp_ap_entry(kernel: GuestKernel, cpu: GuestPort) -> None:
    """Model-only: what an SNP AP runs from the trampoline its VMSA starts it at:
    ``start_secondary``, then ``kernel.ap_workloads[cpu]`` if any (its result in
    ``kernel.ap_results[cpu]``), then HLT forever (idle).  ``kernel.ap_state`` follows
    it (online, done)."""
    _run_ap_workload(kernel, cpu)
    while True:
        cpu.hlt()


def _run_ap_workload(kernel: GuestKernel, cpu: GuestPort) -> None:
    """``start_secondary``, then the AP's workload if it has one (result kept in
    ``kernel.ap_results``); ``kernel.ap_state`` goes online, then done."""
    vid = cpu.vcpu_id
    start_secondary(kernel)
    kernel.ap_state[vid] = "online"
    work = kernel.ap_workloads.get(vid)
    if work is not None:
        kernel.ap_results[vid] = work(kernel, cpu)
    kernel.ap_state[vid] = "done"


def ap_entry(kernel: GuestKernel, cpu: GuestPort) -> None:
    """Model-only: what an AP (vCPU != 0) runs -- wait for :func:`smp_init`, then
    ``start_secondary``, then ``kernel.ap_workloads[cpu]`` if any (its result in
    ``kernel.ap_results[cpu]``), then HLT forever (idle).  ``kernel.ap_state`` follows it."""
    vid = cpu.vcpu_id
    kernel.ap_state[vid] = "waiting"
    while not kernel.smp_released:
        if guest_stopped(kernel):
            kernel.ap_state[vid] = "stopped"
            break
        if not platform_can_pause(cpu):
            kernel.ap_state[vid] = "parked"
            kernel.warn(f"smp: CPU{vid} ran before the BSP started it and cannot spin "
                        "(no PAUSE exit on this platform); it stays halted")
            break
        cpu_relax(kernel)
    if kernel.ap_state[vid] == "waiting":
        _run_ap_workload(kernel, cpu)
    while True:
        cpu.hlt()


@traced("guest")
def smp_join_ap_workloads(kernel: GuestKernel, exclude: int | None = None) -> None:
    """Model-only, on the BSP before the power-off (and on the CPU that kexecs, with
    ``exclude`` = itself): wait (:func:`cpu_relax`) until every AP that has a workload
    finished it, parked or stopped.  Without a PAUSE exit the BSP cannot wait: it warns
    and goes on."""
    cpu = this_cpu(kernel)
    snp = _snp(kernel)
    pending = [v for v in kernel.ap_workloads if v < kernel.config.nr_cpus and v != exclude
               and kernel.ap_state.get(v, "offline") != "failed"
               and not (snp and kernel.ap_state.get(v, "offline") == "offline")]
    if not pending:
        return
    if not platform_can_pause(cpu):
        kernel.warn("smp: the BSP cannot wait for the APs' workloads (no PAUSE exit on this platform)")
        return
    while any(kernel.ap_state.get(v, "offline") not in ("done", "parked", "stopped", "failed")
              for v in pending):
        cpu_relax(kernel)
