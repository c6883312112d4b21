"""Image data sets as whole, normalised tensors.

The study trains many small runs on the same data, so every data set is read
once, converted in bulk (never image by image through PIL) and kept in memory
as float32 tensors of shape (N, C, H, W).  Runs then index those tensors
directly, which is far cheaper than a DataLoader over PIL images.

How pixels are prepared, for every data set:

1. scale to [0, 1] (uint8 pixels / 255; sklearn digits, whose values run
   0..16, / 16);
2. resize, if ``image_size`` differs from the stored size, with
   ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``
   (with ``antialias=True`` only when shrinking, so that downsampling does not
   alias; upsampling is plain bilinear);
3. normalise per channel with the mean and standard deviation of the
   (resized, limited) TRAIN split, applied to both splits, so that no test
   statistics leak into training.

How digits are resized: sklearn's 8×8 digits are upsampled to ``image_size``
(16 by default, so that CNNs with a few pooling layers still have spatial
extent) by the bilinear interpolation above, after scaling to [0, 1].

Over 300 lines because every data set's reader sits beside the one preparation
above that they share, so that no reader can prepare pixels its own way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "ImageData",
    "DatasetNotFoundError",
    "dataset_info",
    "load_dataset",
    "clear_cache",
]

DATASETS = ("digits", "mnist", "fashionmnist", "cifar10", "cifar100", "svhn")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data set, without loading it."""

    name: str
    in_channels: int
    num_classes: int
    image_size: int
    n_train: int | None = None
    n_test: int | None = None


@dataclass
class ImageData:
    """One split: normalised float32 images (N, C, H, W) and int64 labels (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")

    def to(self, device) -> "ImageData":
        """Move both tensors, e.g. onto the GPU once before a run's many epochs."""
        return ImageData(self.x.to(device), self.y.to(device))

    def __len__(self) -> int:
        return int(self.y.shape[0])


class DatasetNotFoundError(FileNotFoundError):
    """The data set's files are not on disk and were not to be downloaded."""


# name -> (in_channels, num_classes, native size, default size, n_train, n_test)
_SPECS: dict[str, tuple[int, int, int, int, int, int]] = {
    "digits": (1, 10, 8, 16, 1347, 450),
    "mnist": (1, 10, 28, 28, 60000, 10000),
    "fashionmnist": (1, 10, 28, 28, 60000, 10000),
    "cifar10": (3, 10, 32, 32, 50000, 10000),
    "cifar100": (3, 100, 32, 32, 50000, 10000),
    "svhn": (3, 10, 32, 32, 73257, 26032),
}


def _check_name(name: str) -> str:
    key = str(name).lower()
    if key not in _SPECS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def _check_image_size(image_size: int | None, default: int) -> int:
    if image_size is None:
        return default
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer (or None for the default), got {image_size!r}")
    return int(image_size)


