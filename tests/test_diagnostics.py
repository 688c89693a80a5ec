"""Tests of benchmarks.compare.diagnostics on hand-made fleets whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.compare.diagnostics import (
    Diagnostics,
    rank_agreement,
    score_front,
    worst_cluster_changes,
)
from benchmarks.compare.metrics import non_dominated_index
from benchmarks.compare.reference import pooled
from benchmarks.compare.regret import regrets
from moo_compress.nb201 import FILES, data_dir

# Hand-made candidates: (loss, nominal ms). Row 0 is the uncompressed baseline; row 1 is
# dominated by row 2 on the nominal device.
LOSS = np.array([0.100, 0.104, 0.103, 0.108, 0.112, 0.130, 0.200])
NOMINAL = np.array([10.0, 7.5, 7.0, 6.0, 5.0, 3.0, 2.0])


def true_objectives(cluster_ms: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.column_stack([LOSS, cluster_ms @ weights, cluster_ms.max(axis=1)])


def nominal_front_index(loss: np.ndarray, nominal_ms: np.ndarray) -> np.ndarray:
    """Rows non-dominated on (loss, nominal ms): oracle_nominal among candidates."""
    return non_dominated_index(np.column_stack([loss, nominal_ms]))


def score_nominal(true_F: np.ndarray):
    """oracle_nominal among the hand-made candidates, scored against all of them."""
    rows = nominal_front_index(LOSS, NOMINAL)
    reported = np.column_stack([LOSS[rows], NOMINAL[rows], NOMINAL[rows]])
    return (rows, *score_front(reported, true_F[rows], true_F, true_F[0]))


def diagnostics(regret_list) -> Diagnostics:
    return Diagnostics(
        "hand",
        "nominal",
        ("a", "b"),
        np.ones(2),
        np.ones(2),
        7,
        3,
        0,
        1,
        1.0,
        tuple(regret_list),
        True,
    )


def test_a_pure_rescaling_is_a_control() -> None:
    # Two clusters at 1.5x and 0.8x the nominal device (plus a power law on the second).
    cluster_ms = np.column_stack([1.5 * NOMINAL, 0.8 * NOMINAL**1.2])
    spearman, r2 = rank_agreement(cluster_ms, NOMINAL)
    np.testing.assert_allclose(spearman, 1.0)
    np.testing.assert_allclose(r2, 1.0)
    true_F = true_objectives(cluster_ms, np.array([0.5, 0.5]))
    rows, hv, found = score_nominal(true_F)
    assert hv == pytest.approx(1.0)
    assert [r.worst for r in found] == pytest.approx([1.0] * 4)
    assert [r.average for r in found] == pytest.approx([1.0] * 4)
    assert diagnostics(found).kind == "control"
    assert worst_cluster_changes(LOSS[rows], cluster_ms[rows]) == (0, 1)


def test_a_planted_rank_swap_gives_the_planted_regret() -> None:
    # Cluster "b" runs row 2 (the nominal device's pick at the 0.5-point floor) at 9 ms
    # instead of 7: the best worst-cluster latency at that floor is then row 1's 7.5 ms,
    # a configuration that oracle_nominal does not even report.
    cluster_ms = np.column_stack([NOMINAL, NOMINAL.copy()])
    cluster_ms[2, 1] = 9.0
    spearman, r2 = rank_agreement(cluster_ms, NOMINAL)
    assert spearman[0] == pytest.approx(1.0) and spearman[1] < 1.0 and r2[1] < 1.0
    true_F = true_objectives(cluster_ms, np.array([0.5, 0.5]))
    rows, hv, found = score_nominal(true_F)
    assert 2 in rows and 1 not in rows and hv < 1.0
    by_drop = {r.drop: r for r in found}
    assert by_drop[0.005].worst == pytest.approx(9.0 / 7.5)  # planted
    assert by_drop[0.005].average == pytest.approx(8.0 / 7.5)  # (7 + 9) / 2 against 7.5
    assert by_drop[0.01].worst == pytest.approx(1.0)  # row 3 qualifies: untouched
    assert diagnostics(found).kind == "test"
    assert diagnostics(found).max_worst_regret == pytest.approx(9.0 / 7.5)
    # The worst cluster is "b" at row 2 only: along the nominal front it changes twice.
    assert worst_cluster_changes(LOSS[rows], cluster_ms[rows]) == (2, 2)


def test_regret_just_under_the_threshold_is_a_control() -> None:
    cluster_ms = np.column_stack([NOMINAL, NOMINAL.copy()])
    cluster_ms[2, 1] = 7.5 * 1.049  # 4.9 % slower than row 1 on "b"
    true_F = true_objectives(cluster_ms, np.array([0.5, 0.5]))
    _, _, found = score_nominal(true_F)
    assert diagnostics(found).max_worst_regret == pytest.approx(1.049)
    assert diagnostics(found).kind == "control"


class HandTask:
    """The hand-made candidates as a task whose configurations are row indices (N, 1)."""

    def __init__(self, cluster_ms: np.ndarray) -> None:
        self.F = true_objectives(cluster_ms, np.array([0.5, 0.5]))

    def true_objectives(self, X: np.ndarray) -> np.ndarray:
        return self.F[X[:, 0]]

    def true_nominal_ms(self, X: np.ndarray) -> np.ndarray:
        return NOMINAL[X[:, 0]]

    def macs(self, X: np.ndarray) -> np.ndarray:
        return NOMINAL[X[:, 0]] * 1e6


def test_pooled_floor_fronts_leave_no_regret_on_a_pure_rescaling() -> None:
    # Search error planted in the separate NSGA-II runs: the oracle_nominal run missed
    # rows 2 and 3, which the oracle run found. Alone, oracle_nominal would then show
    # regret on a fleet that only rescales the nominal device; from the pool, none.
    task = HandTask(np.column_stack([1.5 * NOMINAL, 0.8 * NOMINAL**1.2]))
    rows = nominal_front_index(LOSS, NOMINAL)
    fronts = {
        "oracle": rows[:, None],
        "oracle_macs": np.array([[0], [6]]),
        "oracle_nominal": np.array([[0], [4], [5], [6]]),
    }
    alone = [r.worst for r in score_nominal_rows(task, fronts["oracle_nominal"][:, 0])]
    assert max(alone) > 1.05  # the planted search error
    pool = pooled(task, fronts)
    assert sorted(pool["oracle_nominal"][:, 0]) == sorted(rows)
    assert sorted(pool["oracle_macs"][:, 0]) == sorted(rows)
    found = score_nominal_rows(task, pool["oracle_nominal"][:, 0])
    assert [r.worst for r in found] == pytest.approx([1.0] * 4)


def test_pooled_fronts_keep_a_planted_rank_swap() -> None:
    cluster_ms = np.column_stack([NOMINAL, NOMINAL.copy()])
    cluster_ms[2, 1] = 9.0
    task = HandTask(cluster_ms)
    fronts = {name: np.arange(len(LOSS))[:, None] for name in ("oracle", "oracle_macs")}
    fronts["oracle_nominal"] = nominal_front_index(LOSS, NOMINAL)[:, None]
    pool = pooled(task, fronts)
    assert 1 not in pool["oracle_nominal"][:, 0] and 1 in pool["oracle"][:, 0]
    found = {r.drop: r for r in score_nominal_rows(task, pool["oracle_nominal"][:, 0])}
    assert found[0.005].worst == pytest.approx(9.0 / 7.5)


def score_nominal_rows(task: HandTask, rows: np.ndarray):
    """Regrets of reporting ``rows`` as oracle_nominal, against all candidates' front."""
    reported = np.column_stack([LOSS[rows], NOMINAL[rows], NOMINAL[rows]])
    reference = task.F[non_dominated_index(task.F)]
    return regrets(reported, task.F[rows], reference, task.F[0])


needs_data = pytest.mark.skipif(
    not all((data_dir() / f).is_file() for f in FILES),
    reason=f"NB201 data not found in {data_dir()} (set MOO_COMPRESS_NB201)",
)


@needs_data
def test_diagnose_on_nb201_matches_the_exact_nominal_front() -> None:
    from benchmarks.compare.diagnostics import diagnose
    from benchmarks.compare.task import load_task

    task = load_task("nb201_phones", seed=0)
    found = diagnose(task)
    X = task.problem.enumerate()
    true_F = task.true_objectives(X)
    nominal_ms = task.problem.nominal_device().true_latency_ms(X)
    rows = nominal_front_index(true_F[:, 0], nominal_ms)
    reported = np.column_stack([true_F[rows, 0], nominal_ms[rows], nominal_ms[rows]])
    expected = regrets(reported, true_F[rows], true_F, task.baseline_objectives())
    assert [r.worst for r in found.nominal_regrets] == pytest.approx([r.worst for r in expected])
    assert found.exact and found.nominal == "pixel2" and found.sample_size == len(X)
    assert found.spearman.shape == (4,) and np.all(np.abs(found.spearman) <= 1)
