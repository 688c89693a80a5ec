r"""Quality metrics of latency predictions.

All metrics compare true latencies with the predictive mean (and std) of a surrogate, in ms:

- ``mape``: mean absolute percentage error of the mean, in %.
- ``within_10pct``: share (0..1) of points whose mean is within +-10 % of the truth.
- ``spearman``: Spearman rank correlation between truth and mean (ties get average ranks).
- ``coverage_95``: share (0..1) of truths inside the central 95 % predictive interval.
  With ``log_normal=True`` (the convention of ``surrogates``) ``(mean, std)`` are taken as
  the moments of a log-normal; it is converted back to ``log(latency) ~ N(mu, sigma^2)``
  with ``sigma^2 = log(1 + (std / mean)^2)``, ``mu = log(mean) - sigma^2 / 2`` and the
  interval is ``exp(mu +- 1.96 sigma)``. With ``log_normal=False`` it is ``mean +- 1.96 std``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, rankdata

METRICS = ("mape", "within_10pct", "spearman", "coverage_95")
Z_95 = float(norm.ppf(0.975))


def _check(y_true_ms: np.ndarray, mean_ms: np.ndarray, std_ms: np.ndarray) -> tuple:
    arrays = [np.asarray(a, dtype=np.float64) for a in (y_true_ms, mean_ms, std_ms)]
    if not arrays[0].shape == arrays[1].shape == arrays[2].shape or arrays[0].size == 0:
        raise ValueError(
            f"y_true_ms, mean_ms, std_ms need one non-empty shape: {[a.shape for a in arrays]}"
        )
    for name, a in zip(("y_true_ms", "mean_ms", "std_ms"), arrays, strict=True):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or inf")
    if (arrays[0] <= 0).any() or (arrays[1] <= 0).any() or (arrays[2] < 0).any():
        raise ValueError("latencies and means must be > 0 ms and std_ms >= 0")
    return tuple(arrays)


def quality_columns(
    y_true_ms: np.ndarray, mean_ms: np.ndarray, std_ms: np.ndarray, log_normal: bool = True
) -> dict[str, np.ndarray]:
    r"""Quality metrics per column, e.g. per cluster.

    Args:
        y_true_ms: ``(n, K)`` true latency in ms, ``> 0``.
        mean_ms: ``(n, K)`` predictive mean in ms, ``> 0``.
        std_ms: ``(n, K)`` predictive std in ms, ``>= 0``.
        log_normal: Read ``(mean_ms, std_ms)`` as log-normal moments (see module doc).

    Returns:
        ``{metric: (K,) array}`` for the metrics in ``METRICS``.
    """
    y, mean, std = _check(y_true_ms, mean_ms, std_ms)
    if y.ndim != 2:
        raise ValueError(f"expected (n, K) arrays, got shape {y.shape}")
    rel_err = np.abs(mean / y - 1.0)
    if log_normal:
        var_log = np.log1p((std / mean) ** 2)
        inside = np.abs(np.log(y) - (np.log(mean) - var_log / 2)) <= Z_95 * np.sqrt(var_log)
    else:
        inside = np.abs(y - mean) <= Z_95 * std
    return {
        "mape": 100.0 * rel_err.mean(axis=0),
        "within_10pct": (rel_err <= 0.10).mean(axis=0),
        "spearman": _pearson(rankdata(y, axis=0), rankdata(mean, axis=0)),
        "coverage_95": inside.mean(axis=0),
    }


def quality_report(
    y_true_ms: np.ndarray, mean_ms: np.ndarray, std_ms: np.ndarray, log_normal: bool = True
) -> dict[str, float]:
    r"""Quality metrics of one set of predictions.

    Args:
        y_true_ms: ``(n,)`` true latency in ms, ``> 0``.
        mean_ms: ``(n,)`` predictive mean in ms, ``> 0``.
        std_ms: ``(n,)`` predictive std in ms, ``>= 0``.
        log_normal: Read ``(mean_ms, std_ms)`` as log-normal moments (see module doc).

    Returns:
        ``{metric: float}`` for the metrics in ``METRICS``.
    """
    arrays = _check(y_true_ms, mean_ms, std_ms)
    if arrays[0].ndim != 1:
        raise ValueError(f"expected (n,) arrays, got shape {arrays[0].shape}")
    cols = quality_columns(*(a[:, None] for a in arrays), log_normal=log_normal)
    return {k: float(v[0]) for k, v in cols.items()}


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Pearson correlation of matching columns of ``(n, K)`` arrays; NaN if one is constant."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=0) / np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
