# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The bug and attack variants (``snpsim.adversary``) and the bug triggers
(``snpsim.scenarios.bugs``) are written on the public scenario API (issue 12): they import
only ``snpsim.api``, ``snpsim.spec`` and ``snpsim.trace`` (and their own package), and
never touch a private name of the model -- no ``obj._x`` attribute, no ``getattr(obj,
"_x")``, no ``from ... import _x``.  Documented fields of model objects (``vcpu.run``,
``vcpu.sev_es.ghcb_sa``) and kernel names with two underscores (``__snp_handle_guest_req``)
are allowed.  The import-linter contract in pyproject.toml checks the imports too; this
test also reads the attribute accesses."""

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import snpsim.adversary

ALLOWED = ("snpsim.api", "snpsim.spec", "snpsim.trace")


def _private(name):
    return name.startswith("_") and not name.startswith("__")


def violations(source, filename="<source>"):
    """(line, what) of every private-name use and every model import in ``source``."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            out.append((node.lineno, f"attribute .{node.attr}"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and _private(node.args[1].value)):
            out.append((node.lineno, f"{node.func.id}(..., {node.args[1].value!r})"))
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 0 and mod.startswith("snpsim") and not mod.startswith(ALLOWED):
                out.append((node.lineno, f"from {mod} import"))
            for alias in node.names:
                if _private(alias.name):
                    out.append((node.lineno, f"import of {alias.name}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("snpsim") and not alias.name.startswith(ALLOWED):
                    out.append((node.lineno, f"import {alias.name}"))
    return out


def _modules():
    names = ["snpsim.scenarios.bugs", "snpsim.adversary"]
    names += [m.name for m in pkgutil.iter_modules(snpsim.adversary.__path__, "snpsim.adversary.")]
    return names


def test_the_checker_finds_what_it_looks_for():
    bad = ("from snpsim.kvm.svm_sev import snp_begin_psc\n"
           "import snpsim.guest.kernel\n"
           "from snpsim.api import _resolve\n"
           "x = vcpu.sev_es._psc_entry\n"
           "y = getattr(kvm, '_secret')\n")
    assert [line for line, _what in violations(bad)] == [1, 2, 3, 4, 5]
    good = ("from snpsim.api import function\n"
            "from snpsim.spec.psc import PscHdr\n"
            "from .attacks import ATTACK_HOOKS\n"
            "x = vcpu.sev_es.ghcb_sa.read(vcpu.kvm.host, 0, 8)\n"
            "f = function('__snp_handle_guest_req'); n = f.__name__\n")
    assert violations(good) == []


@pytest.mark.parametrize("modname", _modules())
def test_module_uses_the_public_api_only(modname):
    path = Path(importlib.import_module(modname).__file__)
    assert violations(path.read_text(), str(path)) == []
