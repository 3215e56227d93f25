# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""SEV-ES/SNP exits: ``sev_handle_vmgexit``, GHCB sync and validation, the scratch area,
GHCB-based and MSR-protocol Page State Change, the MSR protocol, the SNP launch commands
and KVM's guest_memfd hooks' caller side.

Mirrors ``arch/x86/kvm/svm/sev.c`` at torvalds/linux 0097f9df (~v6.17) plus the 7.0.12
stable hardening of ``setup_vmgexit_scratch`` and ``snp_begin_psc`` (kvm-qemu-host.md
sections 2, 3, 4, 7.4-7.6, 8.7).  The version in force is the VM's profile
(:mod:`snpsim.kvm.profiles`): knob ``scratch`` = ``"hardened"`` (default) or
``"original"``.

The GHCB is bytes in guest memory: KVM maps its GPA through the memslots to the VMM's
page (``kvm_vcpu_map``) and reads and writes fields there through the host port, with the
GHCB field table of :mod:`snpsim.spec.ghcb`.  The guest's valid bitmap is snapshotted
and cleared by ``sev_es_sync_from_ghcb``; every later validity test uses the snapshot.

Return convention: 1 = resume the guest, 0 = exit to userspace (``run->exit_reason``
set), < 0 = ``KVM_RUN`` fails with that errno.  Answers to the guest are written into the
GHCB (``sw_exit_info_1``/``sw_exit_info_2``) or the GHCB MSR (VMCB ``ghcb_gpa``).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snpsim.spec.checks import check_enabled
from snpsim.spec.exit_codes import (
    GHCB_ERR_INVALID_EVENT,
    GHCB_ERR_INVALID_INPUT,
    GHCB_ERR_INVALID_SCRATCH_AREA,
    GHCB_ERR_INVALID_USAGE,
    GHCB_ERR_MISSING_INPUT,
    GHCB_HV_RESP_ISSUE_EXCEPTION,
    GHCB_HV_RESP_MALFORMED_INPUT,
    GHCB_HV_RESP_NO_ACTION,
    SVM_EVTINJ_TYPE_EXEPT,
    SVM_EVTINJ_VALID,
    SVM_EXIT_CPUID,
    SVM_EXIT_INVD,
    SVM_EXIT_IOIO,
    SVM_EXIT_MONITOR,
    SVM_EXIT_MSR,
    SVM_EXIT_MWAIT,
    SVM_EXIT_RDPMC,
    SVM_EXIT_RDTSC,
    SVM_EXIT_RDTSCP,
    SVM_EXIT_READ_DR7,
    SVM_EXIT_VMMCALL,
    SVM_EXIT_WBINVD,
    SVM_EXIT_WRITE_DR7,
    SVM_VMGEXIT_AP_CREATION,
    SVM_VMGEXIT_AP_DESTROY,
    SVM_VMGEXIT_AP_HLT_LOOP,
    SVM_VMGEXIT_AP_JUMP_TABLE,
    SVM_VMGEXIT_EXT_GUEST_REQUEST,
    SVM_VMGEXIT_GET_AP_JUMP_TABLE,
    SVM_VMGEXIT_GUEST_REQUEST,
    SVM_VMGEXIT_HV_FEATURES,
    SVM_VMGEXIT_MMIO_READ,
    SVM_VMGEXIT_MMIO_WRITE,
    SVM_VMGEXIT_NMI_COMPLETE,
    SVM_VMGEXIT_PSC,
    SVM_VMGEXIT_SET_AP_JUMP_TABLE,
    SVM_VMGEXIT_TERM_REQUEST,
    SVM_VMGEXIT_UNSUPPORTED_EVENT,
)
from snpsim.spec.ghcb import (
    GHCB_FIELDS,
    GHCB_SHARED_BUF_OFFSET,
    GHCB_SHARED_BUF_SIZE,
    GHCB_USAGE_OFFSET,
    GHCB_VALID_BITMAP_OFFSET,
    GHCB_VALID_BITMAP_SIZE,
)
from snpsim.spec.ioio import SVM_IOIO_SIZE_MASK
from snpsim.spec.kvm_uapi import (
    KVM_EXIT_AP_RESET_HOLD,
    KVM_EXIT_HYPERCALL,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_HC_MAP_GPA_RANGE,
    KVM_MAP_GPA_RANGE_DECRYPTED,
    KVM_MAP_GPA_RANGE_ENCRYPTED,
    KVM_MAP_GPA_RANGE_PAGE_SZ_2M,
    KVM_MAP_GPA_RANGE_PAGE_SZ_4K,
    KVM_MEM_GUEST_MEMFD,
    KVM_SEV_INIT2,
    KVM_SEV_LAUNCH_FINISH,
    KVM_SEV_LAUNCH_MEASURE,
    KVM_SEV_LAUNCH_START,
    KVM_SEV_LAUNCH_UPDATE_DATA,
    KVM_SEV_LAUNCH_UPDATE_VMSA,
    KVM_SEV_SNP_LAUNCH_FINISH,
    KVM_SEV_SNP_LAUNCH_START,
    KVM_SEV_SNP_LAUNCH_UPDATE,
    KVM_SEV_SNP_PAGE_TYPE_CPUID,
    KVM_SEV_SNP_PAGE_TYPE_NORMAL,
    KVM_SEV_SNP_PAGE_TYPE_SECRETS,
    KVM_SEV_SNP_PAGE_TYPE_UNMEASURED,
    KVM_SEV_SNP_PAGE_TYPE_VMSA,
    KVM_SEV_SNP_PAGE_TYPE_ZERO,
    KVM_SYSTEM_EVENT_SEV_TERM,
    KVM_X86_SEV_ES_VM,
    KVM_X86_SEV_VM,
    KVM_X86_SNP_VM,
)
from snpsim.spec.msr_index import (
    MSR_AMD64_SEV_ENABLED,
    MSR_AMD64_SEV_ES_ENABLED,
    MSR_AMD64_SEV_SNP_ENABLED,
)
from snpsim.spec.msr_protocol import (
    GHCB_HV_FT_SUPPORTED,
    GHCB_MSR_AP_RESET_HOLD_REQ,
    GHCB_MSR_AP_RESET_HOLD_RESP,
    GHCB_MSR_AP_RESET_HOLD_RESULT_MASK,
    GHCB_MSR_AP_RESET_HOLD_RESULT_POS,
    GHCB_MSR_CPUID_FUNC_MASK,
    GHCB_MSR_CPUID_FUNC_POS,
    GHCB_MSR_CPUID_REG_MASK,
    GHCB_MSR_CPUID_REG_POS,
    GHCB_MSR_CPUID_REQ,
    GHCB_MSR_CPUID_RESP,
    GHCB_MSR_CPUID_VALUE_MASK,
    GHCB_MSR_CPUID_VALUE_POS,
    GHCB_MSR_GPA_VALUE_MASK,
    GHCB_MSR_GPA_VALUE_POS,
    GHCB_MSR_HV_FT_MASK,
    GHCB_MSR_HV_FT_POS,
    GHCB_MSR_HV_FT_REQ,
    GHCB_MSR_HV_FT_RESP,
    GHCB_MSR_INFO_MASK,
    GHCB_MSR_INFO_POS,
    GHCB_MSR_PREF_GPA_NONE,
    GHCB_MSR_PREF_GPA_REQ,
    GHCB_MSR_PREF_GPA_RESP,
    GHCB_MSR_PSC_REQ,
    GHCB_MSR_PSC_REQ_TO_GFN,
    GHCB_MSR_PSC_REQ_TO_OP,
    GHCB_MSR_PSC_RESP,
    GHCB_MSR_PSC_RESP_ERROR,
    GHCB_MSR_REG_GPA_REQ,
    GHCB_MSR_REG_GPA_RESP,
    GHCB_MSR_SEV_INFO,
    GHCB_MSR_SEV_INFO_REQ,
    GHCB_MSR_TERM_REASON_MASK,
    GHCB_MSR_TERM_REASON_POS,
    GHCB_MSR_TERM_REASON_SET_MASK,
    GHCB_MSR_TERM_REASON_SET_POS,
    GHCB_MSR_TERM_REQ,
)
from snpsim.spec.pgtable_types import PG_LEVEL_4K
from snpsim.spec.psc import (
    PSC_ENTRY_SIZE,
    PSC_HDR_SIZE,
    VMGEXIT_PSC_ERROR_GENERIC,
    VMGEXIT_PSC_ERROR_INVALID_ENTRY,
    VMGEXIT_PSC_ERROR_INVALID_HDR,
    VMGEXIT_PSC_MAX_COUNT,
    VMGEXIT_PSC_OP_PRIVATE,
    VMGEXIT_PSC_OP_SHARED,
    PscEntry,
)
from snpsim.spec.sev_guest import SNP_GUEST_ERR
from snpsim.spec.svm_sev import (
    GHCB_SCRATCH_AREA_LIMIT,
    GHCB_VERSION_DEFAULT,
    GHCB_VERSION_MAX,
    GHCB_VERSION_MIN,
    INITIAL_VMSA_GPA,
)
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE, PTRS_PER_PMD, U64_MAX, u16, u64
from snpsim.trace.record import emit_instant, traced

from .guest_memfd import kvm_gmem_get_pfn, kvm_gmem_populate
from .kvm_host import KernelOops, KvmVcpu, KvmVm
from .mmu import kvm_mem_is_private, kvm_zap_gfn_range
from .sev_dev import snp_alloc_firmware_page, snp_free_firmware_page
from .uapi import (
    KvmSevCmd,
    KvmSevInit,
    KvmSevLaunchMeasure,
    KvmSevLaunchStart,
    KvmSevLaunchUpdateData,
    KvmSevSnpLaunchFinish,
    KvmSevSnpLaunchStart,
    KvmSevSnpLaunchUpdate,
    copy_from_user,
)
from .virt_svm_sev import (
    kvm_rmp_make_shared,
    rmp_make_private,
    snp_lookup_rmpentry,
    snp_rmptable_psmash,
)
from .x86 import __kvm_emulate_halt, user_exit_on_hypercall

__all__ = [
    "Scratch",
    "KVM_REQ_UPDATE_PROTECTED_GUEST_STATE",
    "kvm_make_request_and_kick",
    "sev_snp_ap_creation",
    "sev_snp_init_protected_guest_state",
    "sev_vcpu_create",
    "sev_handle_vmgexit",
    "sev_handle_vmgexit_msr_protocol",
    "sev_es_sync_from_ghcb",
    "sev_es_sync_to_ghcb",
    "sev_es_validate_vmgexit",
    "sev_es_unmap_ghcb",
    "setup_vmgexit_scratch",
    "setup_vmgexit_scratch_original",
    "svm_vmgexit_success",
    "svm_vmgexit_no_action",
    "svm_vmgexit_bad_input",
    "svm_vmgexit_inject_exception",
    "snp_begin_psc",
    "snp_complete_one_psc",
    "__snp_complete_one_psc",
    "snp_complete_psc",
    "snp_begin_psc_msr",
    "snp_complete_psc_msr",
    "sev_es_string_io",
    "sev_handle_rmp_fault",
    "sev_mem_enc_ioctl",
    "sev_gmem_post_populate",
    "SevDataSnpGuestRequest",
    "snp_guest_req_init",
    "snp_page_reclaim",
    "snp_setup_guest_buf",
    "snp_cleanup_guest_buf",
    "issue_snp_guest_request",
    "copy_guest_response",
    "__snp_handle_guest_req",
    "snp_handle_guest_req",
]

# ---- the mapped GHCB and the scratch area ----------------------------------------------


@dataclass
class GhcbMapping:
    """``svm->sev_es.ghcb`` with its ``struct kvm_host_map``: the GHCB's ``gpa`` and the
    SPA of the page backing it (bytes)."""

    gpa: int
    spa: int


@dataclass
class Scratch:
    """``svm->sev_es.ghcb_sa``: either a pointer into the mapped GHCB (``spa`` of the
    first byte; accesses run on linearly in SPA space, like the kernel's direct map) or a
    kernel buffer ``buf`` (``ghcb_sa_free``).  ``overruns`` counts accesses past the end of
    a kernel buffer (each one a :class:`KernelOops`); ``reads`` records (offset, bytes)
    of every read (model-only, for tests)."""

    spa: int | None = None
    buf: bytearray | None = None
    overruns: int = 0
    reads: list[tuple[int, int]] = field(default_factory=list)

    def _check(self, off: int, n: int) -> None:
        assert self.buf is not None
        if off + n > len(self.buf):
            # Model choice: an access past the kernel buffer (kvzalloc(len); with len 0
            # the ZERO_SIZE_PTR) is a host kernel oops, not silent heap access.
            self.overruns += 1
            raise KernelOops(f"BUG: scratch buffer access [{off:#x}, {off + n:#x}) past its "
                             f"{len(self.buf)} bytes (setup_vmgexit_scratch len)")

    def read(self, host: Any, off: int, n: int) -> bytes:
        """Read ``n`` bytes at byte offset ``off`` of the scratch area; past the end of a
        kernel buffer -> :class:`KernelOops`."""
        self.reads.append((off, n))
        if self.spa is not None:
            return host.read(self.spa + off, n)
        self._check(off, n)
        assert self.buf is not None
        return bytes(self.buf[off : off + n])

    def write(self, host: Any, off: int, data: bytes) -> None:
        """Write ``data`` at byte offset ``off`` of the scratch area; past the end of a
        kernel buffer -> :class:`KernelOops`."""
        if self.spa is not None:
            host.write(self.spa + off, data)
            return
        self._check(off, len(data))
        assert self.buf is not None
        self.buf[off : off + len(data)] = data


