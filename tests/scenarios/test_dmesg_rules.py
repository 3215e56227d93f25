# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""How ``--from-dmesg`` reads a log when its sources disagree or are missing (issue 15,
item 3), each rule on a small crafted log.  The log lines are the kernel's own formats:
"BIOS-e820: [mem A-B] usable" (arch/x86/kernel/e820.c), "Memory: AK/TK available"
(mm/mm_init.c mem_init_print_info), "Memory Encryption Features active: ..."
(arch/x86/mm/mem_encrypt.c print_mem_encrypt_feature_info), "tdx: Guest detected"
(arch/x86/coco/tdx/tdx.c), "smpboot: Allowing N CPUs, M hotplug CPUs"."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- memory that arrives by hot-add (issue 15 item 3, audit rule 1) ----------------------------

# A paravisor-style boot map: 56 MiB of RAM from 1 MiB (usable 0x100000-0x38fffff).
SMALL_E820 = ("BIOS-provided physical RAM map:\n"
              "BIOS-e820: [mem 0x0000000000100000-0x00000000038fffff] usable\n")
# drivers/virtio/virtio_mem.c virtio_mem_init: dev_info "start address: 0x%llx" and
# "region size: 0x%llx" (a 4 GiB region at 4 GiB).
VIRTIO_MEM = ("virtio_mem virtio0: start address: 0x100000000\n"
              "virtio_mem virtio0: region size: 0x100000000\n")
# drivers/hv/hv_balloon.c process_info: pr_info "Max. dynamic memory size: %llu MB".
HV_MAX = "hv_balloon: Max. dynamic memory size: 4152 MB"


def test_virtio_mem_region_counts_as_ram_above_the_boot_map_with_a_warning():
    cfg = scan_dmesg(_log(SMALL_E820, SNP, CPUS, VIRTIO_MEM))
    assert cfg.memory_bytes == 56 << 20            # the boot map alone
    assert [(h.start, h.size, h.source, h.kind) for h in cfg.hotplug] == [
        (1 << 32, 1 << 32, "virtio_mem", "region")]
    assert cfg.hotplug_bytes == 1 << 32
    assert cfg.memory_after_hotplug_bytes == (56 << 20) + (1 << 32)
    assert len(cfg.warnings) == 1                  # says the model boots the boot map alone


def test_srat_hotplug_range_and_hv_balloon_hot_add_are_parsed():
    # drivers/acpi/numa/srat.c acpi_numa_memory_affinity_init: "SRAT: Node %u PXM %u
    # [mem %#010Lx-%#010Lx]%s%s" with " hotplug" (pr_fmt "ACPI: "); a range without the
    # word is boot memory and is not hot-add.  drivers/hv/hv_balloon.c handle_pg_range:
    # pr_debug "Hot adding %lu pages starting at pfn 0x%lx." (4 KiB Hyper-V pages).
    cfg = scan_dmesg(_log(SMALL_E820, SNP, CPUS,
                          "ACPI: SRAT: Node 0 PXM 0 [mem 0x00000000-0x03ffffff]",
                          "ACPI: SRAT: Node 0 PXM 0 [mem 0x100000000-0x13fffffff] hotplug",
                          "hv_balloon: Hot adding 32768 pages starting at pfn 0x140000."))
    assert [(h.start, h.size, h.kind) for h in cfg.hotplug] == [
        (0x100000000, 1 << 30, "region"), (0x140000000, 128 << 20, "added")]
    assert cfg.hotplug_bytes == (1 << 30) + (128 << 20)


def test_hv_balloon_maximum_above_what_the_log_accounts_for_is_a_warning():
    # 4152 MB = the 56 MiB boot map + 4 GiB: agrees with the virtio_mem region.
    agree = scan_dmesg(_log(SMALL_E820, SNP, CPUS, VIRTIO_MEM, HV_MAX))
    assert agree.hv_balloon_max_bytes == 4152 << 20
    assert len(agree.warnings) == 1                # the hot-add note only
    more = scan_dmesg(_log(SMALL_E820, SNP, CPUS, HV_MAX))
    assert more.hotplug == () and len(more.warnings) == 1
    less = scan_dmesg(_log(SMALL_E820, SNP, CPUS, VIRTIO_MEM,
                           "hv_balloon: Max. dynamic memory size: 1024 MB"))
    assert len(less.warnings) == 2


