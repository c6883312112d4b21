"""Where a packed training job's time goes besides the SGD steps: evaluation, trajectory snapshots, learning
curves and checkpoints (issue 13: "evaluation and snapshots off the hot path"), measured with cProfile.

    python bench/epoch_overhead.py --device cpu --k 64 --out bench/results/epoch_overhead_cpu.json

Trains K LeNet runs (width 1, digits at 16 px, batch 128, one snapshot per epoch) as one pack through
netdyn.train.train_runs and splits the wall time by the cumulative time of the functions that do each part;
the steps are the rest. On a GPU the steps are asynchronous: the split then shows host time, and the step kernels' time lands in
whichever part synchronises next (usually evaluation). Its ratio column is each part over the steps.

Side by side in one run: the same pack with every file written in the loop (``PackTrainer.background_writes``
off) and on the writer thread (on, the default), after one warm-up run, in alternating pairs;
``wall_in_place_over_background`` (the median of the pairs' ratios) is what moving the writes off the hot
path saves. The parts are those of each way's fastest run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from throughput.project import load_study  # noqa: E402
from throughput.report import write_json  # noqa: E402

from netdyn.config import expand_grid  # noqa: E402
from netdyn.machine import describe  # noqa: E402
from netdyn.train import PackTrainer, train_runs  # noqa: E402

PARTS = {  # part: the functions (file suffix, name) whose cumulative time it is (see _cumulative)
    "evaluation": [("netdyn/train.py", "evaluate")],
    "trajectory snapshots": [("netdyn/trajectory.py", "append_row"), ("netdyn/train.py", "_member_rows")],
    "learning curves": [("netdyn/rundir/files.py", "write_curves")],
    "checkpoints": [("netdyn/train.py", "_save_checkpoint")],
    "waiting for queued writes": [("netdyn/rundir/background.py", "drain")],
    "opening and finishing runs": [("netdyn/member.py", "open_member"), ("netdyn/member.py", "finish")],
}
STEPS = "steps and the rest (forward, backward, SGD, augmentation, loop)"


def _cumulative(stats: pstats.Stats, file_suffix: str, func: str) -> float:
    """Cumulative seconds of `func`, less its calls from another PARTS function (finish writes the curves too:
    that time belongs to one part, not two)."""
    others = {name for fs in PARTS.values() for _, name in fs if name != func}
    total = 0.0
    for (path, _line, name), (_cc, _nc, _tt, ct, callers) in stats.stats.items():
        if path.endswith(file_suffix) and name == func:
            total += ct - sum(c[3] for (_p, _l, caller), c in callers.items() if caller in others)
    return total


def _profiled_run(specs, device: str) -> dict:
    """Train the pack once under cProfile: wall time and its split into PARTS and the steps."""
    with tempfile.TemporaryDirectory() as out:
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        train_runs(specs, out, device=device, pack="always")
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        prof.disable()
        wall = time.perf_counter() - t
    stats = pstats.Stats(prof)
    parts = {part: round(sum(_cumulative(stats, p, f) for p, f in fs), 3) for part, fs in PARTS.items()}
    steps = round(wall - sum(parts.values()), 3)
    parts = {STEPS: steps, **parts}
    return {"wall_s": round(wall, 3), "seconds": parts, "share_of_wall": {p: round(v / wall, 3) for p, v in parts.items()},
            "over_steps": {p: round(v / steps, 3) for p, v in parts.items()} if steps else None}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="alternating pairs (in place, background) after a warm-up")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    cfg, _ = load_study({  # the GPU image has no jsonschema: load_study fills the schema's defaults itself
        "study": "epoch_overhead", "device": a.device, "data": {"image_size": 16}, "datasets": ["digits"],
        "architectures": [{"name": "lenet"}], "widths": [1], "seeds": [0],
        "hyperparameters": {"learning_rate": [round(0.001 * (i + 1), 6) for i in range(a.k)]},
        "training": {"epochs": a.epochs, "batch_size": 128, "dtype": "float32", "pack": "always"}})
    specs = expand_grid(cfg)
    _profiled_run(specs, a.device)  # warm-up (allocator, cuDNN autotuning, first-touch of the data)
    runs = {"in_place": [], "background": []}
    for _ in range(a.repeats):  # side by side, alternating: the same pack with its files written either way
        for writes in runs:
            PackTrainer.background_writes = writes == "background"
            runs[writes].append(_profiled_run(specs, a.device))
    PackTrainer.background_writes = True
    ratios = [p["wall_s"] / b["wall_s"] for p, b in zip(runs["in_place"], runs["background"])]
    fastest = {w: min(rs, key=lambda r: r["wall_s"]) for w, rs in runs.items()}
    result = {"benchmark": "epoch_overhead", "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              "settings": {"arch": "lenet", "width": 1, "dataset": "digits", "image_size": 16, "k": a.k,
                           "epochs": a.epochs, "batch_size": 128, "snapshots_per_run": a.epochs + 1,
                           "writes": "in_place: every file written in the loop; background: on the writer thread "
                                     "(netdyn.rundir.background); cProfile sees the training thread only, so in "
                                     "the background run a part's time is what the loop still spends on it"},
              "machine": describe(a.device), **fastest["in_place"], "background_writes": fastest["background"],
              "wall_s_all": {w: [r["wall_s"] for r in rs] for w, rs in runs.items()},
              "wall_in_place_over_background_all": [round(x, 3) for x in ratios],
              "wall_in_place_over_background": round(statistics.median(ratios), 3)}
    write_json(result, a.out)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
