"""Snakemake entry point of rule `cmd_group`: the cheap CMD pass and early-window features of one training
group's runs (see netdyn.cmd.stage)."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

import logging  # noqa: E402

import pandas as pd  # noqa: E402

from netdyn import runlog  # noqa: E402
from netdyn.cmd import CMDError  # noqa: E402
from netdyn.cmd.evaluate import MODE_LAYER_COLUMNS  # noqa: E402
from netdyn.cmd.stage import SNAPSHOT_COLUMNS, early_features, run_modes  # noqa: E402
from netdyn.rundir import open_trajectory  # noqa: E402

runlog.setup(sm.log[0])
cfg = sm.params.cmd
snaps, layers, feats = [], [], []
for run_dir in sm.params.run_dirs:
    traj = open_trajectory(run_dir)
    try:
        s, lay = run_modes(traj, cfg["n_modes"], n_samples=cfg["n_samples"], seed=cfg["seed"])
        f = early_features(traj, sm.params.windows, cfg["feature_modes"], n_samples=cfg["n_samples"], seed=cfg["seed"])
    except CMDError as e:  # e.g. a run diverged at once: recorded as missing features, never a failed study
        logging.warning("%s", e)
        feats.append(pd.DataFrame({"run_id": traj.run_id, "window": sm.params.windows}))
        continue
    snaps.append(s), layers.append(lay), feats.append(f)
    logging.info("%s: relative error at the last snapshot %s", traj.run_id,
                 s.groupby("n_modes")["rel_error"].last().round(4).to_dict())
pd.concat(snaps or [pd.DataFrame(columns=SNAPSHOT_COLUMNS)], ignore_index=True).to_csv(sm.output.snapshots, index=False)
pd.concat(layers or [pd.DataFrame(columns=MODE_LAYER_COLUMNS)], ignore_index=True).to_csv(sm.output.mode_layers,
                                                                                          index=False)
pd.concat(feats, ignore_index=True).to_csv(sm.output.features, index=False)
