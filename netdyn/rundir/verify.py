"""Reading a run's trajectory the way later stages need it: checked against the run's other files.

``open_trajectory`` adds to the store's own checks (:class:`netdyn.trajectory.Trajectory`: manifest
against architecture and file size) that the architecture is the one config.json (and the caller) asks
for, and that result.json's snapshot count and byte size are those of the file. ``verify_finished``
also matches curves.csv against the manifest, before a finished run is kept rather than retrained.
"""

from __future__ import annotations

from pathlib import Path

from ..trajectory import Trajectory
from .files import RunFileError, RunMissingError, has_result, read_config, read_curves, read_result
from .manifest import TrajectoryError, tensor_architecture
from .names import CONFIG, CURVES, RESULT, TRAJECTORY_DATA, TRAJECTORY_MANIFEST


def open_trajectory(run_dir: str | Path, *, arch: dict | None = None) -> Trajectory:
    """A run's trajectory after every check that fails fast (TrajectoryError naming run and file);
    ``arch`` (build_model kwargs), if given, is the architecture the caller expects."""
    run_dir = Path(run_dir)
    traj = Trajectory.open(run_dir)
    expected = [("the requested architecture", arch)]
    if (run_dir / CONFIG).exists():
        expected.append((str(run_dir / CONFIG), read_config(run_dir).get("model")))
    for source, want in expected:
        if want is not None and tensor_architecture(want) != tensor_architecture(traj.arch):
            raise TrajectoryError(f"run {run_dir.name}: trajectory {run_dir / TRAJECTORY_MANIFEST} belongs to "
                                  f"architecture {traj.arch}, not {want} ({source})")
    if has_result(run_dir):
        _check_result(traj, read_result(run_dir))
    return traj


def _check_result(traj: Trajectory, result: dict) -> None:
    data, res = traj.path / TRAJECTORY_DATA, traj.path / RESULT
    n, size = result.get("n_snapshots"), result.get("trajectory_bytes")
    if n is not None and n != len(traj):
        why = ("the trajectory is truncated" if len(traj) < n
               else "rows were added after the run finished (by a second writer?)")
        raise TrajectoryError(f"run {traj.path.name}: {data} holds {len(traj)} snapshots but {res} reports {n}: {why}")
    if size is not None and size != data.stat().st_size:
        raise TrajectoryError(f"run {traj.path.name}: {data} holds {data.stat().st_size} bytes but {res} reports "
                              f"{size}: the file was rewritten after the run finished")


def verify_finished(run_dir: str | Path, spec=None) -> dict:
    """result.json of a finished run, after checking that its trajectory, curves and result agree (and,
    given its RunSpec, that a complete run reached its last epoch). Otherwise TrajectoryError names what
    differs and how to train the run again: a finished run with inconsistent files is never kept."""
    run_dir = Path(run_dir)
    try:
        return _verify_finished(run_dir, spec)
    except (TrajectoryError, RunFileError, RunMissingError) as e:
        raise TrajectoryError(f"{e}. The run is finished but its files disagree, so it is not kept; delete "
                              f"{run_dir / RESULT} (or the whole directory) to train it again") from e


def _verify_finished(run_dir: Path, spec) -> dict:
    result = read_result(run_dir)
    traj = open_trajectory(run_dir)
    curves = read_curves(run_dir)
    kept = curves[curves["snapshot"] >= 0]
    if kept["snapshot"].tolist() != list(range(len(traj))) or \
            kept["epoch"].tolist() != traj.snapshots["epoch"].tolist():
        raise TrajectoryError(f"run {run_dir.name}: {run_dir / CURVES} lists snapshots at epochs "
                              f"{kept['epoch'].tolist()}, but {run_dir / TRAJECTORY_MANIFEST} at "
                              f"{traj.snapshots['epoch'].tolist()}")
    if spec is not None and result.get("status") == "complete" and \
            (len(traj) == 0 or traj.snapshots["epoch"].iloc[-1] != float(spec.epochs)):
        raise TrajectoryError(f"run {run_dir.name}: {run_dir / RESULT} says complete, but the last snapshot in "
                              f"{run_dir / TRAJECTORY_MANIFEST} is not at epoch {spec.epochs}")
    return result
