"""Protocol v2 of benchmarks.compare: budgets and M enforced for every method, verified
rows only in the headline scores, pinned threads, comparable nominal noise, and the
floors and the anytime count on hand-made fleets whose answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from benchmarks.compare.anytime import measurements_to_regret
from benchmarks.compare.meter import BudgetExhausted, Entry, key_of
from benchmarks.compare.methods import METHODS
from benchmarks.compare.protocol import ProtocolError, check, new_meter
from benchmarks.compare.reference import load_reference
from benchmarks.compare.regret import regrets
from benchmarks.compare.result import MethodResult
from benchmarks.compare.task import AccuracyBudgetExhausted, AccuracyLedger, load_task
from benchmarks.compare.unit import run_method, score_row

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"


@pytest.fixture(scope="module")
def tiny_task():
    task = load_task(str(TINY), seed=3)
    task.problem.generations = 2
    task.budget = 64  # ours needs 42 here: initial design and final front on 2 clusters
    return task


@pytest.mark.parametrize("name", list(METHODS))
def test_each_method_keeps_the_protocol(tiny_task, name, monkeypatch):
    run = run_method(tiny_task, name, 0)
    costs = run["costs"]
    assert 0 < costs["measurements"] <= tiny_task.budget
    assert costs["measurements"] == len(run["log"])
    assert 0 < costs["accuracy_evaluations"] <= tiny_task.accuracy_budget
    assert 1 <= len(run["verified"]) <= tiny_task.max_reported
    assert run["verified"].all(), "every method verifies what it reports"
    # reported values are its own measurements: close to the truth, not equal to it
    reported, true = run["reported"], run["true"]
    assert np.allclose(reported[:, 0], true[:, 0])
    assert np.allclose(reported[:, 1:], true[:, 1:], rtol=0.3)
    # audited on its own log, whatever it measured through (a meter or its store): had
    # the budget been one fewer, the run would be an error, not a truncated report
    result = MethodResult(np.zeros((len(reported), tiny_task.problem.n_var), int), run["log"])
    monkeypatch.setattr(tiny_task, "budget", costs["measurements"] - 1)
    with pytest.raises(ProtocolError, match="latency measurements, budget"):
        check(tiny_task, name, result, run["ledger"])


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_errors_over_the_accuracy_budget(tiny_task, name, monkeypatch):
    monkeypatch.setattr(tiny_task, "accuracy_budget", 3)
    with pytest.raises(AccuracyBudgetExhausted, match="budget of 3 accuracy evaluations"):
        run_method(tiny_task, name, 0)


def test_the_meter_refuses_a_measurement_beyond_the_budget(tiny_task):
    meter = new_meter(tiny_task, budget=3)
    X = tiny_task.random_configs(np.random.default_rng(0), 2)
    meter.measure_rows(tiny_task.representatives[:1], X)
    meter.measure(tiny_task.representatives[0], X[0])  # cached: not counted
    meter.measure(tiny_task.representatives[1], X[0])
    assert meter.count == 3 and [e.cluster for e in meter.log] == [0, 0, 1]
    with pytest.raises(BudgetExhausted, match="budget of 3"):
        meter.measure(tiny_task.representatives[1], X[1])


def test_more_than_m_reported_rows_is_an_error(tiny_task, monkeypatch):
    def too_many(task, seed):
        return MethodResult(task.random_configs(np.random.default_rng(0), task.max_reported + 1))

    monkeypatch.setitem(METHODS, "too_many", too_many)
    with pytest.raises(ProtocolError, match="reported 17 configurations, allowed at most M = 16"):
        run_method(tiny_task, "too_many", 0)


def test_unverified_rows_are_marked_and_left_out_of_the_scores(tiny_task, monkeypatch):
    X = np.vstack([tiny_task.problem.baseline(), tiny_task.problem.anchors()[0]])
    assert not np.array_equal(X[0], X[1])

    def half_verified(task, seed):
        meter = new_meter(task)
        meter.measure_rows(task.representatives, X[:1])
        task.accuracy(X[:1])
        # row 1 is neither measured nor evaluated: the method claims it is perfect
        predicted = np.array([[np.nan] * 3, [0.0, 1e-3, 1e-3]])
        return MethodResult(X, tuple(meter.log), predicted)

    monkeypatch.setitem(METHODS, "half_verified", half_verified)
    run = run_method(tiny_task, "half_verified", 0)
    assert run["verified"].tolist() == [True, False]
    assert np.array_equal(run["reported"][1], [0.0, 1e-3, 1e-3])
    baseline = tiny_task.baseline_objectives()
    reference = np.vstack([baseline, run["true"][1]])
    row = score_row(tiny_task, run, reference, baseline)
    alone = {
        **run,
        "reported": run["reported"][:1],
        "true": run["true"][:1],
        "verified": np.array([True]),
    }
    assert row["unverified"] == 1 and row["reported"] == 2
    # only the baseline row counts: the claimed-perfect row neither adds volume nor deploys
    assert row["worst_regret_5pt"] == pytest.approx(
        regrets(run["reported"][:1], run["true"][:1], reference, baseline)[-1].worst
    )
    assert row["hv_fraction"] == score_row(tiny_task, alone, reference, baseline)["hv_fraction"]


def test_same_seed_same_numbers_under_different_thread_settings(tiny_task, monkeypatch):
    seen = []

    def spy(task, seed):
        seen.append((torch.get_num_threads(), {pool["num_threads"] for pool in threadpool_info()}))
        return METHODS["mobo"](task, seed)

    monkeypatch.setitem(METHODS, "spy", spy)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            runs.append(run_method(tiny_task, "spy", 5))
            assert torch.get_num_threads() == threads  # restored afterwards
    finally:
        torch.set_num_threads(before)
    assert seen == [(1, {1}), (1, {1})]
    assert np.array_equal(runs[0]["reported"], runs[1]["reported"])
    assert [e.median_ms for e in runs[0]["log"]] == [e.median_ms for e in runs[1]["log"]]


def test_nominal_device_is_as_noisy_as_the_representatives(tiny_task):
    clusters = tiny_task.problem.clusters
    expected = float(np.dot(clusters.weights, [d.noise for d in clusters.representatives]))
    device = tiny_task.nominal_device()
    assert device.noise == pytest.approx(expected)
    assert (device.compute, device.bandwidth, device.overhead) == (1.0, 1.0, 1.0)


# --------------------------------------------------------------------- hand-made fleets
class _Clusters:
    k = 2

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def true_cluster_latency(self, X: np.ndarray) -> np.ndarray:
        return self.table[np.atleast_2d(X)[:, 0]]


class _HandProblem:
    """Configurations 0..N-1 (one variable), two equal clusters, truth given by hand."""

    pop_size, generations = 4, 2

    def __init__(self, loss, clusters) -> None:
        self.loss = np.asarray(loss, dtype=float)
        self.clusters = _Clusters(np.asarray(clusters, dtype=float))

    def enumerate(self) -> np.ndarray:
        return np.arange(len(self.loss))[:, None]

    def baseline(self) -> np.ndarray:
        return np.array([0])

    def anchors(self) -> np.ndarray:
        return self.baseline()[None]

    def objectives(self, accuracy, latency) -> np.ndarray:
        latency = np.atleast_2d(latency)
        return np.column_stack([1.0 - accuracy, latency.mean(axis=1), latency.max(axis=1)])

    def constraint_values(self, X, accuracy, latency) -> np.ndarray:
        return np.zeros((len(X), 0))


class _HandTask:
    name, seed, source, max_reported = "hand", 0, None, 16

    def __init__(self, loss, clusters, nominal) -> None:
        self.problem = _HandProblem(loss, clusters)
        self.nominal = np.asarray(nominal, dtype=float)

    def true_objectives(self, X):
        X = np.atleast_2d(X)
        latency = self.problem.clusters.true_cluster_latency(X)
        return self.problem.objectives(1.0 - self.problem.loss[X[:, 0]], latency)

    def baseline_objectives(self):
        return self.true_objectives(self.problem.baseline()[None])[0]

    def true_nominal_ms(self, X):
        return self.nominal[np.atleast_2d(X)[:, 0]]

    def macs(self, X):
        return self.nominal[np.atleast_2d(X)[:, 0]] * 1e6  # MACs rank like the nominal device

    def random_configs(self, rng, n):
        return rng.integers(0, len(self.problem.loss), size=(n, 1))


LOSS = [0.0, 0.004, 0.004, 0.04]
NOMINAL = [10.0, 5.0, 6.0, 2.0]
SWAPPED = [[10, 10], [5, 8], [6, 6], [2, 3]]
"""Configuration 1 is the fastest on the nominal device and on cluster 0, but cluster 1
runs it at 8 ms against configuration 2's 6 ms: a planted rank swap."""


