# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Configure a boot from a real guest kernel log: ``snpsim run boot --from-dmesg FILE``.

:func:`parse_dmesg` reads what the ``boot`` scenario needs from a Linux guest's kernel
log (``dmesg`` or a serial console): the kernel version, the memory size, the CPU
count, the e820 map, the memory-encryption mode, the swiotlb lines, and SNP extras
(VMPL, CPUID table, unaccepted-memory table, ``accept_memory=``).  Every other line is
ignored, as are lines that look like one of these but do not parse.

Which memory size.  The swiotlb sizing of an SEV guest uses
``memblock_phys_mem_size()`` (``arch/x86/mm/mem_encrypt.c`` ``mem_encrypt_setup_arch``,
v6.16), taken right after ``e820__memblock_setup``: every e820 RAM ("usable") range,
after ``trim_bios_range`` (``arch/x86/kernel/setup.c``) turned the first 4 KiB page
into "reserved" and ``memblock_trim_memory(PAGE_SIZE)`` dropped partial pages.  So the
memory size is computed that way from the last e820 map the log prints ("BIOS-e820",
or the "reserve setup_data" / "user" / "modified" maps that replace it).  The second figure of
``Memory: 1865592K/2091368K available`` (``mm/mm_init.c`` ``mem_init_print_info``,
``physpages``) counts the same pages and is the fallback when the log has no e820 map;
the first figure (``totalram_pages``, after reservations) is *not* what the kernel
sizes swiotlb from (on log 01: 6 % of it is 109 MiB, the kernel printed 122 MiB).
``e820: update``/``e820: remove`` lines are KERN_DEBUG and not applied (model choice).

Which CPU count.  swiotlb gets one area per *possible* CPU (``num_possible_cpus()``):
"smpboot: Allowing N CPUs, M hotplug CPUs" (older kernels, N is the total),
"CPU topo: Allowing N present CPUs plus M hotplug CPUs" (v6.9+, total N+M) or
"setup_percpu: ... nr_cpu_ids:N".  Without those, the online count of
"smp: Brought up N nodes, M CPUs" stands in (no hotplug CPUs assumed).

