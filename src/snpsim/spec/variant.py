# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Version profiles and named variants as override tables merged onto a base.

The shape of py-evm's forks (STYLE.md): a profile is a name, a table of *knobs* (plain
values the model tests where versions differ) and a table of *overrides* (modelled
function name -> replacement with the same signature).  Code looks a function up with
``profile.call(name, default)`` at the points where versions differ, so a variant
replaces exactly one step.  Used by KVM (:mod:`snpsim.kvm.profiles`) and the VMM
(:mod:`snpsim.vmm.profiles`); pure and stateless, so it lives with the other shared
definitions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

__all__ = ["VariantProfile"]


@dataclass(frozen=True)
class VariantProfile:
    """``name``; ``knobs`` (name -> value); ``overrides`` (function name -> function)."""

    name: str
    knobs: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def knob(self, name: str) -> Any:
        """The value of knob ``name``; KeyError for an unknown knob (a model bug)."""
        return self.knobs[name]

    def call(self, name: str, default: Callable[..., Any]) -> Callable[..., Any]:
        """The function in force for ``name``: the override, or ``default``."""
        return self.overrides.get(name, default)

    def derive(self, name: str, *, knobs: Mapping[str, Any] | None = None,
               overrides: Mapping[str, Callable[..., Any]] | None = None) -> Self:
        """A new profile of the same class: this one with ``knobs`` and ``overrides``
        merged on top."""
        return type(self)(name, {**self.knobs, **(knobs or {})},
                          {**self.overrides, **(overrides or {})})
