# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue 5 "Checked by": trace order of both directions for a range that mixes 2M and 4K
entries (2 MiB-aligned 4 MiB + 12 KiB), through the full system.  Orders from
linux-guest.md 2.2 / 3.3 / 11 item 1: decrypt = flush, rescind (PVALIDATE 0, 2M entries
as 2M), PSC shared, C-bit cleared, flush; encrypt = flush, C-bit set, flush, PSC
private, validate (2M first, 4K fallback on FAIL_SIZEMISMATCH 6)."""

from snpsim.guest.kernel import __va
from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
from snpsim.guest.unaccepted_memory import accept_memory
from snpsim.system import SnpSystem
from snpsim.trace.events import Enter
from snpsim.trace.record import Recorder, tracing

MiB = 1 << 20
BASE = 40 * MiB
NPAGES = (4 * MiB >> 12) + 3


def test_mixed_range_order_both_directions():
    def wl(kernel, cpu):
        accept_memory(kernel, BASE, NPAGES * 4096)
        va = __va(kernel, BASE)
        return set_memory_decrypted(kernel, va, NPAGES), set_memory_encrypted(kernel, va, NPAGES)

    s = SnpSystem(memory=64 * MiB, coherency_sfw_no=True)
    names = ("set_memory_decrypted", "set_memory_encrypted", "cpa_flush", "pvalidate",
             "vmgexit_psc", "__change_page_attr_set_clr")
    rec = Recorder(filter=lambda e: isinstance(e, Enter) and e.name in names)
    with tracing(rec):
        out = s.run(wl)
    assert out.completed, out.describe()
    assert s.kernel.workload_result == (0, 0)
    ev = [e for e in rec.events if isinstance(e, Enter)]
    i = next(k for k, e in enumerate(ev) if e.name == "set_memory_decrypted")
    j = next(k for k, e in enumerate(ev) if e.name == "set_memory_encrypted")
    va = int(__va(s.kernel, BASE))

    def step(e):
        if e.name == "pvalidate":
            off = e.args["vaddr"] - va
            return ("pvalidate", off, e.args["rmp_psize"], e.args["validate"])
        return (e.name,)

    dec = [step(e) for e in ev[i + 1 : j]]

    def rescind_2m(off):  # a 2M entry; the host holds it as 4K RMP entries -> 6 -> 512 x 4K
        return [("pvalidate", off, 1, False)] + [("pvalidate", off + k * 4096, 0, False) for k in range(512)]

    assert dec == (
        [("cpa_flush",)] + rescind_2m(0) + rescind_2m(2 * MiB)
        + [("pvalidate", 4 * MiB + k * 4096, 0, False) for k in range(3)]
        + [("vmgexit_psc",), ("__change_page_attr_set_clr",), ("cpa_flush",)])
    enc = [step(e) for e in ev[j + 1 :]]
    assert enc[:4] == [("cpa_flush",), ("__change_page_attr_set_clr",), ("cpa_flush",), ("vmgexit_psc",)]
    pv = [x for x in enc[4:] if x[0] == "pvalidate"]
    # 2M entries validated as 2M first; the host backs them with 4K RMP entries, so
    # each falls back to 512 x 4K (linux-guest.md 4.2); then the three 4K entries
    assert pv[0] == ("pvalidate", 0, 1, True)
    assert pv[1:513] == [("pvalidate", k * 4096, 0, True) for k in range(512)]
    assert pv[513] == ("pvalidate", 2 * MiB, 1, True)
    assert pv[-3:] == [("pvalidate", 4 * MiB + k * 4096, 0, True) for k in range(3)]
    assert len(pv) == 2 * 513 + 3
