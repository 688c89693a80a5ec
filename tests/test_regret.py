"""Deployment regret on hand-computed fronts."""

import numpy as np
import pytest

from benchmarks.compare.regret import best_at_floor, deployed_index, regret, regrets

BASELINE = np.array([0.10, 10.0, 12.0])  # loss, average ms, worst-cluster ms
REFERENCE = np.array(
    [
        [0.105, 6.0, 9.0],  # meets a 0.5-point floor
        [0.11, 5.0, 8.0],  # meets a 1-point floor
        [0.115, 4.0, 8.5],  # meets a 2-point floor: best average there, not best worst
        [0.15, 2.0, 3.0],  # meets only the 5-point floor
    ]
)


def test_deployed_is_lowest_reported_worst_within_floor() -> None:
    reported = np.array([[0.105, 7.0, 9.5], [0.11, 6.5, 9.0], [0.11, 6.0, 9.0], [0.2, 1, 1]])
    assert deployed_index(reported, 0.105) == 0
    assert deployed_index(reported, 0.11) == 2  # same worst as row 1, lower average
    assert deployed_index(reported, 0.09) is None


def test_best_at_floor_takes_each_axis_separately() -> None:
    assert best_at_floor(REFERENCE, 0.115) == (4.0, 8.0)
    with pytest.raises(ValueError, match="no reference configuration"):
        best_at_floor(REFERENCE, 0.1)


def test_regret_scores_the_truth_of_the_reported_choice() -> None:
    # the method believes row 0 is fastest at worst case; in truth it is row 1 that is
    reported = np.array([[0.11, 5.0, 7.0], [0.11, 5.5, 7.5]])
    true = np.array([[0.11, 6.0, 10.0], [0.11, 5.0, 8.0]])
    r = regret(reported, true, REFERENCE, BASELINE, drop=0.01)
    assert (r.worst, r.average, r.fell_back) == (pytest.approx(10.0 / 8.0), 6.0 / 5.0, False)


def test_no_qualifying_row_deploys_the_baseline() -> None:
    reported = np.array([[0.15, 2.0, 3.0]])
    r = regret(reported, reported, REFERENCE, BASELINE, drop=0.005)
    assert r.fell_back
    assert (r.worst, r.average) == (pytest.approx(12.0 / 9.0), pytest.approx(10.0 / 6.0))


def test_perfect_front_has_unit_regret_at_every_floor() -> None:
    front = np.vstack([REFERENCE[[0, 1, 3]]])  # the worst-optimal row at each floor
    result = regrets(front, front, REFERENCE, BASELINE)
    assert [r.worst for r in result] == [pytest.approx(1.0)] * 4
    # at the 2-point floor the worst-optimal row (5 ms) is not the average-optimal one (4 ms)
    assert [r.average for r in result] == pytest.approx([1.0, 1.0, 5.0 / 4.0, 1.0])
