# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``GuestCpu.touch_pages`` (the loads of Linux ``sev_evict_cache``, asm/sev.h
7b306dfa326f: the first and last byte of each 4 KiB page) against the per-access
reference: one-byte ``read``s in address order.  Same #NPF exits, same #VC, same
TLB, RMP and counters, same trace events; and the RMP range check
``Rmp.private_read_run`` against ``check_rmp_guest_access`` page by page."""

from hw_machine import ASID, DATA_GPA, GVA, assign, build, platform, run, spa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from snpsim.hw.faults import HardwareFault
from snpsim.hw.npt import check_rmp_guest_access
from snpsim.spec.exit_codes import SVM_EXIT_NPF
from snpsim.spec.pgtable_types import PG_LEVEL_2M, PG_LEVEL_4K
from snpsim.spec.rmp import RMP_PERM_ALL, RmpPerm, RmpState
from snpsim.trace.record import Recorder, tracing

OFFSETS = (0, 4095)
# per-page RMP states drawn by the tests
STATES = ("ok", "unassigned", "not-validated", "other-asid", "wrong-gpa", "immutable",
          "no-read", "unmapped", "remapped")
REMAP_GPA = 0x800000  # "remapped": the NPT maps page i to the (unassigned) frame of this GPA + 4K * i

page_states = st.lists(st.sampled_from(STATES), min_size=1, max_size=24)


#: A second view of the data range through one 2 MiB guest leaf (PD entry 2, C=1).
GVA_2M = GVA + (2 << 20)


def add_2m_guest_leaf(p) -> None:
    from hw_machine import PT_GPA, C

    pde = DATA_GPA | C | 0x83  # present, writable, PSE
    p.mem.write_enc(spa(PT_GPA + 0x2000) + 2 * 8, pde.to_bytes(8, "little"), ASID)


def setup(p, *, states, first, rmp_2m, npt_2m, c0_pages):
    """Data pages ``first + i`` get ``states[i]``; ``rmp_2m``: one 2 MiB RMP entry
    instead (states ignored but ``unmapped``); ``c0_pages``: PTEs with C=0."""
    ptes = {first + i: (DATA_GPA + (first + i) * 4096, False, False) for i in c0_pages}
    npt = build(p, ptes=ptes, npt_data="2M" if npt_2m else "4K")
    add_2m_guest_leaf(p)
    if rmp_2m:
        assign(p, DATA_GPA, size=1)
        return npt
    for i, s in enumerate(states):
        gpa = DATA_GPA + (first + i) * 4096
        if s == "unmapped":
            if not npt_2m:
                npt.unmap(gpa >> 12, (gpa >> 12) + 1)
            continue
        if s == "remapped":  # the next frame is a valid page, but the NPT maps another
            assign(p, gpa)
            if not npt_2m:
                other = spa(REMAP_GPA) + (first + i) * 4096
                npt.unmap(gpa >> 12, (gpa >> 12) + 1)
                npt.map(gpa >> 12, other >> 12)
            continue
        if s == "unassigned":
            continue
        assign(p, gpa, validated=s != "not-validated", asid=ASID + (s == "other-asid"),
               immutable=int(s == "immutable"), rmp_gpa=gpa + 4096 if s == "wrong-gpa" else None)
        if s == "no-read":
            p.rmp.set_perms(spa(gpa) >> 12, 0, int(RmpPerm.WRITE))
    return npt


def host_fix(p, npt):
    """The host's answer to a #NPF: make the faulting page a mapped, private,
    validated 4 KiB page with every permission (an immutable page stays faulting)."""

    def on_exit(ex):
        if ex.exit_code != SVM_EXIT_NPF:
            return
        gfn = ex.exit_info_2 >> 12
        ent = npt.lookup(gfn)
        if ent is not None and ent.level == PG_LEVEL_2M:
            base = gfn & ~511
            npt.unmap(base, base + 512)
            for g in range(base, base + 512):
                npt.map(g, (spa(0) >> 12) + g)
            return
        if ent is None:
            npt.map(gfn, (spa(0) >> 12) + gfn)
            return
        pfn = ent.pfn
        if p.rmp.head_2m(pfn) is not None:
            assert p.rmp.psmash((pfn & ~511) << 12) == 0
            return
        if p.rmp.rmpupdate(pfn << 12, RmpState(gfn << 12, 1, 0, 0, 0, ASID)):
            return  # immutable: the fault repeats until the exit budget runs out
        p.rmp.set_validated(pfn, True)
        for v in range(4):
            p.rmp.set_perms(pfn, v, int(RMP_PERM_ALL))

    return on_exit


def outcome(p, npt, body, traced):
    rec = Recorder()
    if traced:
        with tracing(rec, clock=lambda: 0):
            ret, exits, faults = run(p, npt, body, on_exit=host_fix(p, npt), max_exits=120)
    else:
        ret, exits, faults = run(p, npt, body, on_exit=host_fix(p, npt), max_exits=120)
    rmp = [p.rmp.entry(spa(DATA_GPA) + i * 4096 >> 12) for i in range(512)]
    return (ret, exits, [(type(f).__name__, f.error_code, getattr(f, "cr2", None))
                         for f in faults],
            rmp, dict(p.counters), dict(p.rmp.counters), rec.events,
            [npt.lookup((DATA_GPA >> 12) + i) for i in range(512)])


@settings(max_examples=150, deadline=None)
@given(states=page_states, first=st.integers(0, 487), rmp_2m=st.booleans(),
       npt_2m=st.booleans(), c0=st.sets(st.integers(0, 23), max_size=3),
       warm=st.sets(st.integers(0, 23), max_size=24), traced=st.booleans(),
       big_leaf=st.booleans())
@example(states=["ok", "remapped", "ok"], first=0, rmp_2m=False, npt_2m=False, c0=set(),
         warm={0}, traced=False, big_leaf=True)  # a run of 4K NPT leaves ends at a gap
@example(states=["ok"] * 5 + ["not-validated", "ok"], first=509, rmp_2m=False, npt_2m=True,
         c0={2}, warm=set(), traced=True, big_leaf=True)  # #VC mid-run, a 2M boundary
def test_touch_pages_equals_one_byte_reads_in_order(states, first, rmp_2m, npt_2m, c0,
                                                     warm, traced, big_leaf):
    n = len(states)
    c0_pages = {i for i in c0 if i < n}
    va = (GVA_2M if big_leaf else GVA) + first * 4096

    def ref_body(cpu):
        for i in sorted(warm):  # TLB fills only (no data access): the fast path's hits
            cpu.translate(va + i * 4096)
        for i in range(n):
            for off in OFFSETS:
                cpu.read(va + i * 4096 + off, 1)
        return len(cpu.tlb)

    def fast_body(cpu):
        for i in sorted(warm):
            cpu.translate(va + i * 4096)
        cpu.touch_pages(va, n, OFFSETS)
        return len(cpu.tlb)

    results = []
    for body in (ref_body, fast_body):
        p = platform()
        npt = setup(p, states=states, first=first, rmp_2m=rmp_2m, npt_2m=npt_2m,
                    c0_pages=c0_pages)
        results.append(outcome(p, npt, body, traced))
    assert results[0] == results[1]


def test_touch_pages_of_validated_pages_is_silent_and_unaligned_input_goes_page_by_page():
    p = platform()
    npt = build(p, npt_data="2M")
    assign(p, DATA_GPA, size=1)
    ret, exits, faults = run(p, npt, lambda cpu: cpu.touch_pages(GVA, 512, OFFSETS))
    assert len(exits) == 1 and not faults and p.counters.get("#NPF", 0) == 0
    # unaligned GVA: per access, first byte in page 0 then byte 4095 of the range (page 1)
    ret, exits, faults = run(p, npt, lambda cpu: cpu.touch_pages(GVA + 8, 2, OFFSETS))
    assert not faults and p.mem.pages_stored() == 4  # only the page tables were written


@settings(max_examples=80, deadline=None)
@given(states=page_states, first=st.integers(0, 487), rmp_2m=st.booleans(),
       npt_2m=st.booleans(), vmpl=st.integers(0, 1))
def test_private_read_run_equals_the_per_page_checks(states, first, rmp_2m, npt_2m, vmpl):
    p = platform()
    setup(p, states=states, first=first, rmp_2m=rmp_2m, npt_2m=npt_2m, c0_pages=set())
    level = PG_LEVEL_2M if npt_2m else PG_LEVEL_4K
    gpa0 = DATA_GPA + first * 4096
    want = 0
    for i in range(len(states)):
        try:
            check_rmp_guest_access(p.rmp, pfn=spa(gpa0) + i * 4096 >> 12, gpa=gpa0 + i * 4096,
                                   gva=0, asid=ASID, npt_level=level, c_bit=True, write=False,
                                   vmpl=vmpl)
        except HardwareFault:
            break
        want += 1
    got = p.rmp.private_read_run(spa(gpa0) >> 12, gpa0, len(states), asid=ASID,
                                 pagesize=int(npt_2m), vmpl=vmpl)
    assert got == want
