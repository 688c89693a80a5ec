"""A fault-injecting wrapper of a device, for tests and benchmarks of fault tolerance."""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.measurement import Measurement

if TYPE_CHECKING:
    from moo_compress.search_space import SearchSpace


class FaultyDevice(Device):
    """Wraps a device and spoils a share of its measurements.

    Per request, with the given probabilities: raise an exception or return garbage
    (``fail``, half each), sleep ``hang_s`` before answering (``hang``), or multiply
    every sample by a random factor in [5, 50] (``outlier``). The fate of a request is
    drawn from a generator seeded by ``seed``, the configuration's digest and how many
    times this wrapper was asked for that configuration, so a run is reproducible, and
    a clean answer is exactly the wrapped device's answer.

    Args:
        inner: The device to wrap; the wrapper takes its id and bit-widths.
        fail, hang, outlier: Probabilities per request (their sum <= 1).
        hang_s: Length of a hang in s (set it above the dispatcher's timeout).
        seed: Seed of the fault draws.
    """

    def __init__(
        self,
        inner: Device,
        *,
        fail: float = 0.20,
        hang: float = 0.05,
        outlier: float = 0.05,
        hang_s: float = 120.0,
        seed: int = 0,
    ) -> None:
        super().__init__(inner.device_id, inner.supported_bits)
        if min(fail, hang, outlier) < 0 or fail + hang + outlier > 1:
            raise ValueError(f"need probabilities >= 0 summing to <= 1, got {fail, hang, outlier}")
        self.inner = inner
        self.space = inner.space
        self.fail, self.hang, self.outlier, self.hang_s = fail, hang, outlier, hang_s
        self.seed = seed
        self._requests: dict[str, int] = {}
        self._lock = threading.Lock()

    def bind(self, space: SearchSpace) -> None:
        self.inner.bind(space)
        super().bind(space)

    def measure(self, config: CompressionConfig) -> Measurement:
        """The wrapped device's measurement, or one of the injected faults."""
        with self._lock:
            attempt = self._requests.get(config.digest, 0)
            self._requests[config.digest] = attempt + 1
        rng = np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(int(config.digest, 16), attempt))
        )
        u, factor = rng.random(), math.exp(rng.uniform(math.log(5), math.log(50)))
        if u < self.fail / 2:
            raise RuntimeError(f"injected failure on {self.device_id} (attempt {attempt})")
        if u < self.fail:
            return (float("nan"),)  # garbage: not a Measurement
        if u < self.fail + self.hang:
            time.sleep(self.hang_s)
        measurement = self.inner.measure(config)
        if u < self.fail + self.hang + self.outlier:
            samples = tuple(s * factor for s in measurement.samples_ms)
            return Measurement(self.device_id, samples)
        return measurement
