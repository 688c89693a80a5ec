"""One latency measurement of one configuration on one device."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

_Z95 = 1.959963984540054


def median_rel_halfwidth(samples_ms: list[float] | tuple[float, ...]) -> float:
    """Half-width of a distribution-free 95 % confidence interval of the median, / median.

    The interval runs between the order statistics of ranks
    ``n/2 -/+ 1.96 * sqrt(n) / 2`` (normal approximation to the binomial). Returns
    ``inf`` while there are too few samples for such an interval to exist.
    """
    n = len(samples_ms)
    lo = math.floor(n / 2 - _Z95 * math.sqrt(n) / 2)
    hi = math.ceil(n / 2 + 1 + _Z95 * math.sqrt(n) / 2)
    if lo < 1 or hi > n:
        return math.inf
    x = np.sort(samples_ms)
    return float((x[hi - 1] - x[lo - 1]) / 2 / np.median(x))


@dataclass(frozen=True)
class Measurement:
    """Latency samples of one configuration on one device.

    Attributes:
        device_id: The device that produced the samples.
        samples_ms: Batch-1 inference latencies in ms, each finite and > 0.
        timestamp: Unix time (s) at which the measurement finished.

    Raises:
        ValueError: on construction, if there is no sample or a sample is NaN,
            infinite, zero or negative, so that such a value never reaches a store.
    """

    device_id: str
    samples_ms: tuple[float, ...]
    timestamp: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        samples = tuple(float(s) for s in self.samples_ms)
        if not samples:
            raise ValueError(f"device {self.device_id!r} returned no latency sample")
        bad = [s for s in samples if not (math.isfinite(s) and s > 0)]
        if bad:
            raise ValueError(
                f"device {self.device_id!r} returned latency {bad[0]!r} ms; "
                "allowed: finite values > 0"
            )
        object.__setattr__(self, "samples_ms", samples)

    @property
    def median_ms(self) -> float:
        """Median latency in ms."""
        return float(np.median(self.samples_ms))

    @property
    def rel_precision(self) -> float:
        """Relative half-width of the 95 % CI of the median (:func:`median_rel_halfwidth`);
        ``inf`` with too few samples for one."""
        return median_rel_halfwidth(self.samples_ms)

    @property
    def spread_ms(self) -> float:
        """Inter-quartile range of the samples in ms (0 for a single sample)."""
        q1, q3 = np.percentile(self.samples_ms, [25, 75])
        return float(q3 - q1)
