"""Tests for netdyn.packed: K networks in one module compute exactly what each computes alone, and
hashed dropout masks are a function of the member's (seed, step, layer) only."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from netdyn.models import build_model
from netdyn.packed import (
    LAYOUTS,
    MemberRandomness,
    PackedConv2d,
    PackedDropout,
    hashed_uniform,
    load_member_state,
    member_state,
    mix32,
    pack_inputs,
    pack_models,
    set_layout,
)

K = 3
B = 6
ARCHS = {
    "lenet": dict(arch="lenet", image_size=16),
    "vgg11bn": dict(arch="vgg", depth=11, batchnorm=True, image_size=8),
    "resnet8": dict(arch="resnet", depth=8, image_size=8),
}
TOL = dict(rtol=0, atol=1e-10)  # float64; grouped and plain convolutions only sum in another order


def _members(name, dropout=0.0, k=K):
    models = []
    for s in range(k):
        torch.manual_seed(100 + s)
        models.append(build_model(**ARCHS[name], width=1, in_channels=1, num_classes=10, dropout=dropout).double())
    return models


def _inputs(name, k=K, seed=0):
    size = ARCHS[name]["image_size"]
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, B, 1, size, size, generator=g, dtype=torch.float64)  # each member its own batch


def _perturb_bn(models):
    """Give BatchNorm non-default running statistics and affine parameters, different per member."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in models:
            for mod in m.modules():
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g, dtype=torch.float64))
                    mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g, dtype=torch.float64) + 0.5)
                    mod.weight.add_(torch.randn(mod.weight.shape, generator=g, dtype=torch.float64))
                    mod.bias.add_(torch.randn(mod.bias.shape, generator=g, dtype=torch.float64))
                    mod.num_batches_tracked.fill_(7)


@pytest.mark.parametrize("name", list(ARCHS))
def test_member_state_is_the_original_state(name):
    models = _members(name)
    _perturb_bn(models)
    originals = [copy.deepcopy(m.state_dict()) for m in models]
    packed = pack_models(models, seeds=[0, 1, 2])
    for k, orig in enumerate(originals):
        got = member_state(packed, k)
        assert list(got) == list(orig)
        for n, v in orig.items():
            assert got[n].dtype == v.dtype and got[n].shape == v.shape, n
            assert torch.equal(got[n], v), n
    # and writing a state into one member changes only that member
    load_member_state(packed, 1, originals[0])
    for n in originals[0]:
        assert torch.equal(member_state(packed, 1)[n], originals[0][n])
        assert torch.equal(member_state(packed, 0)[n], originals[0][n])
        assert torch.equal(member_state(packed, 2)[n], originals[2][n])


@pytest.mark.parametrize("name", list(ARCHS))
def test_packed_outputs_equal_unpacked_in_eval_mode(name):
    models = _members(name, dropout=0.5)  # dropout is off in eval mode
    _perturb_bn(models)
    packed = pack_models(models, seeds=[0, 1, 2]).eval()
    x = _inputs(name)
    with torch.no_grad():
        out = packed(pack_inputs(x))
        assert out.shape == (K, B, 10)
        for k, m in enumerate(models):
            torch.testing.assert_close(out[k], m.eval()(x[k]), **TOL)


@pytest.mark.parametrize("name", list(ARCHS))
def test_packed_train_mode_equals_unpacked(name):
    """Train mode: BatchNorm normalises by each member's own batch statistics and updates each member's
    running statistics; gradients reach each member's own parameters."""
    models = _members(name)
    _perturb_bn(models)
    packed = pack_models(models, seeds=[0, 1, 2]).train()
    x = _inputs(name, seed=1)
    out = packed(pack_inputs(x))
    out.square().sum().backward()
    refs = []
    for k, m in enumerate(models):
        m.train()
        ref = m(x[k])
        ref.square().sum().backward()
        refs.append(ref)
        torch.testing.assert_close(out[k], ref, **TOL)
    params = dict(packed.named_parameters())
    for k, m in enumerate(models):
        state = member_state(packed, k)
        for n, v in m.state_dict().items():  # running stats and counters after one training forward
            if v.dtype == torch.int64:
                assert torch.equal(state[n], v), n
            else:
                torch.testing.assert_close(state[n], v, **TOL)
        for n, p in m.named_parameters():
            torch.testing.assert_close(params[n].grad[k], p.grad, **TOL)
    if name != "lenet":  # BatchNorm really was in play
        assert any(n.endswith("num_batches_tracked") and int(v) == 8 for n, v in member_state(packed, 0).items())


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", list(ARCHS))
def test_every_layout_computes_each_members_own_forward_and_gradients(name, layout):
    """Whatever the pack layout (grouped, per-member or im2col-matmul convolutions, NCHW or NHWC), member k's
    outputs, running statistics and gradients are those of its own model. A per-member layout that fed a
    member another member's channel block, or shared one weight, fails here."""
    models = _members(name)
    _perturb_bn(models)
    packed = pack_models(copy.deepcopy(models), seeds=[0, 1, 2], layout=layout).train()
    assert packed.layout == layout
    x = _inputs(name, seed=2)
    out = packed(pack_inputs(x))
    out.square().sum().backward()
    params = dict(packed.named_parameters())
    for k, m in enumerate(models):
        m.train()
        ref = m(x[k])
        ref.square().sum().backward()
        torch.testing.assert_close(out[k], ref, **TOL)
        for n, p in m.named_parameters():
            torch.testing.assert_close(params[n].grad[k], p.grad, **TOL)
        for n, v in m.state_dict().items():
            torch.testing.assert_close(member_state(packed, k)[n], v, **TOL)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("kernel, stride, padding, dilation, bias", [
    (3, 1, 1, 1, True), (5, 1, 0, 1, False), (3, 2, 1, 1, False), (1, 2, 0, 1, False), (3, 1, 2, 2, True),
    ((3, 1), (2, 1), (0, 1), 1, True)])
