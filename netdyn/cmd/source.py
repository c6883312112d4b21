"""What CMD reads: a (T snapshots, N values) matrix — a NumPy array, a memory map or a run's
:class:`~netdyn.trajectory.Trajectory` — and which of its columns are modelled, as named layers.

Everything downstream reads through :class:`Source`, in column blocks of at most ``chunk`` columns and
converted to float64, so the working memory is O(chunk · T) whatever N is. A read-only memory map is
read through its mapping one row of a block at a time, and the pages that row mapped are handed back
to the kernel before the next (``madvise(MADV_DONTNEED)``: they stay in the page cache but leave this
process's resident set); else a pass over a 1 GB trajectory would leave 1 GB of file pages counted in
the process's RSS. Writable maps are left alone (dropping a copy-on-write page would lose its private
changes), as is every map where the platform has no MADV_DONTNEED.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

# A fault on a file page maps its neighbours too (fault-around; a whole large folio, up to 2 MiB, on recent
# kernels), so each row's release reaches this far past what was read.
RELEASE_PAD = 2 * 2**20
GATHER_WINDOW = 2**16  # columns: a scattered read maps at most one row of this many values at a time


class CMDError(ValueError):
    """A CMD input or setting that cannot work; ``run`` and ``parameter`` name the run and the setting at fault."""

    def __init__(self, run: str, parameter: str, detail: str):
        super().__init__(f"run {run}: {parameter}: {detail}")
        self.run, self.parameter, self.detail = run, parameter, detail


def _readonly_mmap(a: np.ndarray) -> mmap.mmap | None:
    """The mmap under an array viewing a read-only (mode 'r') np.memmap with contiguous rows, if any."""
    if a.ndim != 2 or a.strides[1] != a.itemsize or not hasattr(mmap, "MADV_DONTNEED"):
        return None
    base = a
    while isinstance(base, np.ndarray):
        if isinstance(base, np.memmap) and isinstance(getattr(base, "_mmap", None), mmap.mmap):
            return base._mmap if base.mode == "r" else None
        base = base.base
    return None


@dataclass
class Source:
    """A (T, N) matrix with the modelled column blocks ``layers`` ((name, slice of columns), in order);
    position ``p`` of the modelled parameter vector is the ``p``-th modelled column."""

    matrix: np.ndarray
    layers: tuple[tuple[str, slice], ...]
    run: str

    def __post_init__(self):
        mm = _readonly_mmap(self.matrix)
        base = np.frombuffer(mm, np.uint8).__array_interface__["data"][0] if mm is not None else 0
        self._map = (mm, base)
        sizes = [s.stop - s.start for _, s in self.layers]
        self.layer_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # modelled position of each layer

    @property
    def n_snapshots(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_params(self) -> int:
        return int(self.layer_starts[-1])

    def layer_slices(self) -> list[tuple[str, slice]]:
        """(name, slice of the modelled parameter vector) per layer."""
        return [(name, slice(int(p0), int(p1)))
                for (name, _), p0, p1 in zip(self.layers, self.layer_starts[:-1], self.layer_starts[1:])]

    def blocks(self, chunk: int) -> Iterator[tuple[int, int, int]]:
        """(first source column, end source column, first modelled position) of blocks of ≤ chunk columns;
        adjacent layers merge, so small tensors do not make small blocks."""
        spans: list[list[int]] = []
        for (_, s), p in zip(self.layers, self.layer_starts[:-1]):
            if spans and spans[-1][1] == s.start:
                spans[-1][1] = s.stop
            else:
                spans.append([s.start, s.stop, int(p)])
        for c0, c1, p in spans:
            for b in range(c0, c1, chunk):
                yield b, min(b + chunk, c1), p + b - c0

    def read(self, c0: int, c1: int) -> np.ndarray:
        """Source columns [c0, c1) of all snapshots, as a new float64 array (T, c1 - c0)."""
        if self._map[0] is None:
            return np.array(self.matrix[:, c0:c1], dtype=np.float64)
        block = np.empty((self.n_snapshots, c1 - c0))
        for t in range(self.n_snapshots):  # a row at a time: what one row maps is released before the next
            block[t] = self.matrix[t, c0:c1]
            self._release(t, c0, c1)
        return block

    def source_columns(self, positions: np.ndarray) -> np.ndarray:
        """Source column of each modelled position."""
        positions = np.asarray(positions, dtype=np.int64)
        layer = np.searchsorted(self.layer_starts, positions, side="right") - 1
        starts = np.array([s.start for _, s in self.layers], dtype=np.int64)
        return starts[layer] + positions - self.layer_starts[layer]

    def gather(self, positions: Sequence[int]) -> np.ndarray:
        """The trajectories of the given modelled positions, float64, shape (T, len(positions)); read in
        windows of GATHER_WINDOW columns, so scattered columns do not map whole rows."""
        cols = self.source_columns(positions)
        if self._map[0] is None:
            return np.array(self.matrix[:, cols], dtype=np.float64)
        order = np.argsort(cols, kind="stable")
        ordered = cols[order]
        out = np.empty((self.n_snapshots, len(cols)))
        start = 0
        while start < len(ordered):
            stop = int(np.searchsorted(ordered, ordered[start] + GATHER_WINDOW))
            lo, hi = int(ordered[start]), int(ordered[stop - 1]) + 1
            for t in range(self.n_snapshots):
                out[t, order[start:stop]] = self.matrix[t, ordered[start:stop]]
                self._release(t, lo, hi)
            start = stop
        return out

    def _release(self, t: int, c0: int, c1: int) -> None:
        """Drop from this process the mapped pages of row t around columns [c0, c1)."""
        mm, base = self._map
        a = self.matrix
        at = a.__array_interface__["data"][0] - base + t * a.strides[0]
        lo = max(0, at + c0 * a.itemsize - RELEASE_PAD)
        hi = min(len(mm), at + c1 * a.itemsize + RELEASE_PAD)
        lo -= lo % mmap.PAGESIZE
        if hi > lo:
            mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def _check_layers(layers, n_columns: int, run: str) -> tuple[tuple[str, slice], ...]:
    checked, end = [], 0
    for item in layers:
        try:
            name, s = item
            start, stop, step = s.start, s.stop, s.step
        except (TypeError, ValueError, AttributeError):
            raise CMDError(run, "layers", f"expected (name, slice) pairs, got {item!r}") from None
        if step not in (None, 1) or start is None or stop is None or not 0 <= start < stop <= n_columns:
            raise CMDError(run, "layers", f"layer {name!r}: {s} is not a non-empty column range of the "
                                          f"{n_columns} columns")
        if start < end:
            raise CMDError(run, "layers", f"layer {name!r} starts at column {start}, before the previous "
                                          f"layer ends ({end}); layers must be in column order, disjoint")
        checked.append((str(name), slice(int(start), int(stop))))
        end = stop
    if not checked:
        raise CMDError(run, "layers", "no layer given")
    return tuple(checked)


def trajectory_layers(traj, *, buffers: bool = False) -> list[tuple[str, slice]]:
    """(tensor name, column slice) of a run's trainable parameters (and BatchNorm buffers if ``buffers``),
    found by building the run's network on the meta device."""
    import torch

    from ..models import build_model

    with torch.device("meta"):
        params = {name for name, _ in build_model(**traj.arch).named_parameters()}
    return [(t["name"], slice(t["offset"], t["offset"] + t["numel"])) for t in traj.tensors
            if t["numel"] and (buffers or t["name"] in params)]


def as_source(W, layers=None, run: str | None = None) -> Source:
    """A :class:`Source` of an array/memmap (all columns one layer unless ``layers``) or a Trajectory
    (its trainable parameters unless ``layers``; errors name its run id)."""
    if not isinstance(W, np.ndarray):
        from ..trajectory import Trajectory

        if not isinstance(W, Trajectory):
            raise CMDError(run or "?", "W", f"expected a (T, N) array, memmap or Trajectory, got {type(W).__name__}")
        run = run or W.run_id
        layers = trajectory_layers(W) if layers is None else layers
        W = W.matrix
    run = run or "<array>"
    if W.ndim != 2:
        raise CMDError(run, "W", f"expected shape (T snapshots, N parameters), got {W.shape}")
    if not np.issubdtype(W.dtype, np.floating):
        raise CMDError(run, "W", f"expected floating values, got {W.dtype}")
    if layers is None:
        if W.shape[1] == 0:
            raise CMDError(run, "W", "no parameters (N = 0)")
        layers = [("all", slice(0, W.shape[1]))]
    return Source(W, _check_layers(layers, W.shape[1], run), run)
