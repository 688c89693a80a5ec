"""A device that replays recorded latencies: every measurement is a table look-up."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

import numpy as np

from moo_compress.device import Device
from moo_compress.measurement import Measurement


class Config(Protocol):
    """What a replayed configuration offers: per-layer ``bits`` and canonical JSON."""

    bits: dict[str, int]

    def to_json(self) -> str: ...


class ReplayDevice(Device):
    """Replays one recorded latency column, keyed by configuration JSON.

    :meth:`measure` returns one sample, the recorded value (a table holds one latency per
    configuration, usually already a median of the original runs). Recorded defects are
    replayed as they are, except missing values: a value of ``-1``, NaN, any other
    non-positive value or a configuration absent from the table raises.

    Args:
        device_id: Unique name, e.g. ``"raspi4"``.
        latency_ms: ``config.to_json()`` -> recorded batch-1 latency in ms.
        supported_bits: Bit-widths of the recorded configurations (default float32 only).
    """

    def __init__(
        self,
        device_id: str,
        latency_ms: Mapping[str, float],
        supported_bits: frozenset[int] | set[int] = frozenset({32}),
    ) -> None:
        super().__init__(device_id, supported_bits)
        self.latency_ms = latency_ms

    def lookup(self, key: str) -> float:
        """The recorded latency in ms of the configuration whose JSON is ``key``.

        Raises:
            ValueError: naming the device and the configuration, if the value is absent
                or recorded as missing.
        """
        value = self.latency_ms.get(key)
        if value is None or not math.isfinite(value) or value <= 0:
            recorded = "no value" if value is None else f"{value!r}"
            raise ValueError(
                f"device {self.device_id!r} has no recorded latency for {key} "
                f"(recorded: {recorded}; missing values are -1, NaN or absent)"
            )
        return float(value)

    def measure(self, config: Config) -> Measurement:
        """One sample: the recorded latency (ms) of ``config``."""
        self.check(config)
        return Measurement(self.device_id, (self.lookup(config.to_json()),))

    def true_latency_ms(self, X: np.ndarray) -> np.ndarray:
        """(N,) recorded latency in ms of a population (N, n_var) of the bound space."""
        if self.space is None:
            raise ValueError(f"device {self.device_id!r} is not bound to a search space")
        return np.array([self.lookup(self.space.decode(x).to_json()) for x in X])
