"""Constants the guest needs that ``snpsim.spec`` does not define yet.

Model-only shim, the same pattern as ``snpsim.kvm.spec_pending``: each name is taken from
``snpsim.spec`` as soon as the spec engineer adds it there, and falls back to the value
below until then, so that the single definition stays in ``spec/`` and the guest switches
to it without edits.  :data:`MISSING_FROM_SPEC` lists the names still falling back.

Fallback values and their sources:

- ``enum es_result``: ``ES_OK`` 0, ``ES_UNSUPPORTED`` 1, ``ES_VMM_ERROR`` 2,
  ``ES_DECODE_FAILED`` 3, ``ES_EXCEPTION`` 4, ``ES_RETRY`` 5 -- ``arch/x86/include/asm/sev.h``
  (linux-guest.md 1.7, [verified]).
- ``IOIO_TYPE_OUT`` 0, ``IOIO_TYPE_IN`` 1, ``IOIO_DATA_8/16/32`` bits 4/5/6,
  ``IOIO_ADDR_64`` bit 9, port in bits 31:16 -- ``arch/x86/coco/sev/vc-shared.c``
  (``vc_ioio_exitinfo``), the SVM IOIO EXITINFO1 format of APM vol 2 15.10.2
  [unconfirmed: from memory].
- ``ACPI_PM1_CNT_PORT`` 0x604 (QEMU q35 ICH9 PMBASE 0x600 + 4), ``ACPI_BITMASK_SLEEP_ENABLE``
  (SLP_EN, bit 13) and ``SLP_TYP`` of S5 = 0 on QEMU -- ACPI 6.5 4.8.3.2.1, QEMU
  ``hw/isa/lpc_ich9.c`` [unconfirmed]; the same values as ``kvm/spec_pending.py``.
- ``PAGE_OFFSET`` 0xffff888000000000 (4-level paging, no KASLR) and
  ``__START_KERNEL_map`` 0xffffffff80000000 -- ``arch/x86/include/asm/page_64_types.h``
  (Documentation/arch/x86/x86_64/mm.rst) [from memory].
- ``_PAGE_ENC`` is ``1 << cbit`` (``spec.pgtable_types.pte_cbit_mask``);
  ``_KERNPG_TABLE_NOENC`` = PRESENT | RW | ACCESSED | DIRTY -- pgtable_types.h [from memory].
- ``tlb_single_page_flush_ceiling`` 33 -- ``arch/x86/mm/tlb.c`` (linux-guest.md 2.4,
  [unconfirmed]).
- ``CONFIG_PHYSICAL_START`` 0x1000000 (16 MiB), where the kernel image is loaded --
  ``arch/x86/Kconfig`` default [from memory].
"""

from __future__ import annotations

from snpsim.spec import exit_codes as _exit_codes
from snpsim.spec import pgtable_types as _pgt

__all__ = [
    "ES_OK",
    "ES_UNSUPPORTED",
    "ES_VMM_ERROR",
    "ES_DECODE_FAILED",
    "ES_EXCEPTION",
    "ES_RETRY",
    "IOIO_TYPE_OUT",
    "IOIO_TYPE_IN",
    "IOIO_DATA_8",
    "IOIO_DATA_16",
    "IOIO_DATA_32",
    "IOIO_ADDR_64",
    "IOIO_PORT_SHIFT",
    "ACPI_PM1_CNT_PORT",
    "ACPI_BITMASK_SLEEP_ENABLE",
    "ACPI_SLP_TYP_S5",
    "ACPI_SLP_TYP_SHIFT",
    "PAGE_OFFSET",
    "__START_KERNEL_map",
    "_KERNPG_TABLE_NOENC",
    "TLB_SINGLE_PAGE_FLUSH_CEILING",
    "CONFIG_PHYSICAL_START",
    "MISSING_FROM_SPEC",
]

MISSING_FROM_SPEC: list[str] = []


def _pick(module: object, name: str, fallback: int) -> int:
    value = getattr(module, name, None)
    if value is None:
        MISSING_FROM_SPEC.append(name)
        return fallback
    return int(value)


ES_OK = _pick(_exit_codes, "ES_OK", 0)
ES_UNSUPPORTED = _pick(_exit_codes, "ES_UNSUPPORTED", 1)
ES_VMM_ERROR = _pick(_exit_codes, "ES_VMM_ERROR", 2)
ES_DECODE_FAILED = _pick(_exit_codes, "ES_DECODE_FAILED", 3)
ES_EXCEPTION = _pick(_exit_codes, "ES_EXCEPTION", 4)
ES_RETRY = _pick(_exit_codes, "ES_RETRY", 5)

IOIO_TYPE_OUT = _pick(_exit_codes, "IOIO_TYPE_OUT", 0)
IOIO_TYPE_IN = _pick(_exit_codes, "IOIO_TYPE_IN", 1)
IOIO_DATA_8 = _pick(_exit_codes, "IOIO_DATA_8", 1 << 4)
IOIO_DATA_16 = _pick(_exit_codes, "IOIO_DATA_16", 1 << 5)
IOIO_DATA_32 = _pick(_exit_codes, "IOIO_DATA_32", 1 << 6)
IOIO_ADDR_64 = _pick(_exit_codes, "IOIO_ADDR_64", 1 << 9)
IOIO_PORT_SHIFT = _pick(_exit_codes, "SVM_IOIO_PORT_SHIFT", 16)

ACPI_PM1_CNT_PORT = _pick(_exit_codes, "ACPI_PM1_CNT_PORT", 0x604)
ACPI_BITMASK_SLEEP_ENABLE = _pick(_exit_codes, "ACPI_BITMASK_SLEEP_ENABLE", 1 << 13)
ACPI_SLP_TYP_S5 = _pick(_exit_codes, "ACPI_SLP_TYP_S5", 0)
ACPI_SLP_TYP_SHIFT = _pick(_exit_codes, "ACPI_SLP_TYP_SHIFT", 10)

PAGE_OFFSET = _pick(_pgt, "PAGE_OFFSET", 0xFFFF888000000000)
__START_KERNEL_map = _pick(_pgt, "__START_KERNEL_map", 0xFFFFFFFF80000000)
_KERNPG_TABLE_NOENC = _pick(_pgt, "_KERNPG_TABLE_NOENC", 0x63)
TLB_SINGLE_PAGE_FLUSH_CEILING = _pick(_pgt, "tlb_single_page_flush_ceiling", 33)
CONFIG_PHYSICAL_START = _pick(_pgt, "CONFIG_PHYSICAL_START", 0x1000000)
