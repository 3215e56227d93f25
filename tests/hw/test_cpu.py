# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The guest CPU driven from a bare host: page walk over page tables in guest memory, the
RMP access checks of APM table 15-39 (hardware-and-ghcb.md 1.4) with their fault codes,
PVALIDATE (hardware-and-ghcb.md 2), and the world switch (an #NPF exits to the host and
the access is retried after the host fixed the NPT)."""

from snpsim.hw.cpu import Platform
from snpsim.hw.faults import VmmCommunicationException
from snpsim.spec.exit_codes import SVM_EXIT_NPF, SVM_EXIT_VMGEXIT
from snpsim.spec.pgtable_types import _PAGE_PRESENT, _PAGE_RW
from snpsim.spec.rmp import RmpState

ASID = 1
CBIT = 51
C = 1 << CBIT
PT_GPA = 0x10000  # PML4 at 0x10000, PDPT 0x11000, PD 0x12000, PT 0x13000
DATA_GPA = 0x200000  # data page (4K-mapped through the PT)
GVA = 0x40000000 + DATA_GPA  # identity-ish: GVA = 1 GiB + GPA
SPA_BASE = 0x100000000  # guest RAM backed at SPA = 4 GiB + GPA


def spa(gpa):
    return SPA_BASE + gpa


def build(platform, *, data_validated=True, data_assigned=True, data_c=True):
    """Page tables mapping GVA 1 GiB + x -> GPA x for x < 4 MiB (4K leaves for the first
    2 MiB... here one PT covering 0x200000-0x3FFFFF)."""
    host = platform.host
    npt = host.npt_create()
    pages = {
        PT_GPA: {0: (PT_GPA + 0x1000) | C | 3},  # PML4[0] -> PDPT
        PT_GPA + 0x1000: {1: (PT_GPA + 0x2000) | C | 3},  # PDPT[1] (1 GiB) -> PD
        PT_GPA + 0x2000: {1: (PT_GPA + 0x3000) | C | 3},  # PD[1] (2 MiB) -> PT
        PT_GPA + 0x3000: {0: DATA_GPA | (C if data_c else 0) | _PAGE_PRESENT | _PAGE_RW},
    }
    for gpa, entries in pages.items():
        raw = bytearray(4096)
        for i, v in entries.items():
            raw[i * 8 : i * 8 + 8] = v.to_bytes(8, "little")
        platform.mem.write_enc(spa(gpa), bytes(raw), ASID)
        platform.rmp.rmpupdate(spa(gpa), RmpState(gpa, 1, 0, 0, 0, ASID))
        platform.rmp.set_validated(spa(gpa) >> 12, True)
        npt.map(gpa >> 12, spa(gpa) >> 12)
    if data_assigned:
        platform.rmp.rmpupdate(spa(DATA_GPA), RmpState(DATA_GPA, 1, 0, 0, 0, ASID))
        platform.rmp.set_validated(spa(DATA_GPA) >> 12, data_validated)
    return npt


def run_guest(platform, npt, body, on_exit=None, max_exits=20):
    results = {}

    def entry(cpu):
        cpu.write_cr3(PT_GPA)
        results["ret"] = body(cpu)
        cpu.vmgexit()

    platform.install_guest_code(ASID, entry)
    vmcb = platform.host.new_vmcb(0, ASID, npt)
    exits = []
    for _ in range(max_exits):
        ex = platform.host.vmrun(vmcb)
        exits.append((ex.exit_code, ex.exit_info_1, ex.exit_info_2))
        if ex.exit_code == SVM_EXIT_VMGEXIT:
            break
        if on_exit:
            on_exit(ex)
    return results, exits


def test_private_write_read_and_host_sees_ciphertext():
    p = Platform(mem_size=1 << 34, cbit=CBIT)
    npt = build(p)
    npt.map(DATA_GPA >> 12, spa(DATA_GPA) >> 12)
    res, exits = run_guest(p, npt, lambda cpu: (cpu.write(GVA, b"hello"), cpu.read(GVA, 5))[1])
    assert res["ret"] == b"hello"
    assert p.host.read(spa(DATA_GPA), 5) != b"hello"
    assert exits == [(SVM_EXIT_VMGEXIT, 0, 0)]


def test_npt_miss_exits_npf_and_is_retried():
    p = Platform(mem_size=1 << 34, cbit=CBIT)
    npt = build(p)

    def fix(ex):
        assert ex.exit_code == SVM_EXIT_NPF
        npt.map(ex.exit_info_2 >> 12, spa(ex.exit_info_2) >> 12)

    res, exits = run_guest(p, npt, lambda cpu: (cpu.write(GVA, b"x"), cpu.read(GVA, 1))[1], fix)
    assert res["ret"] == b"x"
    # not present + write + GUEST_FINAL (bit 32) + ENC (bit 34); no RMP bit
    assert exits[0] == (SVM_EXIT_NPF, (1 << 1) | (1 << 32) | (1 << 34), DATA_GPA)


def test_unvalidated_private_access_is_vc_0x404_with_cr2():
    p = Platform(mem_size=1 << 34, cbit=CBIT)
    npt = build(p, data_validated=False)
    npt.map(DATA_GPA >> 12, spa(DATA_GPA) >> 12)
    seen = []

    def body(cpu):
        def vc(cpu, fault):
            assert isinstance(fault, VmmCommunicationException)
            seen.append((fault.error_code, fault.cr2))
            cpu.pvalidate(GVA, 0, True)  # fix it, then the access is retried

        cpu.set_idt_handler(29, vc)
        return cpu.read(GVA + 8, 1)

    res, _ = run_guest(p, npt, body)
    assert seen == [(0x404, GVA + 8)]
    # the retried read completes: it returns the zeroed DRAM decrypted with the guest key
    assert res["ret"] == p.mem.engine.decrypt_page(ASID, spa(DATA_GPA), bytes(4096))[8:9]


def test_private_access_to_hypervisor_page_is_npf_with_rmp_bit():
    p = Platform(mem_size=1 << 34, cbit=CBIT)
    npt = build(p, data_assigned=False)
    npt.map(DATA_GPA >> 12, spa(DATA_GPA) >> 12)
    exits_seen = []

    def on_exit(ex):
        exits_seen.append(ex)
        # the host makes it private (as KVM's gmem prepare would) and the guest validates
        p.rmp.rmpupdate(spa(DATA_GPA), RmpState(DATA_GPA, 1, 0, 0, 0, ASID))
        p.rmp.set_validated(spa(DATA_GPA) >> 12, True)

    run_guest(p, npt, lambda cpu: cpu.read(GVA, 1), on_exit)
    # present, GUEST_FINAL, ENC, RMP (bit 31)
    assert exits_seen[0].exit_info_1 == 1 | (1 << 31) | (1 << 32) | (1 << 34)


def test_shared_write_to_assigned_page_is_npf_and_shared_read_is_unchecked():
    p = Platform(mem_size=1 << 34, cbit=CBIT)
    npt = build(p, data_c=False)
    npt.map(DATA_GPA >> 12, spa(DATA_GPA) >> 12)
    p.mem.write_enc(spa(DATA_GPA), b"secret", ASID)
    seen = []

    def on_exit(ex):
        seen.append(ex.exit_info_1)
        p.rmp.rmpupdate(spa(DATA_GPA), RmpState(0, 0, 0, 0, 0, 0))  # host makes it shared

    res, _ = run_guest(p, npt, lambda cpu: (cpu.read(GVA, 6), cpu.write(GVA, b"x"))[0], on_exit)
    assert res["ret"] != b"secret"  # C=0 read of a private page: ciphertext, no fault
    assert seen == [1 | 2 | (1 << 31) | (1 << 32)]  # present, write, RMP, FINAL; no ENC


def test_pvalidate_codes():
    p = Platform(mem_size=1 << 34, cbit=CBIT)
    npt = build(p, data_validated=False)
    npt.map(DATA_GPA >> 12, spa(DATA_GPA) >> 12)

    def body(cpu):
        return [
            cpu.pvalidate(GVA, 0, True),  # (0, 0) changed
            cpu.pvalidate(GVA, 0, True),  # (0, 1) CF: already validated
            cpu.pvalidate(GVA + 0x1000, 1, True),  # 2M on a non-2M-aligned GVA: FAIL_INPUT
            cpu.pvalidate(GVA, 1, True),  # 2M on a 4K RMP entry: FAIL_SIZEMISMATCH
            cpu.pvalidate(GVA, 0, False),  # rescind: (0, 0)
        ]

    res, _ = run_guest(p, npt, body)
    assert res["ret"] == [(0, 0), (0, 1), (1, 0), (6, 0), (0, 0)]


def test_pvalidate_4k_on_2m_rmp_entry_is_npf_sizem():
    p = Platform(mem_size=1 << 34, cbit=CBIT)
    npt = build(p, data_assigned=False)
    npt.map(DATA_GPA >> 12, spa(DATA_GPA) >> 12)
    p.rmp.rmpupdate(spa(DATA_GPA), RmpState(DATA_GPA, 1, 1, 0, 0, ASID))  # 2M entry
    seen = []

    def on_exit(ex):
        seen.append(ex.exit_info_1)
        assert p.rmp.psmash(spa(DATA_GPA)) == 0  # what KVM's sev_handle_rmp_fault does

    res, _ = run_guest(p, npt, lambda cpu: cpu.pvalidate(GVA, 0, True), on_exit)
    assert seen == [1 | (1 << 31) | (1 << 32) | (1 << 34) | (1 << 35)]
    assert res["ret"] == (0, 0)
