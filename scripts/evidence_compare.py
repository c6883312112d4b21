"""Two runs of the evidence study that differ only in float rounding: how far do runs, metrics and verdicts move?

    .venv/bin/python scripts/evidence_compare.py --study evidence --other evidence_threads2

`--other` is config/evidence_threads2.yaml: the same grid trained with two torch threads per job instead of
one (another reduction order in every convolution). Compares, on the feature sets both studies have: each
run's final accuracy, the pooled Kendall tau / R2 of every architecture x split x window x feature set, and
the verdicts of `graph` against the stronger early accuracy. Writes ``stability_threads.json`` beside the
evidence (merged into summary.json by scripts/evidence.py on its next run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))


def main(argv=None) -> int:
    import numpy as np
    import pandas as pd

    from evidence_stability import compare, verdicts

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="evidence")
    ap.add_argument("--other", default="evidence_threads2")
    ap.add_argument("--out", type=Path, default=REPO / "evidence" / "digits_evidence")
    ap.add_argument("--control", default="evcheck", help="study of config/evidence_control.yaml (skipped if absent)")
    a = ap.parse_args(argv)
    t = {s: REPO / "results" / s / "tables" for s in (a.study, a.other)}
    runs = {s: pd.read_csv(t[s] / "runs.csv").set_index("run_id") for s in t}
    pred = {s: pd.read_csv(t[s] / "predictions.csv") for s in t}
    met = {s: pd.read_csv(t[s] / "prediction_metrics.csv") for s in t}
    common = sorted(set(pred[a.study]["feature_set"]) & set(pred[a.other]["feature_set"]))
    pred = {s: p[p["feature_set"].isin(common)] for s, p in pred.items()}
    met = {s: m[m["feature_set"].isin(common)] for s, m in met.items()}
    ids = runs[a.study].index.intersection(runs[a.other].index)
    d = (runs[a.other].loc[ids, "final_test_acc"] - runs[a.study].loc[ids, "final_test_acc"]).abs()
    arch = runs[a.study].loc[ids, "arch_label"]
    result = {"perturbation": "the same grid trained with 2 torch threads per job instead of 1 (float rounding)",
              "studies": [a.study, a.other], "feature_sets": common, "runs": int(len(ids)),
              "final_acc_abs_change": {k: {"mean": round(float(v.mean()), 3), "max": round(float(v.max()), 3)}
                                       for k, v in d.groupby(arch)},
              "final_acc_identical": int((d == 0).sum()),
              **compare(met[a.study], met[a.other]),
              **verdicts(pred[a.study], pred[a.other], met[a.study], met[a.other])}
    times = {s: REPO / "results" / s / "run_time.json" for s in t}  # scripts/evidence_run.sh
    result["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                      text=True).stdout.strip()
    result["run_time"] = {s: json.loads(f.read_text()).get("summary") for s, f in times.items() if f.exists()}
    ctrl = REPO / "results" / a.control / "runs"
    if ctrl.exists():  # the same runs, one thread, today's trainer: byte-identical curves or not
        same = [(ctrl / r / "curves.csv").read_bytes() == (REPO / "results" / a.study / "runs" / r / "curves.csv")
                .read_bytes() for r in sorted(p.name for p in ctrl.iterdir() if (p / "curves.csv").exists())]
        result["control"] = {"study": a.control, "runs": len(same), "curves_identical": int(sum(same))}
    result = json.loads(json.dumps(result, default=lambda x: float(x) if isinstance(x, np.floating) else str(x)))
    (a.out / "stability_threads.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
