"""NAS-Bench-201 cells on a fleet of four real edge devices, replayed from recorded data.

See :mod:`moo_compress.nb201_problem` for the space, the accuracy (REAL: recorded
CIFAR-10 validation accuracy) and where the data is read from. Four recorded devices,
each its own cluster of equal weight:

* ``samsung_s7``: a phone CPU (logged in whole ms);
* ``raspi4``: an edge CPU;
* ``eyeriss``: an ASIC accelerator (simulated by HW-NAS-Bench);
* ``fpga``: an FPGA accelerator.

One device of each kind: the other phones and ``pixel3`` rank cells much like these
(Spearman 0.83-0.97 with ``samsung_s7`` or ``raspi4``), while ``eyeriss`` ranks them
differently (0.52 with ``samsung_s7``), so the fleet average and the worst cluster
disagree. Four clusters also leave room in the default budget of 200 measurements: the
initial design and the final front take about 112 of them.

Nominal device: ``pixel2``, a phone outside the fleet (the comparison's ``nominal``
method and ``oneproxy``'s proxy).
"""

from __future__ import annotations

from moo_compress.nb201_problem import NB201Problem


class NB201Fleet(NB201Problem):
    name = "nb201_fleet"
    devices = ("samsung_s7", "raspi4", "eyeriss", "fpga")
    nominal = "pixel2"
