# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""CPA details of issue 5 item 1 through the full system: the stale translation a
missing ``cpa_flush`` leaves, the cache flush when the CPU lacks SME_COHERENT, and the
vmalloc alias (linux-guest.md 2.3 item 6, 2.4, 3.3)."""

from snpsim.guest.kernel import __va
from snpsim.guest.set_memory import lookup_address, set_memory_decrypted, set_memory_encrypted
from snpsim.guest.unaccepted_memory import accept_memory
from snpsim.guest.vmalloc import is_vmalloc_addr, vmap
from snpsim.system import SnpSystem
from snpsim.trace.events import Enter
from snpsim.trace.record import Recorder, tracing

MiB = 1 << 20
CBIT = 51
PAYLOAD = b"shared payload"


def stale_tlb_workload(st):
    def wl(kernel, cpu):
        gpa = kernel.page_alloc.alloc_page()
        va = __va(kernel, gpa)
        st["gpa"] = gpa
        # a first round trip splits the 2M direct-map leaf: the page has its own 4K PTE
        set_memory_decrypted(kernel, va, 1)
        set_memory_encrypted(kernel, va, 1)
        cpu.write(va, b"private")  # the TLB now holds the C=1 translation
        set_memory_decrypted(kernel, va, 1)
        kpte, _ = lookup_address(kernel, va)
        st["pte_c"] = cpu.read_u64(kpte) >> CBIT & 1
        t = cpu.tlb.get(va)
        st["tlb_c"] = None if t is None else t.c_bit
        cpu.write(va, PAYLOAD)
        return cpu.read(va, len(PAYLOAD))
    return wl


def test_cpa_flush_drops_the_old_translation():
    st = {}
    s = SnpSystem(memory=64 * MiB)
    out = s.run(stale_tlb_workload(st))
    assert out.completed, out.describe()
    assert st["pte_c"] == 0 and st["tlb_c"] is None
    assert s.page_state(st["gpa"]).host_read.startswith(PAYLOAD)


def test_no_cpa_flush_variant_uses_the_stale_c_bit():
    st = {}
    s = SnpSystem(memory=64 * MiB, variant="no-cpa-flush")
    out = s.run(stale_tlb_workload(st))
    # the PTE says shared, the TLB still says C=1 ...
    assert st["pte_c"] == 0 and st["tlb_c"] is True
    # ... and the write uses it: a private access to the now-shared page, which is
    # implicitly converted back to private but not validated -> #VC 0x404 -> (0, 0)
    assert out.termination == (0, 0, "exc_vmm_communication")
    assert "Unsupported exit-code 0x404 in #VC exception" in s.kernel.warnings


def clflushes(sme_coherent, pages):
    res = SnpSystem(memory=64 * MiB, sme_coherent=sme_coherent).trace_conversion(
        "set_memory_decrypted", pages)
    assert res.completed, res.outcome
    flushes = [e.args["cache"] for e in res.events
               if isinstance(e, Enter) and e.name == "cpa_flush"]
    return res.run.counters.get("CLFLUSH", 0), flushes


def test_cache_flush_only_without_sme_coherent():
    pages = 4
    coherent, f1 = clflushes(True, pages)
    non_coherent, f2 = clflushes(False, pages)
    # pre-flush with cache = !SME_COHERENT, post-flush TLB only (linux-guest.md 2.2 steps 4, 7)
    assert [bool(c) for c in f1] == [False, False]
    assert [bool(c) for c in f2] == [True, False]
    # one CLFLUSH per 64-byte line of each present page: 4 pages x 4096 / 64
    assert non_coherent - coherent == pages * 4096 // 64


def test_vmalloc_range_gets_4k_entries_and_its_direct_map_alias_changes_too():
    st = {}

    def wl(kernel, cpu):
        unit = 40 * MiB
        accept_memory(kernel, unit, 2 * MiB)
        gpas = [unit + i * 4096 for i in range(512)][::-1]  # not in physical order
        va = vmap(kernel, gpas, align=2 * MiB)
        st["va"], st["gpas"] = va, gpas
        cpu.write(va, b"private")
        st["ret"] = set_memory_decrypted(kernel, va, 512)
        cpu.write(va, PAYLOAD)

    s = SnpSystem(memory=64 * MiB)
    rec = Recorder(filter=lambda e: isinstance(e, Enter) and e.name in ("pvalidate", "vmgexit_psc"))
    with tracing(rec):
        out = s.run(wl)
    assert out.completed, out.describe()
    va, gpas = st["va"], st["gpas"]
    assert is_vmalloc_addr(va) and va % (2 * MiB) == 0 and st["ret"] == 0
    # 2 MiB-aligned and 2 MiB long, but vmalloc: 512 4K entries (8 PSC calls of 64), each
    # rescinded through the direct-map address of its PFN
    dm = [int(__va(s.kernel, g)) for g in gpas]
    dms = set(dm)
    pv = [(e.args["vaddr"], e.args["rmp_psize"]) for e in rec.events
          if isinstance(e, Enter) and e.name == "pvalidate" and not e.args["validate"]
          and e.args["vaddr"] in dms]
    assert pv == [(a, 0) for a in dm]
    enters = [e for e in rec.events if isinstance(e, Enter)]
    first_rescind = next(i for i, e in enumerate(enters) if e.name == "pvalidate"
                         and not e.args["validate"] and e.args["vaddr"] in dms)
    assert sum(1 for e in enters[first_rescind:] if e.name == "vmgexit_psc") == 512 // 64
    # both mappings shared: the vmalloc PTE and the direct-map alias
    first = s.page_state(gpas[0], vaddr=va)
    assert first.pte_c_bit is False
    assert s.page_state(gpas[0]).pte_c_bit is False
    assert not first.rmp["assigned"] and first.host_read.startswith(PAYLOAD)
