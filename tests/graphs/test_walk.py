"""The module walk: which modules it accepts and how it names what it refuses."""

from __future__ import annotations

import pytest
from torch import nn

from netdyn.graphs import rolled_graph

from .helpers import Net


def test_unsupported_module_is_named():
    model = Net(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh()), nn.Sequential(nn.Flatten(), nn.Linear(2, 1)))
    with pytest.raises(TypeError, match="features.1.*Tanh"):
        rolled_graph(model)
