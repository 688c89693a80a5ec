"""What a method returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MethodResult:
    """One method run.

    Attributes:
        X: (F, n_var) the configurations the method reports as its front (scored on
            the truth by the harness, whatever the method believed of them).
        measurements: Real latency measurements spent.
        device_seconds: Device time of those measurements, in s.
    """

    X: np.ndarray
    measurements: int
    device_seconds: float
