"""Dependency groups of a network: which output channels must be removed together.

A *prunable unit* is a torch-pruning (DepGraph) group: the output channels of one root
layer together with every channel that is coupled to them, through residual adds,
concatenations, depthwise convolutions, BatchNorm and the input channels of consumers.
Removing channel ``i`` of a unit removes it from every member at once, so the pruned
network stays valid.

Units are named after their root layer (a ``Conv2d`` or ``Linear`` module name), which is
also how a :class:`~moo_compress.config.CompressionConfig` refers to them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class PrunableUnit:
    """One dependency group.

    Attributes:
        root: Name of the root layer whose output channels define the unit.
        channels: Number of output channels of the unit in the original model.
        members: Names of every ``Conv2d``/``Linear`` whose *output* channels belong
            to the unit (more than one when channels are coupled by residual adds).
    """

    root: str
    channels: int
    members: tuple[str, ...]


def build_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    """Trace ``model`` on ``example_input`` into a torch-pruning dependency graph.

    Raises:
        ValueError: if the model cannot be traced (one line, with torch's reason).
    """
    try:
        return tp.DependencyGraph().build_dependency(model, example_inputs=example_input)
    except Exception as exc:  # torch raises many types while tracing
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"cannot trace {type(model).__name__} on an input of shape "
            f"{tuple(example_input.shape)}: {reason}"
        ) from exc


def _handler(module: nn.Module):
    return (
        tp.prune_linear_out_channels
        if isinstance(module, nn.Linear)
        else tp.prune_conv_out_channels
    )


def find_units(
    model: nn.Module, graph: tp.DependencyGraph, protected: Iterable[str]
) -> list[PrunableUnit]:
    """List the prunable units of ``model``, in module order.

    Args:
        model: The traced model.
        graph: Its dependency graph from :func:`build_graph`.
        protected: Names of layers whose output channels must not be pruned. A unit
            that contains a protected layer is not returned.
    """
    names = {module: name for name, module in model.named_modules()}
    protected_modules = [model.get_submodule(n) for n in protected]
    units = []
    for group in graph.get_all_groups(
        ignored_layers=protected_modules, root_module_types=list(PRUNABLE_TYPES)
    ):
        root_module = group[0].dep.target.module
        members = tuple(
            names[item.dep.target.module]
            for item in group
            if isinstance(item.dep.target.module, PRUNABLE_TYPES)
            and item.dep.handler in (tp.prune_conv_out_channels, tp.prune_linear_out_channels)
        )
        units.append(PrunableUnit(names[root_module], len(group[0].idxs), members))
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return sorted(units, key=lambda u: order[u.root])


def prune_to(model: nn.Module, example_input: torch.Tensor, keep: Mapping[str, int]) -> nn.Module:
    """Return a copy of ``model`` with each unit physically cut to ``keep[root]`` channels.

    The kept channels of a unit are those with the highest group L1 magnitude
    (torch-pruning's ``GroupMagnitudeImportance``), scored on the original weights
    before anything is removed. ``model`` itself is not modified.

    Args:
        model: The model to prune (left untouched).
        example_input: An input the model accepts, e.g. shape (1, 3, 224, 224).
        keep: Root layer name -> number of output channels to keep (>= 1).
    """
    pruned = copy.deepcopy(model)
    graph = build_graph(pruned, example_input)
    importance = tp.importance.GroupMagnitudeImportance(p=1)
    plans = []
    for root, n_keep in keep.items():
        module = pruned.get_submodule(root)
        n_out = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        if n_keep == n_out:
            continue
        group = graph.get_pruning_group(module, _handler(module), idxs=list(range(n_out)))
        scores = importance(group)
        drop = torch.argsort(scores, descending=True)[n_keep:].sort().values.tolist()
        plans.append((module, drop))
    for module, drop in plans:
        graph.get_pruning_group(module, _handler(module), idxs=drop).prune()
    return pruned
