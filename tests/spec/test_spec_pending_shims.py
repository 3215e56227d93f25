"""The deprecated ``spec_pending`` shims define nothing: each name they export is the
very object ``snpsim.spec`` defines (STYLE.md 2.3, one definition per constant)."""

import importlib
import pkgutil

import pytest

import snpsim.spec
from snpsim.guest import spec_pending as guest_pending
from snpsim.kvm import spec_pending as kvm_pending

#: Shim names that differ from the spec name: shim name -> (spec module, spec name).
RENAMED = {
    "IOIO_PORT_SHIFT": ("ioio", "SVM_IOIO_PORT_SHIFT"),
    "ACPI_SLP_TYP_SHIFT": ("acpi", "ACPI_BITPOSITION_SLEEP_TYPE"),
    "TLB_SINGLE_PAGE_FLUSH_CEILING": ("tlb", "tlb_single_page_flush_ceiling"),
}


def _spec_definitions(name: str) -> list[object]:
    """Every spec module attribute ``name`` that the module lists in ``__all__``."""
    found = []
    for info in pkgutil.iter_modules(snpsim.spec.__path__):
        mod = importlib.import_module(f"snpsim.spec.{info.name}")
        if name in getattr(mod, "__all__", ()):
            found.append(getattr(mod, name))
    return found


@pytest.mark.parametrize(
    ("shim", "name"),
    [(guest_pending, n) for n in guest_pending.__all__]
    + [(kvm_pending, n) for n in kvm_pending.__all__],
    ids=lambda v: v if isinstance(v, str) else v.__name__.rsplit(".", 2)[-2],
)
def test_shim_name_is_the_spec_object(shim, name):
    value = getattr(shim, name)
    if name in RENAMED:
        module, spec_name = RENAMED[name]
        expected = getattr(importlib.import_module(f"snpsim.spec.{module}"), spec_name)
        assert value is expected
        return
    defs = _spec_definitions(name)
    assert len(defs) == 1, f"{name} is exported by {len(defs)} spec modules, want exactly 1"
    assert value is defs[0]


def test_shims_export_only_their_all():
    for shim in (guest_pending, kvm_pending):
        public = {n for n in vars(shim) if not n.startswith("_") or n in shim.__all__}
        public -= {"annotations"}
        assert public == set(shim.__all__), shim.__name__
