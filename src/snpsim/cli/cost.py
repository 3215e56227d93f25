# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim cost WHAT``: sweep a conversion over sizes and profiles and print (and plot)
its modelled time against size (issue 16 item 4, first cut; docs/costs.md).

WHAT is ``accept`` (``snpsim run accept`` with one vCPU: the whole run's modelled time,
by guest memory size and PSC page size; 2M runs back guest memory with 2 MiB
guest_memfd folios so that 2 MiB PVALIDATE succeeds) or ``decrypt``
(``set_memory_decrypted`` of N contiguous pages: the call's own modelled time, by N and
guest kernel profile -- e.g. 6.4's 253-entry 4K batches against 6.17's).  Exit status 0,
or 2 with one line for bad arguments (before any run), 1 when a run failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

__all__ = ["command", "sweep"]

#: The largest sweep point (pages for decrypt, bytes for accept) the command takes.
MAX_DECRYPT_PAGES = 1 << 18
MAX_ACCEPT_BYTES = 1 << 36


def _fail(msg: str, status: int = 2) -> NoReturn:
    click.echo(f"snpsim cost: {msg}", err=True)
    sys.exit(status)


def _parse_count(text: str) -> int:
    """A decrypt sweep point: a whole number of pages, decimal or ``0x`` hex.  ValueError
    with what a count looks like for anything else (``1e9``, ``64M``, an empty item)."""
    try:
        return int(text.strip(), 0)
    except ValueError:
        raise ValueError(f"bad page count {text!r}: use a whole number of 4 KiB pages, "
                         "such as 512 or 0x200") from None


def sweep(what: str, sizes: list[int], series: list[str], *, kvm: str | list[str],
          table: Any) -> list[dict[str, Any]]:
    """The sweep's points, one dict per (KVM profile, series, size): ``kvm`` (the KVM
    profile name; ``kvm`` may be one name or a list to compare), ``series`` (page size
    for accept, kernel profile for decrypt), ``size`` (bytes of guest memory for accept, pages for
    decrypt), ``modelled_s`` with ``low_s``/``high_s`` (the whole run for accept; for
    decrypt the call alone, whose range is not separated: the run's range scaled),
    ``wall_s``, ``ok``."""
    import time

    from snpsim.kvm.profiles import KVM_PROFILES
    from snpsim.scenarios.catalog import run_scenario
    from snpsim.system import SnpSystem

    kvms = [kvm] if isinstance(kvm, str) else list(kvm)
    out = []
    for kvm_name, s, size in ((k, s, z) for k in kvms for s in series for z in sizes):
        t0 = time.perf_counter()
        if what == "accept":
            profile = KVM_PROFILES[kvm_name]
            if s == "2M":
                profile = profile.derive(f"{kvm_name}+gmem-2M", knobs={"gmem_max_order": 9})
            run = run_scenario("accept", memory=size, vcpus=1, page_size=s, kvm=profile)
            m = run.outcome.modelled_time or {}
            point = {"modelled_s": m.get("elapsed_s", 0.0), "low_s": m.get("low_s", 0.0),
                     "high_s": m.get("high_s", 0.0), "ok": run.outcome.completed}
        else:
            memory = max(128 << 20, ((size * 4096 * 2 + (64 << 20)) + (2 << 20) - 1) & ~((2 << 20) - 1))
            system = SnpSystem(memory=memory, vcpus=1, kernel=s, kvm=kvm_name, costs=table,
                               pool_pages=size + 2 * 512 + 64)
            seed, run, call_s = system.time_conversion("set_memory_decrypted", size)
            m = run.modelled_time or {}
            el = m.get("elapsed_s", 0.0) or 1.0
            point = {"modelled_s": call_s, "low_s": call_s * m.get("low_s", 0.0) / el,
                     "high_s": call_s * m.get("high_s", 0.0) / el,
                     "ok": run.completed and seed.ret == 0}
        out.append({"kvm": kvm_name, "series": s, "size": size, **point,
                    "wall_s": round(time.perf_counter() - t0, 3)})
    return out


def _plot(points: list[dict[str, Any]], what: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from snpsim.trace.atomic import atomic_write

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    try:
        several = len({p["kvm"] for p in points}) > 1
        for key in dict.fromkeys((p["kvm"], p["series"]) for p in points):
            ps = [p for p in points if (p["kvm"], p["series"]) == key]
            s = f"{key[1]}, KVM {key[0]}" if several else key[1]
            x = [p["size"] / (1 << 30) if what == "accept" else p["size"] for p in ps]
            y = [p["modelled_s"] for p in ps]
            lo = [p["modelled_s"] - p["low_s"] for p in ps]
            hi = [p["high_s"] - p["modelled_s"] for p in ps]
            ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=s)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("guest memory accepted (GiB)" if what == "accept"
                      else "pages made shared (4 KiB)")
        ax.set_ylabel("modelled seconds (bars: the cost table's range)")
        ax.set_title("snpsim cost " + what + (": whole run" if what == "accept" else ": the call alone"))
        ax.legend(title="PSC page size" if what == "accept" else "guest kernel")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)


