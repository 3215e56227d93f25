# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``boot --from-dmesg`` input side (issue 7): parse real guest kernel logs and check that
the swiotlb size computed from what the log says equals the size the log prints.

The logs are kept in ``tests/data/dmesg/``, each with its source in the README.md there.
Every expected value below is read from the log text by eye and quoted in a comment;
none is computed by the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from snpsim.guest.swiotlb import swiotlb_size_for_sev, swiotlb_sizing_for_sev
from snpsim.scenarios.dmesg import (
    DmesgConfig,
    DmesgError,
    E820Entry,
    MemEncryptMode,
    parse_dmesg,
    scan_dmesg,
)

MiB = 1 << 20
GiB = 1 << 30

# The logs live in the repository, with their provenance in tests/data/dmesg/README.md.
DMESG_DIR = Path(__file__).resolve().parents[1] / "data" / "dmesg"

LOG_01 = "01-qemu-snp-6.16-4cpu-2g.log"
LOG_03 = "03-kata1619-sev-5.6.log"
LOG_06 = "06-amdsev264-svsm-ovmf-snp-6.11-4cpu.log"


def read_log(name: str) -> str:
    return (DMESG_DIR / name).read_text()


# --- 01: QEMU 10.0 + OVMF, SNP, Linux 6.16, complete boot ----------------------------


def test_log01_fields():
    cfg = parse_dmesg(read_log(LOG_01))
    # "Linux version 6.16.0-snp-guest-038d61fd6422 (user@guest) ..."
    assert cfg.kernel_version == "6.16.0-snp-guest-038d61fd6422"
    # "Memory Encryption Features active: AMD SEV SEV-ES SEV-SNP"
    assert cfg.mode is MemEncryptMode.SNP
    assert cfg.encryption_features == ("SEV", "SEV-ES", "SEV-SNP")
    # "SEV: Status: SEV SEV-ES SEV-SNP "
    assert cfg.sev_status == ("SEV", "SEV-ES", "SEV-SNP")
    # "CPU topo: Allowing 4 present CPUs plus 0 hotplug CPUs"
    assert cfg.possible_cpus == 4
    # "smp: Brought up 1 node, 4 CPUs"
    assert cfg.online_cpus == 4
    assert cfg.nr_cpus == 4
    # "Memory: 1865592K/2091368K available (...)"
    assert cfg.memory_line_available_bytes == 1865592 * 1024
    assert cfg.memory_line_total_bytes == 2091368 * 1024
    # "SEV: SNP running at VMPL0." / "SEV: Using SNP CPUID table, 28 entries present."
    assert cfg.vmpl == 0
    assert not cfg.svsm
    assert cfg.snp_cpuid_entries == 28
    assert cfg.swiotlb_param is None


def test_log01_memory_from_e820_equals_the_memory_line():
    """The e820 route (memblock_phys_mem_size after trim_bios_range) and the kernel's
    own "Memory: .../2091368K" physpages figure agree on this log."""
    cfg = parse_dmesg(read_log(LOG_01))
    assert cfg.memory_source == "e820"
    # "Memory: 1865592K/2091368K available"
    assert cfg.memory_bytes == 2091368 * 1024


def test_log01_e820_map():
    cfg = parse_dmesg(read_log(LOG_01))
    assert cfg.e820_source == "BIOS-e820"
    assert len(cfg.e820) == 22  # lines 10-31 of the log
    # "BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable"
    assert cfg.e820[0] == E820Entry(0x0, 0x9FFFF, "usable")
    # "BIOS-e820: [mem 0x0000000000800000-0x000000000080cfff] ACPI NVS"
    assert cfg.e820[2] == E820Entry(0x800000, 0x80CFFF, "ACPI NVS")
    # "BIOS-e820: [mem 0x000000007f36f000-0x000000007f37efff] ACPI data"
    assert cfg.e820[8] == E820Entry(0x7F36F000, 0x7F37EFFF, "ACPI data")
    # "BIOS-e820: [mem 0x000000fd00000000-0x000000ffffffffff] reserved"
    assert cfg.e820[-1] == E820Entry(0xFD00000000, 0xFFFFFFFFFF, "reserved")


