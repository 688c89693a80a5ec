r"""Do the clusters of a fleet rank configurations alike? Estimated online from measurements.

On a fleet whose clusters only rescale one another (a *control* fleet of the benchmark
protocol: Spearman near 1 and a log-linear fit with R^2 near 1 against one cluster), a
fleet-aware search gains nothing from measuring every cluster: one cluster's
measurements plus a per-cluster calibration ``log y_k = a_k + b_k log y_0`` predict the
rest. ``rank_alike`` answers that question from the configurations measured on several
clusters, and ``spend_plan`` turns the answer into acquisition costs: the *proxy* cluster
(most measurements, then largest weight) keeps its cost, every other cluster is closed
once it holds ``calibration_points`` measurements.

Shapes: ``Y`` is ``(n, K)`` measured latency in ms of ``n`` configurations, NaN where a
cluster was not measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr


@dataclass(frozen=True)
class FleetSimilarity:
    r"""Agreement of every cluster with the proxy cluster on commonly measured configurations.

    Attributes:
        proxy: Index of the proxy cluster.
        spearman: ``(K,)`` rank correlation with the proxy (1 for the proxy; NaN with
            fewer than ``min_common`` common configurations).
        r2: ``(K,)`` R^2 of ``log y_k ~ a + b log y_proxy`` (same conventions).
        common: ``(K,)`` number of configurations measured on both.
        alike: Whether every cluster passes both thresholds.
    """

    proxy: int
    spearman: np.ndarray
    r2: np.ndarray
    common: np.ndarray
    alike: bool

    def as_dict(self) -> dict:
        r"""JSON-ready summary (for summary.json)."""
        return {
            "proxy": self.proxy,
            "alike": self.alike,
            "spearman": [None if np.isnan(v) else round(float(v), 4) for v in self.spearman],
            "r2": [None if np.isnan(v) else round(float(v), 4) for v in self.r2],
            "common": [int(v) for v in self.common],
        }


def rank_alike(
    Y: np.ndarray,
    weights: np.ndarray,
    min_spearman: float = 0.95,
    min_r2: float = 0.95,
    min_common: int = 8,
) -> FleetSimilarity:
    r"""Whether all clusters rank the measured configurations like the proxy cluster.

    Args:
        Y: ``(n, K)`` latency in ms, NaN where not measured.
        weights: ``(K,)`` cluster weights (break ties in the choice of proxy).
        min_spearman, min_r2: Thresholds of "alike".
        min_common: Fewest commonly measured configurations to judge a cluster; with fewer,
            the fleet is not judged alike.
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or (Y[np.isfinite(Y)] <= 0).any():
        raise ValueError(f"Y must be an (n, K) array of latencies > 0 or NaN, got {Y.shape}")
    K = Y.shape[1]
    counts = np.isfinite(Y).sum(0)
    proxy = int(np.lexsort((-np.asarray(weights, dtype=float), -counts))[0])
    spearman, r2, common = np.full(K, np.nan), np.full(K, np.nan), np.zeros(K, dtype=int)
    for k in range(K):
        both = np.isfinite(Y[:, k]) & np.isfinite(Y[:, proxy])
        common[k] = both.sum()
        if common[k] < min_common:
            continue
        x, y = np.log(Y[both, proxy]), np.log(Y[both, k])
        spearman[k] = spearmanr(x, y).statistic if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
        r2[k] = np.corrcoef(x, y)[0, 1] ** 2 if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
    judged = np.isfinite(spearman) & np.isfinite(r2)
    alike = bool(judged.all() and (spearman >= min_spearman).all() and (r2 >= min_r2).all())
    return FleetSimilarity(proxy, spearman, r2, common, alike)


def spend_plan(
    similarity: FleetSimilarity,
    costs: np.ndarray,
    n_measured: np.ndarray,
    calibration_points: int = 3,
) -> np.ndarray:
    r"""Per-cluster acquisition costs: unchanged unless the fleet ranks alike.

    Args:
        similarity: From ``rank_alike``.
        costs: ``(K,)`` cost of one measurement per cluster.
        n_measured: ``(K,)`` measurements per cluster so far.
        calibration_points: Measurements a non-proxy cluster keeps getting until it has
            this many, so that its calibration stays current.

    Returns:
        ``(K,)`` costs, ``inf`` for a cluster that should not be measured now.
    """
    costs = np.asarray(costs, dtype=np.float64).copy()
    if not similarity.alike:
        return costs
    closed = np.asarray(n_measured) >= calibration_points
    closed[similarity.proxy] = False
    costs[closed] = np.inf
    return costs
