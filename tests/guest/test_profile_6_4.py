# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The v5.19-6.4 structure (linux-guest.md 4.2 "v5.19 - 6.4", 5.2, 12) through the full
system: ``snp_set_memory_shared`` rescinds with the VA-range ``pvalidate_pages`` before
the PSC, ``snp_set_memory_private`` validates after it, 4K only, no cache eviction."""

from snpsim.system import SnpSystem
from snpsim.trace.events import Enter


def guest_names(res, root):
    out, on = [], False
    for e in res.events:
        if isinstance(e, Enter):
            if e.name == root and e.party == "guest":
                on = True
            if on:
                out.append(e.name)
    return out


def in_order(names, want):
    it = iter(names)
    return all(any(n == w for n in it) for w in want)


def test_6_4_decrypt_rescinds_by_range_before_the_psc():
    res = SnpSystem(memory=64 << 20, kernel="6.4").trace_conversion("set_memory_decrypted", 3)
    assert res.completed, res.outcome
    n = guest_names(res, "set_memory_decrypted")
    assert in_order(n, ["snp_set_memory_shared", "pvalidate_pages", "PVALIDATE", "PVALIDATE",
                        "PVALIDATE", "set_pages_state", "__set_pages_state", "__sev_get_ghcb",
                        "vmgexit_psc", "__sev_put_ghcb", "__change_page_attr_set_clr"]), n
    assert "pval_pages" not in n
    pv = [e.args for e in res.events if isinstance(e, Enter) and e.name == "pvalidate_pages"]
    assert pv[0]["npages"] == 3 and pv[0]["validate"] is False


def test_6_4_encrypt_validates_by_range_after_the_psc_without_eviction():
    res = SnpSystem(memory=64 << 20, kernel="6.4").trace_conversion("set_memory_encrypted", 2)
    assert res.completed, res.outcome
    n = guest_names(res, "set_memory_encrypted")
    assert in_order(n, ["__change_page_attr_set_clr", "snp_set_memory_private", "set_pages_state",
                        "vmgexit_psc", "pvalidate_pages", "PVALIDATE", "PVALIDATE",
                        "enc_dec_hypercall"]), n
    assert "sev_evict_cache" not in n and "pval_pages" not in n
    assert res.state.rmp["validated"] and res.state.rmp["pagesize"] == 0


def test_6_17_encrypt_uses_the_descriptor_and_evicts():
    res = SnpSystem(memory=64 << 20).trace_conversion("set_memory_encrypted", 1)
    n = guest_names(res, "set_memory_encrypted")
    assert in_order(n, ["vmgexit_psc", "pvalidate_pages", "pval_pages", "PVALIDATE", "sev_evict_cache"])
