"""The outlier test of one device's medians."""

from __future__ import annotations

from collections import deque

import numpy as np


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

    def trusts(self, median_ms: float) -> bool:
        """Whether ``median_ms`` lies within ``[q1 - k IQR, q3 + k IQR]`` of the recent
        medians (False while the history is shorter than ``min_history``)."""
        if len(self._recent) < self.min_history:
            return False
        if not self._recent:  # min_history == 0: trust the first median
            return True
        q1, q3 = np.percentile(self._recent, [25, 75])
        spread = self.k * (q3 - q1)
        return bool(q1 - spread <= median_ms <= q3 + spread)

    def add(self, median_ms: float) -> None:
        """Record an accepted median (ms)."""
        self._recent.append(float(median_ms))
