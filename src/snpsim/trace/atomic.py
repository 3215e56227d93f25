# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Output files that appear whole or not at all.

Model-only (no kernel twin).  Every file snpsim writes (traces, the report's HTML, JSON
and PNG) goes through :func:`atomic_write`: the data is written to a hidden temporary
file in the destination's own directory, flushed to disk, and renamed over the
destination in one step (``os.replace``, atomic on POSIX within one file system).  If
anything interrupts the write -- a full disk, a permission error, Ctrl-C -- the
temporary file is removed and the destination is left as it was, so a reader never
finds a truncated trace or report.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "prepare_output"]


def _temporary(dest: Path) -> Path:
    """The hidden temporary name beside ``dest``: its name with the process ID, cut
    so that the whole name fits a file system's 255-byte limit when ``dest``'s does."""
    tail = f".{os.getpid()}.part"
    name = dest.name.encode()[: 255 - len(tail) - 1].decode(errors="ignore")
    return dest.with_name(f".{name}{tail}")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8"
                 ) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing and, when the ``with`` block ends
    normally, move it onto ``path``.

    ``mode`` is ``"w"`` (text, ``encoding``) or ``"wb"`` (bytes).  On any exception in the
    block or while finishing (``OSError`` such as ENOSPC or EACCES, ``KeyboardInterrupt``)
    the temporary file is deleted and the exception propagates; ``path`` is untouched.
    Raises ``ValueError`` for another mode.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    dest = Path(path)
    tmp = _temporary(dest)
    f: IO[Any] = open(tmp, mode, encoding=encoding if mode == "w" else None)  # noqa: SIM115
    try:
        try:
            yield f
            f.flush()
            os.fsync(f.fileno())
        finally:
            f.close()
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def prepare_output(path: str | Path) -> str | None:
    """Make the directories ``path`` needs and check that a file can be created there,
    before any work is done, by creating (and removing) the temporary file
    :func:`atomic_write` will use.  Returns None when it can, else a one-line reason
    (``"<dir> is not a directory"``, ``"cannot create <dir>: <strerror>"``, ``"<dir> is not
    writable"``, ``"cannot create a file in <dir>: <strerror>"``, ``"<path> is a
    directory"``, ``"empty path"``).
    """
    if not str(path):
        return "empty path"
    p = Path(path)
    if len(p.name.encode()) > 255:
        return f"the file name is longer than 255 bytes ({len(p.name.encode())})"
    try:
        if p.is_dir():
            return f"{p} is a directory"
        parent = p.resolve().parent
    except OSError as exc:  # a component too long, a loop of symlinks...
        return f"cannot use {p}: {exc.strerror or exc}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return f"{parent} is not a directory"
    except OSError as exc:
        return f"cannot create {parent}: {exc.strerror}"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable"
    # Permission bits are not the whole story (/proc, /sys, read-only mounts, full
    # disks): create and remove the temporary file the real write will use.
    probe = _temporary(parent / p.name)
    try:
        with open(probe, "wb"):
            pass
    except OSError as exc:
        return f"cannot create a file in {parent}: {exc.strerror or exc}"
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None