def _check_limit(label: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{label} must be a positive integer or None, got {value!r}")
    return int(value)


def dataset_info(name: str, image_size: int | None = None) -> DatasetInfo:
    """Shape facts for ``name`` without touching disk, to plan and validate configs."""
    key = _check_name(name)
    channels, classes, _native, default, n_train, n_test = _SPECS[key]
    return DatasetInfo(key, channels, classes, _check_image_size(image_size, default), n_train, n_test)


# --------------------------------------------------------------------------- #
# raw readers: each returns uint8/float arrays (N, C, H, W) in [0, 1] and int64 labels


def _load_digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """sklearn digits with a fixed stratified 75/25 split, so every run sees the same test set."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # (1797, 8, 8), values 0..16
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(images, labels, test_size=0.25, random_state=0, stratify=labels)
    return (
        torch.from_numpy(x_tr).unsqueeze(1),
        torch.from_numpy(y_tr),
        torch.from_numpy(x_te).unsqueeze(1),
        torch.from_numpy(y_te),
    )


def _expected_dir(key: str, root: Path) -> Path:
    """Where torchvision looks for a data set's files under ``root``."""
    if key == "mnist":
        return root / "MNIST" / "raw"
    if key == "fashionmnist":
        return root / "FashionMNIST" / "raw"
    if key == "cifar10":
        return root / "cifar-10-batches-py"
    if key == "cifar100":
        return root / "cifar-100-python"
    return root  # svhn keeps train_32x32.mat / test_32x32.mat directly in root


def _torchvision_split(key: str, root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one split from the arrays the torchvision data set object holds (NCHW uint8, int64)."""
    from torchvision import datasets as tvd

    if key in ("mnist", "fashionmnist"):
        cls = tvd.MNIST if key == "mnist" else tvd.FashionMNIST
        ds = cls(str(root), train=train, download=download)
        x = torch.as_tensor(ds.data).unsqueeze(1)  # (N, 28, 28) uint8 tensor
        y = torch.as_tensor(ds.targets, dtype=torch.int64)
    elif key in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if key == "cifar10" else tvd.CIFAR100
        ds = cls(str(root), train=train, download=download)
        x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2)  # NHWC -> NCHW
        y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    elif key == "svhn":
        ds = tvd.SVHN(str(root), split="train" if train else "test", download=download)
        x = torch.from_numpy(np.ascontiguousarray(ds.data))  # already NCHW
        y = torch.as_tensor(np.asarray(ds.labels), dtype=torch.int64).reshape(-1)  # torchvision maps 10 -> 0
    else:  # pragma: no cover - guarded by _check_name
        raise ValueError(key)
    return x, y


_EXPECTED_FILES = {
    "mnist": "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
    "(uncompressed)",
    "cifar10": "data_batch_1..5, test_batch, batches.meta (the extracted cifar-10-python.tar.gz)",
    "cifar100": "train, test, meta (the extracted cifar-100-python.tar.gz)",
    "svhn": "train_32x32.mat, test_32x32.mat",
}
_EXPECTED_FILES["fashionmnist"] = _EXPECTED_FILES["mnist"]


_REQUIRED_FILES = {
    "mnist": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "cifar10": tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
    "cifar100": ("train", "test", "meta"),
    "svhn": ("train_32x32.mat", "test_32x32.mat"),
}
_REQUIRED_FILES["fashionmnist"] = _REQUIRED_FILES["mnist"]


def check_available(name: str, root: str | Path = "data", *, download: bool = False) -> None:
    """Fail fast, before any job runs: with downloads off, a torchvision data set's files must be on disk.
    Only file names are checked here (cheap); their content is checked when they are loaded."""
    key = _check_name(name)
    if key == "digits" or download:
        return
    where = _expected_dir(key, Path(root).resolve())
    missing = [f for f in _REQUIRED_FILES[key] if not (where / f).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"data set {key!r} not found in {where} (missing {', '.join(missing)}): set `data.download: true` "
            f"in the config, or place the files there (expected files: {_EXPECTED_FILES[key]})")


def _read_torchvision(key: str, root: Path, download: bool, limit_train: int | None, limit_test: int | None):
    try:
        x_tr, y_tr = _torchvision_split(key, root, True, download)
        x_te, y_te = _torchvision_split(key, root, False, download)
    except (RuntimeError, OSError) as err:
        # torchvision signals missing/corrupt files with RuntimeError; a failed
        # download may surface as URLError (an OSError) instead.
        if isinstance(err, OSError) and not download:
            raise
        where = _expected_dir(key, root)
        how = (
            "the download failed or the downloaded files are corrupt; check the network or place the files there"
            if download
            else "set `data.download: true` in the config (or pass download=True), or place the files there"
        )
        how += f" (expected files: {_EXPECTED_FILES[key]})"
        raise DatasetNotFoundError(
            f"data set {key!r} not found (or corrupt) in {where}: {how}. torchvision said: {err}"
        ) from err
    return x_tr[:limit_train], y_tr[:limit_train], x_te[:limit_test], y_te[:limit_test]


# --------------------------------------------------------------------------- #
# bulk conversion


def _to_unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1]; float input is taken as already scaled."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32, copy=True)  # a copy: normalisation later works in place


def _resize(x: torch.Tensor, size: int, chunk: int = 8192) -> torch.Tensor:
    """Bilinear resize of float (N, C, H, W) in chunks, to cap peak memory on large sets."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < max(x.shape[-2], x.shape[-1])
    out = torch.empty((x.shape[0], x.shape[1], size, size), dtype=torch.float32)
    for start in range(0, x.shape[0], chunk):
        part = _to_unit_float(x[start : start + chunk])
        out[start : start + chunk] = F.interpolate(
            part, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
        )
    return out


def _prepare(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-2:] == (size, size):
        return _to_unit_float(x).contiguous()
    return _resize(x, size)


def _normalise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel standardisation with TRAIN statistics (float64 sums for accuracy)."""
    flat = train.transpose(0, 1).reshape(train.shape[1], -1).to(torch.float64)
    mean = flat.mean(dim=1)
    std = flat.std(dim=1, unbiased=False).clamp_min(1e-8)  # a constant channel must not divide by 0
    mean = mean.to(torch.float32).view(1, -1, 1, 1)
    std = std.to(torch.float32).view(1, -1, 1, 1)
    return train.sub_(mean).div_(std), test.sub_(mean).div_(std)


# --------------------------------------------------------------------------- #
# public loader with a per-process cache


@functools.lru_cache(maxsize=4)
def _load_cached(
    key: str, root: str, download: bool, image_size: int, limit_train: int | None, limit_test: int | None
) -> tuple[ImageData, ImageData, DatasetInfo]:
    if key == "digits":
        x_tr, y_tr, x_te, y_te = _load_digits()
        x_tr, y_tr, x_te, y_te = x_tr[:limit_train], y_tr[:limit_train], x_te[:limit_test], y_te[:limit_test]
    else:
        x_tr, y_tr, x_te, y_te = _read_torchvision(key, Path(root), download, limit_train, limit_test)

    x_tr, x_te = _normalise(_prepare(x_tr, image_size), _prepare(x_te, image_size))
    train = ImageData(x_tr, y_tr.to(torch.int64).contiguous())
    test = ImageData(x_te, y_te.to(torch.int64).contiguous())
    info = replace(dataset_info(key, image_size), n_train=len(train), n_test=len(test))
    return train, test, info


def load_dataset(
    name: str,
    root: str | Path = "data",
    *,
    download: bool = False,
    image_size: int | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> tuple[ImageData, ImageData, DatasetInfo]:
    """Load ``name`` as normalised (train, test, info); cached per process.

    ``image_size`` defaults to the native size (16 for digits, upsampled from
    8×8).  ``limit_train`` / ``limit_test`` keep the first N samples of each
    split (deterministic, for quick tests); normalisation statistics come
    from the kept train samples.  ``info.n_train`` / ``info.n_test`` are the
    sizes actually returned.

    The same call returns the *same* tensor objects from the cache, so
    callers must not modify them in place.
    Raises DatasetNotFoundError when torchvision cannot find the files.
    """
    key = _check_name(name)
    size = _check_image_size(image_size, _SPECS[key][3])
    root_abs = str(Path(root).expanduser().resolve())
    return _load_cached(
        key,
        root_abs if key != "digits" else "",  # digits ship with sklearn: root is irrelevant
        bool(download) if key != "digits" else False,
        size,
        _check_limit("limit_train", limit_train),
        _check_limit("limit_test", limit_test),
    )


def clear_cache() -> None:
    """Forget cached data sets (tests, or to free memory between studies)."""
    _load_cached.cache_clear()


load_dataset.cache_clear = clear_cache  # type: ignore[attr-defined]
