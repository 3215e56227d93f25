# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Hardware faults: raised inside ``hw/`` where a check fails, delivered as values.

STYLE.md section 5: a fault is raised where the check fails (the page walk, the NPT walk,
the RMP check) and unwinds exactly one access or instruction.  It is caught in one place,
the instruction boundary of :mod:`snpsim.hw.cpu`, which turns it into its architectural
delivery: a #VC or #PF or #GP to the guest's IDT handler (in guest context), a #VMEXIT(NPF)
to KVM (``exit_code`` 0x400, ``exit_info_1`` = the PFERR bits, ``exit_info_2`` = the GPA),
or a host #PF with the RMP bit to the host code that wrote.

Sources: AMD APM vol 2 section 15.36.10 (RMP access checks, table 15-39, as restated in
``hardware-and-ghcb.md`` 1.4) and section 15.35.5 (#VC); Linux ``arch/x86/include/asm/
trap_pf.h`` (X86_PF_RMP bit 31) and ``arch/x86/include/asm/kvm_host.h`` (PFERR_GUEST_*).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "HardwareFault",
    "NestedPageFault",
    "VmmCommunicationException",
    "GuestPageFault",
    "GeneralProtectionFault",
    "InvalidOpcode",
    "HostPageFault",
]


class HardwareFault(Exception):
    """Base of every architectural fault the model raises.

    Class attributes give the architectural effect: ``vector`` (the x86 exception vector,
    or None for a VMEXIT) and ``delivered_to`` ("guest", "host-kvm" for a #VMEXIT, or
    "host" for a host #PF).
    """

    vector: ClassVar[int | None] = None
    delivered_to: ClassVar[str] = "guest"


class NestedPageFault(HardwareFault):
    """#VMEXIT(NPF): exit code 0x400 to the hypervisor.

    ``gpa``: the faulting guest physical address in bytes (EXITINFO2).
    ``error_code``: the u64 EXITINFO1 PFERR bits (present 0, write 1, user 2, rsvd 3,
    fetch 4, RMP 31, GUEST_FINAL 32, GUEST_PAGE 33, ENC 34, SIZEM 35, VMPL 36).
    ``reason``: a model-only human-readable name of the check that failed.
    """

    vector = None
    delivered_to = "host-kvm"

    def __init__(self, gpa: int, error_code: int, reason: str = "") -> None:
        super().__init__(f"#NPF gpa={gpa:#x} error_code={int(error_code):#x} {reason}".rstrip())
        self.gpa = gpa
        self.error_code = error_code
        self.reason = reason


class VmmCommunicationException(HardwareFault):
    """#VC (vector 29) to the guest.

    ``error_code``: the #VMEXIT code of the event (u64), e.g. 0x404 PAGE_NOT_VALIDATED,
    0x81 VMMCALL, 0x72 CPUID.  ``cr2``: the faulting GVA for 0x404, else 0.
    Source: APM vol 2 15.35.5 and 15.36.10 (as restated in hardware-and-ghcb.md 8).
    """

    vector = 29
    delivered_to = "guest"

    def __init__(self, error_code: int, cr2: int = 0, reason: str = "") -> None:
        super().__init__(f"#VC error_code={int(error_code):#x} cr2={cr2:#x} {reason}".rstrip())
        self.error_code = error_code
        self.cr2 = cr2
        self.reason = reason


class GuestPageFault(HardwareFault):
    """#PF (vector 14) to the guest: the guest page walk failed.

    ``gva``: the faulting guest virtual address (CR2); ``error_code``: PFERR bits (u32).
    """

    vector = 14
    delivered_to = "guest"

    def __init__(self, gva: int, error_code: int, reason: str = "") -> None:
        super().__init__(f"#PF gva={gva:#x} error_code={error_code:#x} {reason}".rstrip())
        self.gva = gva
        self.error_code = error_code
        self.reason = reason


class GeneralProtectionFault(HardwareFault):
    """#GP(0) (vector 13), e.g. PVALIDATE executed at VMPL != 0 or CPL != 0."""

    vector = 13
    delivered_to = "guest"

    def __init__(self, reason: str = "") -> None:
        super().__init__(f"#GP(0) {reason}".rstrip())
        self.error_code = 0
        self.reason = reason


class InvalidOpcode(HardwareFault):
    """#UD (vector 6), e.g. injected by the hypervisor for an instruction it does not
    emulate (KVM's ``kvm_handle_invalid_op``)."""

    vector = 6
    delivered_to = "guest"

    def __init__(self, reason: str = "") -> None:
        super().__init__(f"#UD {reason}".rstrip())
        self.error_code = 0
        self.reason = reason


class HostPageFault(HardwareFault):
    """Host #PF (vector 14) with ``X86_PF_RMP`` (bit 31): a host write to a page the RMP
    does not give to the hypervisor.

    ``spa``: the system physical address written (bytes); ``error_code``: X86_PF bits.
    Source: Linux ``arch/x86/include/asm/trap_pf.h``; APM table 15-39 (host row).
    """

    vector = 14
    delivered_to = "host"

    def __init__(self, spa: int, error_code: int, reason: str = "") -> None:
        super().__init__(f"host #PF spa={spa:#x} error_code={error_code:#x} {reason}".rstrip())
        self.spa = spa
        self.error_code = error_code
        self.reason = reason
