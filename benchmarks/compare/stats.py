"""Paired statistics of one method against ``ours`` over the same seeds.

Each seed builds the same problem instance and gives every method the same seed, so
the runs are paired by seed. For a metric and a method, over the seeds where both have
a finite value:

* mean ± 95 % CI: Student-t half width ``t(0.975, n-1) * sd / sqrt(n)``;
* wins / ties / losses *of ours*: a tie is an absolute difference of at most the
  metric's tie tolerance (:data:`TIES`); otherwise ours wins where it is better;
* p: two-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``,
  ``zero_method="zsplit"``) on the paired differences; 1.0 when every difference is 0,
  NaN with fewer than 2 pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

TIES = {"hv_fraction": 0.005, "igd_plus": 0.001, "regret": 0.01}
"""Largest absolute difference called a tie: half an HV point, 0.001 of IGD+, and
1 % of the best latency for a regret ratio."""


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and 95 % CI half width of the finite ``values`` (NaN, NaN if none; half
    width 0 for one value)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    if len(values) == 1:
        return float(values[0]), 0.0
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(half)


@dataclass(frozen=True)
class Paired:
    """``ours`` against another method on one metric.

    Attributes:
        n: Paired seeds with finite values on both sides.
        wins, ties, losses: Seeds where ours is better, tied, worse.
        p: Wilcoxon signed-rank p-value (two-sided).
    """

    n: int
    wins: int
    ties: int
    losses: int
    p: float


def paired(ours: np.ndarray, other: np.ndarray, higher_is_better: bool, tie: float) -> Paired:
    """Paired comparison of (S,) ``ours`` and (S,) ``other`` values, seed by seed."""
    ours, other = np.asarray(ours, dtype=float), np.asarray(other, dtype=float)
    ok = np.isfinite(ours) & np.isfinite(other)
    gain = (ours[ok] - other[ok]) * (1.0 if higher_is_better else -1.0)  # > 0: ours better
    wins = int(np.sum(gain > tie))
    losses = int(np.sum(gain < -tie))
    if len(gain) < 2:
        p = float("nan")
    elif np.all(gain == 0):
        p = 1.0
    else:
        p = float(stats.wilcoxon(gain, zero_method="zsplit").pvalue)
    return Paired(len(gain), wins, len(gain) - wins - losses, losses, p)
