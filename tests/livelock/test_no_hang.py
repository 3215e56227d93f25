# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""No input makes the model hang (issue 12 item 4): whatever a malicious host answers to
the guest's PSC request, and whether the VMM converts memory faults or not, the run ends
-- completed, terminated by the guest's checks (linux-guest.md 5.2), or stopped as a
livelock naming the loop -- and every vCPU thread is stopped afterwards."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snpsim.adversary.attacks import _hdr_read, _hdr_write
from snpsim.adversary.vmm_bugs import IGNORE_MEMORY_FAULT_OVERRIDES
from snpsim.guest.seed import SeedOutcome, seed_workload
from snpsim.kvm.profiles import DEFAULT_PROFILE
from snpsim.kvm.svm_sev import svm_vmgexit_no_action
from snpsim.spec.psc import PscHdr
from snpsim.system import SnpSystem
from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE

MiB = 1 << 20

#: How a run may end: the VMM results of vmm/machine.py other than a hang.
ENDINGS = {"completed", "guest-terminated", "livelock", "internal-error"}


def _answer(cur: int | None, end: int | None, reserved: int):
    """A ``snp_complete_psc_answer`` override: KVM's success answer with the header's
    cur_entry / end_entry replaced (None: KVM's value) and ``reserved`` written."""

    def answer(vcpu, psc_ret):
        h = _hdr_read(vcpu)
        _hdr_write(vcpu, PscHdr(h.cur_entry if cur is None else cur,
                                h.end_entry if end is None else end, reserved))
        svm_vmgexit_no_action(vcpu, psc_ret)

    return answer


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cur=st.one_of(st.none(), st.integers(0, 0xFFFF)),
       end=st.one_of(st.none(), st.integers(0, 0xFFFF)),
       reserved=st.sampled_from([0, 0, 1]),
       ignore_faults=st.booleans())
def test_any_psc_answer_ends_the_run(cur, end, reserved, ignore_faults):
    kvm = DEFAULT_PROFILE.derive("any-answer",
                                 overrides={"snp_complete_psc_answer": _answer(cur, end, reserved)})
    qemu = (DEFAULT_QEMU_PROFILE.derive("ignores-memory-faults", overrides=IGNORE_MEMORY_FAULT_OVERRIDES)
            if ignore_faults else DEFAULT_QEMU_PROFILE)
    system = SnpSystem(64 * MiB, 1, kvm=kvm, qemu=qemu, livelock_repeats=4)
    out = system.run(seed_workload("set_memory_decrypted", 1,
                                   SeedOutcome("set_memory_decrypted", 1)))
    assert out.vmm.result in ENDINGS, out.describe()
    if out.vmm.result == "livelock":
        assert out.livelock_loop in {"vmgexit_psc", "kvm_cpu_exec", "kvm_mmu_page_fault"}
        assert out.livelock_vcpu == 0
    vm = system.kvm.vm(system.machine.s.vmfd)
    assert not any(v.blocked for v in vm.vcpus)
