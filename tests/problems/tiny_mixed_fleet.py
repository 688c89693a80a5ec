"""A tiny problem for end-to-end tests of a mixed fleet: the tiny CNN of ``tiny_fleet.py``
on 60 Jetson units, Xavier NX and Nano, in their power modes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from moo_compress.devices.skus import get_sku
from moo_compress.fleet import NANO_POWER_MODES, XAVIER_NX_POWER_MODES, Fleet, FleetPart

_spec = importlib.util.spec_from_file_location(
    "tiny_fleet", Path(__file__).with_name("tiny_fleet.py")
)
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


class TinyMixedFleet(_base.TinyFleet):
    name = "tiny_mixed_fleet"
    budget = 120

    def build_fleet(self):
        parts = [
            FleetPart(get_sku("jetson-xavier-nx"), 0.5, XAVIER_NX_POWER_MODES),
            FleetPart(get_sku("jetson-nano"), 0.5, NANO_POWER_MODES),
        ]
        return Fleet.mixed(parts, n=60, seed=self.seed)
