"""Temporal summary: columns, NaN for runs that stopped early, the window and a fixed epoch grid."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from netdyn.graphs import temporal_summary


def synthetic_signatures():
    rows = []
    for run, epochs in (("a", [0, 0.5, 1, 2, 3]), ("b", [0, 0.5, 1])):  # b diverged after epoch 1
        for i, e in enumerate(epochs):
            rows.append({"run_id": run, "snapshot": i, "epoch": float(e), "x": 10 * e + (run == "b"), "y.z": -e})
    return pd.DataFrame(rows)


def test_temporal_summary_columns_and_nan():
    out = temporal_summary(synthetic_signatures(), window=2)
    assert list(out.index) == ["a", "b"] and out.index.name == "run_id"
    assert list(out.columns) == [
        "x@e0", "y.z@e0",
        "x@e0.5", "y.z@e0.5", "d(x)@e0.5", "d(y.z)@e0.5",
        "x@e1", "y.z@e1", "d(x)@e1", "d(y.z)@e1",
        "x@e2", "y.z@e2", "d(x)@e2", "d(y.z)@e2",
    ]
    assert out.loc["a", "x@e2"] == 20 and out.loc["a", "d(x)@e2"] == 10 and out.loc["a", "d(x)@e0.5"] == 5
    assert out.loc["b", "x@e1"] == 11 and out.loc["b", "d(y.z)@e1"] == -0.5
    assert np.isnan(out.loc["b", "x@e2"]) and np.isnan(out.loc["b", "d(x)@e2"])
    assert out.loc["a"].notna().all()


def test_temporal_summary_window_and_fixed_epochs():
    sigs = synthetic_signatures()
    assert [c for c in temporal_summary(sigs, window=0.75).columns if c.startswith("x")] == ["x@e0", "x@e0.5"]
    out = temporal_summary(sigs[sigs.run_id == "b"], window=3, epochs=[0, 1, 2, 3])
    assert [c for c in out.columns if "(x)" in c or c.startswith("x")] == \
        ["x@e0", "x@e1", "d(x)@e1", "x@e2", "d(x)@e2", "x@e3", "d(x)@e3"]
    assert out.loc["b", "d(x)@e1"] == 10 and out.loc["b", ["x@e2", "x@e3"]].isna().all()
    with pytest.raises(ValueError, match="run a"):
        temporal_summary(pd.concat([sigs, sigs.iloc[[1]]]), window=1)


def test_summary_imports_without_graph_tool_or_torch(child_env):
    """The prediction stage's env has neither graph-tool nor torch: ``from netdyn.graphs import
    temporal_summary`` and ``import netdyn.graphs.summary`` must not load them."""
    code = textwrap.dedent("""
        import sys
        sys.modules["graph_tool"] = None  # any import of graph_tool now raises ImportError
        sys.modules["torch"] = None
        import netdyn.graphs.summary
        from netdyn.graphs import META_COLUMNS, temporal_summary
        import pandas as pd
        sigs = pd.DataFrame({"run_id": ["a", "a"], "snapshot": [0, 1], "epoch": [0.0, 1.0], "x": [1.0, 3.0]})
        out = temporal_summary(sigs, window=1)
        assert out.loc["a", "d(x)@e1"] == 2.0, out
        assert META_COLUMNS == ("run_id", "snapshot", "epoch")
        try:
            from netdyn.graphs import node_properties
        except ImportError:
            print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
