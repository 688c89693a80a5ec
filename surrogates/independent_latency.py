r"""Independent GP latency model: one single-output GP per device cluster.

Each cluster with data gets its own :class:`~surrogates.gp_surrogate.GPSurrogate` over log
latency. A cluster without data is predicted by a GP on the pooled data of all clusters
whose log-space standard deviation is inflated in quadrature by ``fallback_log_std``
(default 0.5, i.e. a factor of about 1.65 per standard deviation) to reflect the unknown
device offset. Refits are lazy, see :class:`~surrogates.cluster_gp.ClusterGP`; the model
satisfies :class:`~surrogates.latency_model.LatencyModel`.

Example:
    >>> model = IndependentLatencyModel(n_clusters=3)
    >>> model.add(0, X0, y0_ms)
    >>> model.refit()
    >>> mean_ms, std_ms = model.predict(X_pop)  # each (n, 3); clusters 1, 2 pooled
"""

from __future__ import annotations

import numpy as np

from surrogates.cluster_gp import ClusterGP
from surrogates.gp_surrogate import GPSurrogate


class IndependentLatencyModel(ClusterGP):
    r"""One GP per cluster (see the module docstring).

    Args:
        n_clusters, **options: As :class:`~surrogates.cluster_gp.ClusterGP`.
        fallback_log_std: Extra log-space std for clusters without data, ``>= 0``.
    """

    def __init__(self, n_clusters: int, fallback_log_std: float = 0.5, **options) -> None:
        if fallback_log_std < 0:
            raise ValueError("need fallback_log_std >= 0")
        super().__init__(n_clusters, **options)
        self.fallback_log_std = fallback_log_std
        self._gps: dict[int, GPSurrogate] = {}
        self._pooled: GPSurrogate | None = None

    @property
    def _fitted(self) -> bool:
        return bool(self._gps)

    def _fit(self) -> None:
        with_data = [int(k) for k in np.unique(self._task)]
        self._gps = {k: self._fit_gp(self._task == k) for k in with_data}
        all_have_data = len(self._gps) == self.n_clusters
        self._pooled = None if all_have_data else self._fit_gp(slice(None))

    def _fit_gp(self, idx: slice | np.ndarray) -> GPSurrogate:
        gp = GPSurrogate(maxiter=self.maxiter, fit_timeout_s=self.fit_timeout_s)
        return gp.fit(self._X[idx], self._y_ms[idx], self._prior(idx))

    def _condition(self, new: slice) -> None:
        for k in map(int, np.unique(self._task[new])):
            idx = np.flatnonzero(self._task == k)
            new_idx = idx[idx >= new.start]
            if k in self._gps:
                self._gps[k].condition(self._X[new_idx], self._y_ms[new_idx], self._prior(new_idx))
            else:  # first data of this cluster: its own (tiny) GP needs hyperparameters
                self._gps[k] = self._fit_gp(idx)
        if self._pooled is not None:
            self._pooled.condition(self._X[new], self._y_ms[new], self._prior(new))

    def _predict_log(
        self, X: np.ndarray, prior_ms: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        mu = np.empty((X.shape[0], self.n_clusters))
        sigma = np.empty_like(mu)
        for k in range(self.n_clusters):
            gp = self._gps.get(k)
            mu[:, k], sigma[:, k] = (gp or self._pooled).predict_log(X, prior_ms)
            if gp is None:
                sigma[:, k] = np.hypot(sigma[:, k], self.fallback_log_std)
        return mu, sigma
