"""The HDAP setting: ResNet50 for a field-aged fleet of 500 Jetson Xavier NX units.

HDAP (hardware-aware pruning for homogeneous device fleets) clusters the fleet, keeps
one pruning gene per bottleneck (16 for ResNet50) and predicts latency per cluster.
Here each bottleneck gets a pruning ratio and every layer a bit-width the Jetson runs
(int8, fp16, fp32).

Weights: torchvision's ``ResNet50_Weights.IMAGENET1K_V2`` from the torch hub cache
(``$TORCH_HOME/hub/checkpoints/resnet50-11ad3fa6.pth``, default ``~/.cache/torch``) when
that file is there, or the state-dict file in ``MOO_COMPRESS_RESNET50_WEIGHTS``; nothing is
downloaded. Otherwise random weights. The first line of the run says which.

Accuracy:

* Real ImageNet top-1 accuracy when ``MOO_COMPRESS_IMAGENET_VAL`` names the labelled
  validation folder (one sub-folder per class) and pretrained weights are loaded.
  ``--finetune-steps`` then needs ``MOO_COMPRESS_IMAGENET_TRAIN`` (the training folder,
  same layout); without it the fine-tune is skipped.
* Otherwise FIDELITY to the uncompressed model on generated inputs, and every output
  says so: to the pretrained model when weights are loaded, to a randomly initialised
  one otherwise. With random weights any pruning scrambles the input-dependent part of
  the logits, so fidelity barely separates configurations: the front is then
  essentially a latency front.
* ``MOO_COMPRESS_IMAGENET_VAL`` without pretrained weights is refused (ImageNet
  accuracy of random weights measures nothing).
"""

from __future__ import annotations

import os

import torch
import torchvision

from moo_compress.accuracy import FidelityEvaluator, ImageFolderEvaluator
from moo_compress.devices.skus import get_sku
from moo_compress.fleet import Fleet
from moo_compress.problem import FleetCompressionProblem
from moo_compress.weights import pretrained_weights

WEIGHTS = os.environ.get("MOO_COMPRESS_RESNET50_WEIGHTS")
IMAGENET_VAL = os.environ.get("MOO_COMPRESS_IMAGENET_VAL")
IMAGENET_TRAIN = os.environ.get("MOO_COMPRESS_IMAGENET_TRAIN")


class ResNet50HDAP(FleetCompressionProblem):
    name = "resnet50_hdap"
    space_options = {"granularity": "block", "prune_cross_block": False, "bit_widths": (8, 16, 32)}
    budget = 400
    accuracy_budget = 50
    pop_size = 32
    generations = 15

    def build_model(self):
        model = torchvision.models.resnet50()
        weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V2
        self.pretrained, line = pretrained_weights(model, weights, WEIGHTS)
        if IMAGENET_VAL and not self.pretrained:
            raise ValueError(
                "MOO_COMPRESS_IMAGENET_VAL needs pretrained weights (MOO_COMPRESS_RESNET50_WEIGHTS "
                "or the torch hub cache): accuracy of random weights measures nothing"
            )
        if not IMAGENET_VAL:
            missing = [] if self.pretrained else ["pretrained weights"]
            missing += ["MOO_COMPRESS_IMAGENET_VAL (labelled val folder)"]
            line += f"; real accuracy needs {' and '.join(missing)}"
        print(line)
        return model, torch.randn(1, 3, 224, 224)

    def build_fleet(self):
        return Fleet.field_aged(get_sku("jetson-xavier-nx"), n=500, seed=self.seed)

    def build_accuracy(self, model, example_input):
        if self.pretrained and IMAGENET_VAL:
            return ImageFolderEvaluator(
                model, IMAGENET_VAL, seed=self.seed, train_folder=IMAGENET_TRAIN
            )
        # 4 scored + 4 calibration images at 224x224 keep one evaluation near 3 s on 2 cores.
        shape = tuple(example_input.shape)
        return FidelityEvaluator(model, shape, n_inputs=4, n_calibration=4, seed=self.seed)
