"""ResNet50 for a mixed Jetson fleet: Xavier NX and Nano units in their power modes.

HDAP's own evaluation fleet mixed Xavier NX and Nano units. Here 500 units
(:meth:`Fleet.mixed`):

* 60 % Jetson Xavier NX (Volta tensor cores, int8 twice the fp16 rate, 51.2 GB/s) in the
  10 W / 15 W / 20 W power modes (:data:`moo_compress.fleet.XAVIER_NX_POWER_MODES`);
* 40 % Jetson Nano (Maxwell, no tensor cores and no int8 fast path: int8 layers run as
  fp16; 25.6 GB/s) in the 5 W / MAXN modes (:data:`moo_compress.fleet.NANO_POWER_MODES`,
  the 5 W mode cuts the GPU clock but not the memory clock).

On the Xavier NX quantising to int8 is the cheapest speed-up; on the Nano it buys
nothing, and only pruning (fewer MACs) helps. Model, search space and accuracy
(ImageNet when configured, else FIDELITY to the random-weight model, which every output
says) are those of ``resnet50_hdap.py``, whose field-aged single-SKU fleet stays the
control.

Nominal device: a Xavier NX at 15 W, the flagship a single-device team tunes for: the
fleet's reference SKU (its first part), undrifted, which is what the benchmark's default
nominal device is.

Budget: 200 latency measurements, 50 per cluster at the 4 clusters of seed 0.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from moo_compress.devices.skus import get_sku
from moo_compress.fleet import NANO_POWER_MODES, XAVIER_NX_POWER_MODES, Fleet, FleetPart

_spec = importlib.util.spec_from_file_location(
    "resnet50_hdap", Path(__file__).with_name("resnet50_hdap.py")
)
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


class ResNet50JetsonMixed(_base.ResNet50HDAP):
    name = "resnet50_jetson_mixed"
    budget = 200

    def build_fleet(self):
        parts = [
            FleetPart(get_sku("jetson-xavier-nx"), 0.6, XAVIER_NX_POWER_MODES),
            FleetPart(get_sku("jetson-nano"), 0.4, NANO_POWER_MODES),
        ]
        return Fleet.mixed(parts, n=500, seed=self.seed)
