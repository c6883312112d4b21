"""The on-disk trajectory store: every snapshot of one run's weights, in one flat file.

Layout of a run directory (``results/runs/<run id>/``, see :mod:`netdyn.rundir`)::

    trajectory.bin    float32 (or float64) matrix of shape (T, P), row-major: row t is snapshot t, all
                      tensors flattened and concatenated in manifest order
    trajectory.json   the manifest: tensor table (name, kind, shape, dtype, offset, numel in elements of a
                      row), snapshot table (index, epoch, step, label), row dtype, the run's architecture

Why a raw matrix and not safetensors: snapshots arrive one per epoch (or faster) and a killed job must keep
what it wrote, so the store must be appendable row by row; safetensors files are written whole. The raw
matrix is just as safe to read (no pickle, nothing executed), and ``numpy.memmap`` gives both access
patterns the later stages need without loading the file: a whole snapshot is a contiguous row (graphs,
modularity), one tensor's history is a strided column block (CMD). The manifest holds byte offsets, so
any tool can read the file without this package.

Opening checks the manifest before anything is read: every tensor's offset, shape and dtype against the
network ``build_model(**manifest["arch"])`` builds and against the file's size. A mismatch raises
:class:`TrajectoryError` naming the run, the file and the tensor. Stages open runs through
:func:`netdyn.rundir.open_trajectory`, which also checks the run's config.json and result.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .rundir.files import store_error
from .rundir.manifest import TrajectoryError, check_manifest
from .rundir.names import TMP_SUFFIX
from .rundir.names import TRAJECTORY_DATA as DATA_FILE
from .rundir.names import TRAJECTORY_MANIFEST as MANIFEST_FILE

FORMAT_VERSION = 1


def _atomic_write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise store_error(e, path, "writing") from e


def tensor_table(state: dict[str, torch.Tensor]) -> list[dict]:
    """Name, shape, dtype and row offset of every floating or integer tensor of a state_dict."""
    table, offset = [], 0
    for name, t in state.items():
        n = t.numel()
        table.append({"name": name, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."),
                      "offset": offset, "numel": n})
        offset += n
    return table


def stored_rows(run_dir: str | Path) -> int:
    """Snapshots of a run's trajectory that its manifest lists and its data file holds whole (0 if none)."""
    run_dir = Path(run_dir)
    try:
        manifest = json.loads((run_dir / MANIFEST_FILE).read_text())
        row_bytes = sum(t["numel"] for t in manifest["tensors"]) * np.dtype(manifest["dtype"]).itemsize
        size = (run_dir / DATA_FILE).stat().st_size
        return min(len(manifest["snapshots"]), size // row_bytes if row_bytes else 0)
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def row_tensor(row: np.ndarray, entry: dict) -> np.ndarray:
    """One tensor of a snapshot row (a view), by its manifest entry: the one place rows are sliced."""
    return row[..., entry["offset"]:entry["offset"] + entry["numel"]].reshape(row.shape[:-1] + tuple(entry["shape"]))


class TrajectoryWriter:
    """Appends snapshots of one run; safe to reopen after a kill (rows past the manifest are dropped)."""

    def __init__(self, run_dir: str | Path, template: dict[str, torch.Tensor], *, run_id: str,
                 arch: dict, dtype: str = "float32", resume: bool = False):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_path = self.dir / DATA_FILE
        self.manifest_path = self.dir / MANIFEST_FILE
        self.dtype = np.dtype(dtype)
        if resume and self.manifest_path.exists():
            self.manifest = json.loads(self.manifest_path.read_text())
        else:
            self.manifest = {"format": FORMAT_VERSION, "run_id": run_id, "arch": arch, "dtype": self.dtype.name,
                             "tensors": tensor_table(template), "snapshots": []}
            self._truncate_data(0)
            _atomic_write_json(self.manifest_path, self.manifest)
        self.row_numel = sum(t["numel"] for t in self.manifest["tensors"])
        if resume:  # a kill during append can leave (part of) a row the manifest does not list: drop it
            self.truncate(self.n_snapshots)

    @property
    def n_snapshots(self) -> int:
        return len(self.manifest["snapshots"])

    def _truncate_data(self, nbytes: int) -> None:
        try:
            with open(self.data_path, "ab") as f:
                f.truncate(nbytes)
        except OSError as e:
            raise store_error(e, self.data_path, "truncating") from e

    def truncate(self, n: int) -> None:
        """Keep the first n snapshots (resume: drop what came after the last checkpoint)."""
        have = stored_rows(self.dir) if self.manifest_path.exists() else 0
        if n > have:
            raise TrajectoryError(f"run {self.dir.name}: cannot keep {n} snapshots, {self.data_path} holds "
                                  f"{have} whole rows that {self.manifest_path} lists")
        self.manifest["snapshots"] = self.manifest["snapshots"][:n]
        self._truncate_data(n * self.row_numel * self.dtype.itemsize)
        _atomic_write_json(self.manifest_path, self.manifest)

    def stored_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, epoch labels) of the snapshots the manifest lists; the rows read-only from the data file
        (a resumed embedded-CMD run replays them)."""
        epochs = np.array([s["epoch"] for s in self.manifest["snapshots"]], dtype=float)
        if not len(epochs):
            return np.zeros((0, self.row_numel), self.dtype), epochs
        return np.memmap(self.data_path, dtype=self.dtype, mode="r", shape=(len(epochs), self.row_numel)), epochs

    def append(self, state: dict[str, torch.Tensor], *, epoch: float, step: int, label: str) -> None:
        """Append one snapshot given as a state_dict."""
        row = np.concatenate([state[t["name"]].detach().reshape(-1).to("cpu", torch.float64).numpy()
                              for t in self.manifest["tensors"]])
        self.append_row(row, epoch=epoch, step=step, label=label)

    def append_row(self, row: np.ndarray, *, epoch: float, step: int, label: str) -> None:
        """Append one snapshot given as a flat vector in manifest order (the trainer's fast path). If the
        write fails (disk full), the partial row is cut off again and an OSError names run and file."""
        row = np.ascontiguousarray(row, dtype=self.dtype)
        if row.size != self.row_numel:
            raise TrajectoryError(f"run {self.manifest['run_id']}: a snapshot of {row.size} values does not fit "
                                  f"the manifest's {self.row_numel}")
        try:
            with open(self.data_path, "ab") as f:
                f.write(row.tobytes())
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            try:
                self._truncate_data(self.n_snapshots * row.nbytes)
            except OSError:
                pass  # a resume drops the partial row anyway
            raise store_error(e, self.data_path, f"appending snapshot {self.n_snapshots} (epoch {epoch:g}) to") from e
        self.manifest["snapshots"].append({"index": self.n_snapshots, "epoch": float(epoch),
                                           "step": int(step), "label": label})
        _atomic_write_json(self.manifest_path, self.manifest)


@dataclass
class Trajectory:
    """Read-only view of one run's trajectory. Cheap to open: the data stay on disk (memory-mapped).

    >>> traj = Trajectory.open("results/runs/lenet-digits-w1-lr0.03-do0-wd0-s0")
    >>> traj.snapshots                       # index, epoch, step, label
    >>> sd = traj.state_dict(-1)             # torch tensors, ready for model.load_state_dict
    >>> w = traj.tensor("features.0.weight") # (T, 6, 1, 5, 5) numpy view
    >>> model = traj.model(3)                # the network at snapshot 3
    """

    path: Path
    manifest: dict
    matrix: np.ndarray  # (T, P) memmap

    @classmethod
    def open(cls, run_dir: str | Path) -> "Trajectory":
        run_dir = Path(run_dir)
        mpath, dpath = run_dir / MANIFEST_FILE, run_dir / DATA_FILE
        run = run_dir.name
        if not mpath.exists() or not dpath.exists():
            raise TrajectoryError(f"run {run}: no trajectory in {run_dir} (expected {MANIFEST_FILE} and "
                                  f"{DATA_FILE}); was the run trained?")
        try:
            manifest = json.loads(mpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TrajectoryError(f"run {run}: manifest {mpath} is corrupt ({e})") from None
        if not isinstance(manifest, dict):
            raise TrajectoryError(f"run {run}: manifest {mpath} is corrupt (not a JSON object)")
        dtype, row, n = check_manifest(manifest, run, mpath, dpath)
        expected = n * row * dtype.itemsize
        actual = dpath.stat().st_size
        if actual != expected:
            raise TrajectoryError(
                f"run {run}: {dpath} holds {actual} bytes but its manifest describes {n} snapshots × {row} "
                f"values × {dtype.itemsize} bytes = {expected}: the file is truncated or was overwritten")
        matrix = np.memmap(dpath, dtype=dtype, mode="r", shape=(n, row)) if n else np.zeros((0, row), dtype)
        return cls(run_dir, manifest, matrix)

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    @property
    def arch(self) -> dict:
        """build_model keyword arguments of the run (arch, width, depth, batchnorm, data shape)."""
        return self.manifest["arch"]

    @property
    def tensors(self) -> list[dict]:
        return self.manifest["tensors"]

    @property
    def names(self) -> list[str]:
        return [t["name"] for t in self.tensors]

    @property
    def snapshots(self) -> pd.DataFrame:
        return pd.DataFrame(self.manifest["snapshots"], columns=["index", "epoch", "step", "label"])

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def _entry(self, name: str) -> dict:
        for t in self.tensors:
            if t["name"] == name:
                return t
        raise KeyError(f"run {self.run_id}: no tensor {name!r} in the trajectory")

    def flat(self, i: int) -> np.ndarray:
        """Snapshot i as one flat vector (all tensors, manifest order)."""
        return np.asarray(self.matrix[i])

    def row_tensors(self, row: np.ndarray, names=None) -> dict[str, np.ndarray]:
        """The tensors of a flat row (from :meth:`flat`) as views, by name (all, or those in `names`)."""
        return {t["name"]: row_tensor(row, t) for t in self.tensors if names is None or t["name"] in names}

    def tensor(self, name: str) -> np.ndarray:
        """The history of one tensor: shape (T, *tensor shape), a view on the memory map."""
        return row_tensor(self.matrix, self._entry(name))

    def state_dict(self, i: int, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Snapshot i as a state_dict with the original dtypes (BatchNorm counters back to int64)."""
        dtypes = {t["name"]: getattr(torch, t["dtype"]) for t in self.tensors}
        return {k: torch.from_numpy(np.array(a)).to(dtypes[k]) for k, a in self.row_tensors(self.flat(i), names).items()}

    def check_model(self, model: torch.nn.Module) -> None:
        """Raise TrajectoryError unless the model has exactly this trajectory's tensors and shapes."""
        expected = {t["name"]: list(t["shape"]) for t in self.tensors}
        got = {k: list(v.shape) for k, v in model.state_dict().items()}
        if expected != got:
            missing = sorted(set(got) - set(expected))[:3]
            extra = sorted(set(expected) - set(got))[:3]
            shape = [k for k in set(got) & set(expected) if got[k] != expected[k]][:3]
            raise TrajectoryError(
                f"run {self.run_id}: trajectory {self.path / DATA_FILE} does not belong to this "
                f"architecture (missing {missing}, unexpected {extra}, other shapes {shape})")

    def model(self, i: int) -> torch.nn.Module:
        """Rebuild the network of this run at snapshot i (eval mode, on the CPU)."""
        from .models import build_model

        model = build_model(**self.arch).to(getattr(torch, self.manifest["dtype"]))  # float64 runs stay exact
        self.check_model(model)
        model.load_state_dict(self.state_dict(i))
        return model.eval()
