# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The guest TLB: bounded, one entry per page-table leaf, FIFO replacement, INVLPG of
any page size (APM vol 2 5.5)."""

from snpsim.hw.cpu import TLB_ENTRIES, Tlb
from snpsim.hw.npt import Translation
from snpsim.spec.pgtable_types import PG_LEVEL_1G, PG_LEVEL_2M, PG_LEVEL_4K

K4, M2, G1 = 1 << 12, 1 << 21, 1 << 30


def walk(gva: int, base_gpa: int, level: int, c_bit: bool = True) -> Translation:
    """What guest_walk returns for the 4 KiB page ``gva`` under a leaf at ``base_gpa``."""
    size = {PG_LEVEL_4K: K4, PG_LEVEL_2M: M2, PG_LEVEL_1G: G1}[level]
    return Translation(base_gpa + (gva & (size - 1)), c_bit, True, False, True, level)


def test_a_2m_leaf_is_one_entry_for_its_512_pages():
    tlb = Tlb()
    va = 0xFFFF_8880_0020_0000
    tlb.fill(va + 5 * K4, walk(va + 5 * K4, 0x20_0000, PG_LEVEL_2M))
    assert len(tlb) == 1
    for i in (0, 5, 511):
        gpa, t = tlb.lookup(va + i * K4)
        assert gpa == 0x20_0000 + i * K4 and t.level == PG_LEVEL_2M
    assert tlb.lookup(va + M2) is None
    tlb.invlpg(va + 300 * K4 + 17)  # any address in the leaf drops it
    assert tlb.lookup(va) is None and len(tlb) == 0


def test_1g_and_4k_entries_and_invlpg_of_each_size():
    tlb = Tlb()
    tlb.fill(0x4000_0000 + 7 * M2, walk(0x4000_0000 + 7 * M2, 0x8000_0000, PG_LEVEL_1G))
    tlb.fill(0x1000, walk(0x1000, 0x9000, PG_LEVEL_4K, c_bit=False))
    assert tlb.lookup(0x4000_0000 + G1 - K4)[0] == 0x8000_0000 + G1 - K4
    assert tlb.get(0x1FFF).c_bit is False and tlb.lookup(0x2000) is None
    tlb.invlpg(0x1800)
    assert tlb.get(0x1000) is None and len(tlb) == 1
    tlb.clear()
    assert len(tlb) == 0


def test_capacity_is_fixed_and_the_oldest_fill_goes_first():
    tlb = Tlb(capacity=4)
    for i in range(10):
        tlb.fill(i * K4, walk(i * K4, 0x10_0000 + i * K4, PG_LEVEL_4K))
        assert len(tlb) == min(i + 1, 4)
    assert [tlb.get(i * K4) is not None for i in range(10)] == [False] * 6 + [True] * 4
    assert Tlb().capacity == TLB_ENTRIES


def test_a_stale_entry_is_used_until_flushed():
    """A leaf changed in the page tables without a flush keeps its old C-bit in the TLB
    (what the no-cpa-flush variant of tests/guest/test_cpa.py shows end to end)."""
    tlb = Tlb()
    tlb.fill(0x5000, walk(0x5000, 0x5000, PG_LEVEL_4K, c_bit=True))
    # the PTE now says C=0, nothing flushed: the TLB still answers C=1
    assert tlb.lookup(0x5000)[1].c_bit is True
    tlb.invlpg(0x5000)
    assert tlb.lookup(0x5000) is None
