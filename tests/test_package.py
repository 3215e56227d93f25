# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The package installs and its command starts."""

from click.testing import CliRunner

import snpsim
from snpsim.cli import main
from snpsim.spec.addr import GFN, GPA, PFN, PFN_PHYS, PHYS_PFN, SPA, gfn_to_gpa, gpa_to_gfn
from snpsim.spec.units import PageSize, u16, u64


def test_version_and_help():
    assert snpsim.__version__
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0
    assert "SEV-SNP" in r.output


def test_address_conversions():
    assert gfn_to_gpa(GFN(0x12345)) == 0x12345000
    assert gpa_to_gfn(GPA(0x12345FFF)) == 0x12345
    assert PFN_PHYS(PFN(1)) == 0x1000
    assert PHYS_PFN(SPA(0x200000)) == 0x200


def test_widths():
    assert u16(0x10000) == 0
    assert u16(-1) == 0xFFFF
    assert u64(-1) == 0xFFFF_FFFF_FFFF_FFFF
    assert PageSize.SIZE_2M.npages == 512 and PageSize.SIZE_2M.bytes == 0x200000
