r"""Robust GP latency model of a whole fleet: one exact GP over (features, cluster).

``FleetGP`` satisfies the ``LatencyModel`` protocol (``surrogates.latency_model``): ``add``
measurements of one cluster, ``refit``, ``predict`` every cluster. It models

    log y_k(x) - log prior(x) = a_k + f_k(x) + noise,

one botorch ``SingleTaskGP`` (float64) whose inputs are the ``d`` features plus the
cluster index as a last column, with a per-cluster constant mean ``a_k`` and one of three
covariance *structures* for ``f``:

- ``"independent"``: ``cov(f_k(x), f_l(x')) = delta_kl v_k r_k(x, x')``, a kernel per
  cluster with its own lengthscales. No transfer: independent GPs, fitted jointly.
- ``"calibrated"`` (shared plus calibration): ``f_k(x) = b_k s(x) + e_k(x)`` with a shared
  function ``s ~ GP(0, r_s)`` and independent residuals ``e_k ~ GP(0, v_k r_k)``, i.e.
  ``cov = b_k b_l r_s(x, x') + delta_kl v_k r_k(x, x')``. It contains ``"independent"``
  (``b = 0``). This is the monotone structure
  that the one-proxy-device result rests on: a cluster's log latency is an affine map
  ``a_k + b_k s(x)`` of a shared ranking function, plus what it does differently.
- ``"icm"``: intrinsic coregionalisation, ``cov = (B B^T + diag(v))_kl r(x, x')`` with a
  rank-``rank`` ``B``.

The task covariances start from the data, not from a constant: the empirical covariance
of the cluster-centred log latencies of configurations measured on several clusters
(eigen-decomposed into ``b`` or ``B`` and the remainder ``v``). A constant start kept the
old multi-task GP at its initial correlations (issue 13). ``r``, ``r_s``, ``r_e`` are ARD
RBF kernels with botorch's dimension-scaled lengthscale prior on inputs normalised to the
unit cube; the likelihood is Gaussian with botorch's LogNormal noise prior.

Robustness, in ``refit``:

1. *Artefacts* (``surrogates.artefacts``): per cluster, readings orders of magnitude off
   that cluster's own distribution of ``log y - log prior`` are excluded.
2. *Winsorised targets*: after a first fit, a target whose leave-one-out standardised
   residual exceeds ``winsor_z`` is pulled in to ``loo_mean +- winsor_z * loo_std`` and the
   GP is refitted once. A Gaussian likelihood on winsorised log latency stands in for a
   heavy-tailed one without approximate inference.

Predictions are of the latent (noise-free) latency: ``log y_k(x) ~ N(mu, sigma^2)``;
``predict`` returns the median ``exp(mu)`` (not the log-normal mean, which a large
``sigma`` inflates) and the log-normal standard deviation, in ms.

``loo_score`` is the model's held-out evidence: the Huber-clipped leave-one-out log
predictive density of the (artefact-free, unwinsorised) log latencies, averaged per cluster
and then over clusters, in nats per point (Rasmussen & Williams, 2006, sec. 5.4.2, with the fitted
hyperparameters). ``surrogates.transfer_switch`` compares structures by it.

Shapes: ``X`` ``(n, d)`` features; ``y_ms``, ``prior_ms`` ``(n,)`` in ms (``> 0``);
predictions ``(n, K)``; samples ``(n_samples, n, K)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.kernels import AdditiveKernel, IndexKernel, Kernel, ScaleKernel
from gpytorch.means import Mean

from surrogates.artefacts import artefact_mask_by_group
from surrogates.cluster_measurements import ClusterMeasurements
from surrogates.gp_surrogate import (
    DEFAULT_MAXITER,
    check_features,
    fit_model,
    log_prior,
    loo_predictive,
    single_threaded,
    to_tensor,
)

STRUCTURES = ("independent", "calibrated", "icm")
FROZEN_RAW_VAR = -20.0  # softplus(-20) ~ 2e-9: a task variance that is switched off
PREDICT_CHUNK = 2048  # points per posterior call
MIN_SHARE = 0.05  # smallest initial share of a cluster's variance left to its own part


class ClusterMean(Mean):
    r"""Constant mean per cluster: ``m(x) = a[x[..., -1]]`` (cluster index in the last column)."""

    def __init__(self, n_clusters: int) -> None:
        super().__init__()
        self.register_parameter("constant", torch.nn.Parameter(torch.zeros(n_clusters)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.constant[x[..., -1].round().long()]


def _index_kernel(
    K: int, d: int, factor: np.ndarray | None, var: np.ndarray | None, train_factor: bool = True
) -> Kernel:
    r"""IndexKernel on column ``d`` with covariance ``factor factor^T + diag(var)``.

    ``factor=None`` freezes the low-rank part at zero, ``train_factor=False`` at ``factor``;
    ``var=None`` freezes the diagonal at (almost) zero.
    """
    rank = 1 if factor is None else factor.shape[1]
    kernel = IndexKernel(num_tasks=K, rank=rank, active_dims=[d])
    cf = np.zeros((K, 1)) if factor is None else factor
    kernel.covar_factor.data = to_tensor(cf).contiguous()
    kernel.covar_factor.requires_grad_(factor is not None and train_factor)
    if var is None:
        kernel.raw_var.data.fill_(FROZEN_RAW_VAR)
        kernel.raw_var.requires_grad_(False)
    else:
        kernel.var = to_tensor(var)
    return kernel


def _own_kernels(rbf: Callable[[], Kernel], K: int, d: int, var: np.ndarray) -> Kernel:
    r"""``sum_k [cluster = k] v_k r_k(x, x')``: a kernel per cluster with its own lengthscales
    and variance (``var`` ``(K,)`` initial ``v_k``), zero between clusters."""
    kernels = []
    for k in range(K):
        scaled = ScaleKernel(rbf())
        scaled.outputscale = float(var[k])
        kernels.append(scaled * _index_kernel(K, d, np.eye(K)[:, [k]], None, train_factor=False))
    return AdditiveKernel(*kernels)


def task_covariance(y: np.ndarray, task: np.ndarray, key: np.ndarray, K: int) -> np.ndarray:
    r"""Empirical ``(K, K)`` covariance of cluster-centred targets, made positive definite.

    Pairs of clusters with fewer than 3 common configurations get correlation 0.5 (no
    evidence either way); clusters with fewer than 2 points get the pooled variance.

    Args:
        y: ``(N,)`` targets (standardised log latency).
        task: ``(N,)`` cluster of each target.
        key: ``(N,)`` configuration id (equal features, equal id).
        K: Number of clusters.
    """
    pooled = float(np.var(y)) if len(y) > 1 else 1.0
    table = np.full((int(key.max()) + 1, K), np.nan)
    var = np.full(K, pooled)
    for k in range(K):
        idx = task == k
        if idx.sum() >= 2:
            centred = y[idx] - y[idx].mean()
            var[k] = max(float(np.mean(centred**2)), 1e-3 * pooled)
            table[key[idx], k] = centred
    cov = np.diag(var)
    for k in range(K):
        for m in range(k + 1, K):
            both = ~np.isnan(table[:, k]) & ~np.isnan(table[:, m])
            rho = 0.5
            if both.sum() >= 3:
                a, b = table[both, k], table[both, m]
                denom = np.sqrt((a**2).sum() * (b**2).sum())
                rho = float(np.clip((a * b).sum() / denom, -0.99, 0.99)) if denom > 0 else 0.5
            cov[k, m] = cov[m, k] = rho * np.sqrt(var[k] * var[m])
    w, V = np.linalg.eigh(cov)
    return (V * np.maximum(w, 1e-3 * w.max())) @ V.T


def split_covariance(cov: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    r"""``cov ~ B B^T + diag(v)``: ``B`` ``(K, rank)`` from the top eigenpairs, ``v`` ``(K,)``.

    The sign of each column of ``B`` is chosen so that its entries sum to ``>= 0``, and
    ``v`` keeps at least ``MIN_SHARE`` of each diagonal entry.
    """
    w, V = np.linalg.eigh(cov)
    top = np.argsort(w)[::-1][:rank]
    B = V[:, top] * np.sqrt(np.maximum(w[top], 0.0))
    B *= np.where(B.sum(0) < 0, -1.0, 1.0)
    diag = np.diag(cov)
    B *= np.sqrt(np.minimum(1.0, (1 - MIN_SHARE) * diag / np.maximum((B**2).sum(1), 1e-12)))[
        :, None
    ]
    return B, np.maximum(diag - (B**2).sum(1), MIN_SHARE * diag)


class FleetGP(ClusterMeasurements):
    r"""Robust exact-GP latency model of ``K`` clusters (see the module docstring).

    Attributes:
        n_clusters: Number of clusters ``K``; ids ``0..K-1``.
        structure: ``"independent"``, ``"calibrated"`` or ``"icm"``.
        rank: Rank of ``B`` for ``"icm"``.
        winsor_z: Leave-one-out z beyond which a target is winsorised; ``inf`` disables.
        artefact_z, artefact_factor: Thresholds of ``surrogates.artefacts.artefact_mask``.
        seed: Torch seed of fits and samples; the global torch RNG is left untouched.
        fit_timeout_s: Wall-time cap per hyperparameter fit; ``None`` (default) keeps a
            fit a function of the data alone (a cap cuts it short by machine load).

    Fits, predictions and samples run on one torch thread, so the same data and seed
    give the same numbers whatever the caller's thread setting.
    """

    def __init__(
        self,
        n_clusters: int,
        structure: str = "calibrated",
        rank: int = 2,
        winsor_z: float = 4.0,
        artefact_z: float = 5.0,
        artefact_factor: float = 10.0,
        maxiter: int = DEFAULT_MAXITER,
        fit_timeout_s: float | None = None,
        seed: int = 0,
    ) -> None:
        if n_clusters < 1:
            raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
        if structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
        if rank < 1 or winsor_z <= 0:
            raise ValueError(f"need rank >= 1 and winsor_z > 0, got {rank}, {winsor_z}")
        self.n_clusters = n_clusters
        self.structure = structure
        self.rank = rank
        self.winsor_z = winsor_z
        self.artefact_z = artefact_z
        self.artefact_factor = artefact_factor
        self.maxiter = maxiter
        self.fit_timeout_s = fit_timeout_s
        self.seed = seed
        self._X = np.empty((0, 0))
        self._task = np.empty(0, dtype=np.int64)
        self._y_ms = np.empty(0)
        self._prior_ms: np.ndarray | None = None
        self._model: SingleTaskGP | None = None
        self._n_fitted = -1
        self.artefacts = np.empty(0, dtype=bool)
        self.n_winsorised = 0
        self._loo_score = float("nan")

    # ------------------------------------------------------------------ data
    def add(
        self, cluster: int, X: np.ndarray, y_ms: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> None:
        r"""Store measurements of one cluster; the model changes at the next ``refit``.

        Args:
            cluster: Cluster id in ``0..K-1``.
            X: ``(n, d)`` features; ``d`` must match earlier calls.
            y_ms: ``(n,)`` latency in ms, ``> 0``.
            prior_ms: ``(n,)`` analytic prior latency in ms; on every call or on none.
        """
        if not 0 <= cluster < self.n_clusters:
            raise ValueError(f"cluster must be in 0..{self.n_clusters - 1}, got {cluster}")
        self.append(cluster, X, y_ms, prior_ms)

    @property
    def n_points(self) -> int:
        r"""Number of stored measurements, artefacts included."""
        return len(self._y_ms)

    def _targets(self) -> np.ndarray:
        r"""``(N,)`` log latency minus log prior of every stored point."""
        prior = log_prior(self._prior_ms, len(self._y_ms), self._prior_ms is not None)
        return np.log(self._y_ms) - prior

    # ------------------------------------------------------------------ fit
    def refit(self) -> None:
        r"""Flag artefacts, fit all hyperparameters, winsorise outliers and refit once."""
        if not len(self._y_ms):
            raise RuntimeError("FleetGP has no data; call add() first")
        target = self._targets()
        self.artefacts = artefact_mask_by_group(
            target, self._task, z=self.artefact_z, min_factor=self.artefact_factor
        )
        keep = ~self.artefacts
        X, task, y = self._X[keep], self._task[keep], target[keep]
        model = self._fit(X, task, y)
        loo_mu, loo_sd = loo_predictive(model)
        z = (y - loo_mu) / loo_sd
        clipped = np.abs(z) > self.winsor_z
        self.n_winsorised = int(clipped.sum())
        if self.n_winsorised:
            y_w = np.where(clipped, loo_mu + np.sign(z) * self.winsor_z * loo_sd, y)
            model = self._fit(X, task, y_w)
            loo_mu, loo_sd = loo_predictive(model)
        self._model = model
        self._n_fitted = len(self._y_ms)
        density = huber_log_density(y, loo_mu, loo_sd, self.winsor_z)
        self._loo_score = float(np.mean([density[task == k].mean() for k in np.unique(task)]))

    def loo_score(self) -> float:
        r"""Huber-clipped leave-one-out log density of the last fit, in nats per point:
        the mean over clusters with data of each cluster's mean, so that a sparsely
        measured cluster counts as much as a well measured one."""
        self._ensure_fitted()
        return float(self._loo_score)

    def _fit(self, X: np.ndarray, task: np.ndarray, y: np.ndarray) -> SingleTaskGP:
        d, K = X.shape[1], self.n_clusters
        _, key = np.unique(X, axis=0, return_inverse=True)
        yz = (y - y.mean()) / (y.std() if y.std() > 0 else 1.0)
        cov = task_covariance(yz, task, key.ravel(), K)
        means = np.array([yz[task == k].mean() if (task == k).any() else 0.0 for k in range(K)])

        def build() -> SingleTaskGP:
            model = SingleTaskGP(
                to_tensor(np.column_stack([X, task])),
                to_tensor(y)[:, None],
                covar_module=self._kernel(d, cov),
                mean_module=ClusterMean(K),
                input_transform=Normalize(d=d + 1, indices=list(range(d))),
                outcome_transform=Standardize(m=1),
            )
            model.mean_module.constant.data = to_tensor(means)
            return model

        return fit_model(build, self.maxiter, self.fit_timeout_s, self.seed)

    def _kernel(self, d: int, cov: np.ndarray) -> Kernel:
        K = self.n_clusters

        def rbf() -> Kernel:
            return get_covar_module_with_dim_scaled_prior(ard_num_dims=d, active_dims=range(d))

        if self.structure == "icm":
            B, v = split_covariance(cov, min(self.rank, K))
            return rbf() * _index_kernel(K, d, B, v)
        if self.structure == "independent":
            return _own_kernels(rbf, K, d, np.diag(cov))
        b, v = split_covariance(cov, 1)
        return rbf() * _index_kernel(K, d, b, None) + _own_kernels(rbf, K, d, v)

    @property
    def is_stale(self) -> bool:
        r"""Whether data were added since the last ``refit`` (or it never ran)."""
        return self._model is None or self._n_fitted != len(self._y_ms)

    def _ensure_fitted(self) -> SingleTaskGP:
        if self.is_stale:
            self.refit()
        return self._model

    # ------------------------------------------------------------------ predict
    def _task_grid(self, X: np.ndarray) -> torch.Tensor:
        r"""``(n, K, d + 1)`` features of every point on every cluster."""
        n, K = X.shape[0], self.n_clusters
        grid = np.concatenate(
            [np.repeat(X[:, None, :], K, axis=1), np.broadcast_to(np.arange(K), (n, K))[..., None]],
            axis=-1,
        )
        return to_tensor(grid)

    def predict_log(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None, observation_noise: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Predictive log latency on every cluster.

        Refits first if data were added since the last ``refit``.

        Args:
            X: ``(n, d)`` features.
            prior_ms: ``(n,)`` prior in ms; required iff the data came with a prior.
            observation_noise: Include the fitted measurement noise.

        Returns:
            ``(mu, sigma)``, each ``(n, K)``, in log-ms.
        """
        model = self._ensure_fitted()
        X = check_features(X, d=self._X.shape[1])
        offset = log_prior(prior_ms, X.shape[0], self._prior_ms is not None)[:, None]
        mu, sigma = np.empty((X.shape[0], self.n_clusters)), np.empty((X.shape[0], self.n_clusters))
        with torch.no_grad(), single_threaded():
            for start in range(0, X.shape[0], PREDICT_CHUNK):
                rows = slice(start, start + PREDICT_CHUNK)
                post = model.posterior(  # a batch of points, each K tasks: no n x n matrix
                    self._task_grid(X[rows]), observation_noise=observation_noise
                )
                mu[rows] = post.mean.squeeze(-1).numpy()
                sigma[rows] = post.variance.clamp_min(0.0).sqrt().squeeze(-1).numpy()
        mu += offset
        return mu, sigma

    def predict(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Median latency ``exp(mu)`` and log-normal std, in ms, each ``(n, K)``
        (latent latency, measurement noise excluded)."""
        mu, sigma = self.predict_log(X, prior_ms)
        median = np.exp(mu)
        return median, np.exp(mu + 0.5 * sigma**2) * np.sqrt(np.expm1(sigma**2))

    def posterior_samples(
        self, X: np.ndarray, n_samples: int, prior_ms: np.ndarray | None = None, seed: int = 0
    ) -> np.ndarray:
        r"""Joint posterior samples of the latent latency of each point on all clusters.

        Samples are joint over the ``K`` clusters of one point (the cross-cluster
        correlation of the fitted structure is kept) and independent between points.

        Args:
            X: ``(n, d)`` features.
            n_samples: Number of samples ``S >= 1``.
            prior_ms: ``(n,)`` prior in ms; required iff the data came with a prior.
            seed: Torch seed of the draw.

        Returns:
            ``(S, n, K)`` latency in ms.
        """
        model = self._ensure_fitted()
        X = check_features(X, d=self._X.shape[1])
        offset = log_prior(prior_ms, X.shape[0], self._prior_ms is not None)[None, :, None]
        draws = np.empty((n_samples, X.shape[0], self.n_clusters))
        with torch.no_grad(), single_threaded(), torch.random.fork_rng():
            torch.manual_seed(seed)
            for start in range(0, X.shape[0], PREDICT_CHUNK):
                rows = slice(start, start + PREDICT_CHUNK)
                post = model.posterior(self._task_grid(X[rows]))  # batch of K-task points
                draws[:, rows] = post.rsample(torch.Size([n_samples])).squeeze(-1).numpy()
        return np.exp(draws + offset)

    def task_correlation(self) -> np.ndarray:
        r"""``(K, K)`` fitted correlation of the clusters' latent log latency at equal ``x``."""
        model = self._ensure_fitted()
        K = self.n_clusters
        x = to_tensor(np.column_stack([np.repeat(self._X[:1], K, 0), np.arange(K)]))
        with torch.no_grad():  # equal features: the data kernels are 1, the task part remains
            prior_cov = model.covar_module(x).to_dense().numpy()
        sd = np.sqrt(np.diag(prior_cov))
        return prior_cov / np.outer(sd, sd)


def huber_log_density(y: np.ndarray, mu: np.ndarray, sd: np.ndarray, c: float) -> np.ndarray:
    r"""``(n,)`` Gaussian log density of ``y`` under ``N(mu, sd^2)`` with the quadratic
    penalty turned linear beyond ``|z| = c`` (a robust scoring rule), in nats."""
    z = np.abs(y - mu) / sd
    penalty = np.where(z <= c, 0.5 * z**2, c * z - 0.5 * c**2)
    return -np.log(sd) - 0.5 * math.log(2 * math.pi) - penalty
