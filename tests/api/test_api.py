# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The public scenario API itself (issue #12): hooks wrap and replace a modelled function
and see every call of it, from every caller (a multi-range PSC request: KVM's
``snp_begin_psc`` is entered once per range, from ``sev_handle_vmgexit`` and from
``snp_complete_one_psc``); hooks are gone after the run; a schedule holds a vCPU at a
point while host code runs (a #NPF racing KVM_SET_MEMORY_ATTRIBUTES); bad scenarios are
refused with ScenarioError; user-code failures end up in Result.errors.  A point's
``where`` sees the function's arguments by name even when a hook on the same function
was installed first.

KVM's answer to the race (arch/x86/kvm/mmu/mmu.c, ``kvm_mmu_faultin_pfn`` /
``is_page_fault_stale``, and the model's ``kvm_mmu_faultin_pfn`` /
``kvm_tdp_page_fault``): ``fault->mmu_seq`` is snapshotted from ``mmu_invalidate_seq``
before the private/shared check.  An attribute change before the fault handler runs is
simply seen by the check (shared fault on a private GFN -> KVM_EXIT_MEMORY_FAULT, flags
0); one after the check bumps ``mmu_invalidate_seq`` (``kvm_vm_set_mem_attributes``
invalidates the range), so the fault is stale: RET_PF_RETRY, no SPTE, the guest
re-executes and faults again, and that fault sees the new attribute."""

import errno

import pytest

from snpsim import api
from snpsim.api import Scenario, ScenarioError, do, enter, leave, run
from snpsim.spec.kvm_uapi import KVM_EXIT_HYPERCALL
from snpsim.spec.psc import VMGEXIT_PSC_ERROR_GENERIC, PscEntry, PscHdr, SnpPscDesc

PRIVATE, SHARED = 1, 2


def three_range_psc(sc):
    """vCPU 0's work: one PSC request [SHARED a, PRIVATE b, SHARED c] (ops alternate, so
    KVM makes three ranges of it); its answer goes to result["answer"]."""
    @sc.guest
    def psc(g):
        a, b, c = (g.pa(g.alloc_page()) for _ in range(3))
        g.result.update(a=a, b=b, c=c, raw=True)
        entries = (PscEntry(0, a >> 12, SHARED, 0), PscEntry(0, b >> 12, PRIVATE, 0),
                   PscEntry(0, c >> 12, SHARED, 0))
        ans = g.psc(SnpPscDesc(PscHdr(0, 2), entries).encode())
        g.result["answer"] = (ans["sw_exit_info_1"], ans["sw_exit_info_2"])
        g.result["raw"] = False


def test_wrap_hook_sees_every_range_of_a_multi_range_psc():
    sc = Scenario("wrap")
    three_range_psc(sc)
    calls = []

    @sc.hook("snp_begin_psc")
    def begin(original, vcpu):
        ret = original(vcpu)
        if sc.data.get("raw"):
            exit_ = vcpu.run.exit_reason == KVM_EXIT_HYPERCALL and ret == 0
            calls.append((ret, vcpu.run.hypercall.args[0] if exit_ else None))
        return ret

    res = sc.run()
    d = res.data
    assert res.completed and d["answer"] == (0, 0)
    # entered once per range (each exit to userspace), then once more: nothing left
    assert calls == [(0, d["a"]), (0, d["b"]), (0, d["c"]), (1, None)]
    assert not res.page(d["a"]).attribute_private and res.page(d["b"]).attribute_private


def test_replace_hook_runs_instead_of_the_function_and_hooks_are_removed_after_the_run():
    sc = Scenario("replace")
    three_range_psc(sc)
    seen = []

    @sc.hook("snp_begin_psc")
    def refuse(original, vcpu):
        seen.append(vcpu.vcpu_id)
        if not sc.data.get("raw"):
            return original(vcpu)
        api.function("snp_complete_psc")(vcpu, VMGEXIT_PSC_ERROR_GENERIC)
        return 1

    res = sc.run()
    assert res.completed and res.data["answer"] == (0, VMGEXIT_PSC_ERROR_GENERIC)
    assert res.page(res.data["a"]).attribute_private        # the original never ran
    n = len(seen)
    again = Scenario("no hook")
    three_range_psc(again)
    res = again.run()
    assert len(seen) == n and res.data["answer"] == (0, 0)  # the hook is gone
    assert not res.page(res.data["a"]).attribute_private


def test_hooks_are_removed_after_a_run_whose_hook_failed():
    sc = Scenario("failing hook")
    three_range_psc(sc)
    calls = []

    @sc.hook("snp_begin_psc")
    def boom(original, vcpu):
        calls.append(1)
        raise RuntimeError("hook failed")

    res = sc.run()
    assert not res.completed and res.outcome.vmm.result == "stopped"
    [err] = res.errors
    assert "snp_begin_psc" in err and "RuntimeError" in err and "hook failed" in err
    again = Scenario("no hook")
    three_range_psc(again)
    assert again.run().completed and calls == [1]


# ---- the schedule: a fault racing KVM_SET_MEMORY_ATTRIBUTES ----------------------------------


def racing_fault(hold_at):
    """vCPU 1 makes a page shared and writes it: a shared #NPF, as the VMM does not
    pre-fault converted ranges (QEMU 9.1 behaviour); the schedule holds vCPU 1 at
    ``hold_at`` of that fault, sets the page's attribute to private, releases it."""
    sc = Scenario("race", vcpus=2, qemu_knobs={"pre_fault_after_conversion": False})
    faults, tdp = [], []

    @sc.guest(vcpu=1)
    def touch(g):
        va = g.alloc_page()
        g.result["gpa"] = g.pa(va)
        g.set_memory_decrypted(va)
        g.result["touch"] = True
        g.write(va, b"shared")
        g.result["read"] = g.read(va, 6)

    def ours(args):
        return sc.data.get("touch") and args["cr2_or_gpa"] >> 12 == sc.data["gpa"] >> 12

    @sc.hook("kvm_mmu_page_fault")        # a hook and a point on one function
    def fault(original, vcpu, gpa, error_code):
        if ours({"cr2_or_gpa": gpa}):
            faults.append(gpa)
        return original(vcpu, gpa, error_code)

    @sc.hook("kvm_tdp_page_fault")
    def stale(original, vcpu, fault):
        ret = original(vcpu, fault)
        if ours({"cr2_or_gpa": fault.addr}):
            tdp.append(getattr(ret, "name", ret))
        return ret

    exits = []

    @sc.hook("kvm_handle_memory_fault")
    def memory_fault(original, cpu, run_):
        exits.append((run_.memory_fault.gpa, run_.memory_fault.flags))
        return original(cpu, run_)

    sc.schedule(run(1, until=hold_at(ours)),
                do(lambda h: sc.data.update(flip=h.set_memory_attributes(sc.data["gpa"], 4096,
                                                                         private=True))),
                run(1))
    return sc.run(), faults, tdp, exits


