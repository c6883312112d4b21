"""The one error this stage raises for bad input, so a caller (or the config layer) can see which key."""

from __future__ import annotations


class ModularityInputError(ValueError):
    """Input the modularity stage refuses; ``key`` names the argument or config key at fault
    (``k``, ``n_images``, ``n_batches``, ``features``, ``labels``, ``layers``, ``threshold``, ``min_run``)."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"{key}: {detail}")
        self.key, self.detail = key, detail
