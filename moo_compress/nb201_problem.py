"""NAS-Bench-201 cells on a fleet of recorded devices: the base of the NB201 problems.

The search picks one of 15,625 NB201 cells (6 edges x 5 ops, see
:mod:`moo_compress.nb201`). Accuracy is REAL: the recorded CIFAR-10 validation accuracy
after 200 epochs (the test accuracy is kept for reporting). Latency is recorded batch-1
latency of devices of ``latency_help_ms.csv`` (every cell recorded, so the exact front
can be enumerated).

Subclass it and set ``devices`` (one cluster of equal weight per recorded device,
replayed by :class:`~moo_compress.devices.replay.ReplayDevice`) and ``nominal`` (the one
device a team would tune for on its own), or override :meth:`NB201Problem.build_fleet`
to return a :class:`~moo_compress.recorded_fleet.RecordedFleet` of many drifted units.

The data is read from ``$MOO_COMPRESS_NB201``, else ``../shared/data/nb201`` next to the
repository (see :func:`moo_compress.nb201.data_dir`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from moo_compress.device import Device
from moo_compress.devices.replay import ReplayDevice
from moo_compress.fleet import Fleet
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.nb201 import (
    OPS,
    NB201Cell,
    NB201Data,
    NB201Space,
    RecordedAccuracy,
    all_cells,
    codes,
    live_edges,
    live_macs,
    macs,
)
from moo_compress.problem import FleetProblem
from moo_compress.recorded_fleet import RecordedFleet

PROBES = {
    "all-3x3": (3, 3, 3, 3, 3, 3),
    "all-1x1": (2, 2, 2, 2, 2, 2),
    "all-skip": (1, 1, 1, 1, 1, 1),
    "all-pool": (4, 4, 4, 4, 4, 4),
    "3x3-chain": (3, 0, 3, 0, 0, 3),
    "mixed": (3, 2, 4, 1, 3, 2),
}
"""Probe cells of a recorded fleet: convolution-heavy, light, memory-bound (pooling),
a deep chain of convolutions and a mixed cell."""


PLAUSIBLE_MS = 0.1
"""Recorded latencies below this are a known defect of the data (``pixel3`` and ``raspi4``
have some, see the data's README): they are replayed as recorded, but a recorded fleet's
fixed part is the smallest latency at or above it."""


class _CellTable(Mapping[str, float]):
    """A recorded column (15625,) seen as ``cell JSON -> ms``, what
    :class:`ReplayDevice` looks measurements up in, without building 15,625 keys."""

    def __init__(self, column: np.ndarray) -> None:
        self.column = column

    def __getitem__(self, key: str) -> float:
        try:
            cell = NB201Cell.from_json(key)
        except ValueError:
            raise KeyError(key) from None
        return float(self.column[codes(_SPACE.encode(cell)[None])[0]])

    def __iter__(self) -> Iterator[str]:
        return (_SPACE.decode(x).to_json() for x in all_cells())

    def __len__(self) -> int:
        return len(self.column)


_SPACE = NB201Space()


class CellReplayDevice(ReplayDevice):
    """A replayed NB201 device whose true latency is one vectorised table look-up.

    Measurements are :class:`ReplayDevice`'s (one sample, the recorded value; a missing
    value raises); :meth:`true_latency_ms` indexes the recorded (15625,) column by cell
    code instead of decoding every row.
    """

    def __init__(self, device_id: str, column: np.ndarray) -> None:
        self.column = np.asarray(column, dtype=float)
        super().__init__(device_id, _CellTable(self.column))

    def true_latency_ms(self, X: np.ndarray) -> np.ndarray:
        """(N,) recorded latency in ms of an (N, 6) population.

        Raises:
            ValueError: unbound, or a cell without a recorded value (see
                :meth:`ReplayDevice.lookup`).
        """
        if self.space is None:
            raise ValueError(f"device {self.device_id!r} is not bound to a search space")
        X = self.space.check(X)
        values = self.column[codes(X)]
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if len(bad):
            self.lookup(self.space.decode(X[bad[0]]).to_json())  # raises, naming the cell
        return values


class NB201Problem(FleetProblem):
    """NB201 cells on recorded devices. Subclasses set ``name``, ``devices``, ``nominal``."""

    name = "nb201"
    devices: tuple[str, ...] = ()
    nominal: str = "pixel2"
    budget = 200
    pop_size = 32
    generations = 20

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.space = NB201Space()
        self.recorded = NB201Data.load()  # not self.data: pymoo's Problem owns that name
        clusters = FleetClusters.build(self.build_fleet(), self.space, seed)
        super().__init__(self.space, clusters, RecordedAccuracy(self.recorded, self.space))

    def build_fleet(self) -> Fleet | Sequence[Device]:
        """One replayed device per entry of ``devices``, each its own cluster."""
        return [self._replay(d) for d in self.devices]

    def recorded_fleet(self, units: int) -> RecordedFleet:
        """``units`` drifted units of each of ``devices`` (see
        :mod:`moo_compress.recorded_fleet`), clustered like a simulated fleet. A device's
        fixed part is its smallest plausible recorded latency (:data:`PLAUSIBLE_MS`)."""
        table = self.recorded.latency[list(self.devices)].to_numpy()  # (15625, R)
        cells = np.array(list(PROBES.values()))
        return RecordedFleet(
            table=lambda X: table[codes(self.space.check(X))],
            names=self.devices,
            fixed_ms=np.array([c[c >= PLAUSIBLE_MS].min() for c in table.T]),
            probes=(cells, tuple(PROBES)),
            supported_bits=frozenset(self.space.bit_widths),
            units=units,
            seed=self.seed,
        )

    def _replay(self, device: str) -> CellReplayDevice:
        """A device replaying the recorded latency column ``device`` for every cell."""
        return CellReplayDevice(device, self.recorded.latency_ms(device, all_cells()))

    def enumerate(self) -> np.ndarray:
        """(15625, 6) every cell: the space is small enough for an exact front."""
        return all_cells()

    def nominal_device(self) -> ReplayDevice:
        """The replayed ``nominal`` device (bound to the space)."""
        device = self._replay(self.nominal)
        device.bind(self.space)
        return device

    def features(self, X: np.ndarray) -> np.ndarray:
        """(N, 8) how many edges carry each op (5 columns, :data:`OPS` order), the log of
        the network's MACs, the log of its MACs on :func:`~moo_compress.nb201.live_edges`
        only, and the number of live edges.

        Op counts were chosen over the 30 one-hot columns: with a GP fitted on 30 random
        cells per device, Spearman on the other cells averaged 0.88 over samsung_s7,
        raspi4, eyeriss, fpga and pixel2, against 0.62 for one-hot. Op counts alone alias
        cells whose ops sit on dead edges, which some runtimes drop: the cells of equal
        op counts and MACs leave 36 % of the variance of raspi4's recorded log latency
        unexplained and 29 % of pixel3's; with the two live columns, 13 % and 14 %
        (samsung_s7, samsung_a50, essential_ph_1: at most 0.5 points less).
        """
        X = self.space.check(X)
        counts = (X[:, :, None] == np.arange(len(OPS))).sum(axis=1)
        live = live_edges(X).sum(axis=1)
        return np.column_stack([counts, np.log(macs(X)), np.log(live_macs(X)), live]).astype(float)

    def baseline(self) -> np.ndarray:
        """(6,) the all-``nor_conv_3x3`` cell: the largest network (220 MMACs)."""
        return np.full(self.space.n_var, OPS.index("nor_conv_3x3"))

    def anchors(self) -> np.ndarray:
        """(3, 6) the all-3x3 and the all-1x1 cells, the two ends of the convolutions,
        and the all-skip cell, which computes nothing: the fast end of the space.

        Without the fast end, a GP fitted on random cells reverts to its cluster mean far
        from its data: on nb201_large seed 1001 the cells of mostly skip and none edges
        (4.6-5.3 ms on the fleet average) were predicted at 22-24 ms, NSGA-II never
        evaluated them, and the front missed its fastest region (HV fraction 0.909).
        """
        return np.stack(
            [
                self.baseline(),
                np.full(self.space.n_var, OPS.index("nor_conv_1x1")),
                np.full(self.space.n_var, OPS.index("skip_connect")),
            ]
        )

    def cost_columns(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """``macs``: (N,) int64 analytic MACs (see :func:`moo_compress.nb201.macs`)."""
        return {"macs": macs(self.space.check(X))}
