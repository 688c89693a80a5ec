"""Pretrained torchvision weights found in the torch hub cache, without any variable."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torchvision

from moo_compress.weights import hub_cache_file, pretrained_weights

RESNET50_PROBLEM = Path(__file__).parents[1] / "problems" / "resnet50_hdap.py"
WEIGHTS = torchvision.models.ResNet50_Weights.IMAGENET1K_V2


@pytest.fixture
def fake_hub(tmp_path, monkeypatch) -> Path:
    """$TORCH_HOME with torchvision's ResNet50 file name holding random weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    path.parent.mkdir(parents=True)
    torch.manual_seed(7)
    torch.save(torchvision.models.resnet50().state_dict(), path)
    return path


def test_hub_cache_file_follows_torch_home(fake_hub):
    assert hub_cache_file(WEIGHTS) == fake_hub


def test_weights_from_the_hub_cache_are_loaded_and_named(fake_hub):
    model = torchvision.models.resnet50()
    loaded, line = pretrained_weights(model, WEIGHTS)
    saved = torch.load(fake_hub, weights_only=True)
    assert loaded and torch.equal(model.conv1.weight, saved["conv1.weight"])
    assert "IMAGENET1K_V2" in line and str(fake_hub) in line and "\n" not in line


def test_without_a_cached_file_the_weights_stay_random(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    loaded, line = pretrained_weights(torchvision.models.resnet50(), WEIGHTS)
    assert not loaded and line.startswith("weights: random (no resnet50-11ad3fa6.pth")


def test_a_cached_file_of_the_wrong_shape_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = hub_cache_file(WEIGHTS)
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(ValueError, match="resnet50-11ad3fa6.pth: tensor"):
        pretrained_weights(torchvision.models.resnet50(), WEIGHTS)


def test_resnet50_problem_uses_the_cache_and_says_what_is_missing(fake_hub, monkeypatch, capsys):
    monkeypatch.delenv("MOO_COMPRESS_RESNET50_WEIGHTS", raising=False)
    monkeypatch.delenv("MOO_COMPRESS_IMAGENET_VAL", raising=False)
    spec = importlib.util.spec_from_file_location("resnet50_hdap_for_test", RESNET50_PROBLEM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    problem = module.ResNet50HDAP.__new__(module.ResNet50HDAP)
    model, _ = problem.build_model()
    saved = torch.load(fake_hub, weights_only=True)
    assert torch.equal(model.fc.weight, saved["fc.weight"])
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert "from the torch hub cache" in line and "MOO_COMPRESS_IMAGENET_VAL" in line
