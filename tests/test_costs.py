"""Analytic costs equal what torch-pruning counts on the physically compressed model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch_pruning as tp
import torchvision

from moo_compress.compress import compress
from moo_compress.fake_quant import unwrap
from moo_compress.search_space import SearchSpace


def _measured(model, space, x):
    pruned, _ = unwrap(compress(model, space.decode(x)))
    return tp.utils.count_ops_and_params(pruned, space.example_input)


@pytest.mark.parametrize(
    ("name", "size", "options"),
    [
        ("resnet18", 64, {}),
        ("mobilenet_v2", 64, {"channel_multiple": 4}),
        ("vgg16_bn", 64, {"granularity": "block"}),
        ("resnet50", 96, {"granularity": "block"}),  # cross-block residual genes too
    ],
)
def test_analytic_macs_and_params_equal_torch_pruning(name, size, options):
    model = getattr(torchvision.models, name)().eval()
    space = SearchSpace.from_model(model, torch.randn(1, 3, size, size), **options)
    rng = np.random.default_rng(0)
    X = np.vstack([space.xl, rng.integers(space.xl, space.xu + 1, size=(3, space.n_var))])
    costs = space.costs(X)
    for i, x in enumerate(X):
        ops, params = _measured(model, space, x)
        assert costs.macs[i] == ops, f"{name} config {i}"
        assert costs.params[i] == params, f"{name} config {i}"


def test_costs_fall_with_pruning_and_bits(resnet50_space):
    space = resnet50_space
    X = np.tile(space.unpruned(), (3, 1))
    X[1, : len(space.prune_genes)] = 5  # ratio 0.5 everywhere
    X[2] = X[1]
    X[2, len(space.prune_genes) :] = 0  # 8 bits
    c = space.costs(X)
    assert c.macs[0] > c.macs[1] == c.macs[2]
    assert c.size_bits[0] > c.size_bits[1] > c.size_bits[2]
    assert c.bitops[1] / c.bitops[2] > 5  # 32x32 vs 8x8 bits except the protected layers
    assert c.peak_act_bytes[0] >= c.peak_act_bytes[1] > c.peak_act_bytes[2]


def test_size_and_bitops_definitions_on_unpruned_model(resnet50_space):
    space = resnet50_space
    c = space.costs(space.unpruned())
    assert c.size_bits[0] == c.params[0] * 32
    layers = c.layers
    assert c.bitops[0] == pytest.approx((layers.macs * 32 * 32).sum())
    assert layers.macs.shape == (1, 54) and layers.names[0] == "conv1"


def test_costs_are_vectorised_per_row(resnet50_space):
    space = resnet50_space
    X = np.random.default_rng(3).integers(space.xl, space.xu + 1, size=(50, space.n_var))
    batch = space.costs(X)
    single = [space.costs(x[None]).macs[0] for x in X[:5]]
    assert np.array_equal(batch.macs[:5], single)
    assert batch.layers.bits.shape == (50, 54)