def test_log01_swiotlb_lines():
    cfg = parse_dmesg(read_log(LOG_01))
    # "software IO TLB: SWIOTLB bounce buffer size adjusted to 122MB"
    assert cfg.swiotlb.adjusted_mb == 122
    # "software IO TLB: area num 4."
    assert cfg.swiotlb.area_num == 4
    # "software IO TLB: SWIOTLB bounce buffer size roundup to 128MB"
    assert cfg.swiotlb.roundup_mb == 128
    # "software IO TLB: mapped [mem 0x0000000071a00000-0x0000000079a00000] (128MB)"
    assert cfg.swiotlb.mapped_start == 0x71A00000
    assert cfg.swiotlb.mapped_end == 0x79A00000
    assert cfg.swiotlb.mapped_mb == 128


def test_log01_swiotlb_size_equals_what_the_kernel_mapped():
    """Issue 7's key check: size from the parsed config == the log's swiotlb size."""
    cfg = parse_dmesg(read_log(LOG_01))
    size = swiotlb_size_for_sev(cfg.memory_bytes, cfg.nr_cpus, kernel_version=cfg.kernel_version)
    # "software IO TLB: mapped [mem 0x0000000071a00000-0x0000000079a00000] (128MB)"
    assert size == 128 * MiB
    # the mapped range: 0x79a00000 - 0x71a00000 = 0x8000000 bytes
    assert size == 0x79A00000 - 0x71A00000
    assert cfg.swiotlb_bytes() == 128 * MiB


def test_log01_modelled_pr_info_lines_are_the_logs():
    """The model prints what the kernel printed, line for line, including the rounding
    to the 4 areas (122 MiB of 6 % -> power of two of slabs -> 128 MiB)."""
    text = read_log(LOG_01)
    cfg = parse_dmesg(text)
    sizing = swiotlb_sizing_for_sev(
        cfg.memory_bytes, cfg.nr_cpus, kernel_version=cfg.kernel_version
    )
    assert sizing.messages == (
        "software IO TLB: SWIOTLB bounce buffer size adjusted to 122MB",  # log line 50
        "software IO TLB: area num 4.",  # log line 132
        "software IO TLB: SWIOTLB bounce buffer size roundup to 128MB",  # log line 133
    )
    for message in sizing.messages:
        assert message in text
    assert sizing.nareas == 4
    assert sizing.mapped_mb == 128


def test_log01_the_kernel_does_not_size_from_totalram():
    """6 % of the *available* figure (totalram, 1865592K) would print 109MB, not the
    logged 122MB: the kernel uses memblock_phys_mem_size()."""
    cfg = parse_dmesg(read_log(LOG_01))
    wrong = swiotlb_sizing_for_sev(
        cfg.memory_line_available_bytes, cfg.nr_cpus, kernel_version=cfg.kernel_version
    )
    assert wrong.messages[0].endswith("adjusted to 109MB")
    assert cfg.swiotlb.adjusted_mb == 122  # "... size adjusted to 122MB"


# --- 03: Kata issue 1619, SEV (not SNP), Linux 5.6, excerpt ---------------------------


def test_log03_refused_without_memory():
    with pytest.raises(DmesgError, match="--memory"):
        parse_dmesg(read_log(LOG_03))


