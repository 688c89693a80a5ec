"""Joint pruning + mixed precision of ResNet-8 for a fleet of two MCU hardware revisions.

The digits ResNet-8 of ``resnet8_digits_mcu.py`` (accuracy REAL: top-1 on the 360
validation digits, evaluated for every candidate; 8x8 inputs, as deployed) on 200 units
of one RISC-V MCU board in two hardware revisions (:meth:`Fleet.mixed`):

* 40 %: the new revision with the MPIC core (2 / 4 / 8-bit SIMD dot products): sub-byte
  layers run 1.7-2.7x faster than 8-bit ones;
* 60 %: the installed base with the RI5CY core MPIC extends, without sub-byte SIMD:
  sub-byte operands are unpacked in software, so 4- and 2-bit layers run SLOWER than
  8-bit ones (see :data:`moo_compress.devices.skus.RI5CY_RISCV` for the sources).

Quantising below 8 bits pays off on one revision and costs on the other, while pruning
pays off on both: quantised and pruned configurations rank differently. Both revisions
keep their factory spread (fixed clocks; no thermal drift on these MCUs).

Nominal device: an MPIC unit, the new board on the team's desk: the fleet's reference SKU
(its first part), undrifted, which is what the benchmark's default nominal device is.

Budget: 100 latency measurements, 50 per cluster (one cluster per revision).
"""

from __future__ import annotations

import torch

from moo_compress.accuracy import DigitsEvaluator
from moo_compress.devices.skus import get_sku
from moo_compress.fleet import Fleet, FleetPart
from moo_compress.problem import FleetCompressionProblem
from moo_compress.resnet8 import load_or_train_resnet8


class ResNet8DigitsMixedMCU(FleetCompressionProblem):
    name = "resnet8_digits_mixed_mcu"
    space_options = {"bit_widths": (2, 4, 8), "channel_multiple": 4}
    budget = 100
    pop_size = 24
    generations = 12

    def build_model(self):
        return load_or_train_resnet8(seed=self.seed), torch.zeros(1, 1, 8, 8)

    def build_fleet(self):
        parts = [FleetPart(get_sku("mpic-riscv"), 0.4), FleetPart(get_sku("ri5cy-riscv"), 0.6)]
        return Fleet.mixed(parts, n=200, seed=self.seed)

    def build_accuracy(self, model, example_input):
        return DigitsEvaluator(model, seed=self.seed)