def test_schedule_attribute_flip_before_the_fault_handler_is_seen_by_its_check():
    res, faults, tdp, exits = racing_fault(
        lambda ours: enter("kvm_mmu_page_fault", vcpu=1, where=ours))
    gpa = res.data["gpa"]
    assert res.errors == [] and res.completed and res.data["flip"] == 0
    # the held fault sees the new (private) attribute: a shared access to a private GFN
    assert exits == [(gpa, 0)]                    # KVM_EXIT_MEMORY_FAULT, flags 0 (shared)
    assert tdp == [-errno.EFAULT, "RET_PF_FIXED"]  # no SPTE; after the VMM converted the
    assert faults == [gpa, gpa]                    # page back, the re-fault maps it
    assert res.data["read"] == b"shared" and not res.page(gpa).attribute_private


def test_schedule_attribute_flip_after_the_check_makes_the_fault_stale_and_retry():
    res, faults, tdp, exits = racing_fault(
        lambda ours: leave("kvm_mmu_faultin_pfn", vcpu=1,
                           where=lambda a: ours({"cr2_or_gpa": a["fault"].addr})))
    gpa = res.data["gpa"]
    assert res.errors == [] and res.completed
    # the held fault passed the check against the old (shared) attribute; the flip bumped
    # mmu_invalidate_seq, so it installs nothing: RET_PF_RETRY, the guest faults again
    assert tdp == ["RET_PF_RETRY", -errno.EFAULT, "RET_PF_FIXED"] and faults == [gpa] * 3
    assert exits == [(gpa, 0)]                    # the second fault sees private: exit
    assert res.data["read"] == b"shared" and not res.page(gpa).attribute_private


def test_schedule_point_never_reached_is_an_error_not_a_hang():
    sc = Scenario("never", vcpus=2)
    sc.guest(lambda g: None, vcpu=1)
    sc.schedule(run(1, until=enter("kvm_mmu_page_fault", vcpu=1, where=lambda a: False)),
                do(lambda h: pytest.fail("a step after a failed one ran")))
    res = sc.run()
    [err] = res.errors
    assert "vCPU 1 enters kvm_mmu_page_fault" in err and "never reached" in err
    assert res.outcome.completed and not res.completed


