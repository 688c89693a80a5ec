"""The fleet compression problem: a vectorised pymoo ``Problem``.

Subclass :class:`FleetCompressionProblem` to define a problem: set the model, the fleet
(or devices), the search-space options and the accuracy evaluator, nothing else::

    class MyProblem(FleetCompressionProblem):
        name = "mobilenet_pi4"
        space_options = {"granularity": "block", "bit_widths": (8, 32)}

        def build_model(self):
            return torchvision.models.mobilenet_v2(), torch.randn(1, 3, 224, 224)

        def build_fleet(self):
            return Fleet.field_aged(get_sku("cortex-a72"), n=200, seed=self.seed)

Objectives (all minimised), shape (N, 3):

    F[:, 0]  accuracy loss, 1 - accuracy (or 1 - fidelity, see ``accuracy_mode``)
    F[:, 1]  fleet-average latency in ms: cluster-size-weighted mean of cluster latencies
    F[:, 2]  worst-case cluster latency in ms: max over clusters

Constraints (pymoo convention: feasible when G <= 0), one column per limit that is set:
``min_accuracy``, ``max_size_bits``, ``max_worst_latency_ms``, ``max_macs``.

The problem does not measure anything itself: :meth:`_evaluate` reads the predictions of
the ``model`` attribute (an :class:`ObjectiveModel`, set by the search), so the same
problem serves surrogate-based search, measured fronts and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from pymoo.core.problem import Problem
from torch import nn

from moo_compress.accuracy import AccuracyEvaluator, FidelityEvaluator
from moo_compress.clustering import cluster_fleet
from moo_compress.device import Device
from moo_compress.fleet import Fleet
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.search_space import SearchSpace


class ObjectiveModel(Protocol):
    """What the problem evaluates with: accuracy and per-cluster latency of a population."""

    def accuracy(self, X: np.ndarray) -> np.ndarray:
        """(N,) accuracy (or fidelity) in [0, 1] of an (N, n_var) population."""

    def latency(self, X: np.ndarray) -> np.ndarray:
        """(N, K) latency in ms of each configuration on each cluster."""


class FleetCompressionProblem(Problem):
    """Compress one model for one fleet. Subclass it and override the ``build_*`` hooks.

    Class attributes a subclass may set:
        name: Short name used for output folders.
        space_options: Keyword arguments of :meth:`SearchSpace.from_model`.
        min_accuracy, max_size_bits, max_worst_latency_ms, max_macs: Optional limits.
        budget, accuracy_budget, pop_size, generations: Search defaults (the runner's
            options override them).
        finetune_steps: Steps of the optional fine-tune of the final front (0: none;
            ``--finetune-steps`` overrides it), see :mod:`moo_compress.finetune_front`.
    """

    name: str = "problem"
    space_options: dict = {}
    min_accuracy: float | None = None
    max_size_bits: float | None = None
    max_worst_latency_ms: float | None = None
    max_macs: float | None = None
    budget: int = 300
    accuracy_budget: int = 60
    pop_size: int = 40
    generations: int = 20
    finetune_steps: int = 0

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        torch.manual_seed(seed)
        model, example_input = self.build_model()
        self.reference = model.eval()
        self.space = SearchSpace.from_model(model, example_input, **self.space_options)
        self.clusters = self._clusters(self.build_fleet())
        self.evaluator = self.build_accuracy(self.reference, example_input)
        self.model: ObjectiveModel | None = None
        limits = [self.min_accuracy, self.max_size_bits, self.max_worst_latency_ms, self.max_macs]
        super().__init__(
            n_var=self.space.n_var,
            n_obj=3,
            n_ieq_constr=sum(limit is not None for limit in limits),
            xl=self.space.xl,
            xu=self.space.xu,
            vtype=int,
        )

    # ------------------------------------------------------------------ hooks
    def build_model(self) -> tuple[nn.Module, torch.Tensor]:
        """Return the model to compress and one example input batch."""
        raise NotImplementedError(f"{type(self).__name__} must define build_model()")

    def build_fleet(self) -> Fleet | Sequence[Device]:
        """Return a :class:`Fleet` (clustered automatically) or a list of devices, each
        its own cluster of equal weight."""
        raise NotImplementedError(f"{type(self).__name__} must define build_fleet()")

    def build_accuracy(self, model: nn.Module, example_input: torch.Tensor) -> AccuracyEvaluator:
        """Return the accuracy evaluator. Default: fidelity on generated inputs."""
        return FidelityEvaluator(model, tuple(example_input.shape), seed=self.seed)

    # ------------------------------------------------------------------ pymoo
    @property
    def accuracy_mode(self) -> str:
        """``"real"`` or ``"fidelity"``."""
        return self.evaluator.mode

    @property
    def accuracy_label(self) -> str:
        """What the accuracy objective is called in outputs: ``"accuracy"`` for real
        accuracy, ``"fidelity"`` otherwise (never called accuracy)."""
        return "accuracy" if self.accuracy_mode == "real" else "fidelity"

    def _evaluate(self, X: np.ndarray, out: dict, *args, **kwargs) -> None:
        if self.model is None:
            raise RuntimeError("problem.model is not set; the search sets it before evaluating")
        X = self.space.check(X)
        accuracy = self.model.accuracy(X)
        latency = self.model.latency(X)
        out["F"] = self.objectives(accuracy, latency)
        limits = self.constraint_values(X, accuracy, latency)
        if limits.shape[1]:
            out["G"] = limits

    def objectives(self, accuracy: np.ndarray, latency: np.ndarray) -> np.ndarray:
        """(N, 3) [1 - accuracy, fleet-average ms, worst-cluster ms] from (N,) and (N, K)."""
        clusters = self.clusters
        return np.column_stack(
            [1.0 - accuracy, clusters.fleet_average(latency), clusters.worst_case(latency)]
        )

    def constraint_values(
        self, X: np.ndarray, accuracy: np.ndarray, latency: np.ndarray
    ) -> np.ndarray:
        """(N, n_ieq_constr) constraint values, feasible where <= 0."""
        columns = []
        if self.min_accuracy is not None:
            columns.append(self.min_accuracy - accuracy)
        if self.max_size_bits is not None or self.max_macs is not None:
            costs = self.space.costs(X)
            if self.max_size_bits is not None:
                columns.append(costs.size_bits - self.max_size_bits)
        if self.max_worst_latency_ms is not None:
            columns.append(self.clusters.worst_case(latency) - self.max_worst_latency_ms)
        if self.max_macs is not None:
            columns.append(costs.macs - self.max_macs)
        return np.column_stack(columns) if columns else np.zeros((len(X), 0))

    # ------------------------------------------------------------------ fleet
    def _clusters(self, fleet: Fleet | Sequence[Device]) -> FleetClusters:
        if isinstance(fleet, Fleet):
            fleet.bind(self.space)
            return FleetClusters.from_clustering(fleet, cluster_fleet(fleet, seed=self.seed))
        devices = list(fleet)
        if not devices or not all(isinstance(d, Device) for d in devices):
            raise ValueError(
                f"{type(self).__name__}.build_fleet() must return a Fleet or a non-empty "
                "list of Device objects"
            )
        for device in devices:
            device.bind(self.space)
        return FleetClusters.from_devices(devices)
