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
