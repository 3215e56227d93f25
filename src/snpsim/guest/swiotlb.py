# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""How a Linux SEV / SEV-ES / SEV-SNP guest sizes its swiotlb bounce buffer at boot.

Mirrors, for the default boot path of an x86-64 guest with memory encryption:

- ``arch/x86/mm/mem_encrypt.c`` ``mem_encrypt_setup_arch`` (v6.16; the same body was
  ``sev_setup_arch`` in ``arch/x86/mm/mem_encrypt.c`` from v5.11, then in
  ``arch/x86/mm/mem_encrypt_amd.c``, and was moved back and renamed by "x86/sev: Move
  sev_setup_arch() to mem_encrypt.c", Oct 2023, no functional change).  It runs from
  ``setup_arch`` right after ``e820__memblock_setup`` ("Needs to run after memblock
  setup because it needs the physical memory size") and computes
  ``clamp(memblock_phys_mem_size() * 6 / 100, IO_TLB_DEFAULT_SIZE, SZ_1G)``.
- ``kernel/dma/swiotlb.c`` (v6.16) ``swiotlb_adjust_size``, ``round_up_default_nslabs``,
  ``swiotlb_adjust_nareas``, ``limit_nareas``, ``setup_io_tlb_npages`` (the ``swiotlb=``
  parameter), ``swiotlb_size_or_default``, the sizing part of ``swiotlb_init_remap`` and
  ``swiotlb_print_info``; constants from ``include/linux/swiotlb.h``.

Version history modelled (``kernel_version``), each step checked in the source or the
merged patch (docs/swiotlb.md lists what was read):

- before v5.11: no SEV adjustment, the pool is ``IO_TLB_DEFAULT_SIZE`` (64 MiB);
- v5.11 (commit e998879d4fb7 "x86,swiotlb: Adjust SWIOTLB bounce buffer size for SEV
  guests"): the 6 % rule, size rounded up to a whole slab (2 KiB) and the slab count to
  a segment (128 slabs, 256 KiB);
- v6.0 (dma-mapping pull for "5.20": Tianyu Lan "swiotlb: split up the global swiotlb
  lock", Chao Gao "consolidate rounding up default_nslabs" and "ensure a segment doesn't
  cross the area boundary"): the pool is split into ``num_possible_cpus()`` areas
  (rounded up to a power of two) and the slab count is rounded up to a power of two and
  to at least ``IO_TLB_SEGSIZE * nareas``.

Not modelled (model choices, docs/swiotlb.md): the halving retry of
``swiotlb_init_remap`` when ``memblock_alloc_low`` fails (it prints "SWIOTLB bounce
buffer size adjusted N -> M slabs"); ``limit_nareas`` therefore never lowers the area
count here; ``CONFIG_SWIOTLB_DYNAMIC`` growth after boot.

The kernel's static variables ``default_nslabs``/``default_nareas`` live in
:class:`SwiotlbState`; the constants below are kernel-internal (not ABI), kept here
beside the only code that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snpsim.spec.units import SZ_1G
from snpsim.trace.record import traced

__all__ = [
    "IO_TLB_SHIFT",
    "IO_TLB_SIZE",
    "IO_TLB_SEGSIZE",
    "IO_TLB_DEFAULT_SIZE",
    "IO_TLB_MIN_SLABS",
    "SEV_SWIOTLB_ADJUST_SINCE",
    "SWIOTLB_AREAS_SINCE",
    "SwiotlbState",
    "SwiotlbSizing",
    "kernel_version_tuple",
    "mem_encrypt_setup_arch",
    "setup_io_tlb_npages",
    "swiotlb_adjust_size",
    "swiotlb_adjust_nareas",
    "round_up_default_nslabs",
    "limit_nareas",
    "swiotlb_size_or_default",
    "swiotlb_sizing_for_sev",
    "swiotlb_size_for_sev",
]

#: ``include/linux/swiotlb.h``: log2 of one slab ("IO TLB slot"), 2 KiB.
IO_TLB_SHIFT = 11
#: ``include/linux/swiotlb.h``: one slab, bytes.
IO_TLB_SIZE = 1 << IO_TLB_SHIFT
#: ``include/linux/swiotlb.h``: slabs per segment (the largest contiguous mapping), 128.
IO_TLB_SEGSIZE = 128
#: ``include/linux/swiotlb.h`` "default to 64MB": the pool size without adjustment, bytes.
IO_TLB_DEFAULT_SIZE = 64 << 20
#: ``kernel/dma/swiotlb.c``: 1 MiB of slabs, the floor of the allocation retry loop.
IO_TLB_MIN_SLABS = (1 << 20) >> IO_TLB_SHIFT

#: First mainline release with the SEV 6 % adjustment (commit e998879d4fb7).
SEV_SWIOTLB_ADJUST_SINCE = (5, 11)
#: First mainline release with swiotlb areas and power-of-two rounding (v6.0).
SWIOTLB_AREAS_SINCE = (6, 0)

_PR_PREFIX = "software IO TLB: "  # kernel/dma/swiotlb.c pr_fmt


def kernel_version_tuple(version: str | tuple[int, ...]) -> tuple[int, int]:
    """``(major, minor)`` of a kernel version: ``"6.16.0-snp-guest"`` -> ``(6, 16)``.

    Model-only helper.  Accepts a string as ``uname -r`` or "Linux version" prints it,
    or a tuple of ints.  Raises ``ValueError`` when no ``major.minor`` can be read.
    """
    if isinstance(version, tuple):
        if len(version) < 2:
            raise ValueError(f"kernel version {version!r}: need (major, minor)")
        return int(version[0]), int(version[1])
    head = version.strip().split("-", 1)[0].split("+", 1)[0]
    parts = head.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise ValueError(f"kernel version {version!r}: expected MAJOR.MINOR[...]") from None


def _is_power_of_2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _roundup_pow_of_two(n: int) -> int:
    # include/linux/log2.h roundup_pow_of_two: 1UL << fls_long(n - 1); n >= 1 here.
    return 1 << (n - 1).bit_length()


def _align(x: int, a: int) -> int:
    # include/linux/align.h ALIGN (round up to a multiple of a power of two).
    return (x + a - 1) & ~(a - 1)


@dataclass
class SwiotlbState:
    """The static variables of ``kernel/dma/swiotlb.c`` that decide the pool size.

    ``default_nslabs`` (slabs of ``IO_TLB_SIZE`` bytes, initially
    ``IO_TLB_DEFAULT_SIZE >> IO_TLB_SHIFT``), ``default_nareas`` (0 = not yet set),
    ``force_bounce``/``force_disable`` from ``swiotlb=force|noforce``.  ``messages``
    collects what the modelled code prints with ``pr_info``, prefixed as the kernel
    prefixes it (``"software IO TLB: "``), so a run can be compared with a real log.
    ``version`` is ``(major, minor)`` of the kernel modelled.
    """

    version: tuple[int, int] = (6, 16)
    default_nslabs: int = IO_TLB_DEFAULT_SIZE >> IO_TLB_SHIFT
    default_nareas: int = 0
    force_bounce: bool = False
    force_disable: bool = False
    messages: list[str] = field(default_factory=list)

    def pr_info(self, text: str) -> None:
        """Record one line as ``pr_info`` in ``kernel/dma/swiotlb.c`` prints it."""
        self.messages.append(_PR_PREFIX + text)

    @property
    def has_areas(self) -> bool:
        """Whether the modelled version has swiotlb areas (v6.0 and later)."""
        return self.version >= SWIOTLB_AREAS_SINCE


def round_up_default_nslabs(st: SwiotlbState) -> bool:
    """``round_up_default_nslabs`` (``kernel/dma/swiotlb.c``, v6.0 to v6.16).

    With areas set, raise ``default_nslabs`` to at least ``IO_TLB_SEGSIZE`` slabs per
    area, then to the next power of two.  Returns ``True`` when it rounded (the kernel
    then prints the new size).  A no-op returning ``False`` before v6.0.
    """
    if not st.has_areas or not st.default_nareas:
        return False
    if st.default_nslabs < IO_TLB_SEGSIZE * st.default_nareas:
        st.default_nslabs = IO_TLB_SEGSIZE * st.default_nareas
    elif _is_power_of_2(st.default_nslabs):
        return False
    st.default_nslabs = _roundup_pow_of_two(st.default_nslabs)
    return True


@traced("guest")
def swiotlb_adjust_nareas(st: SwiotlbState, nareas: int) -> None:
    """``swiotlb_adjust_nareas`` (``kernel/dma/swiotlb.c``, v6.16): set the area count.

    ``nareas`` 0 is taken as 1 (v6.16; earlier v6.x did not special-case 0), any other
    count is rounded up to a power of two.  Prints ``"area num N."`` and, when
    :func:`round_up_default_nslabs` changed the pool, ``"SWIOTLB bounce buffer size
    roundup to NMB"`` (MiB, truncated).  Only called on kernels with areas (v6.0+).
    """
    nareas = 1 if nareas <= 0 else _roundup_pow_of_two(nareas)
    st.default_nareas = nareas
    st.pr_info(f"area num {nareas}.")
    if round_up_default_nslabs(st):
        st.pr_info(
            f"SWIOTLB bounce buffer size roundup to {(st.default_nslabs << IO_TLB_SHIFT) >> 20}MB"
        )


def limit_nareas(nareas: int, nslots: int) -> int:
    """``limit_nareas`` (``kernel/dma/swiotlb.c``, v6.16): at most one area per segment.

    Returns ``nslots // IO_TLB_SEGSIZE`` when ``nslots`` cannot give every one of the
    ``nareas`` areas a full segment, else ``nareas``.
    """
    if nslots < nareas * IO_TLB_SEGSIZE:
        return nslots // IO_TLB_SEGSIZE
    return nareas


def setup_io_tlb_npages(st: SwiotlbState, arg: str) -> None:
    """``setup_io_tlb_npages``: the ``swiotlb=<slabs>[,<areas>][,force|noforce]`` parameter.

    Mirrors ``kernel/dma/swiotlb.c`` v6.16 (``<areas>`` exists from v6.0; before, the
    second field is the force keyword).  ``<slabs>`` is aligned up to
    ``IO_TLB_SEGSIZE``; a set slab count stops :func:`swiotlb_adjust_size`.  Numbers are
    read as C ``simple_strtoul(str, &str, 0)`` reads them (``0x`` hex, leading ``0``
    octal, else decimal; reading stops at the first non-digit).  Never raises: text it
    cannot read is ignored, as the kernel ignores it.
    """
    rest = arg
    num, rest = _simple_strtoul(rest)
    if num is not None:
        st.default_nslabs = _align(num, IO_TLB_SEGSIZE)
    if rest.startswith(","):
        rest = rest[1:]
    if st.has_areas:
        num, rest = _simple_strtoul(rest)
        if num is not None:
            swiotlb_adjust_nareas(st, num)
        if rest.startswith(","):
            rest = rest[1:]
    if rest == "force":
        st.force_bounce = True
    elif rest == "noforce":
        st.force_disable = True


def _simple_strtoul(s: str) -> tuple[int | None, str]:
    """Model-only: C ``isdigit(*str)`` then ``simple_strtoul(str, &str, 0)``."""
    if not s or not s[0].isdigit():
        return None, s
    if s[:2].lower() == "0x":
        base, i = 16, 2
        digits = "0123456789abcdef"
    elif s[0] == "0":
        base, i = 8, 1
        digits = "01234567"
    else:
        base, i = 10, 0
        digits = "0123456789"
    j = i
    while j < len(s) and s[j].lower() in digits:
        j += 1
    value = int(s[i:j], base) if j > i else 0
    return value, s[j:]


@traced("guest")
def swiotlb_adjust_size(st: SwiotlbState, size: int) -> None:
    """``swiotlb_adjust_size`` (``kernel/dma/swiotlb.c``, v5.11 to v6.16): set the pool size.

    ``size`` in bytes.  Does nothing when ``swiotlb=`` already set the slab count
    (``default_nslabs`` no longer the 64 MiB default).  Otherwise rounds ``size`` up to
    a whole slab, the slab count up to a whole segment, and (v6.0+, only when the areas
    were already set by ``swiotlb=N,M``) through :func:`round_up_default_nslabs`; prints
    ``"SWIOTLB bounce buffer size adjusted to NMB"`` with the byte size before the
    segment rounding, truncated to MiB, as the kernel does.
    """
    if st.default_nslabs != IO_TLB_DEFAULT_SIZE >> IO_TLB_SHIFT:
        return
    size = _align(size, IO_TLB_SIZE)
    st.default_nslabs = _align(size >> IO_TLB_SHIFT, IO_TLB_SEGSIZE)
    if round_up_default_nslabs(st):
        size = st.default_nslabs << IO_TLB_SHIFT
    st.pr_info(f"SWIOTLB bounce buffer size adjusted to {size >> 20}MB")


@traced("guest")
def mem_encrypt_setup_arch(st: SwiotlbState, total_mem: int) -> None:
    """``mem_encrypt_setup_arch`` (``arch/x86/mm/mem_encrypt.c``, v6.16; ``sev_setup_arch``
    before the Oct 2023 move): the SEV guest's swiotlb size request.

    ``total_mem`` is ``memblock_phys_mem_size()`` in bytes: the sum of the e820 RAM
    ("usable") ranges after ``trim_bios_range`` made the first 4 KiB page reserved and
    ``memblock_trim_memory`` dropped partial pages -- not ``totalram_pages`` (docs/
    swiotlb.md shows the difference on a real log).  Requests
    ``clamp(total_mem * 6 // 100, IO_TLB_DEFAULT_SIZE, SZ_1G)`` bytes through
    :func:`swiotlb_adjust_size`.  Called only for a guest with memory encryption
    (``cc_platform_has(CC_ATTR_GUEST_MEM_ENCRYPT)``: SEV, SEV-ES and SNP alike); a
    no-op before v5.11.
    """
    if st.version < SEV_SWIOTLB_ADJUST_SINCE:
        return
    size = total_mem * 6 // 100
    size = min(max(size, IO_TLB_DEFAULT_SIZE), SZ_1G)
    swiotlb_adjust_size(st, size)


def swiotlb_size_or_default(st: SwiotlbState) -> int:
    """``swiotlb_size_or_default`` (``kernel/dma/swiotlb.c``, v6.16): pool size, bytes."""
    return st.default_nslabs << IO_TLB_SHIFT


@dataclass(frozen=True)
class SwiotlbSizing:
    """The outcome of the boot-time sizing: what ``swiotlb_init_remap`` allocates.

    ``nslabs`` slabs of ``IO_TLB_SIZE``; ``nareas`` areas (1 before v6.0, where the pool
    had one lock); ``bytes`` = ``nslabs << IO_TLB_SHIFT``; ``mapped_mb`` is the MiB
    figure ``swiotlb_print_info`` prints in ``"mapped [mem ...] (NMB)"``;
    ``messages`` the ``pr_info`` lines of the sizing, in order; ``disabled`` when
    ``swiotlb=noforce`` leaves the guest without a pool.
    """

    nslabs: int
    nareas: int
    bytes: int
    mapped_mb: int
    messages: tuple[str, ...]
    disabled: bool = False


def swiotlb_sizing_for_sev(
    total_mem_bytes: int,
    nr_cpus: int,
    *,
    kernel_version: str | tuple[int, ...] = (6, 16),
    swiotlb_param: str | None = None,
) -> SwiotlbSizing:
    """Size the swiotlb pool of a Linux SEV/SEV-ES/SNP guest as its boot does.

    ``total_mem_bytes``: ``memblock_phys_mem_size()`` at ``setup_arch`` time, bytes (see
    :func:`mem_encrypt_setup_arch`).  ``nr_cpus``: ``num_possible_cpus()`` (present plus
    hotplug CPUs, the "Allowing N CPUs" line of a log).  ``kernel_version``: the guest
    kernel, ``"6.16.0-..."`` or ``(6, 16)``.  ``swiotlb_param``: the value of a
    ``swiotlb=`` kernel parameter, if any.

    Runs, in boot order: ``setup_io_tlb_npages`` (early param), ``mem_encrypt_setup_arch``
    -> ``swiotlb_adjust_size``, then the sizing part of ``swiotlb_init_remap`` (x86
    ``pci_iommu_alloc`` -> ``swiotlb_init``): ``swiotlb_adjust_nareas(num_possible_cpus())``
    when no area count was given, and ``limit_nareas``.  Assumes the low-memory
    allocation succeeds (no halving retry).

    Raises ``ValueError`` for a negative memory size, fewer than one CPU, or an
    unreadable ``kernel_version``.
    """
    if total_mem_bytes < 0:
        raise ValueError(f"total_mem_bytes must be >= 0, got {total_mem_bytes}")
    if nr_cpus < 1:
        raise ValueError(f"nr_cpus must be >= 1, got {nr_cpus}")
    st = SwiotlbState(version=kernel_version_tuple(kernel_version))
    # setup_arch: parse_early_param() runs before e820__memblock_setup().
    if swiotlb_param is not None:
        setup_io_tlb_npages(st, swiotlb_param)
    mem_encrypt_setup_arch(st, total_mem_bytes)
    # mm_core_init -> pci_iommu_alloc -> swiotlb_init -> swiotlb_init_remap.
    # SEV guests force bounce buffering (pci_swiotlb_detect: SWIOTLB_FORCE), so only
    # swiotlb=noforce stops the allocation.
    if st.force_disable:
        return SwiotlbSizing(0, 0, 0, 0, tuple(st.messages), disabled=True)
    nareas = 1
    if st.has_areas:
        if not st.default_nareas:
            swiotlb_adjust_nareas(st, nr_cpus)
        nareas = limit_nareas(st.default_nareas, st.default_nslabs)
    nslabs = st.default_nslabs
    size = nslabs << IO_TLB_SHIFT
    return SwiotlbSizing(
        nslabs=nslabs,
        nareas=nareas,
        bytes=size,
        mapped_mb=size >> 20,
        messages=tuple(st.messages),
    )


def swiotlb_size_for_sev(
    total_mem_bytes: int,
    nr_cpus: int,
    *,
    kernel_version: str | tuple[int, ...] = (6, 16),
    swiotlb_param: str | None = None,
) -> int:
    """Bytes of the swiotlb bounce buffer a Linux SEV/SEV-ES/SNP guest allocates at boot.

    The ``bytes`` of :func:`swiotlb_sizing_for_sev` (same arguments and errors; sources
    there).  On v6.16 with 2 GiB and 4 CPUs: 6 % is 122 MiB, rounded to a power of two
    of slabs, 128 MiB.
    """
    return swiotlb_sizing_for_sev(
        total_mem_bytes,
        nr_cpus,
        kernel_version=kernel_version,
        swiotlb_param=swiotlb_param,
    ).bytes
