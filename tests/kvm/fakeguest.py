# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A tiny fake guest for host-side tests: page tables launched as pre-validated pages,
a GHCB it makes shared and registers through the MSR protocol, and helpers to issue
GHCB calls.  It runs in the guest context through the platform (tests may import hw).

GPA layout (identity GVA = GPA for the first 2 MiB, 4 KiB leaves):
  0x10000 PML4, 0x11000 PDPT, 0x12000 PD, 0x13000 PT, 0x14000 PT of the GVA window
  2..4 MiB (``EXTRA_GVA``, pages chosen by ``page_tables(extra=...)``)  (launched, private)
  0x20000 GHCB (C=0 in the PTE)          0x30000.. data pages (C=1, not launched)

Workaround: the platform does not yet copy the VMCB's ``ghcb_gpa`` (KVM's MSR-protocol
answer) back into the guest's GHCB MSR after VMRUN, so ``msr_call`` reads the answer from
``cpu.vmcb.ghcb_gpa`` and mirrors it into ``cpu.msr_ghcb``.
"""

from __future__ import annotations

from snpsim.hw.cpu import Platform
from snpsim.kvm.kvm_main import Kvm
from snpsim.spec import ghcb as G
from snpsim.spec.exit_codes import SVM_EXIT_IOIO
from snpsim.spec.kvm_uapi import KVM_SEV_SNP_PAGE_TYPE_NORMAL
from snpsim.spec.msr_index import MSR_AMD64_SEV_ES_GHCB
from snpsim.spec.msr_protocol import GHCB_MSR_PSC_REQ_GFN, GHCB_MSR_REG_GPA_REQ_VAL
from snpsim.spec.pgtable_types import _PAGE_PRESENT, _PAGE_RW
from snpsim.spec.psc import SNP_PAGE_STATE_SHARED
from snpsim.vmm.machine import Machine

CBIT = 51
C = 1 << CBIT
PML4 = 0x10000
GHCB_GPA = 0x20000
DATA_GPA = 0x30000
RAM = 16 << 20


#: GVA window 2..4 MiB: its PT (launched at 0x14000) maps pages given to ``page_tables``.
EXTRA_GVA = 0x200000


def page_tables(shared_gfns=(GHCB_GPA >> 12,), extra=()) -> list[tuple[int, bytes, int]]:
    """Launch regions: 4-level tables identity-mapping GVA 0..2 MiB with 4 KiB leaves, and
    GVA ``EXTRA_GVA + 4096 * i`` -> ``extra[i]`` (a GPA, C=1) for each GPA in ``extra``."""
    pml4 = bytearray(4096)
    pdpt = bytearray(4096)
    pd = bytearray(4096)
    pt = bytearray(4096)
    pt2 = bytearray(4096)
    pml4[0:8] = ((PML4 + 0x1000) | C | 3).to_bytes(8, "little")
    pdpt[0:8] = ((PML4 + 0x2000) | C | 3).to_bytes(8, "little")
    pd[0:8] = ((PML4 + 0x3000) | C | 3).to_bytes(8, "little")
    pd[8:16] = ((PML4 + 0x4000) | C | 3).to_bytes(8, "little")
    for i in range(1, 512):
        cbit = 0 if i in shared_gfns else C
        pt[i * 8 : i * 8 + 8] = ((i << 12) | cbit | _PAGE_PRESENT | _PAGE_RW).to_bytes(8, "little")
    for i, gpa in enumerate(extra):
        pt2[i * 8 : i * 8 + 8] = (gpa | C | _PAGE_PRESENT | _PAGE_RW).to_bytes(8, "little")
    return [(PML4 + 0x1000 * k, bytes(t), KVM_SEV_SNP_PAGE_TYPE_NORMAL)
            for k, t in enumerate((pml4, pdpt, pd, pt, pt2))]


def set_pte_c(cpu, gva: int, c: bool) -> None:
    """Guest: set or clear the C-bit of the 4 KiB PTE mapping ``gva`` (the identity map
    below 2 MiB or the ``EXTRA_GVA`` window), flush."""
    a = PML4 + (0x3000 if gva < EXTRA_GVA else 0x4000) + ((gva >> 12) & 511) * 8
    pte = cpu.read_u64(a)
    cpu.write_u64(a, (pte | C) if c else (pte & ~C))
    cpu.invlpg(gva)


def msr_call(cpu, value: int) -> int:
    """Guest: GHCB MSR protocol request; returns KVM's answer."""
    cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, value)
    cpu.vmgexit()
    cpu.msr_ghcb = cpu.vmcb.ghcb_gpa  # workaround (module docstring)
    return cpu.rdmsr(MSR_AMD64_SEV_ES_GHCB)


