"""The HDAP setting: ResNet50 for a field-aged fleet of 500 Jetson Xavier NX units.

HDAP (hardware-aware pruning for homogeneous device fleets) clusters the fleet, keeps
one pruning gene per bottleneck (16 for ResNet50) and predicts latency per cluster.
Here each bottleneck gets a pruning ratio and every layer a bit-width the Jetson runs
(int8, fp16, fp32).

Accuracy:

* Real ImageNet top-1 accuracy when both environment variables are set:
  ``MOO_COMPRESS_RESNET50_WEIGHTS`` (torchvision's ``resnet50-*.pth`` state-dict file)
  and ``MOO_COMPRESS_IMAGENET_VAL`` (the validation folder, one sub-folder per class).
  ``--finetune-steps`` then needs ``MOO_COMPRESS_IMAGENET_TRAIN`` (the training folder,
  same layout); without it the fine-tune is skipped.
* Otherwise FIDELITY to the uncompressed model on generated inputs, and every output
  says so: to the pretrained model when only ``MOO_COMPRESS_RESNET50_WEIGHTS`` is set, to
  a randomly initialised one when neither is. With random weights any pruning scrambles
  the input-dependent part of the logits, so fidelity barely separates configurations:
  the front is then essentially a latency front.
* ``MOO_COMPRESS_IMAGENET_VAL`` without ``MOO_COMPRESS_RESNET50_WEIGHTS`` is refused
  (ImageNet accuracy of random weights measures nothing).
"""

from __future__ import annotations

import os

import torch
import torchvision

from moo_compress.accuracy import FidelityEvaluator, ImageFolderEvaluator
from moo_compress.devices.skus import get_sku
from moo_compress.fleet import Fleet
from moo_compress.problem import FleetCompressionProblem
from moo_compress.weights import load_weights_file

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
        if IMAGENET_VAL and not WEIGHTS:
            raise ValueError(
                "MOO_COMPRESS_IMAGENET_VAL is set but MOO_COMPRESS_RESNET50_WEIGHTS is not: "
                "ImageNet accuracy of random weights measures nothing; set both, or neither"
            )
        model = torchvision.models.resnet50()
        if WEIGHTS:
            load_weights_file(model, WEIGHTS)
        return model, torch.randn(1, 3, 224, 224)

    def build_fleet(self):
        return Fleet.field_aged(get_sku("jetson-xavier-nx"), n=500, seed=self.seed)

    def build_accuracy(self, model, example_input):
        if WEIGHTS and IMAGENET_VAL:
            return ImageFolderEvaluator(
                model, IMAGENET_VAL, seed=self.seed, train_folder=IMAGENET_TRAIN
            )
        # 4 scored + 4 calibration images at 224x224 keep one evaluation near 3 s on 2 cores.
        shape = tuple(example_input.shape)
        return FidelityEvaluator(model, shape, n_inputs=4, n_calibration=4, seed=self.seed)
