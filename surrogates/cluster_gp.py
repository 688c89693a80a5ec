r"""Shared part of the GP latency models: per-cluster data and lazy refits.

:class:`ClusterGP` stores measurements of ``K`` clusters (the conventions of
``surrogates.gp_surrogate``: ``X`` ``(n, d)`` features, latencies in ms, optional
``prior_ms`` analytic mean, log-normal predictions) and decides how to bring the GP(s) up
to date: :meth:`ClusterGP.refit` refits all hyperparameters if at least ``refit_every``
points arrived since the last full :meth:`ClusterGP.fit`, and otherwise conditions the
existing model(s) on the new points without re-optimising. ``add`` only stores data;
:meth:`ClusterGP.predict` refits lazily first. Subclasses
(:mod:`surrogates.multitask_latency`, :mod:`surrogates.independent_latency`) build, fit,
condition and query the GP(s); both satisfy :class:`~surrogates.latency_model.LatencyModel`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from surrogates.cluster_measurements import ClusterMeasurements
from surrogates.gp_surrogate import (
    DEFAULT_FIT_TIMEOUT_S,
    DEFAULT_MAXITER,
    check_features,
    log_prior,
    lognormal_moments,
)


class ClusterGP(ClusterMeasurements, ABC):
    r"""GP latency model of ``K`` device clusters with lazy refits.

    Attributes:
        n_clusters: Number of clusters ``K``; cluster ids are ``0..K-1``.
        refit_every: Full hyperparameter refit once this many points arrived since the last
            one; cheaper conditioning in between. ``1`` refits on every update.
        maxiter: Cap on L-BFGS-B iterations of a full fit.
        fit_timeout_s: Wall-time cap (s) per hyperparameter optimisation, or ``None``.
        seed: Torch seed of the multi-task GP's fits (botorch resamples hyperparameters
            when a fit fails), so that a fit is a deterministic function of the data as
            long as ``fit_timeout_s`` does not cut it short.
    """

    def __init__(
        self,
        n_clusters: int,
        refit_every: int = 1,
        maxiter: int = DEFAULT_MAXITER,
        fit_timeout_s: float | None = DEFAULT_FIT_TIMEOUT_S,
        seed: int = 0,
    ) -> None:
        if n_clusters < 1 or refit_every < 1:
            raise ValueError("need n_clusters >= 1 and refit_every >= 1")
        self.n_clusters = n_clusters
        self.refit_every = refit_every
        self.maxiter = maxiter
        self.fit_timeout_s = fit_timeout_s
        self.seed = seed
        self._X = np.empty((0, 0))  # (N, d) features of all points
        self._task = np.empty(0, dtype=np.int64)  # (N,) cluster of each point
        self._y_ms = np.empty(0)  # (N,) latency in ms
        self._prior_ms: np.ndarray | None = None  # (N,) prior in ms, if used
        self._n_fitted = 0  # points at the last full fit
        self._n_synced = 0  # points the current model(s) are conditioned on

    def n_points(self, cluster: int) -> int:
        r"""Number of stored measurements of ``cluster``."""
        self._check_cluster(cluster)
        return int((self._task == cluster).sum())

    def add(
        self,
        cluster: int,
        X: np.ndarray,
        y_ms: np.ndarray,
        prior_ms: np.ndarray | None = None,
    ) -> None:
        r"""Store measurements of one cluster (the model is updated lazily).

        Args:
            cluster: Cluster id in ``0..K-1``.
            X: ``(n, d)`` features; ``d`` must match earlier calls.
            y_ms: ``(n,)`` latency in ms, ``> 0``.
            prior_ms: ``(n,)`` prior latency in ms; give it on every call or on none.
        """
        self._check_cluster(cluster)
        self.append(cluster, X, y_ms, prior_ms)

    def fit(self) -> None:
        r"""Full refit of all hyperparameters on all stored data."""
        if not len(self._y_ms):
            raise RuntimeError(f"{type(self).__name__} has no data; call add() first")
        self._fit()
        self._n_fitted = self._n_synced = len(self._y_ms)

    def refit(self) -> None:
        r"""Bring the model(s) up to date with ``add``: full refit or cheap conditioning."""
        n = len(self._y_ms)
        if not self._fitted or n - self._n_fitted >= self.refit_every:
            self.fit()
        elif n > self._n_synced:
            self._condition(slice(self._n_synced, n))
            self._n_synced = n

    def predict(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Predictive latency in ms on every cluster (log-normal moments), after a lazy
        :meth:`refit`.

        Args:
            X: ``(n, d)`` features.
            prior_ms: ``(n,)`` prior latency in ms; required iff the data came with a prior.

        Returns:
            ``(mean_ms, std_ms)``, each ``(n, K)``.
        """
        return lognormal_moments(*self.predict_log(X, prior_ms))

    def predict_log(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Predictive log latency on every cluster (observation noise included), after a
        lazy :meth:`refit`.

        Args:
            X: ``(n, d)`` features.
            prior_ms: ``(n,)`` prior latency in ms; required iff the data came with a prior.

        Returns:
            ``(mu, sigma)``, each ``(n, K)``, in log-ms.
        """
        self.refit()
        X = check_features(X, d=self._X.shape[1])
        return self._predict_log(X, prior_ms)

    # ------------------------------------------------------------------ subclasses
    @property
    @abstractmethod
    def _fitted(self) -> bool:
        r"""Whether a full fit has happened."""

    @abstractmethod
    def _fit(self) -> None:
        r"""Build and fit the GP(s) on all stored data."""

    @abstractmethod
    def _condition(self, new: slice) -> None:
        r"""Condition the current GP(s) on the stored points ``new`` (no refit)."""

    @abstractmethod
    def _predict_log(
        self, X: np.ndarray, prior_ms: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""``(mu, sigma)``, each ``(n, K)`` in log-ms, of checked features ``X``."""

    # ------------------------------------------------------------------ helpers
    def _check_cluster(self, cluster: int) -> None:
        if not 0 <= cluster < self.n_clusters:
            raise ValueError(f"cluster must be in 0..{self.n_clusters - 1}, got {cluster}")

    def _prior(self, idx: slice | np.ndarray) -> np.ndarray | None:
        return None if self._prior_ms is None else self._prior_ms[idx]

    def _log_prior(self, prior_ms: np.ndarray | None, n: int) -> np.ndarray:
        r"""``(n,)`` log of a prediction's prior (zeros for a model without prior)."""
        return log_prior(prior_ms, n, self._prior_ms is not None)

    def _log_residual(self, idx: slice | np.ndarray) -> np.ndarray:
        r"""``(m,)`` log latency minus log prior of the selected points."""
        y = self._y_ms[idx]
        return np.log(y) - self._log_prior(self._prior(idx), len(y))
