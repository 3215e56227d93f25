"""Constants the host side needs that ``snpsim.spec`` does not define yet.

Model-only shim.  Each name is taken from ``snpsim.spec`` when the spec engineer has
added it there, and falls back to the value below otherwise, so that the host model can
run today and switch to the single definition in ``spec/`` without further edits.  The
fallback values and their sources (all [verified] in kvm-qemu-host.md unless noted):

- ``KVM_SEV_INIT2`` 22, ``KVM_SEV_SNP_LAUNCH_START/UPDATE/FINISH`` 100/101/102:
  ``arch/x86/include/uapi/asm/kvm.h`` ``enum sev_cmd_id`` [unconfirmed: from memory].
- ``KVM_MEM_LOG_DIRTY_PAGES``/``KVM_MEM_READONLY``/``KVM_MEM_GUEST_MEMFD`` 1/2/4:
  ``include/uapi/linux/kvm.h`` [unconfirmed: from memory].
- ``GHCB_VERSION_MAX/DEFAULT/MIN`` 2/2/1, ``GHCB_SCRATCH_AREA_LIMIT`` 16 * 4096,
  ``INITIAL_VMSA_GPA`` 0xFFFFFFFFF000: ``arch/x86/kvm/svm/sev.c`` (kvm-qemu-host.md 1.5, 1.6).
- ``SVM_IOIO_TYPE_MASK`` bit 0 (1 = IN), ``SVM_IOIO_STR_MASK`` bit 2, ``SVM_IOIO_REP_MASK``
  bit 3, ``SVM_IOIO_SIZE_SHIFT`` 4 / ``SVM_IOIO_SIZE_MASK`` 7 << 4, port in bits 31:16:
  ``arch/x86/include/asm/svm.h`` / APM vol 2 15.10.2 [unconfirmed: from memory].
- ``FALLOC_FL_KEEP_SIZE`` 1, ``FALLOC_FL_PUNCH_HOLE`` 2: ``include/uapi/linux/falloc.h``;
  ``MADV_DONTNEED`` 4, ``MADV_REMOVE`` 9: ``include/uapi/asm-generic/mman-common.h``
  [unconfirmed: from memory].
- ``KVM_INTERNAL_ERROR_EMULATION`` 1: ``include/uapi/linux/kvm.h`` [unconfirmed].
- ACPI PM1a control block of QEMU's q35 ICH9 LPC at I/O port 0x604, ``SLP_EN`` bit 13
  (0x2000), ``SLP_TYP`` bits 12:10: ACPI spec 6.5 section 4.8.3.2.1 and QEMU
  ``hw/isa/lpc_ich9.c`` (``ICH9_PMIO_PM1_CNT`` = PMBASE 0x600 + 4) [unconfirmed].
"""

from __future__ import annotations

from snpsim.spec import exit_codes as _exit_codes
from snpsim.spec import kvm_uapi as _kvm_uapi

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
    "MISSING_FROM_SPEC",
]

_FALLBACK: dict[str, int] = {
    "KVM_SEV_INIT2": 22,
    "KVM_SEV_SNP_LAUNCH_START": 100,
    "KVM_SEV_SNP_LAUNCH_UPDATE": 101,
    "KVM_SEV_SNP_LAUNCH_FINISH": 102,
    "KVM_MEM_LOG_DIRTY_PAGES": 1 << 0,
    "KVM_MEM_READONLY": 1 << 1,
    "KVM_MEM_GUEST_MEMFD": 1 << 2,
    "GHCB_VERSION_MAX": 2,
    "GHCB_VERSION_DEFAULT": 2,
    "GHCB_VERSION_MIN": 1,
    "GHCB_SCRATCH_AREA_LIMIT": 16 * 4096,
    "INITIAL_VMSA_GPA": 0xFFFFFFFFF000,
    "SVM_IOIO_TYPE_MASK": 1 << 0,
    "SVM_IOIO_STR_MASK": 1 << 2,
    "SVM_IOIO_REP_MASK": 1 << 3,
    "SVM_IOIO_SIZE_SHIFT": 4,
    "SVM_IOIO_SIZE_MASK": 7 << 4,
    "SVM_IOIO_PORT_SHIFT": 16,
    "FALLOC_FL_KEEP_SIZE": 0x01,
    "FALLOC_FL_PUNCH_HOLE": 0x02,
    "MADV_DONTNEED": 4,
    "MADV_REMOVE": 9,
    "KVM_INTERNAL_ERROR_EMULATION": 1,
    "ACPI_PM1_CNT_PORT": 0x604,
    "ACPI_BITMASK_SLEEP_ENABLE": 1 << 13,
    "KVM_EXIT_IO_IN": 0,
    "KVM_EXIT_IO_OUT": 1,
}

#: Names still served by the fallback table (reported to the spec engineer).
MISSING_FROM_SPEC: list[str] = []

_g = globals()
for _name, _value in _FALLBACK.items():
    _found = None
    for _mod in (_kvm_uapi, _exit_codes):
        if hasattr(_mod, _name):
            _found = getattr(_mod, _name)
            break
    if _found is None:
        MISSING_FROM_SPEC.append(_name)
        _found = _value
    _g[_name] = _found

KVM_SEV_INIT2: int
KVM_SEV_SNP_LAUNCH_START: int
KVM_SEV_SNP_LAUNCH_UPDATE: int
KVM_SEV_SNP_LAUNCH_FINISH: int
KVM_MEM_LOG_DIRTY_PAGES: int
KVM_MEM_READONLY: int
KVM_MEM_GUEST_MEMFD: int
GHCB_VERSION_MAX: int
GHCB_VERSION_DEFAULT: int
GHCB_VERSION_MIN: int
GHCB_SCRATCH_AREA_LIMIT: int
INITIAL_VMSA_GPA: int
SVM_IOIO_TYPE_MASK: int
SVM_IOIO_STR_MASK: int
SVM_IOIO_REP_MASK: int
SVM_IOIO_SIZE_SHIFT: int
SVM_IOIO_SIZE_MASK: int
SVM_IOIO_PORT_SHIFT: int
FALLOC_FL_KEEP_SIZE: int
FALLOC_FL_PUNCH_HOLE: int
MADV_DONTNEED: int
MADV_REMOVE: int
KVM_INTERNAL_ERROR_EMULATION: int
ACPI_PM1_CNT_PORT: int
ACPI_BITMASK_SLEEP_ENABLE: int
KVM_EXIT_IO_IN: int
KVM_EXIT_IO_OUT: int
