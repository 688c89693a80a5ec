"""ResNet18 on this machine's CPU: four clusters, every latency measured for real.

* ``torch-1-thread``, ``torch-2-threads``: torch's eager kernels
  (:class:`~moo_compress.devices.local_cpu.LocalCPUDevice`); every layer runs as
  float32 there, so only pruning makes them faster.
* ``onnxruntime-1-thread``, ``onnxruntime-2-threads``: the exported ONNX file run by
  ONNX Runtime (:class:`~moo_compress.devices.onnxruntime.OnnxRuntimeDevice`), with its
  integer kernels for the layers at 8 bits.

The four devices share this CPU, so they are measured one at a time (see
:mod:`moo_compress.devices.host_cpu`); a measurement's wait for the others counts
against the dispatcher's 60-s deadline, so run it on a machine that is otherwise quiet
(an ONNX export of ResNet18 took 14 to 15 s on this 2-core machine at a load average
near 4). Accuracy is FIDELITY to the uncompressed model
on generated inputs (no labelled data).
"""

from __future__ import annotations

import torch
import torchvision

from moo_compress.devices.local_cpu import LocalCPUDevice
from moo_compress.devices.onnxruntime import OnnxRuntimeDevice
from moo_compress.problem import FleetCompressionProblem


class ResNet18LocalCPU(FleetCompressionProblem):
    name = "resnet18_local_cpu"
    space_options = {"granularity": "block", "bit_widths": (8, 32)}
    budget = 160
    accuracy_budget = 36
    pop_size = 12
    generations = 8

    def build_model(self):
        return torchvision.models.resnet18(), torch.randn(1, 3, 224, 224)

    def build_fleet(self):
        return [
            LocalCPUDevice("torch-1-thread", threads=1, max_seconds=1.0),
            LocalCPUDevice("torch-2-threads", threads=2, max_seconds=1.0),
            OnnxRuntimeDevice("onnxruntime-1-thread", threads=1, max_seconds=1.0),
            OnnxRuntimeDevice("onnxruntime-2-threads", threads=2, max_seconds=1.0),
        ]
