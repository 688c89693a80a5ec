"""ResNet18 on this machine's CPU at 1 and 2 threads: two clusters, measured for real.

Every latency is a wall-clock measurement of the physically pruned model, with real
int8 kernels (torch.ao, x86) for layers at 8 bits and float32 for layers at 32 bits.
Accuracy is FIDELITY to the uncompressed model on generated inputs (no labelled data).
"""

from __future__ import annotations

import torch
import torchvision

from moo_compress.devices.local_cpu import LocalCPUDevice
from moo_compress.problem import FleetCompressionProblem


class ResNet18LocalCPU(FleetCompressionProblem):
    name = "resnet18_local_cpu"
    space_options = {"granularity": "block", "bit_widths": (8, 32)}
    budget = 96
    accuracy_budget = 36
    pop_size = 12
    generations = 8

    def build_model(self):
        return torchvision.models.resnet18(), torch.randn(1, 3, 224, 224)

    def build_fleet(self):
        return [
            LocalCPUDevice("local-cpu-1-thread", threads=1, max_seconds=2.0),
            LocalCPUDevice("local-cpu-2-threads", threads=2, max_seconds=2.0),
        ]
