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
