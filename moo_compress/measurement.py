"""One latency measurement of one configuration on one device."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np


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
    def spread_ms(self) -> float:
        """Inter-quartile range of the samples in ms (0 for a single sample)."""
        q1, q3 = np.percentile(self.samples_ms, [25, 75])
        return float(q3 - q1)
