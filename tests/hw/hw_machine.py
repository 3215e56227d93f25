# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A bare machine for tests/hw: one guest (ASID 1) whose 4-level page tables live in its
own private memory, with the platform driven directly from the host side.

Layout (GPA -> SPA = 4 GiB + GPA; GVA = 1 GiB + GPA):

* page tables at GPA 0x10000 (PML4), 0x11000 (PDPT), 0x12000 (PD), 0x13000 (PT),
  assigned to the guest, validated, all permissions at every VMPL, mapped 4K in the NPT
  (``tables_private=False``: encrypted but hypervisor-owned in the RMP, as for a SEV
  guest that is not SNP-active);
* the PT maps GVA 1 GiB + 2 MiB + i*4K for i < 512; by default to GPA 2 MiB + i*4K with
  C=1 (``ptes`` overrides entries: index -> (gpa, c_bit, nx));
* the data range GPA 2 MiB .. 4 MiB is mapped 4K in the NPT unless ``npt_data`` is
  ``None`` (not mapped) or ``"2M"`` (one 2 MiB leaf); its RMP entries are left to the test.
"""

from __future__ import annotations

from snpsim.hw.cpu import Platform
from snpsim.hw.faults import HardwareFault
from snpsim.spec.exit_codes import SVM_EXIT_SHUTDOWN, SVM_EXIT_VMGEXIT
from snpsim.spec.pgtable_types import _PAGE_NX, _PAGE_PRESENT, _PAGE_RW, PG_LEVEL_2M
from snpsim.spec.rmp import RMP_PERM_ALL, RmpState

ASID = 1
CBIT = 51
C = 1 << CBIT
PT_GPA = 0x10000
PTE_PAGE_GPA = PT_GPA + 0x3000  # the last-level table
DATA_GPA = 0x200000
GVA_BASE = 0x40000000
SPA_BASE = 1 << 32
P = 1 << 0
W = 1 << 1
U = 1 << 2
F = 1 << 4
RMP = 1 << 31
FINAL = 1 << 32
PAGE = 1 << 33
ENC = 1 << 34
SIZEM = 1 << 35
VMPL = 1 << 36


def spa(gpa: int) -> int:
    return SPA_BASE + gpa


def gva(gpa: int) -> int:
    return GVA_BASE + gpa


GVA = gva(DATA_GPA)


def platform(**kw) -> Platform:
    return Platform(mem_size=1 << 34, cbit=CBIT, **kw)


def assign(p: Platform, gpa: int, *, validated: bool = True, size: int = 0, asid: int = ASID,
           immutable: int = 0, rmp_gpa: int | None = None) -> None:
    """Make the page (or 2 MiB range) at ``gpa`` private in the RMP, as KVM would."""
    code = p.rmp.rmpupdate(spa(gpa), RmpState(gpa if rmp_gpa is None else rmp_gpa, 1, size,
                                              immutable, 0, asid))
    assert code == 0
    if validated:
        p.rmp.set_validated(spa(gpa) >> 12, True)


def build(p: Platform, *, ptes: dict | None = None, npt_data: str | None = "4K",
          tables_private: bool = True):
    """Write the page tables; return the NPT."""
    npt = p.host.npt_create()
    leaf = {i: (DATA_GPA + i * 0x1000, True, False) for i in range(512)}
    leaf.update(ptes or {})
    pages = {
        PT_GPA: {0: (PT_GPA + 0x1000) | C | 3},
        PT_GPA + 0x1000: {1: (PT_GPA + 0x2000) | C | 3},
        PT_GPA + 0x2000: {1: PTE_PAGE_GPA | C | 3},
        PTE_PAGE_GPA: {i: g | (C if c else 0) | (_PAGE_NX if nx else 0) | _PAGE_PRESENT | _PAGE_RW
                       for i, (g, c, nx) in leaf.items()},
    }
    for gpa, entries in pages.items():
        raw = bytearray(4096)
        for i, v in entries.items():
            raw[i * 8 : i * 8 + 8] = v.to_bytes(8, "little")
        p.mem.write_enc(spa(gpa), bytes(raw), ASID)
        if tables_private:
            assign(p, gpa)
            for vmpl in (1, 2, 3):  # the tables are usable at every VMPL
                p.rmp.set_perms(spa(gpa) >> 12, vmpl, int(RMP_PERM_ALL))
        npt.map(gpa >> 12, spa(gpa) >> 12)
    if npt_data == "4K":
        for i in range(512):
            npt.map((DATA_GPA >> 12) + i, (spa(DATA_GPA) >> 12) + i)
    elif npt_data == "2M":
        npt.map(DATA_GPA >> 12, spa(DATA_GPA) >> 12, PG_LEVEL_2M)
    return npt


class Stop(Exception):
    """Raised by a recording IDT handler to abandon the guest body."""


def run(p: Platform, npt, body, *, on_exit=None, vmpl: int = 0, cpl: int = 0,
        max_exits: int = 20, snp_active: bool = True, vectors=(13, 14, 29)):
    """Run ``body(cpu)`` in the guest.  Returns (ret, exits, faults): ``exits`` the host-side
    (exit_code, info1, info2) list (the loop stops at VMGEXIT, SHUTDOWN or ``max_exits``);
    ``faults`` the guest-delivered faults (the first one abandons the body)."""
    out: dict = {}
    faults: list[HardwareFault] = []

    def record(cpu, fault):
        faults.append(fault)
        raise Stop

    def entry(cpu):
        cpu.vmpl, cpu.cpl = vmpl, cpl
        cpu.write_cr3(PT_GPA)
        for v in vectors:
            cpu.set_idt_handler(v, record)
        try:
            out["ret"] = body(cpu)
        except Stop:
            pass
        cpu.vmgexit()

    p.install_guest_code(ASID, entry)
    vmcb = p.host.new_vmcb(0, ASID, npt)
    vmcb.snp_active = snp_active
    exits = []
    for _ in range(max_exits):
        ex = p.host.vmrun(vmcb)
        exits.append((ex.exit_code, ex.exit_info_1, ex.exit_info_2))
        if ex.exit_code in (SVM_EXIT_VMGEXIT, SVM_EXIT_SHUTDOWN):
            break
        if on_exit:
            on_exit(ex)
    return out.get("ret"), exits, faults
