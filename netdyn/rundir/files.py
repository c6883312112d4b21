"""A run's small files (config.json, result.json, curves.csv): atomic writes and checked reads.

Every write goes to ``<name>.tmp`` and is renamed over ``<name>``, so a kill or a full disk leaves the
old file or the new one, never a part. Errors name the run and the file.
"""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import pandas as pd

from .names import CONFIG, CURVES, RESULT, TMP_SUFFIX

CURVE_COLUMNS = ["snapshot", "epoch", "step", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]


class RunMissingError(FileNotFoundError):
    """A run the caller expects has not (fully) been trained."""


class RunFileError(ValueError):
    """A run file that exists but cannot be read."""


class RunMismatchError(RuntimeError):
    """A run directory holds results of different settings under the same run id."""


def store_error(err: OSError, path: Path, doing: str) -> OSError:
    """`err` (disk full, permissions, ...) as an OSError of the same errno naming the run and the file."""
    hint = ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = ("; the disk is full: free space and run again - a run resumes from its last checkpoint, and "
                "nothing written before is lost")
    return OSError(err.errno, f"run {path.parent.name}: {doing} {path} failed: {err.strerror or err}{hint}")


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` through ``path.tmp`` and one rename."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise store_error(e, path, "writing") from e


def read_json(path: Path) -> dict:
    path = Path(path)
    run = path.parent.name
    if not path.exists():
        raise RunMissingError(f"run {run}: {path} is missing; train the run first (snakemake ... train)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RunFileError(f"run {run}: {path} is not valid JSON ({e})") from None


def write_json(path: Path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=1))


def read_config(run_dir: str | Path) -> dict:
    """config.json: ``run`` (RunSpec fields), ``model`` (build_model kwargs), ``study_config``, ``versions``."""
    return read_json(Path(run_dir) / CONFIG)


def write_config(run_dir: str | Path, config: dict) -> None:
    write_json(Path(run_dir) / CONFIG, config)


def has_result(run_dir: str | Path) -> bool:
    """Whether the run is finished (its result.json is written last)."""
    return (Path(run_dir) / RESULT).exists()


def read_result(run_dir: str | Path) -> dict:
    return read_json(Path(run_dir) / RESULT)


def write_result(run_dir: str | Path, result: dict) -> None:
    """result.json as strict JSON: non-finite numbers become null."""
    result = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
    write_json(Path(run_dir) / RESULT, result)


def read_curves(run_dir: str | Path) -> pd.DataFrame:
    """Learning curves of one run: one row per snapshot (snapshot -1 marks a diverged measurement)."""
    path = Path(run_dir) / CURVES
    if not path.exists():
        raise RunMissingError(f"run {path.parent.name}: {path} is missing")
    try:
        return pd.read_csv(path, float_precision="round_trip")  # exactly the values training wrote
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise RunFileError(f"run {path.parent.name}: {path} cannot be read ({e})") from None


def write_curves(run_dir: str | Path, rows: list[dict]) -> None:
    text = pd.DataFrame(rows, columns=CURVE_COLUMNS).to_csv(index=False, float_format="%.17g")
    atomic_write(Path(run_dir) / CURVES, text)


def check_same_run(run_dir: str | Path, spec) -> None:
    """Raise RunMismatchError if `run_dir` was made by a RunSpec other than `spec` (nothing is touched)."""
    from ..config import default_precision

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists():
        return
    old = dict(read_config(run_dir)["run"])
    old.setdefault("precision", default_precision(old.get("dtype", "float32")))  # made before the key existed
    diff = {k: (old.get(k), v) for k, v in spec.to_dict().items() if old.get(k) != v}
    if diff:
        raise RunMismatchError(
            f"run {spec.run_id}: {run_dir} was made with other settings {diff} (old, new); move or delete "
            "that directory to retrain it - nothing was overwritten")
