r"""Single-output Gaussian-process latency surrogate.

A botorch ``SingleTaskGP`` (float64) over *log* latency; the log-latency targets are
standardised with a ``Standardize(m=1)`` outcome transform, as in
``botorch/models/gp_regression.py``. Two kernels:

- ``"rbf"`` (default): botorch's ARD RBF kernel with dimension-scaled lengthscale prior on
  inputs scaled to the unit cube by a ``Normalize`` input transform. For generic features
  (architecture encodings, layer widths, bit widths).
- ``"linear"``: ``ScaleKernel(LinearKernel())`` on the raw inputs, i.e. Bayesian linear
  (ridge) regression of log latency with a shared prior weight variance. For features that
  are themselves log latencies of other devices, where the map to the target device is close
  to log-linear. The caller must centre the inputs and put them on comparable scales (e.g.
  standardise over the candidate pool): a unit-cube transform fitted on few points would
  move the origin of the linear kernel.

Conventions used throughout ``surrogates``:

- ``X``: ``(n, d)`` float features of ``n`` points.
- ``y_ms``: ``(n,)`` measured latency in milliseconds, finite and ``> 0``.
- ``prior_ms``: optional ``(n,)`` device-independent analytic latency estimate in ms,
  finite and ``> 0``. When given at ``fit``, the GP models the residual
  ``log(y_ms) - log(prior_ms)`` and every later ``condition``/``predict`` call must pass
  ``prior_ms`` for its points too (the prior is the GP's mean function in log space).
- Predictions are log-normal: ``log(latency) ~ N(mu, sigma^2)``. ``predict_log`` returns
  ``(mu, sigma)`` in log-ms; ``predict`` returns the log-normal moments
  ``mean = exp(mu + sigma^2 / 2)`` and ``std = mean * sqrt(exp(sigma^2) - 1)`` in ms.
  The predictive variance includes the fitted observation noise, i.e. it describes a new
  *measurement*, not the noise-free latency.

Example:
    >>> gp = GPSurrogate().fit(X, y_ms)
    >>> gp.condition(X_new, y_new_ms)  # cheap, hyperparameters kept
    >>> mean_ms, std_ms = gp.predict(X_test)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from botorch.exceptions.warnings import InputDataWarning, OptimizationWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms import Normalize, Standardize
from gpytorch.kernels import LinearKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood

DTYPE = torch.float64
DEFAULT_MAXITER = 300
DEFAULT_FIT_TIMEOUT_S = 4.0
KERNELS = ("rbf", "linear")


def check_features(X: np.ndarray, d: int | None = None, name: str = "X") -> np.ndarray:
    r"""Validate features and return them as a float64 ``(n, d)`` array.

    Args:
        X: ``(n, d)`` features.
        d: Expected number of columns, or ``None`` to accept any ``d >= 1``.
        name: Argument name used in error messages.

    Raises:
        ValueError: Not 2-D, no rows, wrong ``d``, or non-finite entries.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (n, d) array, got shape {X.shape}")
    if d is not None and X.shape[1] != d:
        raise ValueError(f"{name} has {X.shape[1]} features, expected {d}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or inf")
    return X


def check_latency_ms(y_ms: np.ndarray, n: int, name: str = "y_ms") -> np.ndarray:
    r"""Validate latencies and return them as a float64 ``(n,)`` array.

    Args:
        y_ms: ``(n,)`` latencies in ms.
        n: Expected length (number of rows of the matching ``X``).
        name: Argument name used in error messages.

    Raises:
        ValueError: Wrong shape, NaN/inf, or a value ``<= 0``.
    """
    y_ms = np.asarray(y_ms, dtype=np.float64)
    if y_ms.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match X, got {y_ms.shape}")
    if not np.isfinite(y_ms).all():
        raise ValueError(f"{name} contains NaN or inf")
    if (y_ms <= 0).any():
        raise ValueError(f"{name} must be > 0 ms, got min {y_ms.min():g}")
    return y_ms


def log_prior(prior_ms: np.ndarray | None, n: int, uses_prior: bool) -> np.ndarray:
    r"""Return ``log(prior_ms)`` as ``(n,)``, or zeros when the model has no prior.

    Args:
        prior_ms: ``(n,)`` prior latency in ms, or ``None``.
        n: Number of points.
        uses_prior: Whether the model was fitted with a prior mean.

    Raises:
        ValueError: ``prior_ms`` given to a model without prior, or missing for one with a
            prior, or invalid values (see ``check_latency_ms``).
    """
    if prior_ms is None:
        if uses_prior:
            raise ValueError("prior_ms is required: the model was fitted with a prior mean")
        return np.zeros(n)
    if not uses_prior:
        raise ValueError("prior_ms given, but the model was fitted without a prior mean")
    return np.log(check_latency_ms(prior_ms, n, name="prior_ms"))


