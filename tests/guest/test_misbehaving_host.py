# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Each check the guest makes on a hypervisor answer, against a misbehaving fake host
(linux-guest.md 5.2, 6, 7, 11 items 3-5; termination codes 1.3 / hardware-and-ghcb.md 6.2)."""

import pytest
from guest_fakehost import FakeHost

from snpsim.guest.kernel import GhcbState, GuestConfig, __va
from snpsim.guest.set_memory import set_memory_decrypted, set_memory_encrypted
from snpsim.guest.sev_startup import __sev_get_ghcb
from snpsim.spec.msr_protocol import ghcb_msr_response


def decrypt_pool_page(kernel, cpu):
    gpa = kernel.page_alloc.alloc_page()
    return set_memory_decrypted(kernel, __va(kernel, gpa), 1)


@pytest.mark.parametrize("mode, warning", [
    ("info2", "SNP: PSC failed ret=0 exit_info_2=100000002"),
    ("info1", "SNP: PSC failed ret=2 exit_info_2=5"),
    ("reserved", "Reserved bit is set in the PSC header"),
    ("end_grow", "SNP: PSC processing going backward, end_entry 0 (got 1) cur_entry 0 (got 0)"),
])
def test_psc_misanswer_terminates_1_1(mode, warning):
    h = FakeHost(GuestConfig(), workload=decrypt_pool_page)
    h.psc_mode = mode
    assert h.run() == "terminated"
    assert h.term == (1, 1)
    assert tuple(h.kernel.terminated) == (1, 1, "__set_pages_state")
    assert h.kernel.warnings[-1] == warning
    # 0x11100 on the wire (linux-guest.md 1.2 worked encoding)
    assert h.msr_log[-1] == 0x11100


def test_psc_cur_entry_backwards_is_not_caught_when_initial_is_zero():
    """Linux compares cur_entry with its *initial* value, which __set_pages_state always
    sets to 0, so a hypervisor moving cur_entry back from 1 to 0 passes the check
    (linux-guest.md 5.2); the guest then re-issues forever -- the model's livelock
    watcher stops it in vmgexit_psc after 5 identical answers."""
    def wl(kernel, cpu):
        return set_memory_decrypted(kernel, __va(kernel, 48 << 20), 3)

    h = FakeHost(GuestConfig(), workload=wl, livelock_repeats=5)
    h.make_private_4k(48 << 20, 3)
    h.psc_mode = "cur_back"
    assert h.run() == "livelock"
    assert h.kernel.terminated is None
    assert (h.livelock.loop, h.livelock.vcpu, h.livelock.repeats) == ("vmgexit_psc", 0, 5)
    assert "(cur_entry 0, end_entry 2)" in h.livelock.state
    mine = [c.desc.hdr.cur_entry for c in h.psc_calls if c.desc.entries[0].gfn == (48 << 20) >> 12]
    assert mine[:3] == [0, 1, 0]


def test_psc_partial_progress_is_reissued():
    def wl(kernel, cpu):
        return set_memory_decrypted(kernel, __va(kernel, 48 << 20), 3)

    h = FakeHost(GuestConfig(), workload=wl)
    h.make_private_4k(48 << 20, 3)
    h.psc_mode = "partial"
    assert h.run() == "poweroff"
    mine = [c for c in h.psc_calls if c.desc.entries[0].gfn == (48 << 20) >> 12]
    assert [c.desc.hdr.cur_entry for c in mine] == [0, 1, 2]


def test_psc_no_progress_is_reported_as_livelock():
    h = FakeHost(GuestConfig(), workload=decrypt_pool_page, livelock_repeats=10)
    h.psc_mode = "stall"
    assert h.run() == "livelock"
    assert h.kernel.terminated is None
    assert (h.livelock.loop, h.livelock.vcpu, h.livelock.repeats) == ("vmgexit_psc", 0, 10)
    # 10 identical answers: the first VMGEXIT plus 9 more with the same buffer
    stalled = [c for c in h.psc_calls if c.desc.hdr.cur_entry == 0]
    assert len(stalled) >= 10


def test_msr_psc_error_terminates_1_1():
    # the early MSR path (init_ghcb's early_set_memory_decrypted) checks [63:32]
    h = FakeHost(GuestConfig())
    h.msr_override[0x014] = ghcb_msr_response(0x015, 1 << 20)  # error 1 in bits 63:32
    assert h.run() == "terminated"
    assert tuple(h.kernel.terminated) == (1, 1, "__page_state_change")


def test_msr_psc_wrong_response_code_terminates_1_1():
    h = FakeHost(GuestConfig())
    h.msr_override[0x014] = 0x013
    assert h.run() == "terminated"
    assert h.term == (1, 1)


def test_protocol_negotiation_failure_terminates_0_1():
    h = FakeHost(GuestConfig())
    h.sev_info = (3, 3)  # min 3 > GHCB_PROTOCOL_MAX 2
    assert h.run() == "terminated"
    assert tuple(h.kernel.terminated) == (0, 1, "sev_enable")
    assert h.msr_log[-1] == 0x10100


def test_no_snp_feature_terminates_0_2():
    h = FakeHost(GuestConfig())
    h.hv_features = 0b10
    assert h.run() == "terminated"
    assert tuple(h.kernel.terminated) == (0, 2, "sev_enable")
    assert h.msr_log[-1] == 0x20100


def test_ghcb_registration_mismatch_terminates_1_0():
    h = FakeHost(GuestConfig())
    h.msr_override[0x012] = ghcb_msr_response(0x013, 0x1234)
    assert h.run() == "terminated"
    assert tuple(h.kernel.terminated) == (1, 0, "snp_register_ghcb_early")


def test_pvalidate_cf1_terminates_1_2():
    # encrypting a page that is still private and validated: PVALIDATE(validate) gives CF=1
    def wl(kernel, cpu):
        gpa = kernel.page_alloc.alloc_page()
        return set_memory_encrypted(kernel, __va(kernel, gpa), 1)

    h = FakeHost(GuestConfig(), workload=wl)
    assert h.run() == "terminated"
    assert tuple(h.kernel.terminated) == (1, 2, "__pval_terminate")
    assert h.kernel.warnings[-1].endswith("action: 1, size: 0, ret: 255, svsm_ret: 0x0")
    assert h.msr_log[-1] == 0x21100


def test_unvalidated_access_vc_0x404_terminates_0_0():
    def wl(kernel, cpu):
        return cpu.read(__va(kernel, 50 << 20), 8)  # unaccepted RAM

    h = FakeHost(GuestConfig(), workload=wl)
    assert h.run() == "terminated"
    assert tuple(h.kernel.terminated) == (0, 0, "exc_vmm_communication")
    assert h.kernel.warnings[-1] == "Unsupported exit-code 0x404 in #VC exception"


def test_second_ghcb_nesting_level_panics():
    def wl(kernel, cpu):
        s1, s2, s3 = GhcbState(), GhcbState(), GhcbState()
        g1 = __sev_get_ghcb(kernel, s1)
        g2 = __sev_get_ghcb(kernel, s2)
        assert g1 == g2 and s1.ghcb is None and s2.ghcb == kernel.runtime_data[0].backup_ghcb
        __sev_get_ghcb(kernel, s3)

    h = FakeHost(GuestConfig(), workload=wl)
    assert h.run() == "shutdown"
    assert h.kernel.panicked == "Unable to handle #VC exception! GHCB and Backup GHCB are already in use"
    d = h.kernel.runtime_data[0]
    assert not d.ghcb_active and not d.backup_ghcb_active
