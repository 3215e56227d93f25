# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""kexec after a Linux boot's real page-state work (issue 14 item 5): the ``boot``
scenario's shared memory -- the 64 MiB swiotlb pool (2 MiB direct-map leaves, so 2M PSC
entries on the way back), the rest of ``.bss..decrypted``, per-CPU data, the DMA atomic
pools, virtio rings, the GHCBs -- is all private again afterwards in the RMP, KVM's
attributes and the direct map (arch/x86/coco/sev/core.c at 00d25566 ``unshare_all_memory``
walks every direct-map leaf; kernel/dma/swiotlb.c and arch/x86/kernel/kvm.c share only
through the direct map, ``set_memory_decrypted`` / ``early_set_memory_decrypted``)."""

from snpsim.api import Scenario, enter
from snpsim.scenarios.boot import BootPlan, BootResult, boot_workload

MEM = 192 << 20


def shared(host):
    """Per view, the RAM pages that are shared: RMP (NPT-mapped, not the guest's), KVM
    attribute not private, direct-map PTE with C=0."""
    out = {"rmp": 0, "attr": 0, "pte": 0}
    for gpa in range(0, MEM, 4096):
        p = host.page(gpa)
        out["rmp"] += p.rmp is not None and not (p.rmp["assigned"] and p.rmp["asid"] == host.asid)
        out["attr"] += not p.attribute_private
        out["pte"] += p.pte_c_bit is False
    return out


def test_kexec_after_a_real_boot_leaves_nothing_shared():
    sc = Scenario("boot then kexec", memory=MEM, vcpus=2)
    res = BootResult()
    data = sc.data

    @sc.at(enter("snp_kexec_begin"))
    def count_before(host):
        data["before"] = shared(host)

    @sc.guest
    def work(g):
        boot_workload(BootPlan(MEM, 2), res)(g.kernel, g.cpu)
        g.result["boot_errors"] = list(res.errors)
        g.result["swiotlb"] = res.swiotlb_bytes
        g.kexec()

    r = sc.run()
    assert r.outcome.kexec == "kexec" and r.errors == [] and r.data["boot_errors"] == []
    swiotlb_pages = r.data["swiotlb"] >> 12
    assert swiotlb_pages == 16384  # 64 MiB: SEV's default pool (docs/swiotlb.md)
    before = r.data["before"]
    assert min(before.values()) >= swiotlb_pages
    assert shared(r.host) == {"rmp": 0, "attr": 0, "pte": 0}
    assert r.outcome.warnings == []
