"""Historical KVM behaviour from public bug reports, as override functions and knob sets
merged onto a KVM profile (:meth:`snpsim.kvm.profiles.KvmProfile.derive`).

Each function has the signature of the override point it replaces and names the report
(``shared/reference/bug-reports.md``) and the fix it predates.  Nothing here is a KVM
version: the fixed behaviour is the default of every profile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snpsim.kvm.kvm_host import KvmVcpu, KvmVm
from snpsim.kvm.mmu import KvmPageFault, page_fault_can_be_fast_any_slot
from snpsim.spec.faults import PFERR_GUEST_RMP_MASK
from snpsim.spec.kvm_uapi import KVM_ENOSYS
from snpsim.spec.units import u64

__all__ = [
    "npf_rmp_fault_gate_r2",
    "page_fault_can_be_fast_r3",
    "R2_OVERRIDES",
    "R3_OVERRIDES",
    "R6_KNOBS",
]


def npf_rmp_fault_gate_r2(vcpu: KvmVcpu, rc: int, gpa: int, error_code: int,
                          handler: Callable[[KvmVcpu, int, int], None]) -> int:
    """Bug report R2 ("[PATCH v15 22/23] KVM: SEV: Fix return code interpretation for RMP
    nested page faults", 2024-05-09): ``npf_interception`` took only a return of 0 as
    "exited to userspace", so after a ``KVM_EXIT_MEMORY_FAULT`` (``kvm_mmu_page_fault``
    returns -EFAULT) it still ran ``sev_handle_rmp_fault`` on an RMP #NPF: warnings
    during implicit conversions and needless PSMASH/zaps.  Returns ``rc``."""
    if rc != 0 and error_code & PFERR_GUEST_RMP_MASK:
        handler(vcpu, gpa, error_code)
    return rc


def page_fault_can_be_fast_r3(kvm: KvmVm, fault: KvmPageFault) -> bool:
    """Bug report R3 (before "[PATCH 21/20] KVM: MMU: Disable fast path for private
    memslots", May 2024): the lockless fast path was allowed for VMs with private memory,
    so a present, writable SPTE made an RMP #NPF that needs KVM_EXIT_MEMORY_FAULT look
    spurious; the guest was re-entered and faulted again forever.  Returns a bool."""
    return page_fault_can_be_fast_any_slot(kvm, fault)


R2_OVERRIDES: dict[str, Any] = {"npf_rmp_fault_gate": npf_rmp_fault_gate_r2}
R3_OVERRIDES: dict[str, Any] = {"page_fault_can_be_fast": page_fault_can_be_fast_r3}

#: Bug report R6 (Dec 2024, "i386/kvm: Set return value after handling
#: KVM_EXIT_HYPERCALL" and the KVM proposal to zero ``ret``): a KVM refactor left
#: -KVM_ENOSYS in ``run->hypercall.ret`` of the PSC exits instead of zeroing it.
R6_KNOBS: dict[str, Any] = {"zero_hypercall_ret": False,
                            "stale_hypercall_ret": u64(-KVM_ENOSYS)}