def test_failed_hot_add_lines_are_a_warning():
    # drivers/acpi/acpi_memhotplug.c acpi_memory_enable_device / acpi_memory_device_add
    # (dev_err), drivers/hv/hv_balloon.c hv_mem_hot_add (pr_err).
    failed = ("acpi PNP0C80:00: add_memory failed",
              "acpi PNP0C80:00: acpi_memory_enable_device() error",
              "hv_balloon: hot_add memory failed error is -17")
    cfg = scan_dmesg(_log(E820, SNP, CPUS, *failed))
    assert cfg.hotplug_failures == failed
    assert len(cfg.warnings) == 1
    assert scan_dmesg(_log(E820, SNP, CPUS)).hotplug_failures == ()


def test_cli_paravisor_log_warns_of_hot_add_and_fails_on_swiotlb(tmp_path):
    """56 MiB of boot RAM cannot hold the 64 MiB swiotlb an SEV guest sizes at boot
    (memblock_phys_mem_size() of the boot map, before any hot-add); the run says that the
    hot-added memory is not in the boot map and exits 1 for the failed boot."""
    log = tmp_path / "paravisor.log"
    log.write_text(_log(SMALL_E820, SNP, CPUS, VIRTIO_MEM, HV_MAX))
    r = CliRunner().invoke(main, ["run", "boot", "--from-dmesg", str(log), "--json"])
    assert r.exit_code == 1
    assert "hot-add" in r.stderr
    import json

    out = json.loads(r.stdout)
    assert out["config"]["hotplug_bytes"] == 1 << 32
    assert out["outcome"]["scenario_errors"]


# -- the log's reserved ranges in the guest's memory layout (audit rule 2) --------------------

# 512 MiB from 1 MiB with the top 16 MiB below it reserved and ACPI NVS, as firmware
# keeps its own data at the top of low RAM (log 01: 0x7ff57000-0x7fffffff).
TOP_RESERVED = ("BIOS-provided physical RAM map:\n"
                "BIOS-e820: [mem 0x0000000000100000-0x000000001effffff] usable\n"
                "BIOS-e820: [mem 0x000000001f000000-0x000000001f7fffff] reserved\n"
                "BIOS-e820: [mem 0x000000001f800000-0x000000001fffffff] ACPI NVS\n")


def test_guest_e820_keeps_the_logs_reserved_ranges_out_of_ram():
    from snpsim.scenarios.dmesg import guest_e820_for_log
    from snpsim.system import firmware_e820
    from snpsim.vmm.machine import pc_memory_layout

    cfg = scan_dmesg(_log(TOP_RESERVED, SNP, CPUS))
    e820 = guest_e820_for_log(cfg, firmware_e820(pc_memory_layout(512 << 20)))
    low = [e for e in e820 if e[0] < 1 << 32 and e[0] < 0xE0000000]
    # E820_TYPE_RAM 1, E820_TYPE_RESERVED 2, E820_TYPE_NVS 4 (arch/x86/include/asm/e820/types.h)
    assert low == [(0x100000, 0x1EF00000, 1), (0x1F000000, 0x800000, 2),
                   (0x1F800000, 0x800000, 4)]


def test_swiotlb_lands_only_on_ram_the_crafted_log_has(tmp_path):
    log = tmp_path / "guest.log"
    log.write_text(_log(TOP_RESERVED, SNP, CPUS))
    r = CliRunner().invoke(main, ["run", "boot", "--from-dmesg", str(log), "--json"])
    assert r.exit_code == 0, r.output
    import json

    res = json.loads(r.stdout)["result"]
    start, size = res["swiotlb_gpa"], res["swiotlb_bytes"]
    assert size == 64 << 20                        # 6 % of 495 MiB, clamped to 64 MiB
    assert 0x100000 <= start and start + size <= 0x1F000000
    assert res["bss_decrypted_gpa"] + (2 << 20) <= 0x1F000000


