"""FleetCompressionProblem: shapes, signs and constraints of a vectorised evaluation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from moo_compress.accuracy import ModelEvaluator

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"


def _tiny_class():
    spec = importlib.util.spec_from_file_location("tiny_fleet_for_tests", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyFleet


class _Fixed:
    """An ObjectiveModel with known values: accuracy 0.9 - 0.1 * row, latency grid."""

    def __init__(self, k: int) -> None:
        self.k = k

    def accuracy(self, X):
        return 0.9 - 0.1 * np.arange(len(X))

    def latency(self, X):
        return np.arange(len(X))[:, None] + np.arange(1, self.k + 1)[None, :]


@pytest.fixture(scope="module")
def problem():
    problem = _tiny_class()(seed=3)
    problem.model = _Fixed(problem.clusters.k)
    return problem


def test_objectives_shapes_and_signs(problem):
    X = np.tile(problem.space.xl, (3, 1))
    out = problem.evaluate(X, return_as_dictionary=True)
    F = out["F"]
    assert F.shape == (3, 3) and problem.n_obj == 3 and problem.n_var == problem.space.n_var
    np.testing.assert_allclose(F[:, 0], [0.1, 0.2, 0.3])  # 1 - accuracy, minimised
    latency = _Fixed(problem.clusters.k).latency(X)
    np.testing.assert_allclose(F[:, 1], latency @ problem.clusters.weights)
    np.testing.assert_allclose(F[:, 2], latency.max(axis=1))
    assert problem.clusters.k == 2 and np.isclose(problem.clusters.weights.sum(), 1.0)


def test_constraints_are_feasible_when_non_positive():
    cls = _tiny_class()

    class Constrained(cls):
        min_accuracy = 0.75
        max_worst_latency_ms = 2.5
        max_macs = 1e12

    problem = Constrained(seed=3)
    problem.model = _Fixed(problem.clusters.k)
    G = problem.evaluate(np.tile(problem.space.xl, (3, 1)), return_as_dictionary=True)["G"]
    assert G.shape == (3, 3) and problem.n_ieq_constr == 3
    np.testing.assert_allclose(G[:, 0], [-0.15, -0.05, 0.05])
    np.testing.assert_allclose(G[:, 1], [-0.5, 0.5, 1.5])
    assert (G[:, 2] < 0).all()


def test_evaluation_without_a_model_is_an_error():
    problem = _tiny_class()(seed=3)
    with pytest.raises(RuntimeError, match="problem.model is not set"):
        problem.evaluate(problem.space.xl[None])


def test_bad_fleet_is_a_clear_error():
    cls = _tiny_class()

    class NoDevices(cls):
        def build_fleet(self):
            return ["not a device"]

    with pytest.raises(ValueError, match="must return a Fleet or a non-empty list of Device"):
        NoDevices(seed=0)


def test_accuracy_label_follows_the_evaluator_mode():
    cls = _tiny_class()

    class Labelled(ModelEvaluator):
        mode = "real"

        def score(self, model):
            return 0.5

    class RealAccuracy(cls):
        def build_accuracy(self, model, example_input):
            return Labelled(model, [example_input])

    assert cls(seed=3).accuracy_label == "fidelity"
    problem = RealAccuracy(seed=3)
    assert problem.accuracy_label == "accuracy" and problem.accuracy_mode == "real"
    assert problem.evaluator.evaluate(problem.space.decode(problem.space.unpruned())) == 0.5
