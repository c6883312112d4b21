"""netdyn.graphs' lazy exports: every public name resolves to what its module defines, even once every
submodule is imported (a submodule named like an export would shadow it)."""

from __future__ import annotations

import importlib
import types

import netdyn.graphs as G


def test_every_export_resolves_to_its_definition():
    for module in G._EXPORTS:
        importlib.import_module(f"netdyn.graphs.{module}")
    for name in G.__all__:
        value = getattr(G, name)
        assert not isinstance(value, types.ModuleType), name
        assert value is getattr(importlib.import_module(f"netdyn.graphs.{G._MODULE_OF[name]}"), name)
    assert set(G.__all__) <= set(dir(G))
