"""The fleet problem: a vectorised pymoo ``Problem`` over configurations run on a fleet.

:class:`FleetProblem` is the generic part (objectives, constraints, clusters, accuracy
evaluator, search hooks); :class:`FleetCompressionProblem` compresses a model. Subclass
the latter to define a compression problem: set the model, the fleet
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

Constraints (pymoo convention: feasible when G <= 0), one column per limit that is set,
in this order: ``min_accuracy``, ``max_worst_latency_ms``, then the compression limits
``max_size_bits`` and ``max_macs``.

The problem does not measure anything itself: :meth:`_evaluate` reads the predictions of
an :class:`ObjectiveModel`, passed as ``problem.evaluate(X, model=...)`` (the search does
so with its surrogates) or set as the ``model`` attribute, so the same problem serves
surrogate-based search, measured fronts and benchmarks. A search never changes the
problem: the clusters it measures on and its model live in the search.

Hooks a subclass may implement, each declared here with a default:

* :meth:`FleetProblem.enumerate`: every decision vector, where the space is small
  enough for an exact front (default None);
* :meth:`FleetProblem.nominal_device`: the one device a team would tune for without a
  fleet (default None);
* :meth:`FleetProblem.prior_ms`: an analytic latency prior in ms for the latency model
  (default None).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from pymoo.core.problem import Problem
from torch import nn

from moo_compress.accuracy import AccuracyEvaluator, FidelityEvaluator, ModelEvaluator
from moo_compress.compress import compress
from moo_compress.decision_space import DecisionSpace
from moo_compress.device import Device
from moo_compress.dispatch.retry import RetryPolicy
from moo_compress.export import FORMATS as EXPORT_FORMATS
from moo_compress.export import export_model
from moo_compress.fleet import Fleet
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.front_choice import DEPLOYMENT_DROPS
from moo_compress.recovery import recover
from moo_compress.search_space import SearchSpace
from surrogates.features import config_features, stage_bounds


class ObjectiveModel(Protocol):
    """What the problem evaluates with: accuracy and per-cluster latency of a population."""

    def accuracy(self, X: np.ndarray) -> np.ndarray:
        """(N,) accuracy (or fidelity) in [0, 1] of an (N, n_var) population."""

    def latency(self, X: np.ndarray) -> np.ndarray:
        """(N, K) latency in ms of each configuration on each cluster."""


class FleetProblem(Problem):
    """A search over integer decision vectors whose configurations run on fleet clusters.

    This is what :class:`~moo_compress.search.FleetSearch` needs. A subclass builds its
    decision space, clusters and accuracy evaluator, calls
    ``super().__init__(space, clusters, evaluator)``, and implements :meth:`features`
    and :meth:`baseline`; the other hooks have defaults.

    Class attributes a subclass may set:
        name: Short name used for output folders.
        min_accuracy, max_worst_latency_ms: Optional limits.
        budget, accuracy_budget, pop_size, generations: Search defaults (the runner's
            options override them).
        finetune_steps: Steps of the optional fine-tune of the final front (0: none;
            ``--finetune-steps`` overrides it), see :mod:`moo_compress.finetune_front`.
        max_reported: M, the most configurations a method may report in the
            comparison (``benchmarks.compare``, protocol v2).
        loss_margin: The accuracy range that counts, in accuracy points (a fraction,
            0.10 = 10 points) below the uncompressed model: the search's hypervolume
            (which its acquisition and its front choice maximise) has its accuracy-loss
            reference point there, so configurations that lose more add nothing
            (None: the whole range, reference loss 1). The comparison scores the same
            10 points (``benchmarks/compare/metrics.py``).
        deployment_drops: Accuracy budgets the user deploys at, as drops below the
            uncompressed model's accuracy (fractions of 1): for each, the configuration
            fastest in the worst cluster within it is kept in the final front before the
            rest is chosen by hypervolume (:func:`~moo_compress.front_choice.
            deployment_rows`); ``()``: hypervolume alone.
        retry_policy: Deadlines, retries and outlier test of the runner's latency
            measurements (:class:`~moo_compress.dispatch.RetryPolicy`; None: its
            defaults).

    Attributes:
        space: The decision space.
        clusters: The fleet's clusters, as built (a search degrades its own copy).
        evaluator: Scores configurations.
        model: Default :class:`ObjectiveModel` of :meth:`evaluate` when none is passed
            (None: pass ``model=``).
    """

    name: str = "problem"
    min_accuracy: float | None = None
    max_worst_latency_ms: float | None = None
    budget: int = 300
    accuracy_budget: int = 60
    pop_size: int = 40
    generations: int = 20
    finetune_steps: int = 0
    max_reported: int = 16
    loss_margin: float | None = 0.10
    deployment_drops: tuple[float, ...] = DEPLOYMENT_DROPS
    retry_policy: RetryPolicy | None = None

    def __init__(
        self, space: DecisionSpace, clusters: FleetClusters, evaluator: AccuracyEvaluator
    ) -> None:
        self.space = space
        self.clusters = clusters
        self.evaluator = evaluator
        self.model: ObjectiveModel | None = None
        probe = space.xl[None]
        n_constraints = self.constraint_values(probe, np.ones(1), np.ones((1, clusters.k))).shape[1]
        super().__init__(
            n_var=space.n_var,
            n_obj=3,
            n_ieq_constr=n_constraints,
            xl=space.xl,
            xu=space.xu,
            vtype=int,
            requires_kwargs=True,  # ``model`` and ``clusters`` reach :meth:`_evaluate`
        )

    # ------------------------------------------------------------------ search hooks
    def features(self, X: np.ndarray) -> np.ndarray:
        """(N, d) latency-surrogate inputs of an (N, n_var) population."""
        raise NotImplementedError(f"{type(self).__name__} must define features()")

    def baseline(self) -> np.ndarray:
        """(n_var,) the uncompressed configuration: reference of speed-ups and of the
        hypervolume's latency scale."""
        raise NotImplementedError(f"{type(self).__name__} must define baseline()")

    def anchors(self) -> np.ndarray:
        """(B, n_var) configurations measured first and seeded into the population."""
        return self.baseline()[None]

    def reference_rows(self, front: np.ndarray) -> dict[str, np.ndarray]:
        """Named (n_var,) configurations measured beside a non-empty (F, n_var) front."""
        return {"baseline": self.baseline()}

    def cost_columns(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Analytic (N,) columns of the front table (e.g. MACs); none by default."""
        return {}

    def export(
        self, x: np.ndarray, folder: Path, formats: Sequence[str] = EXPORT_FORMATS
    ) -> list[str]:
        """Write a deployable model of ``x`` into ``folder`` in ``formats``; the files
        written."""
        return []

    # ------------------------------------------------------------------ optional hooks
    def enumerate(self) -> np.ndarray | None:
        """(M, n_var) every decision vector, where the space is small enough for an exact
        front (e.g. NAS-Bench-201's 15,625 cells); None (the default) otherwise."""
        return None

    def nominal_device(self) -> Device | None:
        """The one device, bound to :attr:`space`, that a team would tune for without
        thinking of the fleet; None (the default): a benchmark picks one itself."""
        return None

    def prior_ms(self, X: np.ndarray) -> np.ndarray | None:
        """(N,) analytic latency prior in ms of a population, > 0, the latency model's
        mean in log space (see :mod:`surrogates.latency_model`); None (the default): no
        prior."""
        return None

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

    def _evaluate(
        self,
        X: np.ndarray,
        out: dict,
        *args,
        model: ObjectiveModel | None = None,
        clusters: FleetClusters | None = None,
        **kwargs,
    ) -> None:
        """pymoo's evaluation: objectives and constraints of ``X`` from ``model`` (default
        :attr:`model`) on ``clusters`` (default :attr:`clusters`)."""
        model = model if model is not None else self.model
        if model is None:
            raise RuntimeError(
                "problem.model is not set; pass evaluate(X, model=...) or set problem.model"
            )
        X = self.space.check(X)
        accuracy = model.accuracy(X)
        latency = model.latency(X)
        out["F"] = self.objectives(accuracy, latency, clusters)
        limits = self.constraint_values(X, accuracy, latency, clusters)
        if limits.shape[1]:
            out["G"] = limits

    def objectives(
        self, accuracy: np.ndarray, latency: np.ndarray, clusters: FleetClusters | None = None
    ) -> np.ndarray:
        """(N, 3) [1 - accuracy, fleet-average ms, worst-cluster ms] from (N,) accuracy and
        (N, K) latency, on ``clusters`` (default :attr:`clusters`; a search passes its
        own, which may have degraded clusters)."""
        clusters = clusters if clusters is not None else self.clusters
        return np.column_stack([1.0 - accuracy, clusters.fleet_objectives(latency)])

    def constraint_values(
        self,
        X: np.ndarray,
        accuracy: np.ndarray,
        latency: np.ndarray,
        clusters: FleetClusters | None = None,
    ) -> np.ndarray:
        """(N, n_ieq_constr) constraint values, feasible where <= 0 (``clusters`` as in
        :meth:`objectives`)."""
        columns = []
        if self.min_accuracy is not None:
            columns.append(self.min_accuracy - accuracy)
        if self.max_worst_latency_ms is not None:
            worst = (clusters if clusters is not None else self.clusters).worst_case(latency)
            columns.append(worst - self.max_worst_latency_ms)
        columns += self.cost_limits(X)
        return np.column_stack(columns) if columns else np.zeros((len(X), 0))

    def cost_limits(self, X: np.ndarray) -> list[np.ndarray]:
        """Further (N,) constraint columns from analytic costs; none by default."""
        return []


class FleetCompressionProblem(FleetProblem):
    """Compress one model for one fleet. Subclass it and override the ``build_*`` hooks.

    Class attributes a subclass may set (besides :class:`FleetProblem`'s):
        space_options: Keyword arguments of :meth:`SearchSpace.from_model`.
        max_size_bits, max_macs: Optional limits on weight storage (bits) and MACs.
        feature_stages: Stages of the latency-surrogate features, see
            :mod:`surrogates.features`.
    """

    space_options: dict = {}
    max_size_bits: float | None = None
    max_macs: float | None = None
    feature_stages: int = 4

    space: SearchSpace
    evaluator: ModelEvaluator

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        torch.manual_seed(seed)
        model, example_input = self.build_model()
        self.reference = model.eval()
        try:
            space = SearchSpace.from_model(model, example_input, **self.space_options)
        except TypeError as exc:  # an unknown option, or options that are not a dict
            raise ValueError(f"{type(self).__name__}.space_options: {exc}") from None
        clusters = FleetClusters.build(self.build_fleet(), space, seed)
        evaluator = self.build_accuracy(self.reference, example_input)
        if not isinstance(evaluator, ModelEvaluator):
            raise ValueError(
                f"{type(self).__name__}.build_accuracy() returned {type(evaluator).__name__}; "
                "allowed: a ModelEvaluator (a compression problem scores compressed models)"
            )
        unpruned = space.costs(space.unpruned()).layers.macs[0]
        self._stages = stage_bounds(unpruned, self.feature_stages)
        super().__init__(space, clusters, evaluator)

    # ------------------------------------------------------------------ hooks
    def build_model(self) -> tuple[nn.Module, torch.Tensor]:
        """Return the model to compress and one example input batch."""
        raise NotImplementedError(f"{type(self).__name__} must define build_model()")

    def build_fleet(self) -> Fleet | Sequence[Device]:
        """Return a :class:`Fleet` (clustered automatically) or a list of devices, each
        its own cluster of equal weight."""
        raise NotImplementedError(f"{type(self).__name__} must define build_fleet()")

    def build_accuracy(self, model: nn.Module, example_input: torch.Tensor) -> ModelEvaluator:
        """Return the accuracy evaluator. Default: fidelity on generated inputs."""
        return FidelityEvaluator(model, tuple(example_input.shape), seed=self.seed)

    # ------------------------------------------------------------------ search hooks
    def features(self, X: np.ndarray) -> np.ndarray:
        """(N, 3 * feature_stages + 2) MACs per stage and precision, weight and
        activation MB (see :func:`surrogates.features.config_features`)."""
        return config_features(self.space.costs(X).layers, self._stages)

    def baseline(self) -> np.ndarray:
        """(n_var,) the unpruned model at the highest bit-width."""
        return self.space.unpruned()

    def anchors(self) -> np.ndarray:
        """(B, n_var) the unpruned model at every bit-width the space offers.

        Random designs almost never contain an unpruned configuration, yet that is
        where the high-accuracy end of the front lies (pruning costs accuracy sharply,
        quantisation little); the anchors make the surrogates and NSGA-II see it.
        """
        return np.array([self.space.unpruned(bits) for bits in self.space.bit_widths])

    def reference_rows(self, front: np.ndarray) -> dict[str, np.ndarray]:
        """``unpruned``, and ``uniform``: the FLOPs-uniform pruning. That is one pruning
        ratio on every gene, with the bit-widths of the front configuration that has
        the fewest MACs, and the ratio whose MACs come closest to that configuration's.
        It shows what the search's distribution of pruning across layers buys."""
        smallest = front[int(np.argmin(self.space.costs(front).macs))]
        n_prune = len(self.space.prune_genes)
        candidates = np.tile(smallest, (len(self.space.ratios), 1))
        candidates[:, :n_prune] = np.arange(len(self.space.ratios))[:, None]
        macs = self.space.costs(candidates).macs
        target = self.space.costs(smallest[None]).macs[0]
        return {
            "unpruned": self.baseline(),
            "uniform": candidates[int(np.argmin(np.abs(macs - target)))],
        }

    def cost_columns(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """``macs``, ``params`` and ``size_bits`` (weight storage), each (N,) int64."""
        costs = self.space.costs(X)
        return {
            "macs": costs.macs.astype(np.int64),
            "params": costs.params.astype(np.int64),
            "size_bits": costs.size_bits.astype(np.int64),
        }

    def cost_limits(self, X: np.ndarray) -> list[np.ndarray]:
        columns = []
        if self.max_size_bits is not None or self.max_macs is not None:
            costs = self.space.costs(X)
            if self.max_size_bits is not None:
                columns.append(costs.size_bits - self.max_size_bits)
            if self.max_macs is not None:
                columns.append(costs.macs - self.max_macs)
        return columns

    def export(
        self, x: np.ndarray, folder: Path, formats: Sequence[str] = EXPORT_FORMATS
    ) -> list[str]:
        """The compressed, recovered model of ``x``; see :func:`export_model` (ONNX
        Runtime's agreement is measured on the evaluator's calibration data)."""
        config = self.space.decode(x)
        model = recover(compress(self.reference, config), self.evaluator.calibration)
        return export_model(model, config, folder, self.evaluator.calibration, formats)
