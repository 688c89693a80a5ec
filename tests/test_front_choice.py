"""The greedy hypervolume choice against an exhaustive choice on small fronts."""

from itertools import combinations

import moocore
import numpy as np
import pytest

from moo_compress.front_choice import greedy_hv_subset

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
