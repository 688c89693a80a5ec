"""Counting the real latency measurements a method spends."""

from __future__ import annotations

import numpy as np

from moo_compress.device import Device


class BudgetExhausted(RuntimeError):
    """A method asked for a measurement beyond its budget."""


class Meter:
    """Measures configurations on devices for one method run, and counts the cost.

    Args:
        decode: Turns an (n_var,) decision vector into the configuration a device runs.
        budget: Most real measurements allowed; None for no limit.

    Attributes:
        count: Real measurements made (a repeated (device, configuration) pair is
            answered from a cache and not counted).
        device_seconds: Sum of every sample's latency, in s: the device time spent.
    """

    def __init__(self, decode, budget: int | None) -> None:
        self.decode = decode
        self.budget = budget
        self.count = 0
        self.device_seconds = 0.0
        self._cache: dict[tuple[str, bytes], float] = {}

    def remaining(self) -> float:
        """Measurements left (``inf`` without a budget)."""
        return float("inf") if self.budget is None else self.budget - self.count

    def measure(self, device: Device, x: np.ndarray) -> float:
        """Median latency in ms of configuration ``x`` (n_var,) on ``device``.

        Raises:
            BudgetExhausted: if the budget is spent.
        """
        key = (device.device_id, np.asarray(x, dtype=np.int64).tobytes())
        if key not in self._cache:
            if self.remaining() < 1:
                raise BudgetExhausted(f"budget of {self.budget} measurements spent")
            measurement = device.measure(self.decode(np.asarray(x, dtype=np.int64)))
            self.count += 1
            self.device_seconds += sum(measurement.samples_ms) / 1e3
            self._cache[key] = measurement.median_ms
        return self._cache[key]

    def measure_rows(self, devices: list[Device], X: np.ndarray) -> np.ndarray:
        """(N, K) median latency in ms of every row of ``X`` on every device."""
        return np.array([[self.measure(d, x) for d in devices] for x in np.atleast_2d(X)])
