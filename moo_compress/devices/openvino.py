"""This machine's CPU running OpenVINO: the exported ONNX model, timed for real.

The same file :class:`~moo_compress.devices.onnxruntime.OnnxRuntimeDevice` times (see
:func:`~moo_compress.devices.onnxruntime.exported_model`), read and compiled by
OpenVINO's CPU plugin with a fixed thread count, one stream, the latency hint and
float32 inference precision. OpenVINO turns QDQ pairs into its own low-precision
kernels; float layers run in float32 as the configuration says (OpenVINO's default on
CPUs with bfloat16 support, e.g. AMX, is to run them in bfloat16, which timed
ResNet18's "float32" model 6x faster than ONNX Runtime's on this machine). Optional: install with
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
from moo_compress.devices.onnxruntime import ExportedOnnxDevice

try:
    import openvino as ov
except ImportError as exc:  # an optional extra
    raise ImportError("OpenVINODevice needs openvino: pip install -e '.[openvino]'") from exc


class OpenVINODevice(ExportedOnnxDevice["ov.InferRequest"]):
    """This machine's CPU running OpenVINO at batch 1 with ``threads`` threads
    (OpenVINO's ``INFERENCE_NUM_THREADS``, fixed when the model is compiled; arguments
    as :class:`~moo_compress.devices.onnxruntime.ExportedOnnxDevice`)."""

    def __init__(self, device_id: str = "openvino-t1", **options: float) -> None:
        super().__init__(device_id, **options)
        self._core = ov.Core()

    def build(self, config: CompressionConfig) -> ov.InferRequest:
        proto = self.exported(config)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            onnx.save_model(proto, str(path))
            model = self._core.read_model(str(path))
        settings = {
            "INFERENCE_NUM_THREADS": self.threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        compiled = self._core.compile_model(model, "CPU", settings)
        return compiled.create_infer_request()

    def forward(self, built: ov.InferRequest, x: torch.Tensor) -> Callable[[], object]:
        feed = {0: np.ascontiguousarray(x.numpy())}
        return lambda: built.infer(feed)
