"""Regenerate the committed evidence of a prediction study, and README's section from it.

    .venv/bin/python scripts/evidence.py                       # results/evidence -> evidence/digits_evidence
    .venv/bin/python scripts/evidence.py --readme-only         # README's generated blocks from the committed files

Reads ``results/<study>/tables/{runs,predictions,prediction_metrics}.csv`` (and ``results/<study>/run_time.json``
where the run recorded its wall time) and writes to the evidence folder:

* ``runs.csv`` - the runs table (scalars only: no trajectories, curves or snapshots);
* ``predictions.csv`` - every prediction (the source of every number below; recompute any of them from it);
* ``metrics.csv`` - the stage's metrics table (per split, window, test width, subset; 95% bootstrap intervals);
* ``paired.csv`` - paired differences in Kendall tau and R2 between feature sets on the same test runs
  (netdyn.predict.compare.paired_differences), ``classification.csv`` - good vs bad (accuracy, ROC AUC);
* ``tau_summary.{png,pdf}``, ``r2_summary.{png,pdf}`` - per architecture, each feature set's value and interval
  at every window, within width and transfer;
* ``provenance.json`` - config, commit, machine, wall time; ``summary.json`` - what README's blocks print
  (with ``stability.json`` from scripts/evidence_stability.py where it was run, and the screening check).

After the files are written, README's generated blocks are rewritten through scripts/readme_tables.py when the
evidence files are committed and unchanged (readme_tables reads committed JSON only): regenerate, commit the
evidence folder, run again (or with --readme-only) to regenerate README's section.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from netdyn.machine import one_line  # noqa: E402

PAIRS = [  # (a, b, the question the difference answers)
    ("graph", "early_acc_nofit", "Does the graph summary rank runs better than their early test accuracy itself?"),
    ("graph", "early_acc", "... better than XGBoost fitted on the early test accuracy?"),
    ("graph", "curve_extrap", "... better than extrapolating each run's early learning curve?"),
    ("graph", "weights", "Does the graph add to per-layer weight statistics (Unterthiner et al.)?"),
    ("graph+curve", "curve", "Do graph features add to the learning curves?"),
    ("cmd", "graph", "Does the CMD summary of the early window beat the graph summary?"),
    ("modularity", "graph", "Does layer-wise kNN modularity beat the graph summary?"),
    ("early_acc", "early_acc_nofit", "Does fitting a model on the early accuracy beat using it as it is?"),
]
ORDER = ["early_acc_nofit", "early_acc", "curve_extrap", "curve", "weights", "graph", "graph+curve", "modularity",
         "cmd"]
ARCH = {"lenet": "LeNet", "alexnet": "AlexNet", "vgg11bn": "VGG-11-BN", "resnet8": "ResNet-8"}
RUN_COLUMNS = ["run_id", "arch_label", "dataset", "width", "learning_rate", "dropout", "weight_decay", "seed",
               "epochs", "batch_size", "status", "diverged_epoch", "final_test_acc", "best_test_acc", "n_snapshots",
               "wall_seconds"]
TABLE_WINDOW = 3  # README's tables; the figure shows every window
PAPER_WINDOW = 5  # the temporal-graph paper's "5 epochs"
CHANCE = 0.2  # final accuracy below this counts as "near chance" (10 classes)


def _git(*args) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def _r(v, nd=2):
    return None if v is None or v != v else round(float(v), nd)


def build(study: str, config: Path, out: Path) -> dict:
    """The evidence folder from results/<study>/tables and the config file."""
    import pandas as pd
    import yaml

    tables = REPO / "results" / study / "tables"
    run_time = REPO / "results" / study / "run_time.json"
    summary = write_evidence(pd.read_csv(tables / "runs.csv"), pd.read_csv(tables / "predictions.csv"),
                             pd.read_csv(tables / "prediction_metrics.csv"), yaml.safe_load(config.read_text()), out,
                             study=study, config_file=os.path.relpath(config, REPO),
                             run_time=json.loads(run_time.read_text()) if run_time.exists() else None)
    if (tables / "graph_signatures.csv").exists():
        summary["screening"] = screening_check(study, TABLE_WINDOW)
    if (out / "stability.json").exists():  # scripts/evidence_stability.py
        summary["stability"] = json.loads((out / "stability.json").read_text())
    if (out / "stability_threads.json").exists():  # scripts/evidence_compare.py
        summary["stability_threads"] = json.loads((out / "stability_threads.json").read_text())
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def write_evidence(runs, pred, metrics, cfg: dict, out: Path, *, study: str, config_file: str,
                   run_time: dict | None = None) -> dict:
    """Tables, figures, provenance.json and summary.json of one study (see the module docstring)."""
    from netdyn.figures.predict import plot_tau_summary
    from netdyn.machine import describe
    from netdyn.models import architecture_label
    from netdyn.predict.compare import classification_metrics, paired_differences
    from netdyn.predict.metrics import LEVEL

    pcfg = cfg.get("predict", {})
    boot, seed = int(pcfg.get("bootstrap", 1000)), int(pcfg.get("seed", 0))
    out.mkdir(parents=True, exist_ok=True)
    runs[[c for c in RUN_COLUMNS if c in runs.columns]].to_csv(out / "runs.csv", index=False)
    pred.to_csv(out / "predictions.csv", index=False)
    metrics.to_csv(out / "metrics.csv", index=False)
    have = set(pred["feature_set"])
    pairs = [(a, b) for a, b, _ in PAIRS if a in have and b in have]
    pairs += [(fs, b) for fs in ORDER[2:] for b in ("early_acc_nofit", "early_acc")  # every set vs both baselines
              if fs in have and b in have and (fs, b) not in pairs]
    paired = paired_differences(pred, pairs, bootstrap=boot, seed=seed)
    paired.to_csv(out / "paired.csv", index=False)
    cls = classification_metrics(pred, bootstrap=boot, seed=seed)
    cls.to_csv(out / "classification.csv", index=False)
    sets = [fs for fs in ORDER if fs in have] + sorted(have - set(ORDER))
    plot_tau_summary(metrics, out / "tau_summary.png", feature_sets=sets)
    plot_tau_summary(metrics, out / "r2_summary.png", feature_sets=sets, metric="r2")

    prov = {"study": study, "config_file": config_file, "config": cfg,
            "commit_of_evidence_script": _git("rev-parse", "HEAD"),
            "uncommitted_under_netdyn": _git("status", "--porcelain", "--", "netdyn").splitlines(),
            "machine": describe(),
            "run_time": run_time}
    (out / "provenance.json").write_text(json.dumps(prov, indent=1, default=str) + "\n")

    # --- summary.json: exactly what README prints
    pm = metrics[(metrics["subset"] == "all") & metrics["test_width"].isna()]
    pop = []
    for arch, g in runs.groupby("arch_label"):
        pop.append({"arch": arch, "runs": len(g), "widths": sorted(int(w) for w in g["width"].unique()),
                    "final_min": _r(g["final_test_acc"].min()), "final_median": _r(g["final_test_acc"].median()),
                    "final_max": _r(g["final_test_acc"].max()),
                    "near_chance": int((g["final_test_acc"] < CHANCE).sum()),
                    "diverged": int((g["status"] == "diverged").sum())})
    met = [{"arch": r.arch, "split": r.split, "window": int(r.window), "feature_set": r.feature_set,
            "tau": _r(r.kendall_tau), "tau_lo": _r(r.kendall_tau_lo), "tau_hi": _r(r.kendall_tau_hi),
            "r2": _r(r.r2), "r2_lo": _r(r.r2_lo), "r2_hi": _r(r.r2_hi), "n_test": int(r.n_test),
            "n_train": None if r.n_train != r.n_train else int(r.n_train)} for r in pm.itertuples()]
    pr = [{"arch": r.arch, "split": r.split, "window": int(r.window), "a": r.a, "b": r.b, "n_test": int(r.n_test),
           "d_tau": _r(r.d_tau), "d_tau_lo": _r(r.d_tau_lo), "d_tau_hi": _r(r.d_tau_hi), "d_r2": _r(r.d_r2),
           "d_r2_lo": _r(r.d_r2_lo), "d_r2_hi": _r(r.d_r2_hi)} for r in paired.itertuples()]
    cl = [{"arch": r.arch, "split": r.split, "window": int(r.window), "feature_set": r.feature_set,
           "n_test": int(r.n_test), "accuracy": _r(r.accuracy), "accuracy_lo": _r(r.accuracy_lo),
           "accuracy_hi": _r(r.accuracy_hi), "roc_auc": _r(r.roc_auc), "roc_auc_lo": _r(r.roc_auc_lo),
           "roc_auc_hi": _r(r.roc_auc_hi)} for r in cls.itertuples()]
    summary = {"study": study, "folder": os.path.relpath(out, REPO), "level": LEVEL, "bootstrap": boot,
               "config_file": prov["config_file"], "epochs": cfg["training"]["epochs"],
               "batch_size": cfg["training"].get("batch_size"),
               "learning_rates": cfg["hyperparameters"]["learning_rate"],
               "learning_rates_own": {architecture_label(a["name"], a.get("depth"), a.get("batchnorm")):
                                      a["hyperparameters"]["learning_rate"]
                                      for a in cfg.get("architectures", [])
                                      if "learning_rate" in a.get("hyperparameters", {})},
               "seeds": cfg["seeds"], "widths": cfg["widths"], "train_widths": pcfg.get("train_widths"),
               "feature_sets": sets, "table_window": TABLE_WINDOW, "paper_window": PAPER_WINDOW, "chance": CHANCE,
               "population": pop, "metrics": met, "paired": pr, "classification": cl,
               "questions": {f"{a} vs {b}": q for a, b, q in PAIRS},
               "machine": prov["machine"], "run_time": prov["run_time"],
               "commit_of_evidence_script": prov["commit_of_evidence_script"][:7],
               "uncommitted_under_netdyn": prov["uncommitted_under_netdyn"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def screening_check(study: str, window: int, max_features: int = 64) -> list[dict]:
    """Why screening keeps each family: on the graph+curve features of every architecture's transfer fit
    (its width-1 runs) at one window, how many columns of each family the plain |Spearman| screen and the
    per-family screen keep, and the time of one fit on all columns vs on the screened ones."""
    import time

    import numpy as np
    import pandas as pd

    from netdyn.graphs import temporal_summary
    from netdyn.predict import Fitter, build_features, prepare_runs, screen_features

    res = REPO / "results" / study
    runs = prepare_runs(pd.read_csv(res / "tables" / "runs.csv"))
    sig = pd.read_csv(res / "tables" / "graph_signatures.csv")
    epochs = sorted(sig["epoch"].unique())
    graphs = {window: temporal_summary(sig, window=window, epochs=[x for x in epochs if x <= window])}
    feats = build_features("graph+curve", runs, window=window, runs_dir=res / "runs", tables={"graph": graphs})
    out = []
    for arch, idx in runs.groupby("arch_label", sort=True).indices.items():
        sub = runs.iloc[idx]
        rows = sub["width"].to_numpy() == min(sub["width"])
        X = feats.iloc[idx].to_numpy(float)[rows]
        fam = np.array([feats.attrs["source"][c] for c in feats.columns])
        present = np.isfinite(X).any(0)
        lo, hi = np.nanmin(np.where(present, X, 0), 0), np.nanmax(np.where(present, X, 0), 0)
        keep = np.flatnonzero(present & (hi > lo))
        X, fam = X[:, keep], fam[keep]
        y = sub["final_test_acc"].to_numpy(float)[rows]
        plain, fair = screen_features(X, y, max_features), screen_features(X, y, max_features, fam)
        times = {}
        for name, cols in (("all", np.arange(X.shape[1])), ("screened", fair)):
            f = Fitter(X[:, cols], y, {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05}, seed=0)
            t0 = time.perf_counter()
            for _ in range(3):
                f.cache.clear()
                f.fit(np.ones(len(y), dtype=bool), {})
            times[name] = (time.perf_counter() - t0) / 3
        out.append({"arch": arch, "window": window, "rows": int(rows.sum()), "columns": int(X.shape[1]),
                    **{f"{k}_columns": int((fam == k).sum()) for k in ("graph", "curve")},
                    **{f"plain_keeps_{k}": int((fam[plain] == k).sum()) for k in ("graph", "curve")},
                    **{f"family_keeps_{k}": int((fam[fair] == k).sum()) for k in ("graph", "curve")},
                    "fit_s_all_columns": round(times["all"], 4), "fit_s_screened": round(times["screened"], 4)})
    return out


# ----------------------------------------------------------------------------------------------- README blocks
def _ci(v, lo, hi) -> str:
    if v is None:
        return "–"
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]" if lo is not None else f"{v:.2f}"


def _archs(s) -> list[str]:
    order = list(ARCH)
    return sorted({p["arch"] for p in s["population"]}, key=lambda a: order.index(a) if a in order else 99)


def _get(rows, **kw):
    return next((r for r in rows if all(r.get(k) == v for k, v in kw.items())), None)


def _verdict(d) -> str:
    if d is None or d["d_tau_lo"] is None:
        return "not measured"
    if d["d_tau_lo"] > 0:
        return "better"
    if d["d_tau_hi"] < 0:
        return "**worse**"
    return "not distinguishable"


def _stronger_baseline(s, arch, split, window):
    """The stronger (higher tau on these test runs) of the fitted and the no-fit early accuracy."""
    c = [_get(s["metrics"], arch=arch, split=split, window=window, feature_set=fs)
         for fs in ("early_acc", "early_acc_nofit")]
    c = [x for x in c if x and x["tau"] is not None]
    return max(c, key=lambda x: x["tau"])["feature_set"] if c else None


def _lrs(values) -> str:
    return ", ".join(f"{x:g}" for x in values)


def _own_lrs(s) -> str:
    """The architectures that train on their own learning rates (config `architectures[i].hyperparameters`)."""
    own = s.get("learning_rates_own") or {}
    return "".join(f" ({ARCH.get(a, a)}: {_lrs(v)})" for a, v in own.items())


def render_study(src) -> str:
    s = src.data
    rt = s.get("run_time") or {}
    m = s["machine"]
    pop = ", ".join(f"{ARCH.get(p['arch'], p['arch'])} {p['runs']} runs, final accuracy {p['final_min']:.2f}–"
                    f"{p['final_max']:.2f} (median {p['final_median']:.2f}; {p['near_chance']} below {s['chance']:g})"
                    for p in sorted(s["population"], key=lambda p: _archs(s).index(p["arch"])))
    lines = [f"Evidence study `{s['config_file']}` (digits, offline): widths {', '.join(map(str, s['widths']))} × "
             f"learning rates {_lrs(s['learning_rates'])}{_own_lrs(s)} × seeds "
             f"{', '.join(map(str, s['seeds']))}, batch {s['batch_size']}, {s['epochs']} epochs; {pop}. "
             f"Transfer models are fitted on width {', '.join(map(str, s['train_widths']))} and tested on the wider "
             f"runs; within-width models by grouped 5-fold CV over configurations (one model pooled over widths). "
             f"Intervals: percentile bootstrap {s['level']:.0%} over the test runs ({s['bootstrap']} resamples). "
             f"Source: {src.provenance()}; files in `{s['folder']}/` (`predictions.csv` holds every prediction, "
             f"`provenance.json` the config, commit and machine)."]
    if rt:
        lines.append("")
        lines.append(f"Run time: {rt.get('summary', '')} Machine: {one_line(m)}, at commit "
                     f"{rt.get('commit', '?')[:7]}. {rt.get('code', '')}".rstrip())
    return "\n".join(lines)


def _metric_table(s, split: str, window: int) -> str:
    sets = s["feature_sets"]
    out = ["| arch | " + " | ".join(f"`{fs}`" for fs in sets) + " |", "|---|" + "---|" * len(sets)]
    for arch in _archs(s):
        cells = []
        for fs in sets:
            r = _get(s["metrics"], arch=arch, split=split, window=window, feature_set=fs)
            cells.append("–" if r is None else f"{_ci(r['tau'], r['tau_lo'], r['tau_hi'])} / "
                         f"{'–' if r['r2'] is None else format(r['r2'], '.2f')}")
        out.append(f"| {ARCH.get(arch, arch)} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def render_metrics(src) -> str:
    s = src.data
    w = s["table_window"]
    n = {sp: _get(s["metrics"], split=sp, window=w) for sp in ("within_width", "transfer")}
    return "\n".join([
        f"**Within width, E = {w}** (n = {n['within_width']['n_test']} test runs per architecture) — Kendall τ "
        f"[{s['level']:.0%} interval] / R²", "", _metric_table(s, "within_width", w), "",
        f"**Width transfer, E = {w}** (fitted on {n['transfer']['n_train']} width-"
        f"{','.join(map(str, s['train_widths']))} runs, tested on {n['transfer']['n_test']} wider runs) — Kendall τ "
        f"[{s['level']:.0%} interval] / R²", "", _metric_table(s, "transfer", w), "",
        "`early_acc_nofit` is the test accuracy at epoch E used as the prediction itself (no model), "
        "`curve_extrap` each run's early test-accuracy curve fitted by a − b·exp(−c·e) and read at the final "
        "epoch; both fit nothing across runs, so their R² is that of taking the number as the final accuracy."])


def render_paired(src) -> str:
    s = src.data
    w = s["table_window"]
    pairs = [(a, b) for a, b in dict.fromkeys((p["a"], p["b"]) for p in s["paired"]) if f"{a} vs {b}" in s["questions"]]
    out = [f"**Paired differences on the same test runs, E = {w}** — Δτ = τ(a) − τ(b) [{s['level']:.0%} paired "
           "bootstrap interval]; each row answers the question beside it.", "",
           "| a − b | question | " + " | ".join(f"{ARCH.get(a, a)} within | {ARCH.get(a, a)} transfer"
                                                for a in _archs(s)) + " |",
           "|---|---|" + "---|" * (2 * len(_archs(s)))]
    for a, b in pairs:
        cells = []
        for arch in _archs(s):
            for sp in ("within_width", "transfer"):
                d = _get(s["paired"], arch=arch, split=sp, window=w, a=a, b=b)
                cells.append("–" if d is None else _ci(d["d_tau"], d["d_tau_lo"], d["d_tau_hi"]))
        out.append(f"| `{a}` − `{b}` | {s['questions'].get(f'{a} vs {b}', '')} | " + " | ".join(cells) + " |")
    # every window: graph against the stronger trivial baseline
    tally = {"better": 0, "**worse**": 0, "not distinguishable": 0, "not measured": 0}
    rows = []
    for arch in _archs(s):
        for sp in ("within_width", "transfer"):
            cells = []
            for win in sorted({p["window"] for p in s["paired"]}):
                b = _stronger_baseline(s, arch, sp, win)
                d = _get(s["paired"], arch=arch, split=sp, window=win, a="graph", b=b) if b else None
                v = _verdict(d)
                tally[v] += 1
                cells.append("–" if d is None else f"{_ci(d['d_tau'], d['d_tau_lo'], d['d_tau_hi'])} vs "
                             f"`{b}`: {v}")
            rows.append(f"| {ARCH.get(arch, arch)} | {sp.replace('_', ' ')} | " + " | ".join(cells) + " |")
    wins = sorted({p["window"] for p in s["paired"]})
    out += ["", "**`graph` against the stronger of the fitted and the no-fit early accuracy, every window** "
            "(Δτ [interval]; the stronger one is chosen on the test runs themselves, which favours the baseline):",
            "", "| arch | split | " + " | ".join(f"E = {x}" for x in wins) + " |", "|---|---|" + "---|" * len(wins),
            *rows, "",
            f"Over the {sum(tally.values())} architecture × split × window cells the graph summary is better in "
            f"{tally['better']}, worse in {tally['**worse**']}, and not distinguishable in "
            f"{tally['not distinguishable']} (the interval of Δτ contains 0)."]
    sets = [fs for fs in s["feature_sets"] if fs not in ("early_acc", "early_acc_nofit")]
    rows = []
    for fs in sets:
        cells = []
        for sp in ("within_width", "transfer"):
            t = {"better": 0, "**worse**": 0, "not distinguishable": 0, "not measured": 0}
            for arch in _archs(s):
                for win in wins:
                    b = _stronger_baseline(s, arch, sp, win)
                    t[_verdict(_get(s["paired"], arch=arch, split=sp, window=win, a=fs, b=b) if b else None)] += 1
            cells.append(f"{t['better']} / {t['**worse**']} / {t['not distinguishable']}")
        rows.append(f"| `{fs}` | " + " | ".join(cells) + " |")
    out += ["", "**Every feature set against the stronger early accuracy** — cells (architecture × window) where it "
            "is better / worse / not distinguishable by the paired interval:", "",
            "| feature set | within width | transfer |", "|---|---|---|", *rows]
    return "\n".join(out)


def render_classification(src) -> str:
    s = src.data
    w = s["paper_window"]
    sets = [fs for fs in ("early_acc_nofit", "curve_extrap", "weights", "graph", "graph+curve")
            if fs in s["feature_sets"]]
    out = [f"**Good vs bad (final accuracy above vs below the median of the runs evaluated), E = {w}** — "
           f"accuracy / ROC AUC [{s['level']:.0%} interval]. A run is called good when its prediction is in the "
           "upper half of the predictions; chance accuracy is 0.5. The earlier temporal-graph paper version reports "
           "\">93%\" for LeNet from a weighted-degree summary of 5 epochs (its data and grid, not these).", "",
           "| arch | split | " + " | ".join(f"`{fs}`" for fs in sets) + " |", "|---|---|" + "---|" * len(sets)]
    for arch in _archs(s):
        for sp in ("within_width", "transfer"):
            cells = []
            for fs in sets:
                c = _get(s["classification"], arch=arch, split=sp, window=w, feature_set=fs)
                cells.append("–" if c is None else f"{c['accuracy']:.2f} [{c['accuracy_lo']:.2f}, "
                             f"{c['accuracy_hi']:.2f}] / {_ci(c['roc_auc'], c['roc_auc_lo'], c['roc_auc_hi'])}")
            out.append(f"| {ARCH.get(arch, arch)} | {sp.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _d(s, arch, split, window, a, b) -> str:
    d = _get(s["paired"], arch=arch, split=split, window=window, a=a, b=b)
    if d is None or d["d_tau"] is None:
        return f"`{a}` − `{b}` not measured"
    return f"`{a}` − `{b}` Δτ {_ci(d['d_tau'], d['d_tau_lo'], d['d_tau_hi'])} ({_verdict(d).replace('**', '')})"


def render_findings(src) -> str:
    """What the tables say, one bullet per architecture and a few across them; every verdict is read off the
    paired intervals (better / worse: the interval excludes 0), none is typed by hand."""
    s = src.data
    w, pw = s["table_window"], s["paper_window"]
    out = []
    for arch in _archs(s):
        parts = []
        for sp, name in (("within_width", "within width"), ("transfer", "transfer")):
            rows = [r for r in s["metrics"] if r["arch"] == arch and r["split"] == sp and r["window"] == w
                    and r["tau"] is not None]
            if not rows:
                continue
            best = max(rows, key=lambda r: r["tau"])
            b = _stronger_baseline(s, arch, sp, w)
            parts.append(f"{name}: best τ {best['tau']:.2f} [{best['tau_lo']:.2f}, {best['tau_hi']:.2f}] from "
                         f"`{best['feature_set']}`; " + "; ".join(
                             _d(s, arch, sp, w, a, bb) for a, bb in (("graph", b), ("graph", "curve_extrap"),
                                                                     ("graph", "weights"), ("graph+curve", "curve"))))
        p = next((x for x in s["population"] if x["arch"] == arch), None)
        pop = (f" ({p['near_chance']} of {p['runs']} runs end below {s['chance']:g}, final median "
               f"{p['final_median']:.2f})" if p else "")
        out.append(f"* **{ARCH.get(arch, arch)}**{pop}, E = {w} — " + ". ".join(parts) + ".")
    # fitted vs no-fit early accuracy, every cell
    cells = [d for d in s["paired"] if d["a"] == "early_acc" and d["b"] == "early_acc_nofit" and d["d_tau"] is not None]
    if cells:
        worse = sum(d["d_tau_hi"] is not None and d["d_tau_hi"] < 0 for d in cells)
        better = sum(d["d_tau_lo"] is not None and d["d_tau_lo"] > 0 for d in cells)
        mean = sum(d["d_tau"] for d in cells) / len(cells)
        out.append(f"* Fitted vs no-fit early accuracy (`early_acc` − `early_acc_nofit`, {len(cells)} "
                   "architecture × "
                   f"split × window cells): mean Δτ {mean:+.2f}; the fitted model is worse in {worse} and better in "
                   f"{better} cells (interval excluding 0). Hence every comparison above is made against the stronger "
                   "of the two.")
    for fs in ("cmd", "modularity"):
        cells = [d for d in s["paired"] if d["a"] == fs and d["b"] == "graph" and d["d_tau"] is not None]
        if cells:
            out.append(f"* `{fs}` − `graph` over {len(cells)} cells: better in "
                       f"{sum(d['d_tau_lo'] is not None and d['d_tau_lo'] > 0 for d in cells)}, worse in "
                       f"{sum(d['d_tau_hi'] is not None and d['d_tau_hi'] < 0 for d in cells)}, not distinguishable "
                       f"in the rest.")
    sc = s.get("screening")
    if sc:
        out.append("* Screening (the model sees at most 64 columns, screened by |Spearman ρ| on the fit's own rows): "
                   f"on each architecture's `graph+curve` transfer fit at E = {sc[0]['window']} "
                   f"({sc[0]['rows']} rows), the plain screen kept "
                   + ", ".join(f"{x['plain_keeps_curve']} of {x['curve_columns']}" for x in sc)
                   + " curve columns (" + ", ".join(ARCH.get(x["arch"], x["arch"]) for x in sc)
                   + "); the per-family screen now used keeps " + ", ".join(str(x["family_keeps_curve"]) for x in sc)
                   + ". Screening is kept because one fit on all "
                   + "/".join(str(x["columns"]) for x in sc) + " columns takes "
                   + "/".join(f"{1000 * x['fit_s_all_columns']:.0f}" for x in sc) + " ms against "
                   + "/".join(f"{1000 * x['fit_s_screened']:.0f}" for x in sc)
                   + " ms screened (one of thousands of fits per study, on this shared machine).")
    st = s.get("stability")
    if st:
        w_, t_ = st["within_width"], st["transfer"]
        out.append(f"* Stability ({st['perturbation']}): fitted feature sets' τ moves by "
                   f"{w_['mean_abs_d_tau']:.2f} on "
                   f"average (at most {w_['max_abs_d_tau']:.2f}) within width and {t_['mean_abs_d_tau']:.2f} (at most "
                   f"{t_['max_abs_d_tau']:.2f}) in transfer, against median interval widths of "
                   f"{w_['median_interval_width_tau']:.2f} and {t_['median_interval_width_tau']:.2f}; of "
                   f"{st['verdict_cells']} verdicts of `graph` against the stronger early accuracy, "
                   f"{len(st['verdicts_changed'])} change"
                   + (": " + "; ".join(st["verdicts_changed"]) if st["verdicts_changed"] else "")
                   + "." + ("" if s.get("stability_threads") else " Another machine or thread count was not tried."))
    st = s.get("stability_threads")
    if st:
        w_, t_ = st["within_width"], st["transfer"]
        moved = ", ".join(f"{ARCH.get(k, k)} {v['mean']:.3f} (at most {v['max']:.2f})"
                          for k, v in sorted(st["final_acc_abs_change"].items(), key=lambda kv: _archs(s).index(kv[0])
                                             if kv[0] in _archs(s) else 99))
        out.append(f"* Stability against float rounding ({st['perturbation']}; `config/evidence_threads2.yaml`, "
                   f"feature sets {', '.join(f'`{x}`' for x in st['feature_sets'])}): each run's final accuracy moves "
                   f"by {moved} on average, {st['final_acc_identical']} of {st['runs']} runs unchanged; τ moves by "
                   f"{w_['mean_abs_d_tau']:.2f} on average (at most {w_['max_abs_d_tau']:.2f}) within width and "
                   f"{t_['mean_abs_d_tau']:.2f} (at most {t_['max_abs_d_tau']:.2f}) in transfer; of "
                   f"{st['verdict_cells']} verdicts of `graph` against the stronger early accuracy, "
                   f"{len(st['verdicts_changed'])} change"
                   + (": " + "; ".join(st["verdicts_changed"]) if st["verdicts_changed"] else "") + "."
                   + (f" Control: {st['control']['curves_identical']} of {st['control']['runs']} runs retrained with "
                      "one thread by the trainer of the rerun reproduce the study's curves byte for byte "
                      "(`config/evidence_control.yaml`)." if st.get("control") else "")
                   + (f" Compared at commit {st['commit']}; how each study was run: "
                      + "; ".join(f"`{k}`: {v}" for k, v in st["run_time"].items())
                      if st.get("commit") and st.get("run_time") else ""))
    c = _get(s["classification"], arch="lenet", split="within_width", window=pw, feature_set="graph")
    if c:
        if c["accuracy"] > 0.93:
            verdict = "this study reaches it"
        elif c["accuracy_hi"] >= 0.93:
            verdict = "the point estimate is below it, the interval reaches it"
        else:
            verdict = "this study does not reach it (the interval lies below 0.93)"
        base = _get(s["classification"], arch="lenet", split="within_width", window=pw, feature_set="early_acc_nofit")
        out.append(f"* The paper's framing: good vs bad LeNet runs from the graph summary of the first {pw} epochs "
                   f"— accuracy {c['accuracy']:.2f} [{c['accuracy_lo']:.2f}, {c['accuracy_hi']:.2f}] within width "
                   f"(n = {c['n_test']}), against \">93%\" in the earlier paper version: {verdict}"
                   + (f"; the early test accuracy itself, with no model, gives {base['accuracy']:.2f} "
                      f"[{base['accuracy_lo']:.2f}, {base['accuracy_hi']:.2f}]." if base else "."))
    return "\n".join(out)


README_BLOCKS = {"prediction_study": render_study, "prediction_metrics": render_metrics,
                 "prediction_paired": render_paired, "prediction_classification": render_classification,
                 "prediction_findings": render_findings}
SUMMARY = "evidence/digits_evidence/summary.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="evidence")
    ap.add_argument("--config", type=Path, default=REPO / "config" / "evidence.yaml")
    ap.add_argument("--out", type=Path, default=REPO / "evidence" / "digits_evidence")
    ap.add_argument("--readme-only", action="store_true", help="only rewrite README from the committed files")
    a = ap.parse_args(argv)
    if not a.readme_only:
        build(a.study, a.config.resolve(), a.out.resolve())
        rel = os.path.relpath(a.out.resolve(), REPO)
        if rel.startswith("..") or _git("status", "--porcelain", "--", rel):
            print(f"evidence written to {rel}/; commit it, then run again with --readme-only to regenerate README")
            return 0
    sys.path.insert(0, str(REPO / "scripts"))
    import readme_tables

    return readme_tables.main([])


if __name__ == "__main__":
    sys.exit(main())
