r"""Transfer between clusters that is used only where the data say it helps.

``TransferSwitch`` is a ``LatencyModel`` that fits one ``surrogates.fleet_gp.FleetGP`` per
covariance structure (by default ``"independent"``, ``"calibrated"`` and ``"icm"``) on the
same data and predicts with the one of best held-out evidence: the mean leave-one-out log
predictive density of the measured log latencies (``FleetGP.loo_score``, nats per point).
Every structure is scored on the same points (artefacts are flagged per cluster before
any structure sees them), so the scores are comparable.

The structures are compared again only when the data have grown by ``regrow`` (a factor)
since the last comparison, at an explicit ``refit``; in between, and when a prediction
finds data added since the last fit, only the chosen structure is refitted, which keeps
a search's refits about as cheap as one model's. With ``fit_processes = P > 0`` a
comparison fits structure ``i`` in process ``i mod (P + 1)``: this one (0) or one of a
``surrogates.fit_pool.FitPool``'s, at the same time, which gives the same fits bit for
bit; ``close()`` stops its processes.

Transfer switches itself off: a structure is chosen over a simpler one (order of
``structures``) only when its score is higher by more than ``margin`` nats per point. On
a fleet whose clusters share no ranking, the independent model wins; on one where they
do, the transfer structures predict a sparsely measured cluster from the others and win by
a wide margin.

``evidence`` is a JSON-ready record of the choice, for a run's summary.json::

    {"choice": "calibrated", "margin_nats": 0.02, "n_points": 48, "artefacts": 1,
     "winsorised": 0, "compared_at_points": 40,
     "loo_nats_per_point": {"independent": 0.91, "calibrated": 1.62, ...}}

Shapes and units as in ``surrogates.fleet_gp``.
"""

from __future__ import annotations

import warnings
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from surrogates.fit_pool import FitPool
from surrogates.fleet_gp import STRUCTURES, FleetGP


