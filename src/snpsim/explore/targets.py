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

``range``: the same on :data:`RANGE_PAGES` contiguous pages per vCPU, converted with one
``set_memory_decrypted`` and one ``set_memory_encrypted`` call each, so a Page State
Change request holds several entries (and partial progress, misanswers and host
events meet a request in the middle).
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


#: Pages each vCPU of the ``range`` target converts with one call.
RANGE_PAGES = 4


def _range(seed: int) -> Scenario:
    sc = Scenario("explore: 4-page conversions on two vCPUs", memory="64M", vcpus=2, seed=seed,
                  description="each vCPU: 4 contiguous pages made shared and private again "
                              "with one call each (PSC requests of several entries)")

    def work(g: Guest) -> None:
        got = [g.alloc_page()]
        for _ in range(64):  # the other vCPU allocates meanwhile: look for a contiguous run
            if len(got) == RANGE_PAGES:
                break
            va = g.alloc_page()
            got = got + [va] if va == got[-1] + 4096 else [va]
        first, n = got[0], len(got)
        for i in range(n):
            g.write(first + i * 4096, SEED_PATTERN)
        reads = g.result.setdefault("explore_reads", {})
        if g.set_memory_decrypted(first, n) != 0 or g.set_memory_encrypted(first, n) != 0:
            return
        for i in range(n):
            g.write(first + i * 4096, SEED_PAYLOAD)
        reads[g.vcpu] = all(g.read(first + i * 4096, len(SEED_PAYLOAD)) == SEED_PAYLOAD
                            for i in range(n))

    sc.guest(work, vcpu=0)
    sc.guest(work, vcpu=1)
    return sc


#: Built-in target name -> (one line, builder(seed) -> Scenario, secrets).
TARGETS: dict[str, tuple[str, Any, tuple[bytes, ...]]] = {
    "seed": ("the seed conversion on two vCPUs, each reading back its private payload",
             _seed, SEED_SECRETS),
    "range": ("4 contiguous pages per vCPU converted with one call each way (PSC requests "
              "of several entries), on two vCPUs", _range, SEED_SECRETS),
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
