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
import threading
from collections import OrderedDict
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


def out_channels(module: nn.Module) -> int:
    """Output channels of a ``Conv2d`` or output features of a ``Linear``."""
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


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
    before anything is removed. ``model`` itself is not modified. The model's
    :class:`UnitPruner` is kept for the next call (see :func:`pruner_for`).

    Args:
        model: The model to prune (left untouched).
        example_input: An input the model accepts, e.g. shape (1, 3, 224, 224).
        keep: Root layer name -> number of output channels to keep (>= 1).
    """
    return pruner_for(model, example_input).prune(keep)


class UnitPruner:
    """Cuts copies of one model to given unit widths; traces the model once.

    Tracing the dependency graph (0.5 s for ResNet50 on the loaded 2-core machine) and scoring the
    channels of a unit do not depend on the widths asked for, so they are done once, on
    a snapshot of the model taken here: the graph at once, the channel ranking of a unit
    the first time it is cut. Each :meth:`prune` deep-copies the snapshot and runs, on
    the copy's layers, the pruning groups that the snapshot's graph gives for the
    dropped channels. The result equals tracing and pruning a copy of the model (checked
    in the tests; like that copy, it is in eval mode): the groups of different units
    never cut the same dimension of a layer, so their channel indices do not shift one
    another.

    Args:
        model: The model whose copies are cut (neither it nor its mode is changed; a
            later change of its weights is not seen: :func:`pruner_for` builds a new
            pruner then).
        example_input: An input the model accepts.
    """

    def __init__(self, model: nn.Module, example_input: torch.Tensor) -> None:
        self.model = model  # held, so that its id is not reused while the pruner is kept
        self.fingerprint = parameter_state(model)
        self.input_shape = tuple(example_input.shape)
        self._snapshot = copy.deepcopy(model)
        self.graph = build_graph(self._snapshot, example_input)  # sets it to eval mode
        self._names = {module: name for name, module in self._snapshot.named_modules()}
        self._ranking: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()  # the graph's groups and torch-pruning's pruners

    def prune(self, keep: Mapping[str, int]) -> nn.Module:
        """A copy of the model with each unit cut to ``keep[root]`` channels (>= 1)."""
        with self._lock:
            drops = {
                root: self._ranked(root)[n_keep:].sort().values.tolist()
                for root, n_keep in keep.items()
                if n_keep != out_channels(self._snapshot.get_submodule(root))
            }
        pruned = copy.deepcopy(self._snapshot)
        if self.graph.unwrapped_parameters:
            # torch-pruning replaces such parameters: let it prune a traced copy
            graph = build_graph(pruned, torch.zeros(self.input_shape))
            for root, drop in drops.items():
                module = pruned.get_submodule(root)
                graph.get_pruning_group(module, _handler(module), idxs=drop).prune()
            return pruned
        with self._lock:
            for root, drop in drops.items():
                module = self._snapshot.get_submodule(root)
                for dep, idxs in self.graph.get_pruning_group(module, _handler(module), drop):
                    name = self._names.get(dep.target.module)
                    if name is None:  # an op of the graph (add, concat...), not a layer
                        continue
                    node, original = dep.target, dep.target.module
                    node.module = pruned.get_submodule(name)
                    try:
                        dep(idxs)
                    finally:
                        node.module = original
        return pruned

    def _ranked(self, root: str) -> torch.Tensor:
        """(channels,) output channels of unit ``root``, highest group L1 magnitude
        first."""
        if root not in self._ranking:
            module = self._snapshot.get_submodule(root)
            idxs = list(range(out_channels(module)))
            group = self.graph.get_pruning_group(module, _handler(module), idxs=idxs)
            scores = tp.importance.GroupMagnitudeImportance(p=1)(group)
            self._ranking[root] = torch.argsort(scores, descending=True)
        return self._ranking[root]


def parameter_state(model: nn.Module) -> tuple[tuple[int, int], ...]:
    """Identity and in-place version of every parameter of ``model``: it changes when a
    weight is written (``load_state_dict``, an optimiser step) or a layer replaced."""
    return tuple((id(p), p._version) for p in model.parameters())


_PRUNERS: OrderedDict[int, UnitPruner] = OrderedDict()
_PRUNERS_KEPT = 4
_PRUNERS_LOCK = threading.Lock()


def pruner_for(model: nn.Module, example_input: torch.Tensor) -> UnitPruner:
    """The :class:`UnitPruner` of ``model`` for inputs of ``example_input``'s shape, kept
    for the last 4 models; built anew when the model's parameters have changed since
    (see :func:`parameter_state`)."""
    key = id(model)
    with _PRUNERS_LOCK:
        pruner = _PRUNERS.get(key)
        if (
            pruner is None
            or pruner.input_shape != tuple(example_input.shape)
            or pruner.fingerprint != parameter_state(model)
        ):
            pruner = UnitPruner(model, example_input)
        _PRUNERS[key] = pruner
        _PRUNERS.move_to_end(key)
        while len(_PRUNERS) > _PRUNERS_KEPT:
            _PRUNERS.popitem(last=False)
        return pruner