def _ghcb_get(vcpu: KvmVcpu, name: str) -> int:
    f = GHCB_FIELDS[name]
    g = vcpu.sev_es.ghcb
    return int.from_bytes(vcpu.kvm.host.read(g.spa + f.offset, f.size), "little")


def _ghcb_set(vcpu: KvmVcpu, name: str, value: int) -> None:
    """``ghcb_set_<field>``: store the field and set its valid bit in the GHCB."""
    f = GHCB_FIELDS[name]
    g = vcpu.sev_es.ghcb
    host = vcpu.kvm.host
    host.write(g.spa + f.offset, (value & ((1 << (8 * f.size)) - 1)).to_bytes(f.size, "little"))
    bit = f.offset // 8
    if bit < GHCB_VALID_BITMAP_SIZE * 8:
        a = g.spa + GHCB_VALID_BITMAP_OFFSET + bit // 8
        host.write(a, bytes([host.read(a, 1)[0] | (1 << (bit % 8))]))


def _is_valid(vcpu: KvmVcpu, name: str) -> bool:
    """``kvm_ghcb_<field>_is_valid(svm)``: tested on KVM's snapshot of the bitmap."""
    return bool((vcpu.sev_es.valid_bitmap >> (GHCB_FIELDS[name].offset // 8)) & 1)


# ---- response helpers (svm.h, kvm-qemu-host.md 2.4) ------------------------------------------


def svm_vmgexit_set_return_code(vcpu: KvmVcpu, info1: int, info2: int) -> None:
    """``svm_vmgexit_set_return_code(svm, info1, info2)``: write both into the GHCB."""
    _ghcb_set(vcpu, "sw_exit_info_1", info1)
    _ghcb_set(vcpu, "sw_exit_info_2", info2)


def svm_vmgexit_success(vcpu: KvmVcpu, data: int) -> None:
    """``svm_vmgexit_success(svm, data)``: info1 = 0, info2 = ``data``."""
    svm_vmgexit_set_return_code(vcpu, GHCB_HV_RESP_NO_ACTION, data)


def svm_vmgexit_no_action(vcpu: KvmVcpu, data: int) -> None:
    """``svm_vmgexit_no_action(svm, data)``: info1 = 0, info2 = ``data``."""
    svm_vmgexit_set_return_code(vcpu, GHCB_HV_RESP_NO_ACTION, data)


@traced("kvm")
def svm_vmgexit_bad_input(vcpu: KvmVcpu, suberror: int) -> None:
    """``svm_vmgexit_bad_input(svm, suberror)``: info1 = 2, info2 = ``GHCB_ERR_*``."""
    svm_vmgexit_set_return_code(vcpu, GHCB_HV_RESP_MALFORMED_INPUT, suberror)


def svm_vmgexit_inject_exception(vcpu: KvmVcpu, vector: int) -> None:
    """``svm_vmgexit_inject_exception(svm, vector)``: info1 = 1, info2 = VALID | EXEPT | v."""
    svm_vmgexit_set_return_code(vcpu, GHCB_HV_RESP_ISSUE_EXCEPTION,
                                SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_EXEPT | vector)


def _set_ghcb_msr(vcpu: KvmVcpu, value: int) -> None:
    """``set_ghcb_msr(svm, value)``: VMCB ``control.ghcb_gpa`` = value (the guest's GHCB
    MSR after VMRUN)."""
    vcpu.vmcb.ghcb_gpa = u64(value)


def _set_ghcb_msr_bits(vcpu: KvmVcpu, value: int, mask: int, pos: int) -> None:
    """``set_ghcb_msr_bits(svm, value, mask, pos)``: replace ``mask << pos`` bits."""
    msr = vcpu.vmcb.ghcb_gpa
    msr &= ~(mask << pos)
    msr |= (value & mask) << pos
    vcpu.vmcb.ghcb_gpa = u64(msr)


def _get_ghcb_msr_bits(vcpu: KvmVcpu, mask: int, pos: int) -> int:
    return (vcpu.vmcb.ghcb_gpa >> pos) & mask


def kvm_emulate_ap_reset_hold(vcpu: KvmVcpu) -> int:
    """``kvm_emulate_ap_reset_hold(vcpu)`` (arch/x86/kvm/x86.c, v6.17): skip the
    instruction and ``__kvm_emulate_halt(vcpu, AP_RESET_HOLD, KVM_EXIT_AP_RESET_HOLD)``:
    with the in-kernel APIC the vCPU blocks until a SIPI (not modelled) or a signal.
    Returns 1."""
    return __kvm_emulate_halt(vcpu, "ap_reset_hold", KVM_EXIT_AP_RESET_HOLD)


# ---- vCPU creation ----------------------------------------------------------------------------


def sev_vcpu_create(kvm: KvmVm, vcpu_id: int) -> KvmVcpu:
    """``svm_vcpu_create`` / ``sev_vcpu_create``: a VMCB from the host port; SEV-ES/SNP
    vCPUs get a VMSA page (encrypted and measured at SNP_LAUNCH_FINISH) and the SEV status
    the guest reads from MSR_AMD64_SEV: the enable bits, and for SEV-ES/SNP the VM's
    other ``vmsa_features`` shifted left by 2 (the status MSR reports SEV_FEATURES from
    bit 2, as Linux ``wakeup_cpu_via_vmgexit`` relies on when it writes ``sev_status >>
    2`` into a VMSA).  ``sev_es.vmsa_pfn`` keeps KVM's own VMSA page."""
    sev = kvm.sev
    vmsa_pfn = kvm.allocator.alloc_page() if sev.es_active else None
    status = 0
    if sev.active:
        status |= MSR_AMD64_SEV_ENABLED
    if sev.es_active:
        status |= MSR_AMD64_SEV_ES_ENABLED
        status |= (sev.vmsa_features & ~_SVM_SEV_FEAT_SNP_ACTIVE) << 2
    if sev.snp:
        status |= MSR_AMD64_SEV_SNP_ENABLED
    vmcb = kvm.host.new_vmcb(vcpu_id, sev.asid, kvm.npt, vmsa_pfn=vmsa_pfn,
                             sev_es=sev.es_active, sev_status=int(status), snp_active=sev.snp,
                             sev_enable=sev.active)
    vcpu = KvmVcpu(vcpu_id=vcpu_id, kvm=kvm, vmcb=vmcb)
    vcpu.sev_es.vmsa_pfn = vmsa_pfn
    return vcpu


# ---- GHCB sync, validation, unmap (kvm-qemu-host.md 2.1, 2.2, 2.5) ------------------------------


@traced("kvm")
def sev_es_sync_from_ghcb(vcpu: KvmVcpu) -> None:
    """``sev_es_sync_from_ghcb(svm)`` (2.1): zero the registers; snapshot the valid
    bitmap; RAX/RBX/RCX/RDX/RSI, CPL, XCR0 from the GHCB where valid; exit code and infos
    unconditionally; ``sw_scratch`` where valid; then clear the GHCB's bitmap."""
    es = vcpu.sev_es
    host = vcpu.kvm.host
    g = es.ghcb
    vcpu.regs = {}
    es.valid_bitmap = int.from_bytes(
        host.read(g.spa + GHCB_VALID_BITMAP_OFFSET, GHCB_VALID_BITMAP_SIZE), "little")
    for reg in ("rax", "rbx", "rcx", "rdx", "rsi"):
        vcpu.regs[reg] = _ghcb_get(vcpu, reg) if _is_valid(vcpu, reg) else 0
    vcpu.cpl = _ghcb_get(vcpu, "cpl") if _is_valid(vcpu, "cpl") else 0
    if _is_valid(vcpu, "xcr0"):
        vcpu.xcr0 = _ghcb_get(vcpu, "xcr0")
    vcpu.exit_code = _ghcb_get(vcpu, "sw_exit_code")
    vcpu.exit_info_1 = _ghcb_get(vcpu, "sw_exit_info_1")
    vcpu.exit_info_2 = _ghcb_get(vcpu, "sw_exit_info_2")
    es.sw_scratch = _ghcb_get(vcpu, "sw_scratch") if _is_valid(vcpu, "sw_scratch") else 0
    host.write(g.spa + GHCB_VALID_BITMAP_OFFSET, bytes(GHCB_VALID_BITMAP_SIZE))


@traced("kvm")
def sev_es_sync_to_ghcb(vcpu: KvmVcpu) -> None:
    """``sev_es_sync_to_ghcb(svm)``: RAX, RBX, RCX, RDX into the GHCB (valid bits set)."""
    for reg in ("rax", "rbx", "rcx", "rdx"):
        _ghcb_set(vcpu, reg, vcpu.regs.get(reg, 0))


_NO_EXTRA = (SVM_EXIT_READ_DR7, SVM_EXIT_RDTSC, SVM_EXIT_INVD, SVM_EXIT_RDTSCP, SVM_EXIT_WBINVD,
             SVM_VMGEXIT_NMI_COMPLETE, SVM_VMGEXIT_AP_HLT_LOOP, SVM_VMGEXIT_AP_JUMP_TABLE,
             SVM_VMGEXIT_UNSUPPORTED_EVENT, SVM_VMGEXIT_HV_FEATURES, SVM_VMGEXIT_TERM_REQUEST)


def _validate_exit(vcpu: KvmVcpu, exit_code: int) -> int | None:
    """Per-exit-code requirements of 2.2: None when met, else the GHCB_ERR_* reason."""
    v = lambda name: _is_valid(vcpu, name)  # noqa: E731
    missing = GHCB_ERR_MISSING_INPUT
    snp = vcpu.kvm.sev.snp
    info1 = vcpu.exit_info_1
    if exit_code in _NO_EXTRA:
        return None
    if exit_code == SVM_EXIT_WRITE_DR7:
        return None if v("rax") else missing
    if exit_code == SVM_EXIT_RDPMC:
        return None if v("rcx") else missing
    if exit_code == SVM_EXIT_CPUID:
        if not (v("rax") and v("rcx")):
            return missing
        if vcpu.regs.get("rax") == 0xD and not v("xcr0"):
            return missing
        return None
    if exit_code == SVM_EXIT_IOIO:
        from snpsim.spec.ioio import SVM_IOIO_STR_MASK, SVM_IOIO_TYPE_MASK

        if info1 & SVM_IOIO_STR_MASK:
            return None if v("sw_scratch") else missing
        if not info1 & SVM_IOIO_TYPE_MASK:
            return None if v("rax") else missing
        return None
    if exit_code == SVM_EXIT_MSR:
        if not v("rcx"):
            return missing
        if info1 and not (v("rax") and v("rdx")):
            return missing
        return None
    if exit_code == SVM_EXIT_VMMCALL:
        return None if v("rax") and v("cpl") else missing
    if exit_code == SVM_EXIT_MONITOR:
        return None if v("rax") and v("rcx") and v("rdx") else missing
    if exit_code == SVM_EXIT_MWAIT:
        return None if v("rax") and v("rcx") else missing
    if exit_code in (SVM_VMGEXIT_MMIO_READ, SVM_VMGEXIT_MMIO_WRITE):
        return None if v("sw_scratch") else missing
    if exit_code == SVM_VMGEXIT_AP_CREATION:
        if not snp:
            return missing
        if (info1 & 0xFFFFFFFF) != SVM_VMGEXIT_AP_DESTROY and not v("rax"):
            return missing
        return None
    if exit_code == SVM_VMGEXIT_PSC:
        return None if snp and v("sw_scratch") else missing
    if exit_code in (SVM_VMGEXIT_GUEST_REQUEST, SVM_VMGEXIT_EXT_GUEST_REQUEST):
        i2 = vcpu.exit_info_2
        if not snp or info1 & (PAGE_SIZE - 1) or i2 & (PAGE_SIZE - 1) or info1 == i2:
            return missing
        return None
    return GHCB_ERR_INVALID_EVENT


@traced("kvm")
def sev_es_validate_vmgexit(vcpu: KvmVcpu) -> int:
    """``sev_es_validate_vmgexit(svm)`` (2.2): ``ghcb_usage`` (read live) != 0 ->
    INVALID_USAGE; sw_exit_code/info1/info2 not valid -> MISSING_INPUT; then the table of
    required fields per exit code (MISSING_INPUT), unknown exit codes -> INVALID_EVENT.
    On error: ``svm_vmgexit_bad_input`` (info1 = 2, info2 = reason), return 1.  Else 0."""
    g = vcpu.sev_es.ghcb
    usage = int.from_bytes(vcpu.kvm.host.read(g.spa + GHCB_USAGE_OFFSET, 4), "little")
    reason: int | None
    if usage != 0:
        reason = GHCB_ERR_INVALID_USAGE
    elif not (_is_valid(vcpu, "sw_exit_code") and _is_valid(vcpu, "sw_exit_info_1")
              and _is_valid(vcpu, "sw_exit_info_2")):
        reason = GHCB_ERR_MISSING_INPUT
    else:
        reason = _validate_exit(vcpu, vcpu.exit_code)
    if reason is None or not check_enabled("sev_es_validate_vmgexit:fields"):
        return 0
    vcpu.kvm.pr(f"vmgexit: exit code {vcpu.exit_code:#x} is not valid (reason {int(reason)})")
    svm_vmgexit_bad_input(vcpu, reason)
    return 1


@traced("kvm")
def sev_es_unmap_ghcb(vcpu: KvmVcpu) -> None:
    """``sev_es_unmap_ghcb(svm)`` (2.5), on the way back into the guest: a kernel scratch
    buffer is written back to ``sw_scratch`` if ``ghcb_sa_sync`` and freed;
    ``sev_es_sync_to_ghcb``; unmap."""
    from .kvm_main import kvm_write_guest

    es = vcpu.sev_es
    es.ap_reset_hold_type = 0
    if es.ghcb is None:
        return
    sa = es.ghcb_sa
    if es.ghcb_sa_free and sa is not None and sa.buf is not None:
        if es.ghcb_sa_sync:
            kvm_write_guest(vcpu.kvm, es.sw_scratch, bytes(sa.buf[: es.ghcb_sa_len]))
            es.ghcb_sa_sync = False
        es.ghcb_sa_free = False
        es.ghcb_sa = None
    sev_es_sync_to_ghcb(vcpu)
    es.ghcb = None


# ---- the scratch area (2.3) ----------------------------------------------------------------


def _e_scratch(vcpu: KvmVcpu, why: str) -> int:
    vcpu.kvm.pr(f"vmgexit: scratch area invalid: {why}")
    svm_vmgexit_bad_input(vcpu, GHCB_ERR_INVALID_SCRATCH_AREA)
    return 1


@traced("kvm", name="setup_vmgexit_scratch")
def setup_vmgexit_scratch_original(vcpu: KvmVcpu, sync: bool, len_: int) -> int:
    """``setup_vmgexit_scratch(svm, sync, len)``, original (v6.11 ... v7.0.11; 2.3a).

    ``len_`` bytes (for PSC the guest's SW_EXITINFO2).  Scratch GPA 0 or ``beg + len``
    wrapping -> INVALID_SCRATCH_AREA.  Inside the GHCB page: must lie in [GHCB + 0x800,
    GHCB + 0xFF0) (end = beg + len); the scratch is a pointer into the mapped GHCB, with no
    copy.  Outside: ``len > 65536`` -> INVALID_SCRATCH_AREA; a kernel buffer filled by
    ``kvm_read_guest`` (-EFAULT if that fails).  Returns 0, 1 (answer written) or -errno.
    """
    es = vcpu.sev_es
    ghcb_gpa = es.ghcb.gpa
    beg = es.sw_scratch
    if not beg:
        return _e_scratch(vcpu, "scratch area not set")
    end = beg + len_
    if end > U64_MAX or end < beg:
        return _e_scratch(vcpu, "scratch area wraps")
    if beg & ~(PAGE_SIZE - 1) == ghcb_gpa:
        lo = ghcb_gpa + GHCB_SHARED_BUF_OFFSET
        hi = lo + GHCB_SHARED_BUF_SIZE
        if (beg < lo or end > hi) and check_enabled("setup_vmgexit_scratch:window"):
            return _e_scratch(vcpu, f"scratch [{beg:#x}, {end:#x}) outside the shared buffer")
        sa = Scratch(spa=es.ghcb.spa + (beg - ghcb_gpa))
    else:
        from .kvm_main import kvm_read_guest

        if len_ > GHCB_SCRATCH_AREA_LIMIT:
            return _e_scratch(vcpu, f"scratch length {len_:#x} exceeds the limit")
        data = kvm_read_guest(vcpu.kvm, beg, len_)
        if data is None:
            return -errno.EFAULT
        sa = Scratch(buf=bytearray(data))
        es.ghcb_sa_sync = sync
        es.ghcb_sa_free = True
    es.ghcb_sa = sa
    es.ghcb_sa_len = len_
    return 0


@traced("kvm", name="setup_vmgexit_scratch")
def setup_vmgexit_scratch(vcpu: KvmVcpu, sync: bool, min_len: int) -> int:
    """``setup_vmgexit_scratch(svm, sync, min_len)``, hardened (Linux 7.0.12; 2.3b).

    ``min_len`` bytes (PSC: 8, the header).  0 -> WARN + INVALID_SCRATCH_AREA.  Inside the
    GHCB: window check with ``end = beg + min_len``; ``ghcb_sa_len`` = bytes from the
    scratch start to the end of the shared buffer.  Outside: rejected when the VM's GHCB
    version >= 2; else as the original with ``ghcb_sa_len = min_len``.
    """
    es = vcpu.sev_es
    ghcb_gpa = es.ghcb.gpa
    if not min_len:
        vcpu.kvm.pr("WARN: setup_vmgexit_scratch with min_len 0")
        return _e_scratch(vcpu, "min_len 0")
    beg = es.sw_scratch
    if not beg:
        return _e_scratch(vcpu, "scratch area not set")
    end = beg + min_len
    if end > U64_MAX or end < beg:
        return _e_scratch(vcpu, "scratch area wraps")
    if beg & ~(PAGE_SIZE - 1) == ghcb_gpa:
        lo = ghcb_gpa + GHCB_SHARED_BUF_OFFSET
        hi = lo + GHCB_SHARED_BUF_SIZE
        if (beg < lo or end > hi) and check_enabled("setup_vmgexit_scratch:window"):
            return _e_scratch(vcpu, f"scratch [{beg:#x}, {end:#x}) outside the shared buffer")
        es.ghcb_sa = Scratch(spa=es.ghcb.spa + (beg - ghcb_gpa))
        es.ghcb_sa_len = hi - beg
        return 0
    if vcpu.kvm.sev.ghcb_version >= 2:
        return _e_scratch(vcpu, "scratch outside the GHCB with GHCB version >= 2")
    from .kvm_main import kvm_read_guest

    if min_len > GHCB_SCRATCH_AREA_LIMIT:
        return _e_scratch(vcpu, f"scratch length {min_len:#x} exceeds the limit")
    data = kvm_read_guest(vcpu.kvm, beg, min_len)
    if data is None:
        return -errno.EFAULT
    es.ghcb_sa = Scratch(buf=bytearray(data))
    es.ghcb_sa_sync = sync
    es.ghcb_sa_free = True
    es.ghcb_sa_len = min_len
    return 0


def _setup_scratch(vcpu: KvmVcpu, sync: bool, len_: int) -> int:
    kvm = vcpu.kvm
    if kvm.profile.knob("scratch") == "original":
        fn = kvm.profile.call("setup_vmgexit_scratch", setup_vmgexit_scratch_original)
    else:
        fn = kvm.profile.call("setup_vmgexit_scratch", setup_vmgexit_scratch)
    return fn(vcpu, sync, len_)


# ---- GHCB PSC (section 3) -------------------------------------------------------------------


def _psc_hdr(vcpu: KvmVcpu) -> tuple[int, int]:
    raw = vcpu.sev_es.ghcb_sa.read(vcpu.kvm.host, 0, PSC_HDR_SIZE)
    return int.from_bytes(raw[0:2], "little"), int.from_bytes(raw[2:4], "little")


def _psc_set_cur_entry(vcpu: KvmVcpu, value: int) -> None:
    vcpu.sev_es.ghcb_sa.write(vcpu.kvm.host, 0, u16(value).to_bytes(2, "little"))


def _psc_entry(vcpu: KvmVcpu, idx: int) -> PscEntry:
    raw = vcpu.sev_es.ghcb_sa.read(vcpu.kvm.host, PSC_HDR_SIZE + PSC_ENTRY_SIZE * idx, 8)
    return PscEntry.decode(raw)


def _psc_set_entry(vcpu: KvmVcpu, idx: int, e: PscEntry) -> None:
    vcpu.sev_es.ghcb_sa.write(vcpu.kvm.host, PSC_HDR_SIZE + PSC_ENTRY_SIZE * idx, e.encode_bytes())


def _set_exit_hypercall_ret(vcpu: KvmVcpu) -> None:
    """``run->hypercall.ret`` before a PSC exit: 0 (KVM zeroes it for QEMU <= 9.2,
    kvm-qemu-host.md 3.4), or, in a profile that does not zero it, whatever
    ``stale_hypercall_ret`` says a previous exit left there (bug report R6)."""
    profile = vcpu.kvm.profile
    if profile.knob("zero_hypercall_ret"):
        vcpu.run.hypercall.ret = 0
    elif profile.knob("stale_hypercall_ret") is not None:
        vcpu.run.hypercall.ret = u64(profile.knob("stale_hypercall_ret"))


@traced("kvm")
def snp_complete_psc(vcpu: KvmVcpu, psc_ret: int) -> None:
    """``snp_complete_psc(svm, psc_ret)`` (3.1): reset the in-flight state and answer
    info1 = 0, info2 = ``psc_ret`` (0 or a VMGEXIT_PSC_ERROR_*)."""
    es = vcpu.sev_es
    es.psc_inflight = 0
    es.psc_idx = 0
    es.psc_2m = False
    vcpu.kvm.profile.call("snp_complete_psc_answer", svm_vmgexit_no_action)(vcpu, psc_ret)


@traced("kvm")
def __snp_complete_one_psc(vcpu: KvmVcpu) -> None:
    """``__snp_complete_one_psc(svm)`` (3.2): mark the in-flight entries done
    (``cur_page`` = 512 for a 2M entry, 1 for 4K, from each entry's own ``pagesize``) and
    set ``hdr.cur_entry`` past them."""
    es = vcpu.sev_es
    idx = es.psc_idx
    while es.psc_inflight:
        e = _psc_entry(vcpu, idx)
        cur_page = PTRS_PER_PMD if e.pagesize else 1
        _psc_set_entry(vcpu, idx, PscEntry(cur_page, e.gfn, e.operation, e.pagesize, e.reserved))
        es.psc_inflight -= 1
        idx += 1
    _psc_set_cur_entry(vcpu, idx)


@traced("kvm")
def snp_complete_one_psc(vcpu: KvmVcpu) -> int:
    """``snp_complete_one_psc(vcpu)`` (3.3), the ``complete_userspace_io`` callback:
    ``run->hypercall.ret != 0`` -> GENERIC, return 1 (entries untouched); else mark the
    range done and ``snp_begin_psc`` again (which may exit to userspace again)."""
    if vcpu.run.hypercall.ret:
        snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_GENERIC)
        return 1
    __snp_complete_one_psc(vcpu)
    return snp_begin_psc(vcpu)


@traced("kvm")
def snp_begin_psc(vcpu: KvmVcpu) -> int:
    """``snp_begin_psc(svm, psc)`` (3.4, hardened 3.6): find the next range of same-op,
    contiguous, untouched entries and exit to userspace with KVM_HC_MAP_GPA_RANGE.

    Answers (info2, info1 = 0): GENERIC (hypercall exit not enabled, stale in-flight
    state, hardened: entry bound > 253); INVALID_HDR (``end_entry`` >= 253, hardened: >=
    the entries the scratch holds); INVALID_ENTRY (``cur_page`` > npages or a GFN not
    aligned to npages); 0 when nothing is left.  Ops other than 1/2 are completed with no
    action.  Returns 1 (answered) or 0 (KVM_EXIT_HYPERCALL set up).
    """
    kvm = vcpu.kvm
    es = vcpu.sev_es
    hardened = kvm.profile.knob("scratch") != "original"
    if not user_exit_on_hypercall(kvm, KVM_HC_MAP_GPA_RANGE):
        snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_GENERIC)
        return 1
    max_nr_entries = VMGEXIT_PSC_MAX_COUNT
    if hardened:
        max_nr_entries = (es.ghcb_sa_len - PSC_HDR_SIZE) // PSC_ENTRY_SIZE
        if max_nr_entries > VMGEXIT_PSC_MAX_COUNT:
            kvm.pr("WARN: PSC scratch holds more than VMGEXIT_PSC_MAX_COUNT entries")
            snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_GENERIC)
            return 1
    while True:  # next_range:
        # The guest may write to the PSC buffer at any time: read what is needed once.
        if es.psc_inflight:
            kvm.pr("WARN: PSC with entries still in flight")
            snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_GENERIC)
            return 1
        idx_start, idx_end = _psc_hdr(vcpu)
        if idx_end >= max_nr_entries and check_enabled("snp_begin_psc:header"):
            snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_INVALID_HDR)
            return 1
        # FIND THE START OF WORK: skip entries already done, advancing hdr.cur_entry.
        idx = idx_start
        cur_entry = idx_start
        found = None
        while idx <= idx_end:
            e = _psc_entry(vcpu, idx)
            gfn = e.gfn
            huge = bool(e.pagesize)
            npages = PTRS_PER_PMD if huge else 1
            if (e.cur_page > npages or gfn % npages) and check_enabled("snp_begin_psc:entry"):
                snp_complete_psc(vcpu, VMGEXIT_PSC_ERROR_INVALID_ENTRY)
                return 1
            if e.cur_page:
                # A partly done 2M entry: the rest is processed as 4K pages.
                npages -= e.cur_page
                gfn += e.cur_page
                huge = False
            if npages:
                found = (e, gfn, huge, npages)
                break
            idx += 1
            cur_entry += 1
            _psc_set_cur_entry(vcpu, cur_entry)
        if found is None:
            snp_complete_psc(vcpu, 0)
            return 1
        e, gfn, huge, npages = found
        es.psc_2m = huge
        es.psc_idx = idx
        es.psc_inflight = 1
        # COALESCE: following entries with the same op, contiguous with the *unadjusted*
        # start GFN (upstream; docs/findings.md F1), untouched and of the same size.
        base = gfn if kvm.profile.knob("psc_coalesce_base") == "range" else e.gfn
        for nxt in range(idx + 1, idx_end + 1):
            f = _psc_entry(vcpu, nxt)
            if (f.operation != e.operation or f.gfn != base + npages or f.cur_page
                    or bool(f.pagesize) != huge):
                break
            es.psc_inflight += 1
            npages += PTRS_PER_PMD if huge else 1
        if e.operation in (VMGEXIT_PSC_OP_PRIVATE, VMGEXIT_PSC_OP_SHARED):
            # EXIT TO USERSPACE: KVM_HC_MAP_GPA_RANGE.
            run = vcpu.run
            run.exit_reason = KVM_EXIT_HYPERCALL
            run.hypercall.nr = KVM_HC_MAP_GPA_RANGE
            _set_exit_hypercall_ret(vcpu)
            run.hypercall.args[0] = u64(gfn << PAGE_SHIFT)
            run.hypercall.args[1] = npages
            attrs = (KVM_MAP_GPA_RANGE_ENCRYPTED if e.operation == VMGEXIT_PSC_OP_PRIVATE
                     else KVM_MAP_GPA_RANGE_DECRYPTED)
            attrs |= KVM_MAP_GPA_RANGE_PAGE_SZ_2M if e.pagesize else KVM_MAP_GPA_RANGE_PAGE_SZ_4K
            run.hypercall.args[2] = attrs
            vcpu.complete_userspace_io = snp_complete_one_psc
            emit_instant("kvm", "KVM_EXIT_HYPERCALL", gpa=gfn << PAGE_SHIFT, npages=npages,
                         attrs=attrs)
            return 0
        # Only private/shared conversions are supported; PSMASH/UNSMASH hints and
        # unknown operations are completed with no action.
        __snp_complete_one_psc(vcpu)