def lognormal_moments(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean and standard deviation (ms) of ``exp(N(mu, sigma^2))``; any matching shapes."""
    mean = np.exp(mu + 0.5 * sigma**2)
    return mean, mean * np.sqrt(np.expm1(sigma**2))


def to_tensor(a: np.ndarray) -> torch.Tensor:
    r"""Numpy array to a float64 torch tensor."""
    return torch.as_tensor(a, dtype=DTYPE)


@contextmanager
def single_threaded() -> Iterator[None]:
    r"""Run torch on one intra-op thread inside the block, restoring the setting after.

    The matrices of these GPs are small (``n <= ~1000``): a second thread saves little, and
    when the cores are shared with other processes the threads' synchronisation made a
    30-point fit 20x slower (0.4 s vs 8.9 s) on a 2-core machine.
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n_threads)


def fit_model(
    build: Callable[[], Model], maxiter: int, timeout_s: float | None, seed: int = 0
) -> Model:
    r"""Build an exact GP and fit its hyperparameters by maximising the marginal likelihood.

    L-BFGS-B stops after ``maxiter`` iterations or ``timeout_s`` seconds, keeping the best
    hyperparameters so far (multi-task GPs can otherwise creep along a flat likelihood for
    thousands of steps). Runs ``single_threaded``. Botorch's warnings about hitting these
    caps and about data scaling (inputs outside the unit cube are intended for the linear
    kernel; a few equal latencies give a zero outcome std) are silenced; fitting errors
    propagate. Building and fitting run under a local torch seed (botorch draws random
    initial values and restarts), so equal data give equal fits and the caller's global
    torch generator is left untouched.

    Args:
        build: Constructs the model from its training data.
        maxiter: Cap on L-BFGS-B iterations.
        timeout_s: Wall-time cap in seconds, or ``None``.
        seed: Torch seed of the build and the fit.

    Returns:
        The fitted model, in eval mode.
    """
    options = {"options": {"maxiter": maxiter}, "timeout_sec": timeout_s}
    with warnings.catch_warnings(), single_threaded(), torch.random.fork_rng():
        torch.manual_seed(seed)
        warnings.simplefilter("ignore", OptimizationWarning)
        warnings.simplefilter("ignore", InputDataWarning)
        model = build()
        fit_gpytorch_mll(
            ExactMarginalLogLikelihood(model.likelihood, model), optimizer_kwargs=options
        )
    return model.eval()


def loo_predictive(model: SingleTaskGP) -> tuple[np.ndarray, np.ndarray]:
    r"""Leave-one-out predictive mean and std of the training targets of an exact GP.

    Closed form with the fitted hyperparameters (Rasmussen & Williams, 2006, eq. 5.12):
    with ``Ky = K + noise``, ``r = y - m``, ``mu_i = y_i - [Ky^-1 r]_i / [Ky^-1]_ii`` and
    ``var_i = 1 / [Ky^-1]_ii``. Works for any single-output botorch GP with a Gaussian
    likelihood and a ``Standardize`` outcome transform.

    Returns:
        ``(mu, sd)``, each ``(N,)``, in the units of the targets given to the model (e.g.
        log-ms), not the standardised ones.
    """
    with torch.no_grad(), single_threaded():
        model.train()
        try:
            prior = model.likelihood(model(*model.train_inputs))
            Ky = prior.covariance_matrix
            L = torch.linalg.cholesky(Ky + 1e-9 * torch.eye(len(Ky), dtype=Ky.dtype))
            Kinv = torch.cholesky_inverse(L)
            diag = Kinv.diagonal()
            mu = model.train_targets - (Kinv @ (model.train_targets - prior.mean)) / diag
            sd = diag.rsqrt()
        finally:
            model.eval()
        scale = model.outcome_transform.stdvs.squeeze()
        shift = model.outcome_transform.means.squeeze()
    return (mu * scale + shift).numpy(), (sd * scale).numpy()


