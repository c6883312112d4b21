"""Tests for netdyn.data.

Each torchvision data set is faked with a few images written in its real
on-disk format, so that the real torchvision parsing code runs offline.
"""

from __future__ import annotations

import os
import pickle
import struct

import numpy as np
import pytest
import scipy.io
import torch

import netdyn.data as nd
from netdyn.data import (
    DATASETS,
    DatasetInfo,
    DatasetNotFoundError,
    ImageData,
    dataset_info,
    load_dataset,
)

RNG_SEED = 1234


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: tmp_path roots differ, but be explicit."""
    nd.clear_cache()
    yield
    nd.clear_cache()


def _ignore_md5(monkeypatch, module_name: str) -> None:
    """Make torchvision's md5 check only test that the file exists.

    torchvision compares our tiny fake files with the md5 sums of the real
    downloads, which they can never match; everything else (paths, parsing)
    stays the real torchvision code.  Patching the module-level
    ``check_integrity`` covers both the class's ``_check_integrity`` and the
    CIFAR meta-file check in ``_load_meta``, which bypasses that method.
    """
    import importlib

    module = importlib.import_module(f"torchvision.datasets.{module_name}")
    monkeypatch.setattr(module, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def _expected(raw_train: np.ndarray, raw_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What load_dataset should return for NCHW uint8 arrays at native size."""
    tr = raw_train.astype(np.float64) / 255.0
    te = raw_test.astype(np.float64) / 255.0
    mean = tr.mean(axis=(0, 2, 3), keepdims=True)
    std = tr.std(axis=(0, 2, 3), keepdims=True)
    return (tr - mean) / std, (te - mean) / std


def _check_normalised(data: ImageData) -> None:
    x = data.x.double()
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-4), mean
    assert torch.allclose(std, torch.ones_like(std), atol=1e-4), std


def _check_split(data: ImageData, n: int, c: int, size: int) -> None:
    assert isinstance(data, ImageData)
    assert data.x.dtype == torch.float32 and data.y.dtype == torch.int64
    assert tuple(data.x.shape) == (n, c, size, size)
    assert tuple(data.y.shape) == (n,)
    assert len(data) == n


# --------------------------------------------------------------------------- #
# writers of tiny files in each on-disk format


def _write_cifar10(root, rng, per_batch=4, n_test=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    xs, ys = [], []
    # torchvision unpickles with encoding="latin1", so the real (Python 2) files
    # have str keys; bytes keys (b"data") would not be found.
    for i in range(1, 6):
        x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, size=per_batch).tolist()
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": x, "labels": y, "batch_label": f"batch {i}"}, f)
        xs.append(x)
        ys += y
    x_te = rng.integers(0, 256, size=(n_test, 3072), dtype=np.uint8)
    y_te = rng.integers(0, 10, size=n_test).tolist()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": x_te, "labels": y_te}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    # rows are channel-major 32x32 planes: R(1024) G(1024) B(1024)
    return np.vstack(xs).reshape(-1, 3, 32, 32), np.array(ys), x_te.reshape(-1, 3, 32, 32), np.array(y_te)


