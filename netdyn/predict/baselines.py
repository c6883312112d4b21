"""Baselines that fit no model across runs: what a practitioner reads off the early curve directly.

* ``early_acc_nofit`` - the test accuracy last measured by epoch E, used as the prediction itself. Kendall
  tau then measures how well the early ranking of runs already is the final ranking. No run's final
  accuracy is seen, so it cannot overfit; its R2 is that of "final accuracy = accuracy now".
* ``curve_extrap`` - a learning-curve extrapolation per run: the exponential saturation
  ``acc(e) = a - b exp(-c e)`` fitted to the run's own test accuracies at epochs <= E
  (scipy.optimize.curve_fit, 0 <= a <= 1, 0 <= b <= 1, 1e-3 <= c <= 20) and evaluated at the run's final
  epoch. Where the fit cannot be made (fewer than 3 points, a diverged run, the optimiser fails or returns
  a non-finite value) the prediction is the last measured accuracy, and the run is counted in
  ``df.attrs["fallback"]``.

Both are registered feature sets whose one column *is* the prediction (:data:`NO_FIT_SETS`): the
prediction stage evaluates them on exactly the rows and splits of the fitted sets, without fitting.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

from .features import FeatureContext, register_feature_set

NO_FIT_SETS = ("early_acc_nofit", "curve_extrap")
BOUNDS = ([0.0, 0.0, 1e-3], [1.0, 1.0, 20.0])


def saturation(e, a, b, c):
    """Exponential saturation towards the plateau ``a``."""
    return a - b * np.exp(-c * np.asarray(e, float))


def extrapolate(epochs, acc, final_epoch: float) -> tuple[float, bool]:
    """(accuracy predicted at ``final_epoch``, whether the parametric fit was used). Falls back to the last
    measured accuracy when fewer than 3 points are finite or the fit fails."""
    e, a = np.asarray(epochs, float), np.asarray(acc, float)
    ok = np.isfinite(e) & np.isfinite(a)
    e, a = e[ok], a[ok]
    if not len(a):
        return np.nan, False
    last = float(a[np.argmax(e)])
    if len(np.unique(e)) < 3:
        return last, False
    p0 = [float(np.clip(a.max(), 0, 1)), float(np.clip(a.max() - a[np.argmin(e)], 0, 1)), 1.0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            p, _ = curve_fit(saturation, e, a, p0=p0, bounds=BOUNDS, maxfev=5000)
    except (RuntimeError, ValueError):
        return last, False
    v = float(saturation(final_epoch, *p))
    if not np.isfinite(v):
        return last, False
    return float(np.clip(v, 0.0, 1.0)), True


def _last_acc(c: pd.DataFrame) -> float:
    t = c["test_acc"].dropna()
    return float(t.iloc[-1]) if len(t) else np.nan


@register_feature_set("early_acc_nofit")
def early_acc_nofit(ctx: FeatureContext, window: int) -> pd.DataFrame:
    """The last test accuracy measured by epoch E, as the prediction (no fit)."""
    vals = [_last_acc(ctx.early_curves(r, window)) for r in ctx.runs.index]
    return pd.DataFrame({"nofit.early_acc": vals}, index=ctx.runs.index)


def _final_epoch(ctx: FeatureContext, run_id) -> float:
    if "epochs" in ctx.runs.columns and pd.notna(ctx.runs.at[run_id, "epochs"]):
        return float(ctx.runs.at[run_id, "epochs"])
    return float(ctx.curves(run_id)["epoch"].max())


@register_feature_set("curve_extrap")
def curve_extrapolation(ctx: FeatureContext, window: int) -> pd.DataFrame:
    """Each run's early test-accuracy curve, fitted and extrapolated to its final epoch (no fit across
    runs); a diverged run (its divergence measured by E) keeps its last accuracy."""
    vals, fallback = [], 0
    for r in ctx.runs.index:
        c = ctx.early_curves(r, window)
        if (c["snapshot"] < 0).any():  # diverged by E: it stays where it is
            vals.append(_last_acc(c))
            fallback += 1
            continue
        c = c.drop_duplicates("epoch", keep="last")
        v, fitted = extrapolate(c["epoch"], c["test_acc"], _final_epoch(ctx, r))
        vals.append(v)
        fallback += not fitted
    out = pd.DataFrame({"extrap.test_acc@final": vals}, index=ctx.runs.index)
    out.attrs["fallback"] = fallback
    return out