# ---- MSR-protocol PSC (4.1) -----------------------------------------------------------------


@traced("kvm")
def snp_complete_psc_msr(vcpu: KvmVcpu) -> int:
    """``snp_complete_psc_msr(vcpu)``: GHCB MSR = 0x8000000000000015 if
    ``run->hypercall.ret != 0`` else 0x015.  Returns 1."""
    if vcpu.run.hypercall.ret:
        _set_ghcb_msr(vcpu, GHCB_MSR_PSC_RESP_ERROR)
    else:
        _set_ghcb_msr(vcpu, GHCB_MSR_PSC_RESP)
    return 1


@traced("kvm")
def snp_begin_psc_msr(vcpu: KvmVcpu, ghcb_msr: int) -> int:
    """``snp_begin_psc_msr(svm, ghcb_msr)`` (4.1): GPA from bits 51:12, op from 55:52.
    Op not 1/2, or hypercall exit not enabled -> MSR = GHCB_MSR_PSC_RESP_ERROR, return 1.
    Else KVM_EXIT_HYPERCALL (gpa, 1, 0x10 or 0 | 4K), completed by
    ``snp_complete_psc_msr``; return 0."""
    gpa = GHCB_MSR_PSC_REQ_TO_GFN(ghcb_msr) << PAGE_SHIFT
    op = GHCB_MSR_PSC_REQ_TO_OP(ghcb_msr)
    if op not in (VMGEXIT_PSC_OP_PRIVATE, VMGEXIT_PSC_OP_SHARED):
        _set_ghcb_msr(vcpu, GHCB_MSR_PSC_RESP_ERROR)
        return 1
    if not user_exit_on_hypercall(vcpu.kvm, KVM_HC_MAP_GPA_RANGE):
        _set_ghcb_msr(vcpu, GHCB_MSR_PSC_RESP_ERROR)
        return 1
    run = vcpu.run
    run.exit_reason = KVM_EXIT_HYPERCALL
    run.hypercall.nr = KVM_HC_MAP_GPA_RANGE
    _set_exit_hypercall_ret(vcpu)
    run.hypercall.args[0] = gpa
    run.hypercall.args[1] = 1
    run.hypercall.args[2] = ((KVM_MAP_GPA_RANGE_ENCRYPTED if op == VMGEXIT_PSC_OP_PRIVATE
                              else KVM_MAP_GPA_RANGE_DECRYPTED) | KVM_MAP_GPA_RANGE_PAGE_SZ_4K)
    vcpu.complete_userspace_io = vcpu.kvm.profile.call("snp_complete_psc_msr", snp_complete_psc_msr)
    return 0


