# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The => tree: host handling nests under the guest's exit, in order (issue 3 item 5)."""

from __future__ import annotations

from snpsim.trace import (
    CallNode,
    Enter,
    Instant,
    Leave,
    Switch,
    build_call_tree,
    format_tree,
    format_value,
)


def find(nodes: list[CallNode], name: str) -> list[CallNode]:
    """All nodes named ``name``, depth first, in order."""
    out: list[CallNode] = []
    for n in nodes:
        if n.name == name:
            out.append(n)
        out.extend(find(n.children, name))
    return out


def names(node: CallNode) -> list[str]:
    return [c.name for c in node.children]


def test_host_handling_nests_under_vmgexit_in_order(machine_events):
    roots = build_call_tree(machine_events)
    assert [r.name for r in roots] == ["kvm_cpu_exec", "set_memory_decrypted"]
    (vmgexit,) = find(roots, "VMGEXIT")
    assert vmgexit.party == "cpu" and vmgexit.ctx == "vcpu0"
    assert names(vmgexit) == [
        "sev_handle_vmgexit",
        "KVM_EXIT_HYPERCALL",
        "kvm_convert_memory",
        "KVM_RUN",
    ]
    handle, exit_, convert, run = vmgexit.children
    assert names(handle) == ["snp_begin_psc"]
    assert exit_.kind == "instant" and exit_.party == "vmm"
    assert names(convert) == ["KVM_SET_MEMORY_ATTRIBUTES"]
    # the second KVM_RUN completes the PSC, then re-enters the guest (and stays open
    # there: its VMRUN gets no children, the guest resumes at its own VMGEXIT)
    assert names(run) == ["snp_complete_one_psc", "VMRUN"]
    assert run.children[1].children == []


def test_host_frames_opened_before_the_switch_stay_out(machine_events):
    roots = build_call_tree(machine_events)
    guest_root = roots[1]
    assert not find([guest_root], "kvm_cpu_exec")
    # the first KVM_RUN/VMRUN (opened before the guest ran) are at the root, once
    exec_ = roots[0]
    assert names(exec_) == ["KVM_RUN"] and names(exec_.children[0]) == ["VMRUN"]
    # ...and their Leave, which comes while the guest's PVALIDATE exit is handled,
    # only sets their result there
    assert exec_.closed and exec_.result == 0
    assert exec_.children[0].closed and exec_.children[0].result == 2


def test_npf_and_vmmcall_exits_nest_under_the_exiting_instruction(machine_events):
    roots = build_call_tree(machine_events)
    (pval,) = find(roots, "PVALIDATE")
    assert names(pval) == ["kvm_mmu_page_fault", "VMRUN"]
    assert pval.result == (0, False)
    (vmmcall,) = find(roots, "VMMCALL")
    assert names(vmmcall) == [
        "kvm_emulate_hypercall",
        "KVM_EXIT_HYPERCALL",
        "kvm_convert_memory",
        "KVM_RUN",
    ]


def test_guest_frames_nest_by_their_own_stack(machine_events):
    roots = build_call_tree(machine_events)
    (enc_dec,) = find(roots, "__set_memory_enc_dec")
    assert names(enc_dec) == ["PVALIDATE", "vmgexit_psc", "enc_dec_hypercall"]


EXPECTED = """\
set_memory_decrypted(addr=0xffff888000100000, numpages=1) -> 0
  => __set_memory_enc_dec(addr=0xffff888000100000, numpages=1, enc=False) -> 0
    => PVALIDATE(gpa=0x100000, validate=False) [cpu] -> (0, False)
      => kvm_mmu_page_fault(gpa=0x100000) [kvm] -> 0
      => VMRUN() [cpu] -> (VMGEXIT, 0x80000010)
    => vmgexit_psc(gpa=0x100000, npages=1) -> 0
      => sev_es_ghcb_hv_call(exit_code=0x80000010) -> 0
        => VMGEXIT(exit_code=0x80000010) [cpu] -> 0
          => sev_handle_vmgexit(exit_code=0x80000010) [kvm] -> 0
            => snp_begin_psc(gpa=0x100000, npages=1) [kvm] -> 0
          * KVM_EXIT_HYPERCALL nr=0xc gpa=0x100000 [vmm]
          => kvm_convert_memory(start=0x100000, size=0x1000, to_private=False) [vmm] -> 0
            => KVM_SET_MEMORY_ATTRIBUTES(address=0x100000, size=0x1000, attributes=0) [kvm] -> 0
          => KVM_RUN() [kvm] -> 2
            => snp_complete_one_psc() [kvm] -> 1
            => VMRUN() [cpu] -> (VMMCALL, (0xc, 0x100000, 1))
    => enc_dec_hypercall(gpa=0x100000, npages=1, enc=False) -> 0
      => VMMCALL(nr=0xc, gpa=0x100000, npages=1) [cpu] -> 0
        => kvm_emulate_hypercall(nr=0xc, gpa=0x100000, npages=1) [kvm] -> 0
        * KVM_EXIT_HYPERCALL nr=0xc gpa=0x100000 [vmm]
        => kvm_convert_memory(start=0x100000, size=0x1000, to_private=False) [vmm] -> 0
          => KVM_SET_MEMORY_ATTRIBUTES(address=0x100000, size=0x1000, attributes=0) [kvm] -> 0
        => KVM_RUN() [kvm] -> 0
          => complete_hypercall_exit() [kvm] -> 1
          => VMRUN() [cpu] -> (HLT, 0)"""


