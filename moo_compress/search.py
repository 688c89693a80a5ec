"""NSGA-II over surrogate objectives, with active learning in the loop.

One generation (pymoo ask/tell)::

    offspring = NSGA2.ask()
    predict latency (N, K) and accuracy (N,) with the surrogates
    pick (candidate, cluster) pairs -> measure for real, refit the surrogates
    re-predict parents and offspring
    NSGA2.tell(offspring)

Which pairs: under ``settings.acquisition == "ehvi"`` (search v2, the default) the
decoupled fleet EHVI rounds of :class:`~moo_compress.ehvi_rounds.EhviRounds`, which also
explore the posterior after the last generation, spend the budget that is left and
choose the final front by hypervolume; under ``"policy"`` the uncertainty threshold of
:class:`~surrogates.active_learning.ActiveLearningPolicy`.

At the end every configuration of the chosen front (and the reference rows) is measured
for real on every cluster's representative and evaluated for accuracy, and the reported
front is chosen from those measured values.

Everything real goes through a :class:`~moo_compress.session.MeasurementSession` (store,
dispatcher, degrading clusters, accuracy cache). The search never changes the problem:
the clusters that count now (a degraded cluster does not; its surrogate still predicts
it, but nothing counts it) and the objective model live here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from moo_compress.accuracy import AccuracyEvaluator
from moo_compress.acquisition import REFERENCE
from moo_compress.dispatch import Dispatcher
from moo_compress.ehvi_rounds import N_REFERENCE, EhviRounds
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.nsga import make_nsga2
from moo_compress.problem import FleetProblem
from moo_compress.search_result import MeasuredRows, Progress, SearchResult
from moo_compress.search_settings import SearchSettings
from moo_compress.session import MeasurementSession
from moo_compress.store import MeasurementStore
from moo_compress.surrogate_objectives import SurrogateObjectives
from moo_compress.threads import pinned_threads
from surrogates.accuracy_model import AccuracyModel, shifted_loss
from surrogates.active_learning import ActiveLearningPolicy, initial_design
from surrogates.latency_model import LatencyModel, gp_latency_model
from surrogates.transfer_switch import TransferSwitch

__all__ = ["N_REFERENCE", "FleetSearch", "Progress", "SearchResult", "SearchSettings"]


class FleetSearch:
    """Runs one search of a :class:`FleetProblem`, measuring through a store.

    Args:
        problem: What to search; never changed.
        store: Where every measurement is kept (None only to ask for
            :attr:`minimum_budget`).
        settings: Budgets and NSGA-II settings.
        on_progress: Called after every generation.
        dispatcher: Where missing measurements are taken (see
            :class:`~moo_compress.session.MeasurementSession`).
        latency_model: Predicts latency on every cluster. Default: the multi-task GP
            (``settings.transfer``) or independent GPs, on the problem's features and
            its ``prior_ms`` where it has one.
        clusters: Clusters to measure on instead of the problem's.
        evaluator: Accuracy evaluator to use instead of the problem's.
        fit_processes: For the default latency model of the EHVI search (a
            :class:`~surrogates.transfer_switch.TransferSwitch`): spawned processes that
            fit some of its structures while this one fits the others, with the same
            results (0: all in this process). The runner gives one fewer than
            :func:`~moo_compress.threads.evaluation_workers`; a script that gives more
            than 0 must guard its work with ``if __name__ == "__main__":``, since spawned
            processes import the ``__main__`` module.

    Attributes:
        session: The measurements (store, dispatcher, degraded clusters).
        objectives: The surrogate objectives, fed by the session.
        latency_model, accuracy_model: Their models (no accuracy model for a cheap
            evaluator: every candidate is evaluated for real).
        latency_policy, accuracy_policy: What to measure next, within the budgets.
    """

    def __init__(
        self,
        problem: FleetProblem,
        store: MeasurementStore | None,
        settings: SearchSettings,
        on_progress: Callable[[Progress], None] | None = None,
        dispatcher: Dispatcher | None = None,
        latency_model: LatencyModel | None = None,
        *,
        clusters: FleetClusters | None = None,
        evaluator: AccuracyEvaluator | None = None,
        fit_processes: int = 0,
    ) -> None:
        self.problem = problem
        self.space = problem.space
        self.settings = settings
        self.on_progress = on_progress or (lambda p: None)
        evaluator = problem.evaluator if evaluator is None else evaluator
        clusters = problem.clusters if clusters is None else clusters
        self.session = MeasurementSession(self.space, clusters, evaluator, store, dispatcher)
        n_final = self.front_cap + N_REFERENCE
        self.n_reserved = n_final * clusters.k
        self.latency_policy = ActiveLearningPolicy(
            rel_std_threshold=settings.rel_std_threshold,
            batch_size=settings.batch_size,
            budget_total=max(0, settings.budget - self.n_reserved),
            objectives=lambda latency: self.clusters.fleet_objectives(latency),  # live
        )
        # No wall-time cap on fits: a capped fit would depend on machine load, and the
        # same seed must give the same front (and a resumed run the same decisions).
        if latency_model is None and settings.acquisition == "ehvi":
            latency_model = TransferSwitch(
                clusters.k,
                maxiter=settings.gp_maxiter,
                seed=settings.seed,
                fit_processes=fit_processes,
            )
        if latency_model is None:
            latency_model = gp_latency_model(
                clusters.k,
                settings.transfer,
                refit_every=settings.refit_every,
                maxiter=settings.gp_maxiter,
                fit_timeout_s=None,
            )
        self.latency_model = latency_model
        self.expensive_accuracy = evaluator.expensive
        self.accuracy_policy = ActiveLearningPolicy(
            rel_std_threshold=settings.rel_std_threshold,
            batch_size=max(1, settings.batch_size // 2),
            budget_total=max(0, settings.accuracy_budget - n_final),
        )
        self.accuracy_model = (
            AccuracyModel(maxiter=settings.gp_maxiter) if self.expensive_accuracy else None
        )
        self.objectives = SurrogateObjectives(
            problem, self.session, latency_model, self.accuracy_model
        )
        self._scale: np.ndarray | None = None
        self.rounds = EhviRounds(self) if settings.acquisition == "ehvi" else None

    @property
    def clusters(self) -> FleetClusters:
        """The clusters now (degraded ones marked)."""
        return self.session.clusters

    # ------------------------------------------------------------------ the loop
    def run(self) -> SearchResult:
        """Search, measure the front and return it (one dispatcher for the whole run).

        The search runs on one torch and BLAS thread
        (:func:`~moo_compress.threads.pinned_threads`), so that the same seed gives the
        same front whatever the machine's thread setting; model evaluations still use
        the cores, several at once (see :meth:`MeasurementSession.evaluate_accuracies
        <moo_compress.session.MeasurementSession.evaluate_accuracies>`), and a device that
        times on more threads sets them while it times. The default latency model's fit
        processes are stopped when it returns."""
        with pinned_threads(), self.session.dispatching():
            try:
                return self._search()
            finally:
                if isinstance(self.latency_model, TransferSwitch):
                    self.latency_model.close()

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
        s, k = self.settings, self.clusters.k
        initial = self.initial_configurations()
        needed = self.minimum_budget
        if s.budget < needed:
            raise ValueError(
                f"budget={s.budget} is too small for {k} cluster(s): the initial design, "
                f"the final front and the reference rows need {needed}; allowed: >= {needed}"
            )
        needed = len(initial) + self.front_cap + 2
        if self.expensive_accuracy and s.accuracy_budget < needed:
            raise ValueError(
                f"accuracy budget={s.accuracy_budget} is too small: the initial design and the "
                f"final front need {needed} evaluations; allowed: >= {needed}"
            )
        pairs = [(x, c) for x in initial for c in range(k)]
        self.measure(pairs)
        if self.expensive_accuracy:
            self.objectives.evaluate_accuracies(initial)
            self.accuracy_policy.spend(0, len(initial))
        self.latency_model.refit()
        self.objectives.fit_accuracy()
        if self.rounds is not None:
            self.rounds.pool.add(initial)

        algorithm = make_nsga2(s.pop_size, self._initial_population(self.problem.anchors()))
        algorithm.setup(self.problem, termination=("n_gen", s.generations), seed=s.seed)
        history = []
        while algorithm.has_next():
            offspring = algorithm.ask()
            self._learn(offspring.get("X").astype(int))
            if self.rounds is not None:
                self.rounds.generation(offspring.get("X").astype(int), s.generations - len(history))
            if algorithm.pop is not None and len(algorithm.pop):
                self._evaluate(algorithm, algorithm.pop, skip_already_evaluated=False)
            self._evaluate(algorithm, offspring)
            algorithm.tell(infills=offspring)
            F = algorithm.opt.get("F")
            history.append(
                Progress(
                    len(history) + 1,
                    s.generations,
                    self.session.n_latency,
                    s.budget,
                    self.session.n_accuracy,
                    self._hypervolume(F),
                )
            )
            self.on_progress(history[-1])
        front = algorithm.opt.get("X").astype(int)
        if self.rounds is not None:
            front = self.rounds.finish(front, algorithm.pop.get("X").astype(int))
        return self._finish(front, history)

    def _evaluate(self, algorithm, population, **options) -> None:
        """Objectives of ``population`` from the surrogates, on the clusters now."""
        algorithm.evaluator.eval(
            self.problem, population, model=self.objectives, clusters=self.clusters, **options
        )

    def _initial_population(self, anchors: np.ndarray) -> np.ndarray:
        """(pop_size, n_var) the anchors, then seeded uniform random integer vectors."""
        rng = np.random.default_rng(self.settings.seed)
        n_random = max(0, self.settings.pop_size - len(anchors))
        random = rng.integers(self.space.xl, self.space.xu + 1, size=(n_random, self.space.n_var))
        return np.vstack([anchors, random])[: self.settings.pop_size]

    def _learn(self, X: np.ndarray) -> None:
        """Measure what the policies pick among ``X``, then update the surrogates."""
        lat_mean, lat_std = self.objectives.predict_latency(X)
        accuracy, accuracy_std = self.objectives.predict_accuracy(X)
        if self.rounds is None and self.latency_policy.remaining() > 0:
            clusters = self.clusters
            measured = np.array([[self.session.known(x, c) for c in range(clusters.k)] for x in X])
            measured[:, ~clusters.active] = True  # never pick a degraded cluster
            pairs = self.latency_policy.select(
                lat_mean,
                lat_std,
                other_objectives=(1.0 - accuracy)[:, None],
                already_measured=measured,
            )
            self.objectives.measure_latencies([(X[i], c) for i, c in pairs])
            if pairs:
                self.latency_model.refit()
        if self.expensive_accuracy and self.accuracy_policy.remaining() > 0:
            picks = self.accuracy_policy.select(
                shifted_loss(accuracy)[:, None],
                accuracy_std[:, None],
                other_objectives=self.clusters.fleet_objectives(lat_mean),
            )
            if picks:
                self.objectives.evaluate_accuracies(X[[i for i, _ in picks]])
                self.objectives.fit_accuracy()

    def measure(self, pairs: list[tuple[np.ndarray, int]]) -> None:
        """Measure latency ``pairs`` and count them against the budget."""
        values = self.objectives.measure_latencies(pairs)
        for (_, c), value in zip(pairs, values, strict=True):
            if np.isfinite(value):
                self.latency_policy.spend(c)
        if self.rounds is not None:
            self.rounds.acquisition.observe(pairs, values, self.clusters.k)

    def _finish(self, front: np.ndarray, history: list[Progress]) -> SearchResult:
        """Measure the predicted front for real, keep its non-dominated measured
        configurations, measure the reference rows, and drop front configurations that a
        reference row dominates (reported, not hidden). The rows' predicted latencies are
        the model's as fitted at the end of the search, before these measurements, and so
        is the record of its structure choice (no refit follows them)."""
        predicted = self.objectives.frozen_latency()
        evidence = (
            self.latency_model.evidence if isinstance(self.latency_model, TransferSwitch) else None
        )
        front = self._choose(front)
        if self.rounds is not None:
            front = self.rounds.screen(front)
        latency, accuracy = self.objectives.measure_rows(front)
        if self.rounds is not None:
            front, latency, accuracy = self.rounds.best_measured(front)
        F = self.problem.objectives(accuracy, latency, self.clusters)
        G = self.problem.constraint_values(front, accuracy, latency, self.clusters)
        keep = np.flatnonzero(np.all(G <= 0, axis=1))
        if len(keep):
            keep = keep[NonDominatedSorting().do(F[keep], only_non_dominated_front=True)]
        order = keep[np.argsort(F[keep, 1])]
        references = (
            self.problem.reference_rows(front[order])
            if len(order)
            else {"baseline": self.problem.baseline()}
        )
        ref_X = np.array(list(references.values()))
        ref_latency, ref_accuracy = self.objectives.measure_rows(ref_X)
        ref_F = self.problem.objectives(ref_accuracy, ref_latency, self.clusters)
        beaten = np.array([_dominated_by_any(f, ref_F) for f in F[order]], dtype=bool)
        order = order[~beaten]
        return SearchResult(
            front=_rows(front[order], accuracy[order], latency[order], predicted),
            references=list(references),
            reference_rows=_rows(ref_X, ref_accuracy, ref_latency, predicted),
            dominated_by_reference=int(beaten.sum()),
            measurements=self.session.counts(),
            accuracy_evaluations=self.session.n_accuracy,
            hypervolume=self._hypervolume(F[order]),
            clusters=self.clusters,
            settings=self.settings,
            degraded=dict(self.session.degraded),
            history=history,
            acquisition=self._acquisition_record(evidence),
        )

    def _acquisition_record(self, evidence: dict | None) -> dict | None:
        """What the EHVI acquisition did and, where the model records one, its structure
        choice ``evidence``."""
        if self.rounds is None:
            return None
        record = self.rounds.record()
        if evidence is not None:
            record["latency_model"] = evidence
        return record

    @property
    def front_cap(self) -> int:
        """Most predicted-front configurations measured at the end."""
        return min(self.settings.pop_size, self.settings.max_front)

    def _choose(self, front: np.ndarray) -> np.ndarray:
        """At most :attr:`front_cap` distinct rows of ``front`` to measure: under
        ``"ehvi"`` by :meth:`EhviRounds.choose`, else evenly spread."""
        if self.rounds is not None:
            return self.rounds.choose(front)
        front = np.unique(front, axis=0)
        return front if len(front) <= self.front_cap else self.spread(front)

    def spread(self, front: np.ndarray, n: int | None = None) -> np.ndarray:
        """At most ``n`` (default :attr:`front_cap`) rows of ``front``, evenly spaced along
        the predicted fleet-average latency (both ends kept)."""
        n = self.front_cap if n is None else n
        if len(front) <= n:
            return front
        if n < 1:
            return front[:0]
        order = np.argsort(self.clusters.fleet_average(self.objectives.predict_latency(front)[0]))
        picks = np.unique(np.round(np.linspace(0, len(front) - 1, n)).astype(int))
        return front[order[picks]]

    def _hypervolume(self, F: np.ndarray) -> float:
        """Hypervolume of ``F`` scaled by :meth:`reference_scale`, reference point
        (1, 1.1, 1.1): of the configurations within ``loss_margin`` of the baseline's
        accuracy and faster than 1.1x its latency; a larger value is better."""
        if F is None or len(F) == 0:
            return 0.0
        scale = self.reference_scale()
        return float(HV(ref_point=REFERENCE)(np.atleast_2d(F) / scale))

    def reference_scale(self) -> np.ndarray:
        """(3,) divisor of the objectives ``[loss, avg ms, worst ms]`` for hypervolume,
        whose reference point is then :data:`~moo_compress.acquisition.REFERENCE`
        ``(1, 1.1, 1.1)``: the uncompressed baseline's predicted loss plus the problem's
        ``loss_margin`` (1 where it has none), and its predicted average and
        worst-cluster latency (once, when first asked)."""
        if self._scale is None:
            baseline = self.problem.baseline()[None]
            lat = self.objectives.predict_latency(baseline)[0]
            margin = self.problem.loss_margin
            loss = 1.0
            if margin is not None:
                accuracy = float(self.objectives.predict_accuracy(baseline)[0][0])
                loss = min(1.0, max(0.0, 1.0 - accuracy) + margin)
            self._scale = np.concatenate([[loss], self.clusters.fleet_objectives(lat)[0]])
        return self._scale


def _dominated_by_any(f: np.ndarray, others: np.ndarray) -> bool:
    """Whether objective vector ``f`` (minimised) is dominated by a row of ``others``."""
    return bool(np.any(np.all(others <= f, axis=1) & np.any(others < f, axis=1)))


def _rows(
    X: np.ndarray,
    accuracy: np.ndarray,
    latency: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
) -> MeasuredRows:
    """Measured rows with ``predict``'s (N, K) latencies in ms for them."""
    return MeasuredRows(X, accuracy, latency, predict(X) if len(X) else np.zeros_like(latency))
