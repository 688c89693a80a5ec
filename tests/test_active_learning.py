"""Tests of surrogates.active_learning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moo_compress.fleet_clusters import FleetClusters
from surrogates.active_learning import ActiveLearningPolicy, initial_design

XL = np.array([0, 0, 2, 1])
XU = np.array([3, 7, 2, 4])


def test_initial_design_within_bounds_integer_unique() -> None:
    design = initial_design(XL, XU, 20, seed=0)
    assert design.shape == (20, 4)
    assert design.dtype == np.int64
    assert np.all(design >= XL) and np.all(design <= XU)
    assert len(np.unique(design, axis=0)) == 20


def test_initial_design_reproducible_by_seed() -> None:
    a = initial_design(XL, XU, 13, seed=42)
    assert np.array_equal(a, initial_design(XL, XU, 13, seed=42))
    assert not np.array_equal(a, initial_design(XL, XU, 13, seed=43))


def test_initial_design_covers_every_level() -> None:
    design = initial_design(XL, XU, 16, seed=1)
    for j in range(4):
        assert set(design[:, j]) == set(range(XL[j], XU[j] + 1))


def test_initial_design_small_box_returns_all_points() -> None:
    design = initial_design([0, 0], [1, 2], 10, seed=0)
    assert design.shape == (6, 2)
    assert len(np.unique(design, axis=0)) == 6


def test_initial_design_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        initial_design([0, 3], [1, 2], 4, seed=0)


def _fleet(*sizes: int):
    """The fleet objectives (size-weighted mean and max latency) of clusters of ``sizes``."""
    return FleetClusters((), np.array(sizes)).fleet_objectives


def _policy(**kwargs) -> ActiveLearningPolicy:
    defaults = dict(
        rel_std_threshold=0.03, batch_size=10, budget_total=100, objectives=_fleet(1, 1)
    )
    return ActiveLearningPolicy(**(defaults | kwargs))


def test_picks_high_variance_over_low_variance() -> None:
    # Three mutually non-dominated candidates (accuracy loss vs latency).
    mean = np.array([[10.0, 12.0], [20.0, 22.0], [30.0, 32.0]])
    std = np.array([[0.5, 0.6], [4.0, 2.0], [1.2, 1.3]])
    other = np.array([[0.3], [0.2], [0.1]])
    pairs = _policy(batch_size=2).select(mean, std, other)
    assert pairs == [(1, 0), (1, 1)]
    pairs = _policy(batch_size=10).select(mean, std, other)
    rel = [std[i, k] / mean[i, k] for i, k in pairs]
    assert rel == sorted(rel, reverse=True)
    assert len(set(pairs)) == len(pairs)


def test_pairs_below_threshold_not_chosen() -> None:
    mean = np.array([[10.0, 10.0], [20.0, 20.0]])
    std = np.array([[0.2, 0.5], [0.5, 0.7]])  # rel std 0.02, 0.05, 0.025, 0.035
    other = np.array([[0.2], [0.1]])
    pairs = _policy(rel_std_threshold=0.03).select(mean, std, other)
    assert sorted(pairs) == [(0, 1), (1, 1)]
    assert _policy(rel_std_threshold=0.1).select(mean, std, other) == []


def test_optimistically_dominated_candidate_not_chosen() -> None:
    # Candidate 2 is worse in accuracy and, even at mean - 2 std, slower than
    # candidate 0 at mean + 2 std: it cannot reach the front.
    mean = np.array([[10.0, 11.0], [30.0, 31.0], [50.0, 52.0]])
    std = np.array([[0.5, 0.5], [1.0, 1.0], [10.0, 10.0]])
    other = np.array([[0.1], [0.05], [0.2]])
    policy = _policy()
    assert policy.front_relevant(mean, std, other).tolist() == [True, True, False]
    pairs = policy.select(mean, std, other)
    assert pairs and all(i != 2 for i, _ in pairs)
    # With a huge std the same candidate could reach the front: chosen.
    std[2] = 22.0
    assert any(i == 2 for i, _ in _policy().select(mean, std, other))


def test_worst_case_latency_objective_keeps_balanced_candidate() -> None:
    # Candidate 1 is slower on the fleet average (22 vs 20 ms, beyond 2 std)
    # but faster in the worst case (22 vs 30 ms): it stays front-relevant.
    mean = np.array([[10.0, 30.0], [22.0, 22.0]])
    std = np.full((2, 2), 0.25)
    other = np.array([[0.1], [0.1]])
    assert _policy().front_relevant(mean, std, other).tolist() == [True, True]
    assert _policy(objectives=_fleet(1, 0)).front_relevant(mean, std, other).tolist() == [
        True,
        True,
    ]
    # Worse on both the average and the worst case: dropped.
    mean = np.array([[10.0, 12.0], [19.0, 20.0]])
    assert _policy().front_relevant(mean, std, other).tolist() == [True, False]


def test_cluster_sizes_define_fleet_average() -> None:
    # Exact predictions, equal worst case (20 ms): the fleet average decides,
    # 15 vs 17.5 ms with uniform weights, 20 vs 15 ms with all weight on cluster 1;
    # the weights flip which candidate is dominated.
    mean = np.array([[10.0, 20.0], [20.0, 15.0]])
    std = np.zeros((2, 2))
    other = np.array([[0.1], [0.1]])
    assert _policy().front_relevant(mean, std, other).tolist() == [True, False]
    assert _policy(objectives=_fleet(0, 1)).front_relevant(mean, std, other).tolist() == [
        False,
        True,
    ]


def test_already_measured_pairs_not_chosen() -> None:
    mean = np.full((3, 2), 10.0)
    std = np.array([[3.0, 2.0], [1.0, 1.5], [0.8, 0.9]])
    measured = np.zeros((3, 2), dtype=bool)
    measured[0, 0] = True
    pairs = _policy().select(mean, std, already_measured=measured)
    assert (0, 0) not in pairs
    assert pairs[0] == (0, 1)


def test_select_counts_spending_and_spend_records_outside_measurements() -> None:
    policy = _policy(budget_total=10, budget_per_cluster=[6, 3])
    policy.spend(0, 4)
    assert policy.remaining() == 6
    assert policy.remaining(0) == 2
    assert policy.remaining(1) == 3
    mean = np.full((5, 2), 10.0)
    std = np.full((5, 2), 2.0)
    pairs = policy.select(mean, std)
    assert sum(k == 0 for _, k in pairs) == 2
    assert sum(k == 1 for _, k in pairs) == 3
    assert policy.remaining() == 1
    assert policy.remaining(0) == 0 and policy.remaining(1) == 0
    assert policy.select(mean, std) == []
    with pytest.raises(ValueError):
        policy.spend(1, 1)


def test_select_rejects_invalid_predictions() -> None:
    with pytest.raises(ValueError):
        _policy().select(np.array([[0.0]]), np.array([[1.0]]))
    with pytest.raises(ValueError):
        _policy().select(np.array([[1.0]]), np.array([[np.nan]]))
    with pytest.raises(ValueError, match=r"expected \(N, 3\)"):
        _policy(objectives=_fleet(1, 1, 1)).select(np.ones((1, 2)), np.ones((1, 2)))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_clusters=st.integers(1, 4),
    batch_size=st.integers(1, 7),
    budget_total=st.integers(0, 40),
    per_cluster=st.one_of(st.none(), st.integers(0, 15)),
    n_calls=st.integers(1, 12),
)
def test_budgets_never_exceeded(
    seed: int,
    n_clusters: int,
    batch_size: int,
    budget_total: int,
    per_cluster: int | None,
    n_calls: int,
) -> None:
    rng = np.random.default_rng(seed)
    policy = ActiveLearningPolicy(
        rel_std_threshold=0.03,
        batch_size=batch_size,
        budget_total=budget_total,
        budget_per_cluster=per_cluster,
    )
    spent = np.zeros(n_clusters, dtype=int)
    for _ in range(n_calls):
        n = int(rng.integers(1, 15))
        mean = rng.uniform(1.0, 50.0, (n, n_clusters))
        std = mean * rng.uniform(0.0, 0.3, (n, n_clusters))
        other = rng.uniform(0.0, 1.0, (n, 1))
        pairs = policy.select(mean, std, other)
        assert len(pairs) <= batch_size
        assert len(set(pairs)) == len(pairs)
        for i, k in pairs:
            assert std[i, k] / mean[i, k] > 0.03
            spent[k] += 1
        assert spent.sum() <= budget_total
        if per_cluster is not None:
            assert np.all(spent <= per_cluster)
        assert policy.remaining() == budget_total - spent.sum()
