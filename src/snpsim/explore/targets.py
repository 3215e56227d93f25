# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The built-in targets of ``snpsim explore``: scenarios written on :mod:`snpsim.api`
whose guest work checks what it reads back, with the secrets the ``no-plaintext``
invariant looks for (:class:`snpsim.explore.explorer.Explorer`).

``seed``: two vCPUs, each doing the seed conversion (``snpsim run seed``: a page
written privately, ``set_memory_decrypted``, ``set_memory_encrypted``, a payload
written privately and read back; :func:`snpsim.scenarios.bugs.seed_round_trip`), so
schedules can interleave two conversions.  Each vCPU records in
``data["explore_reads"][vcpu]`` whether it read back what it wrote.
"""

from __future__ import annotations

from typing import Any

from snpsim.api import Guest, Scenario, ScenarioError
from snpsim.scenarios.bugs import SEED_PATTERN, SEED_PAYLOAD, seed_round_trip

__all__ = ["TARGETS", "target", "load_target", "SEED_SECRETS"]

#: What the seed workload writes only into private pages.
SEED_SECRETS = (SEED_PATTERN, SEED_PAYLOAD)


def _seed(seed: int) -> Scenario:
    sc = Scenario("explore: seed conversion on two vCPUs", memory="64M", vcpus=2, seed=seed,
                  description="each vCPU: set_memory_decrypted then set_memory_encrypted "
                              "of its own page, a private payload read back")

    def work(g: Guest) -> None:
        va, _gpa, ret = seed_round_trip(g)
        reads = g.result.setdefault("explore_reads", {})
        if ret == 0:
            reads[g.vcpu] = g.read(va, len(SEED_PAYLOAD)) == SEED_PAYLOAD

    sc.guest(work, vcpu=0)
    sc.guest(work, vcpu=1)
    return sc


#: Built-in target name -> (one line, builder(seed) -> Scenario, secrets).
TARGETS: dict[str, tuple[str, Any, tuple[bytes, ...]]] = {
    "seed": ("the seed conversion on two vCPUs, each reading back its private payload",
             _seed, SEED_SECRETS),
}


def target(name: str, seed: int = 0) -> tuple[Scenario, tuple[bytes, ...]]:
    """The built-in target ``name`` (:data:`TARGETS`) as a fresh Scenario with scheduler
    seed ``seed``, and its secrets.  ScenarioError for an unknown name."""
    if name not in TARGETS:
        raise ScenarioError(f"unknown explore target {name!r}: {', '.join(TARGETS)} or a FILE.py")
    _about, build, secrets = TARGETS[name]
    return build(seed), secrets


def load_target(path: str) -> tuple[Scenario, tuple[bytes, ...]]:
    """The scenario file ``path`` as a target: its ``scenario`` (as
    :func:`snpsim.api.load_scenario_file` finds it) and its module-level ``secrets`` (byte
    strings the guest writes only privately; () when it has none).  Raises
    ScenarioError when the file defines no Scenario, and the file's own exception."""
    import runpy

    ns = runpy.run_path(path, run_name="__snpsim_scenario__")
    sc = ns.get("scenario")
    if not isinstance(sc, Scenario):
        raise ScenarioError(f"{path} defines no 'scenario = Scenario(...)' at module level")
    secrets = tuple(s for s in ns.get("secrets", ()) if isinstance(s, bytes))
    return sc, secrets
