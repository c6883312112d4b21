"""The synthetic study and one prediction run on it, shared by the prediction tests (built once)."""

from __future__ import annotations

import pytest

import netdyn.predict as P

from .synthetic import FAST, make_study


@pytest.fixture(scope="package")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="package")
def result(study):
    runs, root, graphs = study
    return P.run_prediction(runs, root, graphs, FAST, n_jobs=1)