def setup_ghcb(cpu) -> None:
    """Guest: make the GHCB page shared (MSR PSC) and register it (MSR REG_GPA)."""
    cpu.write_cr3(PML4)
    msr_call(cpu, GHCB_MSR_PSC_REQ_GFN(GHCB_GPA >> 12, SNP_PAGE_STATE_SHARED))
    msr_call(cpu, GHCB_MSR_REG_GPA_REQ_VAL(GHCB_GPA >> 12))
    cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, GHCB_GPA)


def ghcb_call(cpu, exit_code: int, info1: int = 0, info2: int = 0, *, fields=None,
              shared_buf: bytes | None = None, valid=("sw_exit_code", "sw_exit_info_1",
                                                      "sw_exit_info_2")) -> bytearray:
    """Guest: fill the GHCB (fields + valid bits), VMGEXIT, return the GHCB page after."""
    buf = bytearray(4096)
    vals = {"sw_exit_code": exit_code, "sw_exit_info_1": info1, "sw_exit_info_2": info2}
    vals.update(fields or {})
    for name, v in vals.items():
        G.ghcb_set(buf, name, v, mark_valid=False)
    for name in list(valid) + [n for n in (fields or {}) if n not in ("protocol_version", "ghcb_usage")]:
        G.ghcb_set_valid(buf, name)
    if "protocol_version" not in (fields or {}):
        G.ghcb_set(buf, "protocol_version", 2)
    if shared_buf is not None:
        buf[0x800 : 0x800 + len(shared_buf)] = shared_buf
    cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, GHCB_GPA)
    cpu.write(GHCB_GPA, bytes(buf))
    cpu.vmgexit()
    return bytearray(cpu.read(GHCB_GPA, 4096))


def acpi_poweroff(cpu) -> None:
    """Guest: OUT 0x2000 (SLP_EN) to port 0x604 through the GHCB (IOIO NAE)."""
    info1 = (0x604 << 16) | (1 << 5)  # port, SZ16, OUT
    ghcb_call(cpu, SVM_EXIT_IOIO, info1, 0, fields={"rax": 0x2000})


def halt_forever(cpu) -> None:
    """Guest AP: ``for (;;) hlt();`` (an AP with nothing to do)."""
    while True:
        cpu.hlt()


def make(body, *, ram=RAM, kvm_profile="v7.0.12", qemu_profile="10.1", launch=None,
         vcpus=1, ap_body=halt_forever, seed=0, poweroff=True, extra_regions=()):
    """Platform + KVM + Machine with ``body(cpu)`` as the guest; returns (platform, kvm,
    machine).  The BSP (vCPU 0) sets up its GHCB, runs ``body`` and powers off (unless
    ``poweroff`` is False); other vCPUs run ``ap_body(cpu)``.  ``kvm_profile`` /
    ``qemu_profile``: a name or a profile object (e.g. an adversary variant);
    ``extra_regions``: :class:`snpsim.vmm.machine.RegionSpec` regions for the Machine."""
    platform = Platform(cbit=CBIT, seed=seed)
    kvm = Kvm(platform.host, kvm_profile)
    m = Machine(kvm, ram, vcpus, profile=qemu_profile, extra_regions=extra_regions)

    def entry(cpu):
        if cpu.vcpu_id != 0:
            ap_body(cpu)
            return
        setup_ghcb(cpu)
        body(cpu)
        if poweroff:
            acpi_poweroff(cpu)

    platform.install_guest_code(m.asid, entry)
    m.snp_launch(launch if launch is not None else page_tables())
    return platform, kvm, m
