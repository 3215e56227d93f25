# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""docs/findings.md F1: after a partly completed 2M entry, snp_begin_psc joins the next 4K
entry by comparing it with the 2M entry's original GFN (arch/x86/kvm/svm/sev.c,
``entry.gfn != entry_start.gfn + npages``, unchanged in the May 2026 READ_ONCE series),
while the range it converts starts at ``gfn + cur_page``.

Smallest input: entry 0 = 2M private at GFN 0x200 with cur_page 0x1ff (511 pages done),
entry 1 = 4K private at GFN 0x201.  Upstream joins entry 1 (0x201 == 0x200 + 1) and asks
the VMM to convert GFNs 0x3ff and 0x400: page 0x400, which no entry names, changes state,
and entry 1 is reported done.  The fixed form converts 0x3ff alone, then 0x201."""

import pytest
from test_psc_golden import run_psc

from snpsim.kvm.profiles import KVM_PROFILES
from snpsim.spec.kvm_uapi import KVM_MAP_GPA_RANGE_ENCRYPTED, KVM_MAP_GPA_RANGE_PAGE_SZ_2M
from snpsim.spec.psc import PscEntry

PRIVATE = 1
ENTRIES = [PscEntry(0x1FF, 0x200, PRIVATE, 1), PscEntry(0, 0x201, PRIVATE, 0)]
# The size flag follows the first entry's pagesize even for the 4K remainder of a
# partly done 2M entry (``entry_start.pagesize ? KVM_MAP_GPA_RANGE_PAGE_SZ_2M : ...``).
FIRST = KVM_MAP_GPA_RANGE_ENCRYPTED | KVM_MAP_GPA_RANGE_PAGE_SZ_2M


@pytest.mark.parametrize("name", ["v7.0.12", "v6.17"])
def test_upstream_converts_a_page_no_entry_names(name):
    exits, info, desc = run_psc(name, ENTRIES)
    # one exit: GPA 0x3ff000, 2 pages (0x3ff and 0x400), private
    assert exits == [(0x3FF000, 2, FIRST)]
    assert info == (0, 0)                       # the guest is told it all succeeded
    assert desc.hdr.cur_entry == 2 and desc.entries[1].cur_page == 1


@pytest.mark.parametrize("name", ["v7.0.12", "v6.17"])
def test_fixed_form_converts_each_entry_where_it_is(name):
    fixed = KVM_PROFILES[name].derive(f"{name}+coalesce-fixed",
                                      knobs={"psc_coalesce_base": "range"})
    exits, info, _desc = run_psc(fixed, ENTRIES)
    assert exits == [(0x3FF000, 1, FIRST), (0x201000, 1, KVM_MAP_GPA_RANGE_ENCRYPTED)]
    assert info == (0, 0)
