"""A synthetic study for the prediction tests (curves.csv files and graph summary tables written here).

It hides each run's quality u in one early feature - the training loss at epoch 1 and one graph column -
while the early test accuracy is noise: a working predictor must beat the trivial baseline. Final
accuracy = 0.1 + 0.8 u^2; lr 0.3, dropout 0, seed 1 diverges at epoch 1.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from netdyn.models import build_model
from netdyn.trajectory import TrajectoryWriter

ARCHS = ("lenet", "vgg11bn")
WIDTHS = (1, 2, 3)
LRS = (0.01, 0.03, 0.1, 0.3)
EPOCHS = (0.0, 0.5, 1.0, 2.0, 3.0)
FAST = {  # small trees: the tests check behaviour, not accuracy
    "train_widths": [1], "windows": [1, 2], "feature_sets": ["early_acc", "curve", "graph", "graph+curve"],
    "folds": 4, "bootstrap": 200, "top_fraction": 0.1, "seed": 0,
    "xgboost": {"n_estimators": 40, "max_depth": 2, "learning_rate": 0.15, "subsample": 0.8},
    "tune": {"max_depth": [2, 3], "n_estimators": [20, 40]},
}


def _curves_rows(u: float, rng, diverge_at: float | None) -> list[dict]:
    rows = []
    for i, e in enumerate(EPOCHS):
        row = {"snapshot": i, "epoch": e, "step": int(e * 10), "lr": 0.1,
               "train_loss": np.nan if e == 0 else 2.3 - 2.0 * u * min(e, 1.0) + 0.01 * rng.normal(),
               "train_acc": np.nan if e == 0 else rng.uniform(0.1, 0.3),
               "test_loss": 2.3 + 0.05 * rng.normal(), "test_acc": rng.uniform(0.1, 0.3)}
        if diverge_at is not None and e >= diverge_at:
            rows.append({**row, "snapshot": -1, "train_loss": np.nan, "test_loss": np.nan, "test_acc": 0.1})
            break
        rows.append(row)
    return rows


def make_study(root, archs=ARCHS, widths=WIDTHS, seed=0):
    """Runs table, runs directory (curves.csv only) and graph summaries {E: table} of a synthetic study."""
    rng = np.random.default_rng(seed)
    records, quality = [], {}
    for arch, w, lr, do, s in itertools.product(archs, widths, LRS, (0.0, 0.5), (0, 1)):
        run_id = f"{arch}-digits-w{w}-lr{lr:g}-do{do:g}-wd0-s{s}"
        u = rng.uniform()
        diverge_at = 1.0 if (lr == 0.3 and s == 1 and do == 0.0) else None
        rows = _curves_rows(u, rng, diverge_at)
        d = root / run_id
        d.mkdir(parents=True)
        pd.DataFrame(rows).to_csv(d / "curves.csv", index=False)
        final = 0.1 if diverge_at is not None else 0.1 + 0.8 * u ** 2
        quality[run_id] = np.nan if diverge_at is not None else u
        records.append({"run_id": run_id, "arch": {"vgg11bn": "vgg"}.get(arch, arch), "arch_label": arch,
                        "dataset": "digits", "width": w, "learning_rate": lr, "dropout": do, "weight_decay": 0.0,
                        "seed": s, "epochs": 3, "status": "diverged" if diverge_at is not None else "complete",
                        "diverged_epoch": diverge_at, "final_test_acc": final})
    runs = pd.DataFrame(records)
    graphs = {}
    for E in (1, 2, 3):
        cols = {}
        for e in [x for x in EPOCHS if x <= E]:
            q = runs["run_id"].map(quality).to_numpy()
            cols[f"all.strength.mean@e{e:g}"] = q + 0.02 * rng.normal(size=len(runs)) if e >= 1 else \
                rng.normal(size=len(runs))
            for k in range(6):
                cols[f"features.{k}.eigenvector.std@e{e:g}"] = rng.normal(size=len(runs))
            if e > 0:
                cols[f"d(all.strength.mean)@e{e:g}"] = rng.normal(size=len(runs))
        graphs[E] = pd.DataFrame(cols, index=pd.Index(runs["run_id"], name="run_id"))
    return runs, root, graphs


def pooled(metrics, split, subset="all"):
    """Metrics pooled over test widths, indexed by arch x feature set x window."""
    m = metrics[(metrics["split"] == split) & (metrics["subset"] == subset) & metrics["test_width"].isna()]
    return m.set_index(["arch", "feature_set", "window"])


def write_run(root, run_id, epochs, seed):
    """A real LeNet trajectory (random steps) with constant curves; returns the state at every epoch."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    model = build_model("lenet", width=1, in_channels=1, image_size=16, num_classes=10)
    arch = {"arch": "lenet", "width": 1, "in_channels": 1, "image_size": 16, "num_classes": 10}
    w = TrajectoryWriter(root / run_id, model.state_dict(), run_id=run_id, arch=arch)
    states = {}
    for i, e in enumerate(epochs):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
        w.append(model.state_dict(), epoch=e, step=i, label=f"epoch {e:g}")
        states[e] = {k: v.clone().numpy() for k, v in model.state_dict().items()}
    rows = [{"snapshot": i, "epoch": e, "step": i, "lr": 0.1, "train_loss": 1.0, "train_acc": 0.5,
             "test_loss": 1.0, "test_acc": 0.5} for i, e in enumerate(epochs)]
    pd.DataFrame(rows).to_csv(root / run_id / "curves.csv", index=False)
    return states
