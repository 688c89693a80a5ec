"""What a fleet search reports: per-generation progress and the measured front."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from moo_compress.fleet_clusters import FleetClusters
from moo_compress.search_settings import SearchSettings


@dataclass
class Progress:
    """What the search reports after each generation.

    Attributes:
        hypervolume: Of the predicted population front, normalised as
            :attr:`SearchResult.hypervolume`.
    """

    generation: int
    generations: int
    measurements: int
    budget: int
    accuracy_evaluations: int
    hypervolume: float


@dataclass
class MeasuredRows:
    """Configurations measured for real on every cluster, and what the latency model
    predicted for them as fitted at the end of the search, before the final front and
    the reference rows were measured (a row first measured there is predicted out of
    sample).

    Attributes:
        X: (N, n_var) decision vectors.
        accuracy: (N,) measured accuracy (or fidelity).
        latency: (N, K) measured median latency in ms per cluster (NaN on a degraded one).
        predicted_latency: (N, K) the latency model's mean in ms.
    """

    X: np.ndarray
    accuracy: np.ndarray
    latency: np.ndarray
    predicted_latency: np.ndarray


@dataclass
class SearchResult:
    """The measured front and what it cost.

    Attributes:
        front: The measured non-dominated configurations, by increasing measured
            fleet-average latency.
        references: Names of the reference rows (e.g. ``unpruned``, ``uniform``).
        reference_rows: The reference rows, in the order of ``references``.
        dominated_by_reference: Measured front configurations dropped because a
            reference row dominates them.
        measurements: Latency measurements spent, per cluster.
        accuracy_evaluations: Real accuracy evaluations spent.
        hypervolume: Hypervolume of the measured front, objectives scaled to
            [1 - accuracy, avg / avg_baseline, worst / worst_baseline] (the baseline's
            predicted latencies), reference point (1, 1.1, 1.1).
        clusters: The clusters at the end, degraded ones marked; the objectives of
            every row are computed on them.
        settings: The settings of the search.
        degraded: cluster -> why it was degraded.
        history: Progress of every generation.
        acquisition: What the ``"ehvi"`` acquisition did and the latency model it chose
            (for summary.json); None under the ``"policy"`` rule.
    """

    front: MeasuredRows
    references: list[str]
    reference_rows: MeasuredRows
    dominated_by_reference: int
    measurements: list[int]
    accuracy_evaluations: int
    hypervolume: float
    clusters: FleetClusters
    settings: SearchSettings
    degraded: dict[int, str] = field(default_factory=dict)
    history: list[Progress] = field(default_factory=list)
    acquisition: dict | None = None

    @property
    def X(self) -> np.ndarray:
        """(F, n_var) front decision vectors."""
        return self.front.X

    @property
    def accuracy(self) -> np.ndarray:
        """(F,) measured front accuracy (or fidelity)."""
        return self.front.accuracy

    @property
    def latency(self) -> np.ndarray:
        """(F, K) measured front latency in ms per cluster."""
        return self.front.latency
