"""A large fleet built from recorded latency tables: many drifted units per recorded device.

A recorded table (e.g. NAS-Bench-201's, :mod:`moo_compress.nb201`) gives one latency per
configuration for each of a few device models. A deployed fleet has hundreds of units of
each, and they drift apart in the field as the simulated fleets do
(:mod:`moo_compress.fleet`). Unit ``d`` of recorded device ``r`` runs configuration ``x``
in::

    t[x, d] = overhead[d] * f + (t_r[x] - f) / compute[d],   f = min(m_r, t_r[x])

* ``t_r[x]``: the recorded latency (ms); ``m_r``: the recorded device's fixed part
  (framework dispatch, input copy and the layers every configuration shares), given by
  the caller, e.g. its smallest plausible recorded latency. Assumption: that part scales
  with the host's load (``overhead``), the rest with the clock the unit's thermal state
  allows (``compute``). A recording below ``m_r`` (a defect of the data, e.g. NB201's
  values under 0.1 ms) is taken as all fixed part, so no latency turns negative.
* ``compute``, ``overhead``: drift factors drawn from the unit's :class:`DriftProfile`
  (``bandwidth`` is not used: a recorded latency cannot be split into compute and memory
  time); ``noise``: log-normal sigma of one measurement.

So units of one recorded device rank configurations almost alike (throttling favours
configurations with a larger fixed share, a busy host the others), while units of
different recorded devices rank them as differently as the recordings do. Clustering
has to find both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from moo_compress.device import Device
from moo_compress.fleet import DriftProfile, Fleet
from moo_compress.measurement import Measurement

if TYPE_CHECKING:
    from moo_compress.config import CompressionConfig

RECORDED_AGED = (
    DriftProfile("cool-idle", 0.50, 1.00, 1.0, 1.00, 0.03, 0.0, 0.05, noise=0.02),
    DriftProfile("throttled", 0.30, 0.60, 1.0, 1.30, 0.08, 0.0, 0.08, noise=0.05),
    DriftProfile("busy-host", 0.20, 0.95, 1.0, 1.80, 0.03, 0.0, 0.15, noise=0.06),
)
"""Units after months in the field, as :data:`moo_compress.fleet.FIELD_AGED` motivates
them: idle units (factory spread), thermally throttled ones (clock about 0.6, noisier)
and units whose host runs other apps (fixed part x1.8, widely spread, noisiest)."""

LatencyTable = Callable[[np.ndarray], np.ndarray]
"""(N, n_var) population -> (N, R) recorded latency in ms on each recorded device."""


class RecordedFleet(Fleet):
    """``units`` drifted units of each recorded device.

    Args:
        table: The recorded latencies of the devices (see :data:`LatencyTable`).
        names: (R,) names of the recorded devices.
        fixed_ms: (R,) each recorded device's fixed part ``m_r`` (ms).
        probes: (P, n_var) configurations clustering measures every unit on, and names.
        supported_bits: Bit-widths of the recorded configurations.
        units: Units per recorded device; ``D = R * units``.
        mixture: The usage profiles the units draw their drift from.
        seed: Seed of every random draw.

    Attributes:
        recorded_index: (D,) index into ``names`` of each unit's recorded device.
        (and :class:`Fleet`'s ``compute``, ``overhead``, ``noise``, ``profiles``.)
    """

    def __init__(
        self,
        table: LatencyTable,
        names: Sequence[str],
        fixed_ms: np.ndarray,
        probes: tuple[np.ndarray, tuple[str, ...]],
        supported_bits: frozenset[int],
        units: int,
        mixture: Sequence[DriftProfile] = RECORDED_AGED,
        seed: int = 0,
    ) -> None:
        self.names = tuple(names)
        self.fixed_ms = np.asarray(fixed_ms, dtype=float)
        if units < 1 or len(self.fixed_ms) != len(self.names) or not mixture:
            raise ValueError(
                f"need units >= 1, one fixed_ms per recorded device and a mixture; got "
                f"units={units}, {len(self.fixed_ms)} fixed_ms for {len(self.names)} devices"
            )
        self.table = table
        self.supported_bits = frozenset(supported_bits)
        self._probes = probes
        self.recorded_index = np.repeat(np.arange(len(self.names)), units)
        self.skus = ()
        self.sku = None
        self.seed = seed
        self.space = None
        self.mixture = tuple(mixture)
        n = len(self.recorded_index)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
        weights = np.array([p.weight for p in self.mixture], dtype=float)
        self.profile_index = rng.choice(len(self.mixture), size=n, p=weights / weights.sum())
        self.profiles = np.array(
            [
                f"{self.names[r]}/{self.mixture[p].name}"
                for r, p in zip(self.recorded_index, self.profile_index, strict=True)
            ]
        )

        def draw(median: str, sd: str) -> np.ndarray:
            med = np.array([getattr(p, median) for p in self.mixture])[self.profile_index]
            sig = np.array([getattr(p, sd) for p in self.mixture])[self.profile_index]
            return med * np.exp(sig * rng.standard_normal(n))

        self.compute = draw("compute", "compute_sd")
        self.overhead = draw("overhead", "overhead_sd")
        self.bandwidth = np.ones(n)
        self.noise = np.array([p.noise for p in self.mixture])[self.profile_index]
        self._measure_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))

    def bind(self, space) -> None:
        """Tell the fleet which decision space its configurations belong to.

        Raises:
            ValueError: if the space offers a bit-width the recordings lack.
        """
        unsupported = sorted(set(space.bit_widths) - self.supported_bits)
        if unsupported:
            raise ValueError(
                f"the recorded devices do not support bit-width(s) {unsupported}; "
                f"allowed: {sorted(self.supported_bits)}"
            )
        self.space = space

    def probes(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """The probe configurations given at construction, and their names."""
        return self._probes

    def device(self, i: int) -> RecordedUnit:
        """Unit ``i`` as a :class:`RecordedUnit` (bound if the fleet is)."""
        unit = RecordedUnit(self, int(self._index(i)[0]))
        if self.space is not None:
            unit.bind(self.space)
        return unit

    def true_latency_ms(self, X: np.ndarray, device_idx: np.ndarray | None = None) -> np.ndarray:
        """(N, D') noiseless latency in ms of a population (N, n_var) on the units
        ``device_idx`` (default: all D). For evaluation only, never for an optimiser."""
        idx = self._index(device_idx)
        recorded = np.asarray(self.table(np.atleast_2d(X)), dtype=float)  # (N, R)
        r = self.recorded_index[idx]
        fixed = np.minimum(self.fixed_ms[r], recorded[:, r])
        return self.overhead[idx] * fixed + (recorded[:, r] - fixed) / self.compute[idx]


class RecordedUnit(Device):
    """One unit of a :class:`RecordedFleet`: its drifted recorded latency, plus noise.

    Each of ``samples`` samples is ``true * exp(noise * z)``; the generator is seeded by
    the fleet's seed, the unit's index and the configuration's JSON, so a measurement does
    not depend on what was measured before it.
    """

    def __init__(self, fleet: RecordedFleet, index: int, samples: int = 5) -> None:
        recorded = fleet.names[fleet.recorded_index[index]]
        super().__init__(f"{recorded}-{index:05d}", fleet.supported_bits)
        self.fleet = fleet
        self.index = index
        self.samples = samples

    def true_latency_ms(self, X: np.ndarray) -> np.ndarray:
        """(N,) noiseless latency in ms of a population (N, n_var). For evaluation only."""
        return self.fleet.true_latency_ms(X, np.array([self.index]))[:, 0]

    def measure(self, config: CompressionConfig) -> Measurement:
        """``samples`` noisy latencies (ms) of ``config``."""
        self.check(config)
        if self.space is None:
            raise ValueError(f"device {self.device_id!r} is not bound; call bind(space) first")
        true = self.true_latency_ms(self.space.encode(config)[None])[0]
        digest = int(hashlib.sha256(config.to_json().encode()).hexdigest()[:16], 16)
        seed = np.random.SeedSequence(self.fleet.seed, spawn_key=(2, self.index, digest))
        z = np.random.default_rng(seed).standard_normal(self.samples)
        noise = self.fleet.noise[self.index]
        return Measurement(self.device_id, tuple((true * np.exp(noise * z)).tolist()))