@click.command(name="cost")
@click.argument("what", metavar="accept|decrypt")
@click.option("--sizes", default=None, metavar="LIST",
              help="accept: guest memory sizes (default 64M,128M,256M); decrypt: page counts "
                   "(default 1,64,512,4096).")
@click.option("--page-size", "page_sizes", default="4K,2M", show_default=True, metavar="4K,2M",
              help="accept: PSC page sizes to compare.")
@click.option("--kernel", "kernels", default="6.17,6.4", show_default=True, metavar="LIST",
              help="decrypt: guest kernel profiles to compare.")
@click.option("--kvm", "kvms", default="v7.0.12", show_default=True, metavar="LIST",
              help="KVM profiles to compare (comma-separated, e.g. v6.17,v7.0.12).")
@click.option("--costs", "costs_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A cost table merged onto the default (docs/costs.md).")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG of modelled time against size.")
@click.option("--json", "as_json", is_flag=True, help="Print the points as JSON.")
def command(what: str, sizes: str | None, page_sizes: str, kernels: str, kvms: str,
            costs_file: Path | None, plot: Path | None, as_json: bool) -> None:
    """Sweep WHAT over sizes and profiles and print its modelled time against size:
    'accept' (memory acceptance, by guest size and PSC page size) or 'decrypt'
    (set_memory_decrypted of N pages, by N and guest kernel); either also by KVM
    profile (--kvm LIST).  Exit status 0; 1 when a point's run did not complete; 2 bad
    arguments (checked before any run); 3 the plot could not be written."""
    from snpsim.costs import CostTableError, load_costs, use_costs
    from snpsim.guest.kernel import PROFILES as KERNEL_PROFILES
    from snpsim.kvm.profiles import KVM_PROFILES
    from snpsim.system import format_size, parse_size
    from snpsim.trace.atomic import prepare_output

    if what not in ("accept", "decrypt"):
        _fail(f"WHAT must be accept or decrypt, got {what!r}")
    kvm_list = [k.strip() for k in kvms.split(",")]
    for kvm in kvm_list:
        if kvm not in KVM_PROFILES:
            _fail(f"unknown --kvm {kvm!r}: choose one of {', '.join(KVM_PROFILES)}")
    try:
        table = load_costs(costs_file)
    except CostTableError as exc:
        _fail(f"--costs: {exc}")
    values: list[int] = []
    if sizes is None:
        sizes = "64M,128M,256M" if what == "accept" else "1,64,512,4096"
    if not sizes.strip():
        _fail("--sizes: an empty list: give one or more sizes separated by commas")
    for text in sizes.split(","):
        try:
            v = parse_size(text) if what == "accept" else _parse_count(text)
        except ValueError as exc:
            _fail(f"--sizes: {exc}")
        if what == "accept" and not (32 << 20 <= v <= MAX_ACCEPT_BYTES and v % (2 << 20) == 0):
            _fail(f"--sizes: accept sizes must be multiples of 2M in 32M..64G, got {text}")
        if what == "decrypt" and not 1 <= v <= MAX_DECRYPT_PAGES:
            _fail(f"--sizes: decrypt page counts must be 1..{MAX_DECRYPT_PAGES}, got {text}")
        values.append(v)
    if what == "accept":
        series = page_sizes.split(",")
        bad = [s for s in series if s not in ("4K", "2M")]
    else:
        series = kernels.split(",")
        bad = [s for s in series if s not in KERNEL_PROFILES]
    if bad:
        _fail(f"unknown {'--page-size' if what == 'accept' else '--kernel'} {bad[0]!r}")
    if plot is not None:
        if plot.suffix.lower() != ".png":
            _fail(f"--plot {plot}: must end in .png (the plot is a PNG image)")
        problem = prepare_output(plot)
        if problem:
            _fail(f"--plot {plot}: {problem}")
    with use_costs(table):
        points = sweep(what, sorted(values), series, kvm=kvm_list, table=table)
    if plot is not None:
        try:
            _plot(points, what, plot)
        except OSError as exc:
            _fail(f"cannot write {plot}: {exc.strerror or exc}", 3)
    if as_json:
        click.echo(json.dumps({"what": what, "table": table.origin, "cpu_ghz": table.cpu_ghz,
                               "points": points}, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        from snpsim.report.summary import format_seconds

        t = Table(title=f"snpsim cost {what}: modelled time ({table.origin} table, "
                        f"{table.cpu_ghz} GHz)")
        for col in ("KVM", "page size" if what == "accept" else "kernel",
                    "guest memory" if what == "accept" else "pages",
                    "modelled", "range", "wall", "ok"):
            t.add_column(col, justify="right")
        for p in points:
            t.add_row(p["kvm"], p["series"], format_size(p["size"]) if what == "accept" else str(p["size"]),
                      format_seconds(p["modelled_s"]),
                      f"{format_seconds(p['low_s'])} .. {format_seconds(p['high_s'])}",
                      f"{p['wall_s']:.2f} s", "yes" if p["ok"] else "[red]no[/red]")
        Console().print(t)
        if plot is not None:
            click.echo(f"plot written to {plot}")
    sys.exit(0 if all(p["ok"] for p in points) else 1)
