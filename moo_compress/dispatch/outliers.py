"""The outlier test of one device's medians, and a caller's expectation of one median."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Expected:
    """What the caller expects the median of one request to be, e.g. a latency model's
    prediction: a reading within ``[median_ms / factor, median_ms * factor]`` is
    plausible for that configuration, whatever the device measured before.

    Attributes:
        median_ms: Expected median in ms (> 0).
        factor: Tolerated ratio either way (>= 1).
    """

    median_ms: float
    factor: float

    def __post_init__(self) -> None:
        if not (self.median_ms > 0 and self.factor >= 1):
            raise ValueError(
                f"need median_ms > 0 and factor >= 1, got {self.median_ms}, {self.factor}"
            )

    def covers(self, median_ms: float) -> bool:
        """Whether ``median_ms`` lies within the tolerated band."""
        return abs(math.log(median_ms / self.median_ms)) <= math.log(self.factor)


class OutlierCheck:
    """Recent accepted medians (ms) of one device, and the k x IQR test against them.

    Args:
        k: Multiple of the inter-quartile range beyond the quartiles that is an outlier.
        history: Number of recent medians kept.
        min_history: With fewer medians than this, no median is trusted on its own.
    """

    def __init__(self, k: float, history: int, min_history: int) -> None:
        self.k = k
        self.min_history = min_history
        self._recent: deque[float] = deque(maxlen=history)

    @property
    def warming_up(self) -> bool:
        """Whether the device has fewer than ``min_history`` accepted medians (then no
        median is trusted on its own, see :meth:`trusts`)."""
        return len(self._recent) < self.min_history

    def trusts(self, median_ms: float) -> bool:
        """Whether ``median_ms`` lies within ``[q1 - k IQR, q3 + k IQR]`` of the recent
        medians (False while the history is shorter than ``min_history``)."""
        if self.warming_up:
            return False
        if not self._recent:  # min_history == 0: trust the first median
            return True
        q1, q3 = np.percentile(self._recent, [25, 75])
        spread = self.k * (q3 - q1)
        return bool(q1 - spread <= median_ms <= q3 + spread)

    def add(self, median_ms: float) -> None:
        """Record an accepted median (ms)."""
        self._recent.append(float(median_ms))