When the sources disagree.  An e820 map whose "usable" total falls short of the
``Memory:`` line's second figure is an excerpt with lines missing: the ``Memory:`` figure
is used and a warning says so; any other disagreement of more than 1 MiB is a warning
too.  A log with no CPU count gets a warning (the caller's default is used).  A log of
another platform's confidential guest (Intel TDX) is refused by :func:`parse_dmesg`;
one that names no memory-encryption feature at all is refused unless the caller states
the mode.  The kernel profile to model follows the log's version
(:func:`kernel_profile_for_version`).

Memory hot-added after boot (:class:`HotAdd`: virtio-mem regions, SRAT hotplug ranges,
hv_balloon's "Hot adding" debug lines) is counted as RAM above the boot map
(:attr:`DmesgConfig.hotplug_bytes`, :attr:`DmesgConfig.memory_after_hotplug_bytes`) and
always warned about: the drivers that add it run long after ``setup_arch``, so the
swiotlb sizing and every early allocation see the boot map alone, in the real guest as
in the model; the model does not place the hot-added memory in the VM it boots (model
choice: its boot scenario ends before any hot-add).  hv_balloon's "Max. dynamic memory
size" is compared with the boot map plus the hot-add lines, and failed hot-adds are
warned about.

Reserved ranges.  :func:`guest_e820_for_log` gives the guest the log's map: its
"reserved", "ACPI data", "ACPI NVS" (...) ranges are not RAM for the modelled guest, so
its memblock allocations (swiotlb, ``.bss..decrypted``, per-CPU areas) land only on RAM
the log has; the RAM it shows memblock holding early (initrd, ``NODE_DATA``, crash
kernel: :attr:`DmesgConfig.memblock_reserved`) is kept out of them too.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from snpsim.guest.swiotlb import swiotlb_sizing_for_sev
from snpsim.spec.e820 import (
    E820_TYPE_ACPI,
    E820_TYPE_NVS,
    E820_TYPE_RAM,
    E820_TYPE_RESERVED,
    E820_TYPE_UNUSABLE,
)
from snpsim.spec.units import PAGE_SIZE

__all__ = [
    "DmesgError",
    "MemEncryptMode",
    "E820Entry",
    "HotAdd",
    "SwiotlbLines",
    "DmesgConfig",
    "memblock_phys_mem_size_from_e820",
    "scan_dmesg",
    "parse_dmesg",
    "kernel_profile_for_version",
    "check_log_bounds",
    "e820_type_number",
    "log_reserved_ranges",
    "guest_e820_for_log",
]


class DmesgError(ValueError):
    """A kernel log that cannot configure a boot (no usable memory size)."""


class MemEncryptMode(enum.Enum):
    """The guest's memory-encryption mode as the kernel reports it (strongest feature)."""

    SEV = "SEV"
    SEV_ES = "SEV-ES"
    SNP = "SEV-SNP"


class E820Entry(NamedTuple):
    """One e820 range as the kernel prints it: ``[mem start-end] type``.

    ``start`` and ``end`` are guest physical addresses in bytes, ``end`` *inclusive*
    as printed; ``type`` is the printed name ("usable", "reserved", "ACPI data",
    "ACPI NVS", "unusable", "persistent (type 12)", "soft reserved", ...).
    """

    start: int
    end: int
    type: str

    @property
    def size(self) -> int:
        """Bytes covered by the range."""
        return self.end + 1 - self.start


class HotAdd(NamedTuple):
    """Memory a log says is (or can be) hot-added after boot: GPA ``start`` and ``size``
    (bytes), ``source`` and ``kind``.

    The kernel's formats (read in torvalds/linux):

    * ``source="virtio_mem"``, ``kind="region"``: "virtio_mem virtio0: start address:
      0x%llx" and "region size: 0x%llx" (``drivers/virtio/virtio_mem.c``
      ``virtio_mem_init``, ``dev_info``).  The device's region, the most it can plug;
      how much is plugged is not printed.
    * ``source="SRAT hotplug"``, ``kind="region"``: "ACPI: SRAT: Node %u PXM %u [mem
      %#010Lx-%#010Lx] hotplug" (``drivers/acpi/numa/srat.c``
      ``acpi_numa_memory_affinity_init``): a range firmware declares hot-pluggable
      (QEMU: its device-memory window for ``-m ...,maxmem=``), with or without DIMMs.
    * ``source="hv_balloon"``, ``kind="added"``: "hv_balloon: Hot adding %lu pages
      starting at pfn 0x%lx." (``drivers/hv/hv_balloon.c`` ``handle_pg_range``; a
      ``pr_debug``, so only with dynamic debug on): Hyper-V pages of 4 KiB.

    ``mm/memory_hotplug.c`` (``add_memory_resource``) and ``drivers/acpi/
    acpi_memhotplug.c`` (``acpi_memory_enable_device``) print nothing at the default
    level when a hot-add succeeds; their failures are in
    :attr:`DmesgConfig.hotplug_failures`.
    """

    start: int
    size: int
    source: str
    kind: str


class SwiotlbLines(NamedTuple):
    """What the log's ``software IO TLB:`` lines say (``kernel/dma/swiotlb.c``).

    Sizes in MiB as printed (truncated): ``adjusted_mb`` from "SWIOTLB bounce buffer
    size adjusted to NMB", ``area_num`` from "area num N.", ``roundup_mb`` from
    "SWIOTLB bounce buffer size roundup to NMB", ``mapped_start``/``mapped_end``
    (bytes, as printed: the end is exclusive there, ``mem->end = mem->start + bytes``)
    and ``mapped_mb`` from "mapped [mem A-B] (NMB)".  ``None`` where the log has no
    such line.
    """

    adjusted_mb: int | None = None
    area_num: int | None = None
    roundup_mb: int | None = None
    mapped_start: int | None = None
    mapped_end: int | None = None
    mapped_mb: int | None = None


@dataclass(frozen=True)
class DmesgConfig:
    """A boot configuration read from a guest kernel log; all sizes in bytes.

    - ``memory_bytes``: ``memblock_phys_mem_size()`` at boot (see the module docstring),
      or the ``--memory`` value after :meth:`with_memory`; ``memory_source`` says which
      ("e820", "Memory: line", "--memory"); ``None`` when the log gives none.
    - ``memory_line_total_bytes`` / ``memory_line_available_bytes``: the two figures of
      "Memory: AK/TK available", if printed.
    - ``possible_cpus`` / ``online_cpus``: see the module docstring; :attr:`nr_cpus`
      picks the one swiotlb uses.
    - ``e820``: the map used for the memory size, ``e820_source`` its printed prefix.
    - ``mode`` and ``encryption_features``: from "Memory Encryption Features active: AMD
      SEV SEV-ES SEV-SNP", "AMD Memory Encryption Features active: SEV SEV-ES" or
      "AMD Secure Encrypted Virtualization (SEV) active"; ``sev_status`` the words of
      "SEV: Status: ...".  ``mode`` is ``None`` when the log names no SEV feature.
    - ``kernel_version``: from "Linux version X.Y.Z-..." (``None`` if absent).
    - ``command_line``; ``swiotlb_param`` (its ``swiotlb=`` value) and ``accept_memory``
      (its ``accept_memory=`` value).
    - ``swiotlb``: the log's swiotlb lines.
    - ``vmpl``: from "SEV: SNP running at VMPLn." (>0 means an SVSM runs below the
      kernel); ``svsm``: a line mentions an SVSM; ``snp_cpuid_entries`` from "SEV: Using
      SNP CPUID table, N entries present."; ``unaccepted_table``: physical address of the
      EFI unaccepted-memory table from the "efi: ... Unaccepted=0x..." line.
    - ``other_platform``: "Intel TDX" when the log is a TDX guest's ("Memory Encryption
      Features active: Intel TDX", "tdx: Guest detected"), else None.
    - ``hotplug``: memory hot-added, or that can be, after boot (:class:`HotAdd`), in
      log order; ``hv_balloon_max_bytes`` from "hv_balloon: Max. dynamic memory size:
      %llu MB" (``drivers/hv/hv_balloon.c`` ``process_info``: the most memory the host
      may give the VM, boot memory included); ``hotplug_failures``: the log's lines
      saying a hot-add failed ("hv_balloon: hot_add memory failed error is %d" and
      "hv_balloon: Memory hot add failed", ``hv_mem_hot_add`` / ``hot_add_req``; "acpi
      PNP0C80:NN: add_memory failed" and "acpi_memory_enable_device() error",
      ``drivers/acpi/acpi_memhotplug.c``; "Hotplugged memory exceeds maximum
      addressable address", ``mm/memory_hotplug.c``
      ``check_hotplug_memory_addressable``).
    - ``memblock_reserved``: RAM the log shows memblock holding before the swiotlb is
      allocated, as (GPA, end exclusive, what), page-aligned: the initrd ("RAMDISK: [mem
      %#010llx-%#010llx]", ``arch/x86/kernel/setup.c`` ``reserve_initrd``; its
      destination when "Move RAMDISK from [mem ...] to [mem ...]" follows,
      ``relocate_initrd``), the node data ("NODE_DATA(%d) allocated [mem
      %#010Lx-%#010Lx]", ``mm/numa.c`` ``alloc_node_data``) and the crash kernel
      ("crashkernel reserved: 0x%016llx - 0x%016llx (%lld MB)", end exclusive,
      ``kernel/crash_reserve.c`` ``reserve_crashkernel_generic``).
    - ``warnings``: one line per disagreement or gap in the log (module docstring).
    """

    memory_bytes: int | None = None
    memory_source: str | None = None
    memory_line_total_bytes: int | None = None
    memory_line_available_bytes: int | None = None
    possible_cpus: int | None = None
    online_cpus: int | None = None
    e820: tuple[E820Entry, ...] = ()
    e820_source: str | None = None
    mode: MemEncryptMode | None = None
    encryption_features: tuple[str, ...] = ()
    sev_status: tuple[str, ...] = ()
    kernel_version: str | None = None
    command_line: str | None = None
    swiotlb_param: str | None = None
    accept_memory: str | None = None
    swiotlb: SwiotlbLines = SwiotlbLines()
    vmpl: int | None = None
    svsm: bool = False
    snp_cpuid_entries: int | None = None
    unaccepted_table: int | None = None
    other_platform: str | None = None
    hotplug: tuple[HotAdd, ...] = ()
    hv_balloon_max_bytes: int | None = None
    hotplug_failures: tuple[str, ...] = ()
    memblock_reserved: tuple[tuple[int, int, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def hotplug_bytes(self) -> int:
        """Bytes of :attr:`hotplug` outside the log's e820 "usable" ranges (overlaps
        counted once): the RAM above the boot map the guest has after hot-add, at most
        (a ``"region"`` counts whole)."""
        usable = _merge((e.start, e.end + 1) for e in self.e820 if e.type == "usable")
        added = _subtract(_merge((h.start, h.start + h.size) for h in self.hotplug), usable)
        return sum(e - s for s, e in added)

    @property
    def memory_after_hotplug_bytes(self) -> int | None:
        """``memory_bytes`` plus :attr:`hotplug_bytes`: the guest's RAM after hot-add as
        far as the log tells (None without a memory size)."""
        if self.memory_bytes is None:
            return None
        return self.memory_bytes + self.hotplug_bytes

    @property
    def nr_cpus(self) -> int | None:
        """``num_possible_cpus()`` as far as the log tells: possible, else online."""
        return self.possible_cpus if self.possible_cpus is not None else self.online_cpus

    def with_memory(self, memory_bytes: int) -> DmesgConfig:
        """This configuration with the memory size given explicitly (``--memory``).

        ``memory_bytes`` is taken as ``memblock_phys_mem_size()``.  Returns a new
        config; raises ``ValueError`` unless ``memory_bytes`` is a positive multiple of
        ``PAGE_SIZE`` (4096 bytes).
        """
        if memory_bytes <= 0 or memory_bytes % PAGE_SIZE:
            raise ValueError(
                f"memory size must be a positive multiple of {PAGE_SIZE} bytes, got {memory_bytes}"
            )
        return replace(self, memory_bytes=memory_bytes, memory_source="--memory")

    def with_vcpus(self, nr_cpus: int) -> DmesgConfig:
        """This configuration with the CPU count given explicitly (``--vcpus``).

        Sets both ``possible_cpus`` and ``online_cpus`` (no hotplug CPUs).  Returns a
        new config; raises ``ValueError`` unless ``nr_cpus`` >= 1.
        """
        if nr_cpus < 1:
            raise ValueError(f"CPU count must be >= 1, got {nr_cpus}")
        return replace(self, possible_cpus=nr_cpus, online_cpus=nr_cpus)

    def swiotlb_bytes(self, *, default_kernel: str = "6.16") -> int:
        """The swiotlb pool size this guest allocates, bytes (guest/swiotlb.py).

        Uses ``memory_bytes``, :attr:`nr_cpus`, ``swiotlb_param`` and the log's kernel
        version (``default_kernel`` when the log has none).  Raises :class:`DmesgError`
        without a memory size, ``ValueError`` without a CPU count.
        """
        if self.memory_bytes is None:
            raise DmesgError(_NO_MEMORY)
        if self.nr_cpus is None:
            raise ValueError("the kernel log gives no CPU count; pass --vcpus")
        return swiotlb_sizing_for_sev(
            self.memory_bytes,
            self.nr_cpus,
            kernel_version=self.kernel_version or default_kernel,
            swiotlb_param=self.swiotlb_param,
        ).bytes


#: Bytes by which two memory figures of one log may differ before a warning.
_DISAGREE = 1 << 20

_NO_MEMORY = (
    "the kernel log gives no usable memory size (no e820 'usable' map and no "
    "'Memory: NNNK/NNNK available' line); pass --memory, e.g. --memory 4G"
)

# A log line, without the "[    0.000000] " timestamp or a "<6>" priority prefix.
_PREFIX = re.compile(r"^\s*(?:<\d+>)?\s*(?:\[\s*\d+\.\d+\]\s*)?")
_HEX = r"0x[0-9a-fA-F]+"
_E820_LINE = re.compile(
    rf"^(?P<label>BIOS-e820|reserve setup_data|user|modified):\s*\[mem\s+(?P<s>{_HEX})-(?P<e>{_HEX})\]\s+(?P<type>.+?)\s*$"
)
_E820_HEADERS = {
    "BIOS-provided physical RAM map:": "BIOS-e820",
    "extended physical RAM map:": "reserve setup_data",
    "user-defined physical RAM map:": "user",
    "modified physical RAM map:": "modified",
}
_LINUX_VERSION = re.compile(r"^Linux version (\S+)")
_COMMAND_LINE = re.compile(r"^Command line:\s*(.*)$")
_MEMORY = re.compile(r"^Memory:\s*(\d+)K/(\d+)K available")
_SMPBOOT_ALLOWING = re.compile(r"^smpboot: Allowing (\d+) CPUs, (\d+) hotplug CPUs")
_TOPO_ALLOWING = re.compile(r"^CPU topo: Allowing (\d+) present CPUs plus (\d+) hotplug CPUs")
_NR_CPU_IDS = re.compile(r"^setup_percpu: .*\bnr_cpu_ids:(\d+)")
_BROUGHT_UP = re.compile(r"^smp: Brought up (\d+) nodes?, (\d+) CPUs?")
_FEATURES = re.compile(r"^(?:AMD )?Memory Encryption Features active:\s*(.*)$")
_OLD_SEV = re.compile(
    r"^AMD Secure Encrypted Virtualization(?: - Encrypted State)? \((SEV(?:-ES)?)\) active"
)
_SME = re.compile(r"^AMD Secure Memory Encryption \(SME\) active")
_SEV_STATUS = re.compile(r"^SEV: Status:\s*(.*)$")
_TDX = re.compile(r"^(?:tdx: Guest detected|Memory Encryption Features active: Intel TDX)")
_VMPL = re.compile(r"SNP running at VMPL(\d+)")
_CPUID_TABLE = re.compile(r"Using SNP CPUID table, (\d+) entries present")
_UNACCEPTED = re.compile(rf"^efi:.*\bUnaccepted=({_HEX})")
_SWIOTLB = "software IO TLB: "
_SW_ADJUSTED = re.compile(r"SWIOTLB bounce buffer size adjusted to (\d+)MB")
_SW_AREAS = re.compile(r"area num (\d+)\.")
_SW_ROUNDUP = re.compile(r"SWIOTLB bounce buffer size roundup to (\d+)MB")
_SW_MAPPED = re.compile(rf"mapped \[mem ({_HEX})-({_HEX})\] \((\d+)MB\)")
_VIRTIO_MEM = re.compile(rf"^virtio_mem (\S+): (start address|region size): ({_HEX})")
_SRAT_HOTPLUG = re.compile(
    rf"^ACPI: SRAT: Node \d+ PXM \d+ \[mem ({_HEX})-({_HEX})\] hotplug$")
_RAMDISK = re.compile(rf"^(?:RAMDISK|INITRAMFS): \[mem ({_HEX})-({_HEX})\]")
_MOVE_RAMDISK = re.compile(
    rf"^Move (?:RAMDISK|INITRAMFS) from \[mem {_HEX}-{_HEX}\] to \[mem ({_HEX})-({_HEX})\]")
_NODE_DATA = re.compile(rf"^NODE_DATA\(\d+\) allocated \[mem ({_HEX})-({_HEX})\]")
_CRASHKERNEL = re.compile(rf"^crashkernel (?:low memory )?reserved: ({_HEX}) - ({_HEX}) \(")
_HV_MAX = re.compile(r"^hv_balloon: Max\. dynamic memory size: (\d+) MB")
_HV_HOT_ADDING = re.compile(rf"^hv_balloon: Hot adding (\d+) pages starting at pfn ({_HEX})")
_HOTPLUG_FAILED = re.compile(
    r"^(?:hv_balloon: hot_add memory failed error is -?\d+|hv_balloon: Memory hot add failed"
    r"|acpi PNP0C80:\S+ (?:add_memory failed|acpi_memory_enable_device\(\) error)"
    r"|.*Hotplugged memory exceeds maximum addressable address)")


def _strip(line: str) -> str:
    return _PREFIX.sub("", line, count=1).rstrip()


def memblock_phys_mem_size_from_e820(e820: Iterable[E820Entry]) -> int:
    """``memblock_phys_mem_size()`` right after ``e820__memblock_setup``, bytes.

    Sums the "usable" ranges (E820_TYPE_RAM; ``arch/x86/kernel/e820.c``
    ``e820__memblock_setup``, v6.16) after ``trim_bios_range`` (``arch/x86/kernel/
    setup.c``: [0, 4 KiB) becomes reserved, 640 KiB-1 MiB removed from RAM) and
    ``memblock_trim_memory(PAGE_SIZE)`` (each range shrunk to whole pages).  Overlaps
    count once, as ``memblock_add`` merges them.  Never raises.
    """
    ranges: list[tuple[int, int]] = []
    for entry in e820:
        if entry.type != "usable":
            continue
        start, end = entry.start, entry.end + 1
        # trim_bios_range: e820__range_update(0, PAGE_SIZE, RAM -> RESERVED) and
        # e820__range_remove(BIOS_BEGIN 0xa0000, BIOS_END 0x100000, RAM).
        pieces = [(start, end)]
        for hole_start, hole_end in ((0, PAGE_SIZE), (0xA0000, 0x100000)):
            cut: list[tuple[int, int]] = []
            for s, e in pieces:
                if e <= hole_start or s >= hole_end:
                    cut.append((s, e))
                    continue
                if s < hole_start:
                    cut.append((s, hole_start))
                if e > hole_end:
                    cut.append((hole_end, e))
            pieces = cut
        ranges.extend(pieces)
    # memblock_add merges overlaps; memblock_trim_memory keeps whole pages only.
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for s, e in ranges:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    total = 0
    for s, e in merged:
        s = (s + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
        e = e // PAGE_SIZE * PAGE_SIZE
        if e > s:
            total += e - s
    return total


def _mode_from_features(words: Iterable[str]) -> MemEncryptMode | None:
    found = set(words)
    if "SEV-SNP" in found:
        return MemEncryptMode.SNP
    if "SEV-ES" in found:
        return MemEncryptMode.SEV_ES
    if "SEV" in found:
        return MemEncryptMode.SEV
    return None


def _cmdline_param(cmdline: str, name: str) -> str | None:
    value = None
    for word in cmdline.split():
        if word.startswith(name + "="):
            value = word[len(name) + 1 :]  # the last one wins, as with early_param
    return value


def scan_dmesg(text: str) -> DmesgConfig:
    """Read a guest kernel log into a :class:`DmesgConfig` without requiring anything.

    ``text`` is the whole log (``dmesg`` or console output, with or without timestamps).
    Unknown or malformed lines are skipped; never raises.  ``memory_bytes`` is ``None``
    when the log gives no memory size: see :func:`parse_dmesg` for the strict form.
    Sources of each field: the module and :class:`DmesgConfig` docstrings.
    """
    maps: dict[str, list[E820Entry]] = {}
    last_map: str | None = None
    version = cmdline = None
    mem_avail = mem_total = None
    possible = online = None
    features: list[str] = []
    status: tuple[str, ...] = ()
    vmpl = cpuid_entries = unaccepted = None
    svsm = False
    other: str | None = None
    adjusted = areas = roundup = mapped_start = mapped_end = mapped_mb = None
    hotplug: list[HotAdd] = []
    virtio_mem: dict[str, dict[str, int]] = {}
    hv_max = None
    hp_failures: list[str] = []
    initrd: tuple[int, int] | None = None
    mb_reserved: list[tuple[int, int, str]] = []

    for raw in text.splitlines():
        line = _strip(raw)
        if not line:
            continue
        if line in _E820_HEADERS:
            label = _E820_HEADERS[line]
            maps[label] = []  # a reprinted map replaces the earlier print
            continue
        if m := _E820_LINE.match(line):
            label = m["label"]
            maps.setdefault(label, []).append(
                E820Entry(int(m["s"], 16), int(m["e"], 16), m["type"])
            )
            last_map = label
            continue
        if m := _LINUX_VERSION.match(line):
            version = version or m[1]
        elif m := _COMMAND_LINE.match(line):
            cmdline = cmdline if cmdline is not None else m[1]
        elif m := _MEMORY.match(line):
            mem_avail, mem_total = int(m[1]) * 1024, int(m[2]) * 1024
        elif m := _SMPBOOT_ALLOWING.match(line):
            possible = int(m[1])
        elif m := _TOPO_ALLOWING.match(line):
            possible = int(m[1]) + int(m[2])
        elif m := _NR_CPU_IDS.match(line):
            possible = possible if possible is not None else int(m[1])
        elif m := _BROUGHT_UP.match(line):
            online = int(m[2])
        elif m := _FEATURES.match(line):
            words = m[1].split()
            if words and words[0] == "Intel":
                other = "Intel TDX"
            if words and words[0] in ("AMD", "Intel"):  # the vendor, not a feature
                words = words[1:]
            features.extend(w for w in words if w not in features)
        elif m := _OLD_SEV.match(line):
            if m[1] not in features:
                features.append(m[1])
        elif _SME.match(line):
            if "SME" not in features:
                features.append("SME")
        elif m := _SEV_STATUS.match(line):
            status = tuple(m[1].split())
        elif _TDX.match(line):
            other = "Intel TDX"
        elif m := _UNACCEPTED.match(line):
            unaccepted = int(m[1], 16)
        elif m := _RAMDISK.match(line) or _MOVE_RAMDISK.match(line):
            initrd = (int(m[1], 16), int(m[2], 16) + 1)
        elif m := _NODE_DATA.match(line):
            mb_reserved.append((int(m[1], 16), int(m[2], 16) + 1, "NODE_DATA"))
        elif m := _CRASHKERNEL.match(line):
            mb_reserved.append((int(m[1], 16), int(m[2], 16), "crashkernel"))
        elif m := _VIRTIO_MEM.match(line):
            dev = virtio_mem.setdefault(m[1], {})
            dev[m[2]] = int(m[3], 16)
            if "start address" in dev and "region size" in dev:
                start, size = dev.pop("start address"), dev.pop("region size")
                if size:
                    hotplug.append(HotAdd(start, size, "virtio_mem", "region"))
        elif m := _SRAT_HOTPLUG.match(line):
            start, end = int(m[1], 16), int(m[2], 16) + 1
            if end > start:
                hotplug.append(HotAdd(start, end - start, "SRAT hotplug", "region"))
        elif m := _HV_MAX.match(line):
            hv_max = int(m[1]) << 20
        elif m := _HV_HOT_ADDING.match(line):
            pages, pfn = int(m[1]), int(m[2], 16)
            if pages:
                hotplug.append(HotAdd(pfn * PAGE_SIZE, pages * PAGE_SIZE, "hv_balloon", "added"))
        elif _HOTPLUG_FAILED.match(line):
            hp_failures.append(line)
        elif line.startswith(_SWIOTLB):
            rest = line[len(_SWIOTLB) :]
            if m := _SW_ADJUSTED.search(rest):
                adjusted = int(m[1])
            elif m := _SW_AREAS.search(rest):
                areas = int(m[1])
            elif m := _SW_ROUNDUP.search(rest):
                roundup = int(m[1])
            elif m := _SW_MAPPED.search(rest):
                mapped_start, mapped_end, mapped_mb = int(m[1], 16), int(m[2], 16), int(m[3])
        if m := _VMPL.search(line):
            vmpl = int(m[1])
        if m := _CPUID_TABLE.search(line):
            cpuid_entries = int(m[1])
        if "SVSM" in line:
            svsm = True

    e820 = tuple(maps.get(last_map, ())) if last_map else ()
    memory = source = None
    warnings: list[str] = []
    if any(e.type == "usable" for e in e820):
        memory, source = memblock_phys_mem_size_from_e820(e820), "e820"
        if mem_total and abs(mem_total - memory) > _DISAGREE:
            if mem_total > memory:
                warnings.append(
                    f"the log's e820 map adds up to {memory >> 10}K of RAM but its Memory: "
                    f"line counts {mem_total >> 10}K: the map looks cut short, so the "
                    "Memory: figure is used")
                memory, source = mem_total, "Memory: line (e820 map incomplete)"
            else:
                warnings.append(
                    f"the log's e820 map adds up to {memory >> 10}K of RAM but its Memory: "
                    f"line counts only {mem_total >> 10}K; the e820 figure is used")
    elif mem_total:
        memory, source = mem_total, "Memory: line"
    warnings.extend(_hotplug_warnings(e820, memory, hotplug, hv_max, hp_failures))
    if possible is None and online is None:
        warnings.append("the log states no CPU count (no 'Allowing N CPUs', "
                        "'nr_cpu_ids' or 'Brought up' line)")
    return DmesgConfig(
        memory_bytes=memory,
        memory_source=source,
        memory_line_total_bytes=mem_total,
        memory_line_available_bytes=mem_avail,
        possible_cpus=possible,
        online_cpus=online,
        e820=e820,
        e820_source=last_map,
        mode=_mode_from_features(features) or _mode_from_features(status),
        encryption_features=tuple(features),
        sev_status=status,
        kernel_version=version,
        command_line=cmdline,
        swiotlb_param=_cmdline_param(cmdline, "swiotlb") if cmdline else None,
        accept_memory=_cmdline_param(cmdline, "accept_memory") if cmdline else None,
        swiotlb=SwiotlbLines(adjusted, areas, roundup, mapped_start, mapped_end, mapped_mb),
        vmpl=vmpl,
        svsm=svsm or (vmpl is not None and vmpl > 0),
        snp_cpuid_entries=cpuid_entries,
        unaccepted_table=unaccepted,
        other_platform=other,
        hotplug=tuple(hotplug),
        hv_balloon_max_bytes=hv_max,
        hotplug_failures=tuple(hp_failures),
        memblock_reserved=tuple(
            (a // PAGE_SIZE * PAGE_SIZE, -(-b // PAGE_SIZE) * PAGE_SIZE, what)
            for a, b, what in ([(*initrd, "initrd")] if initrd else []) + mb_reserved
            if b > a),
        warnings=tuple(warnings),
    )


def _hotplug_warnings(e820: tuple[E820Entry, ...], memory: int | None,
                      hotplug: list[HotAdd], hv_max: int | None,
                      failures: list[str]) -> list[str]:
    """The warnings about a log's hot-add lines (see :func:`scan_dmesg`)."""

    def _sz(n: int) -> str:
        return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n >> 10}K"

    out: list[str] = []
    usable = _merge((e.start, e.end + 1) for e in e820 if e.type == "usable")
    spans = _merge((h.start, h.start + h.size) for h in hotplug)
    extra = sum(e - s for s, e in _subtract(spans, usable))
    if hotplug:
        where = ", ".join(f"[mem {h.start:#x}-{h.start + h.size - 1:#x}] ({h.source}"
                          f"{', at most' if h.kind == 'region' else ''})" for h in hotplug[:4])
        more = f" and {len(hotplug) - 4} more" if len(hotplug) > 4 else ""
        upto = "up to " if any(h.kind == "region" for h in hotplug) else ""
        boot = _sz(memory) if memory is not None else "no stated memory"
        out.append(
            f"the log adds {upto}{_sz(extra)} of memory by hot-add above its boot map: {where}{more}; "
            f"the kernel adds it after setup_arch, so swiotlb and the other boot allocations "
            f"use only the boot map's {boot}, and the modelled VM boots with that alone "
            "(the hot-added memory is not placed)")
        if _intersect(spans, usable):
            out.append("the log's hot-add ranges overlap RAM its e820 map already lists; "
                       "the overlap is counted once")
    if hv_max is not None and memory is not None:
        total = memory + extra
        if hv_max > total + _DISAGREE:
            out.append(
                f"hv_balloon allows up to {hv_max >> 20} MiB (Max. dynamic memory size) but "
                f"the log's e820 map and hot-add lines give {_sz(total)}: the rest would "
                f"arrive by hot-add later; the model boots with the boot map's {_sz(memory)}")
        elif hv_max + _DISAGREE < total:
            out.append(
                f"hv_balloon's maximum of {hv_max >> 20} MiB (Max. dynamic memory size) is "
                f"below the {_sz(total)} the log's e820 map and hot-add lines give")
    if failures:
        out.append(f"the log reports {len(failures)} failed memory hot-add line(s), "
                   f"e.g. '{failures[0][:120]}'")
    return out


def parse_dmesg(text: str, *, memory_bytes: int | None = None) -> DmesgConfig:
    """Read a guest kernel log into a :class:`DmesgConfig` for ``boot --from-dmesg``.

    ``text``: the log.  ``memory_bytes``: the ``--memory`` value in bytes, if given; it
    replaces the log's memory size (:meth:`DmesgConfig.with_memory`).  Raises
    :class:`DmesgError` (a ``ValueError``) for the log of another platform's guest, and
    when the log gives no usable memory size and ``memory_bytes`` is ``None``, with a
    message that says to pass ``--memory``;
    ``ValueError`` for a bad ``memory_bytes``.  Unusable lines are ignored
    (:func:`scan_dmesg`).
    """
    config = scan_dmesg(text)
    if config.other_platform is not None:
        raise DmesgError(f"this is the log of an {config.other_platform} guest; snpsim models "
                         "AMD SEV, SEV-ES and SEV-SNP guests only")
    if memory_bytes is not None:
        return config.with_memory(memory_bytes)
    if config.memory_bytes is None:
        raise DmesgError(_NO_MEMORY)
    return config


def kernel_profile_for_version(version: str | None) -> tuple[str, str | None]:
    """The guest kernel profile (``snpsim.guest.kernel.PROFILES``) to model a log's kernel
    with, and a warning when the match is not exact.

    ``version`` is the log's "Linux version" word (``"6.16.0-snp-guest-..."``).  v5.19 to
    v6.4 -> ``"6.4"`` (253 4K entries per PSC descriptor); v6.5 to v6.15 -> ``"6.17"``
    with a warning (64 entries and 2M entries since v6.5, commits 69dcb1e3bbbe and
    15d9088779b8, but the cache eviction after PVALIDATE, 7b306dfa326f, only from
    6.16/6.17 and stable backports); v6.16 -> ``"6.16"``; later -> ``"6.17"``.  Without a
    version, or one before SNP guest support (v5.19), the default ``"6.17"`` with a
    warning.  Never raises.
    """
    m = re.match(r"^(\d+)\.(\d+)", version or "")
    if m is None:
        return "6.17", "the log names no kernel version; modelling kernel profile 6.17"
    ver = (int(m[1]), int(m[2]))
    if ver < (5, 19):
        return "6.17", (f"the log's kernel {version} predates SNP guest support (v5.19); "
                        "modelling kernel profile 6.17")
    if ver <= (6, 4):
        return "6.4", None
    if ver < (6, 16):
        return "6.17", (f"the log's kernel {version} is modelled with profile 6.17: same PSC "
                        "batching, but its cache eviction after PVALIDATE is in v6.16+ "
                        "(and only some stable backports)")
    if ver == (6, 16):
        return "6.16", None
    return "6.17", None


def check_log_bounds(config: DmesgConfig, *, max_cpus: int, min_memory: int,
                     max_memory: int) -> str | None:
    """The first value read from the log that the matching command-line option would
    refuse, as a one-line reason; None when all are within bounds.  ``max_cpus`` bounds
    :attr:`DmesgConfig.nr_cpus` (1..max_cpus), ``min_memory``/``max_memory`` (bytes) bound
    ``memory_bytes``.  Never raises."""
    n = config.nr_cpus
    if n is not None and not 1 <= n <= max_cpus:
        return (f"the log's {n} possible CPUs are outside 1..{max_cpus} (--vcpus's range); "
                "pass --vcpus")
    mem = config.memory_bytes
    if mem is not None and not min_memory <= mem <= max_memory:
        hi = f"{max_memory >> 40}T" if max_memory % (1 << 40) == 0 else f"{max_memory >> 30}G"
        return (f"the log's memory size {mem} bytes is outside {min_memory >> 20}M..{hi} "
                "(--memory's range); pass --memory")
    return None


#: ``arch/x86/include/asm/e820/types.h`` (v6.16): ``E820_TYPE_SOFT_RESERVED``.
_E820_TYPE_SOFT_RESERVED = 0xEFFFFFFF
#: The names ``e820_print_type`` (``arch/x86/kernel/e820.c``, v6.16) prints -> type.
_E820_TYPE_BY_NAME = {"usable": E820_TYPE_RAM, "reserved": E820_TYPE_RESERVED,
                      "ACPI data": E820_TYPE_ACPI, "ACPI NVS": E820_TYPE_NVS,
                      "unusable": E820_TYPE_UNUSABLE,
                      "soft reserved": _E820_TYPE_SOFT_RESERVED}


def e820_type_number(name: str) -> int:
    """The ``E820_TYPE_*`` number of a printed e820 type name: "usable" 1, "reserved" 2,
    "ACPI data" 3, "ACPI NVS" 4, "unusable" 5, "soft reserved" 0xefffffff, and the number
    of "persistent (type N)" / "type N" (``e820_print_type``, ``arch/x86/kernel/e820.c``,
    v6.16).  A name it does not know is E820_TYPE_RESERVED (2): not RAM.  Never raises."""
    if name in _E820_TYPE_BY_NAME:
        return _E820_TYPE_BY_NAME[name]
    m = re.search(r"\btype (\d+)\)?$", name)
    return int(m[1]) if m and int(m[1]) else E820_TYPE_RESERVED


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """[start, end) ranges sorted, overlapping or touching ones merged."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(r for r in ranges if r[1] > r[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _subtract(ranges: list[tuple[int, int]], holes: Iterable[tuple[int, int]]
              ) -> list[tuple[int, int]]:
    """Merged, sorted [start, end) ``ranges`` with every [start, end) of ``holes`` taken
    out; one pass over both (the holes are merged first)."""
    cut = _merge(holes)
    out: list[tuple[int, int]] = []
    j = 0
    for s, e in ranges:
        while j < len(cut) and cut[j][1] <= s:
            j += 1
        cur, k = s, j
        while k < len(cut) and cut[k][0] < e:
            if cut[k][0] > cur:
                out.append((cur, cut[k][0]))
            cur = max(cur, cut[k][1])
            if cut[k][1] >= e:
                break
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The [start, end) ranges in both merged, sorted lists ``a`` and ``b``; one pass."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def log_reserved_ranges(config: DmesgConfig) -> tuple[tuple[int, int, int], ...]:
    """The log's e820 ranges that are not RAM, as (GPA, bytes, E820_TYPE_*), sorted:
    every entry of :attr:`DmesgConfig.e820` whose type is not "usable" ("reserved",
    "ACPI data", "ACPI NVS", "unusable", ...), widened to whole 4 KiB pages (the kernel
    never hands out a page that is partly reserved: ``memblock_trim_memory`` keeps whole
    pages of RAM only).  Never raises."""
    out = []
    for e in config.e820:
        if e.type == "usable":
            continue
        start = e.start // PAGE_SIZE * PAGE_SIZE
        end = -(-(e.end + 1) // PAGE_SIZE) * PAGE_SIZE
        out.append((start, end - start, e820_type_number(e.type)))
    return tuple(sorted(out))


def guest_e820_for_log(config: DmesgConfig, firmware_map: Iterable[tuple[int, int, int]]
                       ) -> tuple[tuple[int, int, int], ...]:
    """Model-only: the e820 map the modelled guest boots with when it runs a log's boot.

    ``firmware_map``: the map the VM's firmware would hand over, (GPA, bytes,
    E820_TYPE_*) entries (``snpsim.system.firmware_e820`` of the q35 layout).  Its RAM
    becomes:

    * when the log's own map is the memory source (``memory_source == "e820"``, a whole
      map): only what is RAM in both, so RAM the VM has but the log does not list (the
      rounding of the VM's size to 2 MiB, gaps) gets no entry, as a hole in the map;
    * else (a cut-short excerpt): the VM's RAM;

    minus, in both cases, every range the log marks otherwise (:func:`log_reserved_ranges`),
    which is added with its type where it overlaps the VM's RAM, and minus the log's
    hot-added ranges (:attr:`DmesgConfig.hotplug`: that memory is not in the map the
    kernel boots with).  So the guest's memblock -- and every early allocation the model
    makes from it (swiotlb, ``.bss..decrypted``, per-CPU areas) -- uses only memory the
    log calls RAM.  RAM ranges are trimmed to whole 4 KiB pages.  The firmware map's
    other entries are kept.  Returns (GPA, bytes, type) entries sorted by GPA; never
    raises.
    """
    fw = list(firmware_map)
    vm_ram = _merge((a, a + n) for a, n, t in fw if t == E820_TYPE_RAM)
    reserved = [(a, a + n, t) for a, n, t in log_reserved_ranges(config)]
    ram = vm_ram
    usable = _merge((e.start, e.end + 1) for e in config.e820 if e.type == "usable")
    if config.memory_source == "e820" and usable:
        ram = _intersect(vm_ram, usable)
    ram = _subtract(ram, [(s, e) for s, e, _t in reserved])
    ram = _subtract(ram, [(h.start, h.start + h.size) for h in config.hotplug])
    out = [(a, n, t) for a, n, t in fw if t != E820_TYPE_RAM]
    for s, e in ram:
        s = -(-s // PAGE_SIZE) * PAGE_SIZE
        e = e // PAGE_SIZE * PAGE_SIZE
        if e > s:
            out.append((s, e - s, E820_TYPE_RAM))
    for s, e, t in reserved:
        for a, b in _intersect(vm_ram, [(s, e)]) if vm_ram and s < vm_ram[-1][1] else ():
            out.append((a, b - a, t))
    return tuple(sorted(out))