def test_log03_fields_and_swiotlb_with_memory():
    cfg = parse_dmesg(read_log(LOG_03), memory_bytes=2 * GiB)
    # "Linux version 5.6.0-sev-sev-es-5.6-v3.container (user@guest) ..."
    assert cfg.kernel_version == "5.6.0-sev-sev-es-5.6-v3.container"
    # "AMD Secure Encrypted Virtualization (SEV) active"
    assert cfg.mode is MemEncryptMode.SEV
    assert cfg.memory_source == "--memory"
    assert cfg.nr_cpus is None  # no CPU line in the excerpt
    # "software IO TLB: mapped [mem 0x6e42a000-0x7242a000] (64MB)"
    assert cfg.swiotlb.mapped_mb == 64
    assert cfg.swiotlb.adjusted_mb is None  # 5.6 predates the SEV adjustment (5.11)
    # Before v5.11 the pool is the 64 MiB default whatever the memory and CPU count.
    for memory in (1 * GiB, 2 * GiB, 16 * GiB, 64 * GiB):
        for cpus in (1, 4, 64):
            size = swiotlb_size_for_sev(memory, cpus, kernel_version=cfg.kernel_version)
            assert size == 64 * MiB  # "(64MB)"
    assert size == 0x7242A000 - 0x6E42A000  # the mapped range of the log
    assert cfg.with_vcpus(4).swiotlb_bytes() == 64 * MiB


# --- 06: AMDSEV issue 264 (COCONUT-SVSM + OVMF), SNP, 6.11, excerpt -------------------


def test_log06_refused_without_memory():
    with pytest.raises(DmesgError, match="--memory"):
        parse_dmesg(read_log(LOG_06))


def test_log06_fields_with_memory():
    cfg = parse_dmesg(read_log(LOG_06), memory_bytes=4 * GiB)
    # "Memory Encryption Features active: AMD SEV SEV-ES SEV-SNP"
    assert cfg.mode is MemEncryptMode.SNP
    # "smp: Brought up 1 node, 4 CPUs"
    assert cfg.online_cpus == 4
    assert cfg.possible_cpus is None
    assert cfg.nr_cpus == 4
    assert cfg.kernel_version is None  # no "Linux version" line in the excerpt
    assert cfg.swiotlb.mapped_mb is None  # no swiotlb line in the excerpt
    assert cfg.memory_bytes == 4 * GiB


def test_every_log_either_gives_memory_or_is_refused():
    logs = sorted(DMESG_DIR.glob("*.log"))
    assert logs
    for path in logs:
        cfg = scan_dmesg(path.read_text())
        if cfg.memory_bytes is None:
            with pytest.raises(DmesgError, match="--memory"):
                parse_dmesg(path.read_text())
        else:
            assert parse_dmesg(path.read_text()).memory_bytes == cfg.memory_bytes


# --- robustness and formats (synthetic lines, printk formats of the cited sources) ----


def test_junk_only_is_refused_with_a_clear_message():
    with pytest.raises(DmesgError) as exc:
        parse_dmesg("hello\n\x00\x01 garbage\n[    1.0] nothing here\n")
    assert isinstance(exc.value, ValueError)
    assert "--memory" in str(exc.value)
    assert "memory size" in str(exc.value)


def test_empty_log_is_refused():
    with pytest.raises(DmesgError):
        parse_dmesg("")


def test_junk_and_malformed_lines_are_ignored():
    text = "\n".join(
        [
            "random noise",
            "BIOS-e820: [mem 0xzz-0x10] usable",  # not hex: ignored
            "Memory: lotsK/K available",  # not numbers: ignored
            "smp: Brought up many CPUs",  # no count: ignored
            "software IO TLB: mapped [mem nowhere] (MB)",
            "\x1b[0m\ufffd binary \x7f",
            "[    0.000000] BIOS-provided physical RAM map:",
            "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable",
            "[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x00000000bfffffff] usable",
            "[    0.000000] BIOS-e820: [mem 0x00000000c0000000-0x00000000ffffffff] reserved",
            "<6>[    0.100000] smp: Brought up 1 node, 8 CPUs",
            "Memory Encryption Features active: AMD SEV SEV-ES",
            "more junk: [mem 0x0-0x1] usable",
        ]
    )
    cfg = parse_dmesg(text)
    # [0x1000, 0xa0000) + [0x100000, 0xc0000000): 636 KiB + 3071 MiB
    assert cfg.memory_bytes == (0xA0000 - 0x1000) + (0xC0000000 - 0x100000)
    assert len(cfg.e820) == 3
    assert cfg.online_cpus == 8
    assert cfg.mode is MemEncryptMode.SEV_ES
    assert cfg.swiotlb.mapped_mb is None


