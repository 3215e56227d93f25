# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``python -m snpsim``: the same command as ``snpsim``."""

from snpsim.cli import main

if __name__ == "__main__":
    main()
