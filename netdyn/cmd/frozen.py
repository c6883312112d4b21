"""The training side of embedded CMD (:mod:`netdyn.cmd.embedded` decides): :class:`EmbeddedPack` shows each
embedded-CMD member of a pack its whole-epoch rows (replaying a resumed run's stored ones) and keeps the frozen
parameters of every member in :class:`FrozenParameters`, which sets them to a_i · r_m + b_i after each
optimisation step, r_m being the current value of their mode's reference parameter (itself trained). One
gather of the references and one indexed write per parameter tensor; nothing when no parameter is frozen.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from .embedded import EmbeddedCMD

log = logging.getLogger("netdyn.train")


class FrozenParameters:
    """``params``: the packed model's parameter tensors (member on dim 0); ``columns``: per tensor, the column
    of its first value in a member's trajectory row (the manifest offset)."""

    def __init__(self, params: list[torch.Tensor], columns: list[int]):
        for p in params:
            assert p.is_contiguous(), "packed parameters are contiguous, member first"
        self.params = params
        self.k = params[0].shape[0]
        self.numels = np.array([p[0].numel() for p in params], dtype=np.int64)
        self.starts = np.asarray(columns, dtype=np.int64)
        order = np.argsort(self.starts)
        self._order, self._sorted = order, self.starts[order]
        self._frozen: dict[int, list[tuple]] = {}  # tensor -> [(flat index, a, b, reference slot)] blocks
        self._ref_slot: dict[tuple[int, int], int] = {}  # (tensor, flat index) of a reference -> slot
        self._plan = None

    def _locate(self, member: int, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tensor, flat index into that packed tensor) of a member's row columns."""
        pos = np.searchsorted(self._sorted, columns, side="right") - 1
        tensor = self._order[pos]
        local = columns - self.starts[tensor]
        if pos.min() < 0 or (local >= self.numels[tensor]).any():
            raise ValueError("a frozen column is not a parameter of the pack")
        return tensor, member * self.numels[tensor] + local

    @property
    def active(self) -> bool:
        return bool(self._frozen)

    def add(self, member: int, columns: np.ndarray, a: np.ndarray, b: np.ndarray, ref_columns: np.ndarray) -> None:
        """Freeze member ``member``'s parameters at row ``columns`` to a · (value at ``ref_columns``) + b."""
        tensor, flat = self._locate(member, np.asarray(columns, dtype=np.int64))
        rt, rf = self._locate(member, np.asarray(ref_columns, dtype=np.int64))
        slots = np.array([self._ref_slot.setdefault((int(t), int(f)), len(self._ref_slot)) for t, f in zip(rt, rf)],
                         dtype=np.int64) if len(rt) else np.zeros(0, dtype=np.int64)
        for t in np.unique(tensor):
            sel = tensor == t
            self._frozen.setdefault(int(t), []).append((flat[sel], a[sel], b[sel], slots[sel]))
        self._plan = None

    def _build(self):
        dev = self.params[0].device
        refs = sorted(self._ref_slot.items(), key=lambda kv: kv[1])
        by_tensor: dict[int, list[tuple[int, int]]] = {}
        for (t, f), slot in refs:
            by_tensor.setdefault(t, []).append((f, slot))
        gathers, slot_order = [], []
        for t, items in by_tensor.items():
            gathers.append((t, torch.tensor([f for f, _ in items], device=dev)))
            slot_order += [s for _, s in items]
        inverse = torch.tensor(np.argsort(slot_order), device=dev)  # concatenated gathers -> slot order
        writes = []
        for t, blocks in self._frozen.items():
            dtype = self.params[t].dtype
            flat, a, b, slot = (np.concatenate(x) for x in zip(*blocks))
            writes.append((t, torch.tensor(flat, device=dev), torch.tensor(a, device=dev, dtype=dtype),
                           torch.tensor(b, device=dev, dtype=dtype), torch.tensor(slot, device=dev)))
        self._plan = (gathers, inverse, writes)

    @torch.no_grad()
    def apply(self) -> None:
        """Set every frozen parameter to a · r + b from the references' current values."""
        if not self._frozen:
            return
        if self._plan is None:
            self._build()
        gathers, inverse, writes = self._plan
        r = torch.cat([self.params[t].view(-1)[idx] for t, idx in gathers])[inverse]
        for t, flat, a, b, slot in writes:
            self.params[t].view(-1)[flat] = a * r[slot] + b


class EmbeddedPack:
    """The embedded-CMD members of one pack (``members``: the trainer's MemberStates; each gets its own
    :class:`EmbeddedCMD` as ``member.embedded``) and the pack's frozen parameters."""

    def __init__(self, members, frozen: FrozenParameters):
        self.members, self.frozen = members, frozen

    @classmethod
    def start(cls, members, params: list[torch.Tensor], names: list[str]) -> "EmbeddedPack | None":
        """None when no member trains with embedded CMD. ``params``/``names``: the packed model's parameters.
        A resumed member replays the whole-epoch rows its trajectory holds, so it continues with the state
        an uninterrupted run has (its weights, from the checkpoint, already follow the frozen values)."""
        if not any(m.spec.embedded_cmd for m in members):
            return None
        entries = {t["name"]: t for t in members[0].writer.manifest["tensors"]}
        layers = sorted(((n, slice(entries[n]["offset"], entries[n]["offset"] + entries[n]["numel"])) for n in names
                         if entries[n]["numel"]), key=lambda nl: nl[1].start)
        pack = cls(members, FrozenParameters(params, [entries[n]["offset"] for n in names]))
        for i, m in enumerate(members):
            if not m.spec.embedded_cmd:
                continue
            m.embedded = EmbeddedCMD(m.spec.embedded_cmd, layers, m.writer.row_numel, m.spec.epochs, m.spec.run_id)
            if m.checkpoint is not None:
                rows, epochs = m.writer.stored_rows()
                whole = np.flatnonzero(epochs == np.round(epochs))
                for f in m.embedded.replay((rows[j] for j in whole), epochs[whole]):
                    pack._freeze(i, f)
        pack.frozen.apply()
        return pack

    def _freeze(self, i: int, f) -> None:
        emb = self.members[i].embedded
        self.frozen.add(i, emb.positions_to_columns(f.positions), f.a, f.b, emb.positions_to_columns(f.references))

    def after_step(self) -> None:
        if self.frozen.active:
            self.frozen.apply()

    def epoch_end(self, epoch: int, last_rows) -> None:
        """Show each live embedded-CMD member its row of whole epoch ``epoch`` (``last_rows``: the trainer's
        (epoch label, rows) of its latest snapshot, which ends every epoch); freeze what it decides."""
        for i, m in enumerate(self.members):
            if m.embedded is None or m.diverged_at is not None:
                continue
            assert last_rows is not None and last_rows[0] == epoch, "a snapshot ends every epoch"
            f = m.embedded.observe(epoch, last_rows[1][i])
            if f is not None:
                self._freeze(i, f)
                log.info("[%s] embedded CMD: %d more parameters frozen at epoch %d; %.1f%% still trained",
                         m.spec.run_id, len(f.positions), epoch, 100 * m.embedded.trained_fraction)
        self.frozen.apply()