def test_junk_interleaved_into_log01_changes_nothing():
    text = read_log(LOG_01)
    noisy = "\n".join(
        f"{line}\n@@ junk {i} Memory: x smp: y" for i, line in enumerate(text.splitlines())
    )
    assert parse_dmesg(noisy) == parse_dmesg(text)


def test_memory_line_is_the_fallback_without_e820():
    cfg = parse_dmesg("[    0.3] Memory: 3900000K/4193784K available (20000K kernel code)\n")
    assert cfg.memory_source == "Memory: line"
    assert cfg.memory_bytes == 4193784 * 1024


def test_older_feature_lines_and_cpu_lines():
    # arch/x86/mm/mem_encrypt.c print_mem_encrypt_feature_info, v5.10-v5.15 form
    cfg = scan_dmesg("AMD Memory Encryption Features active: SEV SEV-ES\n")
    assert cfg.mode is MemEncryptMode.SEV_ES
    cfg = scan_dmesg("AMD Memory Encryption Features active: SEV SEV-ES SEV-SNP\n")
    assert cfg.mode is MemEncryptMode.SNP
    cfg = scan_dmesg("Memory Encryption Features active: AMD SME\n")
    assert cfg.mode is None and cfg.encryption_features == ("SME",)
    cfg = scan_dmesg("Memory Encryption Features active: Intel TDX\n")
    assert cfg.mode is None
    # arch/x86/kernel/smpboot.c prefill_possible_map, pre-6.9 form: total is N
    cfg = scan_dmesg("smpboot: Allowing 8 CPUs, 2 hotplug CPUs\nsmp: Brought up 1 node, 6 CPUs\n")
    assert (cfg.possible_cpus, cfg.online_cpus, cfg.nr_cpus) == (8, 6, 8)
    cfg = scan_dmesg("CPU topo: Allowing 6 present CPUs plus 2 hotplug CPUs\n")
    assert cfg.possible_cpus == 8


def test_user_defined_map_replaces_the_bios_map():
    text = "\n".join(
        [
            "BIOS-provided physical RAM map:",
            "BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable",
            "BIOS-e820: [mem 0x0000000000100000-0x00000000ffffffff] usable",
            "user-defined physical RAM map:",
            "user: [mem 0x0000000000000000-0x000000000009ffff] usable",
            "user: [mem 0x0000000000100000-0x000000003fffffff] usable",
        ]
    )
    cfg = parse_dmesg(text)
    assert cfg.e820_source == "user"
    assert cfg.memory_bytes == (0xA0000 - 0x1000) + (0x40000000 - 0x100000)


def test_command_line_swiotlb_and_accept_memory():
    text = (
        "Command line: console=ttyS0 swiotlb=131072,force accept_memory=eager\n"
        "Memory: 1000K/4194304K available\n"
        "smp: Brought up 1 node, 4 CPUs\n"
        "Linux version 6.16.0 (x@y)\n"
    )
    cfg = parse_dmesg(text)
    assert cfg.swiotlb_param == "131072,force"
    assert cfg.accept_memory == "eager"
    # swiotlb=131072 slabs of 2 KiB wins over the 6 % rule: 256 MiB
    assert cfg.swiotlb_bytes() == 131072 * 2048


def test_with_memory_and_with_vcpus():
    cfg = DmesgConfig()
    assert cfg.with_memory(4 * GiB).memory_bytes == 4 * GiB
    assert cfg.with_memory(4 * GiB).memory_source == "--memory"
    assert cfg.memory_bytes is None  # frozen: a new config is returned
    for bad in (0, -4096, 4097):
        with pytest.raises(ValueError):
            cfg.with_memory(bad)
    assert cfg.with_vcpus(2).nr_cpus == 2
    with pytest.raises(ValueError):
        cfg.with_vcpus(0)
    with pytest.raises(DmesgError, match="--memory"):
        cfg.swiotlb_bytes()
    with pytest.raises(ValueError, match="--vcpus"):
        cfg.with_memory(4 * GiB).swiotlb_bytes()