class TransferSwitch:
    r"""Fits several ``FleetGP`` structures and predicts with the best by held-out likelihood.

    Attributes:
        n_clusters: Number of clusters ``K``.
        structures: Candidate structures, simplest first.
        margin: Nats per point by which a later structure must beat an earlier one.
        models: The fitted candidate per structure.
        choice: The structure in use after the last ``refit`` (``None`` before).
    """

    def __init__(
        self,
        n_clusters: int,
        structures: tuple[str, ...] = STRUCTURES,
        margin: float = 0.02,
        regrow: float = 1.25,
        fit_processes: int = 0,
        parallel_from: int = 150,
        **fleet_gp_kwargs: Any,
    ) -> None:
        r"""
        Args:
            n_clusters: Number of clusters ``K >= 1``.
            structures: Non-empty candidates from ``surrogates.fleet_gp.STRUCTURES``.
            margin: ``>= 0`` nats per point a more complex structure must gain.
            regrow: ``>= 1``; the structures are compared again once the points have
                grown by this factor since the last comparison (1: at every refit).
            fit_processes: ``>= 0`` spawned processes that fit some structures of a
                comparison while this one fits the others (0: all here, one after
                another; more than ``len(structures) - 1`` are not started). They start
                at the first comparison with at least ``parallel_from / regrow`` points,
                which fits every structure here meanwhile, so they serve the comparisons
                from about ``parallel_from`` points on; they stop at ``close``;
                like every spawned process they import the caller's ``__main__``
                module, so a script that passes ``> 0`` must guard its work with
                ``if __name__ == "__main__":``.
            parallel_from: ``>= 0`` points. Below them the three fits of a comparison
                take about 2 s in all (60 to 120 points, 30 features, 4 clusters, one
                thread), which a process's start (2 to 5 s of CPU, mostly imports) would
                not repay: runs that stay that small start none.
            **fleet_gp_kwargs: Passed to every ``FleetGP``.
        """
        if not structures or margin < 0 or regrow < 1 or fit_processes < 0:
            raise ValueError(
                f"need at least one structure, margin >= 0, regrow >= 1 and "
                f"fit_processes >= 0, got {structures}, {margin}, {regrow}, {fit_processes}"
            )
        self.n_clusters = n_clusters
        self.structures = tuple(structures)
        self.margin = margin
        self.models = {s: FleetGP(n_clusters, structure=s, **fleet_gp_kwargs) for s in structures}
        self.regrow = regrow
        self.choice: str | None = None
        self._compared_at = 0  # points at the last comparison
        self._scores: dict[str, float] = {}  # LOO nats per point at the last comparison
        self.fit_processes = min(fit_processes, len(self.structures) - 1)
        self.parallel_from = parallel_from
        self._pool: FitPool | None = None

    def add(
        self, cluster: int, X: np.ndarray, y_ms: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> None:
        r"""Store measurements of one cluster in every candidate (see ``FleetGP.add``)."""
        for model in self.models.values():
            model.add(cluster, X, y_ms, prior_ms)

    def refit(self) -> None:
        r"""Refit the chosen structure, or, first and whenever the points have grown by
        ``regrow`` since the last comparison, every candidate, and choose the structure of
        best held-out evidence."""
        n = next(iter(self.models.values())).n_points
        if self.choice is not None and n < self.regrow * self._compared_at:
            self.models[self.choice].refit()
            return
        self._compared_at = n
        self._scores = {}
        best = None
        # the pool starts while this process fits every structure, and is waited for
        # below: its imports never run beside a device that times on this machine
        starting = self.fit_processes > 0 and self._pool is None
        starting = starting and n * self.regrow >= self.parallel_from
        if starting:
            self._pool = FitPool(self.fit_processes)
        # structure i is fitted by process i mod (pool size + 1); process 0 is this one
        shares = self._pool.processes + 1 if self._pool is not None and not starting else 1
        elsewhere = {
            name: self._submit(model)
            for i, (name, model) in enumerate(self.models.items())
            if i % shares
        }
        for name, model in self.models.items():
            if name not in elsewhere:
                model.refit()
        for name, future in elsewhere.items():
            self.models[name] = self._collect(future, self.models[name])
        if starting:
            self._pool.wait_started()
        for name, model in self.models.items():
            self._scores[name] = model.loo_score()
            if best is None or self._scores[name] > self._scores[best] + self.margin:
                best = name
        self.choice = best

    def _submit(self, model: FleetGP) -> Future[FleetGP] | None:
        r"""A future of the pool's refit of ``model``; None if the pool is gone."""
        if self._pool is not None:
            try:
                return self._pool.refit(model)
            except BrokenProcessPool:
                self._pool_died()
        return None

    def _collect(self, future: Future[FleetGP] | None, model: FleetGP) -> FleetGP:
        r"""The pool's refit of ``model``; if there is none, or its process died,
        ``model`` refitted here."""
        if future is not None:
            try:
                return future.result()
            except (BrokenProcessPool, CancelledError):
                self._pool_died()
        model.refit()
        return model

    def _pool_died(self) -> None:
        if self._pool is not None:
            warnings.warn(
                "a fit process died; the latency models are fitted in the search's own "
                "process from now on",
                RuntimeWarning,
                stacklevel=4,
            )
            self.close()

    def close(self) -> None:
        r"""Stop the fit processes, if any (a later comparison starts none)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self.fit_processes = 0

    def __getstate__(self) -> dict[str, Any]:
        r"""A copy (``copy.deepcopy``, pickle) has no fit processes: it fits in its own."""
        return {**self.__dict__, "_pool": None, "fit_processes": 0}

    @property
    def is_stale(self) -> bool:
        r"""Whether data were added since the chosen structure's fit (or none was chosen)."""
        return self.choice is None or self.models[self.choice].is_stale

    @property
    def chosen(self) -> FleetGP:
        r"""The candidate in use. Before the first ``refit`` this runs it; after that, a
        candidate with data added since its fit is refitted alone, without a new
        comparison (only an explicit ``refit`` compares)."""
        if self.choice is None:
            self.refit()
        model = self.models[self.choice]
        if model.is_stale:
            model.refit()
        return model

    def predict(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""``(median_ms, std_ms)``, each ``(n, K)``, of the chosen structure."""
        return self.chosen.predict(X, prior_ms)

    def predict_log(
        self, X: np.ndarray, prior_ms: np.ndarray | None = None, observation_noise: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""``(mu, sigma)`` log-ms, each ``(n, K)``, of the chosen structure."""
        return self.chosen.predict_log(X, prior_ms, observation_noise)

    def posterior_samples(
        self, X: np.ndarray, n_samples: int, prior_ms: np.ndarray | None = None, seed: int = 0
    ) -> np.ndarray:
        r"""``(S, n, K)`` joint latency samples in ms from the chosen structure."""
        return self.chosen.posterior_samples(X, n_samples, prior_ms, seed)

    @property
    def evidence(self) -> dict[str, Any]:
        r"""The choice and its held-out evidence, JSON-ready (see the module docstring)."""
        chosen = self.chosen
        return {
            "choice": self.choice,
            "margin_nats": self.margin,
            "n_points": chosen.n_points,
            "artefacts": int(chosen.artefacts.sum()),
            "winsorised": chosen.n_winsorised,
            "compared_at_points": self._compared_at,
            "loo_nats_per_point": {name: round(v, 4) for name, v in self._scores.items()},
        }
