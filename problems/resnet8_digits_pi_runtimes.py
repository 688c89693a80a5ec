"""Joint pruning + int8/fp32 precision of ResNet-8 for Raspberry Pi 4 units on three runtimes.

Software-stack drift: 300 identical Raspberry Pi 4 boards (Cortex-A72) whose images were
built at different times, so they run the model on different inference runtimes
(:meth:`Fleet.mixed` of runtime variants of one SKU, see
:mod:`moo_compress.devices.skus`):

* 50 %: an up-to-date TensorFlow Lite with XNNPACK (:data:`CORTEX_A72`): int8 about
  2x faster than fp32;
* 25 %: Arm NN (:data:`CORTEX_A72_ARMNN`): Winograd makes fp32 3x3 convolutions about as
  fast as int8 ones, so quantising them pays off little;
* 25 %: an old TensorFlow Lite build without XNNPACK (:data:`CORTEX_A72_TFLITE_LEGACY`):
  fp32 is 3x slower, so every fp32 layer left costs 4-5x its int8 time.

Keeping a sensitive layer in fp32 is cheap on some units and dear on others. The
clusters do rank configurations differently (Spearman 0.73 against the nominal device
over 2,000 random configurations, seed 0), yet by the diagnostics
(``python -m benchmarks.fleet_diagnostics``) this problem is a CONTROL: int8 costs the
digits model no accuracy, so at every floor the front is int8 throughout and the
runtimes only rescale its pruning choices; tuning for one unit loses nothing (regret
1.000 at seed 0).

Accuracy is REAL: the digits ResNet-8 of ``resnet8_digits_mcu.py`` (trained once and
cached), top-1 on the 360 validation digits at their 8x8 size. Latency is taken at the
DEPLOYED input size, 32x32 (the MLPerf-Tiny ResNet-8 input; the camera pipeline upsamples):
the network is fully convolutional, so the same weights run at both sizes.

Nominal device: an up-to-date (XNNPACK) unit, as on the team's desk: the fleet's reference SKU
(its first part), undrifted, which is what the benchmark's default nominal device is.

Budget: 120 latency measurements, 40 per cluster (one cluster per runtime).
"""

from __future__ import annotations

import torch

from moo_compress.accuracy import DigitsEvaluator
from moo_compress.devices.skus import get_sku
from moo_compress.fleet import Fleet, FleetPart
from moo_compress.problem import FleetCompressionProblem
from moo_compress.resnet8 import load_or_train_resnet8

DEPLOYED_INPUT = (1, 1, 32, 32)
"""Input shape whose latency is modelled (accuracy is scored on 8x8 digits)."""


class ResNet8DigitsPiRuntimes(FleetCompressionProblem):
    name = "resnet8_digits_pi_runtimes"
    space_options = {"bit_widths": (8, 32), "channel_multiple": 4}
    budget = 120
    pop_size = 24
    generations = 12

    def build_model(self):
        return load_or_train_resnet8(seed=self.seed), torch.zeros(DEPLOYED_INPUT)

    def build_fleet(self):
        parts = [
            FleetPart(get_sku("cortex-a72"), 0.50),
            FleetPart(get_sku("cortex-a72-armnn"), 0.25),
            FleetPart(get_sku("cortex-a72-tflite-legacy"), 0.25),
        ]
        return Fleet.mixed(parts, n=300, seed=self.seed)

    def build_accuracy(self, model, example_input):
        return DigitsEvaluator(model, seed=self.seed)
