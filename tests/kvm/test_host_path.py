# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 3 item 4, the host path, driven by a fake guest: values from kvm-qemu-host.md
(sections 3, 4, 6, 8, 9)."""

import errno

from fakeguest import DATA_GPA, GHCB_GPA, C, make, set_pte_c

from snpsim.spec import ghcb as G
from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC
from snpsim.spec.kvm_uapi import KVM_EXIT_HYPERCALL, KVM_EXIT_IO, KVM_HC_MAP_GPA_RANGE
from snpsim.spec.psc import PscEntry, PscHdr, SnpPscDesc
from snpsim.spec.rmp import PVALIDATE_SUCCESS

SECRET = b"snpsim host path secret"


def psc_buf(entries, cur=0, end=None):
    end = len(entries) - 1 if end is None else end
    return SnpPscDesc(PscHdr(cur, end), tuple(entries)).encode()


def psc(cpu, entries, **kw):
    return ghcb_psc(cpu, psc_buf(entries, **kw))


def ghcb_psc(cpu, buf):
    from fakeguest import ghcb_call

    return ghcb_call(cpu, SVM_VMGEXIT_PSC, 0, 0, fields={"sw_scratch": GHCB_GPA + 0x800},
                     shared_buf=buf)


def test_boot_to_acpi_poweroff_is_completed():
    platform, kvm, m = make(lambda cpu: None)
    seen = []
    m.on_exit.append(lambda cpu, run: seen.append(run.exit_reason))
    res = m.run()
    assert res.result == "completed" and res.run_state == "shutdown", res
    # MSR PSC of the GHCB page to shared went to userspace; the power-off is KVM_EXIT_IO
    assert seen[0] == KVM_EXIT_HYPERCALL and seen[-1] == KVM_EXIT_IO
    assert len(m.digest) == 48


def test_private_to_shared_to_private_one_page():
    out = {}

    def body(cpu):
        # ACCEPT: the data page is private (launch) but unassigned: first private touch
        # faults it in (gmem + rmp_make_private), then PVALIDATE.
        rc = cpu.pvalidate(DATA_GPA, 0, True)
        out["accept"] = rc
        cpu.write(DATA_GPA, SECRET)
        out["private_read"] = cpu.read(DATA_GPA, len(SECRET))
        # DECRYPT: rescind, PSC shared, clear C-bit
        cpu.pvalidate(DATA_GPA, 0, False)
        g = psc(cpu, [PscEntry(0, DATA_GPA >> 12, 2, 0)])
        out["dec_info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))
        out["dec_desc"] = SnpPscDesc.decode(g[0x800:0x810])
        set_pte_c(cpu, DATA_GPA, False)
        cpu.write(DATA_GPA, b"shared data")
        out["shared_read"] = cpu.read(DATA_GPA, 11)
        # ENCRYPT: C-bit set, PSC private, PVALIDATE
        set_pte_c(cpu, DATA_GPA, True)
        g = psc(cpu, [PscEntry(0, DATA_GPA >> 12, 1, 0)])
        out["enc_info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))
        out["validate"] = cpu.pvalidate(DATA_GPA, 0, True)
        cpu.write(DATA_GPA, SECRET)
        out["private_read2"] = cpu.read(DATA_GPA, len(SECRET))

    platform, kvm, m = make(body)
    hypercalls = []
    m.on_exit.append(lambda cpu, run: hypercalls.append(tuple(run.hypercall.args[:3]))
                     if run.exit_reason == KVM_EXIT_HYPERCALL else None)
    res = m.run()
    assert res.result == "completed", res
    assert out["accept"] == (PVALIDATE_SUCCESS, 0)
    assert out["private_read"] == SECRET
    assert out["dec_info"] == (0, 0)
    assert out["dec_desc"].hdr.cur_entry == 1 and out["dec_desc"].entries[0].cur_page == 1
    assert out["shared_read"] == b"shared data"
    assert out["enc_info"] == (0, 0)
    assert out["validate"] == (PVALIDATE_SUCCESS, 0)
    assert out["private_read2"] == SECRET
    # exits: GHCB page shared (MSR PSC), data page shared, data page private (9.A/9.B/9.D)
    assert hypercalls == [(GHCB_GPA, 1, 0), (DATA_GPA, 1, 0x0), (DATA_GPA, 1, 0x10)]
    # final state: RMP assigned to the guest at that GPA, validated; VMM sees no plaintext
    vm = kvm.vm(m.s.vmfd)
    ent = platform.npt_pfn = platform.host.npt_lookup(vm.npt, DATA_GPA >> 12)
    e = platform.rmp.lookup(ent.pfn)
    assert e.assigned and e.asid == m.asid and e.gpa == DATA_GPA and e.validated
    assert SECRET not in platform.host.read(ent.pfn << 12, 4096)
    assert SECRET not in m.read_guest_ram(DATA_GPA, 4096)


def test_data_the_guest_writes_shared_is_what_the_vmm_reads():
    def body(cpu):
        g = psc(cpu, [PscEntry(0, DATA_GPA >> 12, 2, 0)])
        assert G.ghcb_get(g, "sw_exit_info_2") == 0
        set_pte_c(cpu, DATA_GPA, False)
        cpu.write(DATA_GPA, b"to the VMM")

    platform, kvm, m = make(body)
    assert m.run().result == "completed"
    assert m.read_guest_ram(DATA_GPA, 10) == b"to the VMM"
    vm = kvm.vm(m.s.vmfd)
    assert vm.mem_attr_array.get(DATA_GPA >> 12) == 0
    pfn = platform.host.npt_lookup(vm.npt, DATA_GPA >> 12).pfn
    assert not platform.rmp.lookup(pfn).assigned


def test_guest_is_suspended_across_the_userspace_exit():
    state = {"in_psc": False}

    def body(cpu):
        state["in_psc"] = True
        psc(cpu, [PscEntry(0, DATA_GPA >> 12, 2, 0)])
        state["in_psc"] = False

    platform, kvm, m = make(body)
    seen = []

    def hook(cpu, run):
        if run.exit_reason == KVM_EXIT_HYPERCALL and run.hypercall.args[0] == DATA_GPA:
            seen.append(state["in_psc"])

    m.on_exit.append(hook)
    assert m.run().result == "completed"
    assert seen == [True]


def test_implicit_conversion_memory_fault_then_resume():
    """9.C: a C=0 write to a private GPA -> KVM_RUN -EFAULT + KVM_EXIT_MEMORY_FAULT
    {gpa, 4096, flags 0} -> QEMU converts to shared -> the write succeeds."""
    def body(cpu):
        set_pte_c(cpu, DATA_GPA, False)
        cpu.write(DATA_GPA, b"implicit")

    platform, kvm, m = make(body)
    faults = []
    m.on_exit.append(lambda cpu, run: faults.append(
        (cpu.last_run_ret, run.memory_fault.gpa, run.memory_fault.size, run.memory_fault.flags))
        if run.exit_reason == 39 else None)
    assert m.run().result == "completed"
    assert faults == [(-errno.EFAULT, DATA_GPA, 4096, 0)]
    assert m.read_guest_ram(DATA_GPA, 8) == b"implicit"


def test_unused():
    assert C and KVM_HC_MAP_GPA_RANGE == 12