def test_packed_convolution_is_each_members_own_on_odd_shapes(layout, kernel, stride, padding, dilation, bias):
    """Each layout's convolution against the members' nn.Conv2d on a non-square input whose sizes do not
    divide by the stride: a wrong output size, kernel flattening order or member block fails here."""
    torch.manual_seed(0)
    convs = [nn.Conv2d(2, 4, kernel, stride, padding, dilation, bias=bias).double() for _ in range(K)]
    packed = PackedConv2d(convs)
    packed.conv, packed.channels_last = LAYOUTS[layout]
    x = torch.randn(K, B, 2, 7, 9, dtype=torch.float64)
    out = packed(pack_inputs(x))
    for k, conv in enumerate(convs):
        torch.testing.assert_close(out[:, 4 * k:4 * (k + 1)], conv(x[k]), **TOL)


def test_batched_matmul_under_bf16_autocast_is_as_accurate_as_a_bf16_convolution():
    """training.precision bf16 with the batched_matmul layout: weight and input gradients as close to float64 as
    a bf16 grouped convolution's (relative error within 1.25x). Casting the input to bfloat16 before the im2col
    makes its backward sum the overlapping gradients in bfloat16: that version's input-gradient error is over
    the bound, it fails here."""
    torch.manual_seed(0)
    packed = PackedConv2d([nn.Conv2d(16, 32, 3, 1, 1) for _ in range(4)])
    exact = copy.deepcopy(packed).double()
    x = torch.randn(8, 64, 16, 16)
    grad_out = torch.randn(8, 128, 16, 16)
    x64 = x.double().requires_grad_()
    exact(x64).backward(grad_out.double())
    errors = {}
    for conv in ("matmul", "grouped"):
        packed.conv, packed.weight.grad = conv, None
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = packed(xi)
        assert out.dtype == torch.bfloat16
        out.float().backward(grad_out)
        errors[conv] = [float((a.double() - b).norm() / b.norm())
                        for a, b in ((xi.grad, x64.grad), (packed.weight.grad, exact.weight.grad))]
    for matmul, grouped in zip(errors["matmul"], errors["grouped"]):
        assert 1e-4 < matmul <= 1.25 * grouped, errors  # 1e-4: bf16 really was in play


def test_set_layout_switches_every_convolution_and_refuses_unknown_names():
    packed = pack_models(_members("resnet8"), seeds=[0, 1, 2])
    assert packed.layout == "grouped_channels_last"  # the CPU's default
    set_layout(packed, "per_member")
    convs = [m for m in packed.modules() if isinstance(m, PackedConv2d)]
    assert len(convs) > 5 and all(m.conv == "per_member" and not m.channels_last for m in convs)
    set_layout(packed, "batched_matmul")
    assert packed.layout == "batched_matmul" and all(m.conv == "matmul" for m in convs)
    with pytest.raises(ValueError, match="unknown pack layout 'stream'"):
        set_layout(packed, "stream")


def test_pack_of_one_equals_the_model():
    (model,) = _members("vgg11bn", k=1)
    packed = pack_models([model], seeds=[0]).eval()
    x = _inputs("vgg11bn", k=1)
    with torch.no_grad():
        torch.testing.assert_close(packed(pack_inputs(x))[0], model.eval()(x[0]), **TOL)


