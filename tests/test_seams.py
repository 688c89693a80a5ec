"""The search's extension points and contracts: a custom latency model is used, the
problem is never changed, the active-learning policy weighs only live clusters, the
decision spaces satisfy their protocol, and loading a problem file stays light."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from moo_compress.decision_space import DecisionSpace
from moo_compress.devices.faulty import FaultyDevice
from moo_compress.dispatch import Dispatcher, RetryPolicy, embedded_client
from moo_compress.nb201 import NB201Space
from moo_compress.problem_file import fingerprint
from moo_compress.search import FleetSearch, SearchSettings
from moo_compress.session import candidate_devices
from moo_compress.store import MeasurementStore
from surrogates.latency_model import LatencyModel, LogLatencyModel

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"
SETTINGS = SearchSettings(budget=80, accuracy_budget=24, pop_size=8, generations=2, seed=3)


def _tiny():
    spec = importlib.util.spec_from_file_location("tiny_for_seams", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyFleet(seed=3)


class _LinearInMacs:
    """A trivial latency model: latency proportional to the first feature (MACs of the
    first stage), a factor per cluster; it records what the search asked of it."""

    def __init__(self, n_clusters: int) -> None:
        self.n_clusters = n_clusters
        self.added: list[tuple[int, tuple[int, ...], float]] = []
        self.refits = 0
        self.predictions = 0

    def add(self, cluster, X, y_ms, prior_ms=None) -> None:
        assert prior_ms is None  # the tiny problem has no prior
        self.added.append((cluster, X.shape, float(y_ms[0])))

    def refit(self) -> None:
        self.refits += 1

    def predict(self, X, prior_ms=None):
        self.predictions += 1
        mean = 1.0 + X[:, :1] * np.arange(1, self.n_clusters + 1)
        return mean, 0.1 * mean


def test_a_custom_latency_model_is_used(tmp_path):
    problem = _tiny()
    model = _LinearInMacs(problem.clusters.k)
    assert isinstance(model, LatencyModel)
    with MeasurementStore(tmp_path / "m.sqlite", fingerprint(problem), "custom") as store:
        search = FleetSearch(problem, store, SETTINGS, latency_model=model)
        result = search.run()
    assert len(model.added) == sum(result.measurements) and model.refits >= 2
    assert {shape for _, shape, _ in model.added} == {
        (1, problem.features(problem.baseline()[None]).shape[1])
    }
    assert model.predictions > 0
    expected, _ = model.predict(problem.features(result.X))
    np.testing.assert_allclose(result.front.predicted_latency, expected)


class _CountingFits(_LinearInMacs):
    """``_LinearInMacs`` scaled by ``1 + 1e-6 * n``, ``n`` the measurements it had at its
    last refit, so its predictions tell which fit made them; it refits itself before
    predicting with new data, as the protocol allows."""

    def __init__(self, n_clusters: int) -> None:
        super().__init__(n_clusters)
        self.fitted_on = 0

    def refit(self) -> None:
        super().refit()
        self.fitted_on = len(self.added)

    def predict(self, X, prior_ms=None):
        if self.fitted_on != len(self.added):
            self.refit()
        mean, std = super().predict(X, prior_ms)
        return mean * (1 + 1e-6 * self.fitted_on), std


def test_reported_predictions_are_made_before_the_front_is_measured(tmp_path):
    problem = _tiny()
    model = _CountingFits(problem.clusters.k)
    with MeasurementStore(tmp_path / "m.sqlite", fingerprint(problem), "custom") as store:
        result = FleetSearch(problem, store, SETTINGS, latency_model=model).run()
    assert len(model.added) > model.fitted_on  # measured at the end, never fitted on
    base, _ = _LinearInMacs.predict(model, problem.features(result.X))
    np.testing.assert_allclose(
        result.front.predicted_latency, base * (1 + 1e-6 * model.fitted_on), rtol=1e-12
    )


class _LogLinearInMacs(_LinearInMacs):
    """``_LinearInMacs`` that also predicts log latency (a ``LogLatencyModel``), with a
    log-space std of 0.1, or 1.0 when ``wide``; stale until its first refit."""

    def __init__(self, n_clusters: int, wide: bool = False) -> None:
        super().__init__(n_clusters)
        self.sigma = 1.0 if wide else 0.1

    @property
    def is_stale(self) -> bool:
        return self.refits == 0

    def predict_log(self, X, prior_ms=None, observation_noise=False):
        mean, _ = self.predict(X, prior_ms)
        return np.log(mean), np.full(mean.shape, self.sigma)


@pytest.mark.parametrize(("wide", "factor"), [(False, np.exp(0.3)), (True, 2.0)])
def test_the_dispatcher_is_told_what_a_fitted_log_latency_model_expects(tmp_path, wide, factor):
    """The expectation of each pair is the model's median on the pair's cluster, within 3
    predictive standard deviations, at most 2x either way; none for a pair already
    measured, and none from a model that would have to refit first, or that predicts no
    log latency."""
    problem = _tiny()
    model = _LogLinearInMacs(problem.clusters.k, wide)
    assert isinstance(model, LogLatencyModel)
    with MeasurementStore(tmp_path / "m.sqlite", fingerprint(problem), "custom") as store:
        objectives = FleetSearch(problem, store, SETTINGS, latency_model=model).objectives
        X = np.unique(np.vstack([problem.baseline(), problem.anchors()]), axis=0)
        pairs = [(x, c) for x in X for c in range(problem.clusters.k)]
        assert objectives.expected(pairs) is None and model.refits == 0
        model.refit()
        objectives.measure_latencies(pairs[:1])  # known now: not measured again
        expected = objectives.expected(pairs)
        assert expected[0] is None
        expected = expected[1:]
        plain = _LinearInMacs(problem.clusters.k)
        plain.refit()
        assert (
            FleetSearch(problem, store, SETTINGS, latency_model=plain).objectives.expected(pairs)
            is None
        )
    median, _ = model.predict(problem.features(X))
    np.testing.assert_allclose([e.median_ms for e in expected], median.ravel()[1:])
    np.testing.assert_allclose([e.factor for e in expected], factor)


def _state(problem) -> dict:
    return {name: id(value) for name, value in vars(problem).items()}


def test_the_problem_is_unchanged_after_a_search_with_a_degraded_cluster(tmp_path):
    problem = _tiny()
    before = _state(problem)
    clusters = problem.clusters
    # Two attempts: a healthy device's first medians need a second to confirm them.
    policy = RetryPolicy(
        timeout_s=5.0, attempts_per_device=2, devices_per_cluster=1, backoff_s=0.01
    )
    broken = clusters.representatives[1].device_id
    groups = candidate_devices(clusters, policy)
    devices = [
        FaultyDevice(d, fail=1.0, hang=0, outlier=0) if d.device_id == broken else d
        for group in groups
        for d in group
    ]
    with (
        MeasurementStore(tmp_path / "m.sqlite", fingerprint(problem), "degraded") as store,
        embedded_client(devices) as client,
    ):
        dispatcher = Dispatcher(client, [[d.device_id for d in g] for g in groups], policy)
        result = FleetSearch(problem, store, SETTINGS, dispatcher=dispatcher).run()
        dispatcher.close()
    assert list(result.degraded) == [1] and result.clusters.degraded == frozenset({1})
    assert _state(problem) == before and problem.clusters is clusters
    assert problem.clusters.degraded == frozenset() and problem.model is None


def test_the_latency_policy_weighs_only_the_clusters_that_are_not_degraded():
    """After cluster 1 degrades, only cluster 0 counts: candidate A (10 ms there) beats
    B (20 ms). With the weights frozen when the search was built, A's 100 ms on the dead
    cluster made B look better and A dominated (the bug this guards)."""
    search = FleetSearch(_tiny(), None, SETTINGS)
    search.session.degrade(1, "unreachable")
    mean = np.array([[10.0, 100.0], [20.0, 15.0]])
    relevant = search.latency_policy.front_relevant(mean, np.zeros_like(mean), np.zeros((2, 1)))
    assert relevant.tolist() == [True, False]


def test_both_decision_spaces_satisfy_the_protocol():
    space = _tiny().space
    for candidate in (space, NB201Space()):
        assert isinstance(candidate, DecisionSpace)
        x = candidate.xu
        assert np.array_equal(candidate.encode(candidate.decode(x)), x)
        assert isinstance(candidate.fingerprint(), str) and candidate.describe()
    assert not hasattr(NB201Space(), "ratios")  # no pretending to be a compression space


def test_the_store_fingerprint_of_a_compression_problem_is_unchanged():
    """Stores written before the fingerprint moved to the decision space still open."""
    assert fingerprint(_tiny()) == "tiny_fleet:8de46208f279"


def test_optional_hooks_default_to_none():
    problem = _tiny()
    X = problem.space.xl[None]
    assert problem.enumerate() is None and problem.nominal_device() is None
    assert problem.prior_ms(X) is None


def test_loading_a_problem_file_imports_neither_rich_nor_matplotlib():
    code = (
        "import sys; from pathlib import Path; "
        "from moo_compress.problem_file import load_problem_class; "
        f"load_problem_class(Path({str(TINY)!r})); "
        "print(sorted(m for m in ('rich', 'matplotlib', 'botorch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["FleetSearch", "FleetCompressionProblem", "Measurement"])
def test_the_package_exports_its_public_api(name):
    import moo_compress

    assert name in moo_compress.__all__ and getattr(moo_compress, name).__name__ == name
    assert callable(moo_compress.compress)
