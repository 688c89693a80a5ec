"""A fleet of simulated units whose drift factors come from usage profiles.

A fleet is one SKU (:class:`Fleet`), or a mix of SKUs of one product line
(:meth:`Fleet.mixed`): hardware revisions, runtime versions or power modes, each a
:class:`FleetPart` with its own share of the units and its own profiles.

Each device ``d`` has three drift factors (``compute``, ``bandwidth``, ``overhead``; see
:mod:`moo_compress.devices.sku`) and a measurement-noise sigma, drawn from the
:class:`DriftProfile` it was assigned to. Profiles are mixed by weight; everything is
reproducible from the fleet's seed.

The profile numbers are motivated by a Jetson Xavier NX in the field; the other SKUs
reuse them as generic "how far a unit drifts" figures:

* ``cool-idle``: a unit as shipped, idle otherwise. Factory spread only.
* ``thermally-throttled``: passively cooled units in warm enclosures (dust, ageing
  thermal paste) whose GPU clock is stepped down by the thermal governor to about
  half of 1.1 GHz; the memory controller is throttled less (0.9) and the CPU that
  launches kernels more (overhead x1.3). Clocks move during a measurement: noise 5 %.
* ``memory-contended``: camera / ISP / encoder pipelines and CPU apps share the
  LPDDR4x, leaving about half of the bandwidth (0.45, widely spread) and slowing
  compute a little through cache contention (0.95); busy CPU: overhead x1.2; noise 6 %.
* ``battery-saver``: the 10 W nvpmodel mode (GPU 800 vs 1100 MHz = 0.73; EMC 1600 vs
  1866 MHz = 0.86; fewer, slower CPU cores: overhead x1.6, an assumption). Fixed
  clocks: little spread.

The factory-fresh fleet has one profile with a few % log-normal spread per factor,
which gives a ~10 % 5-95 % latency spread on the unpruned model, as HDAP observed over
10 Xavier NX units. The field-aged fleet spans up to ~2x (throttled vs idle) and its
profiles rank configurations differently (compute- vs memory-bound ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from moo_compress.clustering import probe_set
from moo_compress.devices.simulated import SimulatedDevice
from moo_compress.devices.sku import SKU

if TYPE_CHECKING:
    from moo_compress.search_space import SearchSpace


@dataclass(frozen=True)
class DriftProfile:
    """A usage profile: median and log-normal sigma of each drift factor.

    A device of this profile draws ``factor = median * exp(sigma * z)``, ``z ~ N(0, 1)``.

    Attributes:
        name: e.g. ``"thermally-throttled"``.
        weight: Relative share of the fleet (normalised over the mixture).
        compute, bandwidth, overhead: Medians of the drift factors.
        compute_sd, bandwidth_sd, overhead_sd: Their log-normal sigmas.
        noise: Log-normal sigma of one latency sample of such a device.
    """

    name: str
    weight: float
    compute: float
    bandwidth: float
    overhead: float
    compute_sd: float
    bandwidth_sd: float
    overhead_sd: float
    noise: float


FACTORY_FRESH = (DriftProfile("factory", 1.0, 1.0, 1.0, 1.0, 0.03, 0.02, 0.05, noise=0.02),)
"""Units straight off the line: silicon / board spread only."""

FIELD_AGED = (
    DriftProfile("cool-idle", 0.40, 1.00, 1.00, 1.0, 0.03, 0.03, 0.05, noise=0.02),
    DriftProfile("thermally-throttled", 0.25, 0.55, 0.90, 1.3, 0.08, 0.04, 0.08, noise=0.05),
    DriftProfile("memory-contended", 0.20, 0.95, 0.45, 1.2, 0.03, 0.10, 0.08, noise=0.06),
    DriftProfile("battery-saver", 0.15, 0.73, 0.86, 1.6, 0.02, 0.02, 0.05, noise=0.03),
)
"""Four usage profiles after months in the field (see the module docstring)."""

XAVIER_NX_POWER_MODES = (
    DriftProfile("15W", 0.50, 1.00, 1.00, 1.00, 0.03, 0.02, 0.05, noise=0.02),
    DriftProfile("10W", 0.30, 0.73, 0.86, 1.60, 0.02, 0.02, 0.05, noise=0.03),
    DriftProfile("20W", 0.20, 1.00, 1.00, 0.85, 0.03, 0.02, 0.05, noise=0.02),
)
"""Xavier NX units left in the nvpmodel power mode their integrator chose.

