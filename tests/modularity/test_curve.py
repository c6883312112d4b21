"""modularity_curve: per layer, mean and sample std over consecutive batches equal knn_modularity on
each batch's layer outputs; batches capped by the images; refusals name n_images, n_batches and k."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from netdyn.models import build_model
from netdyn.modularity import CURVE_COLUMNS, ModularityInputError, knn_modularity, modularity_curve


def _model_and_data(n=130):
    torch.manual_seed(0)
    model = build_model("vgg", depth=11, image_size=8, in_channels=1)
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(n) % 3
    templates = torch.randn(3, 1, 8, 8, generator=g)
    images = templates[labels] + 0.5 * torch.randn(n, 1, 8, 8, generator=g)  # one template per class
    return model, images, labels


def test_curve_is_mean_and_sample_std_of_per_batch_q():
    model, images, labels = _model_and_data()
    curve = modularity_curve(model, images, labels, k=4, n_per_batch=40, n_batches=5)
    assert list(curve.columns) == list(CURVE_COLUMNS)
    assert curve.attrs == {"k": 4, "n_per_batch": 40, "n_batches": 3}  # 130 images: 3 whole batches
    model.eval()
    per_batch = []
    for b in range(3):
        part = slice(40 * b, 40 * (b + 1))
        h = images[part]
        qs = []
        with torch.no_grad():
            for module in list(model.features) + list(model.classifier):
                h = module(h)
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    qs.append(knn_modularity(h.reshape(40, -1).numpy(), labels[part].numpy(), k=4))
        per_batch.append(qs)
    per_batch = np.array(per_batch)
    assert curve["layer_index"].tolist() == list(range(per_batch.shape[1]))
    np.testing.assert_allclose(curve["q_mean"], per_batch.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve["q_std"], per_batch.std(axis=0, ddof=1), rtol=0, atol=1e-12)
    assert curve["q_mean"].iloc[0] > 0.3  # the planted classes are visible


def test_one_batch_gives_nan_std():
    model, images, labels = _model_and_data(50)
    curve = modularity_curve(model, images, labels, n_per_batch=50, n_batches=5, layers=["features.0"])
    assert curve.attrs["n_batches"] == 1 and curve["q_std"].isna().all() and len(curve) == 1


def test_refusals_name_the_key():
    model, images, labels = _model_and_data(30)
    with pytest.raises(ModularityInputError, match=r"^n_images: 40 .* only 30") as err:
        modularity_curve(model, images, labels, n_per_batch=40)
    assert err.value.key == "n_images"
    with pytest.raises(ModularityInputError, match=r"^n_batches: "):
        modularity_curve(model, images, labels, n_per_batch=10, n_batches=0)
    with pytest.raises(ModularityInputError, match=r"^k: "):
        modularity_curve(model, images, labels, k=10, n_per_batch=10)
    with pytest.raises(ModularityInputError, match=r"^labels: "):
        modularity_curve(model, images, labels[:20], n_per_batch=10)
