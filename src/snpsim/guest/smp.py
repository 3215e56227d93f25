# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Several vCPUs: the APs' start-up, their work, and the spin-wait between CPUs.

Mirrors, reduced to what page-state work needs: ``smp_init`` / ``bringup_nonboot_cpus``
on the BSP (``kernel/cpu.c``; for SNP the AP is started by ``wakeup_cpu_via_vmgexit``
with SVM_VMGEXIT_AP_CREATION, ``arch/x86/coco/sev/core.c``), ``start_secondary`` ->
``cpu_init`` -> ``cpu_init_exception_handling`` -> ``setup_ghcb`` on each AP
(``arch/x86/kernel/smpboot.c``, ``cpu/common.c``: the AP registers its own per-CPU GHCB,
linux-guest.md 5.1), and ``cpu_relax()`` (``rep; nop``, i.e. PAUSE,
``arch/x86/include/asm/vdso/processor.h``), v6.16/6.17.

Model choices (docs/guest.md):

* AP creation is not modelled: every vCPU starts in ``guest_entry``; an AP waits until
  the BSP has set up the per-CPU GHCBs and calls :func:`smp_init` (which stands for
  ``bringup_nonboot_cpus``), then runs ``start_secondary``, its workload
  (``kernel.ap_workloads[cpu]``) and idles in HLT.
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

from snpsim.hw.ports import GuestPort
from snpsim.trace.record import traced

from .kernel import GuestKernel, this_cpu

__all__ = [
    "platform_can_pause",
    "cpu_relax",
    "guest_stopped",
    "smp_init",
    "start_secondary",
    "ap_entry",
    "smp_join_ap_workloads",
]

#: ``kernel.ap_state`` values: not yet run; waiting for smp_init; GHCB set up and
#: running its workload; workload finished; halted while it had to wait (no PAUSE exit);
#: stopped because another CPU ended the guest.
AP_STATES = ("offline", "waiting", "online", "done", "parked", "stopped")


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
    forever: the machine is stopping."""
    cpu = this_cpu(kernel)
    if guest_stopped(kernel):
        while True:
            cpu.hlt()
    if platform_can_pause(cpu):
        cpu.pause()  # type: ignore[attr-defined]
    else:
        cpu.hlt()


@traced("guest")
def smp_init(kernel: GuestKernel) -> None:
    """``smp_init()`` -> ``bringup_nonboot_cpus`` (kernel/cpu.c), on the BSP after the
    per-CPU GHCBs exist: let every AP start (model: the release flag the waiting APs
    poll; SNP's AP_CREATION VMGEXIT is not modelled)."""
    kernel.smp_released = True


@traced("guest")
def start_secondary(kernel: GuestKernel) -> None:
    """``start_secondary`` (smpboot.c), SEV part: ``cpu_init_exception_handling`` loads
    the runtime IDT (#VC) and calls ``setup_ghcb``, which registers this CPU's GHCB page
    (``snp_register_per_cpu_ghcb``, MSR protocol); the CPU is then online."""
    from .boot import setup_ghcb
    from .sev_vc import install_vc_handler

    install_vc_handler(kernel)
    setup_ghcb(kernel)


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
        start_secondary(kernel)
        kernel.ap_state[vid] = "online"
        work = kernel.ap_workloads.get(vid)
        if work is not None:
            kernel.ap_results[vid] = work(kernel, cpu)
        kernel.ap_state[vid] = "done"
    while True:
        cpu.hlt()


@traced("guest")
def smp_join_ap_workloads(kernel: GuestKernel) -> None:
    """Model-only, on the BSP before the power-off: wait (:func:`cpu_relax`) until every
    AP that has a workload finished it, parked or stopped.  Without a PAUSE exit the BSP
    cannot wait: it warns and goes on."""
    cpu = this_cpu(kernel)
    pending = [v for v in kernel.ap_workloads if v < kernel.config.nr_cpus]
    if not pending:
        return
    if not platform_can_pause(cpu):
        kernel.warn("smp: the BSP cannot wait for the APs' workloads (no PAUSE exit on this platform)")
        return
    while any(kernel.ap_state.get(v, "offline") not in ("done", "parked", "stopped") for v in pending):
        cpu_relax(kernel)
