"""NSGA-II over surrogate objectives, with active learning in the loop.

One generation (pymoo ask/tell)::

    offspring = NSGA2.ask()
    predict latency (N, K) and accuracy (N,) with the surrogates
    policy picks uncertain, front-relevant (candidate, cluster) pairs -> measure for real
    refit (every k points) or condition the surrogates, re-predict parents and offspring
    NSGA2.tell(offspring)

At the end every configuration of the predicted front (and two reference rows) is
measured for real on every cluster's representative and evaluated for accuracy, and
the reported front is the non-dominated set of those measured values.

Every measurement goes through the :class:`~moo_compress.store.MeasurementStore` first,
so a resumed run with the same seed replays the same decisions from the store and
never measures anything twice. What the store lacks is measured in batches through a
:class:`~moo_compress.dispatch.Dispatcher` (Dask workers, one measurement at a time per
device, different devices concurrently); each result is committed to the store the
moment it arrives.

A cluster whose every candidate device fails a measurement (after the retries of the
dispatcher's :class:`~moo_compress.dispatch.RetryPolicy`) is *degraded*: it is measured
no more, its latency column is NaN from then on, and the objectives use the remaining
clusters (fleet average re-weighted over them, worst case their maximum; see
:meth:`FleetClusters.without <moo_compress.fleet_clusters.FleetClusters.without>`).
Its surrogate still predicts it, from what was measured before, but nothing counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.indicators.hv import HV
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from moo_compress.device import Device
from moo_compress.dispatch import Dispatcher, Request, RetryPolicy, embedded_client
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.problem import FleetProblem
from surrogates.active_learning import ActiveLearningPolicy, initial_design
from surrogates.cluster_surrogate import ClusterSurrogate
from surrogates.gp_surrogate import GPSurrogate, single_threaded
from moo_compress.store import MeasurementStore, Record, config_hash

ACCURACY_DEVICE = "accuracy-evaluator"
"""Store ``device_id`` of accuracy evaluations (they run on this machine)."""

LOSS_FLOOR = 1e-3
"""Added to accuracy loss before it is modelled in log space (the GP needs > 0)."""


@dataclass
class SearchSettings:
    """Knobs of one search.

    Attributes:
        budget: Real latency measurements in total, over all clusters, including the
            initial design, the final front and the reference rows.
        accuracy_budget: Real accuracy evaluations for an expensive evaluator.
        pop_size, generations: NSGA-II settings.
        max_front: At most this many predicted-front configurations are measured at
            the end (spread evenly along the predicted fleet-average latency).
        n_init: Initial space-filling (Sobol) configurations; with the unpruned anchors
            (see :meth:`FleetSearch.anchors`) each is measured on every cluster.
        batch_size: Measurements the policy may ask for per generation.
        rel_std_threshold: Relative predictive std above which a pair is worth measuring.
        refit_every: Full surrogate refit after this many new points.
        transfer: Multi-task GP across clusters (True) or independent GPs.
        gp_maxiter: L-BFGS iterations of a full GP fit. An iteration cap, unlike a time
            cap, keeps fits deterministic; past ~50 iterations the fits of this search
            gained nothing measurable on held-out configurations.
        seed: Seed of everything random in the search.
    """

    budget: int = 300
    accuracy_budget: int = 60
    pop_size: int = 40
    max_front: int = 16
    generations: int = 20
    n_init: int = 8
    batch_size: int = 8
    rel_std_threshold: float = 0.03
    refit_every: int = 16
    transfer: bool = True
    gp_maxiter: int = 50
    seed: int = 0


@dataclass
class Progress:
    """What the search reports after each generation."""

    generation: int
    generations: int
    measurements: int
    budget: int
    accuracy_evaluations: int
    hypervolume: float


@dataclass
class SearchResult:
    """The measured front and what it cost.

    Attributes:
        X: (F, n_var) front decision vectors.
        accuracy: (F,) measured accuracy (or fidelity).
        latency: (F, K) measured median latency in ms per cluster.
        references: name -> (x, accuracy, latency (K,)) of the reference rows.
        dominated_by_reference: Measured front configurations dropped because a
            reference row dominates them.
        measurements: Latency measurements spent, per cluster.
        accuracy_evaluations: Real accuracy evaluations spent.
        hypervolume: Normalised hypervolume of the measured front.
        degraded: cluster -> why it was degraded (see the module docstring).
        history: Progress of every generation.
    """

    X: np.ndarray
    accuracy: np.ndarray
    latency: np.ndarray
    references: dict[str, tuple[np.ndarray, float, np.ndarray]]
    dominated_by_reference: int
    measurements: list[int]
    accuracy_evaluations: int
    hypervolume: float
    degraded: dict[int, str] = field(default_factory=dict)
    history: list[Progress] = field(default_factory=list)


class SurrogateObjectives:
    """The problem's :class:`~moo_compress.problem.ObjectiveModel` during search: GP
    means for latency, and for accuracy either GP means (expensive evaluator) or real
    evaluations (cheap evaluator)."""

    def __init__(self, search: FleetSearch) -> None:
        self.search = search

    def accuracy(self, X: np.ndarray) -> np.ndarray:
        return self.search.predict_accuracy(X)[0]

    def latency(self, X: np.ndarray) -> np.ndarray:
        return self.search.predict_latency(X)[0]


class FleetSearch:
    """Runs one search of a :class:`FleetProblem`, measuring through a store.

    Args:
        dispatcher: Where missing measurements are taken. Default: an embedded
            in-process Dask cluster holding every candidate device of every cluster
            (:func:`~moo_compress.dispatch.embedded_client`), open while measuring.
    """

    def __init__(
        self,
        problem: FleetProblem,
        store: MeasurementStore,
        settings: SearchSettings,
        on_progress: Callable[[Progress], None] | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.problem = problem
        self.dispatcher = dispatcher
        self.degraded: dict[int, str] = {}
        self.space = problem.space
        self.clusters = problem.clusters
        self.store = store
        self.settings = settings
        self.on_progress = on_progress or (lambda p: None)
        k = self.clusters.k
        n_final = self.front_cap + 2  # the final front and 2 reference rows
        self.n_reserved = n_final * k
        self.latency_policy = ActiveLearningPolicy(
            rel_std_threshold=settings.rel_std_threshold,
            batch_size=settings.batch_size,
            budget_total=max(0, settings.budget - self.n_reserved),
            cluster_weights=self.clusters.weights,
        )
        # No wall-time cap on fits: a capped fit would depend on machine load, and the
        # same seed must give the same front (and a resumed run the same decisions).
        self.latency_model = ClusterSurrogate(
            k,
            transfer=settings.transfer,
            refit_every=settings.refit_every,
            maxiter=settings.gp_maxiter,
            fit_timeout_s=None,
        )
        self.expensive_accuracy = problem.evaluator.expensive
        self.accuracy_policy = ActiveLearningPolicy(
            rel_std_threshold=settings.rel_std_threshold,
            batch_size=max(1, settings.batch_size // 2),
            budget_total=max(0, settings.accuracy_budget - n_final),
        )
        self.accuracy_model = GPSurrogate(maxiter=settings.gp_maxiter, fit_timeout_s=None)
        self._accuracy_X: list[np.ndarray] = []
        self._accuracy_y: list[float] = []
        self._measured: set[tuple[bytes, int]] = set()
        self._accuracy_cache: dict[bytes, float] = {}
        self.n_accuracy = 0
        self._scale: np.ndarray | None = None

    # ------------------------------------------------------------------ features
    def features(self, X: np.ndarray) -> np.ndarray:
        """(N, d) surrogate inputs of a population (the problem's features)."""
        return self.problem.features(X)

    # ------------------------------------------------------------------ measuring
    @property
    def n_latency(self) -> int:
        """Distinct (configuration, cluster) latencies measured so far."""
        return len(self._measured)

    def measure_latencies(self, pairs: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
        """(P,) median latency in ms of each (x, cluster) pair; NaN on a degraded cluster.

        Pairs the store holds (measured on any device of their cluster) are read from
        it; the others are measured concurrently through the dispatcher, each committed
        to the store as it arrives. The surrogate receives new values in the order of
        ``pairs``, not of arrival, so the same seed gives the same model.
        """
        configs = [self.space.decode(x).to_json() for x, _ in pairs]
        records: dict[tuple[int, str], Record] = {}
        for (_, c), config in zip(pairs, configs, strict=True):
            found = self.store.get_by_cluster(c, config_hash(config), "latency")
            if found is not None:
                records[(c, config)] = found
        missing = list(
            dict.fromkeys(
                (c, config)
                for (_, c), config in zip(pairs, configs, strict=True)
                if (c, config) not in records and c not in self.degraded
            )
        )
        if missing:
            with self._dispatching() as dispatcher:
                for outcome in dispatcher.measure([Request(c, cfg) for c, cfg in missing]):
                    c, config = missing[outcome.index]
                    if outcome.error is not None:
                        self._degrade(c, outcome.error)
                        continue
                    record = Record(outcome.device_id, c, config, "latency", outcome.samples_ms)
                    records[(c, config)] = self.store.add(record)
        latency = np.full(len(pairs), np.nan)
        for i, ((x, c), config) in enumerate(zip(pairs, configs, strict=True)):
            record = records.get((c, config))
            if record is None:
                continue
            latency[i] = record.median
            key = (np.asarray(x, dtype=np.int64).tobytes(), c)
            if key not in self._measured:
                self._measured.add(key)
                self.latency_model.add(c, self.features(x[None]), np.array([record.median]))
        return latency

    @contextmanager
    def _dispatching(self) -> Iterator[Dispatcher]:
        """The dispatcher in use, or an embedded one open for the ``with`` block."""
        if self.dispatcher is not None:
            yield self.dispatcher
            return
        policy = RetryPolicy()
        candidates = candidate_devices(self.clusters, policy)
        devices = list({d.device_id: d for group in candidates for d in group}.values())
        with embedded_client(devices) as client:
            ids = [[d.device_id for d in group] for group in candidates]
            self.dispatcher = Dispatcher(client, ids, policy)
            try:
                yield self.dispatcher
            finally:
                self.dispatcher.close()
                self.dispatcher = None

    def _degrade(self, cluster: int, reason: str) -> None:
        """Leave ``cluster`` out of everything from now on (see the module docstring)."""
        if cluster not in self.degraded:
            self.degraded[cluster] = reason
            self.clusters = self.problem.clusters = self.clusters.without(cluster)

    def evaluate_accuracy(self, x: np.ndarray) -> float:
        """Real accuracy (or fidelity) of ``x``, via the store."""
        key = np.asarray(x, dtype=np.int64).tobytes()
        if key not in self._accuracy_cache:
            config = self.space.decode(x)
            record = self.store.get_or_measure(
                ACCURACY_DEVICE,
                -1,
                config.to_json(),
                "accuracy",
                lambda: [self.problem.evaluator.evaluate(config)],
            )
            self._accuracy_cache[key] = record.median
            self.n_accuracy += 1
            if self.expensive_accuracy:
                self._accuracy_X.append(self.features(x[None])[0])
                self._accuracy_y.append(1.0 - record.median + LOSS_FLOOR)
        return self._accuracy_cache[key]

    # ------------------------------------------------------------------ predicting
    def predict_latency(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) mean and std of latency in ms."""
        with single_threaded():
            return self.latency_model.predict(self.features(X))

    def predict_accuracy(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,) accuracy and its std: GP for an expensive evaluator, else real values."""
        if not self.expensive_accuracy:
            return np.array([self.evaluate_accuracy(x) for x in X]), np.zeros(len(X))
        with single_threaded():
            loss, std = self.accuracy_model.predict(self.features(X))
        return np.clip(1.0 - (loss - LOSS_FLOOR), 0.0, 1.0), std

    def _fit_latency(self) -> None:
        """Refit every ``refit_every`` new points, condition in between."""
        self.latency_model.update()

    def _fit_accuracy(self) -> None:
        if self.expensive_accuracy:
            self.accuracy_model.fit(np.array(self._accuracy_X), np.array(self._accuracy_y))

    # ------------------------------------------------------------------ the loop
    def run(self) -> SearchResult:
        """Search, measure the front and return it (one dispatcher for the whole run)."""
        with self._dispatching():
            return self._search()

    def initial_configurations(self) -> np.ndarray:
        """(I, n_var) the anchors and the Sobol design, measured on every cluster first."""
        s = self.settings
        sobol = initial_design(self.space.xl, self.space.xu, s.n_init, s.seed)
        return np.unique(np.vstack([self.problem.anchors(), sobol]), axis=0)

    @property
    def minimum_budget(self) -> int:
        """Latency measurements the initial design, the final front and the reference
        rows need on every cluster; a smaller ``budget`` is refused."""
        return len(self.initial_configurations()) * self.clusters.k + self.n_reserved

    def _search(self) -> SearchResult:
        s = self.settings
        k = self.clusters.k
        anchors = self.problem.anchors()
        initial = self.initial_configurations()
        needed = self.minimum_budget
        if s.budget < needed:
            raise ValueError(
                f"budget={s.budget} is too small for {k} cluster(s): "
                f"the initial design, the final front and the reference rows need {needed}; "
                f"allowed: >= {needed}"
            )
        needed = len(initial) + self.front_cap + 2
        if self.expensive_accuracy and s.accuracy_budget < needed:
            raise ValueError(
                f"accuracy budget={s.accuracy_budget} is too small: the initial design and the "
                f"final front need {needed} evaluations; allowed: >= {needed}"
            )
        pairs = [(x, c) for x in initial for c in range(k)]
        for (_, c), value in zip(pairs, self.measure_latencies(pairs), strict=True):
            if np.isfinite(value):
                self.latency_policy.spend(c)
        for x in initial:
            if self.expensive_accuracy:
                self.evaluate_accuracy(x)
                self.accuracy_policy.spend(0)
        self._fit_latency()
        self._fit_accuracy()

        self.problem.model = SurrogateObjectives(self)
        algorithm = NSGA2(
            pop_size=s.pop_size,
            sampling=self._initial_population(anchors),
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        algorithm.setup(self.problem, termination=("n_gen", s.generations), seed=s.seed)
        history = []
        generation = 0
        while algorithm.has_next():
            offspring = algorithm.ask()
            self._learn(offspring.get("X").astype(int))
            if algorithm.pop is not None and len(algorithm.pop):
                algorithm.evaluator.eval(self.problem, algorithm.pop, skip_already_evaluated=False)
            algorithm.evaluator.eval(self.problem, offspring)
            algorithm.tell(infills=offspring)
            generation += 1
            progress = Progress(
                generation,
                s.generations,
                self.n_latency,
                s.budget,
                self.n_accuracy,
                self._hypervolume(algorithm.opt.get("F")),
            )
            history.append(progress)
            self.on_progress(progress)
        return self._finish(algorithm.opt.get("X").astype(int), history)

    def _initial_population(self, anchors: np.ndarray) -> np.ndarray:
        """(pop_size, n_var) the anchors, then seeded uniform random integer vectors."""
        rng = np.random.default_rng(self.settings.seed)
        n_random = max(0, self.settings.pop_size - len(anchors))
        random = rng.integers(self.space.xl, self.space.xu + 1, size=(n_random, self.space.n_var))
        return np.vstack([anchors, random])[: self.settings.pop_size]

    def _learn(self, X: np.ndarray) -> None:
        """Measure what the policies pick among ``X``, then update the surrogates."""
        lat_mean, lat_std = self.predict_latency(X)
        accuracy, accuracy_std = self.predict_accuracy(X)
        loss = 1.0 - accuracy
        if self.latency_policy.remaining() > 0:
            measured = np.array(
                [[(x.tobytes(), c) in self._measured for c in range(self.clusters.k)] for x in X]
            )
            measured[:, ~self.clusters.active] = True  # never pick a degraded cluster
            pairs = self.latency_policy.select(
                lat_mean, lat_std, other_objectives=loss[:, None], already_measured=measured
            )
            self.measure_latencies([(X[i], c) for i, c in pairs])
            if pairs:
                self._fit_latency()
        if self.expensive_accuracy and self.accuracy_policy.remaining() > 0:
            lat_objectives = np.column_stack(
                [self.clusters.fleet_average(lat_mean), self.clusters.worst_case(lat_mean)]
            )
            picks = self.accuracy_policy.select(
                (loss + LOSS_FLOOR)[:, None], accuracy_std[:, None], other_objectives=lat_objectives
            )
            for i, _ in picks:
                self.evaluate_accuracy(X[i])
            if picks:
                self._fit_accuracy()

    def _finish(self, front: np.ndarray, history: list[Progress]) -> SearchResult:
        """Measure the predicted front for real, keep its non-dominated measured
        configurations, measure the two reference rows, and drop front configurations
        that a reference row dominates (reported, not hidden)."""
        front = self._spread(np.unique(front, axis=0))
        latency, accuracy = self.measure_rows(front)
        F = self.problem.objectives(accuracy, latency)
        keep = np.flatnonzero(self._feasible(front, accuracy, latency))
        if len(keep):
            keep = keep[NonDominatedSorting().do(F[keep], only_non_dominated_front=True)]
        order = keep[np.argsort(F[keep, 1])]
        references = (
            self.problem.reference_rows(front[order])
            if len(order)
            else {"baseline": self.problem.baseline()}
        )
        ref_latency, ref_accuracy = self.measure_rows(np.array(list(references.values())))
        ref_F = self.problem.objectives(ref_accuracy, ref_latency)
        beaten = np.array([_dominated_by_any(f, ref_F) for f in F[order]], dtype=bool)
        order = order[~beaten]
        counts = [sum(1 for key in self._measured if key[1] == c) for c in range(self.clusters.k)]
        return SearchResult(
            X=front[order],
            accuracy=accuracy[order],
            latency=latency[order],
            dominated_by_reference=int(beaten.sum()),
            references={
                name: (x, ref_accuracy[i], ref_latency[i])
                for i, (name, x) in enumerate(references.items())
            },
            measurements=counts,
            accuracy_evaluations=self.n_accuracy,
            hypervolume=self._hypervolume(F[order]),
            degraded=dict(self.degraded),
            history=history,
        )

    def measure_rows(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measured (N, K) latency in ms on every cluster (NaN on a degraded one) and
        (N,) accuracy of ``X``, the latencies in one concurrent batch."""
        k = self.clusters.k
        latency = self.measure_latencies([(x, c) for x in X for c in range(k)])
        return latency.reshape(len(X), k), np.array([self.evaluate_accuracy(x) for x in X])

    @property
    def front_cap(self) -> int:
        """Most predicted-front configurations measured at the end."""
        return min(self.settings.pop_size, self.settings.max_front)

    def _spread(self, front: np.ndarray) -> np.ndarray:
        """At most :attr:`front_cap` rows of ``front``, evenly spaced along the predicted
        fleet-average latency (both ends kept)."""
        if len(front) <= self.front_cap:
            return front
        order = np.argsort(self.clusters.fleet_average(self.predict_latency(front)[0]))
        picks = np.unique(np.round(np.linspace(0, len(front) - 1, self.front_cap)).astype(int))
        return front[order[picks]]

    def _feasible(self, X: np.ndarray, accuracy: np.ndarray, latency: np.ndarray) -> np.ndarray:
        G = self.problem.constraint_values(X, accuracy, latency)
        return np.all(G <= 0, axis=1)

    def _hypervolume(self, F: np.ndarray) -> float:
        """Hypervolume of ``F`` normalised by the unpruned model's latencies.

        Objectives are scaled to [loss, avg / avg_baseline, worst / worst_baseline]
        (the baseline is the uncompressed configuration, see
        :meth:`FleetProblem.baseline`) with reference point (1, 1.1, 1.1); a larger
        value is better.
        """
        if F is None or len(F) == 0:
            return 0.0
        scale = self.reference_scale()
        return float(HV(ref_point=np.array([1.0, 1.1, 1.1]))(np.atleast_2d(F) / scale))

    def reference_scale(self) -> np.ndarray:
        """(3,) divisor of the objectives for hypervolume: 1 and the baseline's
        predicted average and worst-cluster latency."""
        if self._scale is None:
            lat = self.predict_latency(self.problem.baseline()[None])[0]
            self._scale = np.array(
                [1.0, self.clusters.fleet_average(lat)[0], self.clusters.worst_case(lat)[0]]
            )
        return self._scale


def candidate_devices(clusters: FleetClusters, policy: RetryPolicy) -> list[list[Device]]:
    """(K,) per cluster, the devices the dispatcher may measure it on, representative
    first."""
    return [clusters.candidates(c, policy.devices_per_cluster) for c in range(clusters.k)]


def _dominated_by_any(f: np.ndarray, others: np.ndarray) -> bool:
    """Whether objective vector ``f`` (minimised) is dominated by a row of ``others``."""
    return bool(np.any(np.all(others <= f, axis=1) & np.any(others < f, axis=1)))
