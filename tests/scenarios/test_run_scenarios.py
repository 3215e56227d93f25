# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The scenarios through the Python API, checked against the kernel's sizes."""

import pytest

from snpsim.scenarios.boot import vring_size
from snpsim.scenarios.catalog import run_scenario
from snpsim.system import RunObserver


def test_vring_size_matches_the_header_formula():
    # include/uapi/linux/virtio_ring.h, num=256, align=64:
    # (16*256 + 2*(3+256) + 63) & ~63 = 4672; + 2*3 + 8*256 = 6726.
    assert vring_size(256, 64) == 6726
    assert vring_size(64, 64) == 1734


def test_boot_1g_2cpus_sizes():
    ob = RunObserver()
    r = run_scenario("boot", memory=1 << 30, vcpus=2, observer=ob)
    assert r.outcome.completed, r.outcome.describe()
    res = r.result
    assert res["errors"] == []
    # mem_encrypt_setup_arch: 6 % of 1 GiB is 61 MiB, clamped up to IO_TLB_DEFAULT_SIZE.
    assert res["swiotlb_bytes"] == 64 << 20
    # kernel/dma/pool.c: 128 KiB per GiB, minimum 128 KiB; three pools.
    assert res["atomic_pools"] == [128 << 10] * 3
    # virtio-net rx/tx (256), ctrl (64), virtio-blk one 256-entry queue per vCPU:
    # PAGE_ALIGN(6726) = 8192, PAGE_ALIGN(1734) = 4096.
    assert res["virtio_rings"] == [8192, 8192, 4096, 8192, 8192]
    assert res["percpu_pages"] == 2
    # .bss..decrypted: 511 pages through the MSR protocol, plus the guest boot's own page
    # and one GHCB per CPU.
    assert ob.stats.msr_exits["GHCB_MSR_PSC_REQ"] >= 511 + 1 + 2


def test_dma_cycles_free_what_they_allocate():
    r = run_scenario("dma", memory=256 << 20, vcpus=1, cycles=2)
    assert r.outcome.completed
    assert r.result["allocated"] == r.result["freed"] == 2 * 5
    assert r.result["failed"] == 0


@pytest.mark.parametrize("page_size", ["4K", "2M"])
def test_accept_all_memory(page_size):
    ob = RunObserver()
    r = run_scenario("accept", memory=64 << 20, vcpus=1, page_size=page_size, observer=ob,
                     kvm="v7.0.12")
    assert r.outcome.completed
    kinds = ob.stats.psc_entry_kinds
    if page_size == "4K":
        assert not any(k.endswith("2M") for k in kinds)
    else:
        assert kinds["private 2M"] > 0


def test_unknown_scenario_is_a_value_error():
    with pytest.raises(ValueError):
        run_scenario("nosuch", memory=64 << 20, vcpus=1)
