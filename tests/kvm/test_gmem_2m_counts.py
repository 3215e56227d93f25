# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""One operation per 2 MiB where the real code does one, and no leak across a
private -> shared -> private cycle of a 2 MiB guest_memfd folio.

The counts come from the real code (torvalds/linux, v6.11 and later):

* ``virt/kvm/guest_memfd.c`` ``kvm_gmem_free_folio``: one
  ``kvm_arch_gmem_invalidate(pfn, pfn + (1 << folio_order))`` per freed folio, so one
  ``sev_gmem_invalidate`` over 512 PFNs for a 2 MiB folio;
* ``arch/x86/kvm/svm/sev.c`` ``sev_gmem_invalidate``: at a 2 MiB-aligned PFN whose RMP
  entry is 2M and with 512 PFNs left in the range, one ``rmp_make_shared(pfn,
  PG_LEVEL_2M)`` (one RMPUPDATE, no PSMASH) and the loop steps 512 PFNs;
* ``sev_gmem_prepare`` with ``max_order`` 9 and all 512 PFNs unassigned: one
  ``rmp_make_private(..., PG_LEVEL_2M, ...)``;
* the guest (``arch/x86/coco/sev/core.c``, 6.17 profile): one 2M PSC entry per 2 MiB
  (one VMGEXIT) and one 2M PVALIDATE;
* ``snp_begin_psc`` (arch/x86/kvm/svm/sev.c): a 2M entry is one KVM_HC_MAP_GPA_RANGE
  exit of 512 pages with ``KVM_MAP_GPA_RANGE_PAGE_SZ_2M``;
* the TDP MMU (``kvm_tdp_mmu_map``, arch/x86/kvm/mmu/tdp_mmu.c): a 2 MiB folio with a
  2M RMP entry and one attribute over the 2 MiB is one 2M leaf (one SPTE installed).
"""

from __future__ import annotations

from snpsim.guest.kernel import __va
from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
from snpsim.guest.unaccepted_memory import accept_memory
from snpsim.kvm import guest_memfd
from snpsim.kvm.profiles import DEFAULT_PROFILE
from snpsim.spec.kvm_uapi import KVM_MAP_GPA_RANGE_PAGE_SZ_2M
from snpsim.spec.pgtable_types import PG_LEVEL_2M
from snpsim.system import SnpSystem
from snpsim.trace.events import Instant
from snpsim.trace.record import Recorder, tracing

GPA = 48 << 20  # 2 MiB aligned, far from the launch image


def _cycle(gmem_max_order: int) -> dict:
    calls: list[tuple[int, int]] = []

    def counting_invalidate(kvm, start, end):
        calls.append((start, end))
        return guest_memfd.sev_gmem_invalidate(kvm, start, end)

    prof = DEFAULT_PROFILE.derive("count", knobs={"gmem_max_order": gmem_max_order},
                                  overrides={"sev_gmem_invalidate": counting_invalidate})
    system = SnpSystem(memory=64 << 20, kvm=prof)
    out: dict = {}

    def workload(k, cpu):
        accept_memory(k, GPA, 2 << 20)
        a, c = system.kvm.allocator, system.platform.counters
        before = dict(c)
        out["alloc_before"] = (a.nr_allocated, a.high_water, system.kvm.mm.bytes_used())
        calls.clear()
        with tracing(Recorder()) as rec:
            out["r_dec"] = set_memory_decrypted(k, __va(k, GPA), 512)
        out["dec_exits"] = [e.args for e in rec.events
                            if isinstance(e, Instant) and e.name == "KVM_EXIT_HYPERCALL"]
        mid = dict(c)
        out["invalidates"] = list(calls)
        with tracing(Recorder()) as rec:
            out["r_enc"] = set_memory_encrypted(k, __va(k, GPA), 512)
        out["enc_sptes"] = [e.args for e in rec.events
                            if isinstance(e, Instant) and e.name == "spte installed"]
        out["dec"] = {n: mid.get(n, 0) - before.get(n, 0) for n in ("RMPUPDATE", "PSMASH", "PVALIDATE", "VMGEXIT")}
        out["enc"] = {n: c.get(n, 0) - mid.get(n, 0) for n in ("RMPUPDATE", "PSMASH", "PVALIDATE", "VMGEXIT")}
        out["alloc_after"] = (a.nr_allocated, a.high_water, system.kvm.mm.bytes_used())

    outcome = system.run(workload)
    assert outcome.completed, outcome.describe()
    out["leaf"] = system.kvm.vm(system.machine.s.vmfd).npt.lookup(GPA >> 12)
    return out


def test_2m_folio_made_shared_is_one_invalidate_and_one_2m_rmpupdate():
    out = _cycle(9)
    assert (out["r_dec"], out["r_enc"]) == (0, 0)
    (start, end), = out["invalidates"]
    assert end - start == 512 and start % 512 == 0
    assert out["dec"] == {"RMPUPDATE": 1, "PSMASH": 0, "PVALIDATE": 1, "VMGEXIT": 1}
    # back to private: one 2M rmp_make_private from sev_gmem_prepare, one 2M PVALIDATE
    assert out["enc"] == {"RMPUPDATE": 1, "PSMASH": 0, "PVALIDATE": 1, "VMGEXIT": 1}


def test_2m_psc_entry_is_one_512_page_exit_and_one_2m_leaf():
    out = _cycle(9)
    exit_, = out["dec_exits"]
    assert exit_["gpa"] == GPA and exit_["npages"] == 512
    assert exit_["attrs"] & KVM_MAP_GPA_RANGE_PAGE_SZ_2M
    spte, = out["enc_sptes"]
    assert spte["gfn"] == GPA >> 12 and spte["private"] and spte["level"] == PG_LEVEL_2M
    assert out["leaf"] is not None and out["leaf"].level == PG_LEVEL_2M


def test_2m_cycle_leaves_the_allocator_and_host_memory_where_they_were():
    out = _cycle(9)
    assert out["alloc_after"] == out["alloc_before"]


def test_order_0_folios_are_one_invalidate_and_one_4k_rmpupdate_each():
    out = _cycle(0)
    assert len(out["invalidates"]) == 512
    assert all(e - s == 1 for s, e in out["invalidates"])
    assert out["dec"]["RMPUPDATE"] == 512 and out["dec"]["PSMASH"] == 0
    assert out["alloc_after"] == out["alloc_before"]
