# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""SEV and SEV-ES guests (``SnpSystem(mode=...)``): no RMP, PVALIDATE or PSC; a
conversion is the guest's page-table change plus ``enc_dec_hypercall``; the VMM launches
with KVM_SEV_LAUNCH_UPDATE_DATA; ``boot --from-dmesg`` runs an SEV log in SEV mode.

Expected values come from the references and the logs: the C-bit and host view from the
seed's payloads (guest/seed.py), -KVM_ENOSYS from include/uapi/linux/kvm_para.h
(kvm-qemu-host.md 5, 8.1: QEMU enables the MAP_GPA_RANGE exit only for SNP), the swiotlb
size from log 03's line "software IO TLB: mapped [mem ...] (64MB)".
"""

import re
from pathlib import Path

import pytest

from snpsim.guest.kernel import __va
from snpsim.guest.kvm import kvm_sev_hypercall3
from snpsim.guest.seed import PRIVATE_PAYLOAD, SHARED_PAYLOAD
from snpsim.hw.faults import GeneralProtectionFault
from snpsim.scenarios.catalog import run_scenario
from snpsim.scenarios.dmesg import parse_dmesg
from snpsim.spec.kvm_uapi import (
    KVM_ENOSYS,
    KVM_HC_MAP_GPA_RANGE,
    KVM_MAP_GPA_RANGE_DECRYPTED,
    KVM_X86_SEV_ES_VM,
    KVM_X86_SEV_VM,
)
from snpsim.spec.msr_index import (
    MSR_AMD64_SEV_ENABLED,
    MSR_AMD64_SEV_ES_ENABLED,
    MSR_AMD64_SEV_SNP_ENABLED,
)
from snpsim.spec.units import PAGE_SIZE, u64
from snpsim.system import MODES, RunObserver, SnpSystem

DMESG = Path(__file__).resolve().parents[1] / "data" / "dmesg"
LOG03 = DMESG / "03-kata1619-sev-5.6.log"

NON_SNP = ["sev", "sev-es"]


def _no_snp_work(outcome, stats=None):
    c = outcome.counters
    assert c.get("PVALIDATE", 0) == 0
    assert c.get("RMPUPDATE", 0) == 0
    assert c.get("PSMASH", 0) == 0
    assert c.get("LAUNCH_UPDATE", 0) == 0  # no SNP_LAUNCH_UPDATE
    assert c.get("LAUNCH_UPDATE_DATA", 0) > 0  # the SEV launch encrypted the image
    if stats is not None:
        assert stats.psc_requests == 0 and stats.psc_entries == 0
        assert not stats.pvalidate
        assert not any("PSC" in k for k in stats.msr_exits)
        assert not stats.converted  # no KVM_HC_MAP_GPA_RANGE exit to the VMM


def test_modes_map_to_vm_types():
    assert MODES["sev"] == KVM_X86_SEV_VM and MODES["sev-es"] == KVM_X86_SEV_ES_VM
    with pytest.raises(ValueError):
        SnpSystem(mode="tdx")


@pytest.mark.parametrize("mode", NON_SNP)
def test_decrypt_is_page_table_only(mode):
    vm = SnpSystem(memory=64 << 20, mode=mode)
    res = vm.trace_conversion("set_memory_decrypted", pages=1)
    assert res.completed, res.outcome
    _no_snp_work(res.run)
    st = res.state
    assert st.pte_c_bit is False  # the C-bit of the page's PTE is cleared
    assert not st.attribute_private  # no memory attributes on an SEV VM
    assert st.rmp is not None and not st.rmp["assigned"]  # the RMP is never touched
    # Shared: the guest's C=0 write is what the VMM reads through its own mapping (the
    # same page: no guest_memfd, one backing per GFN) and what the SPA holds.
    assert res.seed.guest_read == SHARED_PAYLOAD
    assert st.host_read.startswith(SHARED_PAYLOAD)
    assert st.spa_read.startswith(SHARED_PAYLOAD)
    # The SEV status the guest read: SEV, ES only for SEV-ES, never SNP.
    k = vm.kernel
    assert k.sev_status & MSR_AMD64_SEV_ENABLED
    assert bool(k.sev_status & MSR_AMD64_SEV_ES_ENABLED) == (mode == "sev-es")
    assert not k.sev_status & MSR_AMD64_SEV_SNP_ENABLED


@pytest.mark.parametrize("mode", NON_SNP)
def test_seed_scenario(mode):
    obs = RunObserver()
    run = run_scenario("seed", memory=64 << 20, vcpus=1, mode=mode, observer=obs)
    assert run.outcome.completed, run.outcome.describe()
    assert run.config["mode"] == mode
    _no_snp_work(run.outcome, obs.stats)
    seed = run.result
    assert seed["ret"] == 0 and seed["extra"]["pre_decrypt_ret"] == 0
    st = run.system.page_state(seed["gpa"])
    # Encrypted again: C-bit set, and the host reads ciphertext, not the guest's data.
    assert st.pte_c_bit is True
    assert PRIVATE_PAYLOAD not in st.host_read
    # SEV has no GHCB at all; SEV-ES talks to the host through it (IOIO of the power-off).
    if mode == "sev":
        assert obs.stats.ghcb_exits == {} and obs.stats.msr_exits == {}
        assert run.outcome.counters.get("#VC", 0) == 0
    else:
        assert obs.stats.ghcb_exits and obs.stats.msr_exits


@pytest.mark.parametrize("mode", NON_SNP)
def test_map_gpa_range_gets_enosys(mode):
    """With KVM_FEATURE_MIGRATION_CONTROL the guest sends KVM_HC_MAP_GPA_RANGE (SEV:
    VMMCALL exit; SEV-ES: #VC -> GHCB SVM_EXIT_VMMCALL); the exit is not enabled for an
    SEV VM, so KVM answers -KVM_ENOSYS in RAX and nothing reaches the VMM."""
    got = {}

    def workload(kernel, cpu):
        got["ret"] = kvm_sev_hypercall3(kernel, KVM_HC_MAP_GPA_RANGE, 0x100000, 1,
                                        KVM_MAP_GPA_RANGE_DECRYPTED)

    vm = SnpSystem(memory=64 << 20, mode=mode, kvm_feature_migration_control=True)
    obs = RunObserver()
    out = vm.run(workload, obs)
    assert out.completed, out.describe()
    assert got["ret"] == u64(-KVM_ENOSYS)
    assert not obs.stats.converted
    assert not any("HYPERCALL" in k for k in obs.stats.userspace_exits)


@pytest.mark.parametrize("mode", NON_SNP)
def test_pvalidate_is_not_available(mode):
    """PVALIDATE outside an SNP-active guest is #GP (model choice after VERISMO; #GP vs
    #UD unconfirmed): delivered to the guest's #GP handler, the page's RMP unchanged."""
    seen = {}

    def workload(kernel, cpu):
        def gp(c, fault):
            seen["fault"] = fault
            raise _Done

        cpu.set_idt_handler(13, gp)
        try:
            cpu.pvalidate(int(__va(kernel, kernel.boot.pool_start)), 0, True)
        except _Done:
            pass

    vm = SnpSystem(memory=64 << 20, mode=mode)
    out = vm.run(workload)
    assert out.completed, out.describe()
    assert isinstance(seen["fault"], GeneralProtectionFault)
    assert out.counters.get("RMPUPDATE", 0) == 0


class _Done(Exception):
    """Leaves the #GP handler (model-only: the handler would not return)."""


def test_sev_launch_encrypts_in_place():
    """KVM_SEV_LAUNCH_UPDATE_DATA encrypts the image in place: the guest reads its page
    tables with C=1 (it boots), while the VMM's HVA view of the PML4 page is ciphertext."""
    vm = SnpSystem(memory=64 << 20, mode="sev")
    out = vm.run()
    assert out.completed, out.describe()
    cr3 = vm.kernel.boot.cr3
    raw = vm.machine.read_guest_ram(cr3, PAGE_SIZE)
    # The PML4 holds few entries: in plaintext almost all zero; as ciphertext not.
    assert raw.count(0) < PAGE_SIZE // 2
    assert len(vm.digest) == 32


def test_log03_boots_in_sev_mode():
    text = LOG03.read_text()
    m = re.search(r"software IO TLB: mapped \[mem 0x[0-9a-f]+-0x[0-9a-f]+\] \((\d+)MB\)", text)
    assert m is not None
    log_mb = int(m.group(1))
    cfg = parse_dmesg(text, memory_bytes=1 << 30)
    obs = RunObserver()
    run = run_scenario("boot", memory=1 << 30, vcpus=cfg.nr_cpus or 4, dmesg=cfg, observer=obs)
    assert run.outcome.completed, run.outcome.describe()
    assert run.config["mode"] == "sev" and run.config["log_mode"] == "SEV"
    assert run.result["swiotlb_bytes"] == log_mb << 20
    assert run.result["swiotlb_ret"] == 0
    _no_snp_work(run.outcome, obs.stats)
    # The swiotlb pool is shared after boot: its first page's PTE has C=0.
    st = run.system.page_state(run.result["swiotlb_gpa"])
    assert st.pte_c_bit is False


def test_sev_boot_from_log_03_counts_the_swiotlb_pages_made_shared():
    """Log 03 (SEV, 5.6): "software IO TLB: mapped [mem 0x6e42a000-0x7242a000] (64MB)".
    In SEV mode no conversion reaches the host, so the summary counts the guest's C-bit
    changes: at least the 64 MiB swiotlb = 16384 4 KiB pages made shared."""

    from snpsim.report.summary import summarize
    from snpsim.scenarios.catalog import run_scenario
    from snpsim.scenarios.dmesg import parse_dmesg

    log = LOG03
    cfg = parse_dmesg(log.read_text(), memory_bytes=2 << 30)
    run = run_scenario("boot", memory=2 << 30, vcpus=cfg.nr_cpus or 1, dmesg=cfg, mode="sev")
    s = summarize(run)
    assert s["config"]["mode"] == "sev"
    assert s["pages_made_shared"]["4K"] >= 16384
    assert s["guest_cbit_pages"]["shared"] == s["pages_made_shared"]["4K"]
