# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A guest that shares pages and then kexecs into a new kernel.

What it shows: the guest makes two pages shared (``set_memory_decrypted``), then runs
Linux's kexec reboot (``Guest.kexec``: ``kernel_kexec`` -> ``native_machine_shutdown``
-> ``snp_kexec_begin`` / ``snp_kexec_finish``).  After the run the host looks at every
page of guest RAM: its RMP entry (through the NPT), KVM's memory attribute and the
C-bit of the guest's direct-map PTE.

Expected outcome (sources: Linux arch/x86/coco/sev/core.c ``snp_kexec_finish`` and
``unshare_all_memory`` -- every decrypted direct-map leaf and ``.bss..decrypted`` made
private again, C-bit first, then PSC and PVALIDATE, the GHCBs last over the MSR
protocol; arch/x86/kernel/reboot.c ``native_machine_shutdown``):

* after the kexec no RAM page is shared in any view (``shared_after`` all empty), the two
  pages are validated again, and the run ends "kexec: the guest handed over to the next
  kernel" with the vCPU halted, as the next kernel is not modelled (exit status 1: the
  guest did not power off).

Run it: ``snpsim run examples/kexec.py``.
"""

from snpsim.api import Scenario

scenario = Scenario("kexec after sharing", memory="64M", vcpus=1)
data = scenario.data


def shared_pages(h):
    """RAM pages shared in the RMP, KVM's attributes or the direct map, as GPA lists."""
    out = {"rmp": [], "attr": [], "pte": []}
    for gpa in range(0, 64 << 20, 4096):
        p = h.page(gpa)
        if p.rmp is not None and not (p.rmp["assigned"] and p.rmp["asid"] == h.asid):
            out["rmp"].append(gpa)
        if not p.attribute_private:
            out["attr"].append(gpa)
        if p.pte_c_bit is False:
            out["pte"].append(gpa)
    return out


@scenario.guest(vcpu=0)
def share_then_kexec(g):
    pages = [g.alloc_page(), g.alloc_page()]
    for va in pages:
        g.set_memory_decrypted(va)
    data["pages"] = [g.pa(va) for va in pages]
    g.kexec()                              # never returns


@scenario.after
def look(h):
    after = shared_pages(h)
    data["shared_after"] = after
    data["validated"] = [h.page(gpa).rmp["validated"] for gpa in data["pages"]]