def test_pack_inputs_layout():
    x = torch.arange(2 * 3 * 2 * 1 * 1, dtype=torch.float64).view(2, 3, 2, 1, 1)  # (K, B, C, H, W)
    p = pack_inputs(x)
    assert p.shape == (3, 4, 1, 1)
    for k in range(2):
        assert torch.equal(p[:, 2 * k:2 * k + 2], x[k])  # member k owns channel block k


# --------------------------------------------------------------------------------------------------------
# hashed dropout

def _dropout(seeds, ps, layer=0, step=0, dtype=torch.float64):
    rnd = MemberRandomness(seeds, "cpu")
    rnd.step = step
    return PackedDropout([nn.Dropout(p) for p in ps], layer, rnd).train()


def test_member_keys_follow_the_step_held_on_the_device():
    """The step lives in a tensor (so a compiled model does not recompile per step); the keys are the
    documented hash of (seed, step, layer), computed here with Python integers."""
    rnd = MemberRandomness([3, 7], "cpu")
    for step in (0, 1, 12345):
        rnd.step = step
        assert rnd.step == step
        ref = [int(mix32(torch.tensor((int(mix32(torch.tensor(seed & 0xFFFFFFFF))) + step * 0x9E3779B1
                                       + 2 * 0x85EBCA77) & 0xFFFFFFFF))) for seed in (3, 7)]
        assert rnd.keys(1).tolist() == ref


def _mask(seeds, ps, *, layer=0, step=0, shape=(64, 50)):
    drop = _dropout(seeds, ps, layer, step)
    out = drop(torch.ones(len(seeds), *shape, dtype=torch.float64))
    return out != 0, out


def test_mask_does_not_depend_on_the_pack():
    alone, _ = _mask([7], [0.5])
    mask3, _ = _mask([3, 7, 11], [0.2, 0.5, 0.6])
    assert torch.equal(mask3[1], alone[0])
    first, _ = _mask([7, 3], [0.5, 0.2])
    assert torch.equal(first[0], alone[0])
    again, _ = _mask([7], [0.5])
    assert torch.equal(again, alone)


def test_mask_varies_with_seed_step_and_layer():
    base, _ = _mask([7], [0.5])
    for other in (_mask([8], [0.5])[0], _mask([7], [0.5], step=1)[0], _mask([7], [0.5], layer=1)[0]):
        assert not torch.equal(other, base)
        assert 0.4 < (other != base).float().mean() < 0.6  # unrelated masks, not a shifted copy


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.6])
def test_keep_rate_and_scaling(p):
    mask, out = _mask([123], [p], step=17, shape=(1000, 1000))
    keep = mask.double().mean().item()
    assert abs(keep - (1 - p)) < 0.01, keep
    # inverted dropout: kept units are scaled by exactly 1/(1-p), in the activation's dtype
    expected = torch.full_like(out[mask], 1.0 / (1.0 - p))
    torch.testing.assert_close(out[mask], expected, rtol=1e-15, atol=0)


def test_zero_dropout_and_eval_are_identity():
    x = torch.randn(2, 5, 7, dtype=torch.float64)
    assert torch.equal(_dropout([1, 2], [0.0, 0.0])(x), x)
    assert torch.equal(_dropout([1, 2], [0.5, 0.5]).eval()(x), x)
    mixed = _dropout([1, 2], [0.0, 0.5])(x)
    assert torch.equal(mixed[0], x[0]) and not torch.equal(mixed[1], x[1])


def test_hashed_uniform_range_and_spread():
    keys = torch.tensor([1, 2, 3], dtype=torch.int64)
    u = hashed_uniform(keys, (100, 100), torch.float64)
    assert u.shape == (3, 100, 100)
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01
    assert torch.equal(hashed_uniform(keys[1:2], (100, 100), torch.float64)[0], u[1])


def test_packed_model_dropout_same_in_packs_of_one_and_three():
    """A whole packed LeNet in train mode: member 1 of a pack of 3 computes what it computes alone."""
    models = _members("lenet", dropout=0.5)
    x = _inputs("lenet")
    seeds = [10, 11, 12]
    trio = pack_models(models, seeds).train()
    solo = pack_models([models[1]], [seeds[1]]).train()
    for step in (0, 5):
        trio.randomness.step = solo.randomness.step = step
        with torch.no_grad():
            torch.testing.assert_close(trio(pack_inputs(x))[1], solo(pack_inputs(x[1:2]))[0], **TOL)
    with torch.no_grad():  # dropout is active: train and eval outputs differ
        assert not torch.allclose(solo(pack_inputs(x[1:2])), solo.eval()(pack_inputs(x[1:2])))
