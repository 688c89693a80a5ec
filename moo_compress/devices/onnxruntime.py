"""This machine's CPU running ONNX Runtime: the exported ONNX model, timed for real.

Conventions:
    * The model timed is the file a user deploys: the configuration is compressed,
      calibrated on seeded random batches and exported by
      :func:`~moo_compress.onnx_export.export_onnx` (QDQ layers at 8 bits or fewer,
      float32 at 16 and 32 bits), then run by an ONNX Runtime CPU session with all
      graph optimisations, so 8-bit layers run ONNX Runtime's integer kernels
      (QLinearConv, QGemm). 2- and 4-bit layers are stored as INT4 but ONNX Runtime has
      no 4-bit convolution kernel: they run dequantised, in float32.
    * The thread count is fixed per device (the session's intra-op threads).
    * Latencies are wall-clock milliseconds of one batch-1 ``session.run`` (see
      :class:`~moo_compress.devices.host_cpu.HostCPUDevice`); it builds and times on the
      host thread, one measurement on this CPU at a time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from moo_compress.compress import compress
from moo_compress.config import CompressionConfig
from moo_compress.devices.host_cpu import Built, HostCPUDevice
from moo_compress.fake_quant import calibrate
from moo_compress.onnx_export import INPUT_NAME, export_onnx, session

ONNX_BITS = frozenset({2, 4, 8, 16, 32})
"""Bit-widths :class:`OnnxRuntimeDevice` accepts (<= 8 as QDQ, 16/32 as float32)."""

_EXPORTS: OrderedDict[tuple, onnx.ModelProto] = OrderedDict()
_EXPORTS_LOCK = threading.Lock()
_EXPORTS_KEPT = 4


def exported_model(
    model: nn.Module, config: CompressionConfig, calibration_batches: int = 2, seed: int = 0
) -> onnx.ModelProto:
    """The ONNX model of ``config`` as the ONNX-based devices time it.

    ``model`` is compressed, calibrated on ``calibration_batches`` seeded random batches
    of ``config.input_shape`` and exported. The last few exports are kept in memory and
    shared by every device that asks for the same model, configuration, calibration
    and seed (two ONNX Runtime devices with different thread counts export once).

    Raises:
        ValueError: from ``compress`` or the export, e.g. naming the layer ONNX cannot
            export.
    """
    key = (id(model), config.digest, calibration_batches, seed)
    with _EXPORTS_LOCK:
        if key in _EXPORTS:
            _EXPORTS.move_to_end(key)
            return _EXPORTS[key]
    generator = torch.Generator().manual_seed(seed)
    batches = [
        torch.randn(config.input_shape, generator=generator) for _ in range(calibration_batches)
    ]
    compressed = calibrate(compress(model, config), batches)
    proto = export_onnx(compressed, batches)
    with _EXPORTS_LOCK:
        _EXPORTS[key] = proto
        while len(_EXPORTS) > _EXPORTS_KEPT:
            _EXPORTS.popitem(last=False)
    return proto


class ExportedOnnxDevice(HostCPUDevice[Built]):
    """Base of the devices that time the exported ONNX file of a configuration
    (:func:`exported_model`) in a runtime on this CPU; subclasses build the runtime's
    session from :meth:`exported` and run it in ``forward``.

    Args:
        device_id: Name of this unit.
        threads: The runtime's intra-op threads, fixed when the session is built.
        calibration_batches: Random batches that calibrate the activation ranges.
        **timing: ``warmup``, ``rel_precision``, ``max_seconds``, ``min_repeats``,
            ``max_repeats``, ``seed``, ``cache_size`` of
            :class:`~moo_compress.devices.host_cpu.HostCPUDevice`.
    """

    def __init__(
        self, device_id: str, threads: int = 1, calibration_batches: int = 2, **timing: float
    ) -> None:
        super().__init__(device_id, ONNX_BITS, threads, **timing)
        if calibration_batches < 1:
            raise ValueError(f"calibration_batches={calibration_batches} must be >= 1")
        self.calibration_batches = calibration_batches

    def exported(self, config: CompressionConfig) -> onnx.ModelProto:
        """The ONNX model of ``config`` on the bound space's model (shared export)."""
        return exported_model(self.space.model, config, self.calibration_batches, self.seed)


class OnnxRuntimeDevice(ExportedOnnxDevice[ort.InferenceSession]):
    """This machine's CPU running ONNX Runtime at batch 1 with ``threads`` threads
    (arguments as :class:`ExportedOnnxDevice`)."""

    def __init__(self, device_id: str = "onnxruntime-t1", **options: float) -> None:
        super().__init__(device_id, **options)

    def build(self, config: CompressionConfig) -> ort.InferenceSession:
        return session(self.exported(config), self.threads)

    def forward(self, built: ort.InferenceSession, x: torch.Tensor) -> Callable[[], object]:
        feed = {INPUT_NAME: np.ascontiguousarray(x.numpy())}
        return lambda: built.run(None, feed)
