"""The data both sides of the comparison read, and the seed-style loop (c) it is compared with.

The seed-style loop is what the original code of the temporal-graph paper runs: torchvision's CIFAR10 class
with PIL RandomCrop(32, padding=4) / RandomHorizontalFlip / ToTensor / Normalize, a DataLoader (shuffle,
workers, pin_memory on cuda), one nn.Module, torch.optim.SGD with momentum, and the per-step ``loss.item()``
/ accuracy ``.item()`` book-keeping of such scripts.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from netdyn.data import ImageData
from netdyn.models import build_model

from .common import OverTime, cleanup, now, sync

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """N synthetic images in the CIFAR-10 python format (cifar-10-batches-py/data_batch_1..5, test_batch,
    batches.meta). Rows are channel-major 32x32 planes (R 1024, G 1024, B 1024), as in the real files; keys
    are str because torchvision unpickles with encoding='latin1'. Each class has its own mean colour, so the
    task is learnable (the speed does not depend on it)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    colours = rng.integers(40, 216, size=(10, 3, 1))

    def make(n):
        y = rng.integers(0, 10, size=n)
        x = colours[y] + rng.normal(0, 40, size=(n, 3, 1024))
        return np.clip(x, 0, 255).astype(np.uint8).reshape(n, 3072), y

    def dump(name, obj):
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f)

    x, y = make(n_train)
    for i, (xb, yb) in enumerate(zip(np.array_split(x, 5), np.array_split(y, 5)), start=1):
        dump(f"data_batch_{i}", {"batch_label": f"synthetic batch {i} of 5", "data": xb, "labels": yb.tolist(),
                                 "filenames": [f"img{i}_{j}.png" for j in range(len(yb))]})
    xt, yt = make(n_test)
    dump("test_batch", {"batch_label": "synthetic test batch", "data": xt, "labels": yt.tolist()})
    dump("batches.meta", {"label_names": LABEL_NAMES, "num_cases_per_batch": math.ceil(n_train / 5),
                          "num_vis": 3072})
    return folder


@contextlib.contextmanager
def md5_check_is_exists():
    """torchvision checks the md5 of the real downloads, which synthetic files can never match; within this
    block its check only asks that the file exists. All parsing stays torchvision's own code. Patching the
    module-level name covers CIFAR10._check_integrity and the meta-file check in _load_meta."""
    import torchvision.datasets.cifar as tv_cifar

    old = tv_cifar.check_integrity
    tv_cifar.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)
    try:
        yield
    finally:
        tv_cifar.check_integrity = old


def synthetic_image_data(n: int, channels: int, size: int, device, seed: int = 0) -> ImageData:
    """Normalised-looking tensors for the projection (speed does not depend on pixel values), made on the
    device."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(n, channels, size, size, generator=g, device=device)
    y = torch.randint(0, 10, (n,), generator=g, device=device)
    return ImageData(x, y)


def measure_seed_loop(arch: dict, width: int, root: Path, device: torch.device, workers: int, deadline: float,
                      batch_size: int = 128, repeats: int = 1) -> dict:
    """The seed-style loop: one warm-up epoch, then `repeats` timed epochs; the fastest counts. DataLoader
    worker start-up is inside each epoch (such scripts keep no persistent workers). `arch` holds
    build_model's arch/depth/batchnorm."""
    import torchvision
    import torchvision.transforms as T
    from torch.utils.data import DataLoader

    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(CIFAR_MEAN, CIFAR_STD)])
    with md5_check_is_exists():
        ds = torchvision.datasets.CIFAR10(str(root), train=True, transform=tf, download=False)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda")
    torch.manual_seed(0)
    model = build_model(arch["arch"], width=width, depth=arch["depth"], batchnorm=arch["batchnorm"],
                        in_channels=3, num_classes=10, image_size=32).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    def epoch() -> int:
        model.train()
        seen, running, correct = 0, 0.0, 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad()
            out = model(x)
            loss = criterion(out, y)
            loss.backward()
            opt.step()
            running += loss.item()
            correct += (out.argmax(1) == y).sum().item()
            seen += y.size(0)
            if now() > deadline:
                raise OverTime()
        return seen

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t = now()
    epoch()  # warm-up
    warm = now() - t
    all_s = []
    for _ in range(repeats):
        sync(device)
        t0 = now()
        n = epoch()
        sync(device)
        all_s.append(now() - t0)
    seconds = min(all_s)
    rec = {"k": 1, "images_timed_per_model": n, "steps_timed": math.ceil(n / batch_size), "seconds": seconds,
           "seconds_all": all_s, "images_per_s_per_model": n / seconds, "images_per_s_total": n / seconds,
           "workers": workers, "warmup_epoch_seconds": warm}
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        rec.update(peak_mem_bytes=peak, peak_mem_per_member_bytes=peak)
    del model, opt, loader, ds
    cleanup(device)
    return rec
