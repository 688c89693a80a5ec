"""ResNet18 on this machine's CPU: four clusters, every latency measured for real.

* ``torch-1-thread``, ``torch-2-threads``: torch's eager kernels
  (:class:`~moo_compress.devices.local_cpu.LocalCPUDevice`); every layer runs as
  float32 there, so only pruning makes them faster.
* ``onnxruntime-1-thread``, ``onnxruntime-2-threads``: the exported ONNX file run by
  ONNX Runtime (:class:`~moo_compress.devices.onnxruntime.OnnxRuntimeDevice`), with its
  integer kernels for the layers at 8 bits.

The four devices share this CPU, so the dispatcher measures them one at a time (see
:mod:`moo_compress.devices.host_cpu`); a measurement's 60-s deadline starts when it is
submitted, after the one before it has ended (an ONNX export of ResNet18 took 14 to
15 s on this 2-core machine at a load average near 4).

Medians of one configuration measured again a few seconds later differed by up to 23 %
(torch, 1 thread) and 37 % (ONNX Runtime, 2 threads) on this 2-core machine at a load
average near 5, although each median's own 95 % interval was often within 3 to 10 %:
the load changes between two measurements. The dispatcher's outlier check therefore
lets two medians of one request confirm each other within 25 % (plus their intervals),
not the default 5 %; it still rejects the spikes it exists for (a measurement several
times too slow). Accuracy is FIDELITY to the uncompressed model on generated inputs
(no labelled data).
"""

from __future__ import annotations

import torch
import torchvision

from moo_compress.devices.local_cpu import LocalCPUDevice
from moo_compress.devices.onnxruntime import OnnxRuntimeDevice
from moo_compress.dispatch import RetryPolicy
from moo_compress.problem import FleetCompressionProblem


class ResNet18LocalCPU(FleetCompressionProblem):
    name = "resnet18_local_cpu"
    space_options = {"granularity": "block", "bit_widths": (8, 32)}
    budget = 160
    accuracy_budget = 36
    pop_size = 12
    generations = 8
    retry_policy = RetryPolicy(agree_rel=0.25)

    def build_model(self):
        return torchvision.models.resnet18(), torch.randn(1, 3, 224, 224)

    def build_fleet(self):
        return [
            LocalCPUDevice("torch-1-thread", threads=1, max_seconds=1.0),
            LocalCPUDevice("torch-2-threads", threads=2, max_seconds=1.0),
            OnnxRuntimeDevice("onnxruntime-1-thread", threads=1, max_seconds=1.0),
            OnnxRuntimeDevice("onnxruntime-2-threads", threads=2, max_seconds=1.0),
        ]
