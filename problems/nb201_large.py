"""NAS-Bench-201 cells on a LARGE fleet: 250 drifted units of each of four recorded devices.

1,000 units: 250 each of ``pixel3``, ``raspi4``, ``samsung_a50`` and ``samsung_s7``,
their recorded latencies drifted per unit (thermal throttling, a busy host) and measured
with noise (see :mod:`moo_compress.recorded_fleet`). The fleet is clustered from probe
measurements like a simulated fleet, so the clusters and their representatives are
found, not given. Accuracy is REAL: the recorded CIFAR-10 validation accuracy (see
:mod:`moo_compress.nb201_problem`).

Nominal device: ``pixel2``, the team's test phone, not in the fleet, undrifted.

Budget: 320 measurements. Clustering finds up to 8 clusters (4 devices x 3 usage
profiles, capped at ``k_max`` = 8), and the initial design, the final front and the
reference rows alone need 224 at 8 clusters: 320 leaves 40 per cluster.
"""

from __future__ import annotations

from moo_compress.nb201_problem import NB201Problem


class NB201Large(NB201Problem):
    name = "nb201_large"
    devices = ("pixel3", "raspi4", "samsung_a50", "samsung_s7")
    nominal = "pixel2"
    units_per_device = 250
    budget = 320

    def build_fleet(self):
        return self.recorded_fleet(self.units_per_device)
