# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Boot of the guest against the fake host: MSR protocol order, GHCB registration,
power-off through the IOIO #VC, and the early termination codes (linux-guest.md 5.1, 6,
8.2; hardware-and-ghcb.md 6)."""

from guest_fakehost import FakeHost

from snpsim.guest.kernel import GuestConfig


def test_boot_and_power_off():
    h = FakeHost(GuestConfig())
    assert h.run() == "poweroff"
    k = h.kernel
    assert k.terminated is None and k.panicked is None
    # MSR protocol: SEV_INFO (0x002), HV features (0x080) first, as the decompressor does
    infos = [m & 0xFFF for m in h.msr_log]
    assert infos[:2] == [0x002, 0x080]
    # boot GHCB registered, then the per-CPU GHCB
    assert h.registered[0] == k.boot.bss_decrypted_gpa
    assert h.registered[-1] == k.runtime_data[0].ghcb_page - 0xFFFF888000000000
    assert k.sev_cfg.ghcbs_initialized
    # power-off: OUT 0x2000 to port 0x604, 16-bit, 64-bit address size
    info1, rax = h.ioio[-1]
    assert info1 >> 16 == 0x604
    assert info1 & 1 == 0  # OUT
    assert info1 & (1 << 5)  # 16-bit operand
    assert rax == 0x2000
    assert k.powered_off
