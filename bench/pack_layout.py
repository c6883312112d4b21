"""Pack layouts side by side (training.pack_layout): one training step (forward, loss, backward) of the same pack
in each layout of netdyn.packed.LAYOUTS, timed by the probe that `auto` uses (netdyn.plan.probe_layouts:
warm-up steps, then the median of the timed ones), per architecture, width and pack size.

First, on the device measured, every layout is checked against the members' own models (:func:`check_layouts`,
float64: outputs, gradients and running statistics of each member after a few training-mode steps); a layout
that mixes members -- a side stream read before it was written, say -- stops the benchmark (exit 1).

    .venv/bin/python bench/pack_layout.py --device cpu --threads 1 --out bench/results/pack_layout_cpu.json
    python bench/pack_layout.py --device cuda --dataset cifar10 --image-size 32 --blocks lenet:1 vgg11bn:4 \\
        resnet20:8 --ks 11 72 --precision bf16 --out pack_layout_cuda.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from throughput.project import load_study  # noqa: E402
from throughput.report import write_json  # noqa: E402

from netdyn.config import expand_grid  # noqa: E402
from netdyn.data import dataset_info  # noqa: E402
from netdyn.machine import describe  # noqa: E402
from netdyn.models import build_model  # noqa: E402
from netdyn.packed import LAYOUTS, member_state, pack_inputs, pack_models  # noqa: E402
from netdyn.plan import probe_layouts  # noqa: E402

ARCH_ENTRIES = {"lenet": {"name": "lenet"}, "alexnet": {"name": "alexnet"},
                "vgg11bn": {"name": "vgg", "depth": 11, "batchnorm": True}, "resnet8": {"name": "resnet", "depth": 8},
                "resnet20": {"name": "resnet", "depth": 20}}


def spec_for(arch: str, width: int, dataset: str, image_size: int, precision: str, batch_size: int):
    """One run of the block, as the workflow would define it."""
    cfg, _ = load_study({"study": "pack_layout", "data": {"image_size": image_size}, "datasets": [dataset],
                         "architectures": [ARCH_ENTRIES[arch]], "widths": [width], "seeds": [0],
                         "hyperparameters": {"learning_rate": [0.01]},
                         "training": {"epochs": 1, "batch_size": batch_size, "dtype": "float32",
                                      "precision": precision}})
    return expand_grid(cfg)[0]


CHECK_ARCHS = {"lenet": dict(arch="lenet", image_size=16), "vgg11bn": dict(arch="vgg", depth=11, batchnorm=True,
                                                                         image_size=8),
               "resnet8": dict(arch="resnet", depth=8, image_size=8)}
CHECK_TOLERANCE = 1e-9  # float64, relative: other kernels only sum in another order (~1e-16 per op)


def check_layouts(device: torch.device, k: int = 10, batch: int = 4, steps: int = 3) -> list[dict]:
    """Per architecture of CHECK_ARCHS and layout: how far a float64 pack of `k` members is from the members run
    alone on `device` -- their outputs, gradients and running statistics over `steps` forward/backward passes
    in training mode, each on new data -- as the largest absolute difference over the largest absolute value of
    its kind (per tensor would divide by gradients that are zero up to rounding, e.g. behind a BatchNorm over
    two samples). k above netdyn.packed.SIDE_STREAMS sends two members to one side stream."""
    rows = []
    for arch, kw in CHECK_ARCHS.items():
        models = []
        for m in range(k):
            torch.manual_seed(100 + m)
            models.append(build_model(**kw, width=1, in_channels=1, num_classes=10).double().to(device).train())
        for layout in LAYOUTS:
            packed = pack_models([copy.deepcopy(m) for m in models], seeds=list(range(k)), layout=layout).train()
            solo = [copy.deepcopy(m) for m in models]
            diff = dict.fromkeys(("outputs", "gradients", "state"), 0.0)
            scale = dict(diff)

            def compare(kind, got, ref):
                got, ref = got.detach().double(), ref.detach().double()
                diff[kind] = max(diff[kind], float((got - ref).abs().max()))
                scale[kind] = max(scale[kind], float(ref.abs().max()))

            g = torch.Generator().manual_seed(0)
            for _ in range(steps):
                x = torch.randn(k, batch, 1, kw["image_size"], kw["image_size"], generator=g, dtype=torch.float64)
                x = x.to(device)
                out = packed(pack_inputs(x))
                out.square().sum().backward()
                grads = dict(packed.named_parameters())
                for i, m in enumerate(solo):
                    ref = m(x[i])
                    ref.square().sum().backward()
                    compare("outputs", out[i], ref)
                    for n, p in m.named_parameters():
                        compare("gradients", grads[n].grad[i], p.grad)
                    state = member_state(packed, i)
                    for n, v in m.state_dict().items():
                        compare("state", state[n], v)
            relative = {kind: diff[kind] / (scale[kind] or 1.0) for kind in diff}
            rows.append({"arch": arch, "layout": layout, "k": k, "max_relative_difference": relative,
                         "ok": max(relative.values()) <= CHECK_TOLERANCE})
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--blocks", nargs="+", default=["lenet:1", "lenet:3", "vgg11bn:1", "vgg11bn:3", "resnet8:1",
                                                    "resnet8:3"], help="arch:width, archs: " + ", ".join(ARCH_ENTRIES))
    ap.add_argument("--ks", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--precision", default="tf32")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", nargs=2, type=int, default=[2, 5], metavar=("WARMUP", "TIMED"))
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (training jobs use training.threads)")
    ap.add_argument("--check-members", type=int, default=10, help="pack size of the correctness check (0: no check)")
    ap.add_argument("--check-only", action="store_true", help="the correctness check alone, no timing (the "
                    "projection's layout probes time the layouts of every block it measures)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    if a.check_only and not a.check_members:
        ap.error("--check-only needs --check-members > 0")
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as train_runs sets it
    info = dataset_info(a.dataset, a.image_size)
    result = {"benchmark": "pack_layout", "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              "settings": {"dataset": a.dataset, "image_size": a.image_size, "precision": a.precision,
                           "batch_size": a.batch_size, "warmup_steps": a.steps[0], "timed_steps": a.steps[1],
                           "what_is_timed": "median seconds of one step (forward, loss, backward; no SGD update, "
                                            "evaluation or files) of one fresh pack of K on random data, "
                                            "switched from layout to layout"},
              "machine": describe(device), "rows": []}
    if a.check_members:
        checked = check_layouts(device, a.check_members)
        result["layout_check"] = {"tolerance": CHECK_TOLERANCE, "dtype": "float64", "rows": checked}
        write_json(result, a.out)
        wrong = [f"{r['arch']} {r['layout']} {r['max_relative_difference']}" for r in checked if not r["ok"]]
        if wrong:
            sys.exit("layouts whose members differ from their own models: " + "; ".join(wrong))
        print(f"layout check: all {len(checked)} (architecture, layout) pairs of K={a.check_members} float64 "
              f"members equal their own models within {CHECK_TOLERANCE:g}", flush=True)
    for block in [] if a.check_only else a.blocks:
        arch, width = block.split(":")
        spec = spec_for(arch, int(width), a.dataset, a.image_size, a.precision, a.batch_size)
        for k in a.ks:
            times, failed = probe_layouts(spec, info, device, k, list(LAYOUTS), tuple(a.steps))
            row = {"arch": arch, "width": int(width), "k": k, "seconds_per_step": times,
                   "images_per_s_per_model": {name: a.batch_size / t for name, t in times.items()}}
            if failed:  # out of memory, say: recorded, the others still measured
                row["failed"] = {name: why[:200] for name, why in failed.items()}
            if times:
                row["fastest"] = min(times, key=times.get)
                if "grouped" in times:
                    row["over_grouped"] = {name: times["grouped"] / t for name, t in times.items()}
            result["rows"].append(row)
            write_json(result, a.out)
            print(json.dumps({key: row.get(key) for key in ("arch", "width", "k", "fastest", "over_grouped")}),
                  flush=True)
    return result


if __name__ == "__main__":
    main()
