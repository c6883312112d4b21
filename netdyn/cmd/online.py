"""Online CMD (methods.md §2): modes and references fixed after a warm-up of F snapshots, then every new
snapshot updates each parameter's affine fit w_i ≈ a_i r_m + b_i without keeping any history.

The least-squares fit of one parameter over n snapshots solves the 2×2 normal equations
[[Σr², Σr], [Σr, n]] (a, b) = (Σwr, Σw). The same five sums are kept here in centred (Welford) form —
n, the reference's mean and Σ(r − r̄)² per mode, the parameter's mean and Σ(w − w̄)(r − r̄) per parameter —
because the raw sums cancel catastrophically for weights far from zero that barely move. Then
a = Σ(w − w̄)(r − r̄) / Σ(r − r̄)², b = w̄ − a r̄: the batch fit of the same snapshots (tested to 1e-9).
The reference value of a new snapshot is the reference parameter's own value in it.

State: 16 bytes per parameter (mean, co-moment) besides the warm-up result (20 bytes per parameter) and
O(M) per mode; an update works in blocks of ``chunk`` parameters.
"""

from __future__ import annotations

import numpy as np

from .decompose import MIN_SNAPSHOTS, default_chunk, posthoc_source
from .result import CMDResult
from .source import CMDError, Source, as_source


class OnlineCMD:
    """Running CMD fit. Build with :meth:`start` (post-hoc CMD on the first ``warmup`` snapshots), then
    :meth:`update` with each new snapshot row (all columns of W, as the trajectory stores it)."""

    def __init__(self, warmup: CMDResult, n_columns: int, chunk: int | None = None):
        self.warmup = warmup
        self.run = warmup.run
        self.labels = warmup.labels
        self.reference_columns = warmup.reference_columns
        self.n_columns = n_columns
        self.chunk = chunk or default_chunk(warmup.n_snapshots)
        self.n = warmup.n_snapshots
        refs = warmup.references
        self.ref_mean = refs.mean(axis=1)
        centred = refs - self.ref_mean[:, None]
        self.ref_m2 = np.einsum("mt,mt->m", centred, centred)
        self.reference_now = refs[:, -1].copy()
        # the warm-up fit's sums, recovered from its coefficients: w̄ = b + a r̄, Σ(w − w̄)(r − r̄) = a Σ(r − r̄)²
        self.mean = warmup.b + warmup.a * self.ref_mean[self.labels]
        self.comoment = warmup.a * self.ref_m2[self.labels]
        self._blocks = [(s.start, s.stop, p.start) for (_, s), (_, p) in zip(warmup.source_layers, warmup.layers)]

    @classmethod
    def start(cls, W, n_modes: int, *, warmup: int, n_samples: int = 1000, seed: int = 0, layers=None,
              chunk: int | None = None, run: str | None = None) -> "OnlineCMD":
        """Post-hoc CMD of the first ``warmup`` snapshots of W (array, memmap or Trajectory, as
        :func:`netdyn.cmd.posthoc`); the modes and references it finds stay fixed from then on."""
        source = as_source(W, layers, run)
        if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < MIN_SNAPSHOTS:
            raise CMDError(source.run, "warmup", f"must be an integer ≥ {MIN_SNAPSHOTS}, got {warmup!r}")
        if warmup > source.n_snapshots:
            raise CMDError(source.run, "warmup", f"warmup={warmup} snapshots, but the trajectory has only "
                                                 f"{source.n_snapshots}")
        first = Source(source.matrix[:warmup], source.layers, source.run)
        result = posthoc_source(first, n_modes, n_samples=n_samples, seed=seed, chunk=chunk)
        return cls(result, source.matrix.shape[1], chunk)

    @property
    def n_modes(self) -> int:
        return len(self.ref_mean)

    def update(self, row: np.ndarray) -> None:
        """Add one snapshot: ``row`` holds all N columns of W at that snapshot (e.g. ``traj.matrix[t]``)."""
        row = np.asarray(row)
        if row.shape != (self.n_columns,):
            raise CMDError(self.run, "row", f"expected one snapshot of {self.n_columns} values, got shape {row.shape}")
        r = row[self.reference_columns].astype(np.float64)
        self.n += 1
        dr = r - self.ref_mean
        self.ref_mean += dr / self.n
        r_dev = r - self.ref_mean  # deviation from the updated mean (Welford)
        self.ref_m2 += dr * r_dev
        for c0, c1, p0, p1 in self._spans():
            w = row[c0:c1].astype(np.float64)
            w -= self.mean[p0:p1]
            self.mean[p0:p1] += w / self.n
            w *= r_dev[self.labels[p0:p1]]
            self.comoment[p0:p1] += w
        self.reference_now = r

    def _spans(self):
        for c0, c1, p in self._blocks:
            for b in range(c0, c1, self.chunk):
                e = min(b + self.chunk, c1)
                yield b, e, p + b - c0, p + e - c0

    def coefficients(self, positions: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) of the parameters at ``positions`` (all by default) fitted to every snapshot seen."""
        positions = slice(None) if positions is None else positions
        labels = self.labels[positions]
        a = self.comoment[positions] / self.ref_m2[labels]
        return a, self.mean[positions] - a * self.ref_mean[labels]

    @property
    def a(self) -> np.ndarray:
        return self.coefficients()[0]

    @property
    def b(self) -> np.ndarray:
        return self.coefficients()[1]

    def reconstruct(self, positions: slice | None = None, references: np.ndarray | None = None) -> np.ndarray:
        """Modelled weights a_i r_m + b_i at the latest snapshot (or at given reference values (M,))."""
        positions = slice(None) if positions is None else positions
        a, b = self.coefficients(positions)
        r = self.reference_now if references is None else np.asarray(references, dtype=np.float64)
        return r[self.labels[positions]] * a + b