class GPSurrogate:
    r"""Single-output GP over log latency with an optional analytic prior mean.

    Attributes:
        kernel: ``"rbf"`` or ``"linear"`` (see module docstring).
        maxiter: Cap on L-BFGS-B iterations of a full ``fit``.
        fit_timeout_s: Wall-time cap (s) on the hyperparameter optimisation of a ``fit``;
            ``None`` for no cap.
    """

    def __init__(
        self,
        kernel: str = "rbf",
        maxiter: int = DEFAULT_MAXITER,
        fit_timeout_s: float | None = DEFAULT_FIT_TIMEOUT_S,
    ) -> None:
        r"""
        Args:
            kernel: ``"rbf"`` or ``"linear"``.
            maxiter: Cap on L-BFGS-B iterations of a full ``fit``.
            fit_timeout_s: Wall-time cap (s) on the hyperparameter optimisation of a ``fit``.
        """
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        self.kernel = kernel
        self.maxiter = maxiter
        self.fit_timeout_s = fit_timeout_s
        self._model: SingleTaskGP | None = None
        self._uses_prior = False
        self._fit_log_prior = np.zeros(0)
        self._n = 0

    @property
    def n_points(self) -> int:
        r"""Number of observations the model is conditioned on (0 before ``fit``)."""
        return self._n

    @property
    def uses_prior(self) -> bool:
        r"""Whether the model was fitted with a ``prior_ms`` mean."""
        return self._uses_prior

    def fit(
        self, X: np.ndarray, y_ms: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> GPSurrogate:
        r"""Full refit: build a new GP on ``(X, y_ms)`` and optimise its hyperparameters.

        Args:
            X: ``(n, d)`` features.
            y_ms: ``(n,)`` latency in ms, ``> 0``.
            prior_ms: Optional ``(n,)`` prior latency in ms, ``> 0``; the GP then models
                ``log(y_ms / prior_ms)``.

        Returns:
            ``self``.
        """
        X = check_features(X)
        n, d = X.shape
        y_ms = check_latency_ms(y_ms, n)
        self._uses_prior = prior_ms is not None
        self._fit_log_prior = log_prior(prior_ms, n, self._uses_prior)
        Y = np.log(y_ms) - self._fit_log_prior
        linear = self.kernel == "linear"
        self._model = fit_model(
            lambda: SingleTaskGP(
                to_tensor(X),
                to_tensor(Y).unsqueeze(-1),
                covar_module=ScaleKernel(LinearKernel()) if linear else None,
                input_transform=None if linear else Normalize(d=d),
                outcome_transform=Standardize(m=1),
            ),
            self.maxiter,
            self.fit_timeout_s,
        )
        self._n = n
        return self

    def condition(
        self, X_new: np.ndarray, y_new_ms: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> GPSurrogate:
        r"""Add observations without re-optimising hyperparameters (cheap rank-n update).

        Uses botorch's ``condition_on_observations``; the input/outcome transforms keep the
        scaling of the last ``fit``.

        Args:
            X_new: ``(m, d)`` features.
            y_new_ms: ``(m,)`` latency in ms, ``> 0``.
            prior_ms: ``(m,)`` prior latency in ms; required iff ``fit`` got a prior.

        Returns:
            ``self``.
        """
        model = self._fitted_model()
        X_new = check_features(X_new, d=self._d, name="X_new")
        m = X_new.shape[0]
        Y = np.log(check_latency_ms(y_new_ms, m, name="y_new_ms"))
        Y = Y - log_prior(prior_ms, m, self._uses_prior)
        with torch.no_grad():  # the fantasy update needs the caches of one posterior call
            model.posterior(to_tensor(X_new[:1]))
        self._model = model.condition_on_observations(to_tensor(X_new), to_tensor(Y)[:, None])
        self._n += m
        return self

    def predict_log(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None, observation_noise: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Predictive distribution of log latency.

        Args:
            X: ``(n, d)`` features.
            prior_ms: ``(n,)`` prior latency in ms; required iff ``fit`` got a prior.
            observation_noise: Include the fitted measurement noise in ``sigma``.

        Returns:
            ``(mu, sigma)``, each ``(n,)``, in log-ms: ``log(latency) ~ N(mu, sigma^2)``.
        """
        model = self._fitted_model()
        X = check_features(X, d=self._d)
        offset = log_prior(prior_ms, X.shape[0], self._uses_prior)
        with torch.no_grad():
            post = model.posterior(to_tensor(X), observation_noise=observation_noise)
            mu = post.mean.squeeze(-1).numpy() + offset
            sigma = post.variance.squeeze(-1).clamp_min(0.0).sqrt().numpy()
        return mu, sigma

    def predict(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Predictive latency in ms (log-normal moments, observation noise included).

        Args:
            X: ``(n, d)`` features.
            prior_ms: ``(n,)`` prior latency in ms; required iff ``fit`` got a prior.

        Returns:
            ``(mean_ms, std_ms)``, each ``(n,)``.
        """
        return lognormal_moments(*self.predict_log(X, prior_ms))

    def loo_log(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Leave-one-out predictive ``(mu, sigma)`` of the points of the last ``fit``,
        each ``(n,)``, in log-ms (prior included): see ``loo_predictive``."""
        if self._n != len(self._fit_log_prior):
            raise RuntimeError("loo_log() describes a fit; points were added by condition()")
        mu, sd = loo_predictive(self._fitted_model())
        return mu + self._fit_log_prior, sd

    @property
    def _d(self) -> int:
        return self._fitted_model().train_inputs[0].shape[-1]

    def _fitted_model(self) -> SingleTaskGP:
        if self._model is None:
            raise RuntimeError("GPSurrogate is not fitted; call fit() first")
        return self._model
