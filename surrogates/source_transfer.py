r"""Latency of a new device from a few of its measurements and fully measured sources.

The one-proxy-device result: a device's log latency is close to an affine map of another
device's, ``log y(x) ~ a + b * log y_j(x)``. With many source devices measured on every
candidate (a latency table, or the clusters of a fleet already measured), a new device
needs only a handful of its own measurements, as long as the model cannot overfit them.

``SourceTransfer`` fits Bayesian linear regressions of the target's log latency
(``GPSurrogate(kernel="linear")``: a linear kernel with one prior weight variance, plus a
constant mean and Gaussian noise) on three feature sets of the standardised source log
latencies, and predicts with the one of best leave-one-out evidence:

- ``"proxy"``: the single source whose ordinary least-squares fit has the smallest
  leave-one-out squared error (hat-matrix formula, so all sources are tried cheaply);
- ``"pcs"``: the first ``n_pcs`` principal components of the sources, computed on the
  whole candidate pool (no target data): the rankings that most devices share;
- ``"all"``: every source.

Evidence is the Huber-clipped leave-one-out log density per point
(``surrogates.fleet_gp.huber_log_density``). With few points the simple sets win; the
richer ones take over only when the data support them, so more measurements do not make
the prediction worse by overfitting 20 points in 27 dimensions (issue 13, item 5).
Target readings that are artefacts (``surrogates.artefacts``) are left out of every fit.

Shapes: ``sources`` ``(N, S)`` log latency (log-ms) of the ``N`` pool candidates on ``S``
source devices; a fit takes pool row indices and ``(n,)`` target latency in ms;
predictions are ``(N,)`` for the whole pool.
"""

from __future__ import annotations

import numpy as np

from surrogates.artefacts import artefact_mask
from surrogates.fleet_gp import huber_log_density
from surrogates.gp_surrogate import GPSurrogate, check_latency_ms

FEATURE_SETS = ("proxy", "pcs", "all")
MIN_POINTS_TO_CHOOSE = 4
"""Below this many measurements there is no choice: ``"pcs"`` is used (leave-one-out on
2-3 points cannot tell the sets apart, and one proxy cannot be picked from them)."""


def loo_ols_error(F: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""``(S,)`` leave-one-out mean squared error of ``y ~ a + b * F[:, j]`` for each ``j``.

    Args:
        F: ``(n, S)`` one candidate regressor per column.
        y: ``(n,)`` targets.
    """
    Fc = F - F.mean(0)
    yc = y - y.mean()
    sxx = (Fc**2).sum(0)
    safe = np.where(sxx > 0, sxx, 1.0)
    resid = yc[:, None] - Fc * ((Fc * yc[:, None]).sum(0) / safe)
    hat = 1.0 / len(y) + Fc**2 / safe
    err = (resid / np.maximum(1.0 - hat, 1e-6)) ** 2
    return np.where(sxx > 0, err.mean(0), np.inf)


class SourceTransfer:
    r"""Target-device latency on a candidate pool from source-device latencies.

    Attributes:
        feature_sets: Candidates, simplest first, from ``FEATURE_SETS``.
        margin: Nats per point by which a later feature set must beat an earlier one.
        choice: The feature set in use after ``fit``.
        evidence: ``{feature set: LOO nats per point}`` of the last ``fit``.
        proxy: Column of the source chosen by ``"proxy"`` in the last ``fit``.
    """

    def __init__(
        self,
        sources: np.ndarray,
        n_pcs: int = 3,
        feature_sets: tuple[str, ...] = FEATURE_SETS,
        margin: float = 0.02,
        winsor_z: float = 4.0,
    ) -> None:
        r"""
        Args:
            sources: ``(N, S)`` log latency of the pool on the source devices, finite.
            n_pcs: Principal components of ``"pcs"``, ``1 <= n_pcs <= S``.
            feature_sets: Non-empty subset of ``FEATURE_SETS``, simplest first.
            margin: ``>= 0`` nats per point.
            winsor_z: Clip of the Huber score, in leave-one-out standard deviations.
        """
        sources = np.asarray(sources, dtype=np.float64)
        if sources.ndim != 2 or not np.isfinite(sources).all():
            raise ValueError(f"sources must be a finite (N, S) array, got {sources.shape}")
        if not 1 <= n_pcs <= sources.shape[1]:
            raise ValueError(f"n_pcs must be in 1..{sources.shape[1]}, got {n_pcs}")
        if not feature_sets or set(feature_sets) - set(FEATURE_SETS):
            raise ValueError(f"feature_sets must be a subset of {FEATURE_SETS}")
        std = sources.std(0)
        self._z = (sources - sources.mean(0)) / np.where(std > 0, std, 1.0)  # (N, S)
        _, _, Vt = np.linalg.svd(self._z, full_matrices=False)
        self._pcs = self._z @ Vt[:n_pcs].T  # (N, n_pcs)
        self._pcs /= self._pcs.std(0)
        self.feature_sets = tuple(feature_sets)
        self.margin = margin
        self.winsor_z = winsor_z
        self.choice: str | None = None
        self.evidence: dict[str, float] = {}
        self.proxy = -1
        self._gp: GPSurrogate | None = None

    def _features(self, name: str) -> np.ndarray:
        if name == "proxy":
            return self._z[:, [self.proxy]]
        return self._pcs if name == "pcs" else self._z

    def fit(self, rows: np.ndarray, y_ms: np.ndarray) -> SourceTransfer:
        r"""Fit every feature set on the measured pool rows and keep the best.

        Args:
            rows: ``(n,)`` distinct pool row indices that were measured, ``n >= 2``.
            y_ms: ``(n,)`` their latency on the target device in ms.

        Returns:
            ``self``.
        """
        rows = np.asarray(rows, dtype=np.int64)
        y = np.log(check_latency_ms(y_ms, len(rows)))
        keep = ~artefact_mask(y)
        rows, y = rows[keep], y[keep]
        if len(rows) < 2:
            raise ValueError(f"need at least 2 non-artefact measurements, got {len(rows)}")
        self.proxy = int(np.argmin(loo_ols_error(self._z[rows], y)))
        best, best_score = None, -np.inf
        self.evidence = {}
        few = len(rows) < MIN_POINTS_TO_CHOOSE
        for name in ("pcs",) if few else self.feature_sets:
            gp = GPSurrogate(kernel="linear").fit(self._features(name)[rows], np.exp(y))
            mu, sd = gp.loo_log()
            score = float(huber_log_density(y, mu, sd, self.winsor_z).mean())
            self.evidence[name] = score
            if best is None or score > best_score + self.margin:
                best, best_score, self._gp = name, score, gp
        self.choice = best
        return self

    def predict_log(self) -> tuple[np.ndarray, np.ndarray]:
        r"""``(mu, sigma)``, each ``(N,)``, log-ms over the whole pool (noise included)."""
        if self._gp is None:
            raise RuntimeError("SourceTransfer is not fitted; call fit() first")
        return self._gp.predict_log(self._features(self.choice))

    def predict(self) -> tuple[np.ndarray, np.ndarray]:
        r"""``(median_ms, std_ms)``, each ``(N,)``: ``exp(mu)`` and the log-normal std."""
        mu, sigma = self.predict_log()
        return np.exp(mu), np.exp(mu + 0.5 * sigma**2) * np.sqrt(np.expm1(sigma**2))
