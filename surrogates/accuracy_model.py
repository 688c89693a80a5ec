r"""Surrogate of accuracy loss, for evaluators too costly to run on every candidate.

A :class:`~surrogates.gp_surrogate.GPSurrogate` (log-normal) models the shifted loss
``1 - accuracy + LOSS_FLOOR``, which is ``> 0`` as its log needs; predictions are turned
back into accuracy in ``[0, 1]``. Accuracy here is any score in ``[0, 1]`` where larger is
better (top-1 accuracy, fidelity).

Example:
    >>> model = AccuracyModel(maxiter=50)
    >>> model.fit(X, accuracy)  # X (n, d) features, accuracy (n,)
    >>> accuracy, std = model.predict(X_pop)  # each (N,)
"""

from __future__ import annotations

import numpy as np

from surrogates.gp_surrogate import DEFAULT_MAXITER, GPSurrogate, single_threaded

LOSS_FLOOR = 1e-3
"""Added to the accuracy loss before it is modelled in log space."""


def shifted_loss(accuracy: np.ndarray) -> np.ndarray:
    """``1 - accuracy + LOSS_FLOOR`` (> 0) of (n,) accuracy: what the GP models."""
    return 1.0 - accuracy + LOSS_FLOOR


class AccuracyModel:
    r"""GP of ``log(1 - accuracy + LOSS_FLOOR)``; deterministic fits (no time cap).

    Args:
        maxiter: Cap on L-BFGS-B iterations of a fit.
    """

    def __init__(self, maxiter: int = DEFAULT_MAXITER) -> None:
        self._gp = GPSurrogate(maxiter=maxiter, fit_timeout_s=None)

    @property
    def n_points(self) -> int:
        r"""Observations of the last :meth:`fit` (0 before)."""
        return self._gp.n_points

    def fit(self, X: np.ndarray, accuracy: np.ndarray) -> AccuracyModel:
        r"""Full fit on ``(n, d)`` features and ``(n,)`` accuracy in [0, 1]; ``self``."""
        self._gp.fit(X, shifted_loss(np.asarray(accuracy, dtype=float)))
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""``(accuracy, std)``, each ``(N,)``: predicted accuracy clipped to [0, 1], and
        the std of the shifted loss (the same as the accuracy's, before clipping)."""
        with single_threaded():
            loss, std = self._gp.predict(X)
        return np.clip(1.0 - (loss - LOSS_FLOOR), 0.0, 1.0), std