def test_explicit_memory_overrides_the_log():
    cfg = parse_dmesg(read_log(LOG_01), memory_bytes=16 * GiB)
    assert cfg.memory_bytes == 16 * GiB and cfg.memory_source == "--memory"
    # 6 % of 16 GiB = 983 MiB -> 2^19 slabs = 1 GiB (the SZ_1G clamp)
    assert cfg.swiotlb_bytes() == 1 * GiB


# --- the sizing model beyond the logs (expected values worked by hand) ----------------


def test_pre_areas_kernel_rounds_to_a_segment_only():
    # 5.15, 2 GiB: 6 % = 128,849,018 B -> 62,915 slabs -> ALIGN 128 = 62,976 slabs
    # = 128,974,848 B (123 MiB mapped); "adjusted to" prints the slab-aligned size, 122MB.
    s = swiotlb_sizing_for_sev(2 * GiB, 4, kernel_version="5.15.0")
    assert s.nslabs == 62976
    assert s.bytes == 62976 * 2048
    assert s.mapped_mb == 123
    assert s.nareas == 1
    assert s.messages == ("software IO TLB: SWIOTLB bounce buffer size adjusted to 122MB",)


def test_clamps_and_area_rounding_v6():
    # 16 GiB: 6 % = 983 MiB -> 503,424 slabs -> power of two 524,288 = 1 GiB (== SZ_1G)
    assert swiotlb_size_for_sev(16 * GiB, 4, kernel_version="6.16") == 1 * GiB
    # 1 TiB: clamped to SZ_1G before rounding
    assert swiotlb_size_for_sev(1024 * GiB, 4, kernel_version="6.16") == 1 * GiB
    # 512 MiB: 6 % = 30.7 MiB, clamped up to 64 MiB = 32,768 slabs, already a power of 2
    s = swiotlb_sizing_for_sev(512 * MiB, 1, kernel_version="6.16")
    assert s.bytes == 64 * MiB
    assert s.messages == (
        "software IO TLB: SWIOTLB bounce buffer size adjusted to 64MB",
        "software IO TLB: area num 1.",
    )
    # 6 CPUs -> 8 areas
    assert swiotlb_sizing_for_sev(2 * GiB, 6, kernel_version="6.16").nareas == 8
    # 1024 CPUs on 2 GiB: at least 128 slabs per area = 131,072 slabs = 256 MiB
    s = swiotlb_sizing_for_sev(2 * GiB, 1024, kernel_version="6.16")
    assert (s.nareas, s.bytes) == (1024, 256 * MiB)


def test_swiotlb_parameter():
    # swiotlb=1000: ALIGN(1000, 128) = 1024 slabs = 2 MiB; no 6 % adjustment
    assert swiotlb_size_for_sev(2 * GiB, 4, swiotlb_param="1000") == 2 * MiB
    # swiotlb=100,3: 128 slabs, 4 areas need 512 slabs -> 1 MiB
    s = swiotlb_sizing_for_sev(2 * GiB, 4, swiotlb_param="100,3")
    assert (s.nslabs, s.nareas) == (512, 4)
    assert s.messages == (
        "software IO TLB: area num 4.",
        "software IO TLB: SWIOTLB bounce buffer size roundup to 1MB",
    )
    # swiotlb=0x8000 is the default slab count, so the SEV adjustment still applies
    assert swiotlb_size_for_sev(2 * GiB, 4, swiotlb_param="0x8000") == 128 * MiB
    # swiotlb=noforce: no pool
    s = swiotlb_sizing_for_sev(2 * GiB, 4, swiotlb_param="noforce")
    assert s.disabled and s.bytes == 0


def test_bad_arguments():
    with pytest.raises(ValueError):
        swiotlb_size_for_sev(-1, 4)
    with pytest.raises(ValueError):
        swiotlb_size_for_sev(GiB, 0)
    with pytest.raises(ValueError):
        swiotlb_size_for_sev(GiB, 4, kernel_version="linux")