# ---- MSR protocol (section 4) -----------------------------------------------------------------


def _terminate(vcpu: KvmVcpu, data0: int) -> int:
    run = vcpu.run
    run.exit_reason = KVM_EXIT_SYSTEM_EVENT
    run.system_event.type = KVM_SYSTEM_EVENT_SEV_TERM
    run.system_event.ndata = 1
    run.system_event.data[0] = data0
    return 0


@traced("kvm")
def sev_handle_vmgexit_msr_protocol(vcpu: KvmVcpu) -> int:
    """``sev_handle_vmgexit_msr_protocol(svm)`` (4): the request in GHCB MSR bits 11:0.

    SEV_INFO, CPUID, AP_RESET_HOLD, HV_FT, PREF_GPA, REG_GPA (no validation of the GFN),
    PSC, TERM (-> KVM_EXIT_SYSTEM_EVENT SEV_TERM, data[0] = the MSR value, return 0).
    PREF_GPA/REG_GPA/PSC from a non-SNP guest terminate too.  Any other request leaves
    the MSR unchanged and resumes (1)."""
    kvm = vcpu.kvm
    sev = kvm.sev
    msr = vcpu.vmcb.ghcb_gpa
    info = msr & GHCB_MSR_INFO_MASK
    ret = 1
    if info == GHCB_MSR_SEV_INFO_REQ:
        _set_ghcb_msr(vcpu, GHCB_MSR_SEV_INFO(sev.ghcb_version, GHCB_VERSION_MIN,
                                              kvm.host.cbit & 0x3F))
    elif info == GHCB_MSR_CPUID_REQ:
        from .svm import svm_invoke_exit_handler

        fn = _get_ghcb_msr_bits(vcpu, GHCB_MSR_CPUID_FUNC_MASK, GHCB_MSR_CPUID_FUNC_POS)
        reg = _get_ghcb_msr_bits(vcpu, GHCB_MSR_CPUID_REG_MASK, GHCB_MSR_CPUID_REG_POS)
        vcpu.regs["rax"] = fn
        vcpu.regs["rcx"] = 0
        ret = svm_invoke_exit_handler(vcpu, SVM_EXIT_CPUID)
        if not ret:
            return ret
        value = vcpu.regs.get(("rax", "rbx", "rcx", "rdx")[reg], 0)
        _set_ghcb_msr_bits(vcpu, value, GHCB_MSR_CPUID_VALUE_MASK, GHCB_MSR_CPUID_VALUE_POS)
        _set_ghcb_msr_bits(vcpu, GHCB_MSR_CPUID_RESP, GHCB_MSR_INFO_MASK, GHCB_MSR_INFO_POS)
    elif info == GHCB_MSR_AP_RESET_HOLD_REQ:
        vcpu.sev_es.ap_reset_hold_type = 1
        ret = kvm_emulate_ap_reset_hold(vcpu)
        _set_ghcb_msr_bits(vcpu, 0, GHCB_MSR_AP_RESET_HOLD_RESULT_MASK,
                           GHCB_MSR_AP_RESET_HOLD_RESULT_POS)
        _set_ghcb_msr_bits(vcpu, GHCB_MSR_AP_RESET_HOLD_RESP, GHCB_MSR_INFO_MASK, GHCB_MSR_INFO_POS)
    elif info == GHCB_MSR_HV_FT_REQ:
        _set_ghcb_msr_bits(vcpu, GHCB_HV_FT_SUPPORTED, GHCB_MSR_HV_FT_MASK, GHCB_MSR_HV_FT_POS)
        _set_ghcb_msr_bits(vcpu, GHCB_MSR_HV_FT_RESP, GHCB_MSR_INFO_MASK, GHCB_MSR_INFO_POS)
    elif info == GHCB_MSR_PREF_GPA_REQ:
        if not sev.snp:
            return _terminate(vcpu, vcpu.vmcb.ghcb_gpa)
        _set_ghcb_msr_bits(vcpu, GHCB_MSR_PREF_GPA_NONE, GHCB_MSR_GPA_VALUE_MASK,
                           GHCB_MSR_GPA_VALUE_POS)
        _set_ghcb_msr_bits(vcpu, GHCB_MSR_PREF_GPA_RESP, GHCB_MSR_INFO_MASK, GHCB_MSR_INFO_POS)
    elif info == GHCB_MSR_REG_GPA_REQ:
        if not sev.snp:
            return _terminate(vcpu, vcpu.vmcb.ghcb_gpa)
        gfn = _get_ghcb_msr_bits(vcpu, GHCB_MSR_GPA_VALUE_MASK, GHCB_MSR_GPA_VALUE_POS)
        vcpu.sev_es.ghcb_registered_gpa = u64(gfn << PAGE_SHIFT)
        _set_ghcb_msr_bits(vcpu, gfn, GHCB_MSR_GPA_VALUE_MASK, GHCB_MSR_GPA_VALUE_POS)
        _set_ghcb_msr_bits(vcpu, GHCB_MSR_REG_GPA_RESP, GHCB_MSR_INFO_MASK, GHCB_MSR_INFO_POS)
    elif info == GHCB_MSR_PSC_REQ:
        if not sev.snp:
            return _terminate(vcpu, vcpu.vmcb.ghcb_gpa)
        ret = snp_begin_psc_msr(vcpu, msr)
    elif info == GHCB_MSR_TERM_REQ:
        reason_set = _get_ghcb_msr_bits(vcpu, GHCB_MSR_TERM_REASON_SET_MASK,
                                        GHCB_MSR_TERM_REASON_SET_POS)
        reason_code = _get_ghcb_msr_bits(vcpu, GHCB_MSR_TERM_REASON_MASK, GHCB_MSR_TERM_REASON_POS)
        kvm.pr(f"SEV-ES guest requested termination: {reason_set:#x}:{reason_code:#x}")
        return _terminate(vcpu, vcpu.vmcb.ghcb_gpa)
    return ret


# ---- IOIO string, RMP faults --------------------------------------------------------------------


@traced("kvm")
def sev_es_string_io(vcpu: KvmVcpu, size: int, port: int, is_in: bool) -> int:
    """``sev_es_string_io(svm, size, port, in)``: the data is in the scratch area
    (``count = SW_EXITINFO2`` items of ``size`` bytes); the scratch is set up with
    ``count * size`` bytes, then KVM_EXIT_IO with that data (OUTS) or expecting it (INS;
    written back into the scratch on completion).  Overflow of ``count * size`` ->
    -EINVAL.  Returns 0, 1 (scratch answer) or -errno."""
    from snpsim.spec.kvm_uapi import KVM_EXIT_IO, KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT

    count = vcpu.exit_info_2
    nbytes = count * size
    if size == 0 or nbytes > 0xFFFFFFFF:
        return -errno.EINVAL
    r = _setup_scratch(vcpu, is_in, nbytes)
    if r:
        return r
    sa = vcpu.sev_es.ghcb_sa
    run = vcpu.run
    run.exit_reason = KVM_EXIT_IO
    run.io.direction = KVM_EXIT_IO_IN if is_in else KVM_EXIT_IO_OUT
    run.io.size = size
    run.io.port = port
    run.io.count = count
    run.io.data = bytes(nbytes) if is_in else sa.read(vcpu.kvm.host, 0, nbytes)

    def complete(v: KvmVcpu) -> int:
        if is_in:
            sa.write(v.kvm.host, 0, v.run.io.data[:nbytes])
        return 1

    vcpu.complete_userspace_io = complete
    return 0


