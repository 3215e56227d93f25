# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Two vCPUs converting pages at once, interleaved by the seeded scheduler, and the
replay of that interleaving.

What it shows: with no schedule, vCPU threads take turns as the seeded scheduler picks
them.  vCPU 0 and vCPU 1 each make three pages shared, one ``set_memory_decrypted`` at a
time.  A hook on QEMU's ``kvm_handle_hc_map_gpa_range`` notes which vCPU's request the
VMM handles each time (the workloads' pages only, not the boot's own conversions), so
``result.order`` is the interleaving of the two vCPUs'
conversions as the host saw it.

Expected outcome (sources: Linux arch/x86/mm/pat/set_memory.c
``set_memory_decrypted``; arch/x86/kvm/svm/sev.c ``snp_begin_psc``: one
KVM_HC_MAP_GPA_RANGE exit per contiguous run of pages; QEMU target/i386/kvm/kvm.c
``kvm_handle_hc_map_gpa_range``):

* every conversion succeeds (``returns`` all 0) and the run completes (exit status 0);
* the VMM handles six single-page requests, three from each vCPU;
* the same ``--seed`` gives the same ``order`` every time (docs/api.md, "What the API
  guarantees"); another seed may give another one.

Run it: ``snpsim run examples/seeded_interleaving.py --seed 1``.
"""

from snpsim.api import Scenario

scenario = Scenario("two vCPUs convert, seeded", memory="64M", vcpus=2)
data = scenario.data


def convert_three(g):
    for _ in range(3):
        va = g.alloc_page()
        data.setdefault("pages", []).append(g.pa(va))   # the hook counts only these
        data.setdefault("returns", []).append(g.set_memory_decrypted(va, 1))


scenario.guest(convert_three, vcpu=0)
scenario.guest(convert_three, vcpu=1)


@scenario.hook("kvm_handle_hc_map_gpa_range")
def note_who(original, cpu, run):
    if run.hypercall.args[0] in data.get("pages", ()):     # not the boot's own requests
        data.setdefault("order", []).append(cpu.cpu_index)
    return original(cpu, run)
