"""This machine's CPU running OpenVINO: the exported ONNX model, timed for real.

The same file :class:`~moo_compress.devices.onnxruntime.OnnxRuntimeDevice` times (see
:func:`~moo_compress.devices.onnxruntime.exported_model`), read and compiled by
OpenVINO's CPU plugin with a fixed thread count, one stream and the latency hint.
OpenVINO turns QDQ pairs into its own low-precision kernels. Optional: install with
``pip install -e '.[openvino]'``; importing this module without openvino raises
``ImportError`` with that command.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch

from moo_compress.config import CompressionConfig
from moo_compress.devices.host_cpu import HostCPUDevice
from moo_compress.devices.onnxruntime import ONNX_BITS, exported_model

try:
    import openvino as ov
except ImportError as exc:  # an optional extra
    raise ImportError("OpenVINODevice needs openvino: pip install -e '.[openvino]'") from exc


class OpenVINODevice(HostCPUDevice["ov.InferRequest"]):
    """This machine's CPU running OpenVINO at batch 1 with ``threads`` threads.

    Args:
        device_id: Name of this unit.
        threads: OpenVINO's ``INFERENCE_NUM_THREADS``, fixed when the model is compiled.
        calibration_batches: Random batches that calibrate the activation ranges.
        **timing: ``warmup``, ``rel_precision``, ``max_seconds``, ``min_repeats``,
            ``max_repeats``, ``seed``, ``cache_size`` of
            :class:`~moo_compress.devices.host_cpu.HostCPUDevice`.
    """

    def __init__(
        self,
        device_id: str = "openvino-t1",
        threads: int = 1,
        calibration_batches: int = 2,
        **timing: float,
    ) -> None:
        super().__init__(device_id, ONNX_BITS, threads, **timing)
        if calibration_batches < 1:
            raise ValueError(f"calibration_batches={calibration_batches} must be >= 1")
        self.calibration_batches = calibration_batches
        self._core = ov.Core()

    def build(self, config: CompressionConfig) -> ov.InferRequest:
        proto = exported_model(self.space.model, config, self.calibration_batches, self.seed)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            onnx.save_model(proto, str(path))
            model = self._core.read_model(str(path))
        settings = {
            "INFERENCE_NUM_THREADS": self.threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
        }
        compiled = self._core.compile_model(model, "CPU", settings)
        return compiled.create_infer_request()

    def forward(self, built: ov.InferRequest, x: torch.Tensor) -> Callable[[], object]:
        feed = {0: np.ascontiguousarray(x.numpy())}
        return lambda: built.infer(feed)
