"""Every configuration a search's NSGA-II has evaluated on the posterior: the pool from
which search v2 picks what to measure and what to report.

NSGA-II explores the posterior cheaply (a surrogate evaluation costs microseconds; an
accuracy evaluation of a cheap evaluator is cached). Keeping *every* evaluated decision
vector, not only the current population and offspring, gives each acquisition round a
pool as wide as all the exploration so far, so a round can always spend its share of
the budget, and lets the final front be chosen from the whole exploration re-predicted
with the final model (issue 13, "the candidates come from NSGA-II on the posterior").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""(N, n_var) int -> ((N, 3) predicted objectives to minimise, (N,) bool feasible)."""


class CandidatePool:
    """Distinct decision vectors in the order first seen."""

    def __init__(self) -> None:
        self._rows: dict[bytes, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, X: np.ndarray) -> None:
        """Add the rows of ``X`` (N, n_var) int that are new."""
        for x in np.asarray(X, dtype=np.int64):
            self._rows.setdefault(x.tobytes(), x)

    def rows(self) -> np.ndarray:
        """(n, n_var) int64, every row added."""
        return np.array(list(self._rows.values()), dtype=np.int64)

    def best(self, predict: Predict, n: int) -> np.ndarray:
        """At least ``min(n, feasible)`` rows: whole non-dominated layers of the predicted
        objectives of the feasible rows, best layer first (the last layer taken may
        overshoot ``n``; ``n = 1`` gives the predicted front). Rows predicted infeasible
        are left out.

        Args:
            predict: The predicted objectives and feasibility of rows.
            n: Rows wanted, ``>= 1``.

        Returns:
            (p, n_var) int64 rows; ``p = 0`` when the pool is empty or nothing is feasible.
        """
        X = self.rows()
        if not len(X):
            return X
        F, feasible = predict(X)
        X, F = X[feasible], F[feasible]
        if not len(X):
            return X
        layers = NonDominatedSorting().do(F, n_stop_if_ranked=n)
        return X[np.concatenate(layers)]
