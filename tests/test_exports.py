"""Lazy package exports (netdyn.exports): every public name of netdyn.graphs and netdyn.modularity resolves to
what its module defines, even once every submodule is imported (a submodule named like an export would
shadow it), and an unknown name is an AttributeError naming the package."""

from __future__ import annotations

import importlib
import types

import pytest


@pytest.mark.parametrize("package", ["netdyn.graphs", "netdyn.modularity"])
def test_every_export_resolves_to_its_definition(package):
    pkg = importlib.import_module(package)
    for module in pkg._EXPORTS:
        importlib.import_module(f"{package}.{module}")
    owner = {name: module for module, names in pkg._EXPORTS.items() for name in names}
    assert sorted(owner) == pkg.__all__
    for name in pkg.__all__:
        value = getattr(pkg, name)
        assert not isinstance(value, types.ModuleType), name
        assert value is getattr(importlib.import_module(f"{package}.{owner[name]}"), name)
    assert set(pkg.__all__) <= set(dir(pkg))
    with pytest.raises(AttributeError, match=package):
        pkg.no_such_name
