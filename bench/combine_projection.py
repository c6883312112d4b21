"""Combine the two GPU projections of config/paper.yaml into one table.

The first device call (bench/gpu_checks.sh) measured the wide packs (widths 4 and 8) before its budget ran
out; the second measured the narrow ones (bench/paper_narrow.yaml, widths 1 and 2). Each (arch, data set,
width) block is taken from the call that measured all of its packs; blocks neither call measured in full are
listed as such, never filled in.

    .venv/bin/python bench/combine_projection.py > bench/results/paper_projection_h100.json
"""
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
wide = json.loads((RESULTS / "train_throughput_cuda_h100.json").read_text())["projection"]["rows"]
narrow = json.loads((RESULTS / "train_throughput_cuda_h100_narrow.json").read_text())["projection"]["rows"]


def measured_in_full(row):
    return all(p.get("source") == "measured" for p in row["packs"])


blocks = {}
for source, rows in (("first call (widths 4, 8)", wide), ("second call (widths 1, 2)", narrow)):
    for r in rows:
        key = (r["arch"], r["dataset"], r["width"])
        if measured_in_full(r) and key not in blocks:
            blocks[key] = {"arch": r["arch"], "dataset": r["dataset"], "width": r["width"], "runs": r["runs"],
                           "packs": [p["k"] for p in r["packs"]], "hours": round(r["hours"], 3), "source": source}
missing = sorted({(r["arch"], r["dataset"], r["width"]) for r in wide} - set(blocks))
partial = [
    {"arch": r["arch"], "dataset": r["dataset"], "width": r["width"], "hours_partly_estimated": round(r["hours"], 3),
     "packs": r["packs"]}
    for r in wide if (r["arch"], r["dataset"], r["width"]) in missing
]
total = sum(b["hours"] for b in blocks.values())
out = {"device": wide and json.loads((RESULTS / "train_throughput_cuda_h100.json").read_text())["machine"],
       "config": "config/paper.yaml", "runs_total": sum(r["runs"] for r in wide),
       "measured_blocks": sorted(blocks.values(), key=lambda b: -b["hours"]),
       "hours_measured_blocks": round(total, 2), "not_measured_in_full": partial,
       "hours_including_partly_estimated_blocks": round(total + sum(p["hours_partly_estimated"] for p in partial), 2)}
json.dump(out, sys.stdout, indent=1)
print(f"\nmeasured {len(blocks)} of {len(wide)} blocks: {total:.1f} h; with partly estimated blocks "
      f"{out['hours_including_partly_estimated_blocks']:.1f} h; not measured in full: {missing}", file=sys.stderr)
