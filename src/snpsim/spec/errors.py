# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The one exception of the spec layer: a value that cannot be decoded at all.

``SpecDecodeError`` is raised only where a value has no decoding: a number that is not a
u64, a buffer of the wrong length, a descriptor shorter than its header.  A value that
decodes but breaks a rule of the spec (reserved bits set, an unknown operation, a 2 MiB
GFN that is not aligned) is *not* an error: the decoders return it with a list of
problems, because adversaries and bug reproductions put exactly such values in front of
the other party.  (STYLE.md section 5: one exception base for expected failures.)
"""

from __future__ import annotations

__all__ = ["SpecDecodeError"]


class SpecDecodeError(ValueError):
    """A value that cannot be decoded; names the field, the value and why.

    Attributes: ``field`` (spec/Linux name of the field or input, e.g. ``"msr"``,
    ``"ghcb"``, ``"psc.hdr"``), ``value`` (the offending int: the value itself, or a
    length in bytes for buffers), ``reason`` (one sentence).  Subclass of ``ValueError``
    so that callers who only know the standard library can still catch it.
    """

    def __init__(self, field: str, value: int, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        shown = f"{value:#x}" if isinstance(value, int) and value >= 0 else repr(value)
        super().__init__(f"{field}={shown}: {reason}")
