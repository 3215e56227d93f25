"""Deprecated shim: re-exports guest constants from :mod:`snpsim.spec`.

Every name here is defined once in ``spec/`` (STYLE.md 2.3) and only re-exported, so that
the guest modules that still import ``from .spec_pending import ...`` keep working.  New
code imports from the spec module named below; this file goes once no importer is left.

- ``ES_*``: :mod:`snpsim.spec.sev` (asm/sev.h ``enum es_result``)
- ``IOIO_*``: :mod:`snpsim.spec.ioio` (vc-shared.c); ``IOIO_PORT_SHIFT`` is
  ``spec.ioio.SVM_IOIO_PORT_SHIFT``
- ``ACPI_*``: :mod:`snpsim.spec.acpi`; ``ACPI_SLP_TYP_SHIFT`` is
  ``spec.acpi.ACPI_BITPOSITION_SLEEP_TYPE``
- ``PAGE_OFFSET``, ``__START_KERNEL_map``, ``CONFIG_PHYSICAL_START``:
  :mod:`snpsim.spec.page_64_types`
- ``_KERNPG_TABLE_NOENC``: :mod:`snpsim.spec.pgtable_types`
- ``TLB_SINGLE_PAGE_FLUSH_CEILING`` is ``spec.tlb.tlb_single_page_flush_ceiling``
"""

from __future__ import annotations

from snpsim.spec.acpi import ACPI_BITMASK_SLEEP_ENABLE, ACPI_PM1_CNT_PORT, ACPI_SLP_TYP_S5
from snpsim.spec.acpi import ACPI_BITPOSITION_SLEEP_TYPE as ACPI_SLP_TYP_SHIFT
from snpsim.spec.ioio import (
    IOIO_ADDR_64,
    IOIO_DATA_8,
    IOIO_DATA_16,
    IOIO_DATA_32,
    IOIO_TYPE_IN,
    IOIO_TYPE_OUT,
)
from snpsim.spec.ioio import SVM_IOIO_PORT_SHIFT as IOIO_PORT_SHIFT
from snpsim.spec.page_64_types import CONFIG_PHYSICAL_START, PAGE_OFFSET, __START_KERNEL_map
from snpsim.spec.pgtable_types import _KERNPG_TABLE_NOENC
from snpsim.spec.sev import (
    ES_DECODE_FAILED,
    ES_EXCEPTION,
    ES_OK,
    ES_RETRY,
    ES_UNSUPPORTED,
    ES_VMM_ERROR,
)
from snpsim.spec.tlb import tlb_single_page_flush_ceiling as TLB_SINGLE_PAGE_FLUSH_CEILING

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
]