def _write_cifar100(root, rng, n_train=12, n_test=5):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    x_tr = rng.integers(0, 256, size=(n_train, 3072), dtype=np.uint8)
    y_tr = rng.integers(0, 100, size=n_train).tolist()
    y_tr[0], y_tr[1] = 0, 99  # the extremes must survive
    x_te = rng.integers(0, 256, size=(n_test, 3072), dtype=np.uint8)
    y_te = rng.integers(0, 100, size=n_test).tolist()
    for name, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x, "fine_labels": y, "coarse_labels": [v // 5 for v in y]}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"f{i}" for i in range(100)], "coarse_label_names": []}, f)
    return x_tr.reshape(-1, 3, 32, 32), np.array(y_tr), x_te.reshape(-1, 3, 32, 32), np.array(y_te)


def _write_idx(path, array: np.ndarray) -> None:
    """IDX format: magic (0, 0, type 0x08 = ubyte, ndim), big-endian int32 dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _write_mnist_like(root, rng, folder_name, n_train=10, n_test=4):
    raw = root / folder_name / "raw"
    raw.mkdir(parents=True)
    x_tr = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    y_tr = np.arange(n_train, dtype=np.uint8) % 10
    x_te = rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8)
    y_te = (9 - np.arange(n_test, dtype=np.uint8)) % 10
    # torchvision needs the uncompressed files (it checks for these names only)
    _write_idx(raw / "train-images-idx3-ubyte", x_tr)
    _write_idx(raw / "train-labels-idx1-ubyte", y_tr)
    _write_idx(raw / "t10k-images-idx3-ubyte", x_te)
    _write_idx(raw / "t10k-labels-idx1-ubyte", y_te)
    return x_tr[:, None], y_tr.astype(np.int64), x_te[:, None], y_te.astype(np.int64)


def _write_svhn(root, rng, n_train=9, n_test=4):
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for name, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)  # (H, W, C, N)
        y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)  # SVHN labels 1..10; 10 is digit 0
        scipy.io.savemat(str(root / f"{name}_32x32.mat"), {"X": x, "y": y})
        out += [x.transpose(3, 2, 0, 1), np.where(y.ravel() == 10, 0, y.ravel()).astype(np.int64)]
    return tuple(out)


# --------------------------------------------------------------------------- #
# torchvision formats

CASES = {
    # name: (writer, channels, native size, md5-checking torchvision module or None)
    "cifar10": (_write_cifar10, 3, 32, "cifar"),
    "cifar100": (_write_cifar100, 3, 32, "cifar"),
    "mnist": (lambda root, rng: _write_mnist_like(root, rng, "MNIST"), 1, 28, None),
    "fashionmnist": (lambda root, rng: _write_mnist_like(root, rng, "FashionMNIST"), 1, 28, None),
    "svhn": (_write_svhn, 3, 32, "svhn"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_torchvision_format_round_trip(name, tmp_path, monkeypatch):
    writer, channels, native, md5_module = CASES[name]
    if md5_module:
        _ignore_md5(monkeypatch, md5_module)
    raw_tr, y_tr, raw_te, y_te = writer(tmp_path, np.random.default_rng(RNG_SEED))

    train, test, info = load_dataset(name, tmp_path)

    _check_split(train, len(y_tr), channels, native)
    _check_split(test, len(y_te), channels, native)
    assert torch.equal(train.y, torch.from_numpy(y_tr))
    assert torch.equal(test.y, torch.from_numpy(y_te))
    _check_normalised(train)
    # pixel layout and the exact normalisation (train statistics applied to test)
    exp_tr, exp_te = _expected(raw_tr, raw_te)
    np.testing.assert_allclose(train.x.numpy(), exp_tr, atol=1e-4)
    np.testing.assert_allclose(test.x.numpy(), exp_te, atol=1e-4)

    ref = dataset_info(name)
    assert info == DatasetInfo(name, ref.in_channels, ref.num_classes, native, len(y_tr), len(y_te))


def test_svhn_label_ten_becomes_zero(tmp_path, monkeypatch):
    _ignore_md5(monkeypatch, "svhn")
    _write_svhn(tmp_path, np.random.default_rng(0), n_train=10, n_test=10)
    train, test, _ = load_dataset("svhn", tmp_path)
    assert train.y.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    assert int(test.y.min()) == 0 and int(test.y.max()) == 9


@pytest.mark.parametrize("name,size", [("cifar10", 16), ("mnist", 40), ("svhn", 8)])
def test_resize(name, size, tmp_path, monkeypatch):
    writer, channels, _native, md5_module = CASES[name]
    if md5_module:
        _ignore_md5(monkeypatch, md5_module)
    _, y_tr, _, y_te = writer(tmp_path, np.random.default_rng(RNG_SEED))
    train, test, info = load_dataset(name, tmp_path, image_size=size)
    _check_split(train, len(y_tr), channels, size)
    _check_split(test, len(y_te), channels, size)
    _check_normalised(train)
    assert info.image_size == size


def test_limits_keep_first_samples(tmp_path):
    _, y_tr, _, y_te = _write_mnist_like(tmp_path, np.random.default_rng(0), "MNIST")
    train, test, info = load_dataset("mnist", tmp_path, limit_train=5, limit_test=2)
    assert train.y.tolist() == y_tr[:5].tolist()
    assert test.y.tolist() == y_te[:2].tolist()
    assert (info.n_train, info.n_test) == (5, 2)
    _check_normalised(train)  # statistics come from the kept samples


def test_cache_returns_same_objects(tmp_path):
    _write_mnist_like(tmp_path, np.random.default_rng(0), "MNIST")
    first = load_dataset("mnist", tmp_path)
    assert load_dataset("mnist", str(tmp_path)) is first  # str and Path roots share a key
    nd.clear_cache()
    again = load_dataset("mnist", tmp_path)
    assert again is not first and torch.equal(again[0].x, first[0].x)


# --------------------------------------------------------------------------- #
# errors


@pytest.mark.parametrize("name", list(CASES))
def test_missing_dataset_names_directory_and_download(name, tmp_path):
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_dataset(name, tmp_path / "nowhere", download=False)
    msg = str(excinfo.value)
    assert name in msg
    assert "download" in msg
    assert str(nd._expected_dir(name, (tmp_path / "nowhere").resolve())) in msg
    assert str((tmp_path / "nowhere").resolve()) in msg
    assert isinstance(excinfo.value, FileNotFoundError)


def test_missing_cifar_meta_is_reported(tmp_path, monkeypatch):
    _ignore_md5(monkeypatch, "cifar")
    _write_cifar10(tmp_path, np.random.default_rng(0))
    (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_dataset("cifar10", tmp_path)


def test_unknown_name():
    with pytest.raises(ValueError, match="cifar100") as excinfo:
        load_dataset("imagenet")
    for name in DATASETS:
        assert name in str(excinfo.value)
    with pytest.raises(ValueError, match="svhn"):
        dataset_info("imagenet")


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_image_size(bad):
    with pytest.raises(ValueError, match="image_size"):
        dataset_info("mnist", image_size=bad)
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("digits", image_size=bad)


# --------------------------------------------------------------------------- #
# digits and dataset_info


def test_digits_split_and_shape():
    train, test, info = load_dataset("digits")
    _check_split(train, 1347, 1, 16)
    _check_split(test, 450, 1, 16)
    assert set(train.y.tolist()) == set(range(10))
    assert set(test.y.tolist()) == set(range(10))
    _check_normalised(train)
    assert info == DatasetInfo("digits", 1, 10, 16, 1347, 450)


def test_digits_deterministic():
    a_train, a_test, _ = load_dataset("digits")
    nd.clear_cache()
    b_train, b_test, _ = load_dataset("digits")
    assert a_train is not b_train
    assert torch.equal(a_train.x, b_train.x) and torch.equal(a_train.y, b_train.y)
    assert torch.equal(a_test.x, b_test.x) and torch.equal(a_test.y, b_test.y)


def test_digits_native_size():
    train, _, info = load_dataset("digits", image_size=8)
    assert tuple(train.x.shape[1:]) == (1, 8, 8) and info.image_size == 8


def test_imagedata_to():
    data = ImageData(torch.zeros(3, 1, 2, 2), torch.arange(3))
    moved = data.to("cpu")
    assert len(moved) == 3 and moved.x.device.type == "cpu"


def test_dataset_info_all_names_without_disk(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nothing under ./data
    monkeypatch.setattr(nd, "_load_cached", None)  # any data access would now fail
    expected = {
        "digits": (1, 10, 16, 1347, 450),
        "mnist": (1, 10, 28, 60000, 10000),
        "fashionmnist": (1, 10, 28, 60000, 10000),
        "cifar10": (3, 10, 32, 50000, 10000),
        "cifar100": (3, 100, 32, 50000, 10000),
        "svhn": (3, 10, 32, 73257, 26032),
    }
    assert set(expected) == set(DATASETS)
    for name, (c, k, size, n_tr, n_te) in expected.items():
        assert dataset_info(name) == DatasetInfo(name, c, k, size, n_tr, n_te)
        assert dataset_info(name, image_size=12).image_size == 12
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- #
# the cheap availability check the workflow runs before any job


@pytest.mark.parametrize("name", list(CASES))
def test_check_available_passes_on_written_files(name, tmp_path):
    CASES[name][0](tmp_path, np.random.default_rng(RNG_SEED))
    nd.check_available(name, tmp_path)  # files there: no error


@pytest.mark.parametrize("name", list(CASES))
def test_check_available_names_missing_files(name, tmp_path):
    with pytest.raises(nd.DatasetNotFoundError) as err:
        nd.check_available(name, tmp_path)
    msg = str(err.value)
    assert name in msg and str(tmp_path.resolve()) in msg and "data.download: true" in msg


def test_check_available_needs_nothing_for_digits_or_downloads(tmp_path):
    nd.check_available("digits", tmp_path)
    nd.check_available("cifar10", tmp_path, download=True)
