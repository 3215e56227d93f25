# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""SVM exit handling: ``svm_vcpu_run``, ``svm_handle_exit`` and the exit handlers the
SNP page-state protocol reaches (#NPF, VMGEXIT, VMMCALL, IOIO, HLT, SHUTDOWN, CPUID).

Mirrors ``arch/x86/kvm/svm/svm.c`` (taken from the merged patch postings; kvm-qemu-host.md
6.3 and 11.1).  Handlers return 1 (resume), 0 (exit to userspace) or -errno.
"""

from __future__ import annotations

from collections.abc import Callable

from snpsim.spec.exit_codes import (
    SVM_EXIT_CPUID,
    SVM_EXIT_ERR,
    SVM_EXIT_HLT,
    SVM_EXIT_INVD,
    SVM_EXIT_IOIO,
    SVM_EXIT_MONITOR,
    SVM_EXIT_MSR,
    SVM_EXIT_MWAIT,
    SVM_EXIT_NPF,
    SVM_EXIT_PAUSE,
    SVM_EXIT_RDPMC,
    SVM_EXIT_RDTSCP,
    SVM_EXIT_READ_DR7,
    SVM_EXIT_SHUTDOWN,
    SVM_EXIT_VMGEXIT,
    SVM_EXIT_VMMCALL,
    SVM_EXIT_WBINVD,
    SVM_EXIT_WRITE_DR7,
)
from snpsim.spec.faults import (
    PFERR_GUEST_ENC_MASK,
    PFERR_GUEST_RMP_MASK,
    PFERR_IMPLICIT_ACCESS,
    PFERR_PRIVATE_ACCESS,
)
from snpsim.spec.ioio import (
    SVM_IOIO_PORT_SHIFT,
    SVM_IOIO_SIZE_MASK,
    SVM_IOIO_SIZE_SHIFT,
    SVM_IOIO_STR_MASK,
    SVM_IOIO_TYPE_MASK,
)
from snpsim.spec.kvm_uapi import (
    KVM_EXIT_FAIL_ENTRY,
    KVM_EXIT_HLT,
    KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_IO,
    KVM_EXIT_IO_IN,
    KVM_EXIT_IO_OUT,
    KVM_EXIT_SHUTDOWN,
)
from snpsim.spec.pgtable_types import PG_LEVEL_2M
from snpsim.spec.units import PAGE_SHIFT, PTRS_PER_PMD, u64
from snpsim.trace.record import traced

from .kvm_host import KvmVcpu
from .mmu import kvm_mmu_page_fault
from .x86 import (
    __kvm_emulate_halt,
    kvm_complete_insn_gp,
    kvm_emulate_hypercall,
    kvm_emulate_invd,
    kvm_emulate_monitor,
    kvm_emulate_mwait,
    kvm_emulate_rdmsr,
    kvm_emulate_rdpmc,
    kvm_emulate_wbinvd,
    kvm_emulate_wrmsr,
    kvm_handle_invalid_op,
)

__all__ = [
    "svm_prepare_switch_to_guest",
    "svm_vcpu_run",
    "svm_handle_exit",
    "svm_invoke_exit_handler",
    "npf_interception",
    "vmmcall_interception",
    "io_interception",
    "halt_interception",
    "shutdown_interception",
    "cpuid_interception",
    "dr_interception",
    "msr_interception",
    "svm_complete_emulated_msr",
    "svm_handle_invalid_exit",
    "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON",
]

#: ``KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON`` (include/uapi/linux/kvm.h).
KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4


def svm_prepare_switch_to_guest(vcpu: KvmVcpu) -> None:
    """``svm_prepare_switch_to_guest(vcpu)``: for SEV-ES guests ``sev_es_unmap_ghcb``
    (results written back into the GHCB before VMRUN; kvm-qemu-host.md 2.5)."""
    from .svm_sev import sev_es_unmap_ghcb

    if vcpu.kvm.sev.es_active:
        sev_es_unmap_ghcb(vcpu)


@traced("kvm")
def svm_vcpu_run(vcpu: KvmVcpu):  # noqa: ANN201 - VmExit from the host port
    """``svm_vcpu_run(vcpu)``: VMRUN through the host port; returns the #VMEXIT."""
    vmcb = vcpu.vmcb
    if not vcpu.kvm.sev.es_active:
        vmcb.regs.update(vcpu.regs)
    exit_ = vcpu.kvm.host.vmrun(vmcb)
    if not vcpu.kvm.sev.es_active:
        vcpu.regs.update(vmcb.regs)
    vcpu.exit_code = exit_.exit_code
    vcpu.exit_info_1 = exit_.exit_info_1
    vcpu.exit_info_2 = exit_.exit_info_2
    return exit_


@traced("kvm")
def npf_interception(vcpu: KvmVcpu) -> int:
    """``npf_interception(vcpu)``: error code = EXITINFO1, GPA = EXITINFO2; clear
    synthetic bits 48/49 set by hardware (WARN); SNP and PFERR_GUEST_ENC -> add
    PFERR_PRIVATE_ACCESS; ``kvm_mmu_page_fault``; on success with PFERR_GUEST_RMP,
    ``sev_handle_rmp_fault``.  Returns the MMU's 1 / 0 / -errno.

    Model-only: a fault handled without an exit to userspace (1: the guest retries the
    access) is reported to the livelock watcher as a pass of the loop
    ``kvm_mmu_page_fault`` on this vCPU, with the fault and, once it repeats, the SPTE
    for its GFN, the RMP entry of the page that SPTE maps and the GFN's attributes as
    the state (:func:`_npf_state`); the same fault with nothing changed
    ``livelock_repeats`` times in a row, no other exit in between, is a livelock (bug
    report R3's spurious fast-path fault)."""
    from .svm_sev import sev_handle_rmp_fault

    error_code = vcpu.exit_info_1
    gpa = vcpu.exit_info_2
    synthetic = PFERR_IMPLICIT_ACCESS | PFERR_PRIVATE_ACCESS
    if error_code & synthetic:
        vcpu.kvm.pr("WARN: hardware set KVM-synthetic PFERR bits")
        error_code &= ~synthetic
    if vcpu.kvm.sev.snp and error_code & PFERR_GUEST_ENC_MASK:
        error_code |= PFERR_PRIVATE_ACCESS
    rc = kvm_mmu_page_fault(vcpu, gpa, error_code)
    rc = vcpu.kvm.profile.call("npf_rmp_fault_gate", _npf_rmp_fault_gate)(vcpu, rc, gpa, error_code,
                                                                           sev_handle_rmp_fault)
    if rc == 1:
        # A fault unlike the previous one is progress whatever the tables hold, so the
        # snapshot (SPTE, RMP entry, attributes) is taken only for a repeated fault.
        watcher = vcpu.kvm.host.progress
        last = watcher.last("kvm_mmu_page_fault", vcpu.vcpu_id)
        key: tuple = (gpa, error_code)
        if last is not None and last[:2] == key:
            key = _npf_state(vcpu, gpa, error_code)
        watcher.watch("kvm_mmu_page_fault", vcpu.vcpu_id, key,
                      lambda: _npf_text(vcpu, gpa, error_code))
    return rc


def _npf_state(vcpu: KvmVcpu, gpa: int, error_code: int) -> tuple:
    """Model-only: the state an #NPF retry depends on -- GPA, error code, the SPTE of
    its GFN (pfn, level, writable or None), the RMP entry of the page it maps, and the
    GFN's memory attributes."""
    kvm = vcpu.kvm
    host = kvm.host
    gfn = gpa >> PAGE_SHIFT
    spte = host.npt_lookup(kvm.npt, gfn)
    if spte is None:
        return (gpa, error_code, None, None, kvm.mem_attr_array.get(gfn))
    pfn = spte.pfn + (gfn & (PTRS_PER_PMD - 1) if spte.level == PG_LEVEL_2M else 0)
    return (gpa, error_code, (spte.pfn, spte.level, spte.writable),
            host.rmpread(pfn << PAGE_SHIFT), kvm.mem_attr_array.get(gfn))


def _npf_text(vcpu: KvmVcpu, gpa: int, error_code: int) -> str:
    """Model-only: the stuck #NPF, for the livelock report."""
    spte = vcpu.kvm.host.npt_lookup(vcpu.kvm.npt, gpa >> PAGE_SHIFT)
    where = "no SPTE" if spte is None else f"SPTE pfn {spte.pfn:#x}"
    return (f"the same #NPF at GPA {gpa:#x} error code {error_code:#x} ({where}) is "
            f"resumed with nothing changed")


def _npf_rmp_fault_gate(vcpu: KvmVcpu, rc: int, gpa: int, error_code: int,
                        handler: Callable[[KvmVcpu, int, int], None]) -> int:
    """The fixed test (R2): handle the RMP fault only when the MMU fault succeeded (> 0)."""
    if rc > 0 and error_code & PFERR_GUEST_RMP_MASK:
        handler(vcpu, gpa, error_code)
    return rc


@traced("kvm")
def vmmcall_interception(vcpu: KvmVcpu) -> int:
    """``vmmcall_interception`` -> ``kvm_emulate_hypercall``."""
    return kvm_emulate_hypercall(vcpu)


@traced("kvm")
def io_interception(vcpu: KvmVcpu) -> int:
    """``io_interception(vcpu)``: decode EXITINFO1 (type bit 0: 1 = IN, string bit 2,
    size bits 6:4 one-hot 1/2/4, port 31:16).  String I/O of SEV-ES guests ->
    ``sev_es_string_io``; otherwise ``kvm_fast_pio``: no in-kernel device on any port, so
    KVM_EXIT_IO to userspace (OUT data = the low ``size`` bytes of RAX), completed by
    ``complete_fast_pio_*``.  Returns 0 (exit) or the string path's result."""
    from .svm_sev import sev_es_string_io

    io_info = vcpu.exit_info_1 & 0xFFFFFFFF
    is_in = bool(io_info & SVM_IOIO_TYPE_MASK)
    string = bool(io_info & SVM_IOIO_STR_MASK)
    port = (io_info >> SVM_IOIO_PORT_SHIFT) & 0xFFFF
    size = (io_info & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT
    if string:
        return sev_es_string_io(vcpu, size, port, is_in)
    run = vcpu.run
    run.exit_reason = KVM_EXIT_IO
    run.io.direction = KVM_EXIT_IO_IN if is_in else KVM_EXIT_IO_OUT
    run.io.size = size
    run.io.port = port
    run.io.count = 1
    if is_in:
        run.io.data = bytes(size)
        vcpu.complete_userspace_io = complete_fast_pio_in
    else:
        run.io.data = vcpu.regs.get("rax", 0).to_bytes(8, "little")[:size]
        vcpu.complete_userspace_io = complete_fast_pio_out
    return 0


@traced("kvm")
def complete_fast_pio_out(vcpu: KvmVcpu) -> int:
    """``complete_fast_pio_out``: nothing to copy; skip the instruction.  Returns 1."""
    return 1


@traced("kvm")
def complete_fast_pio_in(vcpu: KvmVcpu) -> int:
    """``complete_fast_pio_in``: merge the ``size`` bytes userspace put in ``run->io``
    into RAX.  Returns 1."""
    size = vcpu.run.io.size
    val = int.from_bytes(vcpu.run.io.data[:size].ljust(size, b"\0"), "little")
    mask = (1 << (8 * size)) - 1
    rax = vcpu.regs.get("rax", 0)
    vcpu.regs["rax"] = u64((rax & ~mask) | val) if size < 4 else val
    return 1


@traced("kvm")
def halt_interception(vcpu: KvmVcpu) -> int:
    """``halt_interception`` -> ``kvm_emulate_halt`` -> ``__kvm_emulate_halt(vcpu,
    HALTED, KVM_EXIT_HLT)``: the vCPU is marked halted and ``vcpu_run`` blocks it until a
    signal (see ``vcpu_block``).  Returns 1."""
    return __kvm_emulate_halt(vcpu, "halted", KVM_EXIT_HLT)


@traced("kvm")
def pause_interception(vcpu: KvmVcpu) -> int:
    """``pause_interception`` (arch/x86/kvm/svm/svm.c, v6.16): a spinning vCPU;
    ``kvm_vcpu_on_spin`` lets another vCPU run (model: the scheduler's yield point), then
    the guest is re-entered.  Returns 1."""
    vcpu.kvm.host.yield_point()
    return 1


@traced("kvm")
def shutdown_interception(vcpu: KvmVcpu) -> int:
    """``shutdown_interception``: a triple fault; KVM_EXIT_SHUTDOWN to userspace."""
    vcpu.run.exit_reason = KVM_EXIT_SHUTDOWN
    return 0


#: Model-only CPUID table KVM answers from (KVM_SET_CPUID2 is not modelled): leaf ->
#: (eax, ebx, ecx, edx).  0x40000001 EAX: KVM_FEATURE_HC_MAP_GPA_RANGE (16) and
#: KVM_FEATURE_MIGRATION_CONTROL (17).
def _cpuid_table(vcpu: KvmVcpu) -> dict[int, tuple[int, int, int, int]]:
    cbit = vcpu.kvm.host.cbit
    return {
        0x40000000: (0x40000001, 0x4B4D564B, 0x564B4D56, 0x4D),  # "KVMKVMKVM"
        0x40000001: ((1 << 16) | (1 << 17), 0, 0, 0),
        0x8000001F: (0b11111, cbit & 0x3F, 0, 0),
    }


@traced("kvm")
def cpuid_interception(vcpu: KvmVcpu) -> int:
    """``cpuid_interception`` -> ``kvm_emulate_cpuid``: RAX = leaf (u32), RCX = subleaf;
    the model's table (unknown leaves read zero).  Returns 1."""
    leaf = vcpu.regs.get("rax", 0) & 0xFFFFFFFF
    eax, ebx, ecx, edx = _cpuid_table(vcpu).get(leaf, (0, 0, 0, 0))
    vcpu.regs.update(rax=eax, rbx=ebx, rcx=ecx, rdx=edx)
    return 1


@traced("kvm")
def svm_handle_invalid_exit(vcpu: KvmVcpu, exit_code: int) -> int:
    """``svm_handle_invalid_exit(vcpu, exit_code)`` (arch/x86/kvm/svm/svm.c, v6.17): log
    "svm: unexpected exit reason 0x%llx" (``vcpu_unimpl``; the VMCB dump is not
    modelled), then ``kvm_prepare_unexpected_reason_exit``: KVM_EXIT_INTERNAL_ERROR,
    suberror KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, ndata 2, data[0] = the exit
    code, data[1] = the host CPU of the last VM entry (model: the vCPU id).  Returns 0."""
    vcpu.kvm.pr(f"svm: unexpected exit reason {exit_code:#x}")
    run = vcpu.run
    run.exit_reason = KVM_EXIT_INTERNAL_ERROR
    run.internal.suberror = KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON
    run.internal.ndata = 2
    run.internal.data[0] = exit_code
    run.internal.data[1] = vcpu.vcpu_id
    return 0


def _vmgexit(vcpu: KvmVcpu) -> int:
    from .svm_sev import sev_handle_vmgexit

    return sev_handle_vmgexit(vcpu)


@traced("kvm")
def dr_interception(vcpu: KvmVcpu) -> int:
    """``dr_interception(vcpu)`` (svm.c, v6.17) for DR7 reads and writes: KVM intercepts
    DR7 of an SEV-ES/SNP guest only to keep guest debugging off and cannot change the
    register (it is swapped by hardware), so it returns at once: the guest resumes with
    nothing changed (GHCB answer 0/0).  Model: DR accesses of a non-ES guest are not
    emulated either (MOV DR decoding is not modelled).  Returns 1."""
    return 1


@traced("kvm")
def svm_complete_emulated_msr(vcpu: KvmVcpu, err: int) -> int:
    """``svm_complete_emulated_msr(vcpu, err)`` (svm.c, v6.17): success, or a guest
    without protected state -> ``kvm_complete_insn_gp`` (#GP(0) through EVENTINJ on
    error); an SEV-ES/SNP guest's failed access is answered through the GHCB:
    ``svm_vmgexit_inject_exception(svm, X86_TRAP_GP)`` (sw_exit_info_1 = 1,
    sw_exit_info_2 = VALID | TYPE_EXEPT | 13), which the guest's #VC handler turns into
    a #GP.  Returns 1."""
    from snpsim.spec.faults import X86_TRAP_GP

    from .svm_sev import svm_vmgexit_inject_exception

    if not err or not vcpu.kvm.sev.es_active or vcpu.sev_es.ghcb is None:
        return kvm_complete_insn_gp(vcpu, err)
    svm_vmgexit_inject_exception(vcpu, X86_TRAP_GP)
    return 1


@traced("kvm")
def msr_interception(vcpu: KvmVcpu) -> int:
    """``msr_interception(vcpu)`` (svm.c): EXITINFO1 1 -> ``kvm_emulate_wrmsr``, 0 ->
    ``kvm_emulate_rdmsr``, each completed by :func:`svm_complete_emulated_msr`.
    Returns 1."""
    if vcpu.exit_info_1:
        return kvm_emulate_wrmsr(vcpu, svm_complete_emulated_msr)
    return kvm_emulate_rdmsr(vcpu, svm_complete_emulated_msr)


#: ``svm_exit_handlers[]`` (arch/x86/kvm/svm/svm.c, v6.17), the entries an SEV-ES/SNP
#: guest can reach through ``sev_handle_vmgexit`` or an automatic exit.  SVM_EXIT_RDTSC
#: has no entry in KVM's table (RDTSC is not intercepted), so a VMGEXIT naming it ends
#: in ``svm_handle_invalid_exit``, as in KVM.
_EXIT_HANDLERS: dict[int, Callable[[KvmVcpu], int]] = {
    SVM_EXIT_READ_DR7: dr_interception,
    SVM_EXIT_WRITE_DR7: dr_interception,
    SVM_EXIT_RDPMC: kvm_emulate_rdpmc,
    SVM_EXIT_CPUID: cpuid_interception,
    SVM_EXIT_INVD: kvm_emulate_invd,
    SVM_EXIT_PAUSE: pause_interception,
    SVM_EXIT_HLT: halt_interception,
    SVM_EXIT_IOIO: io_interception,
    SVM_EXIT_MSR: msr_interception,
    SVM_EXIT_SHUTDOWN: shutdown_interception,
    SVM_EXIT_VMMCALL: vmmcall_interception,
    SVM_EXIT_RDTSCP: kvm_handle_invalid_op,
    SVM_EXIT_WBINVD: kvm_emulate_wbinvd,
    SVM_EXIT_MONITOR: kvm_emulate_monitor,
    SVM_EXIT_MWAIT: kvm_emulate_mwait,
    SVM_EXIT_NPF: npf_interception,
    SVM_EXIT_VMGEXIT: _vmgexit,
}


@traced("kvm")
def svm_invoke_exit_handler(vcpu: KvmVcpu, exit_code: int) -> int:
    """``svm_invoke_exit_handler(vcpu, exit_code)``: the exit-handler table; an exit code
    with no handler -> :func:`svm_handle_invalid_exit` (KVM_EXIT_INTERNAL_ERROR, return
    0)."""
    handler = _EXIT_HANDLERS.get(exit_code)
    if handler is None:
        return svm_handle_invalid_exit(vcpu, exit_code)
    return handler(vcpu)


@traced("kvm")
def svm_handle_exit(vcpu: KvmVcpu, exit_) -> int:  # noqa: ANN001 - VmExit
    """``svm_handle_exit(vcpu, exit_fastpath)`` (arch/x86/kvm/svm/svm.c, v6.17): a VMRUN
    that failed its checks (exit code SVM_EXIT_ERR, VMEXIT_INVALID: e.g. an SNP VMSA
    page that is not a VMSA of the guest, :meth:`snpsim.hw.cpu.HostCpu.snp_vmsa_check`)
    -> KVM_EXIT_FAIL_ENTRY with ``hardware_entry_failure_reason`` = the exit code (u64)
    and ``cpu`` = the host CPU of the last entry (model: the vCPU id); the VMCB dump is
    not modelled; return 0.  Otherwise dispatch on the hardware exit code."""
    if exit_.exit_code == u64(SVM_EXIT_ERR):
        run = vcpu.run
        run.exit_reason = KVM_EXIT_FAIL_ENTRY
        run.fail_entry.hardware_entry_failure_reason = exit_.exit_code
        run.fail_entry.cpu = vcpu.vcpu_id
        return 0
    return svm_invoke_exit_handler(vcpu, exit_.exit_code)
