# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""GHCB hypervisor calls, their result checks, protocol negotiation and the #VC handler.

Mirrors ``arch/x86/coco/sev/vc-shared.c`` (``verify_exception_info``,
``sev_es_ghcb_hv_call``, ``snp_register_ghcb_early``, ``sev_es_negotiate_protocol``,
``vc_handle_ioio``, ``vc_ioio_exitinfo``) and ``arch/x86/coco/sev/vc-handle.c``
(``exc_vmm_communication``, ``vc_raw_handle_exception``, ``vc_handle_exitcode``,
``vc_handle_vmmcall``), v6.16/6.17 (linux-guest.md 5.1, 6; hardware-and-ghcb.md 7, 8).

The #VC handler: VMMCALL (0x81), IOIO OUT (0x7B) and the kernel's RDMSR/WRMSR (0x7C)
are forwarded through the GHCB, and an exception the hypervisor asks for (#GP, #UD) is
raised to its handler (``vc_forward_exception``);
any other exit code, notably 0x404 (page not validated), is ``ES_UNSUPPORTED``: the
kernel handler logs "Unsupported exit-code 0x%02lx in #VC exception" and asks the
hypervisor to terminate with (SEV_TERM_SET_GEN, GHCB_SEV_ES_GEN_REQ) =
(0, 0) -- ``exc_vmm_communication_kernel`` -> ``sev_es_terminate`` (vc-handle.c; from
memory of 6.x, same in 5.19 ``arch/x86/kernel/sev.c``).  Linux cannot recover from an
access to an unvalidated page (hardware-and-ghcb.md 8: "will crash the guest").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snpsim.hw.ports import HardwareFault, VmmCommunicationException
from snpsim.spec.checks import check_enabled
from snpsim.spec.exit_codes import (
    SVM_EVTINJ_TYPE_EXEPT,
    SVM_EVTINJ_TYPE_MASK,
    SVM_EVTINJ_VALID,
    SVM_EVTINJ_VALID_ERR,
    SVM_EVTINJ_VEC_MASK,
    SVM_EXIT_IOIO,
    SVM_EXIT_MSR,
    SVM_EXIT_VMMCALL,
)
from snpsim.spec.faults import X86_TRAP_GP, X86_TRAP_UD, X86_TRAP_VC
from snpsim.spec.ghcb import GHCB_DEFAULT_USAGE, GHCB_PROTOCOL_MAX, GHCB_PROTOCOL_MIN
from snpsim.spec.ioio import (
    IOIO_ADDR_64,
    IOIO_DATA_8,
    IOIO_DATA_16,
    IOIO_DATA_32,
    IOIO_TYPE_IN,
    IOIO_TYPE_OUT,
    SVM_IOIO_PORT_SHIFT,
)
from snpsim.spec.msr_protocol import (
    GHCB_MSR_PROTO_MAX,
    GHCB_MSR_PROTO_MIN,
    GHCB_MSR_REG_GPA_REQ_VAL,
    GHCB_MSR_REG_GPA_RESP,
    GHCB_MSR_REG_GPA_RESP_VAL,
    GHCB_MSR_SEV_INFO_REQ,
    GHCB_MSR_SEV_INFO_RESP,
    GHCB_RESP_CODE,
)
from snpsim.spec.sev import ES_EXCEPTION, ES_OK, ES_UNSUPPORTED, ES_VMM_ERROR
from snpsim.spec.siginfo import BUS_OBJERR, SIGBUS
from snpsim.spec.termination import (
    GHCB_SEV_ES_GEN_REQ,
    GHCB_TERM_REGISTER,
    SEV_TERM_SET_GEN,
    SEV_TERM_SET_LINUX,
)
from snpsim.spec.units import PAGE_SHIFT
from snpsim.trace.record import traced

from .asm_sev import (
    VMGEXIT,
    ghcb_field_is_valid,
    ghcb_get_field,
    ghcb_set_field,
    sev_es_wr_ghcb_msr,
    vc_ghcb_invalidate,
)
from .kernel import GhcbState, GuestKernel, __pa, overridable, panic, this_cpu
from .msr import NO_EXTABLE
from .sev_startup import __sev_get_ghcb, __sev_put_ghcb, msr_protocol_exchange, sev_es_terminate

__all__ = [
    "EsFaultInfo",
    "EsEmCtxt",
    "verify_exception_info",
    "sev_es_ghcb_hv_call",
    "sev_es_negotiate_protocol",
    "snp_register_ghcb_early",
    "vc_ioio_exitinfo",
    "vc_handle_ioio",
    "vc_handle_vmmcall",
    "vc_handle_exitcode",
    "vc_handle_msr",
    "vc_forward_exception",
    "exc_general_protection",
    "exc_invalid_op",
    "UserSignal",
    "exc_vmm_communication",
    "install_vc_handler",
    "native_out",
]


@dataclass
class EsFaultInfo:
    """``struct es_fault_info``: the exception the hypervisor asked to inject."""

    vector: int = 0
    error_code: int = 0
    cr2: int = 0


@dataclass
class EsEmCtxt:
    """``struct es_em_ctxt``: the interrupted registers and the decoded instruction.

    Model-only: there are no instruction bytes to decode, so ``insn`` is what the code
    that executed the trapping instruction recorded (``("out", port, size)``), the stand-in
    for ``insn_decode`` at RIP."""

    regs: dict[str, int]
    fi: EsFaultInfo = field(default_factory=EsFaultInfo)
    insn: tuple[str, int, int] | None = None


@traced("guest")
def verify_exception_info(kernel: GuestKernel, ghcb: int, ctxt: EsEmCtxt) -> int:
    """``verify_exception_info(ghcb, ctxt)`` (vc-shared.c): the low 32 bits of
    ``sw_exit_info_1``: 0 -> ES_OK; 1 with a valid #GP/#UD exception in ``sw_exit_info_2``
    (EVENTINJ format) -> ES_EXCEPTION with ``ctxt.fi`` set; anything else -> ES_VMM_ERROR."""
    status = ghcb_get_field(kernel, ghcb, "sw_exit_info_1") & 0xFFFFFFFF
    if status == 0:
        return ES_OK
    if status != 1:
        return ES_VMM_ERROR if check_enabled("verify_exception_info:status") else ES_OK
    # Status 1 asks the guest to raise an exception.  Only a #GP or a #UD, encoded as a
    # valid exception event, is honoured; any other request means the host is broken.
    event = ghcb_get_field(kernel, ghcb, "sw_exit_info_2")
    vector = event & SVM_EVTINJ_VEC_MASK
    honoured = (bool(event & SVM_EVTINJ_VALID)
                and (event & SVM_EVTINJ_TYPE_MASK) == SVM_EVTINJ_TYPE_EXEPT
                and vector in (X86_TRAP_GP, X86_TRAP_UD))
    if not honoured and check_enabled("verify_exception_info:event"):
        return ES_VMM_ERROR
    ctxt.fi.vector = vector
    if event & SVM_EVTINJ_VALID_ERR:
        ctxt.fi.error_code = event >> 32
    return ES_EXCEPTION


@traced("guest")
def sev_es_ghcb_hv_call(kernel: GuestKernel, ghcb: int, ctxt: EsEmCtxt, exit_code: int,
                        exit_info_1: int, exit_info_2: int) -> int:
    """``sev_es_ghcb_hv_call(ghcb, ctxt, exit_code, exit_info_1, exit_info_2)``
    (vc-shared.c): set ``protocol_version`` (negotiated) and ``ghcb_usage`` 0, set
    ``sw_exit_code``/``sw_exit_info_1``/``sw_exit_info_2`` with their valid bits, write the
    GHCB's GPA to the GHCB MSR, VMGEXIT, and return ``verify_exception_info`` (es_result).
    ``ghcb`` is the GHCB's GVA."""
    request = (
        ("protocol_version", kernel.ghcb_version),
        ("ghcb_usage", GHCB_DEFAULT_USAGE),
        ("sw_exit_code", exit_code),
        ("sw_exit_info_1", exit_info_1),
        ("sw_exit_info_2", exit_info_2),
    )
    for name, value in request:
        ghcb_set_field(kernel, ghcb, name, value)
    sev_es_wr_ghcb_msr(kernel, __pa(kernel, ghcb))
    VMGEXIT(kernel)
    return verify_exception_info(kernel, ghcb, ctxt)


@traced("guest")
def sev_es_negotiate_protocol(kernel: GuestKernel) -> bool:
    """``sev_es_negotiate_protocol()`` (vc-shared.c): MSR 0x002 -> 0x001; false when the
    response code is wrong, the hypervisor's max < GHCB_PROTOCOL_MIN (1) or its min >
    GHCB_PROTOCOL_MAX (2); else ``ghcb_version`` = min(max, 2) and true."""
    info = msr_protocol_exchange(kernel, GHCB_MSR_SEV_INFO_REQ)
    if GHCB_RESP_CODE(info) != GHCB_MSR_SEV_INFO_RESP:
        return False
    host_min, host_max = GHCB_MSR_PROTO_MIN(info), GHCB_MSR_PROTO_MAX(info)
    # The two ranges [host_min, host_max] and [GHCB_PROTOCOL_MIN, GHCB_PROTOCOL_MAX] must
    # overlap; the guest then speaks the highest version both know.
    if ((host_max < GHCB_PROTOCOL_MIN or host_min > GHCB_PROTOCOL_MAX)
            and check_enabled("sev_es_negotiate_protocol:version")):
        return False
    kernel.ghcb_version = min(host_max, GHCB_PROTOCOL_MAX)
    return True


@traced("guest")
def snp_register_ghcb_early(kernel: GuestKernel, paddr: int) -> None:
    """``snp_register_ghcb_early(paddr)`` (vc-shared.c): MSR 0x012 with GFN = ``paddr``
    >> 12, VMGEXIT; a response code other than 0x013 or a GFN other than the requested one
    terminates with (SEV_TERM_SET_LINUX, GHCB_TERM_REGISTER).  ``paddr`` is a GPA."""
    gfn = paddr >> PAGE_SHIFT
    answer = msr_protocol_exchange(kernel, GHCB_MSR_REG_GPA_REQ_VAL(gfn))
    # The host must echo the GFN it registered; a different one (or a different answer)
    # would leave the guest using a GHCB the host does not expect.
    registered = (GHCB_RESP_CODE(answer) == GHCB_MSR_REG_GPA_RESP
                  and GHCB_MSR_REG_GPA_RESP_VAL(answer) == gfn)
    if not registered and check_enabled("snp_register_ghcb_early:gfn"):
        kernel.warn(f"GHCB registration failed: response {answer:#x} for pfn {gfn:#x}")
        sev_es_terminate(kernel, SEV_TERM_SET_LINUX, GHCB_TERM_REGISTER)


def vc_ioio_exitinfo(kernel: GuestKernel, ctxt: EsEmCtxt) -> int:
    """``vc_ioio_exitinfo(ctxt, &exitinfo)`` (vc-shared.c), for the IN/OUT forms with the
    port in DX: type, port in bits 31:16, operand size bit, address size (64-bit mode)."""
    assert ctxt.insn is not None
    kind, port, size = ctxt.insn
    exitinfo = IOIO_TYPE_IN if kind == "in" else IOIO_TYPE_OUT
    exitinfo |= (port & 0xFFFF) << SVM_IOIO_PORT_SHIFT
    exitinfo |= {1: IOIO_DATA_8, 2: IOIO_DATA_16, 4: IOIO_DATA_32}[size]
    exitinfo |= IOIO_ADDR_64
    return exitinfo


@traced("guest")
def vc_handle_ioio(kernel: GuestKernel, ghcb: int, ctxt: EsEmCtxt) -> int:
    """``vc_handle_ioio(ghcb, ctxt)`` (vc-shared.c), non-string forms: for OUT, RAX
    (masked to the operand size) into the GHCB; SVM_EXIT_IOIO with exit_info_1 =
    ``vc_ioio_exitinfo``; for IN, RAX must come back valid.  Returns an es_result."""
    exit_info_1 = vc_ioio_exitinfo(kernel, ctxt)
    is_in = bool(exit_info_1 & IOIO_TYPE_IN)
    # The operand size bits (SZ8/SZ16/SZ32 at bits 4..6) times 8 give the width in bits.
    width_mask = (1 << ((exit_info_1 & 0x70) >> 1)) - 1
    if not is_in:
        ghcb_set_field(kernel, ghcb, "rax", ctxt.regs.get("rax", 0) & width_mask)
    ret = sev_es_ghcb_hv_call(kernel, ghcb, ctxt, SVM_EXIT_IOIO, exit_info_1, 0)
    if ret != ES_OK or not is_in:
        return ret
    if not ghcb_field_is_valid(kernel, ghcb, "rax"):
        return ES_VMM_ERROR
    # IN replaces only the low bytes of RAX, as the instruction does.
    old = ctxt.regs.get("rax", 0)
    ctxt.regs["rax"] = (old & ~width_mask) | (ghcb_get_field(kernel, ghcb, "rax") & width_mask)
    return ES_OK


@traced("guest")
def vc_handle_vmmcall(kernel: GuestKernel, ghcb: int, ctxt: EsEmCtxt) -> int:
    """``vc_handle_vmmcall(ghcb, ctxt)`` (vc-handle.c): RAX and CPL (0) into the GHCB,
    then KVM's ``sev_es_hcall_prepare`` (``kvm_sev_es_hcall_prepare``, kernel/kvm.c) adds
    RBX, RCX, RDX, RSI; SVM_EXIT_VMMCALL; RAX must come back valid (else ES_VMM_ERROR)
    and is written to the interrupted RAX.  Returns an es_result."""
    regs = ctxt.regs
    ghcb_set_field(kernel, ghcb, "rax", regs.get("rax", 0))
    ghcb_set_field(kernel, ghcb, "cpl", 0)
    # The hypervisor-specific part (KVM's hook): the hypercall arguments.
    for arg in ("rbx", "rcx", "rdx", "rsi"):
        ghcb_set_field(kernel, ghcb, arg, regs.get(arg, 0))
    ret = sev_es_ghcb_hv_call(kernel, ghcb, ctxt, SVM_EXIT_VMMCALL, 0, 0)
    if ret != ES_OK:
        return ret
    if not ghcb_field_is_valid(kernel, ghcb, "rax"):
        return ES_VMM_ERROR
    regs["rax"] = ghcb_get_field(kernel, ghcb, "rax")
    # KVM's finishing hook checks nothing, so there is no step here.
    return ES_OK


@traced("guest")
def vc_handle_msr(kernel: GuestKernel, ghcb: int, ctxt: EsEmCtxt) -> int:
    """``vc_handle_msr(ghcb, ctxt)`` / ``__vc_handle_msr`` (vc-handle.c, v6.17): RCX into
    the GHCB (and RAX, RDX for WRMSR), SVM_EXIT_MSR with exit_info_1 = 1 for WRMSR, 0
    for RDMSR; a read's RAX and RDX come back from the GHCB.  Model: the SVSM CAA MSR and
    Secure TSC MSRs Linux answers itself are not modelled.  Returns an es_result
    (ES_EXCEPTION when the hypervisor asks for a #GP)."""
    assert ctxt.insn is not None
    write = ctxt.insn[0] == "wrmsr"
    regs = ctxt.regs
    ghcb_set_field(kernel, ghcb, "rcx", regs.get("rcx", 0))
    if write:
        ghcb_set_field(kernel, ghcb, "rax", regs.get("rax", 0))
        ghcb_set_field(kernel, ghcb, "rdx", regs.get("rdx", 0))
    ret = sev_es_ghcb_hv_call(kernel, ghcb, ctxt, SVM_EXIT_MSR, int(write), 0)
    if ret == ES_OK and not write:
        regs["rax"] = ghcb_get_field(kernel, ghcb, "rax")
        regs["rdx"] = ghcb_get_field(kernel, ghcb, "rdx")
    return ret


@traced("guest")
def exc_general_protection(kernel: GuestKernel, regs: dict[str, int], error_code: int) -> None:
    """``exc_general_protection(regs, error_code)`` (arch/x86/kernel/traps.c), kernel
    mode: an exception-table fixup (``fixup_exception``; the MSR accessors',
    :func:`snpsim.guest.msr.ex_handler_msr`) ends it; otherwise ``die("general
    protection fault")`` -> panic (model: panic_on_oops).  User mode (CPL 3):
    SIGSEGV to the task (:class:`UserSignal`)."""
    from .msr import ex_handler_msr

    cpu = this_cpu(kernel)
    if getattr(cpu, "cpl", 0) == 3:
        raise UserSignal(11, 0x80, f"SIGSEGV after #GP({error_code:#x})")  # SI_KERNEL
    if ex_handler_msr(kernel, regs):
        return
    panic(kernel, f"general protection fault: {error_code:#x}")


@traced("guest")
def exc_invalid_op(kernel: GuestKernel, regs: dict[str, int]) -> None:
    """``exc_invalid_op(regs)`` (traps.c): not a BUG() site in the model, so kernel
    mode ``die("invalid opcode")`` -> panic; user mode SIGILL (ILL_ILLOPN)."""
    cpu = this_cpu(kernel)
    if getattr(cpu, "cpl", 0) == 3:
        raise UserSignal(4, 2, "SIGILL after #UD")
    panic(kernel, "invalid opcode")


@traced("guest")
def vc_forward_exception(kernel: GuestKernel, ctxt: EsEmCtxt) -> None:
    """``vc_forward_exception(ctxt)`` (vc-handle.c): the exception the hypervisor asked
    for (``verify_exception_info``: #GP or #UD) goes to its handler as if the
    instruction had raised it (model: the decoded instruction is put back in
    ``kernel.pending_insn`` for the exception-table lookup)."""
    if ctxt.insn is not None:
        kernel.pending_insn[this_cpu(kernel).vcpu_id] = ctxt.insn
    if ctxt.fi.vector == X86_TRAP_GP:
        exc_general_protection(kernel, ctxt.regs, ctxt.fi.error_code)
    elif ctxt.fi.vector == X86_TRAP_UD:
        exc_invalid_op(kernel, ctxt.regs)
    else:
        panic(kernel, f"Unexpected #VC exception forwarding: {ctxt.fi.vector}")


@overridable
def vc_handle_exitcode(kernel: GuestKernel, ctxt: EsEmCtxt, ghcb: int, exit_code: int) -> int:
    """``vc_handle_exitcode(ctxt, ghcb, exit_code)`` (vc-handle.c), the modelled subset:
    SVM_EXIT_VMMCALL, SVM_EXIT_IOIO and SVM_EXIT_MSR (an RDMSR/WRMSR the model's kernel
    issued through :mod:`snpsim.guest.msr`); every other exit code, notably 0x404 (page not
    validated), -> ES_UNSUPPORTED with no emulation step.  Override point (bug report R9's
    variant emulates 0x404)."""
    if exit_code == SVM_EXIT_VMMCALL:
        return vc_handle_vmmcall(kernel, ghcb, ctxt)
    if exit_code == SVM_EXIT_IOIO:
        return vc_handle_ioio(kernel, ghcb, ctxt)
    if exit_code == SVM_EXIT_MSR and ctxt.insn is not None and ctxt.insn[0] in ("rdmsr", "wrmsr"):
        return vc_handle_msr(kernel, ghcb, ctxt)
    return ES_UNSUPPORTED


class UserSignal(Exception):
    """Model-only: a signal forced on the user task (``force_sig_fault``): ``signo``,
    ``code``.  It unwinds the user-mode access that faulted to the model's user-mode
    entry (the task does not return to the faulting instruction: it is killed or runs
    its handler), e.g. :func:`snpsim.guest.devmem.devmem_read`."""

    def __init__(self, signo: int, code: int, msg: str = "") -> None:
        super().__init__(msg or f"signal {signo} code {code}")
        self.signo = signo
        self.code = code


@traced("guest")
def exc_vmm_communication(kernel: GuestKernel, error_code: int, cr2: int = 0) -> None:
    """``exc_vmm_communication`` (vc-handle.c), with ``vc_raw_handle_exception``: take a
    GHCB (the per-CPU one through ``__sev_get_ghcb`` once ``sev_cfg.ghcbs_initialized``,
    else ``boot_ghcb`` as ``vc_boot_ghcb`` does), invalidate it, handle ``error_code`` (the
    SVM exit code; ``cr2`` the faulting GVA for 0x404), put the GHCB back.

    Kernel mode (CPL 0) on failure: pr_err, then ``sev_es_terminate(SEV_TERM_SET_GEN,
    GHCB_SEV_ES_GEN_REQ)``.  A hypervisor-requested #GP/#UD (ES_EXCEPTION) is not a
    failure: ``vc_forward_exception`` raises it to its handler (an exception-table fixup
    or ``die()`` -> panic, model: panic_on_oops).  User mode (CPL 3, the
    ``DEFINE_IDTENTRY_VC_USER`` entry) on failure: pr_err, then
    ``force_sig_fault(SIGBUS, BUS_OBJERR, 0)``, raised as :class:`UserSignal`: a user
    task's bad access costs that task, not the whole guest.  The failure lines follow the
    kernel's pr_err formats in vc-handle.c ("Unsupported exit-code 0x%02lx in #VC
    exception (IP: 0x%lx)", "Failure in communication with VMM (exit-code 0x%02lx IP:
    0x%lx)") without the IP, which the model does not have."""
    cpu = this_cpu(kernel)
    # TAKE A GHCB: the per-CPU one once every CPU has its own, else the boot one.
    state = GhcbState()
    pcpu = kernel.runtime_data.get(cpu.vcpu_id)
    use_percpu = kernel.sev_cfg.ghcbs_initialized and pcpu is not None
    if use_percpu:
        ghcb = __sev_get_ghcb(kernel, state)
    else:
        ghcb = kernel.boot_ghcb
    if ghcb is None:
        kernel.warn("#VC before any GHCB is set up")
        sev_es_terminate(kernel, SEV_TERM_SET_GEN, GHCB_SEV_ES_GEN_REQ)
        return
    # HANDLE: emulate the intercepted instruction through the GHCB.
    vc_ghcb_invalidate(kernel, ghcb)
    ctxt = EsEmCtxt(cpu.regs, insn=kernel.pending_insn.pop(cpu.vcpu_id, None))
    ctxt.fi.cr2 = cr2
    result = vc_handle_exitcode(kernel, ctxt, ghcb, error_code)
    if use_percpu:
        __sev_put_ghcb(kernel, state)
    if result == ES_OK:
        return  # vc_finish_insn: RIP advanced past the instruction
    if result == ES_EXCEPTION:
        # The hypervisor asked for a #GP/#UD: raise it as the instruction would have.
        vc_forward_exception(kernel, ctxt)
        return
    # FAIL, USER MODE: the task gets SIGBUS and the guest goes on.
    if getattr(cpu, "cpl", 0) == 3:
        if result == ES_UNSUPPORTED:
            kernel.warn(f"Unsupported exit-code {error_code:#04x} in #VC exception")
        else:
            kernel.warn(f"Failure in communication with VMM (exit-code {error_code:#x})")
        raise UserSignal(SIGBUS, BUS_OBJERR, f"SIGBUS (BUS_OBJERR) after #VC {error_code:#x}")
    # FAIL, KERNEL MODE: nothing can be resumed; ask the host to end the guest.
    if not check_enabled("exc_vmm_communication:terminate"):
        # Removed (a mutant): return to the faulting instruction, which faults again;
        # the livelock watcher ends the run after enough identical #VCs.
        cpu.progress.watch("exc_vmm_communication", cpu.vcpu_id, (int(error_code), cr2),
                           lambda: f"#VC {int(error_code):#x} again at GVA {cr2:#x}")
        return
    if result == ES_UNSUPPORTED:
        kernel.warn(f"Unsupported exit-code {error_code:#04x} in #VC exception")
    elif result == ES_VMM_ERROR:
        kernel.warn(f"Failure in communication with VMM (exit-code {error_code:#x})")
    else:
        kernel.warn(f"Unknown result {result} in #VC exception")
    sev_es_terminate(kernel, SEV_TERM_SET_GEN, GHCB_SEV_ES_GEN_REQ)
    panic(kernel, "Returned from Terminate-Request to Hypervisor")


def install_vc_handler(kernel: GuestKernel) -> None:
    """Model-only: load the IDT entry of #VC (vector 29) with ``exc_vmm_communication``
    on this CPU (Linux: ``idt_setup_early_handler`` / the runtime IDT), and those of #GP
    (13, ``exc_general_protection``) and #UD (6, ``exc_invalid_op``), which an exception
    the hypervisor injects through EVENTINJ reaches."""

    def handler(cpu: object, fault: HardwareFault) -> None:
        assert isinstance(fault, VmmCommunicationException)
        vcpu = this_cpu(kernel).vcpu_id
        if fault.error_code == SVM_EXIT_MSR and vcpu not in kernel.pending_insn:
            # An RDMSR/WRMSR outside the kernel's accessors: decoded, but it has no
            # exception-table entry (NO_EXTABLE), so a #GP on it is fatal.
            kind = "wrmsr" if fault.reason == "WRMSR" else "rdmsr"
            kernel.pending_insn[vcpu] = (kind, this_cpu(kernel).regs.get("rcx", 0), NO_EXTABLE)
        exc_vmm_communication(kernel, fault.error_code, fault.cr2)

    def gp(cpu: object, fault: HardwareFault) -> None:
        exc_general_protection(kernel, this_cpu(kernel).regs, getattr(fault, "error_code", 0))

    def ud(cpu: object, fault: HardwareFault) -> None:
        exc_invalid_op(kernel, this_cpu(kernel).regs)

    port = this_cpu(kernel)
    port.set_idt_handler(X86_TRAP_VC, handler)
    port.set_idt_handler(X86_TRAP_GP, gp)
    port.set_idt_handler(X86_TRAP_UD, ud)


def native_out(kernel: GuestKernel, port: int, value: int, size: int) -> None:
    """An ``out %ax/%al/%eax, (%dx)`` instruction (``outw``/``outb``/``outl``).

    Under SEV-ES/SNP the IOIO intercept makes it a #VC with error code SVM_EXIT_IOIO
    (0x7B), DX = ``port``, RAX = ``value``; the #VC handler forwards it through the GHCB
    as Linux does.  ``pending_insn`` is model-only: the decoded instruction the handler's
    ``insn_decode`` would find at RIP.
    """
    cpu = this_cpu(kernel)
    kernel.pending_insn[cpu.vcpu_id] = ("out", port, size)
    cpu.out(port, value, size)
