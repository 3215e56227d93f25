# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Differential property: QEMU 10.1's pre-fault after a conversion (one
KVM_PRE_FAULT_MEMORY over the converted range) ends a private -> shared -> private cycle
in exactly the state that QEMU 9.1's per-page faults reach (every page's RMP entry,
attribute and guest PTE, the host allocator's use), with the same
instruction counts except the #NPF exits it saves; and the host allocator's batched
free of a madvise (``free_pfns``) equals freeing page by page.  Over sizes, alignments,
page sizes (2M PSC entries and 2 MiB folios or not), kernel and KVM profiles.

Which PFN backs which page may differ (the pre-fault allocates in GPA order, the faults
in the order the guest validates), so what a never-written private page reads (the
decryption of a zeroed page under its SPA tweak) is not compared."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snpsim.guest.kernel import __va
from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
from snpsim.guest.unaccepted_memory import accept_memory
from snpsim.kvm.profiles import KVM_PROFILES
from snpsim.system import SnpSystem

MIB = 1 << 20
BASE = 40 * MIB


def _cycle(qemu: str, kernel: str, kvm: str, order: int, first: int, pages: int) -> dict:
    prof = KVM_PROFILES[kvm].derive(f"{kvm}+order{order}", knobs={"gmem_max_order": order})
    system = SnpSystem(memory=64 * MIB, kernel=kernel, kvm=prof, qemu=qemu)
    gpa = BASE + first * 4096
    out: dict = {}

    def workload(k, cpu):
        accept_memory(k, BASE, 8 * MIB)
        c = system.platform.counters
        before = dict(c)
        va = __va(k, gpa)
        out["ret"] = (set_memory_decrypted(k, va, pages), set_memory_encrypted(k, va, pages))
        out["counts"] = {n: c.get(n, 0) - before.get(n, 0) for n in c if n != "#NPF"}
        out["npf"] = c.get("#NPF", 0) - before.get("#NPF", 0)
        out["in_use"] = system.kvm.allocator.nr_allocated

    outcome = system.run(workload)
    assert outcome.completed, outcome.describe()
    out["states"] = [
        (s.rmp, s.attribute_private, s.pte_c_bit)
        for s in (system.page_state(gpa + i * 4096) for i in range(pages))
    ]
    return out


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pages=st.sampled_from([1, 3, 64, 515]),
    first=st.sampled_from([0, 1, 511]),
    kernel=st.sampled_from(["6.17", "6.4"]),
    kvm=st.sampled_from(sorted(KVM_PROFILES)),
    order=st.sampled_from([0, 9]),
)
def test_pre_fault_reaches_the_per_page_state(pages, first, kernel, kvm, order):
    new = _cycle("10.1", kernel, kvm, order, first, pages)
    old = _cycle("9.1", kernel, kvm, order, first, pages)
    assert new["ret"] == old["ret"] == (0, 0)
    assert new["states"] == old["states"]
    assert new["counts"] == old["counts"]
    assert new["in_use"] == old["in_use"]
    assert new["npf"] <= old["npf"]


class _NullHost:
    def zero_page(self, spa):
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=80, unique=True),
       st.lists(st.integers(0, 300), max_size=5))
def test_batched_free_equals_page_by_page(take, leaks):
    from snpsim.kvm.host_mm import PageAllocator

    def build():
        a = PageAllocator(_NullHost())
        got = [a.alloc_page() for _ in range(301)]
        for i in leaks:
            a.leak_page(got[i])
        return a, got

    a1, got = build()
    a2, _ = build()
    pfns = [got[i] for i in take]
    a1.free_pfns(np.array(pfns, dtype=np.int64))
    for p in pfns:
        a2.free_page(p)
    assert a1.nr_allocated == a2.nr_allocated
    assert (a1._free._starts, a1._free._ends) == (a2._free._starts, a2._free._ends)
    assert a1.leaked == a2.leaked
    # the next allocations come out in the same order
    assert [a1.alloc_page() for _ in range(90)] == [a2.alloc_page() for _ in range(90)]
