# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""KVM paravirt guest support: the page-encryption-status hypercall.

Mirrors ``arch/x86/kernel/kvm.c`` (v6.16+): ``kvm_sev_hc_page_enc_status`` and the
``kvm_init_platform`` SEV part, and ``arch/x86/include/asm/kvm_para.h``
``kvm_sev_hypercall3`` (linux-guest.md 9).  Under SNP the VMMCALL raises #VC 0x81, which
the guest's #VC handler forwards through the GHCB (``vc_handle_vmmcall``).
"""

from __future__ import annotations

from snpsim.spec.kvm_uapi import (
    KVM_HC_MAP_GPA_RANGE,
    KVM_MAP_GPA_RANGE_ENC_STAT,
    KVM_MAP_GPA_RANGE_PAGE_SZ_4K,
)
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE
from snpsim.trace.record import traced

from .kernel import GuestKernel, this_cpu

__all__ = ["kvm_sev_hypercall3", "kvm_sev_hc_page_enc_status", "kvm_init_platform"]


@traced("guest")
def kvm_sev_hypercall3(kernel: GuestKernel, nr: int, p1: int, p2: int, p3: int) -> int:
    """``kvm_sev_hypercall3(nr, p1, p2, p3)``: VMMCALL with RAX = nr, RBX = p1, RCX = p2,
    RDX = p3; returns RAX after the call."""
    cpu = this_cpu(kernel)
    cpu.regs.update(rax=nr, rbx=p1, rcx=p2, rdx=p3)
    cpu.vmmcall()
    return cpu.regs.get("rax", 0)


@traced("guest")
def kvm_sev_hc_page_enc_status(kernel: GuestKernel, pfn: int, npages: int, enc: bool) -> None:
    """``kvm_sev_hc_page_enc_status(pfn, npages, enc)``: KVM_HC_MAP_GPA_RANGE (12) with
    GPA = pfn << 12, ``npages`` 4 KiB pages and ``KVM_MAP_GPA_RANGE_ENC_STAT(enc) |
    KVM_MAP_GPA_RANGE_PAGE_SZ_4K`` (0x10 encrypted, 0x00 decrypted).  The result is
    ignored."""
    kvm_sev_hypercall3(kernel, KVM_HC_MAP_GPA_RANGE, pfn << PAGE_SHIFT, npages,
                       KVM_MAP_GPA_RANGE_ENC_STAT(1 if enc else 0) | KVM_MAP_GPA_RANGE_PAGE_SZ_4K)


@traced("guest")
def kvm_init_platform(kernel: GuestKernel) -> None:
    """``kvm_init_platform()``, its SEV part: when the guest has encrypted memory and the
    host advertises KVM_FEATURE_MIGRATION_CONTROL, install ``kvm_sev_hc_page_enc_status``
    as ``notify_page_enc_status_changed``, report every E820 RAM range as encrypted
    (``KVM_HC_MAP_GPA_RANGE(addr, DIV_ROUND_UP(size, 4K), ENCRYPTED | 4K)``) and the
    ``.bss..decrypted`` section as decrypted.  Not modelled: the WRMSR of
    MSR_KVM_MIGRATION_CONTROL (a #VC 0x7C the model's handler does not forward)."""
    from .mem_encrypt_amd import enc_dec_hypercall

    if not kernel.config.kvm_feature_migration_control:
        return
    from .boot import bss_decrypted_vaddr

    kernel.kvm_pv_enc_status = True
    # Start from a clean slate: whatever an earlier kernel (before a kexec) told KVM
    # about its shared pages is forgotten by declaring all RAM encrypted ...
    all_private = KVM_MAP_GPA_RANGE_ENC_STAT(1) | KVM_MAP_GPA_RANGE_PAGE_SZ_4K
    for start, size in kernel.boot.e820_ram:
        npages = -(-size // PAGE_SIZE)
        kvm_sev_hypercall3(kernel, KVM_HC_MAP_GPA_RANGE, start, npages, all_private)
    # ... except the one range this kernel keeps shared from its first instruction.
    enc_dec_hypercall(kernel, bss_decrypted_vaddr(kernel), PAGE_SIZE, False)
