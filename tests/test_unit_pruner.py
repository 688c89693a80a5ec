"""The cached pruner cuts exactly what tracing and pruning a fresh copy cuts."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from moo_compress.dependency import (
    UnitPruner,
    _handler,
    build_graph,
    find_units,
    out_channels,
    prune_to,
    pruner_for,
)


def _traced_prune(model: nn.Module, example: torch.Tensor, keep: dict[str, int]) -> nn.Module:
    """The reference: trace a copy of ``model`` and let torch-pruning cut it, unit by
    unit, scoring every unit on the copy's weights before anything is removed."""
    import torch_pruning as tp

    pruned = copy.deepcopy(model)
    graph = build_graph(pruned, example)
    importance = tp.importance.GroupMagnitudeImportance(p=1)
    plans = []
    for root, n_keep in keep.items():
        module = pruned.get_submodule(root)
        n_out = out_channels(module)
        if n_keep == n_out:
            continue
        group = graph.get_pruning_group(module, _handler(module), idxs=list(range(n_out)))
        drop = torch.argsort(importance(group), descending=True)[n_keep:].sort().values
        plans.append((module, drop.tolist()))
    for module, drop in plans:
        graph.get_pruning_group(module, _handler(module), idxs=drop).prune()
    return pruned


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return (
        str(a) == str(b)
        and sa.keys() == sb.keys()
        and all(torch.equal(sa[k], sb[k]) for k in sa)
        and a.training == b.training
    )


def _flatten_net(num_classes: int = 10) -> nn.Module:
    """Convolutions flattened into linear layers (each conv channel feeds 16 inputs)."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 24, 3, stride=2, padding=1),
        nn.BatchNorm2d(24),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(24 * 16, 32),
        nn.ReLU(),
        nn.Linear(32, num_classes),
    )


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "flatten"])
def test_cached_pruner_equals_tracing_a_fresh_copy(name):
    """Random widths of every unit, residual adds (resnet18), depthwise convolutions
    (mobilenet_v2) and a flatten into linear layers: the same layers, weights, buffers
    and mode."""
    torch.manual_seed(0)
    build = _flatten_net if name == "flatten" else getattr(torchvision.models, name)
    model = build(num_classes=10).train()
    example = torch.randn(1, 3, 32, 32)
    traced = copy.deepcopy(model)
    units = find_units(traced, build_graph(traced, example), protected=[])
    pruner = UnitPruner(model, example)
    rng = np.random.default_rng(0)
    for _ in range(3):
        keep = {u.root: int(rng.integers(1, u.channels + 1)) for u in units}
        assert _same(pruner.prune(keep), _traced_prune(model, example, keep))
    assert model.training  # the model's mode is left alone


class _Scaled(nn.Module):
    """A bare ``nn.Parameter`` (a per-channel scale) between two convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.scale = nn.Parameter(torch.randn(1, 8, 1, 1))
        self.b = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x) * self.scale)


@pytest.mark.filterwarnings("ignore:Unwrapped parameters")
def test_a_bare_parameter_is_cut_with_its_unit():
    """torch-pruning replaces such a parameter instead of cutting a layer in place: the
    pruner then lets it prune a traced copy."""
    torch.manual_seed(0)
    model, example = _Scaled(), torch.randn(1, 3, 16, 16)
    pruner = UnitPruner(model, example)
    assert pruner.graph.unwrapped_parameters
    pruned = pruner.prune({"a": 5})
    assert pruned.scale.shape == (1, 5, 1, 1)
    assert _same(pruned, _traced_prune(model, example, {"a": 5}))


def test_pruner_is_rebuilt_when_the_weights_change():
    model = torchvision.models.resnet18(num_classes=10).eval()
    example = torch.randn(1, 3, 32, 32)
    first = pruner_for(model, example)
    assert pruner_for(model, example) is first
    with torch.no_grad():
        model.conv1.weight.mul_(-2.0)  # in place: the channel ranking may change
    assert pruner_for(model, example) is not first
    keep = {"conv1": 7}
    assert _same(prune_to(model, example, keep), _traced_prune(model, example, keep))
