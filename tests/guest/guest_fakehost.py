# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A small fake host for guest unit tests: a Platform, an NPT filled on #NPF, an SNP
launch of the guest's image through the firmware, and a VMRUN loop that answers the GHCB
MSR protocol and GHCB NAE events (PSC, VMMCALL, IOIO) by reading and writing the GHCB bytes
with spec/ghcb.py and spec/psc.py.  Misbehaviour is selected with attributes."""

from __future__ import annotations

from dataclasses import dataclass, field

from snpsim.guest.boot import build_launch_image, guest_entry, make_guest_kernel
from snpsim.guest.kernel import GuestConfig
from snpsim.hw.cpu import Platform
from snpsim.spec.exit_codes import (
    SVM_EXIT_HLT,
    SVM_EXIT_IOIO,
    SVM_EXIT_NPF,
    SVM_EXIT_SHUTDOWN,
    SVM_EXIT_VMGEXIT,
    SVM_EXIT_VMMCALL,
    SVM_VMGEXIT_AP_CREATION,
    SVM_VMGEXIT_AP_DESTROY,
    SVM_VMGEXIT_PSC,
)
from snpsim.spec.faults import PFERR_GUEST_ENC_MASK
from snpsim.spec.ghcb import GHCB_SIZE, ghcb_get, ghcb_set
from snpsim.spec.msr_index import (
    MSR_AMD64_SEV_ENABLED,
    MSR_AMD64_SEV_ES_ENABLED,
    MSR_AMD64_SEV_SNP_ENABLED,
)
from snpsim.spec.msr_protocol import (
    GHCB_HV_FT_SUPPORTED,
    GHCB_MSR_AP_RESET_HOLD_REQ,
    GHCB_MSR_HV_FT_REQ,
    GHCB_MSR_HV_FT_RESP,
    GHCB_MSR_PSC_REQ,
    GHCB_MSR_PSC_REQ_TO_GFN,
    GHCB_MSR_PSC_REQ_TO_OP,
    GHCB_MSR_PSC_RESP,
    GHCB_MSR_REG_GPA_REQ,
    GHCB_MSR_REG_GPA_RESP,
    GHCB_MSR_SEV_INFO,
    GHCB_MSR_SEV_INFO_REQ,
    GHCB_MSR_TERM_REQ,
    ghcb_msr_response,
)
from snpsim.spec.psc import SNP_PAGE_STATE_SHARED, PscEntry, PscHdr, SnpPscDesc
from snpsim.spec.rmp import RmpState
from snpsim.trace.progress import Livelock

ASID = 1
SPA_BASE = 1 << 32  # guest RAM at SPA = 4 GiB + GPA (2 MiB aligned)
SEV_STATUS = int(MSR_AMD64_SEV_ENABLED | MSR_AMD64_SEV_ES_ENABLED | MSR_AMD64_SEV_SNP_ENABLED)


@dataclass
class PscCall:
    """One PSC VMGEXIT as the host saw it (the descriptor before processing)."""

    desc: SnpPscDesc
    ghcb_gpa: int
    scratch: int


@dataclass
class FakeHost:
    config: GuestConfig = field(default_factory=GuestConfig)
    workload: object = None
    # misbehaviour knobs
    psc_mode: str = "ok"  # ok, info1, info2, reserved, end_grow, cur_back, stall, partial
    msr_override: dict[int, int] = field(default_factory=dict)
    hv_features: int = int(GHCB_HV_FT_SUPPORTED)
    sev_info: tuple[int, int] = (2, 1)
    livelock_repeats: int = 64
    #: Answer every AP creation with GHCB_ERR_INVALID_INPUT (info1 2, info2 5), as KVM
    #: does for a request it refuses.
    ap_refuse: bool = False

    def __post_init__(self) -> None:
        cfg = self.config
        self.p = Platform(mem_size=SPA_BASE + cfg.ram_size + (1 << 21), cbit=cfg.cbit,
                          livelock_repeats=self.livelock_repeats)
        self.livelock: Livelock | None = None
        self.image = build_launch_image(cfg)
        self.kernel = make_guest_kernel(cfg, self.image.boot, self.workload)  # type: ignore[arg-type]
        self.npt = self.p.host.npt_create()
        self._launch()
        self.p.install_guest_code(ASID, guest_entry(self.kernel))
        self.vmcbs = [self.p.host.new_vmcb(i, ASID, self.npt, sev_status=SEV_STATUS)
                      for i in range(cfg.nr_cpus)]
        self.psc_calls: list[PscCall] = []
        self.msr_log: list[int] = []
        self.hypercalls: list[tuple[int, int, int, int]] = []
        self.ioio: list[tuple[int, int]] = []
        self.registered: list[int] = []
        self.term: tuple[int, int] | None = None
        self.outcome = ""
        self.exits = 0
        #: vCPUs the fake host runs (SmpFakeHost); an AP reset hold leaves it, an AP
        #: creation for it puts it back.
        self.live: set[int] = set(range(cfg.nr_cpus))
        self.ap_creations: list[tuple[int, int, int]] = []

    # -- launch --------------------------------------------------------------------
    def _launch(self) -> None:
        fw = self.p.firmware
        g = fw.snp_launch_start(ASID)
        for gpa, data, ptype in self.image.records:
            spa = SPA_BASE + gpa
            self.p.mem.write_raw(spa, data)
            assert self.p.rmp.rmpupdate(spa, RmpState(gpa, 1, 0, 1, 0, ASID)) == 0
            assert fw.snp_launch_update(g, spa, gpa, ptype) == 0
            self.npt.map(gpa >> 12, spa >> 12)
        fw.snp_launch_finish(g)

    def make_private_2m(self, gpa: int, size: int) -> None:
        """Test set-up: [gpa, gpa+size) private, validated, 2M RMP entries, 2M NPT."""
        for a in range(gpa, gpa + size, 1 << 21):
            spa = SPA_BASE + a
            assert self.p.rmp.rmpupdate(spa, RmpState(a, 1, 1, 0, 0, ASID)) == 0
            self.p.rmp.set_validated(spa >> 12, True)
            self.npt.map(a >> 12, spa >> 12, level=2)
        u = self.kernel.unaccepted
        for a in range(gpa, gpa + size, 1 << 21):
            u.clear(a >> 21)

    def make_private_4k(self, gpa: int, npages: int) -> None:
        """Test set-up: 4K private validated pages (already accepted)."""
        for i in range(npages):
            a = gpa + i * 4096
            spa = SPA_BASE + a
            head = self.p.rmp.head_2m(spa >> 12)
            if head is not None:
                self.p.rmp.psmash(spa & ~((1 << 21) - 1))
            assert self.p.rmp.rmpupdate(spa, RmpState(a, 1, 0, 0, 0, ASID)) == 0
            self.p.rmp.set_validated(spa >> 12, True)
            self.npt.map(a >> 12, spa >> 12)
            if self.kernel.unaccepted is not None:
                self.kernel.unaccepted.clear(a >> 21)

    # -- RMP actions (what KVM + guest_memfd would do) --------------------------------
    def _to_shared(self, gfn: int) -> None:
        spa = SPA_BASE + (gfn << 12)
        rmp = self.p.rmp
        if rmp.head_2m(spa >> 12) is not None:
            rmp.psmash(spa & ~((1 << 21) - 1))
        rmp.rmpupdate(spa, RmpState())
        self.npt.map(gfn, spa >> 12)

    def _to_shared_2m(self, gfn: int) -> None:
        spa = SPA_BASE + (gfn << 12)
        rmp = self.p.rmp
        if rmp.head_2m(spa >> 12) is not None:
            assert rmp.rmpupdate(spa, RmpState(pagesize=1)) == 0  # the whole 2M entry
        else:
            for i in range(512):
                rmp.rmpupdate(spa + i * 4096, RmpState())

    # -- the run loop ------------------------------------------------------------------
    def run(self, max_exits: int = 200000, vcpu: int = 0) -> str:
        vmcb = self.vmcbs[vcpu]
        host = self.p.host
        while self.exits < max_exits:
            try:
                ex = host.vmrun(vmcb)
            except Livelock as e:
                self.livelock = e
                self.outcome = "livelock"
                return self.outcome
            self.exits += 1
            code = ex.exit_code
            if code == SVM_EXIT_NPF:
                self._npf(ex.exit_info_1, ex.exit_info_2)
            elif code == SVM_EXIT_VMGEXIT:
                if self._vmgexit(vmcb):
                    return self.outcome
            elif code == SVM_EXIT_HLT:
                if self.kernel.powered_off or self.term:
                    self.outcome = self.outcome or "hlt"
                    return self.outcome
            elif code == SVM_EXIT_SHUTDOWN:
                self.outcome = "shutdown"
                return self.outcome
        self.outcome = "max_exits"
        return self.outcome

    def _npf(self, err: int, gpa: int) -> None:
        gfn = gpa >> 12
        spa = SPA_BASE + (gfn << 12)
        rmp = self.p.rmp
        if err & PFERR_GUEST_ENC_MASK and not rmp.lookup(spa >> 12).assigned:
            assert rmp.rmpupdate(spa, RmpState(gfn << 12, 1, 0, 0, 0, ASID)) == 0
        self.npt.map(gfn, spa >> 12)

    def _answer_msr(self, vmcb, val: int) -> None:
        vmcb.ghcb_gpa = val
        vmcb.cpu.msr_ghcb = val

    def _vmgexit(self, vmcb) -> bool:
        msr = vmcb.ghcb_gpa
        info = msr & 0xFFF
        if info:
            self.msr_log.append(msr)
            if info in self.msr_override:
                self._answer_msr(vmcb, self.msr_override[info])
                return False
            if info == GHCB_MSR_SEV_INFO_REQ:
                self._answer_msr(vmcb, GHCB_MSR_SEV_INFO(self.sev_info[0], self.sev_info[1], self.config.cbit))
            elif info == GHCB_MSR_HV_FT_REQ:
                self._answer_msr(vmcb, ghcb_msr_response(GHCB_MSR_HV_FT_RESP, self.hv_features))
            elif info == GHCB_MSR_REG_GPA_REQ:
                gfn = msr >> 12
                self.registered.append(gfn << 12)
                self._answer_msr(vmcb, ghcb_msr_response(GHCB_MSR_REG_GPA_RESP, gfn))
            elif info == GHCB_MSR_PSC_REQ:
                gfn, op = GHCB_MSR_PSC_REQ_TO_GFN(msr), GHCB_MSR_PSC_REQ_TO_OP(msr)
                if op == SNP_PAGE_STATE_SHARED:
                    self._to_shared(gfn)
                self._answer_msr(vmcb, ghcb_msr_response(GHCB_MSR_PSC_RESP, 0))
            elif info == GHCB_MSR_AP_RESET_HOLD_REQ:
                self.live.discard(vmcb.vcpu_id)  # parked until an AP creation
            elif info == GHCB_MSR_TERM_REQ:
                self.term = ((msr >> 12) & 0xF, (msr >> 16) & 0xFF)
                self.outcome = "terminated"
                return True
            return False
        return self._ghcb(msr)

    def _ghcb_rw(self, gpa: int) -> tuple[int, bytearray]:
        ent = self.npt.lookup(gpa >> 12)
        spa = ent.pfn << 12
        return spa, bytearray(self.p.host.read(spa, GHCB_SIZE))

    def _ghcb(self, gpa: int) -> bool:
        spa, buf = self._ghcb_rw(gpa)
        code = ghcb_get(buf, "sw_exit_code")
        info1_in = ghcb_get(buf, "sw_exit_info_1")
        info2_in = ghcb_get(buf, "sw_exit_info_2")
        ghcb_set(buf, "sw_exit_info_1", 0)
        ghcb_set(buf, "sw_exit_info_2", 0)
        done = False
        if code == SVM_VMGEXIT_PSC:
            self._psc(gpa, buf)
        elif code == SVM_EXIT_VMMCALL:
            self.hypercalls.append(tuple(ghcb_get(buf, r) for r in ("rax", "rbx", "rcx", "rdx")))
            ghcb_set(buf, "rax", 0)
        elif code == SVM_VMGEXIT_AP_CREATION:
            # A host that accepts every AP creation and destroy: the target runs on the
            # named VMSA page from its next VMRUN (or stops, for a destroy).
            request, apic = info1_in & 0xFFFFFFFF, info1_in >> 32
            vmsa_gpa = info2_in
            self.ap_creations.append((request, apic, vmsa_gpa))
            target = self.vmcbs[apic]
            if self.ap_refuse:
                ghcb_set(buf, "sw_exit_info_1", 2)
                ghcb_set(buf, "sw_exit_info_2", 5)
            elif request == SVM_VMGEXIT_AP_DESTROY:
                target.vmsa_pfn = None
                self.live.discard(apic)
            else:
                target.vmsa_pfn = self.npt.lookup(vmsa_gpa >> 12).pfn
                self.live.add(apic)
        elif code == SVM_EXIT_IOIO:
            self.ioio.append((info1_in, ghcb_get(buf, "rax")))
            done = True
            self.outcome = "poweroff"
        self.p.host.write(spa, bytes(buf))
        return done

    def _psc(self, gpa: int, buf: bytearray) -> None:
        off = ghcb_get(buf, "sw_scratch") - gpa
        desc = SnpPscDesc.decode(bytes(buf[off:0xFF0]))
        self.psc_calls.append(PscCall(desc, gpa, off))
        hdr = desc.hdr
        mode = self.psc_mode
        if mode == "info2":
            ghcb_set(buf, "sw_exit_info_2", (1 << 32) | 2)
            return
        if mode == "info1":
            ghcb_set(buf, "sw_exit_info_1", 2)
            ghcb_set(buf, "sw_exit_info_2", 5)
            return
        if mode == "stall":
            return
        entries = list(desc.entries)
        last = hdr.end_entry if mode != "partial" else min(hdr.end_entry, hdr.cur_entry)
        for i in range(hdr.cur_entry, last + 1):
            e = entries[i]
            if e.operation == SNP_PAGE_STATE_SHARED:
                if e.pagesize:
                    self._to_shared_2m(e.gfn)
                else:
                    self._to_shared(e.gfn)
            entries[i] = PscEntry(e.npages, e.gfn, e.operation, e.pagesize, e.reserved)
        new_hdr = PscHdr(last + 1, hdr.end_entry)
        if mode == "reserved":
            new_hdr = PscHdr(last + 1, hdr.end_entry, 1)
        elif mode == "end_grow":
            new_hdr = PscHdr(hdr.cur_entry, hdr.end_entry + 1)
        elif mode == "cur_back" and hdr.cur_entry == 0:
            new_hdr = PscHdr(0, hdr.end_entry)
            # first answer: partial progress, then go backwards
            self.psc_mode = "cur_back2"
            new_hdr = PscHdr(1, hdr.end_entry)
        elif mode == "cur_back2":
            new_hdr = PscHdr(0, hdr.end_entry)
        out = SnpPscDesc(new_hdr, tuple(entries)).encode()
        buf[off : off + len(out)] = out

    # -- helpers for tests -------------------------------------------------------------
    def guest_calls(self, recorder) -> list[str]:
        from snpsim.trace.events import Enter

        return [e.name for e in recorder.events if isinstance(e, Enter) and e.party == "guest"]


#: VMEXIT_PAUSE (APM vol 2 appendix C, exit code 0x77): the exit a PAUSE intercept gives.
SVM_EXIT_PAUSE = 0x077


class SmpFakeHost(FakeHost):
    """The fake host with several vCPUs scheduled by a seeded RNG after every exit, and
    a PAUSE that exits (what ``snpsim.guest.smp.cpu_relax`` uses when the GuestPort has
    ``pause``): the host side the guest needs for two vCPUs to accept memory at once."""

    def __post_init__(self) -> None:
        super().__post_init__()
        from snpsim.hw.cpu import GuestCpu

        entry = self.p.guest_code[ASID]
        for vmcb in self.vmcbs:
            cpu = GuestCpu(self.p, vmcb, entry)
            cpu.pause = (lambda c=cpu: c._vmexit(SVM_EXIT_PAUSE, 0, 0, "PAUSE"))  # type: ignore[attr-defined]
        self.pauses = 0

    def run_smp(self, seed: int, max_exits: int = 400000) -> str:
        import random

        rng = random.Random(seed)
        live = self.live
        while live and self.exits < max_exits:
            v = rng.choice(sorted(live))
            vmcb = self.vmcbs[v]
            ex = self.p.host.vmrun(vmcb)
            self.exits += 1
            code = ex.exit_code
            if code == SVM_EXIT_NPF:
                self._npf(ex.exit_info_1, ex.exit_info_2)
            elif code == SVM_EXIT_VMGEXIT:
                if self._vmgexit(vmcb):
                    return self.outcome
            elif code == SVM_EXIT_PAUSE:
                self.pauses += 1
            elif code == SVM_EXIT_HLT:
                if self.kernel.powered_off or self.term:
                    self.outcome = self.outcome or "hlt"
                    return self.outcome
                live.discard(v)  # halted, nothing wakes it
            elif code == SVM_EXIT_SHUTDOWN:
                self.outcome = "shutdown"
                return self.outcome
        self.outcome = self.outcome or ("halted" if not live else "max_exits")
        return self.outcome
