# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""How ``--from-dmesg`` reads a log when its sources disagree or are missing (issue 15,
item 3), each rule on a small crafted log.  The log lines are the kernel's own formats:
"BIOS-e820: [mem A-B] usable" (arch/x86/kernel/e820.c), "Memory: AK/TK available"
(mm/mm_init.c mem_init_print_info), "Memory Encryption Features active: ..."
(arch/x86/mm/mem_encrypt.c print_mem_encrypt_feature_info), "tdx: Guest detected"
(arch/x86/coco/tdx/tdx.c), "smpboot: Allowing N CPUs, M hotplug CPUs"."""

import pytest
from click.testing import CliRunner

from snpsim.cli import main
from snpsim.scenarios.dmesg import (
    DmesgError,
    check_log_bounds,
    kernel_profile_for_version,
    parse_dmesg,
    scan_dmesg,
)

SNP = "Memory Encryption Features active: AMD SEV SEV-ES SEV-SNP"
CPUS = "smpboot: Allowing 2 CPUs, 0 hotplug CPUs"
# 64 MiB of RAM from 1 MiB: usable 0x100000-0x40fffff
E820 = ("BIOS-provided physical RAM map:\n"
        "BIOS-e820: [mem 0x0000000000100000-0x00000000040fffff] usable\n")


def _log(*lines):
    return "\n".join(["Linux version 6.16.0 (user@guest)", *lines]) + "\n"


def test_e820_and_memory_line_that_agree_give_no_warning():
    cfg = scan_dmesg(_log(E820, SNP, CPUS, "Memory: 60000K/65536K available"))
    assert cfg.memory_bytes == 64 << 20 and cfg.memory_source == "e820"
    assert cfg.warnings == ()


def test_an_e820_excerpt_cut_short_yields_to_the_memory_line_with_a_warning():
    # The map lists 64 MiB but the kernel counted 112 MiB of RAM pages: lines are missing.
    cfg = scan_dmesg(_log(E820, SNP, CPUS, "Memory: 100000K/114688K available"))
    assert cfg.memory_bytes == 114688 * 1024
    assert cfg.memory_source.startswith("Memory: line")
    assert len(cfg.warnings) == 1


def test_a_memory_line_below_the_e820_total_is_a_warning_and_e820_stays():
    cfg = scan_dmesg(_log(E820, SNP, CPUS, "Memory: 30000K/32768K available"))
    assert cfg.memory_bytes == 64 << 20 and cfg.memory_source == "e820"
    assert len(cfg.warnings) == 1


def test_no_cpu_count_is_a_warning():
    assert scan_dmesg(_log(E820, SNP)).warnings
    assert not scan_dmesg(_log(E820, SNP, CPUS)).warnings


def test_a_tdx_log_is_refused():
    for line in ("Memory Encryption Features active: Intel TDX", "tdx: Guest detected"):
        with pytest.raises(DmesgError):
            parse_dmesg(_log(E820, CPUS, line))


@pytest.mark.parametrize("version,profile,warns", [
    ("5.19.0", "6.4", False),     # SNP guest support; 253-entry descriptors until v6.4
    ("6.4.12", "6.4", False),
    ("6.5.0", "6.17", True),      # 64 entries and 2M entries from v6.5, no eviction yet
    ("6.11.0-rc1", "6.17", True),
    ("6.16.0-snp-guest", "6.16", False),
    ("6.18.2", "6.17", False),
    ("5.6.0", "6.17", True),      # before SNP guests existed
    (None, "6.17", True),
])
def test_kernel_profile_follows_the_log_version(version, profile, warns):
    got, note = kernel_profile_for_version(version)
    assert got == profile and (note is not None) == warns


def test_values_from_the_log_are_bounded_like_the_options():
    big = scan_dmesg(_log(E820, SNP, "smpboot: Allowing 4096 CPUs, 0 hotplug CPUs"))
    assert check_log_bounds(big, max_cpus=64, min_memory=32 << 20, max_memory=1 << 40)
    huge = scan_dmesg(_log("BIOS-e820: [mem 0x0000000000100000-0x00000fffffffffff] usable",
                           SNP, CPUS))
    assert check_log_bounds(huge, max_cpus=64, min_memory=32 << 20, max_memory=1 << 40)
    ok = scan_dmesg(_log(E820, SNP, CPUS))
    assert check_log_bounds(ok, max_cpus=64, min_memory=32 << 20, max_memory=1 << 40) is None


@pytest.mark.parametrize("lines", [
    (E820, CPUS),                                                      # a plain guest
    (E820, CPUS, "Memory Encryption Features active: Intel TDX"),      # another vendor's
    (E820, SNP, "smpboot: Allowing 4096 CPUs, 0 hotplug CPUs"),        # out of bounds
])
def test_cli_refuses_such_logs_with_one_line_and_status_2(tmp_path, lines):
    log = tmp_path / "guest.log"
    log.write_text(_log(*lines))
    r = CliRunner().invoke(main, ["run", "boot", "--from-dmesg", str(log)])
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_cli_warns_on_stderr_and_runs_a_log_without_cpu_count(tmp_path):
    log = tmp_path / "guest.log"
    # 512 MiB of RAM: room for the 64 MiB swiotlb an SEV guest of this size sets up
    log.write_text(_log("BIOS-e820: [mem 0x0000000000100000-0x00000000200fffff] usable", SNP))
    r = CliRunner().invoke(main, ["run", "boot", "--from-dmesg", str(log), "--json"])
    assert r.exit_code == 0, r.output
    assert "warning" in r.stderr and "vCPUs" in r.stderr


def test_a_boot_whose_swiotlb_fails_exits_1(tmp_path):
    """64 MiB of RAM cannot hold the 64 MiB swiotlb pool an SEV guest sizes for itself
    (kernel/dma/swiotlb.c; guest/swiotlb.py): the guest powers off, but the boot failed."""
    log = tmp_path / "guest.log"
    log.write_text(_log(E820, SNP, CPUS))
    r = CliRunner().invoke(main, ["run", "boot", "--from-dmesg", str(log), "--json"])
    assert r.exit_code == 1
    import json

    out = json.loads(r.stdout)["outcome"]
    assert out["completed"] and out["scenario_errors"]
