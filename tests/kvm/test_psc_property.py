# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 6 property: for any PSC buffer (generated header and entries, any scratch
offset) KVM's answer is one of the defined ones (kvm-qemu-host.md 2.3, 3.1-3.6), the run
ends normally, and in the hardened profile (7.0.12, 2.3b/3.6) no read of the scratch goes
past the end of the GHCB shared buffer (GHCB offset 0xFF0)."""

from fakeguest import GHCB_GPA, ghcb_call, make
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from snpsim.spec import ghcb as G
from snpsim.spec.exit_codes import SVM_VMGEXIT_PSC
from snpsim.spec.psc import (
    VMGEXIT_PSC_ERROR_GENERIC,
    VMGEXIT_PSC_ERROR_INVALID_ENTRY,
    VMGEXIT_PSC_ERROR_INVALID_HDR,
    PscEntry,
)
from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE

DEFINED = {(0, 0), (0, VMGEXIT_PSC_ERROR_GENERIC), (0, VMGEXIT_PSC_ERROR_INVALID_HDR),
           (0, VMGEXIT_PSC_ERROR_INVALID_ENTRY),
           (2, 3)}  # GHCB_ERR_INVALID_SCRATCH_AREA
SHARED_END = 0xFF0
# QEMU reports a failed conversion through hypercall.ret (instead of stopping the VM) so
# every buffer gets an answer; GFNs stay in RAM (16 MiB) above the fake guest's pages.
QEMU = DEFAULT_QEMU_PROFILE.derive("ret-written", knobs={"write_hypercall_ret": True})

entries = st.builds(
    PscEntry,
    cur_page=st.one_of(st.sampled_from([0, 1, 0x10, 0x1FF, 0x200, 0x201]), st.integers(0, 0xFFF)),
    gfn=st.one_of(st.sampled_from([0x100, 0x101, 0x200, 0x400, 0xE00]), st.integers(0x100, 0xFFF),
                  st.integers(0, (1 << 40) - 1)),
    operation=st.one_of(st.sampled_from([1, 2]), st.integers(0, 15)),
    pagesize=st.integers(0, 1),
    reserved=st.one_of(st.just(0), st.integers(0, 0x7F)),
)
scratch_offsets = st.one_of(
    st.sampled_from([0x800, 0x808, 0xFE8, 0xFE0, 0xFF0, 0x7F8, 0]),
    st.integers(0, 0xFFF),
    st.integers(0x1000, 0x3000),  # outside the GHCB page
)


def psc_answer(profile, off, cur, end, hdr_reserved, ents):
    raw = (cur.to_bytes(2, "little") + end.to_bytes(2, "little")
           + hdr_reserved.to_bytes(4, "little") + b"".join(e.encode_bytes() for e in ents))
    res = {}

    def body(cpu):
        in_page = 0x800 <= off < 0xFF0
        shared = bytes(off - 0x800) + raw if in_page else None
        g = ghcb_call(cpu, SVM_VMGEXIT_PSC, fields={"sw_scratch": GHCB_GPA + off},
                      shared_buf=shared[: 0x7F0] if shared else None)
        res["info"] = (G.ghcb_get(g, "sw_exit_info_1"), G.ghcb_get(g, "sw_exit_info_2"))

    _p, kvm, m = make(body, kvm_profile=profile, qemu_profile=QEMU)
    r = m.run()
    sa = kvm.vm(m.s.vmfd).vcpus[0].sev_es.ghcb_sa
    if r.result != "completed":
        # the only other defined end: v6.17 with a scratch outside the GHCB copies
        # exit_info_2 (here 0) bytes and indexes past them -> host oops, KVM_RUN -EFAULT
        assert r.result == "internal-error" and kvm.oopses, r
        assert "error: kvm run failed Bad address" in r.errors
        return None, sa
    return res["info"], sa


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(off=scratch_offsets, cur=st.integers(0, 0xFFFF) | st.integers(0, 4),
       end=st.integers(0, 0xFFFF) | st.integers(0, 6), hdr_reserved=st.integers(0, 2**32 - 1),
       ents=st.lists(entries, max_size=6))
def test_hardened_psc_answer_is_defined_and_reads_stay_in_the_shared_buffer(
        off, cur, end, hdr_reserved, ents):
    info, sa = psc_answer("v7.0.12", off, cur, end, hdr_reserved, ents)
    assert info in DEFINED  # (never an oops in the hardened profile)
    if sa is not None:
        assert sa.spa is not None  # GHCB v2: never a kernel copy of an outside scratch
        assert all(off + o + n <= SHARED_END for o, n in sa.reads), (hex(off), sa.reads)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(off=scratch_offsets, cur=st.integers(0, 4), end=st.integers(0, 6),
       ents=st.lists(entries, max_size=6))
@example(off=0xFE0, cur=0, end=3, ents=[PscEntry(cur_page=0, gfn=0x100, operation=1, pagesize=0,
                                                 reserved=0)])
def test_original_psc_answer_is_defined(off, cur, end, ents):
    """v6.17's answer is a defined one, except where the original code indexes the
    buffer past what the guest can own: a scratch outside the GHCB, or entries up to
    ``end_entry`` that run past the GHCB page's end (``setup_vmgexit_scratch`` checked a
    length of ``exit_info_2`` = 0; ``snp_begin_psc`` / ``__snp_complete_one_psc`` read and
    write ``entries[i].cur_page`` beyond it) -- there the host may touch the next page,
    and when that is a guest-private page its write is an RMP #PF (host oops)."""
    info, _sa = psc_answer("v6.17", off, cur, end, 0, ents)
    past_page = off + 8 + 8 * (end + 1) > 0x1000  # header 8 bytes, entries 8 bytes each
    assert info in DEFINED or (info is None and (not 0x800 <= off < 0xFF0 or past_page))
