"""The outcome of a CMD fit: which mode each parameter follows and its affine coefficients, enough to
rebuild every snapshot without the trajectory (w_i(t) ≈ a_i · r_{m(i)}(t) + b_i)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BYTES_PER_PARAMETER = 4 + 8 + 8  # labels int32, a and b float64: the O(N) part of CMD's memory


@dataclass
class CMDResult:
    """Post-hoc CMD of one trajectory (see :func:`netdyn.cmd.posthoc`).

    Arrays over parameters are in the order of the modelled parameter vector: the columns of ``layers``
    concatenated (all columns of W when no layers were given).
    """

    run: str
    layers: list[tuple[str, slice]]         # name, slice of the modelled parameter vector
    source_layers: list[tuple[str, slice]]  # name, slice of W's columns
    labels: np.ndarray                      # (N,) int32 mode of each parameter
    a: np.ndarray                           # (N,) float64 slope on the mode's reference
    b: np.ndarray                           # (N,) float64 offset
    references: np.ndarray                  # (n_modes, T) float64 reference trajectories r_m(t)
    reference_positions: np.ndarray         # (n_modes,) modelled position of each reference parameter
    reference_columns: np.ndarray           # (n_modes,) its column of W
    samples: np.ndarray                     # (K,) modelled positions of the sampled trajectories
    sample_labels: np.ndarray               # (K,) their modes
    linkage: np.ndarray                     # (K-1, 4) scipy complete-linkage tree of the samples
    relative_error: np.ndarray              # (T,) ||w(t) - ŵ(t)|| / ||w(t)|| over the modelled parameters

    @property
    def n_modes(self) -> int:
        """Modes found: at most the n_modes asked for (fewer when the samples form fewer clusters)."""
        return len(self.references)

    @property
    def n_params(self) -> int:
        return len(self.labels)

    @property
    def n_snapshots(self) -> int:
        return self.references.shape[1]

    def mode_sizes(self) -> np.ndarray:
        """Parameters assigned to each mode (a mode can be empty when two references move alike)."""
        return np.bincount(self.labels, minlength=self.n_modes)

    def mode_layer_counts(self) -> np.ndarray:
        """(layers, modes) parameters of each layer in each mode: how each mode spreads over the net."""
        return np.stack([np.bincount(self.labels[s], minlength=self.n_modes) for _, s in self.layers])

    def reconstruct(self, rows=None, positions: slice | None = None, references: np.ndarray | None = None,
                    dtype=np.float64) -> np.ndarray:
        """Modelled weights a_i · r_m(t) + b_i: shape (snapshots, parameters), or (parameters,) for one int
        row. ``rows`` picks snapshots (all by default; a whole (T, N) float64 result may be large: ask a
        few rows, or a slice of ``positions`` at a time); ``references`` (n_modes,) or (rows, n_modes)
        gives reference values of snapshots the fit did not see (e.g. the reference parameters' values)."""
        positions = slice(None) if positions is None else positions
        if references is None:
            refs = self.references.T[slice(None) if rows is None else rows]  # (rows, modes)
        else:
            refs = np.asarray(references, dtype=np.float64)
        labels, a, b = self.labels[positions], self.a[positions], self.b[positions]
        out = refs[..., labels] * a
        out += b
        return out.astype(dtype, copy=False)
