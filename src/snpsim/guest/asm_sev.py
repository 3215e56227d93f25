# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Inline helpers of the SEV headers: GHCB field accessors, the GHCB MSR, VMGEXIT,
PVALIDATE.

Mirrors ``arch/x86/include/asm/svm.h`` (``DEFINE_GHCB_ACCESSORS``: ``ghcb_set_<f>``,
``ghcb_<f>_is_valid``), ``arch/x86/include/asm/sev.h`` (``pvalidate``, ``VMGEXIT``),
``rmpadjust``), ``arch/x86/coco/sev/internal.h``/``sev-internal.h`` (``sev_es_wr_ghcb_msr``,
``sev_es_rd_ghcb_msr``) and ``vc_ghcb_invalidate`` (``arch/x86/coco/sev/vc-shared.c``),
v6.16/6.17.  The GHCB is bytes in guest memory at a GVA mapped decrypted (C=0); every
accessor reads or writes exactly the field and its valid bit through the CPU's page
tables, with the offsets and bitmap rule of ``spec/ghcb.py``.
"""

from __future__ import annotations

from snpsim.spec.ghcb import (
    GHCB_FIELDS,
    GHCB_VALID_BITMAP_OFFSET,
    GHCB_VALID_BITMAP_SIZE,
    ghcb_bitmap_bit,
)
from snpsim.spec.msr_index import MSR_AMD64_SEV_ES_GHCB
from snpsim.spec.rmp import PVALIDATE_FAIL_NOUPDATE
from snpsim.spec.units import u64
from snpsim.trace.record import traced

from .kernel import GuestKernel, this_cpu

__all__ = [
    "ghcb_set_field",
    "ghcb_get_field",
    "ghcb_field_is_valid",
    "vc_ghcb_invalidate",
    "sev_es_wr_ghcb_msr",
    "sev_es_rd_ghcb_msr",
    "VMGEXIT",
    "pvalidate",
    "rmpadjust",
]


def ghcb_set_field(kernel: GuestKernel, ghcb: int, name: str, value: int) -> None:
    """``ghcb_set_<name>(ghcb, value)``: store ``value`` (masked to the field width) in the
    GHCB at GVA ``ghcb`` and set the field's valid bit (offset / 8).  ``protocol_version``
    and ``ghcb_usage`` (outside the bitmap) are plain stores, as in ``struct ghcb``."""
    cpu = this_cpu(kernel)
    f = GHCB_FIELDS[name]
    cpu.write(ghcb + f.offset, (value & ((1 << (8 * f.size)) - 1)).to_bytes(f.size, "little"))
    if f.offset < GHCB_VALID_BITMAP_OFFSET:
        bit = ghcb_bitmap_bit(name)
        at = ghcb + GHCB_VALID_BITMAP_OFFSET + bit // 8
        cpu.write(at, bytes([cpu.read(at, 1)[0] | (1 << (bit % 8))]))


def ghcb_get_field(kernel: GuestKernel, ghcb: int, name: str) -> int:
    """``ghcb->save.<name>`` read regardless of its valid bit (the C code's plain load)."""
    f = GHCB_FIELDS[name]
    return int.from_bytes(this_cpu(kernel).read(ghcb + f.offset, f.size), "little")


def ghcb_field_is_valid(kernel: GuestKernel, ghcb: int, name: str) -> bool:
    """``ghcb_<name>_is_valid(ghcb)``: the field's bit in ``valid_bitmap``."""
    bit = ghcb_bitmap_bit(name)
    byte = this_cpu(kernel).read(ghcb + GHCB_VALID_BITMAP_OFFSET + bit // 8, 1)[0]
    return bool((byte >> (bit % 8)) & 1)


def vc_ghcb_invalidate(kernel: GuestKernel, ghcb: int) -> None:
    """``vc_ghcb_invalidate(ghcb)`` (vc-shared.c): ``sw_exit_code`` = 0 and the 16-byte
    ``valid_bitmap`` cleared; nothing else is touched."""
    cpu = this_cpu(kernel)
    cpu.write(ghcb + GHCB_FIELDS["sw_exit_code"].offset, bytes(8))
    cpu.write(ghcb + GHCB_VALID_BITMAP_OFFSET, bytes(GHCB_VALID_BITMAP_SIZE))


def sev_es_wr_ghcb_msr(kernel: GuestKernel, val: int) -> None:
    """``sev_es_wr_ghcb_msr(val)``: WRMSR 0xC0010130 (``native_wrmsr`` of the low and high
    32-bit halves) with a GHCB GPA or an MSR-protocol message (u64)."""
    this_cpu(kernel).wrmsr(MSR_AMD64_SEV_ES_GHCB, u64(val))


def sev_es_rd_ghcb_msr(kernel: GuestKernel) -> int:
    """``sev_es_rd_ghcb_msr()``: RDMSR 0xC0010130 (u64)."""
    return this_cpu(kernel).rdmsr(MSR_AMD64_SEV_ES_GHCB)


def VMGEXIT(kernel: GuestKernel) -> None:
    """``VMGEXIT()`` (``rep; vmmcall``): returns when the host resumed this vCPU.  Model:
    once a crash shot the other CPUs down (``kernel.nmi_shootdown``), a CPU that is not
    the crashing one takes the NMI on its way back into the guest and stops there
    (:func:`snpsim.guest.kexec.kdump_nmi_callback`, never returns); likewise once another
    CPU ran ``stop_other_cpus`` for a kexec (``kernel.stopping_cpu``), it halts."""
    this_cpu(kernel).vmgexit()
    if kernel.nmi_shootdown is not None or kernel.stopping_cpu is not None:
        from .kexec import take_stop_interrupt

        take_stop_interrupt(kernel)


@traced("guest")
def pvalidate(kernel: GuestKernel, vaddr: int, rmp_psize: int, validate: bool) -> int:
    """``pvalidate(vaddr, rmp_psize, validate)`` (asm/sev.h): PVALIDATE of the page at GVA
    ``vaddr`` (``rmp_psize`` 0 = 4 KiB, 1 = 2 MiB).  Returns EAX (0 success, 1 FAIL_INPUT,
    6 FAIL_SIZEMISMATCH), or ``PVALIDATE_FAIL_NOUPDATE`` (255) whenever rFLAGS.CF = 1,
    which takes precedence over EAX."""
    rax, cf = this_cpu(kernel).pvalidate(vaddr, rmp_psize, validate)
    if cf:
        return int(PVALIDATE_FAIL_NOUPDATE)
    return rax


@traced("guest")
def rmpadjust(kernel: GuestKernel, vaddr: int, page_size: int, attrs: int) -> int:
    """``rmpadjust(vaddr, page_size, attrs)`` (asm/sev.h): RMPADJUST of the page at GVA
    ``vaddr`` (``page_size`` 0 = 4 KiB, 1 = 2 MiB) with RDX = ``attrs`` (target VMPL
    [7:0], permission mask [15:8], ``RMPADJUST_VMSA_PAGE_BIT`` [16]).  Returns EAX (0,
    FAIL_INPUT 1, FAIL_PERMISSION 2, FAIL_INUSE 3, FAIL_SIZEMISMATCH 6)."""
    return this_cpu(kernel).rmpadjust(vaddr, page_size, attrs)
