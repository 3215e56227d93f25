# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Named guest kernel variants: historical and buggy behaviours as override tables merged
onto a version profile (STYLE.md: py-evm forks; issue 5 "Checked by").

Each variant replaces exactly one kernel step -- an :func:`~snpsim.guest.kernel.overridable`
function -- with the code a bug report describes; the default kernel stays Linux
6.16/6.17 (linux-guest.md section 0).  Select one with ``GuestConfig(variant=name)``, or
``SnpSystem(variant=name)`` (an extra ``GuestConfig`` field).  Reports from
``docs/bug-reports.md``:

* ``"R8-buggy"`` -- COCONUT before svsm#512: the PVALIDATE size comes from the alignment
  and length of the *virtual* range alone (``pval_pages`` override); a 2M PVALIDATE on a
  span the RMP holds as 4K pages answers FAIL_SIZEMISMATCH (6), which that code does not
  retry at 4K, so it terminates.  Linux (default) retries 512 x 4K.
* ``"R9-buggy"`` -- a #VC handler that emulates the access to a not-validated page
  (COCONUT before svsm#929): ``vc_handle_exitcode`` override that, for 0x404, validates
  the page at CR2 and resumes, so the access goes on with contents the guest never wrote.
  Linux (default) has no emulation step: ES_UNSUPPORTED -> terminate (0, 0).
* ``"R10-buggy"`` -- Oak stage0 before oak#4218: PVALIDATE(validate) after *every* PSC,
  the shared ones included (``__set_pages_state`` override).
* ``"R11-buggy"`` -- OVMF before edk2#6285: memory initialised before it is accepted
  (``reserve_and_init`` override writes, then accepts).
* ``"no-cpa-flush"`` -- model experiment of issue 5 item 1: ``cpa_flush`` does nothing,
  so a TLB entry made before a C-bit change survives it (a stale translation).

:func:`resolve_profile` also installs the v5.19-6.4 structure (:mod:`snpsim.guest.sev_6_4`)
for the ``"6.4"`` profile.
"""

from __future__ import annotations

from snpsim.spec.exit_codes import SVM_EXIT_PAGE_NOT_VALIDATED
from snpsim.spec.psc import SNP_PAGE_STATE_PRIVATE, SNP_PAGE_STATE_SHARED
from snpsim.spec.sev import ES_OK
from snpsim.spec.units import PAGE_MASK, RMP_PG_SIZE_4K

from .kernel import (
    PROFILE_6_4,
    PROFILE_6_17,
    GuestKernel,
    KernelProfile,
    base_of,
    pfn_to_kaddr,
    this_cpu,
)

__all__ = ["KERNEL_VARIANTS", "resolve_profile"]


# -- R8 ---------------------------------------------------------------------------------------


def _r8_pval_pages(kernel: GuestKernel, desc: int) -> None:
    """R8-buggy ``pval_pages(desc)``: PVALIDATE each entry at the size its virtual range
    suggests (2M entries as one 2M PVALIDATE) and treat *any* failure, FAIL_SIZEMISMATCH
    included, as fatal (``__pval_terminate`` -> (1, 2)): no 4K retry, no look at how the
    span is really held.  ``desc`` is the GVA of the descriptor."""
    from .asm_sev import pvalidate
    from .sev_core import __pval_terminate, _filled_entries, _rmp_size

    for entry in _filled_entries(kernel, desc):
        size = _rmp_size(entry)
        want_valid = entry.operation == SNP_PAGE_STATE_PRIVATE
        rc = pvalidate(kernel, pfn_to_kaddr(kernel, entry.gfn), size, want_valid)
        if rc:
            __pval_terminate(kernel, entry.gfn, want_valid, size, rc, 0)


# -- R9 ---------------------------------------------------------------------------------------


def _r9_vc_handle_exitcode(kernel: GuestKernel, ctxt: object, ghcb: int, exit_code: int) -> int:
    """R9-buggy ``vc_handle_exitcode``: a #VC 0x404 (page not validated) is "emulated" --
    the handler validates the 4 KiB page at CR2 (``ctxt.fi.cr2``, a GVA) and reports
    ES_OK, so the faulting access runs again and uses whatever the page holds.  Other
    exit codes go to the Linux handler."""
    from .asm_sev import pvalidate

    if exit_code == SVM_EXIT_PAGE_NOT_VALIDATED:
        cr2 = ctxt.fi.cr2  # type: ignore[attr-defined]
        pvalidate(kernel, cr2 & PAGE_MASK, RMP_PG_SIZE_4K, True)
        return ES_OK
    from .sev_vc import vc_handle_exitcode

    return base_of(vc_handle_exitcode)(kernel, ctxt, ghcb, exit_code)  # type: ignore[no-any-return]


# -- R10 --------------------------------------------------------------------------------------


def _r10_set_pages_state(kernel: GuestKernel, data: int, vaddr: int, vaddr_end: int, op: int) -> int:
    """R10-buggy ``__set_pages_state``: Linux's chunk, then -- for a SHARED chunk too --
    PVALIDATE(validate) of every entry through the direct map, as Oak stage0 did after
    every page state change.  Returns the next GVA like the base."""
    from .asm_sev import pvalidate
    from .sev_core import __set_pages_state, _filled_entries, _rmp_size

    nxt: int = base_of(__set_pages_state)(kernel, data, vaddr, vaddr_end, op)
    if op == SNP_PAGE_STATE_SHARED:
        for entry in _filled_entries(kernel, data):
            rc = pvalidate(kernel, pfn_to_kaddr(kernel, entry.gfn), _rmp_size(entry), True)
            kernel.warn(f"R10: PVALIDATE(validate) after PSC(shared) of gfn {entry.gfn:#x}: rc {rc}")
    return nxt


# -- R11 --------------------------------------------------------------------------------------


def _r11_reserve_and_init(kernel: GuestKernel, gpa: int, data: bytes) -> None:
    """R11-buggy ``reserve_and_init``: write ``data`` at GPA ``gpa`` through the direct
    map first, accept the range afterwards (OVMF's NvVarStore before edk2#6285)."""
    from .kernel import __va
    from .unaccepted_memory import accept_memory

    this_cpu(kernel).write(__va(kernel, gpa), data)
    accept_memory(kernel, gpa, len(data))


# -- no-cpa-flush -----------------------------------------------------------------------------


def _no_cpa_flush(kernel: GuestKernel, cpa: object, cache: int) -> None:
    """``cpa_flush`` that flushes nothing (model experiment): TLB entries and cache lines
    made before the attribute change survive it."""


KERNEL_VARIANTS: dict[str, KernelProfile] = {
    "R8-buggy": PROFILE_6_17.derive("R8-buggy", overrides={"pval_pages": _r8_pval_pages}),
    "R9-buggy": PROFILE_6_17.derive("R9-buggy", overrides={"vc_handle_exitcode": _r9_vc_handle_exitcode}),
    "R10-buggy": PROFILE_6_17.derive("R10-buggy", overrides={"__set_pages_state": _r10_set_pages_state}),
    "R11-buggy": PROFILE_6_17.derive("R11-buggy", overrides={"reserve_and_init": _r11_reserve_and_init}),
    "no-cpa-flush": PROFILE_6_17.derive("no-cpa-flush", overrides={"cpa_flush": _no_cpa_flush}),
}


def resolve_profile(base: KernelProfile, variant: str | None) -> KernelProfile:
    """The profile a kernel runs with: ``base`` (with the v5.19-6.4 structure installed
    when ``base`` is :data:`~snpsim.guest.kernel.PROFILE_6_4`), then the overrides of
    the named ``variant`` merged on top.  Raises ValueError for an unknown variant."""
    prof = base
    if base is PROFILE_6_4 or (base.name == "6.4" and not base.overrides):
        from .sev_6_4 import OVERRIDES_6_4

        prof = base.derive(base.name, overrides=OVERRIDES_6_4)
    if variant is None:
        return prof
    v = KERNEL_VARIANTS.get(variant)
    if v is None:
        raise ValueError(f"unknown guest variant {variant!r}: {', '.join(KERNEL_VARIANTS)}")
    return prof.derive(f"{prof.name}+{variant}", overrides=v.overrides)