def _floor_regrets(task, name):
    reference = load_reference(task, None)
    X, reported = reference.row(task, name)
    return regrets(
        reported,
        task.true_objectives(X),
        reference.front_objectives(task),
        task.baseline_objectives(),
    )


def test_a_pure_rescaling_leaves_no_nominal_regret():
    rescaled = np.array(NOMINAL)[:, None] * [1.0, 1.5]
    task = _HandTask(LOSS, rescaled, NOMINAL)
    for name in ("oracle", "oracle_nominal", "oracle_macs"):
        for r in _floor_regrets(task, name):
            assert (r.worst, r.average) == (pytest.approx(1.0), pytest.approx(1.0))


def test_a_planted_rank_swap_gives_the_planted_regret():
    task = _HandTask(LOSS, SWAPPED, NOMINAL)
    nominal = _floor_regrets(task, "oracle_nominal")
    # at 0.5 and 1 point the nominal device picks configuration 1: worst 8 ms against
    # configuration 2's 6 ms, fleet average 6.5 against 6; at 5 points configuration 3
    assert [r.worst for r in nominal] == pytest.approx([8 / 6, 8 / 6, 8 / 6, 1.0])
    assert nominal[0].average == pytest.approx(6.5 / 6)
    assert [r.worst for r in _floor_regrets(task, "oracle")] == pytest.approx([1.0] * 4)


