"""Deprecated shim: re-exports host constants from :mod:`snpsim.spec`.

Every name here is defined once in ``spec/`` (STYLE.md 2.3) and only re-exported, so that
the kvm modules that still import ``from .spec_pending import ...`` and the VMM's
``kvm_main.pending`` keep working.  New code imports from the spec module named below;
this file goes once no importer is left.

- ``KVM_SEV_*``, ``KVM_MEM_*``, ``KVM_INTERNAL_ERROR_EMULATION``, ``KVM_EXIT_IO_IN/OUT``:
  :mod:`snpsim.spec.kvm_uapi`
- ``GHCB_VERSION_*``, ``GHCB_SCRATCH_AREA_LIMIT``, ``INITIAL_VMSA_GPA``:
  :mod:`snpsim.spec.svm_sev` (arch/x86/kvm/svm/sev.c)
- ``SVM_IOIO_*``: :mod:`snpsim.spec.ioio` (asm/svm.h)
- ``FALLOC_FL_*``: :mod:`snpsim.spec.falloc`; ``MADV_*``: :mod:`snpsim.spec.mman`
- ``ACPI_PM1_CNT_PORT``, ``ACPI_BITMASK_SLEEP_ENABLE``: :mod:`snpsim.spec.acpi`
"""

from __future__ import annotations

from snpsim.spec.acpi import ACPI_BITMASK_SLEEP_ENABLE, ACPI_PM1_CNT_PORT
from snpsim.spec.falloc import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
from snpsim.spec.ioio import (
    SVM_IOIO_PORT_SHIFT,
    SVM_IOIO_REP_MASK,
    SVM_IOIO_SIZE_MASK,
    SVM_IOIO_SIZE_SHIFT,
    SVM_IOIO_STR_MASK,
    SVM_IOIO_TYPE_MASK,
)
from snpsim.spec.kvm_uapi import (
    KVM_EXIT_IO_IN,
    KVM_EXIT_IO_OUT,
    KVM_INTERNAL_ERROR_EMULATION,
    KVM_MEM_GUEST_MEMFD,
    KVM_MEM_LOG_DIRTY_PAGES,
    KVM_MEM_READONLY,
    KVM_SEV_INIT2,
    KVM_SEV_SNP_LAUNCH_FINISH,
    KVM_SEV_SNP_LAUNCH_START,
    KVM_SEV_SNP_LAUNCH_UPDATE,
)
from snpsim.spec.mman import MADV_DONTNEED, MADV_REMOVE
from snpsim.spec.svm_sev import (
    GHCB_SCRATCH_AREA_LIMIT,
    GHCB_VERSION_DEFAULT,
    GHCB_VERSION_MAX,
    GHCB_VERSION_MIN,
    INITIAL_VMSA_GPA,
)

__all__ = [
    "KVM_SEV_INIT2",
    "KVM_SEV_SNP_LAUNCH_START",
    "KVM_SEV_SNP_LAUNCH_UPDATE",
    "KVM_SEV_SNP_LAUNCH_FINISH",
    "KVM_MEM_LOG_DIRTY_PAGES",
    "KVM_MEM_READONLY",
    "KVM_MEM_GUEST_MEMFD",
    "GHCB_VERSION_MAX",
    "GHCB_VERSION_DEFAULT",
    "GHCB_VERSION_MIN",
    "GHCB_SCRATCH_AREA_LIMIT",
    "INITIAL_VMSA_GPA",
    "SVM_IOIO_TYPE_MASK",
    "SVM_IOIO_STR_MASK",
    "SVM_IOIO_REP_MASK",
    "SVM_IOIO_SIZE_SHIFT",
    "SVM_IOIO_SIZE_MASK",
    "SVM_IOIO_PORT_SHIFT",
    "FALLOC_FL_KEEP_SIZE",
    "FALLOC_FL_PUNCH_HOLE",
    "MADV_DONTNEED",
    "MADV_REMOVE",
    "KVM_INTERNAL_ERROR_EMULATION",
    "ACPI_PM1_CNT_PORT",
    "ACPI_BITMASK_SLEEP_ENABLE",
    "KVM_EXIT_IO_IN",
    "KVM_EXIT_IO_OUT",
]
