"""How far the evidence study's metrics move when nothing but the prediction stage's seed changes.

    .venv/bin/python scripts/evidence_stability.py --study evidence --seed 1 [--out evidence/digits_evidence]

Reruns the prediction stage on the study's stored tables (same runs, same features) with ``predict.seed``
changed - the seed of the grouped CV folds, of XGBoost's row subsampling and of the bootstrap draws - and
compares the pooled metrics (subset all) with the study's own: the movement of Kendall tau and R2 per
architecture x split x window x feature set, and whether the verdict "graph against the stronger early
accuracy" changes. It measures the part of the answer that depends on arbitrary choices of the analysis,
not training noise and not another machine. Writes ``stability.json`` beside the evidence (merged into
summary.json by scripts/evidence.py on its next run) and the rerun's tables under results/<study>/stability/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rerun(study: str, config: Path, seed: int, n_jobs: int) -> dict:
    import pandas as pd

    from netdyn.config import load_config, prediction_windows
    from netdyn.graphs import temporal_summary
    from netdyn.predict import run_prediction

    res = REPO / "results" / study
    cfg = load_config(str(config))
    pcfg = {**cfg["predict"], "seed": seed}
    pcfg["windows"] = prediction_windows(cfg)
    runs = pd.read_csv(res / "tables" / "runs.csv")
    sig = pd.read_csv(res / "tables" / "graph_signatures.csv")
    epochs = sorted(sig["epoch"].unique())
    graphs = {e: temporal_summary(sig, window=e, epochs=[x for x in epochs if x <= e]) for e in pcfg["windows"]}
    tables = {}
    if (res / "tables" / "modularity.csv").exists():
        from netdyn.modularity.stage import early_window_features

        mod = pd.read_csv(res / "tables" / "modularity.csv")
        tables["modularity"] = {e: early_window_features(mod, e) for e in pcfg["windows"]}
    cmd_files = sorted((res / "cmd" / "groups").glob("*.features.csv"))
    if cmd_files:
        cmd = pd.concat([pd.read_csv(p) for p in cmd_files], ignore_index=True)
        tables["cmd"] = {e: cmd[cmd.window == e].drop(columns="window").set_index("run_id") for e in pcfg["windows"]}
    sets = [fs for fs in pcfg["feature_sets"] if fs.split("+")[0] in ("early_acc", "early_acc_nofit", "curve_extrap",
                                                                     "curve", "weights", "graph")
            or fs in tables]
    pcfg["feature_sets"] = sets
    return run_prediction(runs, res / "runs", graphs, pcfg, n_jobs=n_jobs, tables=tables)


def compare(base, other) -> dict:
    import numpy as np

    keys = ["arch", "split", "window", "feature_set"]

    def pooled(m):
        return m[(m["subset"] == "all") & m["test_width"].isna()].set_index(keys)

    a, b = pooled(base), pooled(other)
    j = a[["kendall_tau", "r2", "kendall_tau_lo", "kendall_tau_hi"]].join(
        b[["kendall_tau", "r2"]], rsuffix="_rerun", how="inner")
    d_tau = (j["kendall_tau_rerun"] - j["kendall_tau"]).abs()
    d_r2 = (j["r2_rerun"] - j["r2"]).abs()
    width = (j["kendall_tau_hi"] - j["kendall_tau_lo"])
    fitted = ~j.index.get_level_values("feature_set").isin(["early_acc_nofit", "curve_extrap"])
    out = {"cells": int(len(j)), "fitted_cells": int(fitted.sum())}
    for split in ("within_width", "transfer"):
        sel = fitted & (j.index.get_level_values("split") == split)
        out[split] = {"mean_abs_d_tau": float(np.nanmean(d_tau[sel])), "max_abs_d_tau": float(np.nanmax(d_tau[sel])),
                      "mean_abs_d_r2": float(np.nanmean(d_r2[sel])),
                      "median_interval_width_tau": float(np.nanmedian(width[sel]))}
    return out


def verdicts(pred_a, pred_b, met_a, met_b) -> dict:
    """Verdicts of graph against the stronger early accuracy (paired interval excludes 0 or not) in the study
    and in the rerun, cell by cell."""
    from netdyn.predict.compare import paired_differences

    def table(pred, met):
        m = met[(met["subset"] == "all") & met["test_width"].isna()]
        tau = m.set_index(["arch", "split", "window", "feature_set"])["kendall_tau"]
        p = paired_differences(pred, [("graph", "early_acc"), ("graph", "early_acc_nofit")])
        out = {}
        for (arch, split, window), g in p.groupby(["arch", "split", "window"]):
            b = max(("early_acc", "early_acc_nofit"), key=lambda fs: tau.get((arch, split, window, fs), -9))
            r = g[g["b"] == b].iloc[0]
            out[(arch, split, int(window))] = ("better" if r.d_tau_lo > 0 else "worse" if r.d_tau_hi < 0
                                               else "not distinguishable")
        return out

    a, b = table(pred_a, met_a), table(pred_b, met_b)
    changed = [f"{k[0]} {k[1]} E={k[2]}: {a[k]} -> {b[k]}" for k in sorted(a) if k in b and a[k] != b[k]]
    return {"verdict_cells": len(a), "verdicts_changed": changed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="evidence")
    ap.add_argument("--config", type=Path, default=REPO / "config" / "evidence.yaml")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "evidence" / "digits_evidence")
    a = ap.parse_args(argv)
    import pandas as pd

    out = rerun(a.study, a.config, a.seed, a.jobs)
    d = REPO / "results" / a.study / "stability"
    d.mkdir(parents=True, exist_ok=True)
    out["predictions"].to_csv(d / "predictions.csv", index=False)
    out["metrics"].to_csv(d / "prediction_metrics.csv", index=False)
    base = pd.read_csv(REPO / "results" / a.study / "tables" / "prediction_metrics.csv")
    base_pred = pd.read_csv(REPO / "results" / a.study / "tables" / "predictions.csv")
    result = {"perturbation": f"predict.seed {a.seed} instead of the study's (CV folds, XGBoost subsampling, "
                              "bootstrap draws); same runs and features", **compare(base, out["metrics"]),
              **verdicts(base_pred, out["predictions"], base, out["metrics"])}
    (a.out / "stability.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
