r"""The latency-model contract: what a search asks of a model of per-cluster latency.

A :class:`LatencyModel` learns the latency of candidate networks on ``K`` device clusters
from measurements and predicts it, with uncertainty, for a batch of candidates. The
search (:class:`moo_compress.search.FleetSearch`) takes one as ``latency_model=``; the two
given implementations are Gaussian processes on log latency:

- :class:`~surrogates.multitask_latency.MultiTaskLatencyModel`: one multi-task GP across
  clusters (measurements on one cluster inform all others);
- :class:`~surrogates.independent_latency.IndependentLatencyModel`: one GP per cluster.

Conventions: ``X`` is ``(n, d)`` float features (the problem's ``features``); latencies
are in ms and ``> 0``; ``prior_ms`` is an optional ``(n,)`` analytic prior latency in ms,
given on every call or on none. The search calls :meth:`LatencyModel.refit` after adding
a batch and before predicting with it; a model may also bring itself up to date lazily.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class LatencyModel(Protocol):
    """Latency of candidate networks on K device clusters. X: (n, d) float features;
    latencies in ms (> 0); prior_ms: optional (n,) analytic prior latency in ms, given on
    every call or on none.

    Attributes:
        n_clusters: ``K``; cluster ids are ``0..K-1``.
    """

    n_clusters: int

    def add(
        self, cluster: int, X: np.ndarray, y_ms: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> None:
        """Store measurements ``y_ms`` (n,) of cluster ``cluster`` in ``0..K-1``."""
        ...

    def refit(self) -> None:
        """Bring the model up to date with all added data (full refit or cheap
        conditioning: the model decides)."""
        ...

    def predict(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(mean_ms, std_ms)``, each (n, K): predicted latency in ms on every cluster and
        its standard deviation (of a new measurement)."""
        ...


@runtime_checkable
class LogLatencyModel(LatencyModel, Protocol):
    """A :class:`LatencyModel` that predicts log latency and says whether data were added
    since its last fit (then a prediction would refit it first)."""

    @property
    def is_stale(self) -> bool:
        """Whether data were added since the last ``refit`` (or it never ran)."""
        ...

    def predict_log(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None, observation_noise: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, sigma)``, each (n, K): predictive mean and std of log latency (log-ms),
        of a new measurement with ``observation_noise``, else of the latent latency."""
        ...


@runtime_checkable
class SampledLatencyModel(LatencyModel, Protocol):
    """A :class:`LatencyModel` that also draws joint posterior samples, which the EHVI
    acquisition (:mod:`moo_compress.acquisition`) pushes through the fleet objectives."""

    def posterior_samples(
        self, X: np.ndarray, n_samples: int, prior_ms: np.ndarray | None = None, seed: int = 0
    ) -> np.ndarray:
        """``(n_samples, n, K)`` latency in ms of the ``n`` points on every cluster,
        jointly over the clusters of one point (the latent latency, noise excluded)."""
        ...


def gp_latency_model(n_clusters: int, transfer: bool, **options) -> LatencyModel:
    """The multi-task GP (``transfer``) or independent GPs, with keyword ``options`` of
    :class:`~surrogates.cluster_gp.ClusterGP` (``refit_every``, ``maxiter``,
    ``fit_timeout_s``, ``seed``)."""
    from surrogates.independent_latency import IndependentLatencyModel
    from surrogates.multitask_latency import MultiTaskLatencyModel

    model = MultiTaskLatencyModel if transfer else IndependentLatencyModel
    return model(n_clusters, **options)
