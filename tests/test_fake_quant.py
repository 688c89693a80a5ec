"""Activation fake quantisation (:class:`ActivationQuant`): the range it observes, the
integers it rounds to, its frozen mode and state dict; and no project code left on
torch's deprecated ``torch.ao`` or ``torch.jit``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from moo_compress.fake_quant import ActivationQuant, QuantizedLayer, calibrate

ROOT = Path(__file__).resolve().parents[1]
PROJECT_CODE = ("moo_compress", "surrogates", "problems", "benchmarks", "tests")


def test_scale_and_zero_point_follow_the_observed_range_including_zero():
    fq = ActivationQuant(8)
    y = fq(torch.tensor([-1.0, 0.0, 3.0]))
    scale = 4.0 / 255
    assert float(fq.scale) == pytest.approx(scale)
    assert int(fq.zero_point) == 64  # round(1 / scale) = round(63.75)
    assert y.tolist() == pytest.approx([-64 * scale, 0.0, 191 * scale])  # 3 / scale = 191.25
    fq = ActivationQuant(4)  # a range above zero still starts at zero
    fq(torch.tensor([2.0, 3.0]))
    assert (float(fq.scale), int(fq.zero_point)) == (pytest.approx(3.0 / 15), 0)


def test_range_widens_while_observing_and_is_frozen_after():
    fq = ActivationQuant(8)
    fq(torch.tensor([0.0, 1.0]))
    fq(torch.tensor([0.0, 2.0]))
    assert float(fq.max_val) == 2.0 and float(fq.scale) == pytest.approx(2.0 / 255)
    fq.observe(False)
    y = fq(torch.tensor([5.0, -1.0]))
    assert float(fq.max_val) == 2.0
    assert y.tolist() == pytest.approx([2.0, 0.0])  # clamped to the frozen range


def test_gradient_passes_straight_through_inside_the_range_only():
    fq = ActivationQuant(8)
    fq(torch.tensor([0.0, 1.0]))
    fq.observe(False)
    x = torch.tensor([0.3, 0.7, 4.0, -2.0], requires_grad=True)
    fq(x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0]


def test_calibrate_forgets_earlier_passes_and_freezes():
    torch.manual_seed(0)
    model = nn.Sequential(QuantizedLayer(nn.Linear(4, 4), bits=8))
    model(torch.full((1, 4), 100.0))  # observed before calibration: forgotten
    calibrate(model, [torch.rand(8, 4)])
    fq = model[0].act_quant
    assert float(fq.min_val) >= 0.0 and float(fq.max_val) <= 1.0
    assert not bool(fq.observing)
    scale = fq.scale.clone()
    model(torch.full((1, 4), 100.0))
    assert torch.equal(fq.scale, scale)


def test_state_dict_keeps_the_range_and_the_frozen_mode():
    torch.manual_seed(0)
    layer = QuantizedLayer(nn.Conv2d(3, 4, 3), bits=4)
    calibrate(layer, [torch.randn(2, 3, 8, 8)])
    again = QuantizedLayer(nn.Conv2d(3, 4, 3), bits=4)
    again.load_state_dict(layer.state_dict())
    x = torch.randn(1, 3, 8, 8) * 5
    assert not bool(again.act_quant.observing)
    assert torch.equal(again(x), layer(x))


def _deprecated_uses(path: Path) -> list[str]:
    """``torch.ao`` / ``torch.jit`` imports and attribute uses in one file (not text)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "torch"
        ):
            names = [f"torch.{node.attr}"]
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno}: {name}"
            for name in names
            if name.split(".")[:2] in (["torch", "ao"], ["torch", "jit"])
        ]
    return found


def test_project_code_uses_no_torch_ao_or_torch_jit():
    files = [f for folder in PROJECT_CODE for f in (ROOT / folder).rglob("*.py")]
    assert len(files) > 50
    assert [use for f in files for use in _deprecated_uses(f)] == []
