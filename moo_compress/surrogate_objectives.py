"""The objectives a search optimises: surrogate models fed by real measurements.

:class:`SurrogateObjectives` is the :class:`~moo_compress.problem.ObjectiveModel` of a
:class:`~moo_compress.search.FleetSearch`: latency (N, K) is the latency model's mean
(any :class:`~surrogates.latency_model.LatencyModel`), accuracy (N,) the accuracy model's
mean for an expensive evaluator (see :class:`~surrogates.accuracy_model.AccuracyModel`),
else a real evaluation of every candidate. Every real value comes from the search's
:class:`~moo_compress.session.MeasurementSession`, and each value new to the session goes
to its model, in the order asked for (not of arrival), so the same seed gives the same
models.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np

from moo_compress.dispatch import Expected
from moo_compress.problem import FleetProblem
from moo_compress.session import MeasurementSession, Pair
from surrogates.accuracy_model import AccuracyModel
from surrogates.gp_surrogate import single_threaded
from surrogates.latency_model import LatencyModel, LogLatencyModel

EXPECTED_SDS = 3.0
"""Predictive standard deviations of log latency (measurement noise included) within which
a reading counts as expected by the latency model (:meth:`SurrogateObjectives.expected`)."""
MAX_EXPECTED_FACTOR = 2.0
"""Widest band an expectation tolerates either way: a reading more than twice or less than
half the model's median needs a confirmation unless the device's recent medians vouch for
it (the fault-injecting device's outliers are 5x to 50x)."""


class SurrogateObjectives:
    """Latency and accuracy of populations, predicted, and measured where asked.

    Args:
        problem: Gives the model inputs (``features``, ``prior_ms``).
        session: Where real values come from.
        latency_model: Learns every new latency.
        accuracy_model: Learns every new accuracy; None: accuracy is evaluated for real
            for every candidate (a cheap evaluator).
    """

    def __init__(
        self,
        problem: FleetProblem,
        session: MeasurementSession,
        latency_model: LatencyModel,
        accuracy_model: AccuracyModel | None,
    ) -> None:
        self.problem = problem
        self.session = session
        self.latency_model = latency_model
        self.accuracy_model = accuracy_model
        self._accuracy_X: list[np.ndarray] = []
        self._accuracy: list[float] = []

    # ------------------------------------------------------------------ ObjectiveModel
    def accuracy(self, X: np.ndarray) -> np.ndarray:
        """(N,) predicted (or, for a cheap evaluator, real) accuracy."""
        return self.predict_accuracy(X)[0]

    def latency(self, X: np.ndarray) -> np.ndarray:
        """(N, K) predicted latency in ms."""
        return self.predict_latency(X)[0]

    # ------------------------------------------------------------------ predicting
    def predict_latency(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) mean and std of latency in ms."""
        prior = self.problem.prior_ms(X)
        with single_threaded():
            return self.latency_model.predict(self.problem.features(X), prior)

    def frozen_latency(self) -> Callable[[np.ndarray], np.ndarray]:
        """:meth:`latency` of the model as fitted now, unchanged by later measurements:
        ``X`` (N, n_var) -> (N, K) ms, predicted by a copy of the model."""
        frozen = copy.copy(self)
        frozen.latency_model = copy.deepcopy(self.latency_model)
        return frozen.latency

    def predict_accuracy(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,) accuracy and its std: the model's for an expensive evaluator, else real
        values (std 0)."""
        if self.accuracy_model is None:
            return self.evaluate_accuracies(X), np.zeros(len(X))
        return self.accuracy_model.predict(self.problem.features(X))

    def fit_accuracy(self) -> None:
        """Fit the accuracy model on every accuracy known (nothing for a cheap evaluator)."""
        if self.accuracy_model is not None:
            self.accuracy_model.fit(np.array(self._accuracy_X), np.array(self._accuracy))

    # ------------------------------------------------------------------ measuring
    def expected(self, pairs: Sequence[Pair]) -> list[Expected | None] | None:
        """The latency model's expectation of each (x, cluster) pair's median: its median
        within :data:`EXPECTED_SDS` predictive standard deviations (at most
        :data:`MAX_EXPECTED_FACTOR` either way); None for a pair the session already
        knows (it is not measured), and for every pair where the model has no fit on all
        the data so far (it is not refitted for this) or predicts no log latency."""
        model = self.latency_model
        new = [i for i, (x, c) in enumerate(pairs) if not self.session.known(x, c)]
        if not new or not isinstance(model, LogLatencyModel) or model.is_stale:
            return None
        X = np.array([pairs[i][0] for i in new])
        with single_threaded():
            mu, sigma = model.predict_log(
                self.problem.features(X), self.problem.prior_ms(X), observation_noise=True
            )
        rows, clusters = np.arange(len(new)), np.array([pairs[i][1] for i in new])
        medians, spreads = np.exp(mu[rows, clusters]), np.exp(EXPECTED_SDS * sigma[rows, clusters])
        factors = np.minimum(MAX_EXPECTED_FACTOR, spreads)
        expected: list[Expected | None] = [None] * len(pairs)
        for i, m, f in zip(new, medians, factors, strict=True):
            expected[i] = Expected(float(m), float(f))
        return expected

    def measure_latencies(self, pairs: Sequence[Pair]) -> np.ndarray:
        """(P,) median latency in ms of each (x, cluster) pair (NaN on a degraded
        cluster); values new to the session are added to the latency model (call its
        ``refit`` before predicting with them). Readings the model expects
        (:meth:`expected`) need no confirmation by the dispatcher."""
        latency, fresh = self.session.measure_latencies(pairs, self.expected(pairs))
        for i in fresh:
            x, c = pairs[i]
            X = x[None]
            self.latency_model.add(
                c, self.problem.features(X), latency[i : i + 1], self.problem.prior_ms(X)
            )
        return latency

    def evaluate_accuracies(self, X: np.ndarray) -> np.ndarray:
        """(N,) real accuracy (or fidelity) of the rows of ``X``, evaluated together (see
        :meth:`MeasurementSession.evaluate_accuracies
        <moo_compress.session.MeasurementSession.evaluate_accuracies>`); new values are
        kept for the accuracy model in the order of ``X`` (see :meth:`fit_accuracy`)."""
        accuracy, fresh = self.session.evaluate_accuracies(X)
        if self.accuracy_model is not None:
            for i in fresh:
                self._accuracy_X.append(self.problem.features(X[i : i + 1])[0])
                self._accuracy.append(float(accuracy[i]))
        return accuracy

    def measure_rows(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measured (N, K) latency in ms on every cluster (NaN on a degraded one) and
        (N,) accuracy of ``X``, the latencies in one concurrent batch, then the
        accuracies in another."""
        k = self.session.clusters.k
        latency = self.measure_latencies([(x, c) for x in X for c in range(k)])
        return latency.reshape(len(X), k), self.evaluate_accuracies(X)
