# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The platform's CPUs: the guest-side vCPU (what guest code can execute) and the host
side (what host software can execute), with the instruction boundary where faults are
delivered.

Guest side, :class:`GuestCpu` (implements :class:`snpsim.hw.ports.GuestPort`): loads and
stores through the guest page tables (with a TLB), the NPT and the RMP checks; PVALIDATE;
RDMSR/WRMSR of the GHCB MSR; VMGEXIT; VMMCALL (a #VC under SEV-ES/SNP); TLB and cache
maintenance; an IDT of exception handlers.  A fault raised by a check is caught here, at
the instruction boundary, and delivered: #NPF as a #VMEXIT to the host, after which the
access is retried; #VC / #PF / #GP to the guest's IDT handler in guest context, after
which the access is retried (a handler that cannot fix the cause does not return).  A
vector with no handler is a triple fault: a shutdown exit that never resumes.

Host side, :class:`HostCpu` (implements :class:`snpsim.hw.ports.HostPort`): VMRUN,
RMPUPDATE, PSMASH, RMPREAD, reads and writes by SPA (host writes are RMP-checked and take
a host #PF with X86_PF_RMP), the NPT, and the SNP firmware.

Sources: AMD APM vol 2 15.35-15.36 and vol 3 (PVALIDATE, VMGEXIT, RMPUPDATE), GHCB spec
56421 section 2 (VMGEXIT, GHCB MSR), as restated in hardware-and-ghcb.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from greenlet import getcurrent

from snpsim.spec.checks import check_enabled
from snpsim.spec.exit_codes import (
    SVM_EVTINJ_TYPE_EXEPT,
    SVM_EVTINJ_TYPE_MASK,
    SVM_EVTINJ_VALID,
    SVM_EVTINJ_VEC_MASK,
    SVM_EXIT_ERR,
    SVM_EXIT_HLT,
    SVM_EXIT_IOIO,
    SVM_EXIT_MSR,
    SVM_EXIT_NPF,
    SVM_EXIT_PAUSE,
    SVM_EXIT_SHUTDOWN,
    SVM_EXIT_VMGEXIT,
    SVM_EXIT_VMMCALL,
)
from snpsim.spec.faults import (
    PFERR_FETCH_MASK,
    PFERR_GUEST_ENC_MASK,
    PFERR_GUEST_FINAL_MASK,
    PFERR_GUEST_PAGE_MASK,
    PFERR_PRESENT_MASK,
    PFERR_WRITE_MASK,
    X86_PF_RMP,
    X86_PF_WRITE,
    X86_TRAP_GP,
    X86_TRAP_UD,
)
from snpsim.spec.msr_index import (
    CPUID_FN_RMP_SEGMENTS,
    MSR_AMD64_RMP_BASE,
    MSR_AMD64_RMP_CFG,
    MSR_AMD64_RMP_END,
    MSR_AMD64_SEV,
    MSR_AMD64_SEV_ES_GHCB,
    MSR_AMD64_SYSCFG,
    MSR_AMD64_SYSCFG_SNP_EN,
)
from snpsim.spec.pgtable_types import PG_LEVEL_1G, PG_LEVEL_2M, PG_LEVEL_4K
from snpsim.spec.rmp import (
    PVALIDATE_FAIL_INPUT,
    RMPADJUST_FAIL_INPUT,
    RMPREAD_FAIL_INPUT,
    RMPTABLE_CPU_BOOKKEEPING_SZ,
    RmpState,
)
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE, PMD_SIZE, PTRS_PER_PMD, PageSize, u64
from snpsim.spec.vmsa import VMSA_FIELDS
from snpsim.trace.progress import DEFAULT_LIVELOCK_REPEATS, ProgressWatcher
from snpsim.trace.record import traced

from .faults import (
    GeneralProtectionFault,
    GuestPageFault,
    HardwareFault,
    HostPageFault,
    InvalidOpcode,
    NestedPageFault,
    VmmCommunicationException,
)
from .memory import PhysicalMemory
from .npt import Npt, NptEntry, Translation, check_rmp_guest_access, guest_walk
from .rmp import Rmp, RmpConfig, RmpEntry
from .world import GuestContextDied, World

__all__ = ["VmExit", "Vmcb", "GuestCpu", "HostCpu", "Platform", "Tlb", "TLB_ENTRIES"]

# The #NPF error-code base of PVALIDATE/RMPADJUST (present | GUEST_FINAL, ENC for C=1),
# built once: an IntFlag ``|`` costs about 1 us on a per-page path.
_PFERR_FINAL = PFERR_PRESENT_MASK | PFERR_GUEST_FINAL_MASK
_PFERR_FINAL_ENC = _PFERR_FINAL | PFERR_GUEST_ENC_MASK


@dataclass(slots=True)
class VmExit:
    """A #VMEXIT as the host sees it: ``exit_code`` (u64, SVM_EXIT_*), ``exit_info_1``
    and ``exit_info_2`` (u64).  For #NPF: info1 = PFERR bits, info2 = GPA."""

    exit_code: int
    exit_info_1: int = 0
    exit_info_2: int = 0


@dataclass
class Vmcb:
    """The parts of a vCPU's VMCB (control area and, for SEV-ES/SNP, the VMSA) the model
    keeps.  ``ghcb_gpa``: the GHCB MSR value at the last VMGEXIT (``control.ghcb_gpa``);
    ``asid``: the guest's ASID; ``npt``: the nested page table (nCR3); ``vmsa_pfn``: the
    PFN of the VMSA page, the VMCB's VMSA pointer (marked in use while the vCPU runs;
    checked by VMRUN for an SNP-active guest; a value beyond the RMP, such as KVM's
    INVALID_PAGE >> 12, is no page); ``sev_es``: the guest state
    is protected (VMMCALL and friends go through #VC); ``regs``: guest GPRs as the host
    sees them -- only meaningful for non-ES guests; ``snp_active``: SEV-SNP is enabled
    for the guest (SEV_FEATURES.SNPActive); ``sev_enable``: the control area's
    SEV_ENABLE bit (APM vol 2 15.34.2; False for a guest without SEV, whose C-bit
    means nothing and whose accesses are all unencrypted).  A guest that is not
    SNP-active gets only the Hypervisor-Owned check on data writes and page-table
    accesses (APM table 15-39).  ``event_inj``: the EVENTINJ field (APM vol 2 15.20:
    vector bits 7:0, type 10:8, valid bit 31): an exception the next VMRUN delivers to
    the guest, then cleared."""

    vcpu_id: int
    asid: int
    npt: Npt
    vmsa_pfn: int | None = None
    sev_es: bool = True
    sev_status: int = 0
    ghcb_gpa: int = 0
    exit: VmExit = field(default_factory=lambda: VmExit(0))
    regs: dict[str, int] = field(default_factory=dict)
    cpu: GuestCpu | None = None
    snp_active: bool = True
    sev_enable: bool = True
    event_inj: int = 0


#: Model choice: entries the guest TLB holds (the order of an AMD Zen L2 data TLB).
TLB_ENTRIES = 2048

_LEAF_SIZE = {PG_LEVEL_4K: PAGE_SIZE, PG_LEVEL_2M: PMD_SIZE, PG_LEVEL_1G: 1 << 30}


class Tlb:
    """One vCPU's TLB: at most ``capacity`` cached guest translations, one per leaf.

    A translation is cached at the size of the page-table leaf that produced it, as a
    hardware TLB holds 4 KiB, 2 MiB and 1 GiB entries: one entry of a 2 MiB leaf serves
    all 512 4 KiB pages under it, and INVLPG of any address in it drops it.  Each entry
    is the :class:`Translation` of the leaf's first byte (``gpa`` is the leaf's base).
    Replacement rule: when full, filling drops the entry filled longest ago (FIFO).  An
    entry is otherwise kept until INVLPG of an address it covers, or a flush: a
    translation that changed in the page tables without a flush stays in use (the stale
    translations of a missing-flush bug), until it is replaced.
    Keys are the leaf's base GVA plus its PG_LEVEL (a 4 KiB and a 2 MiB entry at one
    2 MiB-aligned GVA are distinct, as in the separate hardware arrays).
    Source: AMD APM vol 2 5.5 (TLB, INVLPG invalidates the entry of any page size
    that maps the address).
    """

    __slots__ = ("_e", "capacity")

    def __init__(self, capacity: int = TLB_ENTRIES) -> None:
        self._e: dict[int, Translation] = {}
        self.capacity = capacity

    def lookup(self, page: int) -> tuple[int, Translation] | None:
        """(GPA of the 4 KiB-aligned GVA ``page``, the entry) or None on a miss."""
        e = self._e
        t = e.get(page + PG_LEVEL_4K)
        if t is not None:
            return t.gpa, t
        t = e.get((page & ~(PMD_SIZE - 1)) + PG_LEVEL_2M)
        if t is not None:
            return t.gpa + (page & (PMD_SIZE - 1)), t
        t = e.get((page & ~((1 << 30) - 1)) + PG_LEVEL_1G)
        if t is not None:
            return t.gpa + (page & ((1 << 30) - 1)), t
        return None

    def get(self, gva: int) -> Translation | None:
        """The cached translation covering ``gva`` (its leaf's entry), or None."""
        hit = self.lookup(gva & ~(PAGE_SIZE - 1))
        return None if hit is None else hit[1]

    def fill(self, page: int, t: Translation) -> tuple[int, Translation]:
        """Cache the walk result ``t`` of the 4 KiB-aligned GVA ``page`` as its leaf's
        entry (replacing the oldest when full); returns what :meth:`lookup` would."""
        size = _LEAF_SIZE[t.level]
        off = page & (size - 1)
        key = (page - off) + t.level
        ent = Translation(t.gpa - off, t.c_bit, t.writable, t.user, t.nx, t.level)
        e = self._e
        e.pop(key, None)
        if len(e) >= self.capacity:
            del e[next(iter(e))]
        e[key] = ent
        return t.gpa, ent

    def invlpg(self, gva: int) -> None:
        """Drop every entry, of any size, that covers ``gva``."""
        e = self._e
        e.pop((gva & ~(PAGE_SIZE - 1)) + PG_LEVEL_4K, None)
        e.pop((gva & ~(PMD_SIZE - 1)) + PG_LEVEL_2M, None)
        e.pop((gva & ~((1 << 30) - 1)) + PG_LEVEL_1G, None)

    def clear(self) -> None:
        """Drop every entry."""
        self._e.clear()

    def __len__(self) -> int:
        """Entries held (at most ``capacity``)."""
        return len(self._e)


class Platform:
    """One machine: physical memory, RMP, the world, and the SNP firmware.

    ``mem_size``: bytes of SPA space; ``cbit``: the C-bit position the CPU reports
    (CPUID 0x8000001F EBX[5:0]; 51 on Milan/Genoa); ``seed``: scheduler and key seed;
    ``rmp_coverage``: bytes of SPA space the RMP covers (default ``mem_size``; pages above
    are permanently hypervisor-owned, APM 15.36.4); ``livelock_repeats``: the knob of the
    model-only livelock detector ``progress`` (:class:`snpsim.trace.progress.ProgressWatcher`),
    which guest code reaches through its vCPU and host code through the host port.
    """

    def __init__(self, mem_size: int = 1 << 40, cbit: int = 51, seed: int = 0,
                 rmp_coverage: int | None = None,
                 livelock_repeats: int = DEFAULT_LIVELOCK_REPEATS,
                 rmp_config: RmpConfig | None = None) -> None:
        from .firmware import SnpFirmware

        self.cbit = cbit
        self.mem = PhysicalMemory(mem_size)
        self.mem.engine = type(self.mem.engine)(b"snpsim-seed-%d" % seed)
        self.rmp = Rmp(coverage=mem_size if rmp_coverage is None else rmp_coverage)
        #: Where the BIOS put the RMP (None: the model's default, an RMP covering
        #: ``rmp_coverage`` with SNP already enabled and no table placement modelled).
        self.rmp_config: RmpConfig | None = None
        #: MSR SYSCFG; SNP_EN is set from the start unless a placement is given, in
        #: which case the host's ``snp_rmptable_init`` sets it.
        self.syscfg = MSR_AMD64_SYSCFG_SNP_EN
        if rmp_config is not None:
            self.set_rmp_config(rmp_config)
        self.world = World(seed)
        self.progress = ProgressWatcher(livelock_repeats)
        self.firmware = SnpFirmware(self)
        self.host = HostCpu(self)
        self.counters: dict[str, int] = {}
        self.guest_code: dict[int, Callable[[GuestCpu], None]] = {}
        #: Model-only: guest contexts whose VMSA was replaced (never resumed again).
        self.retired_cpus: list[GuestCpu] = []

    def set_rmp_config(self, cfg: RmpConfig) -> None:
        """Model-only: the BIOS's RMP placement, before the host OS boots: the MSRs read
        ``cfg``, the RMP covers what it says (:meth:`RmpConfig.covered_extents`), a
        segmented RMP's segment table is written into its page, and SNP is not enabled
        yet (SYSCFG.SNP_EN clear) -- the host's ``snp_rmptable_init`` enables it."""
        self.rmp_config = cfg
        self.syscfg = 0
        self.rmp.set_coverage_extents(cfg.covered_extents())
        if cfg.is_segmented:
            self.mem.write_raw(cfg.rmp_base + RMPTABLE_CPU_BOOKKEEPING_SZ, cfg.rst_page())

    def install_guest_code(self, asid: int, entry: Callable[[GuestCpu], None]) -> None:
        """Model-only: the guest code that VMRUN starts for a vCPU of ``asid`` -- the
        stand-in for the kernel image that the VMSA's RIP points into.  ``entry`` runs in
        the vCPU's guest context with its :class:`GuestCpu`."""
        self.guest_code[asid] = entry

    def count(self, name: str, n: int = 1) -> None:
        """Bump the platform counter ``name`` (model-only statistics)."""
        self.counters[name] = self.counters.get(name, 0) + n


class GuestCpu:
    """One guest vCPU as guest code sees it (the guest port).

    Every method must run in this vCPU's guest context (a tripwire asserts it).
    Addresses: ``gva`` guest virtual (bytes).  ``cbit`` comes from the platform.
    """

    def __init__(self, platform: Platform, vmcb: Vmcb, entry: Callable[[GuestCpu], None],
                 vmsa: dict[str, int] | None = None) -> None:
        self.platform = platform
        #: The VMSA page (PFN) this context's state was loaded from at its first VMRUN,
        #: and the fields loaded (``rip``, ``sev_features``, ``vmpl``, ...; u64 values
        #: as the VMSA held them, empty for a guest without a VMSA).  A VMRUN on another
        #: VMSA page starts a new context (:meth:`HostCpu.vmrun`).
        self.vmsa_pfn = vmcb.vmsa_pfn
        self.vmsa: dict[str, int] = dict(vmsa or {})
        self._guests = platform.world.guest_contexts
        self.vmcb = vmcb
        vmcb.cpu = self
        self.vcpu_id = vmcb.vcpu_id
        self.cbit = platform.cbit
        #: The VMCB's SEV_ENABLE bit.  Without it (a plain or software-protected VM)
        #: nothing is encrypted: page-table walks and every access go to memory as
        #: is, and an #NPF never reports an encrypted access.
        self.sev_enabled = vmcb.sev_enable
        self.cr3 = 0
        self.vmpl = 0
        self.cpl = 0
        self.msr_ghcb = 0
        self.regs: dict[str, int] = {}
        self.tlb = Tlb()
        self._walk_gva = 0
        self.idt: dict[int, Callable[[GuestCpu, HardwareFault], None]] = {}
        self.ctx = platform.world.new_guest_context(f"vcpu{self.vcpu_id}", lambda: entry(self))
        self.halted = False
        #: Model-only: the platform's livelock detector (not hardware state).
        self.progress = platform.progress

    # -- tripwire and exits --------------------------------------------------------------
    def _assert_ctx(self) -> None:
        assert getcurrent() in self._guests, "guest-port call from host context"

    def _vmexit(self, exit_code: int, info1: int = 0, info2: int = 0, reason: str = "") -> None:
        # On every #VMEXIT of an SEV-ES guest the GHCB MSR is saved to the VMCB's
        # control.ghcb_gpa, and VMRUN loads it back (GHCB spec 56421 section 2.3.1).
        self.vmcb.ghcb_gpa = self.msr_ghcb
        self.vmcb.exit = VmExit(exit_code, u64(info1), u64(info2))
        self.platform.world.exit_guest(self.vmcb.exit, reason or f"exit {exit_code:#x}")
        self.msr_ghcb = self.vmcb.ghcb_gpa
        self._inject_event()

    def _inject_event(self) -> None:
        """VMRUN's event injection (APM vol 2 15.20): a valid exception in the VMCB's
        EVENTINJ is delivered to the guest on entry, before its next instruction; the
        field is cleared.  #GP (13) and #UD (6) are the vectors KVM injects here."""
        event = self.vmcb.event_inj
        if not event & SVM_EVTINJ_VALID:
            return
        self.vmcb.event_inj = 0
        if (event & SVM_EVTINJ_TYPE_MASK) != SVM_EVTINJ_TYPE_EXEPT:
            return  # model: only exceptions are injected
        vector = event & SVM_EVTINJ_VEC_MASK
        if vector == X86_TRAP_UD:
            self._deliver(InvalidOpcode("injected by the hypervisor"))
        elif vector == X86_TRAP_GP:
            self._deliver(GeneralProtectionFault("injected by the hypervisor"))

    def _deliver(self, fault: HardwareFault) -> None:
        """The instruction boundary: deliver ``fault`` to its party."""
        if isinstance(fault, NestedPageFault):
            self.platform.count("#NPF")
            self._vmexit(SVM_EXIT_NPF, fault.error_code, fault.gpa, "NPF")
            return
        vec = fault.vector
        if isinstance(fault, VmmCommunicationException):
            self.platform.count("#VC")
        handler = self.idt.get(vec) if vec is not None else None
        if handler is None:
            self._triple_fault(fault)
            return
        handler(self, fault)

    def _triple_fault(self, fault: HardwareFault) -> None:
        while True:
            self._vmexit(SVM_EXIT_SHUTDOWN, 0, 0, f"shutdown (unhandled {type(fault).__name__})")

    def set_idt_handler(self, vector: int, handler: Callable[[GuestCpu, HardwareFault], None]) -> None:
        """Install the guest's handler for exception ``vector`` (13 #GP, 14 #PF, 29 #VC).
        The handler runs in guest context with this CPU and the fault."""
        self.idt[vector] = handler

    # -- translation -----------------------------------------------------------------------
    def _read_table(self, gpa: int) -> int:
        # A page-table read is a private access; a #VC 0x404 on it reports the GVA being
        # translated in CR2 (the walk's ``_walk_gva``).
        sev = self.sev_enabled
        ent = self._npt_translate(gpa, write=False, c_bit=sev, table_walk=True, gva=self._walk_gva)
        spa = (ent.pfn << PAGE_SHIFT) | (gpa & (PAGE_SIZE - 1))
        mem = self.platform.mem
        raw = mem.read_enc(spa, 8, self.vmcb.asid) if sev else mem.read_raw(spa, 8)
        return int.from_bytes(raw, "little")

    def _npt_translate(self, gpa: int, *, write: bool, c_bit: bool, table_walk: bool, gva: int,
                       fetch: bool = False) -> NptEntry:
        gfn = gpa >> PAGE_SHIFT
        ent = self.vmcb.npt.lookup(gfn)
        if ent is None or (write and not ent.writable):
            code = ((PFERR_PRESENT_MASK if ent is not None else 0)
                    | (PFERR_WRITE_MASK if write else 0)
                    | (PFERR_FETCH_MASK if fetch else 0)
                    | (PFERR_GUEST_PAGE_MASK if table_walk else PFERR_GUEST_FINAL_MASK)
                    | (PFERR_GUEST_ENC_MASK if (c_bit or (table_walk and self.sev_enabled)) else 0))
            raise NestedPageFault(gpa, code, "NPT entry not present" if ent is None else "NPT read-only")
        check_rmp_guest_access(
            self.platform.rmp, pfn=ent.pfn, gpa=gpa, gva=gva, asid=self.vmcb.asid,
            npt_level=ent.level, c_bit=c_bit, write=write, fetch=fetch, table_walk=table_walk,
            vmpl=self.vmpl, user=fetch and self.cpl == 3, snp_active=self.vmcb.snp_active,
        )
        return ent

    def _translate(self, gva: int, write: bool) -> tuple[int, Translation]:
        """(GPA of ``gva``'s 4 KiB page, the TLB entry), walking on a miss."""
        page = gva & ~(PAGE_SIZE - 1)
        hit = self.tlb.lookup(page)
        if hit is None or (write and not hit[1].writable):
            self._walk_gva = gva
            t = guest_walk(self._read_table, self.cr3, page, self.cbit, write=write, fetch=False)
            hit = self.tlb.fill(page, t)
        return hit

    def translate(self, gva: int) -> Translation:
        """Walk the guest page tables for ``gva`` (through the TLB), delivering faults;
        returns the translation (``gpa`` includes the page offset)."""
        self._assert_ctx()
        while True:
            try:
                gpa, t = self._translate(gva, False)
                return Translation(gpa | (gva & (PAGE_SIZE - 1)), t.c_bit, t.writable, t.user, t.nx, t.level)
            except HardwareFault as f:
                self._deliver(f)

    def _access(self, gva: int, n: int, data: bytes | None, load: bool = True) -> bytes:
        out = bytearray()
        pos = 0
        while pos < n:
            cur = gva + pos
            take = min(n - pos, PAGE_SIZE - (cur & (PAGE_SIZE - 1)))
            while True:
                try:
                    gpa, t = self._translate(cur, data is not None)
                    gpa |= cur & (PAGE_SIZE - 1)
                    ent = self._npt_translate(gpa, write=data is not None, c_bit=t.c_bit,
                                              table_walk=False, gva=cur)
                    spa = (ent.pfn << PAGE_SHIFT) | (gpa & (PAGE_SIZE - 1))
                    mem = self.platform.mem
                    if not load:
                        pass
                    elif data is None:
                        if t.c_bit:
                            out += mem.read_enc(spa, take, self.vmcb.asid)
                        else:
                            out += mem.read_raw(spa, take)
                    else:
                        chunk = data[pos : pos + take]
                        if t.c_bit:
                            mem.write_enc(spa, chunk, self.vmcb.asid)
                        else:
                            mem.write_raw(spa, chunk)
                    break
                except HardwareFault as f:
                    self._deliver(f)
            pos += take
        return bytes(out)

    # -- GuestPort: memory -------------------------------------------------------------------
    def read(self, gva: int, n: int) -> bytes:
        """Load ``n`` bytes at ``gva``: C=1 pages are decrypted with the guest key, C=0
        pages read raw.  Faults are delivered and the access retried."""
        self._assert_ctx()
        return self._access(gva, n, None)

    def write(self, gva: int, data: bytes) -> None:
        """Store ``data`` at ``gva`` (encrypted for C=1 pages).  Faults are delivered and
        the access retried."""
        self._assert_ctx()
        self._access(gva, len(data), bytes(data))

    def touch_pages(self, gva: int, npages: int, offsets: tuple[int, ...] = (0,)) -> None:
        """Load one byte at ``gva + i * 4096 + off`` for each page ``i`` < ``npages`` and
        each ``off`` in ``offsets`` (in that order) and discard the values: exactly the
        checks, faults (delivered, then the load retried), TLB fills and counters of
        ``read(addr, 1)`` at each of those addresses in turn, without producing data.

        Model-only fast path: runs of pages that provably cannot fault (a TLB hit, a
        present NPT leaf, and for a C=1 mapping :meth:`Rmp.private_read_run` over the
        run) are skipped in one step; every other page goes through the per-access path,
        so the first fault, in address order, is the one a per-page loop takes.
        ``offsets`` within [0, 4096) and a page-aligned ``gva`` take the fast path;
        anything else is done access by access.
        """
        self._assert_ctx()
        fast = not gva & (PAGE_SIZE - 1) and all(0 <= o < PAGE_SIZE for o in offsets)
        i = 0
        while i < npages:
            page = gva + i * PAGE_SIZE
            run = self._probe_run(page, npages - i) if fast else 0
            if run:
                i += run
                continue
            for off in offsets:
                self._access(page + off, 1, None, load=False)
            i += 1

    def _probe_run(self, page: int, limit: int) -> int:
        """How many pages from the 4 KiB-aligned GVA ``page`` (at most ``limit``) a
        one-byte data read would reach without a walk or a fault; 0 when unsure."""
        hit = self.tlb.lookup(page)
        if hit is None:
            return 0
        gpa, t = hit
        size = _LEAF_SIZE[t.level]
        n = min(limit, (size - (page & (size - 1))) >> PAGE_SHIFT)
        gfn = gpa >> PAGE_SHIFT
        npt = self.vmcb.npt
        ent = npt.lookup(gfn)
        if ent is None:
            return 0
        if ent.level == PG_LEVEL_2M:
            n = min(n, PTRS_PER_PMD - (gfn & (PTRS_PER_PMD - 1)))
        else:  # 4 KiB leaves: as far as they map consecutive frames
            k = 1
            while k < n:
                nxt = npt.lookup(gfn + k)
                if nxt is None or nxt.level != PG_LEVEL_4K or nxt.pfn != ent.pfn + k:
                    break
                k += 1
            n = k
        if not t.c_bit or not self.vmcb.snp_active:
            return n  # a C=0 read, or any read of a guest that is not SNP-active: unchecked
        return self.platform.rmp.private_read_run(
            ent.pfn, gpa, n, asid=self.vmcb.asid, pagesize=1 if ent.level == PG_LEVEL_2M else 0,
            vmpl=self.vmpl)

    def read_u64(self, gva: int) -> int:
        """Load a little-endian u64 at ``gva``."""
        return int.from_bytes(self.read(gva, 8), "little")

    def write_u64(self, gva: int, value: int) -> None:
        """Store ``value`` as a little-endian u64 at ``gva``."""
        self.write(gva, u64(value).to_bytes(8, "little"))

    def fetch(self, gva: int, n: int) -> bytes:
        """Instruction fetch of ``n`` bytes at ``gva`` (within one page).

        In an SNP-active guest a fetch is always a private access (effective C=1,
        whatever the PTE's C-bit), so it is RMP-checked like a C=1 read and needs the
        current VMPL's Execute-Supervisor (CPL < 3) or Execute-User (CPL 3) permission;
        the bytes are decrypted with the guest key.  A fetch from an NX page is a guest
        #PF (present | fetch).  Faults are delivered and the fetch retried.
        Source: APM vol 2 15.36.10, table 15-39 (instruction fetch row).
        """
        self._assert_ctx()
        assert (gva & (PAGE_SIZE - 1)) + n <= PAGE_SIZE, "fetch crosses a page"
        while True:
            try:
                gpa, t = self._translate(gva, False)
                if t.nx:
                    raise GuestPageFault(gva, int(PFERR_PRESENT_MASK | PFERR_FETCH_MASK), "fetch from NX page")
                gpa |= gva & (PAGE_SIZE - 1)
                c_bit = t.c_bit or self.vmcb.snp_active
                ent = self._npt_translate(gpa, write=False, c_bit=c_bit, table_walk=False, gva=gva,
                                          fetch=True)
                spa = (ent.pfn << PAGE_SHIFT) | (gpa & (PAGE_SIZE - 1))
                if c_bit:
                    return self.platform.mem.read_enc(spa, n, self.vmcb.asid)
                return self.platform.mem.read_raw(spa, n)
            except HardwareFault as f:
                self._deliver(f)

    # -- GuestPort: SNP instructions -------------------------------------------------------------
    @traced("cpu", name="PVALIDATE")
    def pvalidate(self, vaddr: int, rmp_psize: int, validate: bool) -> tuple[int, int]:
        """PVALIDATE: set (``validate``) or clear the Validated bit of the page at GVA
        ``vaddr``; ``rmp_psize`` 0 = 4 KiB, 1 = 2 MiB.

        Returns ``(rax, cf)``: (0, 0) changed; (0, 1) Validated already had that value;
        (FAIL_INPUT 1, 0) for a 2 MiB request on a GVA that is not 2 MiB aligned;
        (FAIL_SIZEMISMATCH 6, 0) for 2 MiB on a 4 KiB RMP entry.  Faults: #GP at VMPL or
        CPL != 0 and in a guest that is not SNP-active (SEV, SEV-ES: #GP as VERISMO
        models it, #GP vs #UD unconfirmed); guest #PF when the walk fails; #NPF (RMP bit) when the page is not
        guest-owned, the GPA mismatches or it is immutable; #NPF with SIZEM for 4 KiB on a
        2 MiB RMP entry.  Faults are delivered and the instruction retried.
        Source: APM vol 3 PVALIDATE; hardware-and-ghcb.md 2.
        """
        self._assert_ctx()
        self.platform.count("PVALIDATE")
        while True:
            try:
                return self._pvalidate_once(vaddr, rmp_psize, validate)
            except HardwareFault as f:
                self._deliver(f)

    def _pvalidate_once(self, vaddr: int, rmp_psize: int, validate: bool) -> tuple[int, int]:
        if not self.vmcb.snp_active:
            # Not an SNP-active guest (SEV, SEV-ES): the instruction is not supported
            # there.  #GP as VERISMO models it; #GP vs #UD is unconfirmed (APM vol 3).
            raise GeneralProtectionFault("PVALIDATE outside an SNP-active guest")
        if self.vmpl != 0 or self.cpl != 0:
            raise GeneralProtectionFault("PVALIDATE at VMPL/CPL != 0")
        if rmp_psize == PageSize.SIZE_2M and vaddr & (PMD_SIZE - 1):
            return PVALIDATE_FAIL_INPUT, 0
        gpa, t = self._translate(vaddr & ~(PAGE_SIZE - 1), False)
        gfn = gpa >> PAGE_SHIFT
        ent = self.vmcb.npt.lookup(gfn)
        if ent is None:
            enc = PFERR_GUEST_ENC_MASK if t.c_bit else 0
            raise NestedPageFault(gpa, PFERR_GUEST_FINAL_MASK | enc, "NPT entry not present (PVALIDATE)")
        return self.platform.rmp.pvalidate(
            ent.pfn, gpa, asid=self.vmcb.asid, rmp_psize=rmp_psize, validate=validate,
            pferr=_PFERR_FINAL_ENC if t.c_bit else _PFERR_FINAL,
        )

    @traced("cpu", name="RMPADJUST")
    def rmpadjust(self, vaddr: int, rmp_psize: int, attrs: int) -> int:
        """RMPADJUST: set the permission mask of a lower-privileged VMPL (and, at VMPL0,
        the VMSA bit) for the page at GVA ``vaddr``; ``rmp_psize`` 0 = 4 KiB, 1 = 2 MiB;
        ``attrs`` = RDX: target VMPL [7:0], mask [15:8] (``RmpPerm``), VMSA [16]
        (:func:`snpsim.spec.rmp.rmpadjust_attrs` builds it).

        Returns EAX: 0 success; FAIL_INPUT (1) for a 2 MiB request on a GVA that is not
        2 MiB aligned, a target VMPL >= 4 or reserved bits; FAIL_PERMISSION (2) when the
        target VMPL is not above the current one or the mask is not a subset of the
        current VMPL's; FAIL_SIZEMISMATCH (6) for 2 MiB on a 4 KiB RMP entry.  Faults:
        #GP(0) at CPL != 0 (model choice); guest #PF when the walk fails; #NPF (RMP bit)
        when the page is not guest-owned, immutable or at another GPA; #NPF with SIZEM
        for 4 KiB on a 2 MiB RMP entry; #VC 0x404 when the page is not validated (model
        choice after VERISMO).  Faults are delivered and the instruction retried.
        Source: APM vol 3 RMPADJUST; hardware-and-ghcb.md 3.4; :meth:`snpsim.hw.rmp.Rmp.rmpadjust`.
        """
        self._assert_ctx()
        self.platform.count("RMPADJUST")
        while True:
            try:
                return self._rmpadjust_once(vaddr, rmp_psize, attrs)
            except HardwareFault as f:
                self._deliver(f)

    def _rmpadjust_once(self, vaddr: int, rmp_psize: int, attrs: int) -> int:
        if not self.vmcb.snp_active:
            raise GeneralProtectionFault("RMPADJUST outside an SNP-active guest")
        if self.cpl != 0:
            raise GeneralProtectionFault("RMPADJUST at CPL != 0")
        if rmp_psize == PageSize.SIZE_2M and vaddr & (PMD_SIZE - 1):
            return RMPADJUST_FAIL_INPUT
        gpa, t = self._translate(vaddr & ~(PAGE_SIZE - 1), False)
        ent = self.vmcb.npt.lookup(gpa >> PAGE_SHIFT)
        enc = PFERR_GUEST_ENC_MASK if t.c_bit else 0
        if ent is None:
            raise NestedPageFault(gpa, PFERR_GUEST_FINAL_MASK | enc, "NPT entry not present (RMPADJUST)")
        return self.platform.rmp.rmpadjust(
            ent.pfn, gpa, asid=self.vmcb.asid, vmpl=self.vmpl, rmp_psize=rmp_psize, attrs=attrs,
            pferr=PFERR_PRESENT_MASK | PFERR_GUEST_FINAL_MASK | enc, gva=vaddr,
        )

    # -- GuestPort: MSRs, exits ---------------------------------------------------------------------
    def rdmsr(self, msr: int) -> int:
        """RDMSR (u32 ``msr``): the GHCB MSR (0xC0010130) and the SEV status MSR
        (0xC0010131) are read in the CPU; any other MSR is intercepted (model: the
        hypervisor intercepts every other MSR) -- see :meth:`_msr_intercept`.  Returns
        EDX:EAX (u64)."""
        self._assert_ctx()
        if msr == MSR_AMD64_SEV_ES_GHCB:
            return self.msr_ghcb
        if msr == MSR_AMD64_SEV:
            return self.vmcb.sev_status
        self._msr_intercept(msr, write=False)
        return ((self.regs.get("rdx", 0) & 0xFFFFFFFF) << 32) | (self.regs.get("rax", 0) & 0xFFFFFFFF)

    def wrmsr(self, msr: int, value: int) -> None:
        """WRMSR (u32 ``msr``, u64 ``value``): the GHCB MSR (0xC0010130) is written in
        the CPU (the guest's side of the MSR protocol); any other MSR is intercepted --
        see :meth:`_msr_intercept`."""
        self._assert_ctx()
        if msr == MSR_AMD64_SEV_ES_GHCB:
            self.msr_ghcb = u64(value)
            return
        self.regs.update(rax=value & 0xFFFFFFFF, rdx=(value >> 32) & 0xFFFFFFFF)
        self._msr_intercept(msr, write=True)

    def _msr_intercept(self, msr: int, write: bool) -> None:
        """An intercepted RDMSR/WRMSR, ECX = ``msr`` (and EDX:EAX for a write): for an
        SEV-ES/SNP guest a #VC with error code SVM_EXIT_MSR (0x7C) to the guest's handler
        (which forwards it through the GHCB); for any other guest an automatic
        #VMEXIT(MSR) with EXITINFO1 = 1 for WRMSR, 0 for RDMSR and the registers visible
        to the host.  A #GP the hypervisor answers with reaches the guest as an
        injected event (:meth:`_inject_event`) or, through the GHCB, from the guest's
        #VC handler.  Source: APM vol 2 15.11 (MSR intercepts), 15.35.5 (#VC)."""
        self.regs["rcx"] = msr & 0xFFFFFFFF
        if self.vmcb.sev_es:
            self._deliver(VmmCommunicationException(SVM_EXIT_MSR, 0, "WRMSR" if write else "RDMSR"))
            return
        self.vmcb.regs = dict(self.regs)
        self._vmexit(SVM_EXIT_MSR, int(write), 0, "MSR")
        for reg in ("rax", "rdx"):
            self.regs[reg] = self.vmcb.regs.get(reg, self.regs.get(reg, 0))

    @traced("cpu", name="VMGEXIT")
    def vmgexit(self) -> None:
        """VMGEXIT (``rep; vmmcall``): #VMEXIT(VMGEXIT 0x403) with the GHCB MSR value in the
        VMCB's ``ghcb_gpa``; returns when the host resumes the vCPU, which has by then
        written its answer to the GHCB or the GHCB MSR."""
        self._assert_ctx()
        self.platform.count("VMGEXIT")
        self.vmcb.ghcb_gpa = self.msr_ghcb
        self._vmexit(SVM_EXIT_VMGEXIT, 0, 0, "VMGEXIT")

    def vmmcall(self) -> None:
        """VMMCALL: under SEV-ES/SNP a #VC with error code SVM_EXIT_VMMCALL (0x81)
        delivered to the guest's handler (which forwards it through the GHCB); for a
        non-ES guest an automatic exit with the registers visible to the host."""
        self._assert_ctx()
        if self.vmcb.sev_es:
            self._deliver(VmmCommunicationException(SVM_EXIT_VMMCALL, 0, "VMMCALL"))
            return
        self.vmcb.regs = dict(self.regs)
        self._vmexit(SVM_EXIT_VMMCALL, 0, 0, "VMMCALL")
        self.regs.update(rax=self.vmcb.regs.get("rax", 0))

    def out(self, port: int, value: int, size: int) -> None:
        """OUT of ``size`` bytes (1, 2 or 4) of ``value`` to I/O ``port`` (u16).

        With IOIO intercepted, an SEV-ES/SNP guest takes #VC with error code SVM_EXIT_IOIO
        (0x7B) with DX = ``port`` and RAX = ``value`` (its handler forwards the OUT through
        the GHCB); a non-ES guest makes an automatic #VMEXIT(IOIO) with EXITINFO1 = port
        << 16 | size bit (4 << size-1) | OUT (0) and RAX visible to the host.
        Source: APM vol 2 15.10.2 (IOIO intercept, EXITINFO1) and 15.35.5 (#VC).
        """
        self._assert_ctx()
        assert size in (1, 2, 4), "OUT size must be 1, 2 or 4 bytes"
        self.regs["rdx"] = port & 0xFFFF
        self.regs["rax"] = value
        if self.vmcb.sev_es:
            self._deliver(VmmCommunicationException(SVM_EXIT_IOIO, 0, "IOIO"))
            return
        self.vmcb.regs = dict(self.regs)
        info1 = ((port & 0xFFFF) << 16) | ({1: 1, 2: 2, 4: 4}[size] << 4)
        self._vmexit(SVM_EXIT_IOIO, info1, 0, "IOIO")

    def pause(self) -> None:
        """PAUSE in a spin-wait with the PAUSE intercept (pause-loop exiting) on: an
        automatic #VMEXIT(PAUSE 0x077), no #VC; returns when the host resumes the vCPU.
        Source: APM vol 2 15.14.4 (PAUSE intercept) and table 15-33 (automatic exits)."""
        self._assert_ctx()
        self._vmexit(SVM_EXIT_PAUSE, 0, 0, "PAUSE")

    def hlt(self) -> None:
        """HLT: #VMEXIT(HLT); returns when the host resumes the vCPU."""
        self._assert_ctx()
        self._vmexit(SVM_EXIT_HLT, 0, 0, "HLT")

    # -- GuestPort: TLB and caches -------------------------------------------------------------------
    def write_cr3(self, gpa: int) -> None:
        """Load CR3 with the GPA of the PML4 (C-bit stripped); flushes the TLB."""
        self._assert_ctx()
        self.cr3 = gpa
        self.tlb.clear()

    def invlpg(self, gva: int) -> None:
        """INVLPG: drop the TLB entries (of any page size) that map ``gva``."""
        self.tlb.invlpg(gva)
        self.platform.count("INVLPG")

    def flush_tlb_all(self) -> None:
        """Flush every TLB entry of this vCPU (a CR3 reload / INVLPGB-all)."""
        self.tlb.clear()
        self.platform.count("TLB flush")

    def clflush(self, gva: int) -> None:
        """CLFLUSH of one cache line (the model has no cache: counted only)."""
        self.platform.count("CLFLUSH")

    def wbinvd(self) -> None:
        """WBINVD (the model has no cache: counted only)."""
        self.platform.count("WBINVD")


class HostCpu:
    """What host software (KVM) can execute on the platform (the host port).

    Addresses are SPAs (bytes) unless named otherwise.  Methods assert they do not run
    in a guest context.
    """

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._guests = platform.world.guest_contexts
        #: Model-only: the platform's livelock detector (not hardware state).
        self.progress = platform.progress
        #: Model-only: see :meth:`yield_point`.
        self.thread_changes = 0
        self._last_thread: Any = None

    def _assert_ctx(self) -> None:
        assert getcurrent() not in self._guests, "host-port call from guest context"

    # -- VMRUN -----------------------------------------------------------------------------------
    @traced("cpu", name="VMRUN")
    def vmrun(self, vmcb: Vmcb) -> VmExit:
        """VMRUN: enter the guest of ``vmcb`` until its next #VMEXIT; returns the exit.

        For an SNP-active guest the VMSA page named by ``vmcb.vmsa_pfn`` (the VMCB's
        VMSA pointer) must first pass :meth:`snp_vmsa_check`; if not, VMRUN does not
        enter the guest and returns #VMEXIT(VMEXIT_INVALID, SVM_EXIT_ERR = -1 as u64).
        The guest state comes from the VMSA: the first VMRUN, and every VMRUN on a VMSA
        page other than the one the vCPU's context was loaded from (an SNP AP creation
        replaced it), starts a new guest context at the platform's guest code with the
        VMSA's fields (:meth:`read_vmsa`) in ``GuestCpu.vmsa``; the old context is kept,
        never resumed (its state lived in the old VMSA).  The VMSA page is marked in use
        (RMPUPDATE, PSMASH and a VMSA-bit RMPADJUST on it fail with FAIL_INUSE) while the
        guest runs.  A guest context whose code returned reports SVM_EXIT_SHUTDOWN.
        Source: APM vol 2 15.35.5 (the VMSA holds the guest state of an SEV-ES guest),
        15.36 (VMSA pages, in-use marking; the VMRUN checks: see :meth:`snp_vmsa_check`).
        """
        self._assert_ctx()
        if vmcb.snp_active and vmcb.sev_es:
            why = self.snp_vmsa_check(vmcb)
            if why:
                self.platform.count("VMEXIT_INVALID")
                vmcb.exit = VmExit(u64(SVM_EXIT_ERR))
                from snpsim.trace.record import emit_instant

                emit_instant("cpu", "VMEXIT_INVALID", vcpu=vmcb.vcpu_id, why=why)
                return vmcb.exit
        cpu = vmcb.cpu
        if cpu is None or cpu.vmsa_pfn != vmcb.vmsa_pfn:
            entry = self.platform.guest_code.get(vmcb.asid)
            if entry is None:
                vmcb.exit = VmExit(SVM_EXIT_SHUTDOWN)
                return vmcb.exit
            if cpu is not None:
                self.platform.retired_cpus.append(cpu)
            cpu = GuestCpu(self.platform, vmcb, entry, self.read_vmsa(vmcb))
        rmp = self.platform.rmp
        if vmcb.vmsa_pfn is not None:
            rmp.in_use.add(vmcb.vmsa_pfn)
        try:
            out = self.platform.world.enter_guest(cpu.ctx)
        except GuestContextDied:
            vmcb.exit = VmExit(SVM_EXIT_SHUTDOWN)
            out = vmcb.exit
        finally:
            if vmcb.vmsa_pfn is not None:
                rmp.in_use.discard(vmcb.vmsa_pfn)
        assert isinstance(out, VmExit)
        return out

    def snp_vmsa_check(self, vmcb: Vmcb) -> str:
        """The checks VMRUN makes on the VMSA page of an SNP-active guest: its RMP entry
        is Assigned, to the VMCB's ASID, with the VMSA bit set and Validated (KVM's
        INVALID_PAGE, all ones, is beyond the RMP and reads unassigned).  Returns ""
        when they pass, else what failed (VMRUN then fails with VMEXIT_INVALID).  A
        VMCB with ``vmsa_pfn`` None (a bare VMCB of the hardware tests) is not checked.

        Source: APM vol 2 15.36 (VMSA pages must be marked in the RMP by the firmware at
        launch or by RMPADJUST at VMPL0; a VMRUN on a page that is not a VMSA page of
        the guest fails) as restated in hardware-and-ghcb.md 3.4 and 7 (VMEXIT_INVALID
        -1).  Model choice (docs/model-choices.md): the list above, Validated included;
        the APM text itself is not among the references, and VMEXIT_BUSY (-2, a VMSA
        already in use on another CPU) cannot occur, as one guest context runs at a
        time."""
        pfn = vmcb.vmsa_pfn
        if pfn is None:
            return ""
        e = self.platform.rmp.lookup(pfn)
        if not e.assigned:
            return "VMSA page not assigned"
        if e.asid != vmcb.asid:
            return "VMSA page of another ASID"
        if not e.vmsa:
            return "RMP VMSA bit clear"
        if not e.validated:
            return "VMSA page not validated"
        return ""

    def read_vmsa(self, vmcb: Vmcb) -> dict[str, int]:
        """The scalar fields of ``vmcb``'s VMSA page (:data:`snpsim.spec.vmsa.VMSA_FIELDS`)
        as VMRUN loads them: decrypted with the guest's key for an SEV-ES/SNP guest.
        Empty when the VMCB has no VMSA page.  Model-only helper of :meth:`vmrun`."""
        if vmcb.vmsa_pfn is None or not vmcb.sev_es:
            return {}
        raw = self.platform.mem.read_enc(vmcb.vmsa_pfn << PAGE_SHIFT, PAGE_SIZE, vmcb.asid)
        return {name: int.from_bytes(raw[f.offset:f.offset + f.size], "little")
                for name, f in VMSA_FIELDS.items()}

    # -- RMP instructions ------------------------------------------------------------------------------
    @traced("cpu", name="RMPUPDATE")
    def rmpupdate(self, spa: int, state: RmpState) -> int:
        """RMPUPDATE (see :meth:`snpsim.hw.rmp.Rmp.rmpupdate`): returns the EAX code."""
        self._assert_ctx()
        self.platform.count("RMPUPDATE")
        return self.platform.rmp.rmpupdate(spa, state)

    @traced("cpu", name="PSMASH")
    def psmash(self, spa: int) -> int:
        """PSMASH (see :meth:`snpsim.hw.rmp.Rmp.psmash`): returns the EAX code."""
        self._assert_ctx()
        self.platform.count("PSMASH")
        return self.platform.rmp.psmash(spa)

    def rmp_set_page_state(self, spa: int, owner: str, *, asid: int = 0, gpa: int = 0,
                           validated: bool = False) -> None:
        """Model-only: the page at ``spa`` starts in the RMP state ``owner`` left it in
        (:meth:`snpsim.hw.rmp.Rmp.set_page_state`: ``"firmware"``, ``"guest"`` of
        ``asid``, ``"hv-fixed"``, ``"hypervisor"``).  Not an instruction: the host's
        history before the run (host SNP initialisation, another VM)."""
        self.platform.rmp.set_page_state(spa >> PAGE_SHIFT, owner, asid=asid, gpa=gpa,
                                         validated=validated)

    # -- the MSRs and CPUID leaf of RMP placement (host initialisation) -------------------------
    def rdmsr(self, msr: int) -> int:
        """RDMSR of the RMP placement MSRs and SYSCFG: RMP_BASE, RMP_END, RMP_CFG (the
        BIOS's values, :class:`snpsim.hw.rmp.RmpConfig`; without a placement RMP_BASE /
        RMP_END read 0) and SYSCFG (only SNP_EN is modelled).  Any other MSR reads 0
        (model choice: the host reads no other MSR)."""
        self._assert_ctx()
        cfg = self.platform.rmp_config
        if msr == MSR_AMD64_SYSCFG:
            return self.platform.syscfg
        if cfg is None:
            return 0
        return {MSR_AMD64_RMP_BASE: cfg.rmp_base, MSR_AMD64_RMP_END: cfg.rmp_end,
                MSR_AMD64_RMP_CFG: cfg.rmp_cfg}.get(msr, 0)

    def wrmsr(self, msr: int, value: int) -> None:
        """WRMSR of SYSCFG (the SNP_EN bit, which stays set once set: APM vol 2 15.36.2
        as Linux relies on it in ``snp_rmptable_init``); other MSRs are ignored."""
        self._assert_ctx()
        if msr == MSR_AMD64_SYSCFG:
            self.platform.syscfg = value | (self.platform.syscfg & MSR_AMD64_SYSCFG_SNP_EN)

    def cpuid(self, leaf: int) -> tuple[int, int, int, int]:
        """CPUID (EAX, EBX, ECX, EDX) of leaf 0x80000025 (RMP segment shift bounds in EAX,
        the segment-table limit in EBX with bit 10 set); other leaves read zeros."""
        self._assert_ctx()
        cfg = self.platform.rmp_config
        if leaf != CPUID_FN_RMP_SEGMENTS or cfg is None:
            return 0, 0, 0, 0
        eax = (cfg.segment_shift_min & 0x3F) | (cfg.segment_shift_max & 0x3F) << 6
        ebx = 0 if cfg.rst_limit is None else (1 << 10) | (cfg.rst_limit & 0x3FF)
        return eax, ebx, 0, 0

    def rmp_clear(self) -> bool:
        """The host's memset of the RMP memory (bookkeeping and entries) before SNP is
        enabled: every entry reads zero afterwards.  Refused (returns False, nothing
        changes) once SYSCFG.SNP_EN is set -- Linux checks this first, as the hardware
        then protects the table (``clear_rmp``, arch/x86/virt/svm/sev.c)."""
        self._assert_ctx()
        if self.platform.syscfg & MSR_AMD64_SYSCFG_SNP_EN:
            return False
        self.platform.rmp.reset()
        return True

    def rmpread(self, spa: int) -> tuple[int, RmpEntry | None]:
        """RMPREAD (see :meth:`snpsim.hw.rmp.Rmp.rmpread`): (EAX code, entry or None)."""
        self._assert_ctx()
        return self.platform.rmp.rmpread(spa)

    def rmpread_range(self, spa: int, npages: int) -> tuple[int, Any]:
        """Model-only bulk RMPREAD of the ``npages`` 4 KiB pages from ``spa``: what a loop
        of :meth:`rmpread` over them gives, as ``(0, records)`` with one
        :data:`snpsim.hw.rmp.RMP_LOOKUP_DTYPE` record per page (the caller must ignore
        ``validated`` and ``perms``, as for RMPREAD), or ``(FAIL_INPUT 1, None)`` when a
        page is beyond RMP coverage.  Counts ``npages`` RMPREADs, as the loop would (up
        to the uncovered page on failure).
        """
        self._assert_ctx()
        rmp = self.platform.rmp
        pfn = spa >> PAGE_SHIFT
        ok = 0
        while ok < npages:
            inside, k = rmp.covered_run(pfn + ok, npages - ok)
            if not inside:
                rmp.counters["RMPREAD"] = rmp.counters.get("RMPREAD", 0) + ok + 1
                return RMPREAD_FAIL_INPUT, None
            ok += k
        rmp.counters["RMPREAD"] = rmp.counters.get("RMPREAD", 0) + npages
        return 0, rmp.lookup_range(pfn, npages)

    # -- memory by SPA ------------------------------------------------------------------------------------
    def read(self, spa: int, n: int) -> bytes:
        """Host read of ``n`` bytes at ``spa``: not RMP-checked, returns DRAM contents
        (ciphertext for pages a guest wrote privately)."""
        self._assert_ctx()
        return self.platform.mem.read_raw(spa, n)

    def write(self, spa: int, data: bytes) -> None:
        """Host write at ``spa``: every page touched must be hypervisor-owned in the RMP,
        else raises :class:`HostPageFault` (X86_PF_WRITE | X86_PF_RMP) and nothing is
        written."""
        self._assert_ctx()
        rmp = self.platform.rmp
        first, last = spa >> PAGE_SHIFT, (spa + max(len(data), 1) - 1) >> PAGE_SHIFT
        for pfn in range(first, last + 1):
            if rmp.lookup(pfn).assigned and check_enabled("rmp:hypervisor-owned"):
                raise HostPageFault(pfn << PAGE_SHIFT, int(X86_PF_WRITE | X86_PF_RMP),
                                    "host write to a page not owned by the hypervisor")
        self.platform.mem.write_raw(spa, data)

    def zero_page(self, spa: int) -> None:
        """Model-only: forget a page's contents (a freshly allocated page reads zeros)."""
        self.platform.mem.discard(spa & ~(PAGE_SIZE - 1), PAGE_SIZE)

    def zero_pages(self, spa: int, npages: int) -> None:
        """Model-only: :meth:`zero_page` of the ``npages`` pages from ``spa`` in one call
        (a freshly allocated folio); costs O(min(npages, pages stored))."""
        self.platform.mem.discard(spa & ~(PAGE_SIZE - 1), npages * PAGE_SIZE)

    # -- NPT ----------------------------------------------------------------------------------------------
    def npt_create(self) -> Npt:
        """A new, empty nested page table."""
        return Npt()

    def npt_map(self, npt: Npt, gfn: int, pfn: int, level: int = PG_LEVEL_4K, writable: bool = True) -> None:
        """Install an NPT leaf GFN -> PFN (level PG_LEVEL_4K or PG_LEVEL_2M)."""
        self._assert_ctx()
        npt.map(gfn, pfn, level, writable)

    def npt_unmap(self, npt: Npt, gfn_start: int, gfn_end: int) -> int:
        """Zap NPT leaves overlapping ``[gfn_start, gfn_end)``; returns how many."""
        self._assert_ctx()
        return npt.unmap(gfn_start, gfn_end)

    def npt_lookup(self, npt: Npt, gfn: int) -> NptEntry | None:
        """The NPT leaf for ``gfn``, or None."""
        return npt.lookup(gfn)

    # -- vCPUs ---------------------------------------------------------------------------------------------
    def new_vmcb(self, vcpu_id: int, asid: int, npt: Npt, *, vmsa_pfn: int | None = None,
                 sev_es: bool = True, sev_status: int = 0, snp_active: bool = True,
                 sev_enable: bool = True) -> Vmcb:
        """A VMCB for vCPU ``vcpu_id`` of the guest with ``asid`` and nested page table
        ``npt``; ``sev_status`` is what the guest reads from MSR 0xC0010131;
        ``snp_active`` False for an SEV or SEV-ES guest (no RMP checks on its accesses
        beyond Hypervisor-Owned on writes, no PVALIDATE/RMPADJUST); ``sev_enable`` False
        for a guest without SEV (nothing encrypted)."""
        return Vmcb(vcpu_id, asid, npt, vmsa_pfn=vmsa_pfn, sev_es=sev_es, sev_status=sev_status,
                    snp_active=snp_active, sev_enable=sev_enable)

    def yield_point(self) -> None:
        """Let the scheduler run another host thread (model-only).  ``thread_changes``
        counts the times a different host thread than the last one reached a yield point
        (before or after yielding), so a thread that yields and finds the count unchanged
        knows no other thread ran meanwhile (``vcpu_block``'s progress check)."""
        self._note_thread()
        self.platform.world.yield_point()
        self._note_thread()

    def _note_thread(self) -> None:
        me = getcurrent()
        if me is not self._last_thread:
            self._last_thread = me
            self.thread_changes += 1

    @property
    def firmware(self):  # noqa: ANN201 - SnpFirmware, imported lazily
        """The SNP firmware (AMD-SP) command interface."""
        return self.platform.firmware

    @property
    def cbit(self) -> int:
        """The C-bit position (CPUID 0x8000001F EBX[5:0])."""
        return self.platform.cbit