@traced("kvm")
def sev_handle_rmp_fault(vcpu: KvmVcpu, gpa: int, error_code: int) -> None:
    """``sev_handle_rmp_fault(vcpu, gpa, error_code)`` (7.6): after a successful MMU fault
    with PFERR_GUEST_RMP: if the RMP entry of the private page is 2 MiB, PSMASH it and zap
    the NPT from the faulting GFN for 512 GFNs; otherwise nothing (spurious/raced)."""
    from .kvm_main import gfn_to_memslot

    kvm = vcpu.kvm
    gfn = gpa >> PAGE_SHIFT
    if not kvm_mem_is_private(kvm, gfn):
        kvm.pr(f"WARN: RMP fault on shared GFN {gfn:#x}")
        return
    slot = gfn_to_memslot(kvm, gfn)
    if slot is None or slot.gmem_file is None:
        kvm.pr(f"WARN: RMP fault on GFN {gfn:#x} without guest_memfd")
        return
    r, pfn, _order = kvm_gmem_get_pfn(kvm, slot, gfn)
    if r:
        kvm.pr(f"WARN: RMP fault: no guest_memfd page for GFN {gfn:#x}")
        return
    rc, assigned, level = snp_lookup_rmpentry(kvm, pfn)
    if rc or not assigned:
        kvm.pr(f"WARN: RMP fault: PFN {pfn:#x} not assigned")
        return
    if level == PG_LEVEL_4K:
        emit_instant("kvm", "rmp fault spurious", gfn=gfn, pfn=pfn)
        return
    ret = snp_rmptable_psmash(kvm, pfn)
    if ret:
        rc, assigned, level = snp_lookup_rmpentry(kvm, pfn)
        if not (assigned and level == PG_LEVEL_4K):
            kvm.pr(f"WARN: PSMASH failed for GFN {gfn:#x} PFN {pfn:#x} ret {ret}")
    kvm_zap_gfn_range(kvm, gfn, gfn + PTRS_PER_PMD)


# ---- SNP guest requests (kvm-qemu-host.md 2.2, 7.3; bug report R7) -----------------------------


@dataclass
class SevDataSnpGuestRequest:
    """``struct sev_data_snp_guest_request`` (include/linux/psp-sev.h): the firmware
    guest context (``gctx_paddr``; model: the firmware's context object), ``req_paddr``
    and ``res_paddr`` (SPAs of the request and response pages, bytes)."""

    gctx_paddr: Any = None
    req_paddr: int = 0
    res_paddr: int = 0


def snp_guest_req_init(kvm: KvmVm) -> None:
    """``snp_guest_req_init(kvm)`` (arch/x86/kvm/svm/sev.c, v6.11+): KVM's own request
    and response pages for SNP guest requests ("bounce pages"; the guest's pages are
    never handed to the firmware).  Model choices (docs/model-choices.md): allocated on
    the first guest request, not at KVM_SEV_INIT2 (runs without guest requests allocate
    nothing), and both pages hypervisor-owned at rest: the response page becomes
    firmware-owned for each command and is reclaimed after it, as in the pre-v6.11 KVM
    code of bug report R7 (``snp_setup_guest_buf``/``snp_cleanup_guest_buf``); v6.11+
    keeps it firmware-owned for the VM's life (``snp_alloc_firmware_page``)."""
    sev = kvm.sev
    if sev.guest_req_pfn is None:
        sev.guest_req_pfn = kvm.allocator.alloc_page()
        sev.guest_resp_pfn = kvm.allocator.alloc_page()


@traced("kvm")
def snp_page_reclaim(kvm: KvmVm, pfn: int) -> int:
    """``snp_page_reclaim(kvm, pfn)`` (arch/x86/kvm/svm/sev.c, v6.11+; kvm-qemu-host.md
    7.3): firmware SNP_PAGE_RECLAIM of the 4 KiB page ``pfn``; a firmware failure marks
    the VM bugged (KVM_BUG), leaks the page and returns -EIO; then
    ``kvm_rmp_make_shared(kvm, pfn, 4K)`` (-EIO on failure).  Returns 0 or -EIO."""
    from .virt_svm_sev import snp_leak_pages

    fw_err = kvm.host.firmware.snp_page_reclaim(pfn << PAGE_SHIFT)
    if fw_err:
        kvm.pr(f"WARN: Failed to reclaim PFN {pfn:#x}, rc {-errno.EIO} fw_err {fw_err}")
        kvm.bugged = True
        snp_leak_pages(kvm, pfn, 1)
        return -errno.EIO
    if kvm_rmp_make_shared(kvm, pfn, PG_LEVEL_4K):
        return -errno.EIO
    return 0


@traced("kvm")
def snp_setup_guest_buf(kvm: KvmVm, data: SevDataSnpGuestRequest, req_gpa: int, resp_gpa: int) -> int:
    """``snp_setup_guest_buf(kvm, data, req_gpa, resp_gpa)`` (pre-v6.11 sev.c, the KVM
    guest-request patch v16, 2024; on KVM's pages as :func:`snp_guest_req_init` says):
    GPAs not page aligned -> -EINVAL; copy the request page (4 KiB at ``req_gpa``,
    ``kvm_read_guest`` through the memslots: the guest's shared page) into KVM's request
    page (-EIO if no memslot); clear KVM's response page; make it firmware-owned
    (``rmp_make_private(pfn, 0, PG_LEVEL_4K, 0, true)``: Assigned, ASID 0, Immutable;
    failure -> -EINVAL); fill ``data``.  Returns 0 or -errno.

    Clearing the response page is a host write (model choice: so that a command that
    writes no response never hands the guest an earlier one).  If the page was left
    firmware-owned by an earlier request (bug report R7), that write takes a host #PF
    with X86_PF_RMP: a host oops (``Kvm.oopses``, KVM_RUN returns -EFAULT)."""
    from .kvm_main import kvm_read_guest

    if req_gpa & (PAGE_SIZE - 1) or resp_gpa & (PAGE_SIZE - 1):
        return -errno.EINVAL
    snp_guest_req_init(kvm)
    sev = kvm.sev
    assert sev.guest_req_pfn is not None and sev.guest_resp_pfn is not None
    req = kvm_read_guest(kvm, req_gpa, PAGE_SIZE)
    if req is None:
        return -errno.EIO
    req_spa = sev.guest_req_pfn << PAGE_SHIFT
    resp_spa = sev.guest_resp_pfn << PAGE_SHIFT
    kvm.host.write(req_spa, req)
    kvm.host.write(resp_spa, bytes(PAGE_SIZE))
    if rmp_make_private(kvm, sev.guest_resp_pfn, 0, PG_LEVEL_4K, 0, True):
        return -errno.EINVAL
    data.gctx_paddr = sev.gctx
    data.req_paddr = req_spa
    data.res_paddr = resp_spa
    return 0


@traced("kvm")
def snp_cleanup_guest_buf(kvm: KvmVm, data: SevDataSnpGuestRequest) -> int:
    """``snp_cleanup_guest_buf(data)`` (pre-v6.11 sev.c): return the response page to
    the hypervisor -- :func:`snp_page_reclaim` (firmware SNP_PAGE_RECLAIM, then
    ``rmp_make_shared``; the page is leaked if either fails).  Returns 0 or -EIO."""
    return snp_page_reclaim(kvm, data.res_paddr >> PAGE_SHIFT)


@traced("kvm")
def issue_snp_guest_request(kvm: KvmVm, data: SevDataSnpGuestRequest) -> tuple[int, int]:
    """Model-only name for ``sev_issue_cmd(kvm, SEV_CMD_SNP_GUEST_REQUEST, &data,
    &fw_err)``: the firmware's SNP_GUEST_REQUEST.  Returns ``(ret, fw_err)``: ret 0, or
    -EIO when the firmware reports an error (sev-dev ``__sev_do_cmd_locked``); fw_err
    the SEV_RET_* status (u32)."""
    fw_err = int(kvm.host.firmware.snp_guest_request(data.gctx_paddr, data.req_paddr,
                                                     data.res_paddr))
    return (-errno.EIO if fw_err else 0), fw_err


@traced("kvm")
def copy_guest_response(kvm: KvmVm, data: SevDataSnpGuestRequest, resp_gpa: int) -> int:
    """Model-only name for the ``kvm_write_guest(kvm, resp_gpa, sev->guest_resp_buf,
    PAGE_SIZE)`` of ``snp_handle_guest_req`` (v6.11+): KVM's response page (4 KiB, a
    host read) into the guest's page at ``resp_gpa``.  Returns 0 or -EIO."""
    from .kvm_main import kvm_write_guest

    if kvm_write_guest(kvm, resp_gpa, kvm.host.read(data.res_paddr, PAGE_SIZE)):
        return -errno.EIO
    return 0


@traced("kvm")
def __snp_handle_guest_req(kvm: KvmVm, req_gpa: int, resp_gpa: int) -> tuple[int, int]:
    """``__snp_handle_guest_req(kvm, req_gpa, resp_gpa, &fw_err)`` with R7's fix (KVM
    guest-request patch v16, 2024: "always call the cleanup"): SETUP
    (:func:`snp_setup_guest_buf`), FIRMWARE (SNP_GUEST_REQUEST), CLEANUP
    (:func:`snp_cleanup_guest_buf`, also after a firmware error), COPY BACK (the response
    page into the guest's, also after a firmware error, as v6.11+ does).  A cleanup or
    copy failure turns ``ret`` into -EIO.  Override point ``__snp_handle_guest_req``
    (bug report R7's variant skips the cleanup on the error path).  Returns ``(ret,
    fw_err)``: ret 0 or -errno, fw_err the firmware status (0 when it was not called)."""
    if not kvm.sev.snp:
        return -errno.EINVAL, 0
    data = SevDataSnpGuestRequest()
    # SETUP
    ret = snp_setup_guest_buf(kvm, data, req_gpa, resp_gpa)
    if ret:
        return ret, 0
    # FIRMWARE
    ret, fw_err = issue_snp_guest_request(kvm, data)
    # CLEANUP: always, so that no page is left firmware-owned when the command returns.
    if snp_cleanup_guest_buf(kvm, data):
        return ret or -errno.EIO, fw_err
    # COPY BACK
    if copy_guest_response(kvm, data, resp_gpa):
        return ret or -errno.EIO, fw_err
    return ret, fw_err


@traced("kvm")
def snp_handle_guest_req(vcpu: KvmVcpu, req_gpa: int, resp_gpa: int) -> int:
    """``snp_handle_guest_req(svm, req_gpa, resp_gpa)`` (arch/x86/kvm/svm/sev.c, v6.11+)
    for SVM_VMGEXIT_GUEST_REQUEST (0x80000011; hardware-and-ghcb.md 7: info1 = request
    page GPA, info2 = response page GPA).  Runs ``__snp_handle_guest_req`` (the profile's
    override point).  "Firmware failures are propagated on to guest, but any other
    failure condition along the way should be reported to userspace": an error without
    a firmware status returns it from KVM_RUN; otherwise ``sw_exit_info_1`` = 0 and
    ``sw_exit_info_2`` = ``SNP_GUEST_ERR(0, fw_err)`` ((vmm_err << 32) | fw_err) and the
    guest resumes.  Returns 1 or -errno."""
    kvm = vcpu.kvm
    ret, fw_err = kvm.profile.call("__snp_handle_guest_req", __snp_handle_guest_req)(
        kvm, req_gpa, resp_gpa)
    if ret and not fw_err:
        return ret
    # A firmware error is the guest's to handle: report it in sw_exit_info_2 and resume.
    svm_vmgexit_no_action(vcpu, SNP_GUEST_ERR(0, fw_err))
    return 1


#: ``offsetof(struct snp_guest_msg_hdr, msg_type)`` (include/linux/psp-sev.h /
#: arch/x86/include/asm/sev.h): byte 0x34 of the request page.
_SNP_MSG_HDR_MSG_TYPE = 0x34

#: Bytes of zeroes that end a GHCB certificate table (GHCB spec 56421, "SNP Extended
#: Guest Request"): an empty table is just this terminator.
_CERT_TABLE_TERMINATOR = 24


@traced("kvm")
def snp_handle_ext_guest_req(vcpu: KvmVcpu, req_gpa: int, resp_gpa: int) -> int:
    """``snp_handle_ext_guest_req(svm, req_gpa, resp_gpa)`` (arch/x86/kvm/svm/sev.c,
    v6.17) for SVM_VMGEXIT_EXT_GUEST_REQUEST: not SNP -> -EINVAL; read the request's
    ``msg_type`` byte (unreadable -> -EIO); for SNP_MSG_REPORT_REQ the certificate
    buffer is RAX (GPA) and RBX (pages): either register not valid in the GHCB, or a GPA
    not page aligned -> GHCB_ERR_INVALID_INPUT (sw_exit_info_1 = 2); with pages, KVM
    writes an empty certificate table (24 zero bytes) at the GPA (failure -> -EIO).
    Then :func:`snp_handle_guest_req`.

    Version note: v7.0 added KVM_EXIT_SNP_REQ_CERTS ("KVM: Introduce
    KVM_EXIT_SNP_REQ_CERTS for SNP certificate-fetching", fa9893fadbc2), taken only
    when userspace enabled it with KVM_SEV_SNP_ENABLE_REQ_CERTS; the model's QEMU (10.1)
    does not, so every KVM profile answers with the empty table.  Returns 1, 0 or
    -errno."""
    from snpsim.spec.sev_guest import SNP_MSG_REPORT_REQ

    from .kvm_main import kvm_read_guest, kvm_write_guest

    kvm = vcpu.kvm
    if not kvm.sev.snp:
        return -errno.EINVAL
    raw = kvm_read_guest(kvm, req_gpa + _SNP_MSG_HDR_MSG_TYPE, 1)
    if raw is None:
        return -errno.EIO
    if raw[0] == SNP_MSG_REPORT_REQ:
        if not (_is_valid(vcpu, "rax") and _is_valid(vcpu, "rbx")):
            svm_vmgexit_bad_input(vcpu, GHCB_ERR_INVALID_INPUT)
            return 1
        data_gpa = vcpu.regs.get("rax", 0)
        data_npages = vcpu.regs.get("rbx", 0)
        if data_gpa & (PAGE_SIZE - 1):
            svm_vmgexit_bad_input(vcpu, GHCB_ERR_INVALID_INPUT)
            return 1
        if data_npages and kvm_write_guest(kvm, data_gpa, bytes(_CERT_TABLE_TERMINATOR)):
            return -errno.EIO
    return snp_handle_guest_req(vcpu, req_gpa, resp_gpa)


