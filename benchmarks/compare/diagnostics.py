"""Fleet diagnostics: does a fleet reorder configurations, and what does tuning for one
device cost on it?

For a problem (a :class:`~benchmarks.compare.task.Task`) and its nominal device (the one
a single-device team would tune for):

* **Rank agreement** (over a sample of configurations): per cluster, Spearman's rank
  correlation and the log-linear R^2 (``log cluster ms ~ a + b log nominal ms``) of the
  true cluster latency against the nominal device's. R^2 = 1 means the cluster only
  rescales the nominal device (a power law at most): tuning for the nominal device is
  tuning for that cluster.
* **Worst-cluster changes** along the oracle (true) front, points sorted by accuracy
  loss: how many neighbours have different worst clusters, and how many clusters are
  ever the worst. With one worst cluster throughout, the worst-case objective is one
  cluster's latency.
* **oracle_nominal**: the front that is optimal for the nominal device alone (exact by
  enumeration where the problem enumerates its space, else the nominal-optimal rows of
  the pool of the reference's three NSGA-II fronts on the true latencies, so that its
  regret measures reordering, not search error; the problem's cached reference,
  :mod:`benchmarks.compare.reference`), reported as the nominal device's latency for
  both average and worst case, and scored on the fleet's truth: its hypervolume
  fraction (:mod:`benchmarks.compare.metrics`) and its deployment regret at the accuracy
  floors (:mod:`benchmarks.compare.regret`).

A problem is a **fleet-awareness test** when oracle_nominal leaves at least
:data:`TEST_REGRET` (5 %) worst-cluster regret at some floor; otherwise it is a
**control**: there, tuning for one device is as good as knowing the fleet.

The reference of the regret and the hypervolume is the problem's reference front (the
non-dominated union of the oracle and the two floor fronts, on the truth), as for every
method of the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from benchmarks.compare.metrics import Scale, hypervolume, non_dominated_index
from benchmarks.compare.reference import ORACLE_EFFORT, Reference, load_reference
from benchmarks.compare.regret import DROPS, Regret, regrets
from benchmarks.compare.task import Task

TEST_REGRET = 1.05
"""Worst-cluster regret of oracle_nominal at or above which a problem is a test."""


@dataclass(frozen=True)
class Diagnostics:
    """The diagnostics of one problem at one seed.

    Attributes:
        problem: Problem name.
        nominal: Device id of the nominal device.
        clusters: (K,) representative id of each cluster.
        spearman: (K,) Spearman of each cluster's true ms against the nominal's.
        r2: (K,) log-linear R^2 of each cluster's true ms against the nominal's.
        sample_size: Configurations behind ``spearman`` and ``r2``.
        front_size: Points of the oracle front.
        worst_changes: Neighbours on the oracle front (sorted by loss) whose worst
            clusters differ.
        worst_clusters: Distinct clusters that are the worst somewhere on that front.
        nominal_hv_fraction: oracle_nominal's hypervolume over the reference's, on the
            fleet's truth.
        nominal_regrets: oracle_nominal's deployment regret at each floor.
        exact: Whether the fronts come from enumeration.
    """

    problem: str
    nominal: str
    clusters: tuple[str, ...]
    spearman: np.ndarray
    r2: np.ndarray
    sample_size: int
    front_size: int
    worst_changes: int
    worst_clusters: int
    nominal_hv_fraction: float
    nominal_regrets: tuple[Regret, ...]
    exact: bool

    @property
    def max_worst_regret(self) -> float:
        """Largest worst-cluster regret of oracle_nominal over the floors."""
        return max(r.worst for r in self.nominal_regrets)

    @property
    def kind(self) -> str:
        """``"test"`` (fleet-awareness test) or ``"control"``."""
        return "test" if self.max_worst_regret >= TEST_REGRET else "control"

    def row(self) -> dict[str, str]:
        """One printable row: the diagnostics, rounded."""
        regret = " / ".join(f"{r.worst:.3f}" for r in self.nominal_regrets)
        average = " / ".join(f"{r.average:.3f}" for r in self.nominal_regrets)
        return {
            "problem": self.problem,
            "kind": self.kind,
            "nominal": self.nominal,
            "K": str(len(self.clusters)),
            "spearman min..max": f"{self.spearman.min():.3f}..{self.spearman.max():.3f}",
            "R2 min..max": f"{self.r2.min():.3f}..{self.r2.max():.3f}",
            "worst changes / front": f"{self.worst_changes} / {self.front_size}",
            "worst clusters": str(self.worst_clusters),
            "nominal HV": f"{self.nominal_hv_fraction:.3f}",
            "nominal worst regret": regret,
            "nominal avg regret": average,
        }


# ---------------------------------------------------------------------- array-level parts
def rank_agreement(cluster_ms: np.ndarray, nominal_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K,) Spearman and (K,) log-linear R^2 of (N, K) cluster ms against (N,) nominal ms.

    R^2 of the least-squares line ``log cluster = a + b log nominal`` is the squared
    Pearson correlation of the logs. Both are NaN for a constant column.
    """
    cluster_ms = np.atleast_2d(np.asarray(cluster_ms, dtype=float))
    nominal_ms = np.asarray(nominal_ms, dtype=float)
    log_n = np.log(nominal_ms)
    rho, r2 = [], []
    for k in range(cluster_ms.shape[1]):
        column = cluster_ms[:, k]
        rho.append(float(spearmanr(column, nominal_ms).statistic))
        r2.append(float(np.corrcoef(np.log(column), log_n)[0, 1] ** 2))
    return np.array(rho), np.array(r2)


