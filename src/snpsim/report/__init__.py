# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Output of ``snpsim run``: the summary (dict and rich table), the memory picture (PNG)
and the static HTML report.  Sits above ``system`` in the layers."""