def test_log01_swiotlb_overlaps_no_reserved_range_of_the_log():
    """Log 01 (QEMU 10.0 + OVMF, 6.16, 2 GiB): the model's swiotlb (128 MiB, as the log's
    "software IO TLB: mapped [mem 0x71a00000-0x79a00000] (128MB)") lies inside one of the
    log's "usable" ranges and overlaps none of its reserved / ACPI data / ACPI NVS ranges,
    nor the RAM the log shows memblock holding ("RAMDISK: [mem 0x7cbe3000-0x7cd52fff]",
    "NODE_DATA(0) allocated [mem 0x7ff2c500-0x7ff56fff]").

    The model's memblock allocates top-down, as Linux's does on x86-64, so the pool ends
    where the highest stretch of the log's free RAM below 4 GiB that holds 128 MiB ends:
    at 0x7cbe3000, the initrd's start (above it, up to the "reserved" range at
    0x7f0ef000, are only 35 MiB; the model's .bss..decrypted and per-CPU blocks took 2 MiB
    blocks in the small ranges above that).  Linux put it 0x31e3000 bytes (about 50 MiB)
    lower, at 0x71a00000, because memblock users the model does not run took that first:
    the sparse memmap (about 32 MiB of struct page for 2 GiB), the EFI boot-services and
    loader regions that efi_reserve_boot_services keeps until efi_free_boot_services (not
    printed without efi=debug), the page tables of the direct map, the log buffer and the
    dentry and inode hash tables ("Dentry cache hash table entries: 262144 (order: 9,
    2097152 bytes...").  The log does not give them all, so the test pins the model's own
    top-down answer."""
    import json

    path = Path(__file__).resolve().parents[1] / "data" / "dmesg" / "01-qemu-snp-6.16-4cpu-2g.log"
    cfg = scan_dmesg(path.read_text())
    reserved = [(e.start, e.end + 1) for e in cfg.e820 if e.type != "usable"]
    usable = [(e.start, e.end + 1) for e in cfg.e820 if e.type == "usable"]
    r = CliRunner().invoke(main, ["run", "boot", "--from-dmesg", str(path), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)["result"]
    start, end = res["swiotlb_gpa"], res["swiotlb_gpa"] + res["swiotlb_bytes"]
    assert res["swiotlb_bytes"] == (cfg.swiotlb.mapped_end - cfg.swiotlb.mapped_start)
    assert not [(s, e) for s, e in reserved if s < end and start < e]
    assert any(s <= start and end <= e for s, e in usable)
    held = [(a, b) for a, b, _what in cfg.memblock_reserved]
    assert held == [(0x7CBE3000, 0x7CD53000), (0x7FF2C000, 0x7FF57000)]
    assert not [(s, e) for s, e in held if s < end and start < e]
    assert end == 0x7CBE3000
    bss = res["bss_decrypted_gpa"]
    assert not [(s, e) for s, e in reserved + held if s < bss + (2 << 20) and bss < e]


def test_a_log_without_ram_where_the_model_loads_the_kernel_is_refused(tmp_path):
    # 16 MiB-18 MiB (CONFIG_PHYSICAL_START) "reserved": the model does not relocate.
    log = tmp_path / "guest.log"
    log.write_text(_log("BIOS-provided physical RAM map:\n"
                        "BIOS-e820: [mem 0x0000000000100000-0x0000000000ffffff] usable\n"
                        "BIOS-e820: [mem 0x0000000001000000-0x00000000011fffff] reserved\n"
                        "BIOS-e820: [mem 0x0000000001200000-0x000000001fffffff] usable\n",
                        SNP, CPUS))
    r = CliRunner().invoke(main, ["run", "boot", "--from-dmesg", str(log)])
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


_MB = 1 << 20
_span = st.tuples(st.integers(0, 63), st.integers(1, 16))   # (start, length) in 64 KiB steps


@settings(max_examples=200, deadline=None)
@given(usable=st.lists(_span, max_size=5), other=st.lists(_span, max_size=5),
       hot=st.lists(_span, max_size=2), cut_short=st.booleans())
def test_guest_e820_for_log_matches_a_per_page_model(usable, other, hot, cut_short):
    """guest_e820_for_log (range arithmetic) against the rule page by page: a page is
    RAM for the guest when the VM has it as RAM, the log lists it as "usable" (or the
    log's map is cut short), and neither a non-RAM range of the log nor a hot-add range
    covers it; a page of the log's non-RAM ranges inside the VM's RAM is listed with
    its type."""
    from snpsim.scenarios.dmesg import DmesgConfig, E820Entry, HotAdd, guest_e820_for_log

    step = 64 << 10
    entries = ([E820Entry(s * step, (s + n) * step - 1, "usable") for s, n in usable]
               + [E820Entry(s * step, (s + n) * step - 1, "ACPI NVS") for s, n in other])
    cfg = DmesgConfig(memory_bytes=4 * _MB, e820=tuple(entries),
                      memory_source="Memory: line" if cut_short else "e820",
                      hotplug=tuple(HotAdd(s * step, n * step, "virtio_mem", "region")
                                    for s, n in hot))
    # The VM's RAM: 0-640K and 1M-3M (a firmware map with a hole), then MMIO.
    firmware = ((0, 0xA0000, 1), (0x100000, 2 * _MB, 1), (3 * _MB, _MB, 2))
    got = guest_e820_for_log(cfg, firmware)
    page = 4096
    vm = {p for a, n, t in firmware if t == 1 for p in range(a // page, (a + n) // page)}
    listed = {p for e in entries if e.type == "usable"
              for p in range(e.start // page, (e.end + 1) // page)}
    nonram = {p for e in entries if e.type != "usable"
              for p in range(e.start // page, (e.end + 1) // page)}
    hotp = {p for s, n in hot for p in range(s * step // page, (s + n) * step // page)}
    want_ram = (vm if cut_short or not listed else vm & listed) - nonram - hotp
    got_ram = {p for a, n, t in got if t == 1 for p in range(a // page, (a + n) // page)}
    assert got_ram == want_ram
    got_nvs = {p for a, n, t in got if t == 4 for p in range(a // page, (a + n) // page)}
    assert got_nvs == nonram & vm
    assert (3 * _MB, _MB, 2) in got                  # the firmware's own entries stay


def test_memblock_reservations_the_log_prints_are_parsed():
    # arch/x86/kernel/setup.c reserve_initrd / relocate_initrd, kernel/crash_reserve.c
    # reserve_crashkernel_generic (end exclusive), mm/numa.c alloc_node_data.
    cfg = scan_dmesg(_log(E820, SNP, CPUS,
                          "RAMDISK: [mem 0x03000000-0x031fffff]",
                          "Move RAMDISK from [mem 0x03000000-0x031fffff] to "
                          "[mem 0x02000000-0x021fffff]",
                          "crashkernel reserved: 0x0000000001800000 - 0x0000000001c00000 (4 MB)",
                          "NODE_DATA(0) allocated [mem 0x03ffc500-0x03ffffff]"))
    assert cfg.memblock_reserved == ((0x2000000, 0x2200000, "initrd"),
                                     (0x1800000, 0x1C00000, "crashkernel"),
                                     (0x3FFC000, 0x4000000, "NODE_DATA"))


def test_ram_in_a_partial_2m_unit_is_accepted_before_use(tmp_path):
    """RAM ending mid-unit (0x1effb000) leaves the 2 MiB unit 0x1ee00000-0x1effffff only
    partly RAM: no unaccepted-memory bit covers it, as the EFI stub accepts such pieces
    at once (process_unaccepted_memory, drivers/firmware/efi/libstub/
    unaccepted_memory.c).  Top-down, the per-CPU areas land there (after the 2 MiB
    .bss..decrypted block at 0x1ec00000) and sev_map_percpu_data converts pages of them;
    the boot completes only if the piece was accepted first (else GHCB_TERM_PVALIDATE)."""
    log = tmp_path / "guest.log"
    log.write_text(_log("BIOS-provided physical RAM map:\n"
                        "BIOS-e820: [mem 0x0000000000100000-0x000000001effafff] usable\n"
                        "BIOS-e820: [mem 0x000000001effb000-0x000000001fffffff] reserved\n",
                        SNP, CPUS))
    r = CliRunner().invoke(main, ["run", "boot", "--from-dmesg", str(log), "--json"])
    assert r.exit_code == 0, r.output
    import json

    assert json.loads(r.stdout)["result"]["bss_decrypted_gpa"] == 0x1EC00000