def worst_cluster_changes(loss: np.ndarray, cluster_ms: np.ndarray) -> tuple[int, int]:
    """(changes, distinct) of the worst cluster along a front.

    Args:
        loss: (P,) accuracy loss of the front's points (the sort key).
        cluster_ms: (P, K) their true per-cluster latency (degraded clusters removed).

    Returns:
        How many neighbours (points sorted by loss, ties by the worst ms) have
        different worst clusters, and how many clusters are the worst somewhere.
    """
    cluster_ms = np.atleast_2d(np.asarray(cluster_ms, dtype=float))
    if len(cluster_ms) == 0:
        return 0, 0
    order = np.lexsort((cluster_ms.max(axis=1), np.asarray(loss, dtype=float)))
    worst = cluster_ms[order].argmax(axis=1)
    return int(np.count_nonzero(worst[1:] != worst[:-1])), len(np.unique(worst))


def score_front(
    reported: np.ndarray,
    true_F: np.ndarray,
    reference: np.ndarray,
    baseline: np.ndarray,
    drops: tuple[float, ...] = DROPS,
) -> tuple[float, list[Regret]]:
    """HV fraction and deployment regrets of a reported front, on the truth.

    Args:
        reported: (P, 3) what the front reports (oracle_nominal: ``[loss, nominal ms,
            nominal ms]``), by which the deployed row is chosen.
        true_F: (P, 3) the true ``[loss, fleet-average ms, worst-cluster ms]`` of its rows.
        reference: (R, 3) true objectives of the reference front.
        baseline: (3,) true objectives of the uncompressed configuration.
    """
    scale = Scale(np.asarray(baseline, dtype=float))
    hv = hypervolume(true_F, scale) / hypervolume(reference, scale)
    return hv, regrets(reported, true_F, reference, baseline, drops)


# ---------------------------------------------------------------------- a task
def diagnose(
    task: Task,
    seed: int = 0,
    n_sample: int = 2000,
    cache_dir: Path | None = None,
    effort: int = ORACLE_EFFORT,
    reference: Reference | None = None,
) -> Diagnostics:
    """The diagnostics of a task (see the module docstring).

    Args:
        task: The problem at one seed.
        seed: Seed of the random sample.
        n_sample: Uniform random configurations behind the rank agreement (every one
            where the problem enumerates its space).
        cache_dir: Where the problem's reference is cached (None: computed, not kept).
        effort: The reference's NSGA-II effort (see :mod:`benchmarks.compare.reference`).
        reference: The task's reference, if already loaded (then ``cache_dir`` and
            ``effort`` are not used).
    """
    problem = task.problem
    nominal = task.nominal_device()
    clusters = problem.clusters
    active = clusters.active
    if reference is None:
        reference = load_reference(task, cache_dir, effort)
    reference_F = reference.front_objectives(task)
    baseline = task.baseline_objectives()
    nominal_X, reported = reference.row(task, "oracle_nominal")
    hv, nominal_regrets = score_front(
        reported, task.true_objectives(nominal_X), reference_F, baseline
    )

    sample = problem.enumerate()
    if sample is None:
        rng = np.random.default_rng(seed)
        sample = np.vstack([problem.anchors(), task.random_configs(rng, n_sample)])
    spearman, r2 = rank_agreement(
        clusters.true_cluster_latency(sample)[:, active], nominal.true_latency_ms(sample)
    )
    oracle_X = reference.fronts["oracle"]
    oracle_F = task.true_objectives(oracle_X)
    front = non_dominated_index(oracle_F)
    per_cluster = clusters.true_cluster_latency(oracle_X[front])[:, active]
    changes, distinct = worst_cluster_changes(oracle_F[front, 0], per_cluster)
    return Diagnostics(
        problem=task.name,
        nominal=nominal.device_id,
        clusters=tuple(clusters.representatives[k].device_id for k in np.flatnonzero(active)),
        spearman=spearman,
        r2=r2,
        sample_size=len(sample),
        front_size=len(front),
        worst_changes=changes,
        worst_clusters=distinct,
        nominal_hv_fraction=hv,
        nominal_regrets=tuple(nominal_regrets),
        exact=reference.exact,
    )
