# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The scenarios ``snpsim run`` knows, one line each, and how each is prepared.

Model-only.  ``seed``, ``accept``, ``dma`` and ``boot`` turn :class:`ScenarioParams`
into a :class:`Prepared`: the guest workload (``fn(kernel, cpu)``, run on the BSP after
the guest's boot), extra ``GuestConfig`` fields and a result object the workload fills
in; ``bug/<name>`` and ``attack/<name>`` into an :class:`snpsim.api.Scenario`
(:func:`variant_scenario`).  :func:`run_scenario` builds the VM and runs it.

Scenarios:

* ``seed`` -- :mod:`snpsim.guest.seed`: one 4 KiB page made shared with
  ``set_memory_decrypted``, written, made private again with ``set_memory_encrypted``.
* ``accept`` -- all guest memory accepted at boot (``accept_memory=eager``,
  ``GuestConfig.eager_accept``), with 2M PSC entries (``--page-size 2M``, the v6.5+
  kernel) or 4K entries only (``4K``: the kernel profile with ``psc_2m_entries`` off).
* ``dma`` -- :mod:`snpsim.scenarios.dma`: cycles of ``dma_alloc_coherent`` /
  ``dma_free_coherent`` of mixed sizes.
* ``boot`` -- :mod:`snpsim.scenarios.boot`: a Linux SNP guest boot's page-state work with
  real sizes (optionally configured from a kernel log, :mod:`snpsim.scenarios.dmesg`).
* ``bug/<name>`` -- a historical behaviour: the guest variants of
  :data:`snpsim.guest.variants.KERNEL_VARIANTS` (``R8-buggy`` is ``bug/R8``) and the host
  variants of :data:`snpsim.adversary.VARIANTS`.  The guest work is the report's trigger
  (:mod:`snpsim.scenarios.bugs`), and after the run the result gets the symptom
  (``symptom``, and what the trigger's ``inspect`` reads from the host side); with
  ``variant="buggy"`` the variant is in force (a host variant's hooks and knobs,
  :meth:`snpsim.adversary.Variant.apply`; a guest variant's kernel profile), else the
  fixed (default) stack.
* ``attack/<name>`` -- a malicious hypervisor of :data:`snpsim.adversary.ATTACKS`
  against the seed conversion.

``bug/<name>`` and ``attack/<name>`` run as :class:`snpsim.api.Scenario` objects
(:func:`variant_scenario`); the others through :func:`prepare_scenario`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from snpsim.guest.kernel import PROFILES as KERNEL_PROFILES
from snpsim.guest.kernel import GuestKernel
from snpsim.guest.seed import SeedOutcome, seed_workload
from snpsim.guest.variants import KERNEL_VARIANTS
from snpsim.hw.ports import GuestPort
from snpsim.kvm.profiles import DEFAULT_PROFILE as DEFAULT_KVM_PROFILE
from snpsim.kvm.profiles import KvmProfile
from snpsim.spec.e820 import E820_TYPE_RAM
from snpsim.spec.msr_index import MSR_IA32_APICBASE
from snpsim.spec.units import PMD_SIZE
from snpsim.system import RunObserver, RunOutcome, SnpSystem, firmware_e820
from snpsim.vmm.machine import pc_memory_layout
from snpsim.vmm.profiles import DEFAULT_QEMU_PROFILE

from .boot import BootPlan, BootResult, boot_workload
from .bugs import SEED_PAYLOAD, TRIGGERS, report_order, seed_round_trip
from .dma import DMA_SIZES, DmaResult, dma_workload
from .dmesg import DmesgConfig, MemEncryptMode, guest_e820_for_log

__all__ = ["run_scenario", "ScenarioRun", "scenario_list", "host_bugs", "host_attacks",
           "vm_memory_for_log", "ScenarioParams", "Prepared", "HostBug", "SCENARIOS",
           "describe_scenarios", "prepare_scenario", "BUG_VARIANTS", "ScenarioError",
           "variant_scenario"]


class ScenarioError(ValueError):
    """Parameters a scenario cannot run with (one line, for the CLI)."""


@dataclass(frozen=True)
class ScenarioParams:
    """What a scenario is run with.  ``memory`` bytes and ``vcpus``; ``kernel`` profile
    name; ``page_size`` ("4K" or "2M", ``accept``); ``cycles`` (``dma``); ``dmesg``: a
    parsed kernel log (``boot``); ``variant`` ("buggy" or None, ``bug/<name>``)."""

    memory: int
    vcpus: int
    kernel: str = "6.17"
    page_size: str = "2M"
    cycles: int = 4
    dmesg: DmesgConfig | None = None
    variant: str | None = None


@dataclass
class Prepared:
    """A scenario ready to run: ``make_workload(reserved)`` gives the guest workload (or
    None: the boot alone), ``guest_options`` extra GuestConfig fields, ``kvm``/``qemu``
    profiles (None: the defaults), ``result`` the object the workload fills in,
    ``config`` what to report about the set-up, ``mode`` the guest's memory-encryption
    mode when the scenario fixes it ("sev", "sev-es", "snp"; None: the caller's),
    ``inspect(system, outcome)`` what to add to ``result`` after the run (with it,
    :func:`run_scenario` also adds the ``symptom``; the built-in scenarios that need
    one, ``bug/<name>``, are api Scenarios now)."""

    make_workload: Callable[[tuple[tuple[int, int], ...]], Callable[[GuestKernel, GuestPort], Any] | None]
    result: Any
    guest_options: dict[str, Any] = field(default_factory=dict)
    kvm: Any = None
    qemu: Any = None
    config: dict[str, Any] = field(default_factory=dict)
    mode: str | None = None
    inspect: Callable[[Any, Any], None] | None = None

    def result_dict(self) -> dict[str, Any]:
        """The result as plain data (for ``--json``)."""
        return _plain(self.result)


def _plain(r: Any) -> dict[str, Any]:
    """A scenario's result object (a dataclass or a dict) as plain data: no ``phase``,
    no bytes, tuples as lists."""
    if is_dataclass(r) and not isinstance(r, type):
        d = asdict(r)
    elif isinstance(r, dict):
        d = dict(r)
    else:
        d = {}
    d.pop("phase", None)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()
            if not isinstance(v, bytes)}


def vm_memory_for_log(config: DmesgConfig) -> int | None:
    """The RAM size of the VM that printed ``config``'s log, bytes, as QEMU's q35 split
    it (:func:`snpsim.vmm.machine.pc_memory_layout`): the end of the highest e820
    "usable" range below 4 GiB (ram-below-4g) plus, when the log has usable RAM above
    4 GiB, the span from the lowest such range's start (4 GiB, or 1 TiB when QEMU moved
    ram-above-4g above the AMD HT hole) to the highest end (ram-above-4g), each rounded up
    to 2 MiB; else the log's memory size rounded up to 2 MiB; None when the log gives
    neither."""
    usable = [(e.start, e.end + 1) for e in config.e820 if e.type == "usable"]
    if usable and config.memory_source == "e820":
        low = [end for _s, end in usable if end <= 1 << 32]
        high = [(s, end) for s, end in usable if end > 1 << 32]
        top = -(-max(low, default=0) // PMD_SIZE) * PMD_SIZE
        if high:
            base = max(min(s for s, _e in high), 1 << 32)
            top += -(-(max(e for _s, e in high) - base) // PMD_SIZE) * PMD_SIZE
        return top or None
    if config.memory_bytes:
        return -(-config.memory_bytes // PMD_SIZE) * PMD_SIZE
    return None


@dataclass(frozen=True)
class HostBug:
    """A host-side ``bug/<name>`` or an ``attack/<name>``, for listings: ``description``
    (one line) and the variant's knob-only ``kvm``/``qemu`` profiles (its hooks are in
    :class:`snpsim.adversary.Variant`)."""

    description: str
    kvm: Any
    qemu: Any


def _bug_variants() -> dict[str, tuple[str, str, str]]:
    """Guest ``bug/<name>`` -> (side, registry key, one-line description)."""
    out: dict[str, tuple[str, str, str]] = {}
    for key in KERNEL_VARIANTS:
        if key.endswith("-buggy"):
            name = key[: -len("-buggy")]
            trig = TRIGGERS.get(name)
            doc = trig.about if trig is not None else "guest kernel variant " + key
            out[name] = ("guest", key, doc)
    return out


#: Guest ``bug/<name>`` scenarios: name -> (side, registry key, description).
BUG_VARIANTS: dict[str, tuple[str, str, str]] = _bug_variants()

#: The scenario names and their one-line descriptions (``bug/<name>`` expanded).
SCENARIOS: dict[str, str] = {
    "seed": "one 4 KiB page: set_memory_decrypted, write, set_memory_encrypted",
    "accept": "accept all guest memory at boot (accept_memory=eager), --page-size 4K or 2M PSC entries",
    "dma": "cycles of dma_alloc_coherent/dma_free_coherent of mixed sizes (--cycles)",
    "boot": "a Linux SNP boot's page-state work with real sizes: GHCBs, .bss..decrypted, "
            "per-CPU data, swiotlb, DMA pools, virtio rings, lazy acceptance (--from-dmesg FILE)",
    **{f"bug/{name}": f"{desc} (--variant buggy for the historical behaviour)"
       for name, (_side, _key, desc) in BUG_VARIANTS.items()},
}


def _bug_line(name: str, fallback: str) -> str:
    trig = TRIGGERS.get(name)
    return f"{trig.about if trig is not None else fallback} (--variant buggy for the historical behaviour)"


def describe_scenarios(host_bugs: dict[str, HostBug] | None = None,
                       attacks: dict[str, HostBug] | None = None) -> list[tuple[str, str]]:
    """(name, one line) for every scenario, the host ``bug/<name>`` and the
    ``attack/<name>`` ones included."""
    rows = [(k, v) for k, v in SCENARIOS.items() if not k.startswith("bug/")]
    bugs = {k[4:]: v for k, v in SCENARIOS.items() if k.startswith("bug/")}
    for name, bug in (host_bugs or {}).items():
        bugs[name] = _bug_line(name, bug.description)
    rows += [(f"bug/{name}", bugs[name]) for name in sorted(bugs, key=report_order)]
    for name, attack in (attacks or {}).items():
        rows.append((f"attack/{name}", attack.description))
    return rows


def _seed(params: ScenarioParams) -> Prepared:
    out = SeedOutcome("set_memory_encrypted", 1)
    return Prepared(lambda reserved: seed_workload("set_memory_encrypted", 1, out), out,
                    config={"pages": 1})


def _accept(params: ScenarioParams) -> Prepared:
    if params.page_size not in ("4K", "2M"):
        raise ScenarioError(f"--page-size must be 4K or 2M, got {params.page_size!r}")
    opts: dict[str, Any] = {"eager_accept": True}
    if params.page_size == "4K":
        base = KERNEL_PROFILES[params.kernel]
        opts["profile"] = base.derive(f"{base.name}+4K-psc", knobs={"psc_2m_entries": False})
    result = {"accepted_bytes": params.memory, "page_size": params.page_size}
    return Prepared(lambda reserved: None, result, opts, config={"page_size": params.page_size})


def _dma(params: ScenarioParams) -> Prepared:
    if params.cycles < 1:
        raise ScenarioError(f"--cycles must be >= 1, got {params.cycles}")
    res = DmaResult()
    return Prepared(lambda reserved: dma_workload(params.cycles, DMA_SIZES, res, reserved), res,
                    config={"cycles": params.cycles, "sizes": list(DMA_SIZES)})


#: The log's memory-encryption mode -> ``SnpSystem(mode=...)``.
_LOG_MODES = {MemEncryptMode.SEV: "sev", MemEncryptMode.SEV_ES: "sev-es",
              MemEncryptMode.SNP: "snp"}


def _boot(params: ScenarioParams) -> Prepared:
    d = params.dmesg
    version = "6.16"
    swiotlb_param = None
    config: dict[str, Any] = {}
    guest_options: dict[str, Any] = {}
    mode = None
    if d is not None:
        # The guest runs in the mode the log reports (SNP when it names none).
        mode = _LOG_MODES[d.mode] if d.mode is not None else None
        version = d.kernel_version or version
        swiotlb_param = d.swiotlb_param
        config = {"from_dmesg": True, "log_kernel": d.kernel_version,
                  "log_mode": d.mode.value if d.mode else None,
                  "memory_source": d.memory_source,
                  "log_swiotlb_mapped_mb": d.swiotlb.mapped_mb,
                  "log_swiotlb_mapped": ([d.swiotlb.mapped_start, d.swiotlb.mapped_end]
                                         if d.swiotlb.mapped_start is not None else None),
                  "hotplug_bytes": d.hotplug_bytes,
                  "memory_after_hotplug": d.memory_after_hotplug_bytes}
        guest_options["e820"] = _log_e820(d, params.memory)
    res = BootResult()
    # The sizing uses memblock_phys_mem_size() and the possible CPUs the log gives.
    plan_memory = d.memory_bytes if d is not None and d.memory_bytes else params.memory
    plan_cpus = d.nr_cpus if d is not None and d.nr_cpus else params.vcpus
    plan = BootPlan(plan_memory, plan_cpus, kernel_version=version,
                    swiotlb_param=swiotlb_param)
    config.update(memblock_phys_mem_size=plan_memory, possible_cpus=plan_cpus)
    config.update(kernel_version_for_sizing=version)
    # RAM the log shows memblock holding before swiotlb (initrd, NODE_DATA, crash kernel)
    # stays out of the boot's allocations, as the log's non-RAM ranges do (guest e820).
    held = tuple((a, b - a) for a, b, _what in d.memblock_reserved) if d is not None else ()
    return Prepared(lambda reserved: boot_workload(plan, res, reserved + held), res,
                    guest_options, config=config, mode=mode)


#: ``CONFIG_PHYSICAL_START`` (16 MiB): where the model loads the kernel (guest/boot.py).
_KERNEL_LOAD = 16 << 20


def _log_e820(d: DmesgConfig, memory: int) -> tuple[tuple[int, int, int], ...]:
    """The guest's e820 map for a log's boot on a VM of ``memory`` bytes
    (:func:`snpsim.scenarios.dmesg.guest_e820_for_log` over the q35 firmware map), so
    that the model's memblock allocates only from what the log calls RAM.  Raises
    :class:`ScenarioError` when that leaves no RAM at the 2 MiB the model loads the
    kernel at (16 MiB, ``CONFIG_PHYSICAL_START``): the model does not relocate it."""
    e820 = guest_e820_for_log(d, firmware_e820(pc_memory_layout(memory)))
    if not any(a <= _KERNEL_LOAD and _KERNEL_LOAD + PMD_SIZE <= a + n
               for a, n, t in e820 if t == E820_TYPE_RAM):
        raise ScenarioError("the log's e820 map has no RAM at 16M-18M, where the model "
                            "loads the kernel (CONFIG_PHYSICAL_START; no relocation)")
    return e820


def _check_params(params: ScenarioParams) -> None:
    if params.kernel not in KERNEL_PROFILES:
        raise ScenarioError(f"unknown --kernel {params.kernel!r}: choose one of "
                            f"{', '.join(KERNEL_PROFILES)}")
    if params.memory <= 0 or params.memory % PMD_SIZE:
        raise ScenarioError("--memory must be a positive multiple of 2M")
    if params.vcpus < 1:
        raise ScenarioError(f"--vcpus must be >= 1, got {params.vcpus}")


def prepare_scenario(name: str, params: ScenarioParams,
                     host_bugs: dict[str, HostBug] | None = None,
                     attacks: dict[str, HostBug] | None = None) -> Prepared:
    """The :class:`Prepared` scenario ``name`` for ``params`` (``seed``, ``accept``,
    ``dma``, ``boot``).  Raises :class:`ScenarioError` for an unknown name, for a
    ``bug/<name>`` or ``attack/<name>`` one (those are :class:`snpsim.api.Scenario`
    objects: :func:`variant_scenario`) or for parameters it cannot use."""
    _check_params(params)
    if params.variant is not None and not name.startswith("bug/"):
        raise ScenarioError("--variant applies to bug/<name> scenarios only")
    if name == "seed":
        return _seed(params)
    if name == "accept":
        return _accept(params)
    if name == "dma":
        return _dma(params)
    if name == "boot":
        return _boot(params)
    if name.startswith(("bug/", "attack/")):
        raise ScenarioError(f"{name} runs as an api.Scenario: see variant_scenario")
    raise ScenarioError(f"unknown scenario {name!r}: see 'snpsim scenarios'")


def variant_scenario(name: str, params: ScenarioParams, *, kvm: Any = None, seed: int = 0,
                     mode: str = "snp", **guest_options: Any
                     ) -> tuple[Any, dict[str, Any], Callable[[Any], None] | None, dict[str, Any]]:
    """The ``bug/<name>`` or ``attack/<name>`` scenario as a :class:`snpsim.api.Scenario`
    for ``params`` (memory, vCPUs, kernel, ``variant``), with ``kvm`` (the KVM profile of
    a fixed run), ``seed``, ``mode`` and extra ``GuestConfig`` fields.  Returns
    ``(scenario, result, finish, config)``: ``result`` the dict the guest work fills in;
    ``finish(res)`` (None for an attack) adds to it, from the run's
    :class:`snpsim.api.Result`, the host-side findings and the symptom of a
    ``bug/<name>`` run; ``config`` what to report about the set-up.  ``bug/<name>``: the report's trigger
    (:data:`snpsim.scenarios.bugs.TRIGGERS`) as vCPU 0's guest work, with the variant in
    force when ``params.variant`` is "buggy" (:meth:`snpsim.adversary.Variant.apply`
    for a host variant, the ``GuestConfig.variant`` for a guest one); ``attack/<name>``:
    the seed conversion under the attack, a PAUSE (the exit the RMP attacks strike at,
    after the guest validated the page), a read back of the page and an RDMSR of
    MSR_IA32_APICBASE (a #VC answered through the GHCB); the run's outcome
    says which check stopped it.  Raises :class:`ScenarioError` for an unknown name or
    parameters it cannot use."""
    from snpsim.adversary import ATTACKS, VARIANTS
    from snpsim.api import Scenario

    _check_params(params)
    opts = dict(guest_options)
    if name.startswith("attack/") and name[7:] in ATTACKS:
        if params.variant is not None:
            raise ScenarioError("--variant applies to bug/<name> scenarios only")
        v = ATTACKS[name[7:]]
        sc = Scenario(name, memory=params.memory, vcpus=params.vcpus, kernel=params.kernel,
                      seed=seed, mode=mode, description=v.description, **opts)
        v.apply(sc)
        result: dict[str, Any] = {"attack": v.name}

        @sc.guest(vcpu=0)
        def attack_seed(g: Any) -> None:
            va, _gpa, ret = seed_round_trip(g)
            result["seed_ret"] = ret
            if ret == 0:
                g.call("cpu_relax")
                result["read_back"] = g.read(va, len(SEED_PAYLOAD)) == SEED_PAYLOAD
                # an emulated instruction: RDMSR of an intercepted MSR, #VC 0x7c -> GHCB
                g.call("native_read_msr", MSR_IA32_APICBASE)
                result["msr_read"] = True

        config = {"kvm": v.kvm.name, "qemu": v.qemu.name, "attack": v.name,
                  "description": v.description}
        return sc, result, None, config
    bug = name[4:] if name.startswith("bug/") else None
    if bug is None or (bug not in VARIANTS and bug not in BUG_VARIANTS):
        raise ScenarioError(f"unknown scenario {name!r}: see 'snpsim scenarios'")
    if params.variant not in (None, "buggy", "fixed"):
        raise ScenarioError(f"--variant must be buggy or fixed, got {params.variant!r}")
    buggy = params.variant == "buggy"
    host = VARIANTS.get(bug)
    if host is not None:
        side, key, desc = "host", bug, f"{host.component}: {host.description}"
    else:
        side, key, desc = BUG_VARIANTS[bug]
        if buggy:
            opts["variant"] = key
    trig = TRIGGERS.get(bug)
    if trig is not None:
        desc = trig.about
    sc = Scenario(name, memory=params.memory, vcpus=params.vcpus, kernel=params.kernel,
                  kvm=None if buggy and host is not None else kvm, seed=seed, mode=mode,
                  description=desc, **opts)
    config: dict[str, Any] = {}
    if buggy and host is not None:
        host.apply(sc)
        config.update(kvm=host.kvm.name, qemu=host.qemu.name)
    result = {"variant": key if buggy else "fixed (default)", "side": side}
    make = trig.make if trig is not None else _seed_and_accept
    sc.guest(make(result), vcpu=0)

    def finish(res: Any) -> None:
        if trig is not None and trig.inspect is not None and res.host is not None:
            trig.inspect(res.host, res.outcome, result)
        result["symptom"] = _symptom(res.outcome)

    config.update(bug=bug, variant="buggy" if buggy else "fixed", description=desc)
    return sc, result, finish, config


def _seed_and_accept(result: dict[str, Any]) -> Callable[[Any], None]:
    """Guest work of a guest ``bug/<name>`` without a trigger: the seed conversion, then
    one 2 MiB unit that is still unaccepted (the highest) accepted."""
    def work(g: Any) -> None:
        _va, _gpa, ret = seed_round_trip(g)
        result["seed_ret"] = ret
        unit = g.unaccepted_gpa()
        if unit is not None:
            g.accept_memory(unit, PMD_SIZE)
            result["accepted_gpa"] = unit
    return work


# -- running a built-in scenario (moved from snpsim.system) ---------------------------------


def host_bugs() -> dict[str, Any]:
    """The host-side ``bug/<name>`` scenarios: :data:`snpsim.adversary.VARIANTS` as
    :class:`snpsim.scenarios.catalog.HostBug` (name -> description and profiles)."""
    from snpsim.adversary import VARIANTS

    return {name: HostBug(f"{v.component}: {v.description}", v.kvm, v.qemu)
            for name, v in VARIANTS.items()}


def host_attacks() -> dict[str, Any]:
    """The ``attack/<name>`` scenarios: :data:`snpsim.adversary.ATTACKS` as
    :class:`snpsim.scenarios.catalog.HostBug` (description names the check that stops it)."""
    from snpsim.adversary import ATTACKS

    return {name: HostBug(v.description, v.kvm, v.qemu) for name, v in ATTACKS.items()}


def scenario_list() -> list[tuple[str, str]]:
    """Every scenario ``run_scenario`` knows, as (name, one-line description)."""
    return describe_scenarios(host_bugs(), host_attacks())


@dataclass
class ScenarioRun:
    """One scenario run (:func:`run_scenario`): its ``name``, the ``system`` it ran on,
    the ``outcome``, the scenario's ``result`` (plain data) and the ``config`` used."""

    name: str
    system: SnpSystem
    outcome: RunOutcome
    result: dict[str, Any]
    config: dict[str, Any]


def _symptom(outcome: RunOutcome) -> dict[str, Any]:
    """How a ``bug/<name>`` run ended, as plain data: the VMM's result and errors, the
    guest's termination (reason set, code, function), livelock, host oopses, the
    userspace exits seen (when observed) and the guest's last warnings."""
    term = outcome.termination
    out: dict[str, Any] = {
        "run": outcome.describe(), "vmm_result": outcome.vmm.result,
        "vmm_errors": list(outcome.vmm.errors),
        "termination": ({"reason_set": term[0], "reason_code": term[1], "function": term[2]}
                        if term is not None else None),
        "livelock": outcome.livelock, "host_oopses": list(outcome.host_oopses),
        "guest_warnings": outcome.warnings[-3:],
    }
    if outcome.stats is not None:
        out["userspace_exits"] = dict(outcome.stats.userspace_exits)
    return out


def run_scenario(name: str, *, memory: int = 4 << 30, vcpus: int = 4, kernel: str = "6.17",
                 kvm: str | KvmProfile = DEFAULT_KVM_PROFILE, seed: int = 0,
                 page_size: str = "2M", cycles: int = 4, dmesg: Any = None,
                 variant: str | None = None, observer: RunObserver | None = None,
                 mode: str = "snp", **guest_options: Any) -> ScenarioRun:
    """Build a VM and run scenario ``name`` (``snpsim scenarios`` lists them) on it.

    ``memory`` bytes (multiple of 2 MiB), ``vcpus``, ``kernel`` and ``kvm`` profiles,
    ``seed``; ``page_size`` (``accept``), ``cycles`` (``dma``), ``dmesg`` (a
    :class:`snpsim.scenarios.dmesg.DmesgConfig`, ``boot``), ``variant`` ("buggy",
    ``bug/<name>``); ``observer`` to count and picture the run; ``mode`` ("snp", "sev-es",
    "sev"; ``boot --from-dmesg`` uses the log's instead); ``guest_options`` extra
    :class:`GuestConfig` fields.  Raises ValueError (``ScenarioError``) for parameters
    the scenario cannot use.
    """
    params = ScenarioParams(memory, vcpus, kernel, page_size, cycles, dmesg, variant)
    if mode != "snp" and name.startswith(("bug/", "attack/")):
        raise ScenarioError(f"{name} is about SEV-SNP page-state handling (PSC, PVALIDATE, "
                            f"the RMP); it does not apply to --mode {mode}")
    if name.startswith(("bug/", "attack/")):
        return _run_variant_scenario(name, params, kvm, seed, observer, mode, guest_options)
    prep = prepare_scenario(name, params)
    options = {**prep.guest_options, **guest_options}
    system = SnpSystem(memory, vcpus, kernel=kernel,
                       kvm=prep.kvm if prep.kvm is not None else kvm,
                       qemu=prep.qemu if prep.qemu is not None else DEFAULT_QEMU_PROFILE,
                       seed=seed, mode=prep.mode or mode, **options)
    outcome = system.run(prep.make_workload(system.reserved_ranges), observer)
    if prep.inspect is not None:
        prep.inspect(system, outcome)
        prep.result["symptom"] = _symptom(outcome)
    config = {"scenario": name, "mode": system.mode, "memory": memory, "vcpus": vcpus,
              "kernel": kernel,
              "kvm": system.kvm_profile.name, "qemu": system.qemu_profile.name, "seed": seed,
              **prep.config}
    return ScenarioRun(name, system, outcome, prep.result_dict(), config)


def _run_variant_scenario(name: str, params: ScenarioParams, kvm: Any, seed: int,
                          observer: RunObserver | None, mode: str,
                          guest_options: dict[str, Any]) -> ScenarioRun:
    """``bug/<name>`` and ``attack/<name>`` through the public API: build the
    :class:`snpsim.api.Scenario` (:func:`variant_scenario`), run it, add the findings."""
    from snpsim.api import ScenarioError as ApiScenarioError

    try:
        sc, result, finish, extra = variant_scenario(name, params, kvm=kvm, seed=seed,
                                                     mode=mode, **guest_options)
        res = sc.run(observer=observer)
    except ApiScenarioError as e:
        raise ScenarioError(str(e)) from None
    if finish is not None:
        finish(res)
    if res.errors:
        result["errors"] = list(res.errors)
    system = res.system
    config = {"scenario": name, "mode": system.mode, "memory": params.memory,
              "vcpus": params.vcpus, "kernel": params.kernel,
              "kvm": system.kvm_profile.name, "qemu": system.qemu_profile.name, "seed": seed,
              **extra}
    return ScenarioRun(name, system, res.outcome, _plain(result), config)
