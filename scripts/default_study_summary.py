"""Commit what the default study shows for CMD, modularity and pruning: a small JSON (and the small tables it is
made from) under evidence/default_study/, from which scripts/readme_tables.py writes README's numbers.

    python scripts/default_study_summary.py [--results results/default] [--out evidence/default_study]
    python scripts/readme_tables.py          # README's generated blocks from the committed files

Run it after `snakemake --cores 2` (the default study) on a clean checkout: the JSON records the commit,
whether netdyn/ had uncommitted changes, the machine and the config's hash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from netdyn.machine import describe, one_line  # noqa: E402
TABLES = ["cmd.csv", "cmd_epochs.csv", "modularity_plateaus.csv", "pruning.csv", "pruning_summary.csv"]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def _records(df: pd.DataFrame) -> list[dict]:
    return json.loads(df.to_json(orient="records", double_precision=6))


def cmd_summary(tables: Path) -> dict:
    """Deep runs: final accuracy of SGD, post-hoc, online and embedded CMD per M; cheap pass: median final
    relative error per architecture and M."""
    cmd = pd.read_csv(tables / "cmd.csv")
    deep = cmd[cmd.analysis == "deep"][["run_id", "arch_label", "n_modes", "modes_found", "rel_error_final", "acc_sgd",
                                       "acc_sgd_bn_recomputed", "acc_cmd", "acc_online_cmd", "acc_embedded_cmd",
                                       "trained_fraction_final"]]
    # how far one run's accuracy moves in one epoch: the SGD weights' accuracy one snapshot before the last
    epochs = pd.read_csv(tables / "cmd_epochs.csv").sort_values("snapshot")
    previous = epochs.groupby(["run_id", "n_modes"]).acc_sgd.agg(lambda x: x.iloc[-2]).rename("acc_sgd_previous")
    deep = deep.merge(previous.reset_index(), on=["run_id", "n_modes"], how="left")
    cheap = cmd[(cmd.analysis == "cheap") & (cmd.status == "complete")]
    errors = (cheap.groupby(["arch_label", "n_modes"]).rel_error_final
              .agg(n_runs="size", median="median", q90=lambda x: x.quantile(0.9)).reset_index())
    return {"deep": _records(deep.sort_values(["run_id", "n_modes"])), "cheap_rel_error": _records(errors)}


def modularity_summary(tables: Path) -> dict:
    """Per architecture: Q of the first and the last layer at the final snapshot (median over the runs that
    learned, as plateau detection reads them), and the plateau table."""
    runs = pd.read_csv(tables / "runs.csv")
    q = pd.read_csv(tables / "modularity.csv")
    plateaus = pd.read_csv(tables / "modularity_plateaus.csv")
    fraction = float(plateaus.learned_fraction.iloc[0])
    best = runs.groupby(["arch_label", "dataset"]).final_test_acc.transform("max")
    learned = runs[(runs.status == "complete") & (runs.final_test_acc >= fraction * best)]
    last = q[q.epoch == q.groupby("run_id").epoch.transform("max")].merge(learned[["run_id", "arch_label"]], on="run_id")
    rows = []
    for arch, g in last.groupby("arch_label"):
        per_run = g.sort_values("layer_index").groupby("run_id").q_mean
        first, final = per_run.first(), per_run.last()
        n_layers = int(g.layer_index.max()) + 1
        rows.append({"arch_label": arch, "n_runs": int(per_run.ngroups), "n_layers": n_layers,
                     "q_first_median": float(first.median()), "q_last_median": float(final.median()),
                     "q_max_median": float(g.groupby("run_id").q_mean.max().median()),
                     "rises_runs": int((final > first).sum())})
    return {"learned_fraction": fraction, "layers": rows,
            "plateaus": _records(plateaus.drop(columns=["threshold", "min_run", "learned_fraction"], errors="ignore"))}


def pruning_summary(tables: Path) -> dict | None:
    path = tables / "pruning_summary.csv"
    return {"summary": _records(pd.read_csv(path))} if path.exists() else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=REPO / "results/default")
    ap.add_argument("--out", type=Path, default=REPO / "evidence/default_study")
    ap.add_argument("--config", type=Path, default=REPO / "config/config.yaml")
    ap.add_argument("--wall-seconds", type=float, default=None, help="measured time of the study, if known")
    ap.add_argument("--note", default="", help="how the study was run, in words (recorded as given)")
    a = ap.parse_args(argv)
    tables = a.results / "tables"
    a.out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        if (tables / name).exists():
            shutil.copyfile(tables / name, a.out / name)
    dirty = _git("status", "--porcelain", "--", "netdyn", "scripts", "workflow", "Snakefile")
    summary = {
        "what": "the default study (config/config.yaml) run end to end; numbers README cites",
        "commit": _git("rev-parse", "HEAD"), "uncommitted_changes": bool(dirty), "machine": one_line(describe()),
        "config_sha256": hashlib.sha256(a.config.read_bytes()).hexdigest(), "wall_seconds": a.wall_seconds,
        "note": a.note,
        "cmd": cmd_summary(tables), "modularity": modularity_summary(tables), "pruning": pruning_summary(tables),
    }
    (a.out / "summary.json").write_text(json.dumps(summary, indent=1, default=lambda v: None if v is np.nan else v) + "\n")
    print(f"wrote {a.out / 'summary.json'} and {len(list(a.out.glob('*.csv')))} tables")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
