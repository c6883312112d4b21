"""Embedded CMD (methods.md §2): CMD inside training, so that fewer parameters are trained.

One :class:`EmbeddedCMD` per run (a member of a pack keeps its own). It sees the run's state at every whole
epoch — the same row the trajectory stores — and decides which parameters to freeze:

* epochs 0 … F (``warmup``): plain SGD; the rows are kept;
* at epoch F: post-hoc CMD of those F + 1 rows fixes the modes and their references (online CMD,
  :class:`~netdyn.cmd.online.OnlineCMD`), and (a, b) of every parameter is noted;
* every ``every`` epochs after that (not at the last epoch, whose weights are final): the online fit takes the
  new row; each still-trained parameter's *movement* is how far its modelled weight at this epoch moved with
  the refit, |Δa_i · r_m(t) + Δb_i|; the ``fraction`` of still-trained parameters that moved least (ties in
  column order) is frozen with its current (a_i, b_i). Reference parameters are never frozen: they carry
  their modes.

From then on a frozen parameter follows a_i · r_m(t) + b_i of its mode's (trained) reference, set after every
optimisation step (:class:`netdyn.train.PackTrainer`); it still gets a gradient, but its SGD update is
overwritten, so it is not trained. Every decision is a function of the rows seen, so a resumed run replays
the rows its trajectory holds (:meth:`EmbeddedCMD.replay`) and continues with the same state as an
uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .online import OnlineCMD
from .source import CMDError, Source


@dataclass(frozen=True)
class Freeze:
    """Parameters frozen at one step: modelled positions, their fixed (a, b) and their modes' reference positions."""

    positions: np.ndarray
    a: np.ndarray
    b: np.ndarray
    references: np.ndarray


class EmbeddedCMD:
    """The embedded-CMD state of one run. ``layers``: (name, column slice) of the trainable parameters in a
    row of ``n_columns`` values (buffers are not modelled); ``settings``: a RunSpec's ``embedded_cmd``
    (n_modes, warmup, every, fraction, n_samples, seed); ``epochs``: the run's last epoch."""

    def __init__(self, settings: dict, layers, n_columns: int, epochs: int, run: str = "<array>"):
        self.settings, self.epochs, self.run = dict(settings), int(epochs), run
        self.warmup, self.every = int(settings["warmup"]), int(settings["every"])
        self.fraction = float(settings["fraction"])
        if not 0 < self.fraction <= 1:
            raise CMDError(run, "embedded_cmd.fraction", f"must be in (0, 1], got {self.fraction}")
        if self.warmup >= self.epochs:
            raise CMDError(run, "embedded_cmd.warmup", f"{self.warmup} warm-up epochs leave no epoch of the "
                                                        f"{self.epochs} trained to embed CMD in")
        self.source = Source(np.empty((0, n_columns)), tuple(layers), run)
        self.n_params = self.source.n_params
        self.rows: list[np.ndarray] = []
        self.online: OnlineCMD | None = None
        self.frozen = np.zeros(self.n_params, dtype=bool)
        self.last_ab: tuple[np.ndarray, np.ndarray] | None = None
        self.next_epoch = 0
        self.log: list[dict] = []  # per whole epoch: how many parameters are still trained

    @property
    def trained_fraction(self) -> float:
        return 1.0 - self.frozen.sum() / self.n_params

    def observe(self, epoch: int, row: np.ndarray) -> Freeze | None:
        """The run's row at the end of whole epoch ``epoch`` (0: the initial weights); epochs come in order.
        Returns the parameters to freeze now, if any."""
        if epoch != self.next_epoch:
            raise CMDError(self.run, "epoch", f"expected the row of epoch {self.next_epoch}, got epoch {epoch}")
        self.next_epoch += 1
        freeze = None
        if epoch < self.warmup:
            self.rows.append(np.array(row, copy=True))
        elif epoch == self.warmup:
            self.rows.append(np.array(row, copy=True))
            s = self.settings
            self.online = OnlineCMD.start(np.stack(self.rows), int(s["n_modes"]), warmup=len(self.rows),
                                          n_samples=int(s["n_samples"]), seed=int(s["seed"]),
                                          layers=self.source.layers, run=self.run)
            self.rows = []
            self.last_ab = self.online.coefficients()
        else:
            self.online.update(np.asarray(row))
            if (epoch - self.warmup) % self.every == 0 and epoch < self.epochs:
                freeze = self._freeze()
        self.log.append({"epoch": epoch, "trained_fraction": float(self.trained_fraction),
                         "frozen": int(self.frozen.sum())})
        return freeze

    def _freeze(self) -> Freeze | None:
        on = self.online
        a, b = on.coefficients()
        a0, b0 = self.last_ab
        self.last_ab = (a, b)
        reference_positions = self.reference_positions()
        candidate = ~self.frozen
        candidate[reference_positions] = False
        idx = np.flatnonzero(candidate)
        n = int(round(self.fraction * idx.size))
        if n == 0:
            return None
        r = on.reference_now[on.labels[idx]]
        movement = np.abs((a[idx] - a0[idx]) * r + (b[idx] - b0[idx]))
        chosen = np.sort(idx[np.argsort(movement, kind="stable")[:n]])
        self.frozen[chosen] = True
        return Freeze(chosen, a[chosen], b[chosen], reference_positions[on.labels[chosen]])

    def reference_positions(self) -> np.ndarray:
        """Modelled position of each mode's reference parameter (index = mode)."""
        res = self.online.warmup
        cols = np.asarray(res.reference_columns)
        starts = np.array([s.start for _, s in self.source.layers])
        layer = np.searchsorted(starts, cols, side="right") - 1
        return self.source.layer_starts[layer] + cols - starts[layer]

    def replay(self, rows, epochs) -> list[Freeze]:
        """Feed stored rows (e.g. a resumed run's trajectory) whose labels ``epochs`` are whole epochs;
        returns every freezing step they cause, in order."""
        out = []
        for e, row in zip(epochs, rows):
            f = self.observe(int(e), row)
            if f is not None:
                out.append(f)
        return out

    def positions_to_columns(self, positions: np.ndarray) -> np.ndarray:
        """Row column of each modelled position."""
        return self.source.source_columns(positions)
