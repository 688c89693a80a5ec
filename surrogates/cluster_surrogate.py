r"""Latency surrogate over all device clusters of a fleet.

``ClusterSurrogate`` holds measurements for ``K`` clusters and predicts every cluster's
latency for a batch of candidate networks. It uses the conventions of
``surrogates.gp_surrogate`` (``X``: ``(n, d)`` features, latencies in ms, optional ``prior_ms``
analytic mean, log-normal predictions) and has two modes:

- ``transfer=True``: one botorch ``MultiTaskGP`` (float64) over log latency, with the cluster
  index as task feature (ICM kernel with a learned, positive task covariance, per-task
  constant mean and noise). The task correlations start at ``INITIAL_TASK_CORRELATION``
  rather than botorch's random draw, which made the fit land in poor optima for some seeds.
  Measurements on one cluster inform all others, which pays off because latency *rankings*
  are largely shared between devices of one SKU. A cluster without data is predicted
  through the task covariance alone (high variance).
- ``transfer=False``: one independent ``GPSurrogate`` per cluster. A cluster without data is
  predicted by a GP on the pooled data of all clusters whose log-space standard deviation is
  inflated in quadrature by ``fallback_log_std`` (default 0.5, i.e. a factor of about 1.65
  per standard deviation) to reflect the unknown device offset.

Updates are lazy: ``add`` only stores data. The next ``predict`` (or ``update``) refits all
hyperparameters if at least ``refit_every`` points arrived since the last full ``fit``, and
otherwise conditions the existing model(s) on the new points without re-optimising.

Example:
    >>> cs = ClusterSurrogate(n_clusters=3, transfer=True, refit_every=20)
    >>> cs.add(0, X0, y0_ms)
    >>> cs.add(2, X2, y2_ms)
    >>> mean_ms, std_ms = cs.predict(X_pop)  # each (n, 3)
"""

from __future__ import annotations

import numpy as np
import torch
from botorch.models import MultiTaskGP
from botorch.models.kernels.positive_index import PositiveIndexKernel
from botorch.models.transforms import Normalize, Standardize

from surrogates.gp_surrogate import (
    DEFAULT_FIT_TIMEOUT_S,
    DEFAULT_MAXITER,
    GPSurrogate,
    check_features,
    check_latency_ms,
    fit_model,
    log_prior,
    lognormal_moments,
    to_tensor,
)

INITIAL_TASK_CORRELATION = 0.9


