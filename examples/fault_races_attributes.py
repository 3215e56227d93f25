# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A vCPU's #NPF racing KVM_SET_MEMORY_ATTRIBUTES from the VMM.

What it shows: vCPU 1 writes a private page it has never touched, so it takes a
nested page fault.  The schedule stops vCPU 1 inside KVM's fault path right after
``kvm_mmu_faultin_pfn`` has sampled ``kvm->mmu_invalidate_seq`` and found the guest_memfd
page, and before the SPTE is installed.  The VMM then flips the page's attribute to
shared (KVM_SET_MEMORY_ATTRIBUTES, which zaps the GFN inside an
``mmu_invalidate_begin``/``end`` pair), and vCPU 1 goes on.

Expected outcome (sources: Linux arch/x86/kvm/mmu/mmu.c ``kvm_mmu_faultin_pfn``,
``is_page_fault_stale`` and ``kvm_mmu_prepare_memory_fault_exit``; virt/kvm/kvm_main.c
``kvm_vm_set_mem_attributes``; QEMU accel/kvm/kvm-all.c ``kvm_convert_memory`` on
KVM_EXIT_MEMORY_FAULT):

1. the held fault sees a newer ``mmu_invalidate_seq`` and gives up: ``kvm_tdp_page_fault``
   returns RET_PF_RETRY and the guest re-executes the write;
2. the write faults again; now the access is private but the attribute says shared, so
   KVM exits to the VMM with KVM_EXIT_MEMORY_FAULT (``kvm_mmu_page_fault`` -EFAULT);
3. QEMU answers the exit by converting the page back to private (``kvm_convert_memory``
   with ``to_private`` true) and re-enters;
4. the third fault maps the page (RET_PF_FIXED), the guest reads back what it wrote and
   the run completes (exit status 0).

Run it: ``snpsim run examples/fault_races_attributes.py``.
"""

from snpsim.api import Scenario, do, leave, run

scenario = Scenario("fault races KVM_SET_MEMORY_ATTRIBUTES", memory="64M", vcpus=2)
data = scenario.data  # shared with the run: ends up in the summary's "result"


@scenario.guest(vcpu=1)
def write_fresh_page(g):
    va = g.alloc_page()              # private and validated, not yet in the NPT
    data["gpa"] = g.pa(va)
    g.write(va, b"hello")            # the #NPF the schedule below holds
    data["read_back"] = g.read(va, 5).decode()


def is_target(args):
    """The fault on the workload's page (the point's ``where``)."""
    return args["fault"].gfn == data.get("gpa", -1) >> 12


@scenario.hook("kvm_tdp_page_fault")
def note_fault(original, vcpu, fault):
    ret = original(vcpu, fault)
    if fault.gfn == data.get("gpa", -1) >> 12:
        data.setdefault("tdp_page_fault", []).append(getattr(ret, "name", ret))
    return ret


@scenario.hook("kvm_convert_memory")
def note_conversion(original, s, start, size, to_private):
    if start == data.get("gpa"):
        data.setdefault("vmm_conversions", []).append("private" if to_private else "shared")
    return original(s, start, size, to_private)


@scenario.hook("kvm_handle_memory_fault")
def note_memory_fault(original, cpu, run_):
    data["memory_fault_exits"] = data.get("memory_fault_exits", 0) + 1
    return original(cpu, run_)


def flip_to_shared(h):
    """The VMM's ioctl while vCPU 1 waits inside the fault."""
    data["seq_before"] = h.vm.mmu_invalidate_seq
    data["set_attributes"] = h.set_memory_attributes(data["gpa"], 4096, private=False)
    data["seq_after"] = h.vm.mmu_invalidate_seq


scenario.schedule(
    run(1, until=leave("kvm_mmu_faultin_pfn", where=is_target)),  # hold vCPU 1 mid-fault
    do(flip_to_shared),                                           # the VMM's ioctl
    run(1),                                                       # let vCPU 1 go on
)
