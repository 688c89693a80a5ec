"""The measurements a per-cluster latency model keeps, and their checked appending.

A latency model over ``K`` clusters that stores its data in the attributes below gets
:meth:`ClusterMeasurements.append` as the one checked way to add to them:

* ``_X``: ``(N, d)`` features;
* ``_task``: ``(N,)`` int cluster id of each point, in ``0..K-1``;
* ``_y_ms``: ``(N,)`` latency in ms, ``> 0``;
* ``_prior_ms``: ``(N,)`` analytic prior latency in ms, or None (given on every call or
  on none).
"""

from __future__ import annotations

import numpy as np

from surrogates.gp_surrogate import check_features, check_latency_ms


class ClusterMeasurements:
    """Checked storage of ``(cluster, X, y_ms, prior_ms)`` measurements (a mixin)."""

    _X: np.ndarray
    _task: np.ndarray
    _y_ms: np.ndarray
    _prior_ms: np.ndarray | None

    def append(
        self, cluster: int, X: np.ndarray, y_ms: np.ndarray, prior_ms: np.ndarray | None
    ) -> None:
        """Append ``n`` points of one cluster.

        Args:
            cluster: Cluster id (the caller checks its range).
            X: ``(n, d)`` features; ``d`` must match earlier calls.
            y_ms: ``(n,)`` latency in ms, ``> 0``.
            prior_ms: ``(n,)`` prior latency in ms; give it on every call or on none.
        """
        first = not len(self._y_ms)
        X = check_features(X, d=None if first else self._X.shape[1])
        n = X.shape[0]
        y_ms = check_latency_ms(y_ms, n)
        if not first and (prior_ms is None) != (self._prior_ms is None):
            raise ValueError("prior_ms must be given on every add() call or on none")
        if prior_ms is not None:
            prior_ms = check_latency_ms(prior_ms, n, name="prior_ms")
            self._prior_ms = prior_ms if first else np.concatenate([self._prior_ms, prior_ms])
        self._X = X if first else np.concatenate([self._X, X])
        self._task = np.concatenate([self._task, np.full(n, cluster)])
        self._y_ms = np.concatenate([self._y_ms, y_ms])
