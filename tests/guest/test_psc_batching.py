# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 5 "checked by" batching numbers (linux-guest.md 3.3, 11 item 2): 1000 pages
starting 4 KiB past a 2 MiB boundary -> 16 PSC calls (15 x 64 + 40) with
VMGEXIT_PSC_MAX_ENTRY 64, 4 calls with the 253-entry profile; a 2 MiB-aligned 1 GiB
range -> 8 calls of 64 2M entries.  Plus the 2M->4K PVALIDATE fallback (4.2)."""

from guest_fakehost import SPA_BASE, FakeHost

from snpsim.guest.kernel import PROFILES, GuestConfig, __va
from snpsim.guest.set_memory import set_memory_decrypted
from snpsim.guest.unaccepted_memory import accept_memory
from snpsim.trace.events import Enter
from snpsim.trace.record import Recorder, tracing

START = (32 << 20) + 4096  # 4 KiB past a 2 MiB boundary


def shared_calls(h, lo, hi):
    return [c for c in h.psc_calls
            if c.desc.entries and lo <= c.desc.entries[0].gfn << 12 < hi
            and c.desc.entries[0].operation == 2]


def run_1000(profile):
    def wl(kernel, cpu):
        return set_memory_decrypted(kernel, __va(kernel, START), 1000)

    h = FakeHost(GuestConfig(profile=profile), workload=wl)
    h.make_private_4k(START, 1000)
    assert h.run() == "poweroff", h.kernel.warnings
    assert h.kernel.workload_result == 0
    return shared_calls(h, START, START + 1000 * 4096)


def test_1000_pages_64_entries():
    calls = run_1000(PROFILES["6.17"])
    sizes = [c.desc.hdr.end_entry + 1 for c in calls]
    assert sizes == [64] * 15 + [40]
    assert all(e.pagesize == 0 for c in calls for e in c.desc.entries[: c.desc.hdr.end_entry + 1])
    gfns = [e.gfn for c in calls for e in c.desc.entries[: c.desc.hdr.end_entry + 1]]
    assert gfns == list(range(START >> 12, (START >> 12) + 1000))


def test_1000_pages_253_entries():
    calls = run_1000(PROFILES["6.4"])
    assert [c.desc.hdr.end_entry + 1 for c in calls] == [253, 253, 253, 241]


def test_1gib_aligned_range_8_calls_of_64_2m_entries():
    gib = 1 << 30

    def wl(kernel, cpu):
        return set_memory_decrypted(kernel, __va(kernel, gib), gib >> 12)

    h = FakeHost(GuestConfig(ram_size=2 * gib), workload=wl)
    h.make_private_2m(gib, gib)
    assert h.run() == "poweroff", h.kernel.warnings
    calls = shared_calls(h, gib, 2 * gib)
    assert [c.desc.hdr.end_entry + 1 for c in calls] == [64] * 8
    ents = [e for c in calls for e in c.desc.entries[:64]]
    assert all(e.pagesize == 1 for e in ents)
    assert [e.gfn for e in ents] == list(range(gib >> 12, (2 * gib) >> 12, 512))
    # the RMP of the range is now hypervisor-owned
    assert not h.p.rmp.lookup((SPA_BASE + gib + 12345 * 4096) >> 12).assigned


def test_mixed_2m_and_4k_entries():
    base = 32 << 20
    npages = (4 << 20 >> 12) + 3  # 2 MiB-aligned 4 MiB + 12 KiB

    def wl(kernel, cpu):
        return set_memory_decrypted(kernel, __va(kernel, base), npages)

    h = FakeHost(GuestConfig(), workload=wl)
    h.make_private_2m(base, 4 << 20)
    h.make_private_4k(base + (4 << 20), 3)
    assert h.run() == "poweroff", h.kernel.warnings
    (c,) = shared_calls(h, base, base + (8 << 20))
    ents = c.desc.entries[: c.desc.hdr.end_entry + 1]
    assert [(e.gfn << 12, e.pagesize) for e in ents] == [
        (base, 1), (base + (2 << 20), 1),
        (base + (4 << 20), 0), (base + (4 << 20) + 4096, 0), (base + (4 << 20) + 8192, 0)]


def test_accept_memory_2m_entry_falls_back_to_4k_pvalidate():
    unit = 40 << 20

    def wl(kernel, cpu):
        accept_memory(kernel, unit, 4096)
        cpu.write(__va(kernel, unit + 8192), b"accepted")
        return cpu.read(__va(kernel, unit + 8192), 8)

    h = FakeHost(GuestConfig(coherency_sfw_no=True), workload=wl)
    rec = Recorder(filter=lambda e: isinstance(e, Enter) and e.name == "pvalidate")
    with tracing(rec):
        assert h.run() == "poweroff", h.kernel.warnings
    assert h.kernel.workload_result == b"accepted"
    (c,) = [c for c in h.psc_calls if c.desc.entries[0].gfn == unit >> 12]
    assert (c.desc.entries[0].operation, c.desc.entries[0].pagesize) == (1, 1)
    sizes = [e.args["rmp_psize"] for e in rec.events if isinstance(e, Enter) and e.args["vaddr"] >> 21 == __va(h.kernel, unit) >> 21]
    assert sizes == [1] + [0] * 512
    assert not h.kernel.unaccepted.test(unit >> 21)
    # a second accept of the same unit does nothing