def test_anytime_counts_measurements_until_the_deployed_regret_is_good():
    task = _HandTask(LOSS, SWAPPED, NOMINAL)
    reference = load_reference(task, None).front_objectives(task)
    baseline = task.baseline_objectives()
    one, two = key_of(np.array([1])), key_of(np.array([2]))
    log = (
        Entry("nominal", None, one, 5.0, 0.005),  # not a cluster: counts, verifies nothing
        Entry("rep-0", 0, one, 5.0, 0.005),
        Entry("rep-1", 1, one, 8.0, 0.008),  # 1 complete at 3: deployed, regret 8/6
        Entry("rep-0", 0, two, 6.0, 0.006),
        Entry("rep-1", 1, two, 6.0, 0.006),  # 2 complete at 5: deployed, regret 1.0
    )
    ledger = AccuracyLedger(budget=10, values={one: 0.996, two: 0.996})
    drops = (0.005, 0.05)
    steps = measurements_to_regret(task, log, ledger, reference, baseline, drops)
    # at 5 points configuration 3 is needed and never measured
    assert steps[0] == 5 and np.isnan(steps[1])
    # without its accuracy, configuration 2 cannot be deployed
    ledger = AccuracyLedger(budget=10, values={one: 0.996})
    assert np.isnan(measurements_to_regret(task, log, ledger, reference, baseline, drops)[0])
