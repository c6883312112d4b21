"""Snakemake entry point of rule `cmd_deep`: the full CMD evaluation of one run the config names
(netdyn.cmd.evaluate_run: error and test accuracy of SGD, post-hoc and online CMD weights per snapshot), with
its embedded-CMD twin's accuracy and trained share where cmd.embedded trains one."""
import sys

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, str(__import__("pathlib").Path(sm.scriptdir).parent))  # the netdyn package

from netdyn import runlog  # noqa: E402
from netdyn.cmd import evaluate_run  # noqa: E402
from netdyn.cmd.evaluate import with_embedded  # noqa: E402

runlog.setup(sm.log[0])
cfg = sm.params.cmd
epochs, layers = evaluate_run(sm.params.run_dir, cfg["deep_n_modes"], warmup=cfg["warmup"],
                              data_root=sm.params.data_root, n_samples=cfg["n_samples"], seed=cfg["seed"],
                              bn_images=cfg["bn_images"])
with_embedded(epochs, sm.params.twin_dir).to_csv(sm.output.epochs, index=False)
layers.to_csv(sm.output.mode_layers, index=False)
