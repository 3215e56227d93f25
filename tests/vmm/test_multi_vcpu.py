# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 6 item 4: one host thread per vCPU, HLT blocks a vCPU inside KVM_RUN, and the
VM stop that follows the BSP's power-off ends every vCPU thread.

Expected behaviour from kvm-qemu-host.md (KVM_RUN return convention, section 0 notation)
and the QEMU flow it summarises: a halted vCPU with an in-kernel APIC sleeps in
``kvm_vcpu_block`` until a signal; QEMU's ``pause_all_vcpus`` kicks every vCPU
(``run->immediate_exit`` + SIG_IPI), so a blocked KVM_RUN returns -EINTR with
KVM_EXIT_INTR.  Model choice (docs/host.md): when every vCPU is halted nothing can wake
one, and the run ends "halted".
"""

import errno

import pytest
from fakeguest import DATA_GPA, acpi_poweroff, make

from snpsim.spec.kvm_uapi import KVM_EXIT_HLT, KVM_EXIT_INTR, KVM_EXIT_IO
from snpsim.spec.psc import PscEntry


def record(m):
    seen = []
    m.on_exit.append(lambda cpu, run: seen.append((cpu.cpu_index, cpu.last_run_ret,
                                                   run.exit_reason)))
    return seen


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_ap_halts_bsp_powers_off_run_completes(seed):
    platform, kvm, m = make(lambda cpu: None, vcpus=2, seed=seed)
    seen = record(m)
    res = m.run(platform.world.run_threads)
    assert res.result == "completed" and res.run_state == "shutdown", res
    # the BSP's last exit is the OUT to the ACPI port; the AP's only KVM_RUN return is
    # -EINTR from the kick of pause_all_vcpus, while it was blocked in HLT
    assert [s for s in seen if s[0] == 0][-1][2] == KVM_EXIT_IO
    assert [s for s in seen if s[0] == 1] == [(1, -errno.EINTR, KVM_EXIT_INTR)]
    vm = kvm.vm(m.s.vmfd)
    assert [v.mp_state for v in vm.vcpus] == ["runnable", "halted"]
    assert not any(v.blocked for v in vm.vcpus)
    # QEMU's kvm_eat_signals cleared the kick after the -EINTR
    assert all(c.kvm_run.immediate_exit == 0 for c in m.cpus if c.cpu_index == 1)


def test_bsp_converts_a_page_while_the_ap_is_halted():
    from test_host_path import psc

    from snpsim.spec import ghcb as G

    out = {}

    def body(cpu):
        g = psc(cpu, [PscEntry(0, DATA_GPA >> 12, 2, 0)])
        out["info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))

    platform, kvm, m = make(body, vcpus=2, seed=3)
    res = m.run(platform.world.run_threads)
    assert res.result == "completed", res
    assert out["info"] == (0, 0)
    assert kvm.vm(m.s.vmfd).mem_attr_array.get(DATA_GPA >> 12) == 0


def test_every_vcpu_halted_ends_the_run_halted():
    def body(cpu):
        cpu.hlt()

    platform, kvm, m = make(body, vcpus=2, poweroff=False)
    seen = record(m)
    res = m.run(platform.world.run_threads)
    assert res.result == "halted", res
    # exactly one vCPU got KVM_EXIT_HLT (the last to block), the other was kicked
    reasons = sorted((s[1], s[2]) for s in seen[-2:])
    assert reasons == sorted([(0, KVM_EXIT_HLT), (-errno.EINTR, KVM_EXIT_INTR)])


def test_one_vcpu_halt_ends_the_run_halted():
    platform, kvm, m = make(lambda cpu: cpu.hlt(), poweroff=False)
    seen = record(m)
    assert m.run().result == "halted"
    assert seen[-1][1:] == (0, KVM_EXIT_HLT)


def test_ap_powers_off_while_bsp_is_halted():
    """Either vCPU may stop the VM: here the AP powers off and the halted BSP is kicked."""
    def ap(cpu):
        from fakeguest import setup_ghcb

        setup_ghcb(cpu)
        acpi_poweroff(cpu)

    platform, kvm, m = make(lambda cpu: cpu.hlt(), vcpus=2, ap_body=ap, poweroff=False)
    res = m.run(platform.world.run_threads)
    assert res.result == "completed", res
