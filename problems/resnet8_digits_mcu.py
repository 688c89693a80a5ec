"""Joint pruning + mixed precision of ResNet-8 for a field-aged fleet of 200 MPIC RISC-V MCUs.

The MLPerf-Tiny ResNet-8, trained on the scikit-learn digits (8x8 images, no download,
see :mod:`moo_compress.resnet8`; trained once in a few seconds and cached), gets one
pruning ratio per prunable unit and one bit-width per layer from MPIC's 2 / 4 / 8 bits.
Accuracy is REAL: top-1 on the 360 validation images, evaluated for every candidate.
"""

from __future__ import annotations

import torch

from moo_compress.accuracy import DigitsEvaluator
from moo_compress.devices.skus import get_sku
from moo_compress.fleet import Fleet
from moo_compress.problem import FleetCompressionProblem
from moo_compress.resnet8 import load_or_train_resnet8


class ResNet8DigitsMCU(FleetCompressionProblem):
    name = "resnet8_digits_mcu"
    space_options = {"bit_widths": (2, 4, 8), "channel_multiple": 4}
    budget = 200
    pop_size = 24
    generations = 12

    def build_model(self):
        return load_or_train_resnet8(seed=self.seed), torch.zeros(1, 1, 8, 8)

    def build_fleet(self):
        return Fleet.field_aged(get_sku("mpic-riscv"), n=200, seed=self.seed)

    def build_accuracy(self, model, example_input):
        return DigitsEvaluator(model, seed=self.seed)
