"""Feature sets: the context builders read, the registry, and :func:`build_features`, which combines sets
with ``+`` (``graph+curve``).

A builder is ``builder(ctx, window) -> DataFrame`` with one row per run (``ctx.runs`` order) and numeric
columns whose names are unique across sets. The built-in sets are in :mod:`.feature_sets`; a later stage
plugs its features in by registering one builder (:func:`register_feature_set`) or an input table
(:func:`register_table_feature_set`); prediction knows nothing of how they were made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..rundir import epoch_key, in_window, read_curves, run_dir

CURVE_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")


@dataclass
class FeatureContext:
    """What feature builders read: the runs (indexed by run_id), their directory and input tables.

    Caches curves and built feature sets, so a window's ``graph+curve`` reuses its ``curve``.
    ``tables`` maps a table name to one DataFrame per window (``{E: df}``), indexed by run_id.
    """

    runs: pd.DataFrame
    runs_dir: Path | None = None
    tables: Mapping[str, Mapping[int, pd.DataFrame]] = field(default_factory=dict)
    n_jobs: int = 1
    _curves: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _built: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict, repr=False)

    def curves(self, run_id: str) -> pd.DataFrame:
        if run_id not in self._curves:
            if self.runs_dir is None:
                raise ValueError("curve-based feature sets need runs_dir (where results/runs/<run id> live)")
            c = read_curves(run_dir(self.runs_dir, run_id))
            missing = [k for k in ("snapshot", "epoch", *CURVE_METRICS) if k not in c.columns]
            if missing:
                raise ValueError(f"run {run_id}: curves.csv lacks column(s) {missing}")
            self._curves[run_id] = c.replace([np.inf, -np.inf], np.nan)
        return self._curves[run_id]

    def early_curves(self, run_id: str, window: float) -> pd.DataFrame:
        """Rows measured by epoch `window` (a diverged measurement included), in epoch order."""
        c = self.curves(run_id)
        return c[in_window(c["epoch"], window)].sort_values("epoch", kind="stable")

    def table(self, name: str, window: int) -> pd.DataFrame:
        """Input table `name` for `window`, numeric columns only, one row per run in runs order."""
        per_window = self.tables.get(name)
        if per_window is None:
            raise ValueError(f"feature set {name!r} needs the {name} summary table, which was not given")
        if window not in per_window:
            raise ValueError(f"{name} summary: no table for window E={window} (have windows {sorted(per_window)})")
        t = per_window[window]
        if t.index.has_duplicates:
            dup = sorted(set(t.index[t.index.duplicated()]))[:5]
            raise ValueError(f"{name} summary (E={window}): duplicate rows for run(s) {dup}")
        missing = [r for r in self.runs.index if r not in t.index]
        if missing:
            raise ValueError(f"{name} summary (E={window}) lacks {len(missing)} of {len(self.runs)} runs: "
                             f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
        num = t.select_dtypes(include=["number", "bool"])
        if num.shape[1] == 0:
            raise ValueError(f"{name} summary (E={window}) has no numeric feature columns "
                             f"(columns: {list(t.columns)[:8]})")
        return num.loc[self.runs.index].astype(float).replace([np.inf, -np.inf], np.nan)

    def schedule(self, window: float) -> list[float]:
        """Snapshot epochs <= window over all runs (the grid shares one schedule; a union is safe)."""
        ep = set()
        for r in self.runs.index:
            ep.update(epoch_key(self.early_curves(r, window)["epoch"]))
        return sorted(ep)


FeatureBuilder = Callable[[FeatureContext, int], pd.DataFrame]
FEATURE_BUILDERS: dict[str, FeatureBuilder] = {}


def register_feature_set(name: str) -> Callable[[FeatureBuilder], FeatureBuilder]:
    """Decorator: ``builder(ctx, window) -> DataFrame`` indexed like ``ctx.runs``, numeric columns whose
    names are unique across sets (prefix them)."""
    if "+" in name:
        raise ValueError(f"feature set name {name!r} must not contain '+' (it joins sets)")

    def deco(fn: FeatureBuilder) -> FeatureBuilder:
        FEATURE_BUILDERS[name] = fn
        return fn

    return deco


def register_table_feature_set(name: str) -> FeatureBuilder:
    """A feature set that is an input table as it is (graph summaries; later cmd, modularity):
    ``tables[name]`` is ``{window: DataFrame indexed by run_id}``."""

    def builder(ctx: FeatureContext, window: int) -> pd.DataFrame:
        return ctx.table(name, window)

    builder.__doc__ = f"Columns of the {name} summary table for the window."
    return register_feature_set(name)(builder)


def feature_set_parts(spec: str) -> list[str]:
    """The registered sets that `spec` joins with ``+``; ValueError naming unknown parts."""
    parts = [p.strip() for p in spec.split("+")]
    unknown = [p for p in parts if p not in FEATURE_BUILDERS]
    if unknown or not all(parts):
        raise ValueError(f"feature set {spec!r}: unknown part(s) {unknown or ['']}; "
                         f"known: {sorted(FEATURE_BUILDERS)} (combine with '+')")
    return parts


def build_features(spec: str, runs: pd.DataFrame | None = None, window: int = 1, *,
                   runs_dir: str | Path | None = None, tables: Mapping | None = None,
                   context: FeatureContext | None = None) -> pd.DataFrame:
    """Features of set `spec` (e.g. ``graph+curve``) for window E, one row per run (index run_id).

    ``df.attrs["source"]`` maps each column to the set it came from.
    """
    if context is None:
        if runs is None:
            raise ValueError("build_features needs runs or a context")
        runs = runs.set_index("run_id", drop=False) if "run_id" in runs.columns else runs
        context = FeatureContext(runs, Path(runs_dir) if runs_dir is not None else None, dict(tables or {}))
    frames, source = [], {}
    for part in feature_set_parts(spec):
        key = (part, window)
        if key not in context._built:
            df = FEATURE_BUILDERS[part](context, window)
            if list(df.index) != list(context.runs.index):
                raise ValueError(f"feature set {part!r} returned rows that do not match the runs")
            context._built[key] = df
        df = context._built[key]
        clash = [c for c in df.columns if c in source]
        if clash:
            raise ValueError(f"feature set {spec!r}: column(s) {clash[:5]} come from both "
                             f"{source[clash[0]]!r} and {part!r}")
        source.update({c: part for c in df.columns})
        frames.append(df)
    out = pd.concat(frames, axis=1) if len(frames) > 1 else frames[0].copy()
    out.attrs["source"] = source
    return out