#: KVM's ``INVALID_PAGE`` (all ones): no VMSA named for the vCPU.
INVALID_PAGE = U64_MAX

#: Model: the guest's MAXPHYADDR for ``page_address_valid`` (QEMU's default
#: phys-bits, :data:`snpsim.vmm.machine.DEFAULT_PHYS_BITS`).
_GUEST_MAXPHYADDR = 48


#: The vCPU request an SNP AP creation or destroy raises on its target vCPU
#: (arch/x86/include/asm/kvm_host.h).
KVM_REQ_UPDATE_PROTECTED_GUEST_STATE = "KVM_REQ_UPDATE_PROTECTED_GUEST_STATE"


def kvm_make_request_and_kick(req: str, vcpu: KvmVcpu) -> None:
    """``kvm_make_request_and_kick(req, vcpu)`` (include/linux/kvm_host.h, v6.17): set the
    request bit on ``vcpu`` and kick it.  Model: a kick needs nothing more -- the target
    is not in guest mode (one guest context runs at a time), and a target sleeping in
    ``vcpu_block`` sees the pending request on its next pass
    (:func:`snpsim.kvm.x86.kvm_vcpu_has_events`)."""
    vcpu.requests.add(req)
    emit_instant("kvm", req, vcpu=vcpu.vcpu_id)


@traced("kvm")
def sev_snp_ap_creation(vcpu: KvmVcpu) -> int:
    """``sev_snp_ap_creation(svm)`` (arch/x86/kvm/svm/sev.c, 0097f9df ~v6.17),
    SVM_VMGEXIT_AP_CREATION: request = the low 32 bits of EXITINFO1, APIC ID = the high
    32 bits (model: the target vCPU id, ``kvm_get_vcpu_by_id``); no such vCPU -> -EINVAL.
    CREATE_ON_INIT (0) / CREATE (1): RAX must equal the VM's ``vmsa_features``
    (SVM_SEV_FEAT_SNP_ACTIVE plus what KVM_SEV_INIT2 asked for), EXITINFO2 must be a
    page-aligned GPA below MAXPHYADDR (``page_address_valid``) and not 2 MiB aligned (a
    guest could otherwise trip the SNP erratum on VMSA pages) -> else -EINVAL;
    the target's ``snp_vmsa_gpa`` = EXITINFO2.  DESTROY (2): ``snp_vmsa_gpa`` =
    INVALID_PAGE.  Other requests (a VMPL in bits 19:16 included: this KVM has no VMPL
    support, so Linux's request with ``snp_vmpl`` != 0 is one of them) -> -EINVAL.  Each
    refusal logs a ``vcpu_unimpl`` line and leaves the target untouched.  On success
    the target is marked ``snp_ap_waiting_for_reset`` and, unless CREATE_ON_INIT (whose
    switch waits for an INIT, not modelled), gets KVM_REQ_UPDATE_PROTECTED_GUEST_STATE
    and a kick (``kvm_make_request_and_kick``); the switch itself happens on the
    target's next entry (:func:`sev_snp_init_protected_guest_state`).

    Not checked here (as in KVM): that the GPA is in a memslot, backed by guest_memfd,
    private, or marked VMSA in the RMP -- a bad page leaves the target halted, or makes
    its VMRUN fail (VMEXIT_INVALID).  Profile differences: none for AP creation among
    the model's profiles.  Returns 0 or -EINVAL (the caller answers
    GHCB_ERR_INVALID_INPUT)."""
    from snpsim.spec.exit_codes import SVM_VMGEXIT_AP_CREATE, SVM_VMGEXIT_AP_CREATE_ON_INIT
    from snpsim.spec.units import PMD_SIZE

    kvm = vcpu.kvm
    info1, gpa = vcpu.exit_info_1, vcpu.exit_info_2
    request, apic_id = info1 & 0xFFFFFFFF, info1 >> 32
    target = next((v for v in kvm.vcpus if v.vcpu_id == apic_id), None)
    if target is None:
        kvm.pr(f"vmgexit: invalid AP APIC ID [{apic_id:#x}] from guest")
        return -errno.EINVAL
    es = target.sev_es
    if request in (SVM_VMGEXIT_AP_CREATE_ON_INIT, SVM_VMGEXIT_AP_CREATE):
        features = kvm.sev.vmsa_features
        rax = vcpu.regs.get("rax", 0)
        if rax != features:
            kvm.pr(f"vmgexit: mismatched AP sev_features [{rax:#x}] != [{features:#x}] from guest")
            return -errno.EINVAL
        if gpa & (PAGE_SIZE - 1) or gpa >> _GUEST_MAXPHYADDR:
            kvm.pr(f"vmgexit: invalid AP VMSA address [{gpa:#x}] from guest")
            return -errno.EINVAL
        if not gpa & (PMD_SIZE - 1):
            kvm.pr(f"vmgexit: AP VMSA address [{gpa:x}] from guest is unsafe as it is 2M aligned")
            return -errno.EINVAL
        es.snp_vmsa_gpa = gpa
    elif request == SVM_VMGEXIT_AP_DESTROY:
        es.snp_vmsa_gpa = INVALID_PAGE
    else:
        kvm.pr(f"vmgexit: invalid AP creation request [{request:#x}] from guest")
        return -errno.EINVAL
    es.snp_ap_waiting_for_reset = True
    if request != SVM_VMGEXIT_AP_CREATE_ON_INIT:
        kvm_make_request_and_kick(KVM_REQ_UPDATE_PROTECTED_GUEST_STATE, target)
    return 0


@traced("kvm")
def sev_snp_init_protected_guest_state(vcpu: KvmVcpu) -> None:
    """``sev_snp_init_protected_guest_state(vcpu)`` (arch/x86/kvm/svm/sev.c, 0097f9df
    ~v6.17; the work v6.11's ``__sev_snp_update_protected_guest_state`` did, now done
    here), called from ``svm_vcpu_reset`` for an INIT-style reset, which is what
    KVM_REQ_UPDATE_PROTECTED_GUEST_STATE makes (:func:`snpsim.kvm.x86.kvm_vcpu_reset`).

    Not SNP, or no AP creation/destroy pending -> nothing.  Else: clear the pending
    flag; the vCPU becomes HALTED (offline, not runnable) with no VMSA (VMCB
    ``vmsa_pfn`` = KVM's INVALID_PAGE >> PAGE_SHIFT); the VMCB is marked dirty (nothing to model).
    With no VMSA GPA named (a DESTROY) it stays so.  Else the GPA is consumed
    (``snp_vmsa_gpa`` = INVALID_PAGE) and: no memslot holds it -> stays halted; the
    slot's guest_memfd gives no PFN (``kvm_gmem_get_pfn`` fails: not a guest_memfd slot,
    file gone, ...) -> stays halted; otherwise ``snp_has_guest_vmsa``, the VMCB's VMSA
    is that PFN and the vCPU is RUNNABLE.  KVM logs nothing when it stays halted.  The
    page's RMP state is not looked at: VMRUN checks it (:meth:`HostCpu.snp_vmsa_check`).
    """
    from .kvm_main import gfn_to_memslot

    kvm = vcpu.kvm
    if not kvm.sev.snp:
        return
    es = vcpu.sev_es
    if not es.snp_ap_waiting_for_reset:
        return
    es.snp_ap_waiting_for_reset = False
    vcpu.mp_state = "halted"
    vcpu.vmcb.vmsa_pfn = INVALID_PAGE >> PAGE_SHIFT
    if es.snp_vmsa_gpa == INVALID_PAGE:
        return
    gfn = es.snp_vmsa_gpa >> PAGE_SHIFT
    es.snp_vmsa_gpa = INVALID_PAGE
    slot = gfn_to_memslot(kvm, gfn)
    if slot is None:
        return
    r, pfn, _order = kvm_gmem_get_pfn(kvm, slot, gfn)
    if r:
        return
    es.snp_has_guest_vmsa = True
    vcpu.vmcb.vmsa_pfn = pfn
    vcpu.mp_state = "runnable"


#: ``SVM_SEV_FEAT_SNP_ACTIVE`` (arch/x86/include/asm/svm.h): bit 0 of SEV_FEATURES.
_SVM_SEV_FEAT_SNP_ACTIVE = 1


# ---- sev_handle_vmgexit (section 2) --------------------------------------------------------------


@traced("kvm")
def sev_handle_vmgexit(vcpu: KvmVcpu) -> int:
    """``sev_handle_vmgexit(vcpu)`` (2): the entry for every VMGEXIT (0x403).

    MSR protocol when GHCB MSR bits 11:0 != 0; GHCB GPA 0 or unmappable -> resume
    silently (1); map the GHCB (kept until the next entry); ``sev_es_sync_from_ghcb``; SNP
    GHCB not registered -> -EINVAL; ``sev_es_validate_vmgexit``; pre-set info1 = info2 =
    0; dispatch on the 64-bit exit code.  Returns 1, 0 or -errno.
    """
    from .kvm_main import kvm_vcpu_map

    kvm = vcpu.kvm
    es = vcpu.sev_es
    ghcb_gpa = vcpu.vmcb.ghcb_gpa
    if ghcb_gpa & GHCB_MSR_INFO_MASK:
        return kvm.profile.call("sev_handle_vmgexit_msr_protocol",
                                sev_handle_vmgexit_msr_protocol)(vcpu)
    if not ghcb_gpa:
        kvm.pr("vmgexit: GHCB gpa is not set")
        return 1
    m = kvm_vcpu_map(vcpu, ghcb_gpa >> PAGE_SHIFT)
    if m is None:
        kvm.pr(f"vmgexit: error mapping GHCB [{ghcb_gpa:#x}] from guest")
        return 1
    es.ghcb = GhcbMapping(ghcb_gpa, m.spa)
    sev_es_sync_from_ghcb(vcpu)
    if kvm.sev.snp and ghcb_gpa != es.ghcb_registered_gpa:
        kvm.pr(f"vmgexit: GHCB GPA [{ghcb_gpa:#x}] is not registered.")
        return kvm.profile.call("ghcb_not_registered", lambda v: -errno.EINVAL)(vcpu)
    ret = sev_es_validate_vmgexit(vcpu)
    if ret:
        return ret
    svm_vmgexit_success(vcpu, 0)
    exit_code = vcpu.exit_code
    info1, info2 = vcpu.exit_info_1, vcpu.exit_info_2
    if exit_code in (SVM_VMGEXIT_MMIO_READ, SVM_VMGEXIT_MMIO_WRITE):
        from .x86 import kvm_sev_es_mmio_read, kvm_sev_es_mmio_write

        is_read = exit_code == SVM_VMGEXIT_MMIO_READ
        ret = _setup_scratch(vcpu, is_read, info2)
        if ret:
            return ret
        mmio = kvm_sev_es_mmio_read if is_read else kvm_sev_es_mmio_write
        return mmio(vcpu, info1, info2, es.ghcb_sa)
    if exit_code == SVM_VMGEXIT_NMI_COMPLETE:
        return 1
    if exit_code == SVM_VMGEXIT_AP_HLT_LOOP:
        es.ap_reset_hold_type = 2
        return kvm_emulate_ap_reset_hold(vcpu)
    if exit_code == SVM_VMGEXIT_AP_JUMP_TABLE:
        if info1 == SVM_VMGEXIT_SET_AP_JUMP_TABLE:
            es.jump_table = info2
        elif info1 == SVM_VMGEXIT_GET_AP_JUMP_TABLE:
            svm_vmgexit_success(vcpu, es.jump_table)
        else:
            kvm.pr(f"vmgexit: unsupported AP jump table request {info1:#x}")
            svm_vmgexit_bad_input(vcpu, GHCB_ERR_INVALID_INPUT)
        return 1
    if exit_code == SVM_VMGEXIT_HV_FEATURES:
        svm_vmgexit_success(vcpu, GHCB_HV_FT_SUPPORTED)
        return 1
    if exit_code == SVM_VMGEXIT_TERM_REQUEST:
        kvm.pr(f"SEV-ES guest requested termination: reason {info1:#x} info {info2:#x}")
        return _terminate(vcpu, ghcb_gpa)
    if exit_code == SVM_VMGEXIT_PSC:
        hardened = kvm.profile.knob("scratch") != "original"
        ret = _setup_scratch(vcpu, True, PSC_HDR_SIZE if hardened else info2)
        if ret:
            return ret
        return kvm.profile.call("snp_begin_psc", snp_begin_psc)(vcpu)
    if exit_code == SVM_VMGEXIT_AP_CREATION:
        if sev_snp_ap_creation(vcpu):
            svm_vmgexit_bad_input(vcpu, GHCB_ERR_INVALID_INPUT)
        return 1
    if exit_code == SVM_VMGEXIT_GUEST_REQUEST:
        return snp_handle_guest_req(vcpu, info1, info2)
    if exit_code == SVM_VMGEXIT_EXT_GUEST_REQUEST:
        return snp_handle_ext_guest_req(vcpu, info1, info2)
    if exit_code == SVM_VMGEXIT_UNSUPPORTED_EVENT:
        kvm.pr(f"vmgexit: unsupported event - exit_info_1={info1:#x}, exit_info_2={info2:#x}")
        return -errno.EINVAL
    if (exit_code == SVM_EXIT_IOIO and kvm.profile.knob("scratch") != "original"
            and not info1 & SVM_IOIO_SIZE_MASK):
        return 1  # 7.0.12: IOIO with size field 0 is ignored
    from .svm import svm_invoke_exit_handler

    return svm_invoke_exit_handler(vcpu, exit_code)


