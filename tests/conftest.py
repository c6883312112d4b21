"""Shared fixtures: tiny study configs and run specs on the offline digits data set.

Everything here is sized for a 2-core CPU: width 1, batch size 64 (22 steps per digits epoch), one or two
epochs, and 8x8 inputs for VGG/ResNet (LeNet needs 16x16).
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from netdyn.config import RunSpec, expand_grid, validate_config  # noqa: E402

# architecture label -> (config entry, image size it is trained at in the tests)
ARCHS = {
    "lenet": ({"name": "lenet"}, 16),
    "vgg11bn": ({"name": "vgg", "depth": 11, "batchnorm": True}, 8),
    "resnet8": ({"name": "resnet", "depth": 8}, 8),
}


def _merge(base: dict, over: dict) -> dict:
    """Recursive dict update (nested dicts merge, everything else replaces)."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def tiny_config(**overrides) -> dict:
    """A small, valid (not yet validated) digits study; keyword arguments merge into it."""
    config = {
        "study": "tiny",
        "device": "cpu",
        "data": {"image_size": 16},
        "datasets": ["digits"],
        "architectures": [{"name": "lenet"}],
        "widths": [1],
        "hyperparameters": {"learning_rate": [0.05], "dropout": [0.0], "weight_decay": [0.0]},
        "seeds": [0],
        "training": {"epochs": 1, "batch_size": 64, "crop_padding": 2, "dtype": "float64"},
    }
    return _merge(config, overrides)


@pytest.fixture(scope="session")
def make_config():
    """Factory of fresh tiny config dicts: ``make_config(training={"epochs": 2})``."""
    return tiny_config


def tiny_spec(arch: str = "lenet", *, lr: float = 0.05, dropout: float = 0.0, wd: float = 0.0, seed: int = 0,
              image_size: int | None = None, **training) -> RunSpec:
    """One validated run of the tiny study (architecture by label, see ARCHS)."""
    entry, size = ARCHS[arch]
    config = validate_config(tiny_config(
        architectures=[entry], data={"image_size": image_size or size},
        hyperparameters={"learning_rate": [lr], "dropout": [dropout], "weight_decay": [wd]}, seeds=[seed],
        training=training))
    (spec,) = expand_grid(config)
    return spec


@pytest.fixture(scope="session")
def make_spec():
    """Factory of single run specs: ``make_spec("vgg11bn", lr=0.1, dropout=0.5, epochs=2)``."""
    return tiny_spec


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def child_env() -> dict:
    """Environment for child Pythons: the repo importable, one thread (as in this process)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    env["MKL_NUM_THREADS"] = "1"
    return env


@pytest.fixture
def blocked_modules(tmp_path):
    """Make a folder to put first on a child's PYTHONPATH, in which importing each of the named modules fails as
    a missing module's import does (the GPU image has no xgboost or graph-tool; bench/gpu_checks.sh's dry run
    blocks them the same way)."""
    def make(*names: str) -> Path:
        folder = tmp_path / "blocked_modules"
        for name in names:
            (folder / name).mkdir(parents=True)
            (folder / name / "__init__.py").write_text(
                f"raise ModuleNotFoundError(\"No module named '{name}' (blocked)\", name='{name}')\n")
        return folder
    return make
