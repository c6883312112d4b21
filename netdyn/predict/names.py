"""Feature names read back into their parts (source, layer, property, aggregator, epoch), so that figures
can group importances by graph property and by layer."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .tables import WIDTH_FEATURE

GLOBAL_SCOPE = "all"  # netdyn.graphs.signature's scope of the whole graph; every other scope is a layer
_EPOCH = r"@e(?P<epoch>[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?)"
NAME_PARTS = ["feature", "source", "scope", "layer", "property", "aggregator", "epoch", "delta"]


def parse_feature_name(name: str) -> dict:
    """Split a feature name into its parts so figures can group importances.

    Graph summaries (netdyn.graphs.temporal_summary): ``{scope}.{property}.{aggregator}@e{epoch}`` and
    ``d({...})@e{epoch}`` (a change; an ``@e`` inside the parentheses is ignored). The scope may itself
    contain dots (``features.3``); the whole-graph scope ``all`` has no layer. Built-in sets:
    ``curve.{metric}@e{epoch}``, ``w.{tensor}.{stat}``, ``early_acc``, ``run.width``. Unknown shapes
    return what could be read.
    """
    out = dict.fromkeys(NAME_PARTS) | {"feature": name, "epoch": np.nan, "delta": False}
    if name == "early_acc":
        return {**out, "source": "early_acc", "property": "test_acc"}
    if name == WIDTH_FEATURE:
        return {**out, "source": "run", "property": "width"}
    if name.startswith("w."):
        tensor, _, stat = name[2:].rpartition(".")
        layer, _, kind = tensor.rpartition(".")
        return {**out, "source": "weights", "scope": layer, "layer": layer, "property": kind, "aggregator": stat}
    m = re.match(rf"^curve\.(?P<metric>[^@]+){_EPOCH}$", name)
    if m:
        return {**out, "source": "curve", "property": m["metric"], "epoch": float(m["epoch"])}
    body, delta = name, False
    m = re.match(rf"^d\((?P<inner>.*)\){_EPOCH}$", name)
    if m:
        body, delta = re.sub(rf"{_EPOCH}$", "", m["inner"]) + f"@e{m['epoch']}", True
    m = re.match(rf"^(?P<body>.+){_EPOCH}$", body)
    if not m:
        return out
    parts = m["body"].split(".")
    out.update(source="graph", epoch=float(m["epoch"]), delta=delta)
    if len(parts) >= 3:
        scope = ".".join(parts[:-2])
        out.update(scope=scope, property=parts[-2], aggregator=parts[-1],
                   layer=None if scope == GLOBAL_SCOPE else scope)
    return out


def feature_name_table(names: Sequence[str]) -> pd.DataFrame:
    """:func:`parse_feature_name` of many names, as a table."""
    return pd.DataFrame([parse_feature_name(n) for n in names], columns=NAME_PARTS)
