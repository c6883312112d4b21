"""bench/modularity.py end to end at a tiny size: it writes its JSON, both paths give the float64
reference's Q, and it records machine, load and commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_modularity_benchmark_tiny(tmp_path):
    out = tmp_path / "modularity.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "modularity.py"), "--n", "60", "--width", "1",
                    "--repeats", "1", "--out", str(out)],
                   check=True, capture_output=True, env={**os.environ, "BENCH_THREADS": "1"})
    res = json.loads(out.read_text())
    for key in ("platform", "cpu_count", "torch", "commit", "loadavg_start", "loadavg_end"):
        assert key in res["machine"]
    assert res["settings"]["n"] == 60 and res["settings"]["layers"] == 10
    assert res["widest_layer"]["layer"] == "features.0" and res["widest_layer"]["d"] == 8 * 32 * 32
    for path in ("ours", "dense"):
        assert res["widest_layer"]["peak_memory_measured"][path]["host_peak_rise_mb"] >= 0
        assert res["snapshot"][f"{path}_s"] > 0
    assert set(res["snapshot"]["ours_stages_s"]) >= {"forward", "similarity", "topk", "modularity"}
    assert res["same_q"]["max_ours_vs_float64"] < 1e-6
    assert len(res["same_q"]["layers"]) == 10
