"""The CNN families whose training dynamics the study compares.

Every model built here obeys one structural contract, because netdyn.packed
relies on it: it packs K copies of a model into a single "batched" model by
swapping module types. (The graph builder no longer needs it: it traces any
module with torch.fx.) Over 300 lines: four families, the pruning rule and
the one table of which architectures and depths exist belong together.

* A model has ``features`` (``nn.Sequential``) and ``classifier``
  (``nn.Sequential`` whose first module is ``nn.Flatten``), and
  ``forward(x) == classifier(features(x))``.
* The only module types in the tree are those in ``ALLOWED_MODULES``; no
  functional ops appear in a forward except inside :class:`BasicBlock`.
* ``nn.Dropout`` lives only in ``classifier`` and is always present, with
  ``p=dropout`` (possibly 0), so that every dropout setting has the same tree.
* ``model.arch``, ``model.width`` and ``model.depth`` record the settings.

Weights keep PyTorch's default initialisation, so ``torch.manual_seed(s)``
followed by :func:`build_model` is reproducible.

Pruned networks (``drop``, the modularity stage's pruning check) are built,
not cut out of a trained one; see :func:`build_model` for the rule.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "ARCHITECTURES",
    "VGG_DEPTHS",
    "RESNET_DEPTHS",
    "ArchitectureError",
    "architecture_label",
    "resolve_architecture",
    "ALLOWED_MODULES",
    "BasicBlock",
    "build_model",
    "count_parameters",
    "parameter_table",
]

ARCHITECTURES = ("lenet", "alexnet", "vgg", "resnet")

# Standard VGG configurations A, B, D, E (Simonyan & Zisserman 2015), with
# channel counts divided by 8 so that width 8 is the standard network.
_VGG_CONFIGS = {
    11: (8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64, "M"),
    13: (8, 8, "M", 16, 16, "M", 32, 32, "M", 64, 64, "M", 64, 64, "M"),
    16: (8, 8, "M", 16, 16, "M", 32, 32, 32, "M", 64, 64, 64, "M", 64, 64, 64, "M"),
    19: (8, 8, "M", 16, 16, "M", 32, 32, 32, 32, "M", 64, 64, 64, 64, "M",
         64, 64, 64, 64, "M"),
}
VGG_DEPTHS = tuple(sorted(_VGG_CONFIGS))
RESNET_DEPTHS = (8, 14, 20, 32, 44, 56)  # 6n + 2, CIFAR ResNets (He et al. 2016)
DEFAULT_DEPTHS = {"vgg": 11, "resnet": 20}

ALLOWED_MODULES = (
    nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU, nn.MaxPool2d,
    nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Identity, nn.Sequential,
)  # plus BasicBlock, defined below


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut (He et al. 2016).

    ``shortcut`` is an empty ``nn.Sequential`` (identity) when shapes match,
    otherwise a 1x1 strided conv + BN projection ("option B"), which keeps the
    block free of padding tricks that a module walker could not see.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class _Net(nn.Module):
    """Common shell: the only forward any model has outside BasicBlock."""

    def __init__(self, arch: str, width: int, depth: int | None,
                 features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.arch = arch
        self.width = width
        self.depth = depth
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, width={self.width}, depth={self.depth}"


def _check_size(s: int, arch: str, image_size: int) -> int:
    """Fail early, naming image_size, when the feature map would vanish."""
    if s < 1:
        raise ValueError(
            f"image_size={image_size} is too small for arch {arch!r}: "
            f"spatial size inside the network would be {s}"
        )
    return s


def _lenet(w, in_channels, num_classes, image_size, dropout):
    s = image_size
    for _ in range(2):  # valid 5x5 conv, then 2x2 pool
        s = _check_size(s - 4, "lenet", image_size) // 2
    s = _check_size(s, "lenet", image_size)
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6 * w, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6 * w, 16 * w, 5), nn.ReLU(), nn.MaxPool2d(2),
    )
    classifier = nn.Sequential(
        nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(16 * w * s * s, 120 * w), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(120 * w, 84 * w), nn.ReLU(),
        nn.Linear(84 * w, num_classes),
    )
    return _Net("lenet", w, None, features, classifier)


def _alexnet(w, in_channels, num_classes, image_size, dropout):
    channels = (8 * w, 24 * w, 48 * w, 32 * w, 32 * w)  # width 8 = CIFAR AlexNet 64-192-384-256-256
    pool_after = {0, 1, 4}
    layers, c, s = [], in_channels, image_size
    for i, out in enumerate(channels):
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU()]
        if i in pool_after:
            layers.append(nn.MaxPool2d(2))
            s //= 2
        c = out
    s = _check_size(s, "alexnet", image_size)
    classifier = nn.Sequential(
        nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(c * s * s, 128 * w), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(128 * w, 128 * w), nn.ReLU(),
        nn.Linear(128 * w, num_classes),
    )
    return _Net("alexnet", w, None, nn.Sequential(*layers), classifier)


def _vgg(w, in_channels, num_classes, image_size, dropout, depth, batchnorm, drop=()):
    """VGG-A/B/D/E at 1/8 channels x width, without the convs numbered in ``drop``.

    A max-pool is skipped when the spatial size is already 1, so small inputs
    (e.g. 16x16 digits, which reach 1x1 after four pools) still work; on 32x32
    inputs all five pools are applied, as in the standard CIFAR VGG.
    """
    layers, c, s = [], in_channels, image_size
    convs = [v for v in _VGG_CONFIGS[depth] if v != "M"]
    _check_drop(drop, len(convs), f"vgg{depth} has {len(convs)} conv layers")
    if len(drop) == len(convs):
        raise ValueError(f"drop: {drop} would remove every conv layer of vgg{depth}; keep at least one")
    i_conv = -1
    for v in _VGG_CONFIGS[depth]:
        if v == "M":
            if s > 1:
                layers.append(nn.MaxPool2d(2))
                s //= 2
            continue
        i_conv += 1
        if i_conv in drop:
            continue  # c stays: the next kept conv (or the classifier) takes this conv's input channels
        out = v * w
        layers.append(nn.Conv2d(c, out, 3, padding=1, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU())
        c = out
    s = _check_size(s, "vgg", image_size)
    classifier = nn.Sequential(
        nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(c * s * s, 64 * w), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(64 * w, num_classes),
    )
    return _Net("vgg", w, depth, nn.Sequential(*layers), classifier)


def _resnet(w, in_channels, num_classes, image_size, dropout, depth, drop=()):
    """CIFAR ResNet-(6n+2): stem, three stages of n blocks, global pool; blocks numbered in ``drop``
    (0..3n-1 in forward order) are left out, which only a block with an identity shortcut allows."""
    n = (depth - 2) // 6
    _check_drop(drop, 3 * n, f"resnet{depth} has {3 * n} residual blocks")
    layers = [nn.Conv2d(in_channels, 16 * w, 3, padding=1, bias=False),
              nn.BatchNorm2d(16 * w), nn.ReLU()]
    c = 16 * w
    for stage, planes in enumerate((16 * w, 32 * w, 64 * w)):
        for i in range(n):
            stride = 2 if (stage > 0 and i == 0) else 1
            if stage * n + i in drop:
                if stride != 1 or c != planes:
                    raise ValueError(f"drop: resnet{depth} block {stage * n + i} changes the shape "
                                     f"({c}->{planes} channels, stride {stride}) and cannot be removed; "
                                     "only blocks with an identity shortcut can")
                continue
            layers.append(BasicBlock(c, planes, stride))
            c = planes
    layers.append(nn.AdaptiveAvgPool2d(1))
    classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, num_classes))
    return _Net("resnet", w, depth, nn.Sequential(*layers), classifier)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _check_drop(drop: tuple[int, ...], n: int, what: str) -> None:
    bad = [i for i in drop if not 0 <= i < n]
    if bad:
        raise ValueError(f"drop: indices {bad} out of range; {what}, numbered 0..{n - 1}")


def _normalise_drop(drop) -> tuple[int, ...]:
    """``drop`` as a sorted tuple of distinct ints (a JSON list from config.json is fine)."""
    try:
        items = list(drop)
    except TypeError:
        raise ValueError(f"drop must be a sequence of layer indices, got {drop!r}") from None
    if any(isinstance(i, bool) or not isinstance(i, int) for i in items):
        raise ValueError(f"drop must hold int layer indices, got {drop!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"drop names a layer twice: {drop!r}")
    return tuple(sorted(items))


def build_model(arch: str, *, width: int = 1, in_channels: int = 3, num_classes: int = 10,
                image_size: int = 32, dropout: float = 0.0, depth: int | None = None,
                batchnorm: bool | None = None, drop=()) -> nn.Module:
    """Build one model of family ``arch`` for ``in_channels`` x ``image_size``^2 inputs.

    ``width`` multiplies every hidden channel/unit count, so parameters grow
    roughly quadratically in it. ``depth`` applies to vgg (default 11) and
    resnet (default 20) only; ``batchnorm`` to vgg (default True) and resnet
    (always on). Raises ValueError naming the offending argument.

    ``drop`` (default empty: the full network) builds a pruned network:
    * vgg: indices of conv layers in the feature stack, counted over the convs
      only (0..7 for VGG-11). Each dropped conv goes with its BatchNorm and
      ReLU; max-pools stay where they are. Channels: the next kept conv takes
      the dropped conv's *input* channels (so dropping a conv whose in and out
      channels differ changes the next conv's weight shape; when the dropped
      conv is the last, the first linear layer reads the last kept conv's
      channels). At least one conv must stay.
    * resnet: indices of residual blocks, 0..3n-1 in forward order; only a
      block with an identity shortcut (stride 1, in = out channels) can go.
    * lenet, alexnet: not supported (``drop`` must be empty).
    The remaining modules are numbered consecutively as in any nn.Sequential,
    so a pruned net's module names are those of a net configured without the
    dropped layers (e.g. VGG-11-BN without conv 1: conv 2 follows both
    pools as ``features.5``, not ``features.8``). ``model.drop`` records the
    sorted indices.
    """
    depth, batchnorm = resolve_architecture(arch, depth, batchnorm)
    width = _positive_int("width", width)
    in_channels = _positive_int("in_channels", in_channels)
    num_classes = _positive_int("num_classes", num_classes)
    image_size = _positive_int("image_size", image_size)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a float in [0, 1), got {dropout!r}")
    dropout = float(dropout)
    drop = _normalise_drop(drop)
    if arch in ("lenet", "alexnet"):
        if drop:
            raise ValueError(f"drop: {arch} cannot drop layers (only vgg convs and resnet blocks), got {drop}")
        build = _lenet if arch == "lenet" else _alexnet
        model = build(width, in_channels, num_classes, image_size, dropout)
    elif arch == "vgg":
        model = _vgg(width, in_channels, num_classes, image_size, dropout, depth, batchnorm, drop)
    else:
        model = _resnet(width, in_channels, num_classes, image_size, dropout, depth, drop)
    model.drop = drop
    return model


class ArchitectureError(ValueError):
    """An architecture the builder cannot build; ``argument`` names the field at fault (arch, depth, batchnorm)."""

    def __init__(self, argument: str, detail: str) -> None:
        super().__init__(f"{argument}: {detail}")
        self.argument, self.detail = argument, detail


def resolve_architecture(arch: str, depth: int | None = None,
                         batchnorm: bool | None = None) -> tuple[int | None, bool | None]:
    """``(depth, batchnorm)`` with the family's defaults filled in: the one statement of which families,
    depths and BatchNorm settings exist (the config checks go through here too). Raises ArchitectureError."""
    if arch not in ARCHITECTURES:
        raise ArchitectureError("arch", f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    if arch in ("lenet", "alexnet"):
        if depth is not None:
            raise ArchitectureError("depth", f"{arch} has a fixed depth; got depth {depth!r}")
        if batchnorm:
            raise ArchitectureError("batchnorm", f"{arch} has no BatchNorm; allowed values: None or False")
        return None, None
    depths = VGG_DEPTHS if arch == "vgg" else RESNET_DEPTHS
    depth = DEFAULT_DEPTHS[arch] if depth is None else depth
    if depth not in depths:
        raise ArchitectureError("depth", f"{arch} depth must be one of {depths}, got {depth!r}")
    if arch == "resnet":
        if batchnorm is not None and not batchnorm:
            raise ArchitectureError("batchnorm", "resnet always has BatchNorm; allowed values: None or True")
        return depth, True
    return depth, True if batchnorm is None else bool(batchnorm)


def architecture_label(arch: str, depth: int | None = None, batchnorm: bool | None = None) -> str:
    """Family plus depth and BatchNorm, e.g. ``vgg11bn``, ``resnet8``, ``lenet``: part of run ids."""
    depth, batchnorm = resolve_architecture(arch, depth, batchnorm)
    if arch == "vgg":
        return f"vgg{depth}{'bn' if batchnorm else ''}"
    return f"resnet{depth}" if arch == "resnet" else arch


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (BN running stats are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_table(archs=ARCHITECTURES, widths=(1, 2, 4, 8), **data_kwargs) -> list[dict]:
    """Rows ``{arch, width, parameters}`` for a README table; ``data_kwargs``
    (in_channels, num_classes, image_size, depth, ...) go to :func:`build_model`."""
    return [
        {"arch": arch, "width": w,
         "parameters": count_parameters(build_model(arch, width=w, **data_kwargs))}
        for arch in archs for w in widths
    ]
