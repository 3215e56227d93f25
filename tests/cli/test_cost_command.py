# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""``snpsim cost``: a sweep of modelled time against size (docs/costs.md)."""

import json

import pytest
from click.testing import CliRunner

from snpsim.cli import main
from snpsim.costs import default_costs


def cost(*args):
    return CliRunner().invoke(main, ["cost", *map(str, args)], prog_name="snpsim")


@pytest.mark.parametrize("args", [
    ("convert",),
    ("decrypt", "--sizes", "0"),
    ("decrypt", "--sizes", "x"),
    ("accept", "--sizes", "33M"),
    ("accept", "--page-size", "1G"),
    ("decrypt", "--kernel", "5.0"),
    ("decrypt", "--kvm", "v1"),
    ("decrypt", "--kvm", "v6.17,v1"),
])
def test_bad_arguments_are_one_line_and_status_2(args):
    r = cost(*args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("snpsim cost"), r.output


@pytest.mark.parametrize("args", [
    ("decrypt", "--sizes", "1", "--plot", "x.txt"),     # not a PNG name
    ("accept", "--sizes", "64M", "--plot", "x"),
    ("decrypt", "--sizes", ""),                         # an empty list is no default sweep
    ("accept", "--sizes", " "),
    ("decrypt", "--sizes", "1e9"),
    ("accept", "--sizes", "1e9"),
    ("decrypt", "--sizes", "1,,2"),
])
def test_bad_plot_name_and_sizes_are_refused_before_any_run(monkeypatch, tmp_path, args):
    import snpsim.cli.cost as cost_cli

    def no_run(*a, **kw):
        raise AssertionError("the sweep ran")

    monkeypatch.setattr(cost_cli, "sweep", no_run)
    monkeypatch.chdir(tmp_path)
    r = cost(*args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("snpsim cost: "), r.output
    assert list(tmp_path.iterdir()) == []


def test_a_bad_accept_size_gets_the_memory_option_message():
    # accept sizes are read by the parser --memory uses (snpsim.system.parse_size), so the
    # refusal is that parser's own one-line reason, which says what a size looks like.
    from snpsim.system import parse_size

    with pytest.raises(ValueError) as exc:
        parse_size("1e9")
    r = cost("accept", "--sizes", "1e9")
    assert r.exit_code == 2
    assert r.output.strip() == f"snpsim cost: --sizes: {exc.value}"


def test_decrypt_sweep_grows_with_the_pages_and_follows_the_table(tmp_path):
    r = cost("decrypt", "--sizes", "1,64", "--kernel", "6.17", "--json", "--plot", tmp_path / "p.png")
    assert r.exit_code == 0, r.output
    pts = json.loads(r.stdout)["points"]
    assert [p["size"] for p in pts] == [1, 64] and all(p["ok"] for p in pts)
    one, many = pts
    assert 0 < one["modelled_s"] < many["modelled_s"]
    assert one["low_s"] <= one["modelled_s"] <= one["high_s"]
    assert (tmp_path / "p.png").stat().st_size > 0
    # Every page made shared costs at least its RMPUPDATE (rmp_make_shared).
    rmp = default_costs()
    assert many["modelled_s"] >= 64 * rmp.seconds(rmp.mcycles("rmpupdate")[0])
    # A slower RMPUPDATE makes the same sweep slower by 64 RMPUPDATEs' worth, or more.
    e = rmp.entries["rmpupdate"]
    table = tmp_path / "c.toml"
    table.write_text(f'[costs.rmpupdate]\nvalue = {2 * e.value}\nunit = "{e.unit}"\n')
    r2 = cost("decrypt", "--sizes", "64", "--kernel", "6.17", "--json", "--costs", table)
    slow = json.loads(r2.stdout)["points"][0]
    assert slow["modelled_s"] - many["modelled_s"] >= 64 * rmp.seconds(rmp.mcycles("rmpupdate")[0]) * 0.999


def test_kvm_profiles_are_a_sweep_axis():
    """``--kvm LIST``: one point per (KVM profile, kernel, size), in that order; the two
    profiles differ only in checks (kvm/profiles.py), so a conversion costs the same."""
    r = cost("decrypt", "--sizes", "1,8", "--kernel", "6.17", "--kvm", "v6.17,v7.0.12",
             "--json")
    assert r.exit_code == 0, r.output
    pts = json.loads(r.stdout)["points"]
    assert [(p["kvm"], p["series"], p["size"]) for p in pts] == [
        ("v6.17", "6.17", 1), ("v6.17", "6.17", 8),
        ("v7.0.12", "6.17", 1), ("v7.0.12", "6.17", 8)]
    assert [p["modelled_s"] for p in pts[:2]] == [p["modelled_s"] for p in pts[2:]]