* ``15W`` (the SKU's reference, GPU 1100 MHz, EMC 1600 MHz): factory spread only.
* ``10W``: GPU capped at about 800 MHz (0.73) and EMC at 0.86 of the 15 W clock, fewer
  and slower CPU cores (overhead x1.6), as ``battery-saver`` above.
* ``20W`` (``MODE_20W_6CORE``, JetPack 4.6+): GPU and EMC as 15 W, all six Carmel cores
  at a higher clock: kernels are launched faster (overhead x0.85, assumption).
"""

NANO_POWER_MODES = (
    DriftProfile("MAXN", 0.60, 1.00, 1.00, 1.00, 0.03, 0.02, 0.05, noise=0.02),
    DriftProfile("5W", 0.40, 0.69, 1.00, 1.60, 0.02, 0.02, 0.05, noise=0.03),
)
"""Jetson Nano units in their two nvpmodel modes (NVIDIA L4T Development Guide, "Power
Management for Jetson Nano and Jetson TX1 Devices", supported modes table):

* ``MAXN`` (10 W, the SKU's reference): 4 CPU cores at 1479 MHz, GPU 921.6 MHz.
* ``5W``: 2 CPU cores at 918 MHz and the GPU capped at 640 MHz (0.69), while the EMC
  keeps its 1600 MHz: the compute-to-bandwidth ratio drops by a third, so
  memory-bound configurations lose less than compute-bound ones. Overhead x1.6:
  assumption (half the cores at 0.62 of the clock launch the kernels).
"""


@dataclass(frozen=True)
class FleetPart:
    """One SKU's share of a mixed fleet.

    Attributes:
        sku: The hardware model (or hardware + runtime version) of these units.
        share: Relative share of the fleet's units (normalised over the parts).
        mixture: The usage profiles these units draw their drift from.
    """

    sku: SKU
    share: float
    mixture: tuple[DriftProfile, ...] = FACTORY_FRESH

    def __post_init__(self) -> None:
        if not (self.share > 0 and self.mixture):
            raise ValueError(
                f"fleet part {self.sku.name!r}: need share > 0 and a non-empty mixture"
            )


class Fleet:
    """``n`` simulated units of one SKU, their drift drawn from a profile mixture.

    Args:
        sku: The hardware model of every unit.
        mixture: The usage profiles to draw from.
        n: Number of devices ``D``.
        seed: Seed of every random draw (drift, measurement noise, device generators).

    Attributes:
        sku: The reference SKU: the only one, or the first part's of a mixed fleet (the
            model a team that tunes for one device would have on its desk).
        skus: (S,) every SKU of the fleet.
        sku_index: (D,) index into ``skus`` of each device's SKU.
        mixture: The profiles (of every part, named ``"<sku>/<profile>"`` in a mixed
            fleet).
        compute, bandwidth, overhead, noise: (D,) drift factors and noise sigmas.
        profile_index: (D,) index into ``mixture`` of each device's profile.
        profiles: (D,) name of each device's profile (ground truth for clustering).
    """

    def __init__(self, sku: SKU, mixture: Sequence[DriftProfile], n: int, seed: int = 0) -> None:
        if not mixture:
            raise ValueError(f"need n >= 1 devices and a non-empty mixture, got n={n}")
        self._draw((FleetPart(sku, 1.0, tuple(mixture)),), n, seed)

    @classmethod
    def mixed(cls, parts: Sequence[FleetPart], n: int, seed: int = 0) -> Fleet:
        """``n`` units of several SKUs, each part's share of them drawing its drift from
        its own profiles. The first part's SKU is the fleet's reference ``sku``.

        Raises:
            ValueError: for no parts, or two parts of the same SKU name.
        """
        names = [part.sku.name for part in parts]
        if not parts or len(set(names)) != len(names):
            raise ValueError(f"a mixed fleet needs parts of distinct SKUs, got {names}")
        fleet = cls.__new__(cls)
        fleet._draw(tuple(parts), n, seed)
        return fleet

    def _draw(self, parts: tuple[FleetPart, ...], n: int, seed: int) -> None:
        if n < 1:
            raise ValueError(f"need n >= 1 devices and a non-empty mixture, got n={n}")
        self.parts = parts
        self.sku = parts[0].sku
        self.skus = tuple(part.sku for part in parts)
        self.seed = seed
        self.space: SearchSpace | None = None
        if len(parts) == 1:
            self.mixture = parts[0].mixture
            weights = np.array([p.weight for p in self.mixture], dtype=float)
        else:
            self.mixture = tuple(
                replace(p, name=f"{part.sku.name}/{p.name}") for part in parts for p in part.mixture
            )
            total = sum(part.share for part in parts)
            weights = np.concatenate(
                [
                    part.share
                    / total
                    * np.array([p.weight for p in part.mixture])
                    / sum(p.weight for p in part.mixture)
                    for part in parts
                ]
            )
        part_of_profile = np.repeat(np.arange(len(parts)), [len(part.mixture) for part in parts])
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
        self.profile_index = rng.choice(len(self.mixture), size=n, p=weights / weights.sum())
        self.sku_index = part_of_profile[self.profile_index]
        self.profiles = np.array([p.name for p in self.mixture])[self.profile_index]

        def draw(median: str, sd: str) -> np.ndarray:
            med = np.array([getattr(p, median) for p in self.mixture])[self.profile_index]
            sig = np.array([getattr(p, sd) for p in self.mixture])[self.profile_index]
            return med * np.exp(sig * rng.standard_normal(n))

        self.compute = draw("compute", "compute_sd")
        self.bandwidth = draw("bandwidth", "bandwidth_sd")
        self.overhead = draw("overhead", "overhead_sd")
        self.noise = np.array([p.noise for p in self.mixture])[self.profile_index]
        self._measure_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))

    # ------------------------------------------------------------------ presets
    @classmethod
    def factory_fresh(cls, sku: SKU, n: int, seed: int = 0) -> Fleet:
        """Units as shipped: ~10 % latency spread, one population."""
        return cls(sku, FACTORY_FRESH, n, seed)

    @classmethod
    def field_aged(cls, sku: SKU, n: int, seed: int = 0) -> Fleet:
        """Units after months in the field: four usage profiles, up to ~2x spread."""
        return cls(sku, FIELD_AGED, n, seed)

    # ------------------------------------------------------------------ devices
    def __len__(self) -> int:
        return len(self.compute)

    def bind(self, space: SearchSpace) -> None:
        """Tell the fleet which search space its configurations belong to.

        Raises:
            ValueError: if the space offers a bit-width the SKU does not support.
        """
        for sku in self.skus:
            unsupported = sorted(set(space.bit_widths) - sku.supported_bits)
            if unsupported:
                raise ValueError(
                    f"SKU {sku.name!r} does not support bit-width(s) {unsupported}; "
                    f"allowed: {sorted(sku.supported_bits)}"
                )
        self.space = space

    def probes(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """The (P, n_var) probe configurations that clustering measures every device on,
        and their names (see :func:`moo_compress.clustering.probe_set`)."""
        return probe_set(self._bound())

    def device(self, i: int) -> SimulatedDevice:
        """Device ``i`` as a :class:`SimulatedDevice` (bound if the fleet is).

        Its own generator is seeded from the fleet's seed and ``i``, so the same
        device always replays the same samples.
        """
        sku = self.skus[self.sku_index[i]]
        device = SimulatedDevice(
            f"{sku.name}-{i:05d}",
            sku,
            compute=float(self.compute[i]),
            bandwidth=float(self.bandwidth[i]),
            overhead=float(self.overhead[i]),
            noise=float(self.noise[i]),
            seed=np.random.SeedSequence(self.seed, spawn_key=(2, i)),
        )
        if self.space is not None:
            device.bind(self.space)
        return device

    # ------------------------------------------------------------------ latency
    def true_latency_ms(self, X: np.ndarray, device_idx: np.ndarray | None = None) -> np.ndarray:
        """(N, D') noiseless latency in ms of a population (N, n_var) on the devices
        ``device_idx`` (default: all D). For evaluation only, never for an optimiser.
        """
        idx = self._index(device_idx)
        layers = self._bound().costs(X).layers
        out = np.empty((len(layers.macs), len(idx)))
        for s, sku in enumerate(self.skus):
            mine = self.sku_index[idx] == s
            if mine.any():
                unit = idx[mine]
                out[:, mine] = sku.latency_matrix(
                    layers, self.compute[unit], self.bandwidth[unit], self.overhead[unit]
                )
        return out

    def measure_matrix(
        self, X: np.ndarray, device_idx: np.ndarray | None = None, repeats: int = 1
    ) -> np.ndarray:
        """(N, D') measured latency in ms: the median of ``repeats`` noisy samples of
        every configuration on every device in ``device_idx`` (default: all).

        Noise is drawn from the fleet's measurement generator (seeded), with each
        device's own sigma.
        """
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        idx = self._index(device_idx)
        true = self.true_latency_ms(X, idx)
        z = self._measure_rng.standard_normal((repeats, *true.shape))
        return np.median(true * np.exp(self.noise[idx] * z), axis=0)

    def _index(self, device_idx: np.ndarray | None) -> np.ndarray:
        if device_idx is None:
            return np.arange(len(self))
        idx = np.atleast_1d(np.asarray(device_idx, dtype=int))
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"device index out of range; allowed 0..{len(self) - 1}")
        return idx

    def _bound(self) -> SearchSpace:
        if self.space is None:
            raise ValueError("fleet is not bound; call bind(space) first")
        return self.space
