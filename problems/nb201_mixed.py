"""NAS-Bench-201 cells on a mixed fleet of accelerators and CPUs, replayed.

One network served across a heterogeneous deployment: two edge accelerators, an edge
CPU, a server CPU and a server GPU, each its own cluster of equal weight (see
:mod:`moo_compress.nb201_problem`; accuracy is REAL, the recorded CIFAR-10 validation
accuracy):

* ``eyeriss``: an ASIC accelerator (simulated by HW-NAS-Bench);
* ``fpga``: an FPGA accelerator (HW-NAS-Bench);
* ``raspi4``: an edge CPU (HW-NAS-Bench);
* ``gold_6226``: a Xeon Gold server CPU (HELP);
* ``1080ti_1``: a GTX 1080 Ti server GPU at batch 1 (HELP).

Nominal device: ``titanxp_1``, the workstation GPU a team would time candidates on
(batch 1), not in the fleet.
"""

from __future__ import annotations

from moo_compress.nb201_problem import NB201Problem


class NB201Mixed(NB201Problem):
    name = "nb201_mixed"
    devices = ("eyeriss", "fpga", "raspi4", "gold_6226", "1080ti_1")
    nominal = "titanxp_1"
