"""Snakemake entry point of rule `predict` (see netdyn.predict.run_prediction)."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import pandas as pd  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.graphs import temporal_summary  # noqa: E402
from netdyn.predict import run_prediction  # noqa: E402

runlog.setup(sm.log[0])
cfg = sm.params.predict
runs = pd.read_csv(sm.input.runs)
signatures = pd.read_csv(sm.input.signatures)
epochs = sorted(signatures["epoch"].unique())  # one snapshot schedule for the whole grid: equal columns
summaries = {e: temporal_summary(signatures, window=e, epochs=[x for x in epochs if x <= e]) for e in cfg["windows"]}
tables = {}
if "modularity" in sm.input.keys():  # Q per layer at the early snapshots (netdyn.modularity.stage)
    from netdyn.modularity.stage import early_window_features

    modularity = pd.read_csv(sm.input.modularity)
    tables["modularity"] = {e: early_window_features(modularity, e) for e in cfg["windows"]}
if "cmd" in sm.input.keys():  # CMD of the early window, one row per run and window (netdyn.cmd.stage)
    cmd = pd.concat([pd.read_csv(p) for p in sm.input.cmd], ignore_index=True)
    tables["cmd"] = {e: cmd[cmd.window == e].drop(columns="window").set_index("run_id") for e in cfg["windows"]}
out = run_prediction(runs, sm.params.runs_dir, summaries, cfg, n_jobs=sm.threads, tables=tables)
out["predictions"].to_csv(sm.output.predictions, index=False)
out["metrics"].to_csv(sm.output.metrics, index=False)
out["importances"].to_csv(sm.output.importances, index=False)