# ---- errors ---------------------------------------------------------------------------------


def test_unknown_function_names_are_scenario_errors():
    sc = Scenario("names")
    with pytest.raises(ScenarioError, match="snp_begin_pcs"):
        sc.hook("snp_begin_pcs", lambda original, *a: original(*a))
    with pytest.raises(ScenarioError):
        sc.schedule(run(0, until=enter("no_such_function")))
    with pytest.raises(ScenarioError):
        sc.at(leave("no_such_function"), lambda h: None)
    with pytest.raises(ScenarioError):            # the guest's and the CPU's VMGEXIT
        api.function("VMGEXIT")
    assert api.function("guest:VMGEXIT") is not api.function("cpu:VMGEXIT")
    assert api.functions()["snp_begin_psc"] == "kvm"


def test_bad_vcpu_indexes_are_scenario_errors():
    sc = Scenario("vcpus", vcpus=2)
    with pytest.raises(ScenarioError):
        sc.guest(lambda g: None, vcpu=2)
    with pytest.raises(ScenarioError):
        sc.schedule(run(-1))
    with pytest.raises(ScenarioError):
        run(0, until=enter("kvm_mmu_page_fault", vcpu=1))
    with pytest.raises(ScenarioError):
        Scenario("none", vcpus=0)
    sc.setup(lambda h: h.vcpu(2))                 # from user code: reported, not raised
    res = sc.run()
    [err] = res.errors
    assert "ScenarioError" in err and "vCPU 2" in err


def test_a_failed_guest_work_is_reported_and_the_guest_still_powers_off():
    sc = Scenario("guest work error", vcpus=2)

    @sc.guest(vcpu=1)
    def work(g):
        raise ValueError("guest work failed")

    res = sc.run()
    assert res.outcome.completed and not res.completed
    [err] = res.errors
    assert "vCPU 1" in err and "ValueError" in err and "guest work failed" in err


def test_a_failed_host_event_ends_the_run_once():
    sc = Scenario("event error", vcpus=2)
    sc.guest(lambda g: g.set_memory_decrypted(g.alloc_page()), vcpu=1)

    @sc.at(enter("kvm_set_memory_attributes_shared"))
    def event(h):
        raise KeyError("event failed")

    res = sc.run()
    assert res.outcome.vmm.result == "stopped" and not res.completed
    [err] = res.errors                  # reported once, not at every later point
    assert "KeyError" in err and "event failed" in err


def test_host_events_run_with_one_vcpu_and_no_schedule():
    sc = Scenario("one vCPU")             # no schedule: the scheduler still runs the events
    sc.guest(lambda g: g.result.update(ret=g.set_memory_decrypted(g.alloc_page())))
    seen = []
    sc.at(enter("kvm_set_memory_attributes_shared", vcpu=0),
          lambda h: seen.append(h.vcpu(0).run.hypercall.args[1]))
    res = sc.run()
    assert res.completed and res.data["ret"] == 0
    assert seen[-1] == 1                  # the guest's one-page KVM_HC_MAP_GPA_RANGE


def test_schedule_holds_a_vcpu_while_the_others_run_and_do_steps_see_both_held():
    sc = Scenario("held", vcpus=2)
    log = []

    def work(v):
        def convert(g):
            va = g.alloc_page()
            g.result[f"ready{v}"] = True
            g.result[f"ret{v}"] = g.set_memory_decrypted(va)
            log.append(f"vCPU {v} converted")
        return convert

    sc.guest(work(0), vcpu=0)
    sc.guest(work(1), vcpu=1)

    def at_convert(v):
        return enter("kvm_convert_memory", vcpu=v, where=lambda a: sc.data.get(f"ready{v}"))

    sc.schedule(run(1, until=at_convert(1)),      # vCPU 1 stops in QEMU's conversion ...
                run(0, until=at_convert(0)),      # ... while vCPU 0 runs to its own
                do(lambda h: log.append("both held")),
                run(1, until=leave("kvm_convert_memory", vcpu=1)),
                do(lambda h: log.append("vCPU 1 converted, vCPU 0 still held")),
                run(0))
    res = sc.run()
    assert res.completed and res.errors == [] and res.data["ret0"] == res.data["ret1"] == 0
    assert log[:2] == ["both held", "vCPU 1 converted, vCPU 0 still held"]
    assert sorted(log[2:]) == ["vCPU 0 converted", "vCPU 1 converted"]
