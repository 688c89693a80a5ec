"""A simulated unit of a SKU: its drift factors, measurement noise and its own RNG."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.devices.sku import SKU
from moo_compress.measurement import Measurement

if TYPE_CHECKING:
    from moo_compress.search_space import SearchSpace


class SimulatedDevice(Device):
    """One device whose latency is the SKU model times its drift, plus log-normal noise.

    Each sample is ``true_latency * exp(noise * z)``, ``z ~ N(0, 1)``. The noise of a
    configuration is drawn from a generator seeded by the device's seed and the
    configuration's digest, so a measurement does not depend on what was measured
    before it: an interrupted and resumed run sees exactly the samples an
    uninterrupted one would.

    Args:
        device_id: Unique name, e.g. ``"jetson-xavier-nx-017"``.
        sku: The hardware model.
        compute, bandwidth, overhead: Drift factors (see :mod:`moo_compress.devices.sku`).
        noise: Log-normal sigma of one sample (e.g. 0.02 = 2 %).
        samples: Samples per :meth:`measure` call.
        seed: Seed of the device's generator (or a ``SeedSequence``).
    """

    def __init__(
        self,
        device_id: str,
        sku: SKU,
        *,
        compute: float = 1.0,
        bandwidth: float = 1.0,
        overhead: float = 1.0,
        noise: float = 0.02,
        samples: int = 5,
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        super().__init__(device_id, sku.supported_bits)
        if noise < 0 or samples < 1:
            raise ValueError(f"need noise >= 0 and samples >= 1, got {noise}, {samples}")
        self.sku = sku
        self.compute, self.bandwidth, self.overhead = compute, bandwidth, overhead
        self.noise = noise
        self.samples = samples
        if not isinstance(seed, np.random.SeedSequence):
            seed = np.random.SeedSequence(seed)
        self._seed = seed

    def true_latency_ms(self, X: np.ndarray) -> np.ndarray:
        """(N,) noiseless latency in ms of a population (N, n_var).

        For evaluation only: an optimiser must only see :meth:`measure`.
        """
        space = self._bound()
        return self.sku.latency_ms(
            space.costs(X).layers, self.compute, self.bandwidth, self.overhead
        )

    def measure(self, config: CompressionConfig) -> Measurement:
        """``samples`` noisy batch-1 latencies (ms) of ``config``.

        Raises:
            ValueError: if the device is unbound, or ``config`` uses a bit-width the
                SKU lacks or is not a point of the bound space.
        """
        self.check(config)
        x = self._bound().encode(config)
        true = self.true_latency_ms(x[None])[0]
        rng = np.random.default_rng(
            np.random.SeedSequence(
                self._seed.entropy, spawn_key=(*self._seed.spawn_key, int(config.digest, 16))
            )
        )
        noisy = true * np.exp(self.noise * rng.standard_normal(self.samples))
        return Measurement(self.device_id, tuple(noisy.tolist()))

    def _bound(self) -> SearchSpace:
        if self.space is None:
            raise ValueError(f"device {self.device_id!r} is not bound; call bind(space) first")
        return self.space
