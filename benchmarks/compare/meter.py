"""Counting, logging and limiting the real latency measurements a method spends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moo_compress.device import Device


class BudgetExhausted(RuntimeError):
    """A method asked for a measurement beyond its budget (protocol v2: an error, never
    a silent truncation)."""


@dataclass(frozen=True)
class Entry:
    """One real latency measurement, in the order it was taken.

    Attributes:
        device_id: The device measured.
        cluster: The problem's cluster this measurement stands for (the device is its
            representative, or the method's store says so), or None (e.g. the nominal
            device, or another fleet unit).
        key: ``x.tobytes()`` of the (n_var,) int64 decision vector, or None where the
            configuration is not known to the harness (a store row of a configuration
            the method never asked the accuracy of).
        median_ms: Median of its samples, in ms.
        seconds: Device time of its samples, in s.
    """

    device_id: str
    cluster: int | None
    key: bytes | None
    median_ms: float
    seconds: float


def key_of(x: np.ndarray) -> bytes:
    """The log key of an (n_var,) decision vector."""
    return np.asarray(x, dtype=np.int64).tobytes()


class Meter:
    """Measures configurations on devices for one method run, logs and counts the cost.

    Args:
        decode: Turns an (n_var,) decision vector into the configuration a device runs.
        budget: Most real measurements allowed; None for no limit.
        clusters: ``device_id`` -> the problem's cluster that device represents.

    Attributes:
        log: Every real measurement, in order (a repeated (device, configuration) pair
            is answered from a cache and neither logged nor counted).
    """

    def __init__(self, decode, budget: int | None, clusters: dict[str, int] | None = None) -> None:
        self.decode = decode
        self.budget = budget
        self.clusters = clusters or {}
        self.log: list[Entry] = []
        self._cache: dict[tuple[str, bytes], float] = {}

    @property
    def count(self) -> int:
        """Real measurements made."""
        return len(self.log)

    @property
    def device_seconds(self) -> float:
        """Sum of every sample's latency, in s: the device time spent."""
        return sum(e.seconds for e in self.log)

    def remaining(self) -> float:
        """Measurements left (``inf`` without a budget)."""
        return float("inf") if self.budget is None else self.budget - self.count

    def measure(self, device: Device, x: np.ndarray) -> float:
        """Median latency in ms of configuration ``x`` (n_var,) on ``device``.

        Raises:
            BudgetExhausted: if the budget is spent.
        """
        key = key_of(x)
        if (device.device_id, key) not in self._cache:
            if self.remaining() < 1:
                raise BudgetExhausted(f"budget of {self.budget} latency measurements spent")
            measurement = device.measure(self.decode(np.asarray(x, dtype=np.int64)))
            entry = Entry(
                device.device_id,
                self.clusters.get(device.device_id),
                key,
                measurement.median_ms,
                sum(measurement.samples_ms) / 1e3,
            )
            self.log.append(entry)
            self._cache[(device.device_id, key)] = entry.median_ms
        return self._cache[(device.device_id, key)]

    def measure_rows(self, devices: list[Device], X: np.ndarray) -> np.ndarray:
        """(N, K) median latency in ms of every row of ``X`` on every device."""
        return np.array([[self.measure(d, x) for d in devices] for x in np.atleast_2d(X)])
