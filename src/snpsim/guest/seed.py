# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The seed scenario: one conversion of the project's origin, run in guest context.

A page (or ``pages`` contiguous pages) from the kernel's pre-validated pool is written
privately, then ``set_memory_decrypted`` makes it shared and the guest writes a payload
the VMM can read; for ``set_memory_encrypted`` the pages are made shared first and then
converted back, after which the guest writes a payload the VMM must not be able to read.
The call under study is ``set_memory_decrypted``/``set_memory_encrypted`` of
``arch/x86/mm/pat/set_memory.c`` (v6.16/6.17 structure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snpsim.hw.ports import GuestPort
from snpsim.spec.units import PAGE_SIZE

from .kernel import GuestKernel, __va
from .set_memory import set_memory_decrypted, set_memory_encrypted

__all__ = ["SeedOutcome", "seed_workload", "PRIVATE_PATTERN", "SHARED_PAYLOAD", "PRIVATE_PAYLOAD"]

PRIVATE_PATTERN = b"private before conversion"
SHARED_PAYLOAD = b"shared: the VMM may read this"
PRIVATE_PAYLOAD = b"private: the VMM must see ciphertext"


@dataclass
class SeedOutcome:
    """What the seed workload did: ``vaddr`` (GVA, direct map) and ``gpa`` of the first
    page, ``pages`` (4 KiB pages), ``ret`` of the traced call (0 or -errno), ``payload``
    written after the call and ``guest_read`` (what the guest read back)."""

    function: str
    pages: int
    vaddr: int = 0
    gpa: int = 0
    ret: int | None = None
    payload: bytes = b""
    guest_read: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)


def _alloc_contiguous(kernel: GuestKernel, pages: int) -> int | None:
    alloc = kernel.page_alloc
    assert alloc is not None
    got: list[int] = []
    while len(got) < pages:
        p = alloc.alloc_page()
        if p is None:
            return None
        if got and p != got[-1] + PAGE_SIZE:
            got = []
        got.append(p)
    return got[0]


def seed_workload(function: str, pages: int, outcome: SeedOutcome) -> Callable[[GuestKernel, GuestPort], None]:
    """The guest workload of the seed: see the module docstring.  ``function`` is
    ``set_memory_decrypted`` or ``set_memory_encrypted``; results go into ``outcome``."""

    def workload(kernel: GuestKernel, cpu: GuestPort) -> None:
        gpa = _alloc_contiguous(kernel, pages)
        if gpa is None:
            outcome.ret = -12  # -ENOMEM
            return
        va = __va(kernel, gpa)
        outcome.vaddr, outcome.gpa = int(va), int(gpa)
        cpu.write(va, PRIVATE_PATTERN)
        if function == "set_memory_decrypted":
            outcome.ret = set_memory_decrypted(kernel, va, pages)
            outcome.payload = SHARED_PAYLOAD
        else:
            outcome.extra["pre_decrypt_ret"] = set_memory_decrypted(kernel, va, pages)
            outcome.ret = set_memory_encrypted(kernel, va, pages)
            outcome.payload = PRIVATE_PAYLOAD
        if outcome.ret == 0:
            cpu.write(va, outcome.payload)
            outcome.guest_read = cpu.read(va, len(outcome.payload))

    return workload
