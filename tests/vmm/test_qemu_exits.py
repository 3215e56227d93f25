# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 13 item 6: QEMU's handling of each KVM_RUN exit, per QEMU profile.

Sources (QEMU 9.1-10.1): ``kvm_cpu_exec`` and ``kvm_handle_internal_error``
(accel/kvm/kvm-all.c), ``kvm_arch_handle_exit`` (target/i386/kvm/kvm.c; its
KVM_EXIT_SYSTEM_EVENT case arrived for 10.1 with "i386/tdx: Handle
KVM_SYSTEM_EVENT_TDX_FATAL", commit 98dbfd6849f1, posted 2025-05-08 after 10.0's
release).  The lines QEMU prints are compared whole: they are QEMU's output, the thing
under test.  Every exit that stops the VM is followed by the register dump
(``cpu_dump_state``) and RUN_STATE_INTERNAL_ERROR.

Exits the model's KVM never produces for an SNP guest (KVM_EXIT_UNKNOWN,
KVM_EXIT_FAIL_ENTRY, the SHUTDOWN/RESET/CRASH system events, a reason QEMU does not
know) are made by a KVM profile whose ``svm_handle_exit`` answers one marked VMGEXIT
with that exit, as ``svm_handle_exit`` itself does for SVM_EXIT_ERR (FAIL_ENTRY).
"""

import pytest
from fakeguest import make, msr_call

from snpsim.kvm.profiles import DEFAULT_PROFILE
from snpsim.kvm.svm import svm_handle_exit
from snpsim.spec.exit_codes import SVM_EXIT_VMGEXIT
from snpsim.spec.kvm_uapi import (
    KVM_EXIT_FAIL_ENTRY,
    KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_SHUTDOWN,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_EXIT_UNKNOWN,
    KVM_INTERNAL_ERROR_EMULATION,
    KVM_SYSTEM_EVENT_CRASH,
    KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
)
from snpsim.spec.msr_protocol import GHCB_MSR_TERM_REQ_VAL

#: A GHCB MSR value no request uses (info 0xFFF): the marked VMGEXIT.
MARK = 0xFFF


def _exit_profile(fill):
    """A KVM profile whose ``svm_handle_exit`` answers the marked VMGEXIT by ``fill(run)``
    and a return to userspace (0); every other exit is KVM's."""
    def handle(vcpu, exit_):
        if exit_.exit_code == SVM_EXIT_VMGEXIT and vcpu.vmcb.ghcb_gpa == MARK:
            fill(vcpu.run)
            return 0
        return svm_handle_exit(vcpu, exit_)

    return DEFAULT_PROFILE.derive("exit-under-test", overrides={"svm_handle_exit": handle})


def _run_marked(fill, qemu="10.1"):
    def body(cpu):
        msr_call(cpu, MARK)

    _p, _k, m = make(body, kvm_profile=_exit_profile(fill), qemu_profile=qemu)
    return m, m.run()


# ---- guest termination (KVM_EXIT_SYSTEM_EVENT, SEV_TERM) --------------------------------


@pytest.mark.parametrize("qemu,lines", [
    ("10.1", []),                                  # kvm_arch_handle_exit: case, -1, silent
    ("10.0", ["KVM: unknown exit reason 24"]),     # no case yet: the default
    ("9.1", ["KVM: unknown exit reason 24"]),
])
def test_sev_term_per_qemu_version(qemu, lines):
    def body(cpu):
        msr_call(cpu, GHCB_MSR_TERM_REQ_VAL(1, 2))

    _p, _k, m = make(body, qemu_profile=qemu)
    res = m.run()
    assert (res.result, res.run_state) == ("guest-terminated", "internal-error")
    assert (res.reason_set, res.reason_code) == (1, 2)
    assert res.errors == lines
    assert m.s.cpu_dumps == [0]


# ---- KVM_RUN failing ------------------------------------------------------------------------


def test_kvm_run_error_prints_strerror_and_stops():
    """An unregistered GHCB: KVM_RUN returns -EINVAL (sev_handle_vmgexit); QEMU prints
    "error: kvm run failed %s" with strerror(22)."""
    def body(cpu):
        from snpsim.spec.msr_index import MSR_AMD64_SEV_ES_GHCB
        cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, 0x21000)
        cpu.vmgexit()

    _p, _k, m = make(body)
    res = m.run()
    assert res.result == "internal-error"
    assert res.errors == ["error: kvm run failed Invalid argument"]
    assert m.s.cpu_dumps == [0]


# ---- exits kvm_cpu_exec handles -----------------------------------------------------------


def test_shutdown_is_a_reset_request():
    def fill(run):
        run.exit_reason = KVM_EXIT_SHUTDOWN

    m, res = _run_marked(fill)
    assert res.result == "reset" and res.errors == [] and m.s.cpu_dumps == []


@pytest.mark.parametrize("event,result", [
    (KVM_SYSTEM_EVENT_SHUTDOWN, "completed"),      # qemu_system_shutdown_request
    (KVM_SYSTEM_EVENT_RESET, "reset"),             # qemu_system_reset_request
    (KVM_SYSTEM_EVENT_CRASH, "guest-panicked"),    # qemu_system_guest_panicked
])
def test_system_events_kvm_cpu_exec_handles(event, result):
    def fill(run):
        run.exit_reason = KVM_EXIT_SYSTEM_EVENT
        run.system_event.type = event

    m, res = _run_marked(fill)
    assert res.result == result and res.errors == [] and m.s.cpu_dumps == []


def test_unknown_exit_prints_the_hardware_reason_in_hex():
    def fill(run):
        run.exit_reason = KVM_EXIT_UNKNOWN
        run.hw.hardware_exit_reason = 0x7F

    m, res = _run_marked(fill)
    assert res.result == "internal-error"
    assert res.errors == ["KVM: unknown exit, hardware reason 7f"]
    assert m.s.cpu_dumps == [0]


def test_internal_error_prints_suberror_and_extra_data():
    def fill(run):
        run.exit_reason = KVM_EXIT_INTERNAL_ERROR
        run.internal.suberror = KVM_INTERNAL_ERROR_EMULATION
        run.internal.ndata = 2
        run.internal.data[0] = 0x403
        run.internal.data[1] = 1

    m, res = _run_marked(fill)
    assert res.result == "internal-error"
    assert res.errors == ["KVM internal error. Suberror: 1",
                          "extra data[0]: 0x0000000000000403",
                          "extra data[1]: 0x0000000000000001",
                          "emulation failure"]
    assert m.s.cpu_dumps == [0]


# ---- exits kvm_arch_handle_exit handles ----------------------------------------------------


def test_fail_entry():
    def fill(run):
        run.exit_reason = KVM_EXIT_FAIL_ENTRY
        run.fail_entry.hardware_entry_failure_reason = 0xFFFFFFFFFFFFFFFF  # SVM_EXIT_ERR

    m, res = _run_marked(fill)
    assert res.result == "internal-error"
    assert res.errors == ["KVM: entry failed, hardware error 0xffffffffffffffff"]


@pytest.mark.parametrize("qemu", ["10.1", "10.0", "9.1"])
def test_exit_reason_qemu_does_not_know(qemu):
    def fill(run):
        run.exit_reason = 99

    m, res = _run_marked(fill, qemu)
    assert res.result == "internal-error"
    assert res.errors == ["KVM: unknown exit reason 99"]
    assert m.s.cpu_dumps == [0]