# ---- SEV ioctls: INIT2, SNP launch (8.7) ------------------------------------------------------------


@traced("kvm")
def sev_gmem_post_populate(kvm: KvmVm, gfn: int, pfn: int, src_hva: int, page_type: int,
                           cmd: KvmSevCmd) -> int:
    """``sev_gmem_post_populate(kvm, gfn, pfn, src, opaque)`` (v7.0, per page): the RMP
    entry must be unassigned (-EEXIST); copy the source page (except ZERO); then
    ``rmp_make_private(pfn, gfn << 12, 4K, asid, immutable=True)`` and firmware
    SNP_LAUNCH_UPDATE; a firmware error is stored in ``cmd.error`` and gives -EIO.
    Returns 0 or -errno."""
    rc, assigned, _lvl = snp_lookup_rmpentry(kvm, pfn)
    if rc or assigned:
        return -errno.EINVAL if rc else -errno.EEXIST
    spa = pfn << PAGE_SHIFT
    if page_type != KVM_SEV_SNP_PAGE_TYPE_ZERO and src_hva:
        kvm.host.write(spa, kvm.mm.read_user(src_hva, PAGE_SIZE))
    r = rmp_make_private(kvm, pfn, gfn << PAGE_SHIFT, PG_LEVEL_4K, kvm.sev.asid, True)
    if r:
        return r
    fw = kvm.host.firmware.snp_launch_update(kvm.sev.gctx, spa, gfn << PAGE_SHIFT, page_type)
    if fw:
        cmd.error = fw
        kvm.pr(f"SNP_LAUNCH_UPDATE failed for GFN {gfn:#x}: firmware error {fw:#x}")
        # Model: firmware SNP_PAGE_RECLAIM is not modelled; the page stays firmware-owned
        # and is leaked, as KVM does when reclaim fails.
        from .virt_svm_sev import snp_leak_pages

        snp_leak_pages(kvm, pfn, 1)
        return -errno.EIO
    return 0


_LAUNCH_TYPES = (KVM_SEV_SNP_PAGE_TYPE_NORMAL, KVM_SEV_SNP_PAGE_TYPE_ZERO,
                 KVM_SEV_SNP_PAGE_TYPE_UNMEASURED, KVM_SEV_SNP_PAGE_TYPE_SECRETS,
                 KVM_SEV_SNP_PAGE_TYPE_CPUID)


@traced("kvm")
def snp_launch_update(kvm: KvmVm, cmd: KvmSevCmd) -> int:
    """``snp_launch_update(kvm, argp)`` (arch/x86/kvm/svm/sev.c, mainline snapshot
    0097f9df, with ``kvm_gmem_populate`` of guest_memfd.c 01f492e1): not an SNP VM or no
    SNP context (no SNP_LAUNCH_START) -> -EINVAL; unreadable params -> -EFAULT; ``len``
    not 4 KiB aligned, ``flags`` != 0 or ``type`` not in {1, 3, 4, 5, 6} -> -EINVAL; the
    memslot of ``gfn_start`` cannot be private (none, or no guest_memfd) -> -EINVAL.
    Then ``kvm_gmem_populate`` with ``sev_gmem_post_populate`` (the range is cut at
    the end of that memslot).  When it fails before any page (``len`` 0, an unaligned
    source, the first source page not mapped in the VMM: -EFAULT inside, a GFN not
    private, ...), the ioctl returns -EIO with the firmware error (0 when none) in
    ``cmd.error``; otherwise the progress is written back into ``gfn_start``/``uaddr``/
    ``len`` and it returns 0 (also when it stopped early).  Returns 0 or -errno."""
    from .kvm_main import gfn_to_memslot

    sev = kvm.sev
    if not sev.snp or sev.gctx is None:
        return -errno.EINVAL
    p = cmd.data
    if not copy_from_user(p, KvmSevSnpLaunchUpdate):
        return -errno.EFAULT
    if p.len & (PAGE_SIZE - 1) or p.flags or p.type not in _LAUNCH_TYPES:
        return -errno.EINVAL
    npages = p.len >> PAGE_SHIFT
    slot = gfn_to_memslot(kvm, p.gfn_start)
    if slot is None or not slot.flags & KVM_MEM_GUEST_MEMFD:  # kvm_slot_can_be_private
        return -errno.EINVAL
    src = 0 if p.type == KVM_SEV_SNP_PAGE_TYPE_ZERO else p.uaddr
    fw: list[int] = []
    if src == 0 and p.type != KVM_SEV_SNP_PAGE_TYPE_ZERO:
        count = -errno.EINVAL  # sev_gmem_post_populate: WARN_ON_ONCE(!src)
    else:

        def post(k: KvmVm, g: int, pfn: int, s_: int) -> int:
            before = cmd.error
            r = sev_gmem_post_populate(k, g, pfn, s_, p.type, cmd)
            if cmd.error != before:
                fw.append(cmd.error)
            return r

        count = kvm_gmem_populate(kvm, p.gfn_start, src, npages, post)
    if count < 0:
        cmd.error = fw[-1] if fw else 0
        return -errno.EIO
    p.gfn_start += count
    p.len -= count << PAGE_SHIFT
    if p.type != KVM_SEV_SNP_PAGE_TYPE_ZERO:
        p.uaddr += count << PAGE_SHIFT
    return 0


#: SNP guest policy bits (SEV-SNP Firmware ABI "Guest Policy"; sev.c
#: ``SNP_POLICY_MASK_*``): API_MINOR 7:0, API_MAJOR 15:8, SMT 16, RSVD_MBO 17 (must be
#: one), DEBUG 19, SINGLE_SOCKET 20.
SNP_POLICY_MASK_RSVD_MBO = 1 << 17
SNP_POLICY_MASK_VALID = 0xFFFF | 1 << 16 | SNP_POLICY_MASK_RSVD_MBO | 1 << 19 | 1 << 20
#: ``SVM_SEV_FEAT_DEBUG_SWAP`` (arch/x86/include/asm/svm.h): the one VMSA feature the
#: model's KVM offers (``sev_supported_vmsa_features``; which features a real host
#: offers depends on the CPU).
SVM_SEV_FEAT_DEBUG_SWAP = 1 << 5


def sev_guest_init2(sys: Any, kvm: KvmVm, cmd: KvmSevCmd) -> int:
    """``sev_guest_init2`` -> ``__sev_guest_init`` (arch/x86/kvm/svm/sev.c, mainline
    snapshot 0097f9df), checks in order: already initialised (``!need_init``) or a VM
    type other than SEV/SEV-ES/SNP -> -EINVAL; unreadable ``struct kvm_sev_init`` ->
    -EFAULT; vCPUs already created, ``flags`` != 0, ``vmsa_features`` outside what KVM
    supports (none for SEV; :data:`SVM_SEV_FEAT_DEBUG_SWAP` for SEV-ES/SNP in the model),
    ``ghcb_version`` above GHCB_VERSION_MAX (or non-zero for SEV) -> -EINVAL.  Then the
    ASID.  Returns 0 or -errno."""
    sev = kvm.sev
    if sev.active or kvm.vm_type not in (KVM_X86_SEV_VM, KVM_X86_SEV_ES_VM, KVM_X86_SNP_VM):
        return -errno.EINVAL
    d = cmd.data
    if not copy_from_user(d, KvmSevInit):
        return -errno.EFAULT
    es = kvm.vm_type != KVM_X86_SEV_VM
    if kvm.vcpus or d.flags or d.vmsa_features & ~(SVM_SEV_FEAT_DEBUG_SWAP if es else 0):
        return -errno.EINVAL
    if d.ghcb_version > GHCB_VERSION_MAX or (not es and d.ghcb_version):
        return -errno.EINVAL
    sev.active = True
    sev.es_active = es
    sev.snp = kvm.vm_type == KVM_X86_SNP_VM
    sev.vmsa_features = d.vmsa_features | (_SVM_SEV_FEAT_SNP_ACTIVE if sev.snp else 0)
    sev.ghcb_version = d.ghcb_version or (GHCB_VERSION_DEFAULT if es else 0)
    sev.asid = sys.next_asid
    sys.next_asid += 1
    sys.asids_in_use.add(sev.asid)
    return 0


def snp_launch_start(kvm: KvmVm, cmd: KvmSevCmd) -> int:
    """``snp_launch_start(kvm, argp)`` (arch/x86/kvm/svm/sev.c, mainline snapshot
    0097f9df), in order: not an SNP guest -> -ENOTTY; unreadable params -> -EFAULT; an
    SNP context already exists -> -EINVAL; ``flags`` != 0 -> -EINVAL; ``policy`` with a
    bit outside :data:`SNP_POLICY_MASK_VALID` (bit 18, bits 21-63) -> -EINVAL; bit 17
    (RSVD_MBO) clear -> -EINVAL.  Then ``snp_context_create``: the guest context page
    from ``snp_alloc_firmware_page`` (Firmware in the RMP; its failure -> -ENOTTY, the
    C function's answer to a NULL context), and firmware SNP_LAUNCH_START.  Returns 0 or
    -errno."""
    sev = kvm.sev
    if not sev.snp:
        return -errno.ENOTTY
    d = cmd.data
    if not copy_from_user(d, KvmSevSnpLaunchStart):
        return -errno.EFAULT
    if sev.gctx is not None or d.flags:
        return -errno.EINVAL
    if d.policy & ~SNP_POLICY_MASK_VALID or not d.policy & SNP_POLICY_MASK_RSVD_MBO:
        return -errno.EINVAL
    # snp_context_create: the context page is a firmware page (snp_alloc_firmware_page)
    ctx = snp_alloc_firmware_page(kvm)
    if ctx < 0:
        return -errno.ENOTTY
    sev.snp_context = ctx
    sev.policy = d.policy
    sev.gctx = kvm.host.firmware.snp_launch_start(sev.asid, d.policy)
    return 0


#: ``KVM_SEV_SNP_ID_BLOCK_SIZE`` (96) and ``KVM_SEV_SNP_ID_AUTH_SIZE`` (4096) bytes:
#: arch/x86/kvm/svm/sev.c.
KVM_SEV_SNP_ID_BLOCK_SIZE = 96
KVM_SEV_SNP_ID_AUTH_SIZE = 4096


def psp_copy_user_blob(kvm: KvmVm, uaddr: int, length: int) -> int:
    """``psp_copy_user_blob(uaddr, len)`` (drivers/crypto/ccp/sev-dev.c): 0 when the
    ``length`` bytes at ``uaddr`` can be copied; -EINVAL for a zero address or length,
    -EFAULT when a page of the range is not mapped in the VMM (``memdup_user``).  The
    blob's content is not modelled."""
    if not uaddr or not length:
        return -errno.EINVAL
    first, last = uaddr & ~(PAGE_SIZE - 1), (uaddr + length - 1) & ~(PAGE_SIZE - 1)
    for hva in range(first, last + 1, PAGE_SIZE):
        if kvm.mm.find_vma(hva) is None:
            return -errno.EFAULT
    return 0


# ---- SEV / SEV-ES launch (KVM_SEV_LAUNCH_*; no RMP, no guest_memfd) ------------------------------


@traced("kvm")
def sev_launch_start(kvm: KvmVm, cmd: KvmSevCmd) -> int:
    """``sev_launch_start(kvm, argp)``: firmware LAUNCH_START and ACTIVATE of the VM's
    ASID (``sev_bind_asid``); the handle is written back.  A second start -> -EINVAL
    (model).  The owner's DH certificate and session blob are not modelled (must be 0,
    else -EINVAL).  Returns 0 or -errno."""
    d = cmd.data
    if not copy_from_user(d, KvmSevLaunchStart):
        return -errno.EFAULT
    sev = kvm.sev
    if sev.gctx is not None or d.dh_uaddr or d.session_uaddr:
        return -errno.EINVAL
    sev.policy = d.policy
    sev.gctx = kvm.host.firmware.sev_launch_start(sev.asid, d.policy)
    d.handle = sev.asid  # model: the firmware handle is the ASID it is bound to
    return 0


