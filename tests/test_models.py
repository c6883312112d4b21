"""Tests for netdyn.models: shapes, sizes, reproducibility and the module contract."""

import pytest
import torch
from torch import nn

from netdyn.models import (
    ALLOWED_MODULES,
    ARCHITECTURES,
    RESNET_DEPTHS,
    VGG_DEPTHS,
    BasicBlock,
    build_model,
    count_parameters,
    parameter_table,
)

# name -> (in_channels, image_size, num_classes)
DATA = {
    "digits": (1, 16, 10),
    "mnist": (1, 28, 10),
    "fashionmnist": (1, 28, 10),
    "cifar10": (3, 32, 10),
    "svhn": (3, 32, 10),
    "cifar100": (3, 32, 100),
}

# (arch, extra kwargs) covering the variants the study uses
VARIANTS = [
    ("lenet", {}),
    ("alexnet", {}),
    ("vgg", {}),
    ("vgg", {"batchnorm": False}),
    ("resnet", {"depth": 8}),
    ("resnet", {"depth": 20}),
]


def _data_kwargs(name):
    c, s, k = DATA[name]
    return {"in_channels": c, "image_size": s, "num_classes": k}


@pytest.mark.parametrize("data", sorted(DATA))
@pytest.mark.parametrize("arch,extra", VARIANTS, ids=lambda v: str(v))
def test_output_shape(arch, extra, data):
    kw = _data_kwargs(data)
    model = build_model(arch, **kw, **extra).eval()
    x = torch.randn(2, kw["in_channels"], kw["image_size"], kw["image_size"])
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, kw["num_classes"])
    assert torch.equal(y, model.classifier(model.features(x)))


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_parameters_grow_quadratically_with_width(arch):
    counts = [count_parameters(build_model(arch, width=w)) for w in (1, 2, 4)]
    assert counts[0] < counts[1] < counts[2]
    assert 2.5 <= counts[1] / counts[0] <= 4.2


def test_lenet5_classic_parameter_count():
    model = build_model("lenet", width=1, in_channels=3, image_size=32, num_classes=10)
    assert count_parameters(model) == 62006


def test_resnet20_parameter_count_matches_paper():
    model = build_model("resnet", depth=20, width=1)
    n = count_parameters(model)
    # ~0.27M published (option A); projection shortcuts add 2,752.
    assert n == 272474
    assert 260_000 <= n <= 280_000


def test_alexnet_width8_is_standard_cifar_alexnet():
    convs = [m for m in build_model("alexnet", width=8).features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 192, 384, 256, 256]


def test_vgg_width8_is_standard_vgg():
    model = build_model("vgg", width=8, depth=16)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13
    assert convs[0].out_channels == 64 and convs[-1].out_channels == 512


def _all_variants():
    yield from (build_model(a, dropout=0.3, **e) for a, e in VARIANTS)
    yield from (build_model("vgg", depth=d, dropout=0.3) for d in VGG_DEPTHS)
    yield build_model("vgg", image_size=16, in_channels=1, dropout=0.3)


@pytest.mark.parametrize("model", list(_all_variants()), ids=lambda m: f"{m.arch}-{m.depth}")
def test_module_contract(model):
    assert isinstance(model.features, nn.Sequential)
    assert isinstance(model.classifier, nn.Sequential)
    assert isinstance(model.classifier[0], nn.Flatten)
    assert model.arch in ARCHITECTURES and model.width == 1
    assert (model.depth is None) == (model.arch in ("lenet", "alexnet"))
    for m in model.modules():
        if m is model:
            continue
        assert isinstance(m, ALLOWED_MODULES + (BasicBlock,)), type(m)
        assert not isinstance(m, nn.BatchNorm1d)
        if isinstance(m, nn.ReLU):
            assert not m.inplace
    drops = [m for m in model.classifier if isinstance(m, nn.Dropout)]
    assert drops and all(d.p == 0.3 for d in drops)
    assert not any(isinstance(m, nn.Dropout) for m in model.features.modules())


def test_dropout_always_present_even_at_zero():
    for arch in ARCHITECTURES:
        drops = [m for m in build_model(arch).classifier if isinstance(m, nn.Dropout)]
        assert drops and all(d.p == 0.0 for d in drops)


def test_basicblock_shortcuts():
    assert len(BasicBlock(16, 16, 1).shortcut) == 0
    proj = BasicBlock(16, 32, 2).shortcut
    assert [type(m) for m in proj] == [nn.Conv2d, nn.BatchNorm2d]
    assert proj[0].stride == (2, 2) and proj[0].kernel_size == (1, 1)
    assert BasicBlock(16, 32, 2)(torch.randn(1, 16, 8, 8)).shape == (1, 32, 4, 4)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_same_seed_same_weights(arch):
    torch.manual_seed(7)
    a = build_model(arch).state_dict()
    torch.manual_seed(7)
    b = build_model(arch).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kwargs,name", [
    ({"arch": "mlp"}, "arch"),
    ({"arch": "lenet", "width": 0}, "width"),
    ({"arch": "lenet", "width": 1.5}, "width"),
    ({"arch": "lenet", "in_channels": 0}, "in_channels"),
    ({"arch": "lenet", "num_classes": 0}, "num_classes"),
    ({"arch": "lenet", "image_size": 0}, "image_size"),
    ({"arch": "lenet", "dropout": 1.0}, "dropout"),
    ({"arch": "lenet", "dropout": -0.1}, "dropout"),
    ({"arch": "lenet", "depth": 11}, "depth"),
    ({"arch": "alexnet", "batchnorm": True}, "batchnorm"),
    ({"arch": "vgg", "depth": 12}, "depth"),
    ({"arch": "resnet", "depth": 18}, "depth"),
    ({"arch": "resnet", "batchnorm": False}, "batchnorm"),
    ({"arch": "lenet", "image_size": 12}, "image_size"),
    ({"arch": "alexnet", "image_size": 4}, "image_size"),
])
def test_bad_arguments_raise(kwargs, name):
    kwargs = dict(kwargs)
    arch = kwargs.pop("arch")
    with pytest.raises(ValueError, match=name):
        build_model(arch, **kwargs)


