#!/usr/bin/env python
"""Wall time of README's two quick-start commands, from a clean clone, as a new user would meet them.

Clones the repository's HEAD into a scratch folder, then times ``bash scripts/study.sh`` (setup on the
first call: a fresh .venv from requirements.lock; then the default study) and ``bash scripts/test.sh``
(the test suite, which .ci/run calls). Setup is timed on its own first, so the study's time is the study.
Writes a JSON with the machine, its load and the commit; README's quick-start block is generated from it
(scripts/readme_tables.py).

    .venv/bin/python bench/quickstart.py --out bench/results/quickstart_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from netdyn.machine import describe  # noqa: E402


def timed(cmd: list[str], cwd: Path, log: Path) -> dict:
    """Run `cmd`, its output to `log`; seconds, exit code and the 1-minute load before and after."""
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
    return {"command": " ".join(cmd), "seconds": round(time.perf_counter() - t0, 1), "exit_code": rc,
            "load_1min_start": round(load0, 2), "load_1min_end": round(os.getloadavg()[0], 2)}


def tests_summary(log: Path) -> str:
    """pytest's closing line, e.g. '535 passed, 1 skipped in 331.14s'."""
    lines = [ln.strip() for ln in log.read_text().splitlines() if " passed" in ln or " failed" in ln]
    return lines[-1] if lines else "(no pytest summary)"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "quickstart_cpu.json")
    ap.add_argument("--keep", action="store_true", help="keep the scratch clone")
    args = ap.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="netdyn-quickstart-"))
    clone = scratch / "netdyn"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout.strip()
    steps = {"setup": timed(["bash", "scripts/setup.sh"], clone, scratch / "setup.log"),
             "study": timed(["bash", "scripts/study.sh"], clone, scratch / "study.log"),
             "tests": timed(["bash", "scripts/test.sh"], clone, scratch / "tests.log")}
    steps["tests"]["summary"] = tests_summary(scratch / "tests.log")
    result = {
        "benchmark": "quickstart", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        # the commit measured is the clone's; describe() would name this (driver) checkout's, "+dirty" and all
        "machine": {**describe(), "commit": commit},
        "steps": steps,
        "note": "setup makes a fresh .venv (pip from requirements.lock); Debian packages were already installed",
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    if not args.keep:
        subprocess.run(["rm", "-rf", str(scratch)])


if __name__ == "__main__":
    main()
