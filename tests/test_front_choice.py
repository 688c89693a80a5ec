"""The greedy hypervolume choice against an exhaustive choice on small fronts, and the
deployment rows taken before it."""

from itertools import combinations

import moocore
import numpy as np
import pytest

from benchmarks.compare.protocol import choose
from benchmarks.compare.regret import DROPS, deployed_index
from moo_compress.front_choice import deployment_rows, greedy_hv_subset

REF = np.array([1.0, 1.0, 1.0])


def _front(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) mutually non-dominated points on the simplex x + y + z = 1, in (0, 1)^3."""
    w = rng.dirichlet(np.ones(3), size=n)
    return 0.05 + 0.9 * w


def _best_subset_hv(F: np.ndarray, m: int) -> float:
    return max(moocore.hypervolume(F[list(s)], ref=REF) for s in combinations(range(len(F)), m))


@pytest.mark.parametrize("seed", range(5))
def test_greedy_is_near_the_exhaustive_best(seed: int) -> None:
    F = _front(np.random.default_rng(seed), 9)
    for m in (1, 2, 3, 4):
        chosen = greedy_hv_subset(F, m, REF)
        assert len(chosen) == m and len(set(chosen.tolist())) == m
        greedy = moocore.hypervolume(F[chosen], ref=REF)
        best = _best_subset_hv(F, m)
        assert greedy <= best + 1e-12
        assert greedy >= (1 - 1 / np.e) * best  # the submodular guarantee
        if m == 1:  # the first pick is the best single point, exactly
            assert greedy == pytest.approx(best)


def test_dominated_and_outside_points_are_never_chosen() -> None:
    F = np.array([[0.2, 0.2, 0.2], [0.3, 0.3, 0.3], [0.5, 1.2, 0.1], [0.1, 0.5, 0.5]])
    chosen = greedy_hv_subset(F, 4, REF)
    assert sorted(chosen.tolist()) == [0, 3]  # 1 is dominated by 0; 2 is beyond the reference
    assert chosen[0] == 0  # the larger box first


def test_shape_and_m_are_checked() -> None:
    with pytest.raises(ValueError, match="m must be >= 1"):
        greedy_hv_subset(np.zeros((2, 3)), 0, REF)
    with pytest.raises(ValueError, match=r"F must be \(n, 3\)"):
        greedy_hv_subset(np.zeros((2, 2)), 1, REF)


def _staircase(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) non-dominated ``[loss, average, worst]``: loss from 0.10 up, both latencies
    falling, the worst cluster 1.5-2.5x the average."""
    loss = 0.10 + np.sort(rng.uniform(0.0, 0.08, n))
    average = np.sort(rng.uniform(0.1, 0.9, n))[::-1]
    return np.column_stack([loss, average, average * rng.uniform(1.5, 2.5, n)])


@pytest.mark.parametrize("seed", range(5))
def test_the_deployment_rows_are_those_the_regret_deploys(seed: int) -> None:
    F = _staircase(np.random.default_rng(seed), 40)
    rows = deployment_rows(F, 0.10)
    expected = [deployed_index(F, 0.10 + drop) for drop in DROPS]
    met = [i for i in expected if i is not None]  # a drop no row meets is skipped
    assert rows.tolist() == list(dict.fromkeys(met))  # distinct, in drop order


def test_a_drop_that_no_row_meets_is_skipped() -> None:
    F = np.array([[0.30, 1.0, 2.0], [0.32, 0.5, 1.0]])
    assert deployment_rows(F, 0.29).tolist() == [0, 1]  # 0.5 and 1 point: row 0; 5: row 1
    assert deployment_rows(F, 0.20).tolist() == []


def test_ties_on_the_worst_cluster_go_to_the_lower_average() -> None:
    F = np.array([[0.10, 0.9, 1.0], [0.10, 0.7, 1.0], [0.10, 0.8, 1.0]])
    assert deployment_rows(F, 0.10, drops=(0.0,)).tolist() == [1]


@pytest.mark.parametrize("seed", range(3))
def test_the_first_rows_are_taken_then_greedy_continues(seed: int) -> None:
    F = _front(np.random.default_rng(seed), 12)
    plain = greedy_hv_subset(F, 5, REF)
    skipped = [i for i in range(len(F)) if i not in plain.tolist()][:2]
    chosen = greedy_hv_subset(F, 5, REF, first=skipped)
    assert chosen[:2].tolist() == skipped and len(set(chosen.tolist())) == 5
    rest = chosen[2:].tolist()
    for k in range(len(rest)):  # each later pick is the best gain given what came before
        before = moocore.hypervolume(F[skipped + rest[:k]], ref=REF)
        gains = [
            moocore.hypervolume(F[skipped + rest[:k] + [i]], ref=REF) - before
            for i in range(len(F))
            if i not in skipped + rest[:k]
        ]
        assert moocore.hypervolume(F[skipped + rest[: k + 1]], ref=REF) - before == max(gains)
    assert greedy_hv_subset(F, 1, REF, first=skipped).tolist() == skipped[:1]


def test_first_rows_beyond_the_reference_point_are_not_taken() -> None:
    F = np.array([[0.2, 0.2, 0.2], [0.5, 1.2, 0.1]])
    assert greedy_hv_subset(F, 2, REF, first=[1]).tolist() == [0]


@pytest.mark.parametrize("seed", range(3))
def test_the_protocols_choice_deploys_as_well_as_the_whole_front(seed: int) -> None:
    F = _staircase(np.random.default_rng(seed), 60)
    baseline = np.array([0.10, 1.0, 2.5])
    picks = choose(F, baseline, 8)
    assert len(picks) <= 8
    for drop in DROPS:
        best = F[deployed_index(F, 0.10 + drop), 2]
        assert F[picks][deployed_index(F[picks], 0.10 + drop), 2] == best
