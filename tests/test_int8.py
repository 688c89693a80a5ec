"""Real int8 kernels agree with their fake-quantised twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from moo_compress.compress import compress
from moo_compress.fake_quant import calibrate
from moo_compress.int8 import to_int8
from moo_compress.search_space import SearchSpace


def _int8_layers(model: nn.Module) -> set[str]:
    """Names of modules that run torch.ao quantised kernels."""
    return {n for n, m in model.named_modules() if ".quantized." in type(m).__module__}


def test_resnet50_int8_logits_match_fake_quant_twin(resnet50, resnet50_space):
    torch.manual_seed(0)
    x = resnet50_space.unpruned(bits=8)
    x[: len(resnet50_space.prune_genes)] = 3
    twin = compress(resnet50, resnet50_space.decode(x))
    batches = [torch.randn(4, 3, 224, 224) for _ in range(2)]
    calibrate(twin, batches)
    int8 = to_int8(twin, batches)
    assert len(_int8_layers(int8)) >= 50  # every conv but the float stem, plus fc
    with torch.no_grad():
        batch = torch.cat(batches)
        cosine = nn.functional.cosine_similarity(twin(batch), int8(batch))
    assert cosine.min() >= 0.98


def _digits_cnn() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small CNN trained for a few seconds on scikit-learn's 8x8 digits."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 10),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(6):
        for idx in torch.randperm(1500).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(images[idx]), labels[idx]).backward()
            optimiser.step()
    return model.eval(), images[1500:], labels[1500:]


def test_int8_top1_agrees_with_fake_quant_on_trained_model():
    model, images, labels = _digits_cnn()
    assert (model(images).argmax(1) == labels).float().mean() > 0.9
    space = SearchSpace.from_model(model, images[:1], bit_widths=(4, 8, 32), protected=[])
    x = space.unpruned(bits=8)
    x[: len(space.prune_genes)] = 2
    twin = calibrate(compress(model, space.decode(x)), [images[:256]])
    int8 = to_int8(twin, [images[:256]])
    with torch.no_grad():
        agreement = (twin(images).argmax(1) == int8(images).argmax(1)).float().mean()
    assert agreement >= 0.95


def test_float_layers_stay_float_and_sub8_run_as_int8():
    model, images, _ = _digits_cnn()
    space = SearchSpace.from_model(model, images[:1], bit_widths=(4, 8, 32), protected=[])
    bits = np.array([space.bit_widths.index(b) for b in (4, 32, 8)])
    x = np.concatenate([space.xl[: len(space.prune_genes)], bits])
    int8 = to_int8(compress(model, space.decode(x)), [images[:64]])
    quantised = _int8_layers(int8)
    assert "0" in quantised and "8" in quantised  # the 4-bit conv and the 8-bit linear
    assert "3" not in quantised  # the 32-bit conv stays float


def test_int8_needs_calibration_data(resnet50, resnet50_space):
    with pytest.raises(ValueError, match="at least one calibration batch"):
        to_int8(compress(resnet50, resnet50_space.decode(resnet50_space.unpruned(8))), [])
