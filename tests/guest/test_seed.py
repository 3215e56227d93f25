# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 3 item 3: one page private -> shared -> private through the guest, against the
fake host.  Orders from linux-guest.md 2.2 / 3 / 11 (checklist item 1); values from
hardware-and-ghcb.md 5 and linux-guest.md 1.4, 9."""

from guest_fakehost import SPA_BASE, FakeHost

from snpsim.guest.kernel import GuestConfig, __va
from snpsim.guest.set_memory import lookup_address, set_memory_decrypted, set_memory_encrypted
from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC
from snpsim.spec.kvm_uapi import KVM_HC_MAP_GPA_RANGE
from snpsim.trace.events import Enter
from snpsim.trace.record import Recorder, tracing

DECRYPT_ORDER = [
    "set_memory_decrypted", "__set_memory_enc_dec", "__set_memory_enc_pgtable", "cpa_flush",
    "amd_enc_status_change_prepare", "snp_set_memory_shared", "set_pages_state",
    "__set_pages_state", "pvalidate_pages", "pvalidate", "__sev_get_ghcb", "vmgexit_psc",
    "sev_es_ghcb_hv_call", "VMGEXIT", "verify_exception_info", "__sev_put_ghcb",
    "__change_page_attr_set_clr", "cpa_flush", "amd_enc_status_change_finish",
    "enc_dec_hypercall", "kvm_sev_hc_page_enc_status", "kvm_sev_hypercall3",
]
ENCRYPT_ORDER = [
    "set_memory_encrypted", "__set_memory_enc_dec", "__set_memory_enc_pgtable", "cpa_flush",
    "amd_enc_status_change_prepare", "__change_page_attr_set_clr", "cpa_flush",
    "amd_enc_status_change_finish", "snp_set_memory_private", "set_pages_state",
    "__set_pages_state", "__sev_get_ghcb", "vmgexit_psc", "sev_es_ghcb_hv_call", "VMGEXIT",
    "verify_exception_info", "__sev_put_ghcb", "pvalidate_pages", "pvalidate",
    "sev_evict_cache", "enc_dec_hypercall", "kvm_sev_hc_page_enc_status",
    "kvm_sev_hypercall3",
]


def subsequence(names, want):
    it = iter(names)
    return all(any(n == w for n in it) for w in want)


def names_between(events, first):
    out, on = [], False
    for e in events:
        if isinstance(e, Enter):
            if e.name == first and e.party == "guest":
                on = True
            if on:
                out.append(e.name)
    return out


def seed_workload(state):
    def wl(kernel, cpu):
        gpa = kernel.page_alloc.alloc_page()
        va = __va(kernel, gpa)
        state["gpa"], state["va"] = gpa, va
        state["dec"] = set_memory_decrypted(kernel, va, 1)
        kpte, level = lookup_address(kernel, va)
        state["pte_dec"], state["level"] = cpu.read_u64(kpte), level
        cpu.write(va, b"shared data")
        state["rmp_dec"] = kernel  # placeholder, host checks below
        state["enc"] = set_memory_encrypted(kernel, va, 1)
        state["pte_enc"] = cpu.read_u64(kpte)
        cpu.write(va, b"private data")
        state["read_back"] = cpu.read(va, 12)
    return wl


def test_decrypt_then_encrypt_one_page():
    state = {}
    h = FakeHost(GuestConfig(), workload=None)
    h.kernel.workload = seed_workload(state)
    rec = Recorder()
    with tracing(rec):
        assert h.run() == "poweroff"
    k = h.kernel
    assert k.terminated is None, k.warnings
    assert state["dec"] == 0 and state["enc"] == 0
    gpa = state["gpa"]
    # PTE: 4 KiB leaf after the split; C-bit (51) clear after decrypt, set after encrypt
    assert state["level"] == 1
    assert not state["pte_dec"] >> 51 & 1
    assert state["pte_enc"] >> 51 & 1
    # the two PSC calls for this page: one 4K shared entry then one 4K private entry
    mine = [c for c in h.psc_calls if c.desc.entries and c.desc.entries[0].gfn == gpa >> 12]
    assert [(c.desc.hdr.cur_entry, c.desc.hdr.end_entry) for c in mine] == [(0, 0), (0, 0)]
    assert [(e.operation, e.pagesize, e.cur_page) for c in mine for e in c.desc.entries[:1]] == [(2, 0, 0), (1, 0, 0)]
    assert all(c.scratch == 0x800 for c in mine)
    # the descriptor is the 64-entry struct: 8 + 64*8 bytes copied, rest of buffer zero
    assert len(mine[0].desc.entries) == (0xFF0 - 0x800 - 8) // 8
    # KVM_HC_MAP_GPA_RANGE by VMMCALL: decrypted (0x00) then encrypted (0x10), 1 page, 4K
    hcs = [hc for hc in h.hypercalls if hc[1] == gpa]
    assert hcs == [(KVM_HC_MAP_GPA_RANGE, gpa, 1, 0x00), (KVM_HC_MAP_GPA_RANGE, gpa, 1, 0x10)]
    # RMP after encrypt: assigned to the guest at that GPA, validated
    e = h.p.rmp.lookup((SPA_BASE + gpa) >> 12)
    assert e.assigned and e.asid == 1 and e.gpa == gpa and e.validated and e.pagesize == 0
    # host reads ciphertext, guest reads its data
    assert state["read_back"] == b"private data"
    assert h.p.mem.read_raw(SPA_BASE + gpa, 12) != b"private data"
    # orders
    ev = rec.events
    dec = names_between(ev, "set_memory_decrypted")
    enc_start = dec.index("set_memory_encrypted")
    assert subsequence(dec[:enc_start], DECRYPT_ORDER), dec[:enc_start]
    assert subsequence(dec[enc_start:], ENCRYPT_ORDER), dec[enc_start:]
    # decrypt: PSC strictly before the PTE change; encrypt: PTE change before PSC
    d = dec[:enc_start]
    assert d.index("vmgexit_psc") < d.index("__change_page_attr_set_clr")
    assert d.index("pvalidate") < d.index("vmgexit_psc")
    en = dec[enc_start:]
    assert en.index("__change_page_attr_set_clr") < en.index("vmgexit_psc") < en.index("pvalidate")


def test_shared_data_visible_to_host():
    state = {}

    def wl(kernel, cpu):
        gpa = kernel.page_alloc.alloc_page()
        va = __va(kernel, gpa)
        state["gpa"] = gpa
        set_memory_decrypted(kernel, va, 1)
        cpu.write(va, b"hello host")

    h = FakeHost(GuestConfig(), workload=wl)
    assert h.run() == "poweroff"
    gpa = state["gpa"]
    assert h.p.mem.read_raw(SPA_BASE + gpa, 10) == b"hello host"
    assert not h.p.rmp.lookup((SPA_BASE + gpa) >> 12).assigned
    assert any(c.desc.entries[0].operation == 2 for c in h.psc_calls)
    assert SVM_VMGEXIT_PSC == 0x80000010
