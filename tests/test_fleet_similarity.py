"""Online fleet diagnostics: a rescaled fleet ranks alike, a reordering one does not."""

import numpy as np
import pytest

from surrogates.fleet_similarity import rank_alike, spend_plan


def fleet(reorder: bool, n=40, seed=0):
    rng = np.random.default_rng(seed)
    base = np.exp(rng.uniform(1, 3, n))
    Y = np.column_stack([base, 1.47 * base**1.02, 1.003 * base])  # rescalings
    if reorder:
        Y[:, 2] = np.exp(rng.uniform(1, 3, n))  # a cluster with its own ranking
    Y *= np.exp(0.01 * rng.standard_normal(Y.shape))
    return Y


def test_rescaled_fleet_ranks_alike_and_closes_all_but_the_proxy():
    Y = fleet(reorder=False)
    Y[30:, 1] = np.nan  # cluster 1 measured less: cluster 0 is the proxy
    sim = rank_alike(Y, weights=np.array([0.2, 0.5, 0.3]))
    assert sim.alike and sim.proxy in (0, 2)
    assert sim.common.tolist()[1] == 30
    costs = spend_plan(sim, np.ones(3), n_measured=np.array([40, 30, 40]))
    assert np.isfinite(costs[sim.proxy]) and np.isinf(np.delete(costs, sim.proxy)).all()
    still_calibrating = spend_plan(sim, np.ones(3), n_measured=np.array([40, 2, 40]))
    assert np.isfinite(still_calibrating[1])


def test_reordering_fleet_is_not_alike_and_keeps_its_costs():
    sim = rank_alike(fleet(reorder=True), weights=np.ones(3) / 3)
    assert not sim.alike and sim.spearman[2] < 0.5
    np.testing.assert_array_equal(spend_plan(sim, np.ones(3), np.array([40, 40, 40])), 1.0)


def test_too_few_common_points_are_not_judged_alike():
    Y = fleet(reorder=False)
    Y[5:, 2] = np.nan
    sim = rank_alike(Y, weights=np.ones(3) / 3)
    assert not sim.alike and np.isnan(sim.spearman[2])
    assert sim.as_dict()["spearman"][2] is None
    with pytest.raises(ValueError, match="latencies"):
        rank_alike(-Y, np.ones(3) / 3)
