# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A miniature SNP machine for trace tests: guest and host as greenlets.

It mimics the real control flow of ARCHITECTURE.md with the real ``traced`` decorator:
the VMM's ``kvm_cpu_exec`` calls ``KVM_RUN``, whose ``VMRUN`` switches into the guest
context ``vcpu0``; the guest's ``set_memory_decrypted`` takes an #NPF in PVALIDATE
(handled in KVM, then retried), does a PSC by VMGEXIT (KVM begins it, exits to the VMM
with KVM_EXIT_HYPERCALL, the VMM converts the memory and calls KVM_RUN again, which
completes the PSC and resumes the guest), then a KVM_HC_MAP_GPA_RANGE by VMMCALL.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import greenlet
import pytest

from snpsim.trace import (
    Recorder,
    emit_instant,
    emit_switch,
    set_context_resolver,
    set_tracer,
    traced,
    tracing,
)

PAGE_OFFSET = 0xFFFF888000000000
SVM_VMGEXIT_PSC = 0x80000010
KVM_HC_MAP_GPA_RANGE = 12
KVM_EXIT_HYPERCALL = 2


class KvmVcpu:
    """A big context object: ``traced`` leaves it out of the recorded arguments."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: str | None = None


class World:
    """Execution contexts and the world switch (what ``hw/world.py`` will do)."""

    def __init__(self) -> None:
        self.current = "host0"
        self.host = greenlet.getcurrent()
        self.guests: dict[str, greenlet.greenlet] = {}
        self.mapped: set[int] = set()

    def ctx(self) -> str:
        return self.current

    def exit_to_host(self, reason: str, payload: object) -> object:
        src = self.current
        emit_switch(src, "host0", reason)
        self.current = "host0"
        return self.host.switch((reason, payload))

    def enter_guest(self, vcpu: str, value: object) -> object:
        emit_switch(self.current, vcpu, "VMRUN")
        self.current = vcpu
        return self.guests[vcpu].switch(value)


WORLD = World()

# ---- guest kernel (runs in vcpu0) ------------------------------------------------------


@traced("guest")
def set_memory_decrypted(addr: int, numpages: int) -> int:
    return __set_memory_enc_dec(addr, numpages, False)


@traced("guest")
def __set_memory_enc_dec(addr: int, numpages: int, enc: bool) -> int:
    gpa = addr - PAGE_OFFSET
    PVALIDATE(gpa, False)
    vmgexit_psc(gpa, numpages)
    enc_dec_hypercall(gpa, numpages, enc)
    return 0


@traced("guest")
def vmgexit_psc(gpa: int, npages: int) -> int:
    return sev_es_ghcb_hv_call(SVM_VMGEXIT_PSC)


@traced("guest")
def sev_es_ghcb_hv_call(exit_code: int) -> int:
    return VMGEXIT(exit_code)


@traced("guest")
def enc_dec_hypercall(gpa: int, npages: int, enc: bool) -> int:
    return VMMCALL(KVM_HC_MAP_GPA_RANGE, gpa, npages)


@traced("cpu")
def PVALIDATE(gpa: int, validate: bool) -> tuple[int, bool]:
    while gpa not in WORLD.mapped:  # #NPF: exit, then retry the instruction
        WORLD.exit_to_host("NPF", gpa)
    return (0, False)


@traced("cpu")
def VMGEXIT(exit_code: int) -> int:
    return WORLD.exit_to_host("VMGEXIT", exit_code)  # type: ignore[return-value]


@traced("cpu")
def VMMCALL(nr: int, gpa: int, npages: int) -> int:
    return WORLD.exit_to_host("VMMCALL", (nr, gpa, npages))  # type: ignore[return-value]


def guest_main(*_: object) -> tuple[str, int]:
    rc = set_memory_decrypted(PAGE_OFFSET + 0x100000, 1)
    emit_switch("vcpu0", "host0", "HLT")
    WORLD.current = "host0"
    return ("HLT", rc)  # the greenlet ends: back in the host's VMRUN


# ---- KVM (host0) --------------------------------------------------------------------


@traced("kvm")
def KVM_RUN(vcpu: KvmVcpu) -> int:
    if vcpu.pending == "psc":
        snp_complete_one_psc(vcpu)
    elif vcpu.pending == "hc":
        complete_hypercall_exit(vcpu)
    vcpu.pending = None
    while True:
        reason, payload = VMRUN(vcpu)  # type: ignore[misc]
        if reason == "HLT":
            return 0
        if reason == "NPF":
            kvm_mmu_page_fault(vcpu, payload)  # type: ignore[arg-type]
            continue
        if reason == "VMGEXIT":
            sev_handle_vmgexit(vcpu, payload)  # type: ignore[arg-type]
            vcpu.pending = "psc"
            return KVM_EXIT_HYPERCALL
        if reason == "VMMCALL":
            kvm_emulate_hypercall(vcpu, *payload)  # type: ignore[misc]
            vcpu.pending = "hc"
            return KVM_EXIT_HYPERCALL


@traced("cpu")
def VMRUN(vcpu: KvmVcpu) -> object:
    return WORLD.enter_guest("vcpu0", 0)


@traced("kvm")
def kvm_mmu_page_fault(vcpu: KvmVcpu, gpa: int) -> int:
    WORLD.mapped.add(gpa)
    return 0


@traced("kvm")
def sev_handle_vmgexit(vcpu: KvmVcpu, exit_code: int) -> int:
    snp_begin_psc(vcpu, 0x100000, 1)
    return 0


@traced("kvm")
def snp_begin_psc(vcpu: KvmVcpu, gpa: int, npages: int) -> int:
    return 0


@traced("kvm")
def snp_complete_one_psc(vcpu: KvmVcpu) -> int:
    return 1


@traced("kvm")
def kvm_emulate_hypercall(vcpu: KvmVcpu, nr: int, gpa: int, npages: int) -> int:
    return 0


@traced("kvm")
def complete_hypercall_exit(vcpu: KvmVcpu) -> int:
    return 1


@traced("kvm")
def KVM_SET_MEMORY_ATTRIBUTES(address: int, size: int, attributes: int) -> int:
    return 0


# ---- VMM (host0) --------------------------------------------------------------------


@traced("vmm")
def kvm_convert_memory(start: int, size: int, to_private: bool) -> int:
    return KVM_SET_MEMORY_ATTRIBUTES(start, size, 8 if to_private else 0)


@traced("vmm")
def kvm_cpu_exec(cpu: KvmVcpu) -> int:
    while True:
        reason = KVM_RUN(cpu)
        if reason == 0:
            return 0
        emit_instant("vmm", "KVM_EXIT_HYPERCALL", nr=KVM_HC_MAP_GPA_RANGE, gpa=0x100000)
        kvm_convert_memory(0x100000, 0x1000, False)


def step_clock(step: int = 1000) -> Iterator[int]:
    return itertools.count(0, step)


def run_machine(recorder: Recorder | None = None) -> Recorder:
    """Run the whole flow once under ``recorder`` (a fresh one by default)."""
    global WORLD
    WORLD = World()
    WORLD.guests["vcpu0"] = greenlet.greenlet(guest_main)
    rec = recorder if recorder is not None else Recorder()
    ticks = step_clock()
    previous = set_context_resolver(WORLD.ctx)
    try:
        with tracing(rec, clock=lambda: next(ticks)):
            assert kvm_cpu_exec(KvmVcpu("vcpu0")) == 0
    finally:
        set_context_resolver(previous)
    return rec


@pytest.fixture
def machine():
    """``run_machine`` itself, for tests that pass their own recorder."""
    return run_machine


@pytest.fixture
def machine_events():
    """The events of one run of the miniature machine."""
    return run_machine().events


@pytest.fixture(autouse=True)
def _tracing_off():
    """Every test starts and ends with tracing off and the default context resolver."""
    set_tracer(None)
    set_context_resolver(None)
    yield
    set_tracer(None)
    set_context_resolver(None)