def test_root_filter_keeps_the_subtree_with_its_host_parts(machine_events):
    assert format_tree(machine_events, root="set_memory_decrypted") == EXPECTED


def test_root_filter_globs_and_no_match(machine_events):
    text = format_tree(machine_events, root="vmgexit_*")
    assert text.splitlines()[0].startswith("vmgexit_psc(gpa=0x100000, npages=1)")
    assert "enc_dec_hypercall" not in text and "snp_begin_psc" in text
    assert format_tree(machine_events, root="no_such_function") == ""


def test_full_tree_starts_with_the_host_frames_before_the_guest_ran(machine_events):
    lines = format_tree(machine_events).splitlines()
    assert lines[:3] == [
        "kvm_cpu_exec() [vmm] -> 0",
        "  => KVM_RUN() [kvm] -> 2",
        "    => VMRUN() [cpu] -> (NPF, 0x100000)",
    ]
    assert lines[3:] == EXPECTED.splitlines()


def test_order_is_issue_3_order(machine_events):
    text = format_tree(machine_events, root="set_memory_decrypted")
    order = [
        "set_memory_decrypted",
        "PVALIDATE",
        "vmgexit_psc",
        "VMGEXIT",
        "sev_handle_vmgexit",
        "snp_begin_psc",
        "KVM_EXIT_HYPERCALL",
        "kvm_convert_memory",
        "KVM_SET_MEMORY_ATTRIBUTES",
        "KVM_RUN",
        "snp_complete_one_psc",
        "enc_dec_hypercall",
    ]
    called = [
        line.strip().removeprefix("=> ").removeprefix("* ").split("(")[0].split(" ")[0]
        for line in text.splitlines()
    ]
    it = iter(called)
    assert all(name in it for name in order)  # a subsequence, in this order


def ev(kind, seq, *a):
    return kind(seq, seq * 10, *a)


def test_two_vcpus_two_host_threads():
    """Each host thread's handling nests under its own guest's exit; ctx is shown."""
    events = [
        ev(Enter, 0, "host0", "kvm", "KVM_RUN", {}),
        ev(Enter, 1, "host1", "kvm", "KVM_RUN", {}),
        ev(Switch, 2, "host0", "vcpu0", "VMRUN"),
        ev(Enter, 3, "vcpu0", "guest", "g0", {}),
        ev(Enter, 4, "vcpu0", "cpu", "VMGEXIT", {}),
        ev(Switch, 5, "vcpu0", "host0", "VMGEXIT"),
        ev(Switch, 6, "host0", "vcpu1", "VMRUN"),  # (a scheduler picking vcpu1)
        ev(Enter, 7, "vcpu1", "guest", "g1", {}),
        ev(Enter, 8, "vcpu1", "cpu", "VMGEXIT", {}),
        ev(Switch, 9, "vcpu1", "host1", "VMGEXIT"),
        ev(Enter, 10, "host1", "kvm", "h1", {}),
        ev(Leave, 11, "host1", "kvm", "h1", 0),
        ev(Switch, 12, "host1", "host0", "schedule"),
        ev(Enter, 13, "host0", "kvm", "h0", {}),
        ev(Instant, 14, "host0", "vmm", "EXIT", {"gpa": 0x2000}),
        ev(Leave, 15, "host0", "kvm", "h0", 0),
    ]
    roots = build_call_tree(events)
    assert [r.name for r in roots] == ["KVM_RUN", "KVM_RUN", "g0", "g1"]
    (x0,) = find(roots[2:3], "VMGEXIT")
    (x1,) = find(roots[3:4], "VMGEXIT")
    assert names(x1) == ["h1"]
    assert names(x0) == ["h0"] and names(x0.children[0]) == ["EXIT"]
    text = format_tree(events)
    assert "g1() [vcpu1]" in text and "=> h0() [kvm host0] -> 0" in text
    assert "* EXIT gpa=0x2000 [vmm host0]" in text


def test_partial_and_unbalanced_traces_do_not_raise():
    events = [
        ev(Leave, 0, "host0", "kvm", "before_install", 0),  # Enter never seen
        ev(Enter, 1, "vcpu0", "guest", "a", {}),
        ev(Enter, 2, "vcpu0", "guest", "b", {}),
        ev(Leave, 3, "vcpu0", "guest", "a", 1),  # closes b silently
        ev(Enter, 4, "vcpu0", "guest", "c", {}),  # never leaves
    ]
    assert format_tree(events) == "a() -> 1\n  => b()\nc()"
    assert format_tree([]) == ""


def test_format_value_rule():
    assert format_value(9) == "9"
    assert format_value(10) == "0xa"
    assert format_value(-22) == "-22"
    assert format_value(True) == "True"
    assert format_value(None) == "None"
    assert format_value("SIZE_4K") == "SIZE_4K"
    assert format_value("<KvmVcpu>") == "<KvmVcpu>"
    assert format_value("two words") == "'two words'"
    assert format_value((1, 0x1000)) == "(1, 0x1000)"
    assert format_value((1,)) == "(1,)"


def test_raised_shows_in_tree():
    events = [
        ev(Enter, 0, "vcpu0", "guest", "f", {"gpa": 0x1000}),
        ev(Leave, 1, "vcpu0", "guest", "f", "raised ValueError"),
    ]
    assert format_tree(events) == "f(gpa=0x1000) -> raised ValueError"
