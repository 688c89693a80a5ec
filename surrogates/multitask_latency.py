r"""Multi-task GP latency model: one GP across all device clusters.

One botorch ``MultiTaskGP`` (float64) over log latency, with the cluster index as task
feature (ICM kernel with a learned, positive task covariance, per-task constant mean and
noise). The task correlations start at ``INITIAL_TASK_CORRELATION`` rather than botorch's
random draw, which made the fit land in poor optima for some seeds. Measurements on one
cluster inform all others, which pays off because latency *rankings* are largely shared
between devices of one SKU. A cluster without data is predicted through the task
covariance alone (high variance). Refits are lazy, see :class:`~surrogates.cluster_gp.ClusterGP`;
the model satisfies :class:`~surrogates.latency_model.LatencyModel`.

Example:
    >>> model = MultiTaskLatencyModel(n_clusters=3, refit_every=20)
    >>> model.add(0, X0, y0_ms)
    >>> model.add(2, X2, y2_ms)
    >>> model.refit()
    >>> mean_ms, std_ms = model.predict(X_pop)  # each (n, 3)
"""

from __future__ import annotations

import numpy as np
import torch
from botorch.models import MultiTaskGP
from botorch.models.kernels.positive_index import PositiveIndexKernel
from botorch.models.transforms import Normalize, Standardize

from surrogates.cluster_gp import ClusterGP
from surrogates.gp_surrogate import fit_model, to_tensor

INITIAL_TASK_CORRELATION = 0.9


class MultiTaskLatencyModel(ClusterGP):
    r"""One multi-task GP over log latency of ``K`` clusters (see the module docstring);
    arguments as :class:`~surrogates.cluster_gp.ClusterGP`."""

    def __init__(self, n_clusters: int, **options) -> None:
        super().__init__(n_clusters, **options)
        self._mtgp: MultiTaskGP | None = None

    @property
    def _fitted(self) -> bool:
        return self._mtgp is not None

    def _fit(self) -> None:
        self._mtgp = fit_model(self._build, self.maxiter, self.fit_timeout_s, self.seed)

    def _build(self) -> MultiTaskGP:
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
        X_new = self._task_inputs(new)
        with torch.no_grad():  # the fantasy update needs the caches of one posterior call
            self._mtgp.posterior(X_new[:1, :-1])
        Y_new = to_tensor(self._log_residual(new))[:, None]
        self._mtgp = self._mtgp.condition_on_observations(X_new, Y_new)

    def _predict_log(
        self, X: np.ndarray, prior_ms: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        offset = self._log_prior(prior_ms, X.shape[0])[:, None]
        with torch.no_grad():
            post = self._mtgp.posterior(to_tensor(X), observation_noise=True)
            mu = post.mean.numpy() + offset
            sigma = post.variance.clamp_min(0.0).sqrt().numpy()
        return mu, sigma

    def _task_inputs(self, idx: slice | np.ndarray) -> torch.Tensor:
        r"""``(m, d + 1)`` features with the cluster index as last column."""
        return to_tensor(np.column_stack([self._X[idx], self._task[idx]]))
