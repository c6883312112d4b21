"""Command line of bench/train_throughput.py (options grouped by the part of the run they steer)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .common import RESUME_REFUSED_EXIT, ResumeRefused
from .run import parse_variant, run_benchmark
from .report import print_table
from .trainer import ARCHS

EXAMPLES = """examples:
  .venv/bin/python bench/train_throughput.py --device cpu --quick --out bench/results/train_throughput_cpu.json
  python bench/train_throughput.py --device cuda --archs lenet vgg --widths 1 4 --ks 1 8 32 128 \\
      --images 10000 --precisions bf16 fp32 --out train_throughput_cuda.json
  python bench/train_throughput.py --device cuda --no-table --project config/paper.yaml --out projection.json
What is timed: bench/throughput/trainer.py and the JSON's settings.what_is_timed."""


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="Training throughput: netdyn's packed trainer against its single-run "
                                             "trainer and a seed-style loop; projection of a study config.",
                                 epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write (rewritten after every measurement)")
    ap.add_argument("--machine-label", default=None, help="free text naming the machine, kept in the JSON")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: torch's). The default study trains with 1 thread per job; "
                         "on a shared, loaded CPU 2 threads can collapse (OpenMP oversubscription)")
    ap.add_argument("--strict", action="store_true", help="stop at the first error instead of recording it")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed epochs per config after the warm-up; the fastest counts (default 1, quick 2)")

    t = ap.add_argument_group("main table")
    t.add_argument("--no-table", dest="table", action="store_false", help="skip the main table")
    t.add_argument("--quick", action="store_true", help="CPU/CI sizes: 1500 images, K in {1, 4}, width 1")
    t.add_argument("--archs", nargs="+", choices=sorted(ARCHS), default=None)
    t.add_argument("--widths", nargs="+", type=int, default=None)
    t.add_argument("--ks", nargs="+", type=int, default=None, help="pack sizes (K=1 is always measured)")
    t.add_argument("--images", type=int, default=None, help="training images = images timed per model")
    t.add_argument("--test-images", type=int, default=256)
    t.add_argument("--workers", type=int, default=None, help="seed-loop DataLoader workers (default 4 on cuda, 1 on cpu)")
    t.add_argument("--time-budget", type=float, default=None,
                   help="seconds for the main table; later configs are skipped (and recorded as such)")
    t.add_argument("--config-grace", type=float, default=60.0,
                   help="a measurement begun within its budget is aborted this many seconds after it")
    t.add_argument("--no-seed-loop", action="store_true")
    t.add_argument("--profile-steps", type=int, default=0,
                   help="after the timed epoch, profile this many steps (kernel time, kernels per step)")
    t.add_argument("--no-cudnn-benchmark", dest="cudnn_benchmark", action="store_false",
                   help="cuda: leave cuDNN autotuning off (netdyn's train_runs switches it on)")
    t.add_argument("--precisions", nargs="*", default=[],
                   help="re-measure the largest pack per (arch, width) at these training.precision values")
    t.add_argument("--variants", nargs="*", default=[],
                   help="re-measure the largest pack per (arch, width) with these settings, after --precisions: "
                        "'+'-joined training.precision / training.pack_layout values and 'compile', e.g. "
                        "per_member_channels_last bf16+grouped_channels_last compile")
    t.add_argument("--variant-budget", "--precision-budget", dest="variant_budget", type=float, default=90.0,
                   help="seconds for all --precisions and --variants")
    t.add_argument("--pack-check", dest="pack_check", action="store_true", default=None,
                   help="per-model speed of K=1/4/8 packs on 16x16 digits (default: on for cpu)")
    t.add_argument("--no-pack-check", dest="pack_check", action="store_false")

    p = ap.add_argument_group("projection of a study config")
    p.add_argument("--project", default=None, help="study config to project, e.g. config/paper.yaml")
    p.add_argument("--project-precision", default=None, help="override the config's training.precision")
    p.add_argument("--proj-blocks", nargs="+", default=None,
                   help="measure only these blocks, as arch_label:width (e.g. lenet:1 vgg11bn:4); default all")
    p.add_argument("--proj-datasets", nargs="+", default=None,
                   help="measure only blocks of these data sets (e.g. cifar10); the others are estimated from the "
                        "same architecture and width; default all")
    p.add_argument("--project-budget", type=float, default=180.0, help="seconds for the projection measurements")
    p.add_argument("--proj-warmup", type=int, default=5)
    p.add_argument("--proj-steps", type=int, default=30)
    p.add_argument("--proj-eval-images", type=int, default=2048)
    p.add_argument("--project-resume", type=Path, default=None, metavar="JSON",
                   help="an earlier result of the same projection on this kind of device: its measurements are kept "
                        "and only the rest is measured (e.g. a second GPU session completing the first one's)")
    return ap


def main(argv=None) -> dict:
    ap = parser()
    a = ap.parse_args(argv)
    for name in a.precisions + a.variants:
        try:
            parse_variant(name)
        except ValueError as err:
            ap.error(str(err))
    if a.threads:
        torch.set_num_threads(a.threads)
    a.argv = sys.argv[1:] if argv is None else list(argv)
    try:
        res = _run(a)
    except ResumeRefused as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(RESUME_REFUSED_EXIT)
    print_table(res)
    if a.out:
        print(f"\nwrote {a.out}")
    return res


def _run(a) -> dict:
    quick = a.quick
    return run_benchmark(
        device=a.device, archs=a.archs or ["lenet", "vgg"], widths=a.widths or ([1] if quick else [1, 4]),
        ks=a.ks or ([1, 4] if quick else [1, 8, 32, 128]), images=a.images or (1500 if quick else 50000),
        test_images=a.test_images, workers=a.workers, table=a.table, time_budget=a.time_budget,
        config_grace=a.config_grace, seed_loop=not a.no_seed_loop, variants=a.precisions + a.variants,
        variant_budget=a.variant_budget, pack_check=a.pack_check, project_config=a.project,
        project_budget=a.project_budget, project_precision=a.project_precision,
        project_blocks=a.proj_blocks, project_datasets=a.proj_datasets, proj_warmup=a.proj_warmup,
        proj_steps=a.proj_steps, proj_eval_images=a.proj_eval_images, profile_steps=a.profile_steps,
        cudnn_benchmark=a.cudnn_benchmark, out=a.out, machine_label=a.machine_label,
        repeats=a.repeats or (2 if quick else 1), strict=a.strict, project_resume=a.project_resume,
        extra_settings={"quick": quick, "argv": a.argv})