def test_too_small_image_names_arch():
    with pytest.raises(ValueError, match="lenet"):
        build_model("lenet", image_size=12)


def test_vgg_skips_pools_on_small_inputs():
    model = build_model("vgg", in_channels=1, image_size=16, depth=19)
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 4  # fifth pool skipped: spatial size is already 1
    assert len([m for m in build_model("vgg").features if isinstance(m, nn.MaxPool2d)]) == 5
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 10)


def test_depth_constants():
    assert VGG_DEPTHS == (11, 13, 16, 19)
    assert all((d - 2) % 6 == 0 for d in RESNET_DEPTHS)


def test_parameter_table():
    rows = parameter_table(archs=("lenet",), widths=(1, 2), in_channels=3, image_size=32)
    assert rows[0] == {"arch": "lenet", "width": 1, "parameters": 62006}
    assert [r["width"] for r in rows] == [1, 2]


# --- drop: pruned networks (modularity pruning check) ---------------------------------------------------
# VGG-11-BN width 1 convs: 0: in->8, 1: 8->16, 2: 16->32, 3: 32->32, 4: 32->64, 5..7: 64->64 (3x3, no bias).

def _vgg_digits(**kw):
    return build_model("vgg", in_channels=1, image_size=16, **kw)


@pytest.mark.parametrize("drop,removed", [
    ((3,), 9 * 32 * 32 + 2 * 32),  # 32->32: exactly the conv and its BN
    ((7,), 9 * 64 * 64 + 2 * 64),  # last conv: the classifier still reads 64 channels
    ((3, 6), 9 * 32 * 32 + 2 * 32 + 9 * 64 * 64 + 2 * 64),
    # 32->64: the conv and its BN go, and conv 5 takes 32 input channels instead of 64
    ((4,), 9 * 32 * 64 + 2 * 64 + 9 * (64 - 32) * 64),
    # in->8: conv 1 reads the image's 1 channel instead of 8
    ((0,), 9 * 1 * 8 + 2 * 8 + 9 * (8 - 1) * 16),
])
def test_vgg_drop_removes_exactly_the_dropped_layers(drop, removed):
    full, pruned = _vgg_digits(), _vgg_digits(drop=drop)
    assert count_parameters(full) - count_parameters(pruned) == removed
    assert pruned.drop == drop
    convs = [m for m in pruned.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 8 - len(drop)
    assert pruned(torch.randn(2, 1, 16, 16)).shape == (2, 10)


def test_vgg_drop_without_batchnorm_removes_conv_with_bias():
    full, pruned = _vgg_digits(batchnorm=False), _vgg_digits(batchnorm=False, drop=[5])
    assert count_parameters(full) - count_parameters(pruned) == 9 * 64 * 64 + 64


def test_vgg_drop_names_are_renumbered_and_pools_stay():
    model = build_model("vgg", in_channels=1, image_size=8, drop=(1,))
    names = {n: type(m) for n, m in model.features.named_children()}
    # 0 conv0 bn relu, 3 pool | (conv1 bn relu gone) 4 pool | 5 conv2 bn relu, 8 conv3 bn relu, 11 pool |
    # 12 conv4, 15 conv5 | (pool skipped at 1x1) 18 conv6, 21 conv7
    assert [n for n, t in names.items() if t is nn.Conv2d] == ["0", "5", "8", "12", "15", "18", "21"]
    assert [n for n, t in names.items() if t is nn.MaxPool2d] == ["3", "4", "11"]  # 8 -> 4 -> 2 -> 1
    assert model.features[5].in_channels == 8 and model.features[5].out_channels == 32
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_empty_drop_is_the_full_network():
    for arch, kw in VARIANTS:
        torch.manual_seed(3)
        a = build_model(arch, **kw).state_dict()
        torch.manual_seed(3)
        b = build_model(arch, drop=[], **kw).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resnet_drop_identity_block():
    full, pruned = build_model("resnet", depth=8), build_model("resnet", depth=8, drop=[0])
    assert count_parameters(full) - count_parameters(pruned) == 2 * 9 * 16 * 16 + 2 * 2 * 16
    assert sum(isinstance(m, BasicBlock) for m in pruned.features) == 2
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("arch,kw,drop", [
    ("vgg", {}, (8,)),                        # VGG-11 has convs 0..7
    ("vgg", {}, (-1,)),
    ("vgg", {}, (1, 1)),
    ("vgg", {}, ("a",)),
    ("vgg", {}, (True,)),
    ("vgg", {}, 3),                           # not a sequence
    ("vgg", {}, tuple(range(8))),             # nothing left
    ("lenet", {}, (0,)),
    ("alexnet", {}, (0,)),
    ("resnet", {"depth": 8}, (1,)),           # first block of stage 2: stride 2, 16 -> 32
    ("resnet", {"depth": 8}, (3,)),
])
def test_bad_drop_raises_naming_drop(arch, kw, drop):
    with pytest.raises(ValueError, match="drop"):
        build_model(arch, drop=drop, **kw)
