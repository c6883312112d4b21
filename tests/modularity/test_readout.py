"""Layer read-out: the hooks of one forward pass give the same tensors as running netdyn's lenet,
vgg11bn and resnet8 layer by hand, in eval mode, with the train flags restored; in-place ops after a
hooked layer do not corrupt it; bad layer lists are refused naming ``layers``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from netdyn.models import BasicBlock, build_model
from netdyn.modularity import ModularityInputError, default_layers, layer_outputs

ARCHS = {  # label -> (build_model arguments, image size)
    "lenet": (dict(arch="lenet"), 16),
    "vgg11bn": (dict(arch="vgg", depth=11, batchnorm=True), 8),
    "resnet8": (dict(arch="resnet", depth=8), 8),
}
EXPECTED_NAMES = {
    "lenet": ["features.0", "features.3", "classifier.2", "classifier.5", "classifier.7"],
    "vgg11bn": ["features.0", "features.4", "features.8", "features.11", "features.15", "features.18",
                "features.21", "features.24", "classifier.2", "classifier.5"],
    "resnet8": ["features.0", "features.3", "features.4", "features.5", "classifier.2"],
}


def by_hand(model, x):
    """Walk features and classifier module by module, keeping conv / residual block / linear outputs."""
    kept = {}
    for part in ("features", "classifier"):
        for i, module in enumerate(getattr(model, part)):
            x = module(x)
            if isinstance(module, (nn.Conv2d, nn.Linear, BasicBlock)):
                kept[f"{part}.{i}"] = x.reshape(x.shape[0], -1)
    return kept


@pytest.mark.parametrize("label", sorted(ARCHS))
def test_hooks_equal_layers_run_by_hand(label):
    kwargs, size = ARCHS[label]
    torch.manual_seed(0)
    model = build_model(**kwargs, image_size=size, in_channels=1, width=2, dropout=0.5)
    for m in model.modules():  # non-trivial BatchNorm statistics, so train-mode BN would differ
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(7, 1, size, size, generator=torch.Generator().manual_seed(1))
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    got = layer_outputs(model, x)
    assert model.training and all(m.training for m in model.modules())  # flags restored
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # BN stats untouched
    model.eval()
    with torch.no_grad():
        expected = by_hand(model, x)
    assert list(got) == EXPECTED_NAMES[label] == default_layers(model)
    assert list(expected) == list(got)
    for name in got:
        assert got[name].shape == expected[name].shape == (7, expected[name].shape[1])
        assert torch.equal(got[name], expected[name]), name


def test_inplace_op_after_a_hooked_layer_does_not_change_what_was_read():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    x = torch.randn(5, 1, 6, 6)
    conv_out = layer_outputs(model, x)["0"]
    assert torch.equal(conv_out, model[0](x).reshape(5, -1))
    assert (conv_out < 0).any()


def test_named_layers_and_refusals():
    torch.manual_seed(0)
    model = build_model("lenet", image_size=16, in_channels=1)
    x = torch.randn(3, 1, 16, 16)
    assert list(layer_outputs(model, x, layers=["classifier.7", "features.1"])) == ["classifier.7", "features.1"]
    with pytest.raises(ModularityInputError, match=r"^layers: .*features\.99") as err:
        layer_outputs(model, x, layers=["features.99"])
    assert err.value.key == "layers"

    shared = nn.Linear(4, 4)
    twice = nn.Sequential(shared, nn.ReLU(), shared)
    with pytest.raises(ModularityInputError, match=r"^layers: .*exactly once"):
        layer_outputs(twice, torch.randn(2, 4))
    assert not shared._forward_hooks  # hooks removed even after a refusal


def test_torchvision_resnet_reads_stem_blocks_and_fc():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(num_classes=10)
    blocks = [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]
    assert default_layers(model) == ["conv1", *blocks, "fc"]
    out = layer_outputs(model, torch.randn(2, 3, 32, 32))
    assert out["layer4.1"].shape == (2, 512 * 1 * 1) and out["fc"].shape == (2, 10)
