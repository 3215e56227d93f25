# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Physical memory and the encryption engine (hardware-and-ghcb.md; APM vol 2 15.34)."""

from hw_machine import ASID, DATA_GPA, GVA, assign, build, platform, run, spa

from snpsim.hw.memory import EncryptionEngine, PhysicalMemory
from snpsim.spec.units import PAGE_SIZE

DATA = b"snpsim-secret-data" * 10


def test_untouched_memory_reads_zero_and_costs_nothing():
    mem = PhysicalMemory(1 << 40)  # 1 TiB of SPA space
    assert mem.read_raw(0xFF_FFFF_F000, 16) == bytes(16)
    assert mem.pages_stored() == 0


def test_private_write_is_ciphertext_to_the_host_and_plaintext_to_the_guest():
    mem = PhysicalMemory(1 << 30)
    mem.write_enc(0x5000, DATA, asid=1)
    assert mem.read_enc(0x5000, len(DATA), asid=1) == DATA
    raw = mem.read_raw(0x5000, len(DATA))
    assert raw != DATA and DATA[:16] not in mem.read_raw(0x5000, PAGE_SIZE)


def test_same_plaintext_differs_by_spa_and_by_asid():
    eng = EncryptionEngine(b"k")
    page = bytes(range(256)) * 16
    a = eng.encrypt_page(1, 0x1000, page)
    assert a != eng.encrypt_page(1, 0x2000, page)  # address tweak
    assert a != eng.encrypt_page(2, 0x1000, page)  # per-ASID key
    assert eng.decrypt_page(1, 0x1000, a) == page


def test_wrong_key_or_wrong_c_bit_gives_unrelated_bytes():
    mem = PhysicalMemory(1 << 30)
    mem.write_enc(0x9000, DATA, asid=3)
    assert mem.read_enc(0x9000, len(DATA), asid=4) != DATA
    # and the page is unchanged for its owner afterwards (reads do not corrupt)
    assert mem.read_enc(0x9000, len(DATA), asid=3) == DATA
    mem.write_raw(0xA000, DATA)  # a shared (C=0) write
    assert mem.read_enc(0xA000, len(DATA), asid=3) != DATA
    assert mem.read_raw(0xA000, len(DATA)) == DATA


def test_partial_and_cross_page_accesses():
    mem = PhysicalMemory(1 << 30)
    mem.write_enc(0x1FF8, b"ABCDEFGHIJKLMNOP", asid=1)  # crosses 0x2000
    assert mem.read_enc(0x1FF8, 16, asid=1) == b"ABCDEFGHIJKLMNOP"
    mem.write_raw(0x3FFC, b"12345678")
    assert mem.read_raw(0x3FFC, 8) == b"12345678"


def test_ciphertext_moved_to_another_spa_does_not_decrypt():
    """The SPA tweak defeats relocation: a host that copies a private page's ciphertext to
    another SPA gives the guest bytes unrelated to what it wrote."""
    mem = PhysicalMemory(1 << 30)
    mem.write_enc(0x5000, DATA, asid=1)
    mem.write_raw(0x8000, mem.read_raw(0x5000, PAGE_SIZE))
    moved = mem.read_enc(0x8000, len(DATA), asid=1)
    assert moved != DATA and DATA[:16] not in mem.read_enc(0x8000, PAGE_SIZE, asid=1)


def test_ciphertext_replayed_at_the_same_spa_decrypts():
    """Same SPA, same key: an old ciphertext decrypts to the old plaintext (no freshness in
    the cipher; replay is stopped by the RMP and PVALIDATE, not by encryption)."""
    mem = PhysicalMemory(1 << 30)
    mem.write_enc(0x5000, DATA, asid=1)
    old = mem.read_raw(0x5000, PAGE_SIZE)
    mem.write_enc(0x5000, b"new" * 10, asid=1)
    mem.write_raw(0x5000, old)
    assert mem.read_enc(0x5000, len(DATA), asid=1) == DATA


def test_guest_c1_write_read_back_through_a_c0_alias_is_ciphertext():
    p = platform()
    npt = build(p, ptes={1: (DATA_GPA, False, False)})  # GVA+4K: C=0 alias of the same GPA
    assign(p, DATA_GPA)
    ret, _, _ = run(p, npt, lambda cpu: (cpu.write(GVA, DATA), cpu.read(GVA + 0x1000, len(DATA)),
                                         cpu.read(GVA, len(DATA))))
    _, alias, private = ret
    assert private == DATA
    assert alias != DATA and alias == p.host.read(spa(DATA_GPA), len(DATA))
    assert p.mem.read_enc(spa(DATA_GPA), len(DATA), ASID + 1) != DATA  # another guest's key


def test_same_plaintext_in_two_guest_pages_gives_two_ciphertexts():
    p = platform()
    npt = build(p)
    assign(p, DATA_GPA)
    assign(p, DATA_GPA + 0x1000)
    run(p, npt, lambda cpu: (cpu.write(GVA, DATA), cpu.write(GVA + 0x1000, DATA)))
    assert p.host.read(spa(DATA_GPA), len(DATA)) != p.host.read(spa(DATA_GPA) + 0x1000, len(DATA))


# -- cost follows the work (issue 10, part 3) -----------------------------------------

