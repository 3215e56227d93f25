# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``sev_evict_cache`` as one range operation (``touch_pages``) against the per-page
reference ``sev_evict_cache_per_page`` (two one-byte C=1 reads per 4 KiB page, the
loop of asm/sev.h in 7b306dfa326f), through the whole system: memory acceptance and
private -> shared -> private conversions over drawn sizes, alignments, PSC page sizes,
guest_memfd folio sizes and KVM profiles, traced.  Outcome, platform and RMP counters,
the RMP and the trace must be identical."""

from hypothesis import given, settings
from hypothesis import strategies as st

from snpsim.guest import sev_core, sev_startup
from snpsim.guest.kernel import PROFILES as KERNEL_PROFILES
from snpsim.guest.kernel import __va
from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
from snpsim.guest.sev_startup import sev_evict_cache_per_page
from snpsim.guest.unaccepted_memory import accept_memory
from snpsim.kvm.profiles import KVM_PROFILES
from snpsim.system import SnpSystem
from snpsim.trace.record import Recorder, traced, tracing

MiB = 1 << 20
PAGE = 4096


@traced("guest", name="sev_evict_cache")
def _reference(kernel, va: int, npages: int) -> None:
    """The per-page reference, traced under the kernel's name so that traces compare."""
    sev_evict_cache_per_page(kernel, va, npages)


def _run(*, reference: bool, kvm: str, psc_2m: bool, gmem_2m: bool, start: int, npages: int,
         convert: bool) -> tuple:
    kernel = KERNEL_PROFILES["6.17"]
    if not psc_2m:
        kernel = kernel.derive("6.17+4K-psc", knobs={"psc_2m_entries": False})
    kvm_p = KVM_PROFILES[kvm]
    if gmem_2m:
        kvm_p = kvm_p.derive(f"{kvm}+gmem-2M", knobs={"gmem_max_order": 9})
    s = SnpSystem(memory=64 * MiB, vcpus=1, kernel="6.17", kvm=kvm_p, profile=kernel)

    def workload(k, cpu):
        gpa = 32 * MiB + start * PAGE
        accept_memory(k, gpa, npages * PAGE)
        if convert:
            va = __va(k, gpa)
            return (set_memory_decrypted(k, va, npages), set_memory_encrypted(k, va, npages))
        return None

    saved = sev_core.sev_evict_cache, sev_startup.sev_evict_cache
    if reference:
        sev_core.sev_evict_cache = sev_startup.sev_evict_cache = _reference
    try:
        with tracing(Recorder(), clock=lambda: 0) as rec:
            out = s.run(workload)
    finally:
        sev_core.sev_evict_cache, sev_startup.sev_evict_cache = saved
    rmp = s.platform.rmp
    return (out.describe(), out.completed, dict(s.platform.counters), dict(rmp.counters),
            sorted(rmp.assigned_pfns()), s.platform.mem.pages_stored(), rec.events)


@settings(max_examples=5, deadline=None)
@given(kvm=st.sampled_from(sorted(KVM_PROFILES)), psc_2m=st.booleans(), gmem_2m=st.booleans(),
       start=st.integers(0, 1023), npages=st.integers(1, 1100), convert=st.booleans())
def test_sev_evict_cache_range_equals_per_page_reads(kvm, psc_2m, gmem_2m, start, npages,
                                                      convert):
    kw = dict(kvm=kvm, psc_2m=psc_2m, gmem_2m=gmem_2m, start=start, npages=npages,
              convert=convert)
    ref = _run(reference=True, **kw)
    fast = _run(reference=False, **kw)
    assert ref[1], ref[0]
    assert ref[:6] == fast[:6]
    assert ref[6] == fast[6]
    assert any(e.name == "sev_evict_cache" for e in fast[6] if hasattr(e, "name"))
