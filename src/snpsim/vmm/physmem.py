# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""RAM blocks and their discard: ``ram_block_discard_range`` and
``ram_block_discard_guest_memfd_range``.

Mirrors QEMU ``system/physmem.c`` (9.1-10.1 era, from the merged patch postings;
kvm-qemu-host.md 8.6).  A :class:`RAMBlock` is the shared (HVA) backing of a RAM region
plus its guest_memfd.  Offsets and lengths are bytes; errors are -1 or -errno as in QEMU.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass

from snpsim.kvm.kvm_main import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, MADV_DONTNEED, Kvm
from snpsim.trace.record import traced

__all__ = ["RAMBlock", "ram_block_discard_range", "ram_block_discard_guest_memfd_range",
           "qemu_real_host_page_size"]


def qemu_real_host_page_size() -> int:
    """``qemu_real_host_page_size()``: 4096 bytes."""
    return 4096


@dataclass
class RAMBlock:
    """``struct RAMBlock``: ``idstr``; ``host`` (HVA of the shared backing); ``max_length``
    (bytes); ``page_size`` (bytes); ``fd`` (-1: anonymous memory); ``fd_offset``;
    ``guest_memfd`` (fd, -1 if none); ``kvm`` the syscall surface."""

    idstr: str
    host: int
    max_length: int
    kvm: Kvm
    page_size: int = 4096
    fd: int = -1
    fd_offset: int = 0
    guest_memfd: int = -1


@traced("vmm")
def ram_block_discard_range(rb: RAMBlock, start: int, length: int,
                            error_report: Callable[[str], None] | None = None) -> int:
    """``ram_block_discard_range(rb, start, length)``: free the shared backing of
    ``[start, start + length)`` (offsets in the block, bytes).

    Host address or length not aligned to ``rb.page_size`` -> -1; beyond the block ->
    -1 and (through ``error_report``, QEMU's ``error_report``) "ram_block_discard_range:
    Overrun block '%s' (%PRIu64/%zx/RAM_ADDR_FMT)" (system/physmem.c); fd-backed ->
    fallocate(PUNCH_HOLE|KEEP_SIZE) (not modelled: -ENOSYS); anonymous ->
    madvise(MADV_DONTNEED); its error as -errno.  0 on success.
    """
    host_start = rb.host + start
    if host_start % rb.page_size or length % rb.page_size:
        return -1
    if start + length > rb.max_length:
        if error_report is not None:
            error_report(f"ram_block_discard_range: Overrun block '{rb.idstr}' "
                         f"({start}/{length:x}/{rb.max_length:x})")
        return -1
    if rb.fd >= 0:
        return -errno.ENOSYS
    ret = rb.kvm.madvise(host_start, length, MADV_DONTNEED)
    return ret


@traced("vmm")
def ram_block_discard_guest_memfd_range(rb: RAMBlock, start: int, length: int) -> int:
    """``ram_block_discard_guest_memfd_range(rb, start, length)``:
    ``fallocate(rb->guest_memfd, PUNCH_HOLE|KEEP_SIZE, start, length)`` (no fd_offset);
    failure -> -errno.  0 on success."""
    return rb.kvm.fallocate(rb.guest_memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            start, length)
