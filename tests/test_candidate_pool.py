"""CandidatePool: distinct rows, best predicted layers, infeasible rows left out."""

from __future__ import annotations

import numpy as np

from moo_compress.candidate_pool import CandidatePool


def predict(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # two objectives from the two genes; gene 0 == 9 is infeasible
    F = np.column_stack([X[:, 0], X[:, 1]]).astype(float)
    return F, X[:, 0] != 9


def test_rows_are_distinct_in_first_seen_order():
    pool = CandidatePool()
    pool.add(np.array([[1, 2], [3, 4]]))
    pool.add(np.array([[3, 4], [0, 5]]))
    np.testing.assert_array_equal(pool.rows(), [[1, 2], [3, 4], [0, 5]])
    assert len(pool) == 3


def test_best_takes_whole_layers_and_leaves_out_infeasible_rows():
    pool = CandidatePool()
    # layer 1: (0,3) (1,1) (3,0); layer 2: (2,2) (4,1); (9,0) would dominate but is infeasible
    pool.add(np.array([[2, 2], [0, 3], [9, 0], [4, 1], [1, 1], [3, 0]]))
    front = pool.best(predict, 1)
    assert {tuple(x) for x in front} == {(0, 3), (1, 1), (3, 0)}
    four = pool.best(predict, 4)
    assert {tuple(x) for x in four} == {(0, 3), (1, 1), (3, 0), (2, 2), (4, 1)}
    assert (9, 0) not in {tuple(x) for x in pool.best(predict, 10)}


def test_empty_pool_and_nothing_feasible_give_no_rows():
    pool = CandidatePool()
    assert pool.best(predict, 3).shape[0] == 0
    pool.add(np.array([[9, 1]]))
    assert pool.best(predict, 3).shape[0] == 0
