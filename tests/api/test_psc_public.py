# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``Guest.psc`` with the PSC structures ``snpsim.api`` re-exports (docs/api.md): one
4K entry to shared, built as docs/api.md shows, is done by KVM (``cur_entry`` moves
past it: GHCB spec 2.0 section 4.1.6, the hypervisor advances ``cur_entry`` as it
processes entries) and the page ends hypervisor-owned in the RMP."""

from snpsim.api import (
    SNP_PAGE_STATE_SHARED,
    PscEntry,
    PscHdr,
    Scenario,
    SnpPscDesc,
)


def test_raw_psc_to_shared_with_the_public_structures():
    sc = Scenario("raw psc", memory="64M")
    data = sc.data

    @sc.guest
    def work(g):
        va = g.alloc_page()
        gfn = g.pa(va) >> 12
        desc = SnpPscDesc(PscHdr(cur_entry=0, end_entry=0),
                          (PscEntry(cur_page=0, gfn=gfn, operation=SNP_PAGE_STATE_SHARED,
                                    pagesize=0),))
        out = g.psc(desc.encode())
        data["gfn"] = gfn
        data["info2"] = out["sw_exit_info_2"]
        data["after"] = SnpPscDesc.decode(out["buffer_after"]).hdr.cur_entry

    r = sc.run()
    assert r.data["info2"] == 0
    assert r.data["after"] == 1
    st = r.host.page(r.data["gfn"] << 12)
    assert st.rmp is not None and st.rmp["assigned"] is False
