"""NAS-Bench-201 cells on a fleet of four real edge devices, replayed from recorded data.

The search picks one of 15,625 NB201 cells (6 edges x 5 ops, see
:mod:`moo_compress.nb201`). Accuracy is REAL: the recorded CIFAR-10 validation accuracy
after 200 epochs (the test accuracy is kept for reporting). Latency is the recorded
batch-1 latency of four devices of ``latency_help_ms.csv``, each its own cluster of equal
weight, replayed by :class:`~moo_compress.devices.replay.ReplayDevice`:

* ``samsung_s7``: a phone CPU (logged in whole ms);
* ``raspi4``: an edge CPU;
* ``eyeriss``: an ASIC accelerator (simulated by HW-NAS-Bench);
* ``fpga``: an FPGA accelerator.

One device of each kind: the other phones and ``pixel3`` rank cells much like these
(Spearman 0.83-0.97 with ``samsung_s7`` or ``raspi4``), while ``eyeriss`` ranks them
differently (0.52 with ``samsung_s7``), so the fleet average and the worst cluster
disagree. Four clusters also leave room in the default budget of 200 measurements: the
initial design and the final front take about 112 of them.

The data is read from ``$MOO_COMPRESS_NB201``, else ``../shared/data/nb201`` next to the
repository (see :func:`moo_compress.nb201.data_dir`).
"""

from __future__ import annotations

import numpy as np

from moo_compress.devices.replay import ReplayDevice
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.nb201 import (
    OPS,
    NB201Data,
    NB201Space,
    RecordedAccuracy,
    all_cells,
    macs,
)
from moo_compress.problem import FleetProblem

DEVICES = ("samsung_s7", "raspi4", "eyeriss", "fpga")
NOMINAL = "pixel2"
"""The one device a team would tune for on its own (a phone outside the fleet); the
comparison's ``nominal`` method and ``oneproxy``'s proxy."""


class NB201Fleet(FleetProblem):
    name = "nb201_fleet"
    devices: tuple[str, ...] = DEVICES
    budget = 200
    pop_size = 32
    generations = 20

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.space = NB201Space()
        self.recorded = NB201Data.load()  # not self.data: pymoo's Problem owns that name
        clusters = FleetClusters.build([self._replay(d) for d in self.devices], self.space)
        super().__init__(self.space, clusters, RecordedAccuracy(self.recorded, self.space))

    def _replay(self, device: str) -> ReplayDevice:
        """A device replaying the recorded latency column ``device`` for every cell."""
        cells = self.enumerate()
        keys = [self.space.decode(x).to_json() for x in cells]
        latency = self.recorded.latency_ms(device, cells)
        return ReplayDevice(device, dict(zip(keys, latency, strict=True)))

    def enumerate(self) -> np.ndarray:
        """(15625, 6) every cell: the space is small enough for an exact front."""
        return all_cells()

    def nominal_device(self) -> ReplayDevice:
        """The replayed :data:`NOMINAL` device (bound to the space)."""
        device = self._replay(NOMINAL)
        device.bind(self.space)
        return device

    def features(self, X: np.ndarray) -> np.ndarray:
        """(N, 6) how many edges carry each op (5 columns, :data:`OPS` order) and the
        log of the network's MACs.

        Chosen over the 30 one-hot columns: with a GP fitted on 30 random cells per
        device, Spearman on the other cells averaged 0.88 over samsung_s7, raspi4,
        eyeriss, fpga and pixel2, against 0.62 for one-hot.
        """
        X = self.space.check(X)
        counts = (X[:, :, None] == np.arange(len(OPS))).sum(axis=1)
        return np.column_stack([counts, np.log(macs(X))]).astype(float)

    def baseline(self) -> np.ndarray:
        """(6,) the all-``nor_conv_3x3`` cell: the largest network (220 MMACs)."""
        return np.full(self.space.n_var, OPS.index("nor_conv_3x3"))

    def anchors(self) -> np.ndarray:
        """(2, 6) the all-3x3 and the all-1x1 cells, the two ends of the convolutions."""
        return np.stack([self.baseline(), np.full(self.space.n_var, OPS.index("nor_conv_1x1"))])

    def cost_columns(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """``macs``: (N,) int64 analytic MACs (see :func:`moo_compress.nb201.macs`)."""
        return {"macs": macs(self.space.check(X))}
