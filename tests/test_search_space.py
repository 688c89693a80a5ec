"""Search-space extraction, encode/decode, options and bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from moo_compress.config import CompressionConfig
from moo_compress.search_space import SearchSpace


def test_hdap_resnet50_has_one_prune_gene_per_bottleneck(resnet50_space):
    names = [g.name for g in resnet50_space.prune_genes]
    assert len(names) == 16
    assert names[0] == "layer1.0" and names[-1] == "layer4.2"
    # 54 conv/linear layers, the first conv and the classifier protected.
    assert len(resnet50_space.bit_genes) == 52
    assert resnet50_space.n_var == 68


def test_residual_coupled_channels_form_one_unit(resnet50_space):
    unit = next(u for u in resnet50_space.table.units if "layer1.0.conv3" in u.members)
    assert {"layer1.0.downsample.0", "layer1.1.conv3", "layer1.2.conv3"} <= set(unit.members)
    assert unit.channels == 256


def test_protected_layers_are_neither_pruned_nor_given_bit_genes(resnet50_space):
    members = {m for u in resnet50_space.table.units for m in u.members}
    assert "conv1" not in members and "fc" not in members
    bits = resnet50_space.bits_matrix(resnet50_space.xl)[0]
    names = resnet50_space.layer_names
    assert bits[names.index("conv1")] == 32 and bits[names.index("fc")] == 32


def test_encode_decode_round_trip_and_json(resnet50_space):
    rng = np.random.default_rng(1)
    X = rng.integers(resnet50_space.xl, resnet50_space.xu + 1, size=(20, resnet50_space.n_var))
    for x in X:
        config = resnet50_space.decode(x)
        assert np.array_equal(resnet50_space.encode(config), x)
        assert CompressionConfig.from_json(config.to_json()) == config


def test_channels_rounded_up_to_multiple(resnet50_space):
    x = resnet50_space.xl.copy()
    x[0] = resnet50_space.ratios.index(0.7)  # layer1.0: 64-channel units
    config = resnet50_space.decode(x)
    assert config.channels["layer1.0.conv1"] == 24  # ceil(64 * 0.3 / 8) * 8
    assert all(n % 8 == 0 for n in config.channels.values())


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "vgg16_bn"])
def test_other_torchvision_models(name):
    model = getattr(torchvision.models, name)()
    space = SearchSpace.from_model(model, torch.randn(1, 3, 64, 64), bit_widths=(2, 4, 8))
    assert space.n_var > 10
    assert set(np.unique(space.bits_matrix(space.xu))) == {8}
    x = space.xu.copy()
    assert np.array_equal(space.encode(space.decode(x)), x)


def test_block_granularity_for_bits_shrinks_the_space():
    model = torchvision.models.resnet18()
    layer = SearchSpace.from_model(model, torch.randn(1, 3, 64, 64))
    block = SearchSpace.from_model(
        model, torch.randn(1, 3, 64, 64), granularity="block", bits_granularity="block"
    )
    assert block.n_var < layer.n_var
    assert [g.name for g in block.bit_genes] == [
        f"layer{i}.{j}" for i in range(1, 5) for j in (0, 1)
    ]


class _Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))  # shape mismatch: cannot run


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"granularity": "stage"},
            "granularity='stage' is not allowed; allowed: ['layer', 'block']",
        ),
        ({"ratios": (0.0, 1.0)}, "ratios=(0.0, 1.0) is not allowed"),
        ({"ratios": "0.5"}, "is not allowed"),
        ({"bit_widths": (8, 12)}, "bit_widths=(8, 12) is not allowed"),
        ({"channel_multiple": 0}, "channel_multiple=0 is not allowed"),
        ({"protected": ["nope"]}, "protected layer(s) ['nope']"),
    ],
)
def test_bad_options_name_the_option(options, message):
    model = torchvision.models.resnet18()
    with pytest.raises(ValueError, match=re.escape(message)):
        SearchSpace.from_model(model, torch.randn(1, 3, 32, 32), **options)


def test_untraceable_model_is_a_value_error():
    with pytest.raises(ValueError, match="cannot trace _Untraceable"):
        SearchSpace.from_model(_Untraceable(), torch.randn(1, 3, 8, 8))


def test_bad_vectors_name_the_gene_and_allowed_values(resnet50_space):
    x = resnet50_space.xl.copy()
    with pytest.raises(ValueError, match="length 3, expected 68"):
        resnet50_space.decode(x[:3])
    x[0] = 9
    with pytest.raises(ValueError, match=r"prune:layer1.0: index 9 out of range; allowed 0..8"):
        resnet50_space.decode(x)
    x[0], x[-1] = 0, 3
    with pytest.raises(ValueError, match=r"bits:layer4.2.conv3: index 3 .* values \[8, 16, 32\]"):
        resnet50_space.costs(x[None])
    with pytest.raises(ValueError, match="integer indices"):
        resnet50_space.decode(x + 0.5)


def test_encode_rejects_off_grid_values(resnet50_space):
    config = resnet50_space.decode(resnet50_space.xl)
    with pytest.raises(ValueError, match=r"ratio of 'layer1.0' is 0.25; allowed"):
        resnet50_space.encode(
            CompressionConfig(
                config.input_shape,
                config.channels,
                config.bits,
                {**config.ratios, "layer1.0": 0.25},
            )
        )
    with pytest.raises(
        ValueError, match=re.escape("bits of 'layer1.0.conv1' is 4; allowed: [8, 16")
    ):
        resnet50_space.encode(
            CompressionConfig(
                config.input_shape,
                config.channels,
                {**config.bits, "layer1.0.conv1": 4},
                config.ratios,
            )
        )
