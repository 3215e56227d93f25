# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Reading a user's input file without surprises.

Model-only (no kernel twin).  ``--from-dmesg FILE`` and ``decode ghcb FILE`` read files a
user names; a device (``/dev/zero``), a FIFO or a huge file must be refused up front,
never read until memory runs out or the command hangs.
"""

from __future__ import annotations

import os
import stat

__all__ = ["read_regular_file"]


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes.

    Raises ``ValueError`` with a one-line reason for anything else: a path that is not a
    regular file (directory, device, FIFO, socket), a file larger than ``limit`` bytes, or
    one that cannot be opened or read (the ``strerror`` of the ``OSError``).  Never reads
    more than ``limit + 1`` bytes, so a file that grows while it is read is refused too.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ValueError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{os.fspath(path)} is not a regular file")
    if st.st_size > limit:
        raise ValueError(f"{os.fspath(path)} has {st.st_size} bytes; at most {limit} are read")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ValueError(f"{os.fspath(path)} has more than {limit} bytes")
    return data