@traced("kvm")
def sev_launch_update_data(kvm: KvmVm, cmd: KvmSevCmd) -> int:
    """``sev_launch_update_data(kvm, argp)``: pin the user pages of [uaddr, uaddr + len)
    (``sev_pin_memory``: len 0 or a wrapping range -> -EINVAL, unmapped -> -EFAULT), and
    for each page firmware LAUNCH_UPDATE_DATA at its SPA: encrypt in place with the
    guest's key and measure.  Model: ``uaddr`` and ``len`` must be 4 KiB aligned
    (-EINVAL; KVM handles partial pages).  A firmware error is in ``cmd.error`` and gives
    -EIO.  Returns 0 or -errno."""
    p = cmd.data
    if not copy_from_user(p, KvmSevLaunchUpdateData):
        return -errno.EFAULT
    sev = kvm.sev
    if sev.gctx is None:
        return -errno.EINVAL
    if not p.len or p.uaddr + p.len > U64_MAX or (p.uaddr | p.len) & (PAGE_SIZE - 1):
        return -errno.EINVAL
    pfns = []
    for hva in range(p.uaddr, p.uaddr + p.len, PAGE_SIZE):
        pfn = kvm.mm.get_user_page(hva, write=True)
        if pfn < 0:
            return -errno.EFAULT
        pfns.append(pfn)
    for pfn in pfns:
        fw = kvm.host.firmware.sev_launch_update_data(sev.gctx, pfn << PAGE_SHIFT, PAGE_SIZE)
        if fw:
            cmd.error = fw
            return -errno.EIO
    return 0


@traced("kvm")
def sev_launch_update_vmsa(kvm: KvmVm, cmd: KvmSevCmd) -> int:
    """``sev_launch_update_vmsa(kvm, argp)``: SEV-ES only (else -ENOTTY); firmware
    LAUNCH_UPDATE_VMSA of every vCPU's VMSA page (its guest state is then protected).
    Returns 0 or -errno (-EIO with the firmware error in ``cmd.error``)."""
    sev = kvm.sev
    if not sev.es_active:
        return -errno.ENOTTY
    if sev.gctx is None:
        return -errno.EINVAL
    for v in kvm.vcpus:
        if v.vmcb.vmsa_pfn is None:
            continue
        fw = kvm.host.firmware.sev_launch_update_vmsa(sev.gctx, v.vmcb.vmsa_pfn << PAGE_SHIFT)
        if fw:
            cmd.error = fw
            return -errno.EIO
    return 0


@traced("kvm")
def sev_launch_measure(kvm: KvmVm, cmd: KvmSevCmd) -> int:
    """``sev_launch_measure(kvm, argp)``: firmware LAUNCH_MEASURE; the measurement goes
    to the model-only ``measurement`` field.  Returns 0 or -EINVAL (not started)."""
    d = cmd.data
    if not copy_from_user(d, KvmSevLaunchMeasure):
        return -errno.EFAULT
    if kvm.sev.gctx is None:
        return -errno.EINVAL
    d.measurement = kvm.host.firmware.sev_launch_measure(kvm.sev.gctx)
    d.len = len(d.measurement)
    return 0


@traced("kvm")
def sev_launch_finish(kvm: KvmVm, cmd: KvmSevCmd) -> int:
    """``sev_launch_finish(kvm, argp)``: firmware LAUNCH_FINISH.  Returns 0, -EINVAL (not
    started) or -EIO (firmware error in ``cmd.error``, e.g. a second finish)."""
    if kvm.sev.gctx is None:
        return -errno.EINVAL
    fw = kvm.host.firmware.sev_launch_finish(kvm.sev.gctx)
    if fw:
        cmd.error = fw
        return -errno.EIO
    return 0


_SEV_LAUNCH_CMDS: dict[int, Callable[[KvmVm, KvmSevCmd], int]] = {
    KVM_SEV_LAUNCH_START: sev_launch_start,
    KVM_SEV_LAUNCH_UPDATE_DATA: sev_launch_update_data,
    KVM_SEV_LAUNCH_UPDATE_VMSA: sev_launch_update_vmsa,
    KVM_SEV_LAUNCH_MEASURE: sev_launch_measure,
    KVM_SEV_LAUNCH_FINISH: sev_launch_finish,
}


@traced("kvm")
def sev_mem_enc_ioctl(sys: Any, kvm: KvmVm, cmd: KvmSevCmd) -> int:
    """``sev_mem_enc_ioctl(kvm, argp)`` (KVM_MEMORY_ENCRYPT_OP; arch/x86/kvm/svm/sev.c,
    mainline snapshot 0097f9df): on an SNP guest (after KVM_SEV_INIT2) any id below
    KVM_SEV_SNP_LAUNCH_START -> -EPERM; KVM_SEV_INIT2 (:func:`sev_guest_init2`),
    KVM_SEV_SNP_LAUNCH_START/UPDATE/FINISH, and KVM_SEV_LAUNCH_START/UPDATE_DATA/
    UPDATE_VMSA/MEASURE/FINISH (-ENOTTY before INIT2).  Other ids -> -EINVAL.
    SNP_LAUNCH_FINISH (``snp_launch_finish``): not SNP -> -ENOTTY, no context -> -EINVAL,
    unreadable params -> -EFAULT, ``flags`` != 0 -> -EINVAL, an ID block whose pages
    are not mapped -> -EFAULT (``psp_copy_user_blob``); a second finish is -EINVAL in
    the model (the real one fails in firmware).  Returns 0 or -errno; firmware errors
    in ``cmd.error``."""
    sev = kvm.sev
    # Once KVM_SEV_INIT2 made the VM an SNP guest, only the SNP commands (ids >= 100).
    if sev.snp and cmd.id < KVM_SEV_SNP_LAUNCH_START:
        return -errno.EPERM
    if cmd.id == KVM_SEV_INIT2:
        return sev_guest_init2(sys, kvm, cmd)
    if cmd.id in _SEV_LAUNCH_CMDS:
        if not sev.active:
            return -errno.ENOTTY  # sev_launch_*: !sev_guest(kvm)
        return _SEV_LAUNCH_CMDS[cmd.id](kvm, cmd)
    if cmd.id == KVM_SEV_SNP_LAUNCH_START:
        return snp_launch_start(kvm, cmd)
    if cmd.id == KVM_SEV_SNP_LAUNCH_UPDATE:
        return snp_launch_update(kvm, cmd)
    if cmd.id == KVM_SEV_SNP_LAUNCH_FINISH:
        if not sev.snp:
            return -errno.ENOTTY
        if sev.gctx is None:
            return -errno.EINVAL
        d = cmd.data
        if not copy_from_user(d, KvmSevSnpLaunchFinish):
            return -errno.EFAULT
        if d.flags:
            return -errno.EINVAL
        if sev.snp_finished:
            return -errno.EINVAL  # model: a second finish (see the docstring)
        # snp_launch_update_vmsa: each vCPU's VMSA becomes a guest page, measured.
        for v in kvm.vcpus:
            pfn = v.vmcb.vmsa_pfn
            if pfn is None:
                continue
            r = rmp_make_private(kvm, pfn, INITIAL_VMSA_GPA, PG_LEVEL_4K, sev.asid, True)
            if r:
                return r
            fw = kvm.host.firmware.snp_launch_update(sev.gctx, pfn << PAGE_SHIFT,
                                                     INITIAL_VMSA_GPA, KVM_SEV_SNP_PAGE_TYPE_VMSA)
            if fw:
                cmd.error = fw
                kvm_rmp_make_shared(kvm, pfn, PG_LEVEL_4K)
                return -errno.EIO
        if d.id_block_en:
            r = psp_copy_user_blob(kvm, d.id_block_uaddr, KVM_SEV_SNP_ID_BLOCK_SIZE) \
                or psp_copy_user_blob(kvm, d.id_auth_uaddr, KVM_SEV_SNP_ID_AUTH_SIZE)
            if r:
                return r
        d.launch_digest = kvm.host.firmware.snp_launch_finish(sev.gctx)
        sev.snp_finished = True
        # snp_launch_finish: no more SNP_LAUNCH_UPDATE, so private pages may now be
        # faulted in ahead of the guest (KVM_PRE_FAULT_MEMORY).
        kvm.pre_fault_allowed = True
        return 0
    return -errno.EINVAL


# ---- VM teardown (arch/x86/kvm/svm/sev.c, v6.14+ order) ----------------------------------------


@traced("kvm")
def sev_free_vcpu(vcpu: KvmVcpu) -> None:
    """``sev_free_vcpu(vcpu)`` (arch/x86/kvm/svm/sev.c, v6.11+): for an SEV-ES/SNP vCPU,
    give back the VMSA page KVM allocated (``sev_es.vmsa``; a guest VMSA page an AP
    creation switched the vCPU to stays with guest_memfd).  SNP: the VMSA is a guest page in the RMP, so first
    ``kvm_rmp_make_shared(pfn, 4K)``; if that fails, the page is not freed (it was leaked
    by ``kvm_rmp_make_shared``, which also marks the VM bugged).  Then (model: the
    VM_PAGE_FLUSH/cache flush is not modelled) the page goes back to the allocator."""
    kvm = vcpu.kvm
    if not kvm.sev.es_active:
        return
    pfn = vcpu.sev_es.vmsa_pfn
    if vcpu.vmcb.vmsa_pfn == pfn:
        vcpu.vmcb.vmsa_pfn = None
    vcpu.sev_es.vmsa_pfn = None
    if pfn is None:
        return
    if kvm.sev.snp and kvm_rmp_make_shared(kvm, pfn, PG_LEVEL_4K):
        return
    kvm.allocator.free_page(pfn)


@traced("kvm")
def snp_guest_req_cleanup(kvm: KvmVm) -> None:
    """``snp_guest_req_cleanup(kvm)`` (arch/x86/kvm/svm/sev.c, v6.11+): free KVM's
    guest-request pages.  The response page goes through ``snp_free_firmware_page``
    (SNP_PAGE_RECLAIM, RMPUPDATE to Hypervisor, then freed; leaked if either fails) when
    it is a firmware page, as v6.11+ always has it; the model keeps it hypervisor-owned
    at rest (see :func:`snp_guest_req_init`), so a response page found in the
    Hypervisor state is a plain free -- it is still Firmware only when a command's
    reclaim was skipped (bug report R7).  The request page is a plain free."""
    sev = kvm.sev
    resp = sev.guest_resp_pfn
    if resp is not None:
        _code, ent = kvm.host.rmpread(resp << PAGE_SHIFT)
        if ent is not None and ent.assigned and ent.asid == 0 and ent.immutable:
            snp_free_firmware_page(kvm, resp)
        else:
            kvm.allocator.free_page(resp)
    if sev.guest_req_pfn is not None:
        kvm.allocator.free_page(sev.guest_req_pfn)
    sev.guest_req_pfn = sev.guest_resp_pfn = None


@traced("kvm")
def snp_decommission_context(kvm: KvmVm) -> int:
    """``snp_decommission_context(kvm)`` (arch/x86/kvm/svm/sev.c, v6.11+): nothing to do
    without a guest context; else firmware SNP_DECOMMISSION, which unbinds the ASID.  A
    firmware error is a WARN_ONCE ("Failed to release guest context, ret %d fw err %d")
    and is returned (-EIO, the model's ``sev_do_cmd`` error); the context is then kept.
    After a successful one the context page goes back through ``snp_free_firmware_page``
    (SNP_PAGE_RECLAIM, RMPUPDATE to Hypervisor, freed; leaked if either fails).  Returns
    0 or -EIO."""
    sev = kvm.sev
    if sev.gctx is None:
        return 0
    fw = kvm.host.firmware.snp_decommission(sev.gctx)
    if fw:
        kvm.pr(f"WARN_ONCE: Failed to release guest context, ret {-errno.EIO} fw err {fw}")
        return -errno.EIO
    sev.gctx = None
    if sev.snp_context is not None:
        snp_free_firmware_page(kvm, sev.snp_context)
        sev.snp_context = None
    return 0


@traced("kvm")
def sev_vm_destroy(sys: Any, kvm: KvmVm) -> None:
    """``sev_vm_destroy(kvm)`` (arch/x86/kvm/svm/sev.c, v6.11+), the SEV part of
    ``kvm_arch_destroy_vm``: not an SEV VM -> nothing.  SNP: ``snp_guest_req_cleanup``,
    then ``snp_decommission_context``; if that fails the ASID is leaked (returns without
    freeing it).  SEV/SEV-ES: ``sev_unbind_asid`` (model: nothing to unbind in the
    firmware model).  Then ``sev_asid_free``: the ASID leaves ``sys.asids_in_use``
    (model: ASIDs are not reused, so freeing is bookkeeping only).  ``sys``: the
    :class:`~snpsim.kvm.kvm_main.Kvm` that gave the ASID."""
    sev = kvm.sev
    if not sev.active:
        return
    if sev.snp:
        snp_guest_req_cleanup(kvm)
        if snp_decommission_context(kvm):
            return
    sys.asids_in_use.discard(sev.asid)
    sev.active = False