def test_private_reads_of_never_written_memory_store_nothing():
    """A C=1 read of a page nobody wrote is the zero page decrypted with the reader's key
    and the page's SPA, computed each time: the page stays unwritten and only the bounded
    view cache holds anything."""
    from snpsim.hw.memory import ZERO_VIEW_CACHE_PAGES

    mem = PhysicalMemory(1 << 30)
    eng = mem.engine
    for pfn in range(4 * ZERO_VIEW_CACHE_PAGES):
        spa = pfn * PAGE_SIZE
        assert mem.read_enc(spa, 1, asid=5) == eng.decrypt_page(5, spa, bytes(PAGE_SIZE))[:1]
        assert mem.read_enc(spa + PAGE_SIZE - 1, 1, asid=5) == \
            eng.decrypt_page(5, spa, bytes(PAGE_SIZE))[-1:]
    assert mem.pages_stored() == 0
    assert mem.bytes_cached() == ZERO_VIEW_CACHE_PAGES * PAGE_SIZE
    assert mem.read_raw(0x3000, 8) == bytes(8)  # the host still sees zeros in DRAM


def test_a_write_stores_the_page_once_and_discard_forgets_it():
    mem = PhysicalMemory(1 << 30)
    view = mem.read_enc(0x7000, 64, asid=2)
    mem.write_enc(0x7010, b"xy", asid=2)  # a partial write keeps the rest of the view
    assert mem.pages_stored() == 1
    assert mem.read_enc(0x7000, 64, asid=2) == view[:16] + b"xy" + view[18:]
    mem.discard(0x7000, PAGE_SIZE)
    assert mem.pages_stored() == 0 and mem.read_enc(0x7000, 64, asid=2) == view


class _EagerMemory:
    """Reference: DRAM as ciphertext, every write encrypted at once (read-modify-write
    of the whole page), every read decrypted; 4 KiB per page ever touched."""

    def __init__(self, engine: EncryptionEngine) -> None:
        self.eng = engine
        self.dram: dict[int, bytes] = {}

    def _page(self, pfn: int) -> bytes:
        return self.dram.get(pfn, bytes(PAGE_SIZE))

    def read(self, spa: int, n: int, asid: int | None) -> bytes:
        out = b""
        while n:
            pfn, off = divmod(spa, PAGE_SIZE)
            k = min(n, PAGE_SIZE - off)
            page = self._page(pfn)
            if asid is not None:
                page = self.eng.decrypt_page(asid, pfn * PAGE_SIZE, page)
            out += page[off : off + k]
            spa, n = spa + k, n - k
        return out

    def write(self, spa: int, data: bytes, asid: int | None) -> None:
        while data:
            pfn, off = divmod(spa, PAGE_SIZE)
            k = min(len(data), PAGE_SIZE - off)
            page = self._page(pfn)
            if asid is not None:
                page = self.eng.decrypt_page(asid, pfn * PAGE_SIZE, page)
            page = page[:off] + data[:k] + page[off + k :]
            if asid is not None:
                page = self.eng.encrypt_page(asid, pfn * PAGE_SIZE, page)
            self.dram[pfn] = page
            spa, data = spa + k, data[k:]

    def discard(self, spa: int) -> None:
        self.dram.pop(spa // PAGE_SIZE, None)


def test_memory_equals_an_eager_encrypt_on_write_reference():
    """Hypothesis: any sequence of raw/private reads and writes (1..3 keys, partial and
    page-crossing) and discards gives the bytes an encrypt-every-write memory gives."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    op = st.tuples(
        st.sampled_from(["read", "write", "discard"]),
        st.integers(0, 4 * PAGE_SIZE - 1),          # SPA in 4 pages
        st.integers(1, PAGE_SIZE + 64),             # length
        st.sampled_from([None, 1, 2, 3]),           # no key (C=0/host) or an ASID
        st.integers(0, 255),                        # fill byte
    )

    @settings(max_examples=60, deadline=None)
    @given(st.lists(op, max_size=12))
    def check(ops: list) -> None:
        eng = EncryptionEngine(b"diff")
        mem, ref = PhysicalMemory(8 * PAGE_SIZE, eng), _EagerMemory(eng)
        for kind, addr, n, asid, fill in ops:
            n = min(n, 8 * PAGE_SIZE - addr)
            if kind == "read":
                got = mem.read_raw(addr, n) if asid is None else mem.read_enc(addr, n, asid)
                assert got == ref.read(addr, n, asid)
            elif kind == "write":
                data = bytes([fill]) * n
                if asid is None:
                    mem.write_raw(addr, data)
                else:
                    mem.write_enc(addr, data, asid)
                ref.write(addr, data, asid)
            else:
                mem.discard(addr & ~(PAGE_SIZE - 1), PAGE_SIZE)
                ref.discard(addr)
            assert mem.pages_stored() <= len(ref.dram)
        for pfn in range(8):
            for asid in (None, 1, 2):
                got = mem.read_raw(pfn * PAGE_SIZE, PAGE_SIZE) if asid is None else \
                    mem.read_enc(pfn * PAGE_SIZE, PAGE_SIZE, asid)
                assert got == ref.read(pfn * PAGE_SIZE, PAGE_SIZE, asid)

    check()


def test_discard_of_a_range_forgets_exactly_its_pages():
    """``discard`` (and ``HostCpu.zero_pages``) over a range: whole pages inside it read
    zeros again, pages outside keep their contents; large or small ranges alike."""
    mem = PhysicalMemory(1 << 40)
    for pfn in (3, 4, 5, 9, 1 << 20):
        mem.write_raw(pfn * PAGE_SIZE, b"r")
        mem.write_enc(pfn * PAGE_SIZE + 8, b"e", asid=1)
    mem.discard(4 * PAGE_SIZE, 2 * PAGE_SIZE)          # small range: pages 4, 5
    assert [mem.written(p) for p in (3, 4, 5, 9)] == [True, False, False, True]
    mem.discard(0, 1 << 39)                             # huge range: 3, 9 and 1 << 20
    assert mem.pages_stored() == 0
    p = platform()
    p.mem.write_raw(0x7000, b"x" * 8)
    p.host.zero_pages(0x6000, 2)
    assert p.mem.read_raw(0x7000, 8) == bytes(8) and p.mem.pages_stored() == 0
