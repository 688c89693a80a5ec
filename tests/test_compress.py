"""compress(): physical pruning, fake quantisation, exactness at ratio 0 / 32 bits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from moo_compress.compress import compress
from moo_compress.config import CompressionConfig
from moo_compress.fake_quant import QuantizedLayer, calibrate


def test_unpruned_float_config_reproduces_outputs_exactly(resnet50, resnet50_space):
    model = compress(resnet50, resnet50_space.decode(resnet50_space.unpruned()))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), resnet50(x))
    assert not any(isinstance(m, QuantizedLayer) for m in model.modules())


def test_compressed_model_is_smaller_and_original_untouched(resnet50, resnet50_space):
    before = {k: v.clone() for k, v in resnet50.state_dict().items()}
    x = resnet50_space.unpruned(bits=8)
    x[: len(resnet50_space.prune_genes)] = 5
    config = resnet50_space.decode(x)
    model = compress(resnet50, config)
    assert model.layer1[0].conv1.layer.out_channels == config.channels["layer1.0.conv1"] == 32
    assert model.layer1[0].conv2.layer.in_channels == 32
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in resnet50.parameters()
    )
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
    for k, v in resnet50.state_dict().items():
        assert torch.equal(v, before[k])


def test_kept_channels_are_the_highest_magnitude_ones():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 2)
    )
    with torch.no_grad():
        model[0].weight.mul_(0.01)
        model[0].weight[[1, 5]] *= 1000  # two clearly dominant filters
    config = CompressionConfig((1, 3, 8, 8), {"0": 2}, {})
    pruned = compress(model, config)
    assert torch.equal(pruned[0].weight, model[0].weight[[1, 5]])


def test_fake_quant_layers_carry_their_bits_and_quantise(resnet50, resnet50_space):
    x = resnet50_space.unpruned(bits=8)
    names = resnet50_space.layer_names
    bit_gene = len(resnet50_space.prune_genes) + names.index("layer2.0.conv2") - 1
    x[bit_gene] = resnet50_space.bit_widths.index(16)
    model = compress(resnet50, resnet50_space.decode(x))
    assert model.layer1[0].conv1.bits == 8 and model.layer2[0].conv2.bits == 16
    assert isinstance(model.conv1, nn.Conv2d)  # protected: float
    w = model.layer1[0].conv1.quantized_weight()
    assert all(len(torch.unique(row)) <= 255 for row in w.flatten(1))
    calibrate(model, [torch.randn(2, 3, 224, 224)])
    out_q = model(torch.randn(1, 3, 224, 224))
    assert torch.isfinite(out_q).all()


def test_two_bit_weights_are_ternary():
    layer = QuantizedLayer(nn.Conv2d(4, 4, 3), bits=2)
    values = torch.unique(layer.quantized_weight()[0] / layer.layer.weight[0].abs().max())
    assert len(values) <= 3


@pytest.mark.parametrize(
    ("channels", "bits", "message"),
    [
        ({"layer1.0.conv1": 0}, {}, "unit 'layer1.0.conv1': 0 channels kept; allowed 1..64"),
        ({"nope": 3}, {}, "config names unit 'nope'"),
        ({}, {"layer1.0.relu": 8}, "config gives bits to 'layer1.0.relu'"),
    ],
)
def test_bad_configs(resnet50, channels, bits, message):
    with pytest.raises(ValueError, match=message):
        compress(resnet50, CompressionConfig((1, 3, 224, 224), channels, bits))


def test_unsupported_layer_bits():
    with pytest.raises(ValueError, match="bit-width 12 is not allowed"):
        QuantizedLayer(nn.Linear(2, 2), bits=12)


def test_pruned_model_gradients_flow(resnet50_space, resnet50):
    x = resnet50_space.unpruned(bits=8)
    x[:3] = 2
    model = compress(resnet50, resnet50_space.decode(x)).train()
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)
