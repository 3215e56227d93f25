# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 3, end to end: one page private -> shared -> private through the guest, the CPU,
KVM and the VMM, with the real control flow.

Expected orders come from issue 3 items 3 and 4, which restate linux-guest.md 2-6 (guest)
and kvm-qemu-host.md 3, 6-9 (host); expected end states from hardware-and-ghcb.md 3.1/9
and kvm-qemu-host.md 9 A/B.
"""

import pytest

from snpsim.guest.seed import PRIVATE_PAYLOAD, SHARED_PAYLOAD
from snpsim.system import SnpSystem
from snpsim.trace.events import Enter, Instant

DECRYPT_GUEST = [
    "set_memory_decrypted", "__set_memory_enc_dec", "__set_memory_enc_pgtable", "cpa_flush",
    "amd_enc_status_change_prepare", "snp_set_memory_shared", "set_pages_state",
    "__set_pages_state", "pvalidate_pages", "PVALIDATE", "__sev_get_ghcb", "vmgexit_psc",
    "sev_es_ghcb_hv_call", "VMGEXIT",
    # host side, nested under the VMGEXIT
    "sev_handle_vmgexit", "setup_vmgexit_scratch", "snp_begin_psc",
    "kvm_convert_memory", "kvm_vm_ioctl_set_mem_attributes",
    "ram_block_discard_guest_memfd_range", "sev_gmem_invalidate", "rmp_make_shared", "RMPUPDATE",
    "kvm_arch_vcpu_ioctl_run", "snp_complete_one_psc", "VMRUN",
    # back in the guest
    "__sev_put_ghcb", "__change_page_attr_set_clr", "cpa_flush", "amd_enc_status_change_finish",
    "enc_dec_hypercall",
]

ENCRYPT_GUEST = [
    "set_memory_encrypted", "__set_memory_enc_dec", "__set_memory_enc_pgtable", "cpa_flush",
    "amd_enc_status_change_prepare", "__change_page_attr_set_clr", "cpa_flush",
    "amd_enc_status_change_finish", "snp_set_memory_private", "set_pages_state",
    "__set_pages_state", "__sev_get_ghcb", "vmgexit_psc", "sev_es_ghcb_hv_call", "VMGEXIT",
    "sev_handle_vmgexit", "setup_vmgexit_scratch", "snp_begin_psc", "kvm_convert_memory",
    "kvm_vm_ioctl_set_mem_attributes", "ram_block_discard_range", "kvm_arch_vcpu_ioctl_run",
    "snp_complete_one_psc", "VMRUN", "__sev_put_ghcb", "pvalidate_pages", "PVALIDATE",
    # QEMU 9.1: the PVALIDATE faults: KVM takes the private fault, guest_memfd allocates,
    # prepares
    "npf_interception", "kvm_gmem_get_pfn", "sev_gmem_prepare", "rmp_make_private", "RMPUPDATE",
    "VMRUN", "enc_dec_hypercall",
]

# QEMU 10.1 (the default) pre-faults the converted range right after the conversion
# (target/i386/kvm/kvm.c kvm_handle_hc_map_gpa_range, "i386/kvm: Prefault memory on page
# state change"): guest_memfd allocates and prepares before the guest is resumed, and its
# PVALIDATE finds the page mapped (no #NPF).
ENCRYPT_GUEST_PREFAULT = [
    "set_memory_encrypted", "__set_memory_enc_dec", "__set_memory_enc_pgtable", "cpa_flush",
    "amd_enc_status_change_prepare", "__change_page_attr_set_clr", "cpa_flush",
    "amd_enc_status_change_finish", "snp_set_memory_private", "set_pages_state",
    "__set_pages_state", "__sev_get_ghcb", "vmgexit_psc", "sev_es_ghcb_hv_call", "VMGEXIT",
    "sev_handle_vmgexit", "setup_vmgexit_scratch", "snp_begin_psc", "kvm_convert_memory",
    "kvm_vm_ioctl_set_mem_attributes", "ram_block_discard_range",
    "kvm_pre_fault_converted_range", "kvm_vcpu_pre_fault_memory",
    "kvm_arch_vcpu_pre_fault_memory", "kvm_tdp_map_page", "kvm_gmem_get_pfn",
    "sev_gmem_prepare", "rmp_make_private", "RMPUPDATE",
    "kvm_arch_vcpu_ioctl_run", "snp_complete_one_psc", "VMRUN", "__sev_put_ghcb",
    "pvalidate_pages", "PVALIDATE", "enc_dec_hypercall",
]


def subtree_names(events, root):
    """Names of Enter events from the first Enter of ``root`` to its Leave, in order."""
    out, inside, depth_ctx = [], False, None
    for ev in events:
        if isinstance(ev, Enter) and ev.name == root and not inside:
            inside, depth_ctx = True, ev.ctx
        if inside and isinstance(ev, Enter):
            out.append(ev.name)
        if inside and getattr(ev, "name", None) == root and ev.ctx == depth_ctx and ev.type == "leave":
            break
    return out


def assert_in_order(names, expected):
    pos = 0
    for want in expected:
        try:
            pos = names.index(want, pos) + 1
        except ValueError:
            pytest.fail(f"{want!r} missing after position {pos} in trace: {names[max(0, pos - 5):pos + 5]}")


@pytest.fixture(scope="module")
def decrypted():
    return SnpSystem(memory=64 << 20).trace_conversion("set_memory_decrypted", 1)


@pytest.fixture(scope="module")
def encrypted():
    return SnpSystem(memory=64 << 20).trace_conversion("set_memory_encrypted", 1)


@pytest.fixture(scope="module")
def encrypted_qemu_9_1():
    return SnpSystem(memory=64 << 20, qemu="9.1").trace_conversion("set_memory_encrypted", 1)


def test_decrypt_runs_the_whole_protocol_in_order(decrypted):
    assert decrypted.completed, decrypted.outcome
    assert_in_order(subtree_names(decrypted.events, "set_memory_decrypted"), DECRYPT_GUEST)


def test_decrypt_end_state(decrypted):
    st = decrypted.state
    assert st.pte_c_bit is False
    assert st.attribute_private is False
    assert st.rmp is not None and st.rmp["assigned"] is False  # hypervisor-owned
    # data the guest wrote through its (now C=0) mapping is what the VMM reads
    assert decrypted.seed.guest_read == SHARED_PAYLOAD
    assert st.host_read.startswith(SHARED_PAYLOAD)


def test_decrypt_psc_request_args(decrypted):
    """KVM_EXIT_HYPERCALL for the PSC: gpa of the page, 1 page, attributes 0 (shared,
    4K) -- kvm-qemu-host.md 9 B."""
    hc = [e for e in decrypted.events if isinstance(e, Instant) and e.name == "KVM_EXIT_HYPERCALL"]
    gpa = decrypted.seed.gpa
    assert any(e.args.get("gpa") == gpa and e.args.get("npages") == 1 and e.args.get("attrs") == 0
               for e in hc), hc


def test_encrypt_runs_the_whole_protocol_in_order(encrypted, encrypted_qemu_9_1):
    assert encrypted.completed, encrypted.outcome
    names = subtree_names(encrypted.events, "set_memory_encrypted")
    assert_in_order(names, ENCRYPT_GUEST_PREFAULT)
    assert "npf_interception" not in names
    assert encrypted_qemu_9_1.completed, encrypted_qemu_9_1.outcome
    names = subtree_names(encrypted_qemu_9_1.events, "set_memory_encrypted")
    assert_in_order(names, ENCRYPT_GUEST)
    assert "kvm_vcpu_pre_fault_memory" not in names


def test_encrypt_end_state(encrypted):
    st = encrypted.state
    assert st.pte_c_bit is True
    assert st.attribute_private is True
    r = st.rmp
    assert r["assigned"] and r["validated"] and r["pagesize"] == 0
    assert r["gpa"] == encrypted.seed.gpa
    assert r["asid"] != 0
    # the guest reads its data back; the VMM reads something else (ciphertext or the
    # discarded shared page), never the guest's data
    assert encrypted.seed.guest_read == PRIVATE_PAYLOAD
    assert PRIVATE_PAYLOAD not in st.host_read
    # a host read of the backing SPA gives ciphertext: neither the data nor zeros
    assert st.spa_read is not None
    assert not st.spa_read.startswith(PRIVATE_PAYLOAD[:16]) and st.spa_read != bytes(40)


def test_guest_is_suspended_across_the_userspace_exit():
    """The VMM observes KVM_EXIT_HYPERCALL while the guest's vmgexit_psc has not returned."""
    from snpsim.spec.kvm_uapi import KVM_EXIT_HYPERCALL
    from snpsim.trace.events import Leave
    from snpsim.trace.record import Recorder, tracing

    system = SnpSystem(memory=64 << 20)
    seen = []
    rec = Recorder()

    def on_exit(cpu, run):
        # boot's MSR-protocol PSCs exit too; look at the seed page's GHCB PSC
        if run.exit_reason == KVM_EXIT_HYPERCALL and out.gpa and run.hypercall.args[0] == out.gpa:
            enters = sum(1 for e in rec.events if isinstance(e, Enter) and e.name == "vmgexit_psc")
            leaves = sum(1 for e in rec.events if isinstance(e, Leave) and e.name == "vmgexit_psc")
            seen.append(enters - leaves)

    from snpsim.guest.seed import SeedOutcome, seed_workload

    out = SeedOutcome("set_memory_decrypted", 1)
    orig_build = system._build

    def build(workload, *rest):
        orig_build(workload, *rest)
        system.machine.on_exit.append(on_exit)

    system._build = build
    with tracing(rec):
        run = system.run(seed_workload("set_memory_decrypted", 1, out))
    assert run.completed
    assert seen == [1]


@pytest.mark.parametrize("pages", [1, 3])
def test_round_trip_several_pages(pages):
    res = SnpSystem(memory=64 << 20).trace_conversion("set_memory_encrypted", pages)
    assert res.completed, res.outcome
    assert res.seed.extra["pre_decrypt_ret"] == 0
