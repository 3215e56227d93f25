# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""ACPI PM1a control register of QEMU's q35 machine, as the guest powers off through it.

Sources:
- ``ACPI_BITMASK_SLEEP_TYPE`` 0x1C00, ``ACPI_BITMASK_SLEEP_ENABLE`` 0x2000: ACPICA
  ``drivers/acpi/acpica/aclocal.h`` (PM1x_CNT bits; ACPI 6.5 section 4.8.3.2.1, SLP_TYP
  bits 12:10, SLP_EN bit 13); QEMU ``include/hw/acpi/acpi.h`` has the same two defines.
  ``ACPI_BITPOSITION_SLEEP_TYPE`` 0x0A: aclocal.h.
- ``ICH9_PMIO_PM1_CNT`` 0x04 (offset of PM1_CNT in the ICH9 LPC PM I/O block): QEMU
  ``include/hw/southbridge/ich9.h`` (moved to ``include/hw/acpi/ich9.h`` later).
- ``ICH9_PMBASE_VALUE`` 0x600: the PM base OVMF programs into the ICH9 LPC PMBASE
  register (``OvmfPkg/Include/OvmfPlatforms.h``).  QEMU itself does not fix PMBASE; the
  firmware does (SeaBIOS would use 0xb000), and SNP guests boot OVMF.
- SLP_TYP of S5 = 0: QEMU ``hw/acpi/core.c`` ``acpi_pm1_cnt_write`` treats sleep type 0
  with SLP_EN as "soft power off" (``qemu_system_shutdown_request``), matching the
  ``_S5`` package QEMU puts in the DSDT.
"""

from __future__ import annotations

__all__ = [
    "ACPI_BITMASK_SLEEP_TYPE",
    "ACPI_BITMASK_SLEEP_ENABLE",
    "ACPI_BITPOSITION_SLEEP_TYPE",
    "ICH9_PMIO_PM1_CNT",
    "ICH9_PMBASE_VALUE",
    "ACPI_PM1_CNT_PORT",
    "ACPI_SLP_TYP_S5",
]

# ---- ACPICA aclocal.h: PM1x_CNT -------------------------------------------------------

ACPI_BITMASK_SLEEP_TYPE = 0x1C00
ACPI_BITMASK_SLEEP_ENABLE = 0x2000
ACPI_BITPOSITION_SLEEP_TYPE = 0x0A

# ---- QEMU q35 (ICH9 LPC) with OVMF ------------------------------------------------------

ICH9_PMIO_PM1_CNT = 0x04
ICH9_PMBASE_VALUE = 0x0600

#: Model-only name: the I/O port of PM1a_CNT on q35 under OVMF (0x604), the value of
#: the FADT's ``PM1a_CNT_BLK`` there.
ACPI_PM1_CNT_PORT = ICH9_PMBASE_VALUE + ICH9_PMIO_PM1_CNT
#: Model-only name: the SLP_TYP value QEMU's DSDT gives for S5 (soft off).
ACPI_SLP_TYP_S5 = 0
