"""Active learning: which (candidate, cluster) latencies to measure for real.

Each NSGA-II generation, the GP surrogate predicts for every candidate
configuration the latency mean and std (ms) on every device cluster. The
``ActiveLearningPolicy`` picks the few (candidate, cluster) pairs whose real
measurement is worth its cost: uncertain predictions of candidates that could
still change the Pareto front, within the measurement budgets.

Conventions: ``n`` candidates, ``K`` device clusters, ``m`` other objectives.
Latencies are in milliseconds. All objectives are minimised.

The policy does not define the fleet's objectives: the caller passes them as a callable
(:data:`Objectives`), e.g. ``FleetClusters.fleet_objectives`` of the clusters that count
*now*, so that a degraded cluster stops counting the moment it degrades.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from pymoo.util.dominator import Dominator
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from scipy.stats import qmc


def initial_design(
    xl: Sequence[int] | np.ndarray, xu: Sequence[int] | np.ndarray, n: int, seed: int
) -> np.ndarray:
    """Space-filling set of distinct integer vectors in the box ``[xl, xu]``.

    Points of a scrambled Sobol sequence (``scipy.stats.qmc.Sobol``) are mapped
    to integers (cell ``floor(u * (xu - xl + 1))`` per variable) and
    deduplicated, keeping sequence order; more points are drawn until ``n``
    distinct vectors are found. If the box holds no more than ``n`` integer
    vectors, all of them are returned (in lexicographic order).

    Args:
        xl, xu: inclusive integer bounds, shape (n_var,), ``xl <= xu``.
        n: number of vectors wanted, >= 1.
        seed: seed of the Sobol scrambling; equal seeds give equal designs.

    Returns:
        int64 array of shape (min(n, box size), n_var).
    """
    lower = np.asarray(xl, dtype=np.int64)
    upper = np.asarray(xu, dtype=np.int64)
    if lower.ndim != 1 or lower.shape != upper.shape or np.any(lower > upper) or n < 1:
        raise ValueError(f"need 1-D bounds with xl <= xu and n >= 1, got {xl}, {xu}, {n}")
    sizes = upper - lower + 1
    if np.prod(sizes.astype(float)) <= n:
        ranges = (range(lo, hi + 1) for lo, hi in zip(lower.tolist(), upper.tolist(), strict=True))
        return np.array(list(itertools.product(*ranges)), dtype=np.int64)
    sampler = qmc.Sobol(d=lower.size, scramble=True, seed=seed)
    u = sampler.random_base2(int(np.ceil(np.log2(n))))
    while True:
        points = lower + np.minimum(np.floor(u * sizes).astype(np.int64), sizes - 1)
        _, first = np.unique(points, axis=0, return_index=True)
        if first.size >= n:
            return points[np.sort(first)[:n]]
        u = np.concatenate([u, sampler.random(len(u))])


Objectives = Callable[[np.ndarray], np.ndarray]
"""(n, K) modelled values (e.g. latency in ms per cluster) -> (n, j) objectives, all
minimised and non-decreasing in every value (so that optimistic values give optimistic
objectives)."""


class ActiveLearningPolicy:
    """Chooses which (candidate, cluster) pairs to measure, within budgets.

    Selection rule (``select``):

    1. Only pairs with relative std ``std / mean > rel_std_threshold`` that are
       not already measured.
    2. Only *front-relevant* candidates: the candidate's optimistic objective
       vector (latencies at ``mean - kappa * std``) is not dominated by any
       candidate's pessimistic vector (latencies at ``mean + kappa * std``).
       Objectives: the other objectives (as given) and ``objectives(latency)``
       (e.g. the fleet-average and the worst-case latency).
    3. Pairs sorted by relative std, descending, taken greedily while the batch
       size, the remaining total budget and the remaining budget of the pair's
       cluster allow.

    Spending: every pair returned by ``select`` counts as spent immediately (the
    caller is expected to measure all of them). Measurements made outside
    ``select`` (initial design, final re-measurement of the front) are reported
    with ``spend``.

    Args:
        rel_std_threshold: minimum relative std (std / mean) worth measuring.
        batch_size: maximum pairs returned by one ``select`` call.
        budget_total: maximum measurements over all clusters.
        budget_per_cluster: maximum measurements per cluster: ``None`` (only the
            total applies), one int for every cluster, or one int per cluster.
        objectives: the :data:`Objectives` of the latencies, called on every
            selection (so it may change between calls); ``None`` = every cluster's
            latency is an objective of its own.
        kappa: width of the optimistic/pessimistic bounds in stds.
    """

    def __init__(
        self,
        rel_std_threshold: float = 0.03,
        batch_size: int = 8,
        budget_total: int = 200,
        budget_per_cluster: int | Sequence[int] | None = None,
        objectives: Objectives | None = None,
        kappa: float = 2.0,
    ):
        if batch_size < 1 or budget_total < 0 or rel_std_threshold < 0:
            raise ValueError(
                "need batch_size >= 1, budget_total >= 0 and rel_std_threshold >= 0, got "
                f"{batch_size}, {budget_total}, {rel_std_threshold}"
            )
        self.rel_std_threshold = rel_std_threshold
        self.batch_size = batch_size
        self.budget_total = budget_total
        self.budget_per_cluster = budget_per_cluster
        self.objectives = objectives
        self.kappa = kappa
        self.spent: Counter[int] = Counter()

    def cluster_budget(self, cluster: int) -> int | None:
        """Per-cluster budget of ``cluster`` (``None`` = no per-cluster limit)."""
        if self.budget_per_cluster is None or isinstance(self.budget_per_cluster, int):
            return self.budget_per_cluster
        return int(self.budget_per_cluster[cluster])

    def remaining(self, cluster: int | None = None) -> int:
        """Measurements still allowed: in total, or on ``cluster`` (which is
        also bounded by the remaining total)."""
        total = self.budget_total - sum(self.spent.values())
        if cluster is None:
            return total
        limit = self.cluster_budget(cluster)
        return total if limit is None else min(total, limit - self.spent[cluster])

    def spend(self, cluster: int, n: int = 1) -> None:
        """Record ``n`` measurements made on ``cluster`` outside ``select``.

        Raises ``ValueError`` if that would exceed a budget (nothing recorded).
        """
        if n < 0 or n > self.remaining(cluster):
            raise ValueError(
                f"cannot spend {n} on cluster {cluster}: {self.remaining(cluster)} remaining"
            )
        self.spent[cluster] += n

    def front_relevant(
        self,
        mean_ms: np.ndarray,
        std_ms: np.ndarray,
        other_objectives: np.ndarray | None = None,
    ) -> np.ndarray:
        """Mask (n,) of candidates whose optimistic objective vector is not
        dominated by any candidate's pessimistic one.

        Args:
            mean_ms, std_ms: predicted latency mean and std, shape (n, K), ms.
            other_objectives: shape (n, m), minimised; ``None`` = none.
        """
        optimistic = self._objectives(mean_ms - self.kappa * std_ms, other_objectives)
        pessimistic = self._objectives(mean_ms + self.kappa * std_ms, other_objectives)
        # Only non-dominated pessimistic vectors can dominate (transitivity).
        front = pessimistic[NonDominatedSorting().do(pessimistic, only_non_dominated_front=True)]
        dominated = (Dominator.calc_domination_matrix(optimistic, front) == -1).any(axis=1)
        return ~dominated

    def select(
        self,
        mean_ms: np.ndarray,
        std_ms: np.ndarray,
        other_objectives: np.ndarray | None = None,
        already_measured: np.ndarray | None = None,
    ) -> list[tuple[int, int]]:
        """Pairs (candidate index, cluster) to measure now; counts them as spent.

        Args:
            mean_ms: predicted latency mean, shape (n, K), ms, finite and > 0.
            std_ms: predicted latency std, shape (n, K), ms, finite and >= 0.
            other_objectives: other minimised objectives (e.g. accuracy loss),
                shape (n, m); ``None`` = none.
            already_measured: bool mask (n, K) of pairs never to return;
                ``None`` = none measured.

        Returns:
            At most ``batch_size`` distinct pairs, sorted by relative std
            descending, within the remaining total and per-cluster budgets.
        """
        mean_ms = np.asarray(mean_ms, dtype=float)
        std_ms = np.asarray(std_ms, dtype=float)
        if mean_ms.ndim != 2 or std_ms.shape != mean_ms.shape:
            raise ValueError(
                f"mean_ms and std_ms must share shape (n, K), got "
                f"{mean_ms.shape} and {std_ms.shape}"
            )
        if not (
            np.all(np.isfinite(mean_ms) & (mean_ms > 0))
            and np.all(np.isfinite(std_ms) & (std_ms >= 0))
        ):
            raise ValueError("need finite mean_ms > 0 and finite std_ms >= 0")
        if other_objectives is not None:
            other_objectives = np.asarray(other_objectives, dtype=float).reshape(len(mean_ms), -1)
        rel_std = std_ms / mean_ms
        eligible = rel_std > self.rel_std_threshold
        if already_measured is not None:
            eligible &= ~np.asarray(already_measured, dtype=bool)
        eligible &= self.front_relevant(mean_ms, std_ms, other_objectives)[:, None]
        rows, cols = np.nonzero(eligible)
        order = np.argsort(-rel_std[rows, cols], kind="stable")
        chosen: list[tuple[int, int]] = []
        for i, k in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
            if len(chosen) == self.batch_size or self.remaining() == 0:
                break
            if self.remaining(k) > 0:
                self.spent[k] += 1
                chosen.append((i, k))
        return chosen

    def _objectives(self, values: np.ndarray, other_objectives: np.ndarray | None) -> np.ndarray:
        """Objective matrix (n, m + j): other objectives, then ``objectives(values)``."""
        own = values if self.objectives is None else self.objectives(values)
        own = np.asarray(own, dtype=float).reshape(len(values), -1)
        if other_objectives is None:
            return own
        return np.concatenate([other_objectives, own], axis=1)