class ClusterSurrogate:
    r"""GP latency surrogate for ``K`` device clusters, with or without transfer.

    Attributes:
        n_clusters: Number of clusters ``K``; cluster ids are ``0..K-1``.
        transfer: Multi-task GP across clusters (``True``) or independent GPs (``False``).
        refit_every: Full hyperparameter refit once this many points arrived since the last
            one; cheaper conditioning in between. ``1`` refits on every update.
        fallback_log_std: Extra log-space std for clusters without data (``transfer=False``).
        seed: Torch seed of multi-task GP fits (botorch resamples hyperparameters when a
            fit fails), so that a fit is a deterministic function of the data as long as
            ``fit_timeout_s`` does not cut it short.
    """

    def __init__(
        self,
        n_clusters: int,
        transfer: bool = True,
        refit_every: int = 1,
        fallback_log_std: float = 0.5,
        maxiter: int = DEFAULT_MAXITER,
        fit_timeout_s: float | None = DEFAULT_FIT_TIMEOUT_S,
        seed: int = 0,
    ) -> None:
        r"""
        Args:
            n_clusters: Number of clusters ``K >= 1``.
            transfer: Use a multi-task GP over clusters.
            refit_every: Points between full refits, ``>= 1``.
            fallback_log_std: Extra log-space std for data-less clusters, ``>= 0``.
            maxiter: Cap on L-BFGS-B iterations of a full fit.
            fit_timeout_s: Wall-time cap (s) per hyperparameter optimisation.
            seed: Torch seed of multi-task GP fits; the global torch RNG is left untouched.
        """
        if n_clusters < 1 or refit_every < 1 or fallback_log_std < 0:
            raise ValueError("need n_clusters >= 1, refit_every >= 1 and fallback_log_std >= 0")
        self.n_clusters = n_clusters
        self.transfer = transfer
        self.refit_every = refit_every
        self.fallback_log_std = fallback_log_std
        self.maxiter = maxiter
        self.fit_timeout_s = fit_timeout_s
        self.seed = seed
        self._X = np.empty((0, 0))  # (N, d) features of all points
        self._task = np.empty(0, dtype=np.int64)  # (N,) cluster of each point
        self._y_ms = np.empty(0)  # (N,) latency in ms
        self._prior_ms: np.ndarray | None = None  # (N,) prior in ms, if used
        self._n_fitted = 0  # points at the last full fit
        self._n_synced = 0  # points the current model(s) are conditioned on
        self._mtgp: MultiTaskGP | None = None
        self._gps: dict[int, GPSurrogate] = {}
        self._pooled: GPSurrogate | None = None

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

    def fit(self) -> None:
        r"""Full refit of all hyperparameters on all stored data."""
        if not len(self._y_ms):
            raise RuntimeError("ClusterSurrogate has no data; call add() first")
        if self.transfer:
            self._mtgp = self._fit_mtgp()
        else:
            self._gps = {k: self._fit_gp(self._task == k) for k in self._clusters_with_data()}
            all_have_data = len(self._gps) == self.n_clusters
            self._pooled = None if all_have_data else self._fit_gp(slice(None))
        self._n_fitted = self._n_synced = len(self._y_ms)

    def update(self) -> None:
        r"""Bring the model(s) up to date with ``add``: full refit or cheap conditioning."""
        n = len(self._y_ms)
        fitted = self._mtgp is not None or self._gps
        if not fitted or n - self._n_fitted >= self.refit_every:
            self.fit()
        elif n > self._n_synced:
            self._condition(slice(self._n_synced, n))
            self._n_synced = n

    def predict_log(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Predictive log latency on every cluster (observation noise included).

        Args:
            X: ``(n, d)`` features.
            prior_ms: ``(n,)`` prior latency in ms; required iff the data came with a prior.

        Returns:
            ``(mu, sigma)``, each ``(n, K)``, in log-ms.
        """
        self.update()
        X = check_features(X, d=self._X.shape[1])
        offset = log_prior(prior_ms, X.shape[0], self._prior_ms is not None)[:, None]
        if self.transfer:
            with torch.no_grad():
                post = self._mtgp.posterior(to_tensor(X), observation_noise=True)
                mu = post.mean.numpy() + offset
                sigma = post.variance.clamp_min(0.0).sqrt().numpy()
            return mu, sigma
        mu = np.empty((X.shape[0], self.n_clusters))
        sigma = np.empty_like(mu)
        for k in range(self.n_clusters):
            gp = self._gps.get(k)
            mu[:, k], sigma[:, k] = (gp or self._pooled).predict_log(X, prior_ms)
            if gp is None:
                sigma[:, k] = np.hypot(sigma[:, k], self.fallback_log_std)
        return mu, sigma

    def predict(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Predictive latency in ms on every cluster (log-normal moments).

        Args:
            X: ``(n, d)`` features.
            prior_ms: ``(n,)`` prior latency in ms; required iff the data came with a prior.

        Returns:
            ``(mean_ms, std_ms)``, each ``(n, K)``.
        """
        return lognormal_moments(*self.predict_log(X, prior_ms))

    def _check_cluster(self, cluster: int) -> None:
        if not 0 <= cluster < self.n_clusters:
            raise ValueError(f"cluster must be in 0..{self.n_clusters - 1}, got {cluster}")

    def _clusters_with_data(self) -> list[int]:
        return [int(k) for k in np.unique(self._task)]

    def _prior(self, idx: slice | np.ndarray) -> np.ndarray | None:
        return None if self._prior_ms is None else self._prior_ms[idx]

    def _log_residual(self, idx: slice | np.ndarray) -> np.ndarray:
        r"""``(m,)`` log latency minus log prior of the selected points."""
        y = self._y_ms[idx]
        return np.log(y) - log_prior(self._prior(idx), len(y), self._prior_ms is not None)

    def _task_inputs(self, idx: slice | np.ndarray) -> torch.Tensor:
        r"""``(m, d + 1)`` features with the cluster index as last column."""
        return to_tensor(np.column_stack([self._X[idx], self._task[idx]]))

    def _fit_gp(self, idx: slice | np.ndarray) -> GPSurrogate:
        gp = GPSurrogate(maxiter=self.maxiter, fit_timeout_s=self.fit_timeout_s)
        return gp.fit(self._X[idx], self._y_ms[idx], self._prior(idx))

    def _fit_mtgp(self) -> MultiTaskGP:
        return fit_model(self._build_mtgp, self.maxiter, self.fit_timeout_s, self.seed)

    def _build_mtgp(self) -> MultiTaskGP:
        d = self._X.shape[1]
        model = MultiTaskGP(
            self._task_inputs(slice(None)),
            to_tensor(self._log_residual(slice(None)))[:, None],
            task_feature=-1,
            all_tasks=list(range(self.n_clusters)),
            input_transform=Normalize(d=d + 1, indices=list(range(d))),
            outcome_transform=Standardize(m=1),
        )
        # covariance = cf @ cf.T + diag(var): constant cf and var give equal correlations
        rho = INITIAL_TASK_CORRELATION
        task_kernel = next(m for m in model.modules() if isinstance(m, PositiveIndexKernel))
        rank = task_kernel.covar_factor.shape[-1]
        task_kernel.covar_factor = torch.full_like(task_kernel.covar_factor, (rho / rank) ** 0.5)
        task_kernel.var = torch.full_like(task_kernel.var, 1.0 - rho)
        return model

    def _condition(self, new: slice) -> None:
        r"""Condition the current model(s) on the stored points ``new`` (no refit)."""
        if self.transfer:
            X_new = self._task_inputs(new)
            with torch.no_grad():  # the fantasy update needs the caches of one posterior call
                self._mtgp.posterior(X_new[:1, :-1])
            Y_new = to_tensor(self._log_residual(new))[:, None]
            self._mtgp = self._mtgp.condition_on_observations(X_new, Y_new)
            return
        for k in map(int, np.unique(self._task[new])):
            idx = np.flatnonzero(self._task == k)
            new_idx = idx[idx >= new.start]
            if k in self._gps:
                self._gps[k].condition(self._X[new_idx], self._y_ms[new_idx], self._prior(new_idx))
            else:  # first data of this cluster: its own (tiny) GP needs hyperparameters
                self._gps[k] = self._fit_gp(idx)
        if self._pooled is not None:
            self._pooled.condition(self._X[new], self._y_ms[new], self._prior(new))
