"""This machine's CPU running torch's own (eager) kernels, timed for real.

Conventions:
    * Latencies are wall-clock milliseconds of one batch-1 forward pass
      (``config.input_shape``) under ``torch.inference_mode``.
    * Every layer runs as float32. torch has no maintained int8 CPU inference path any
      more (``torch.ao.quantization`` is deprecated; torchao's needs ``torch.compile``),
      so a layer at 8 bits or fewer costs here what a float32 one does, as a 16-bit one
      does (this CPU has no fast float16 path). Real int8 timing on this CPU is
      :class:`~moo_compress.devices.onnxruntime.OnnxRuntimeDevice`'s (ONNX Runtime's
      integer kernels on the exported QDQ model).
    * Inputs are seeded random tensors, since latency does not depend on the values.
    * Like every device on this CPU, it builds and times on the host thread,
      :func:`~moo_compress.devices.host_cpu.on_host_thread`: one measurement at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from moo_compress.compress import compress
from moo_compress.config import CompressionConfig
from moo_compress.devices.host_cpu import HostCPUDevice
from moo_compress.fake_quant import unwrap

LOCAL_CPU_BITS = frozenset({2, 4, 8, 16, 32})
"""Bit-widths :class:`LocalCPUDevice` accepts (all run as float32)."""


def build_runnable(model: nn.Module, config: CompressionConfig) -> nn.Module:
    """The model of ``config`` as torch runs it on this CPU: physically pruned by
    :func:`~moo_compress.compress.compress`, every layer float32, in eval mode.

    Raises:
        ValueError: from ``compress`` for a config that does not fit ``model``.
    """
    return unwrap(compress(model, config))[0].eval()


class LocalCPUDevice(HostCPUDevice[nn.Module]):
    """This machine's CPU running torch's kernels, at batch 1 with ``threads`` threads.

    Timing, caching and the host thread are :class:`HostCPUDevice`'s; this class
    builds with :func:`build_runnable` and sets ``torch.set_num_threads`` while timing
    (restored afterwards).

    Args:
        device_id: Name of this unit.
        threads: ``torch.set_num_threads`` during timing.
        **timing: ``warmup``, ``rel_precision``, ``max_seconds``, ``min_repeats``,
            ``max_repeats``, ``seed``, ``cache_size`` of :class:`HostCPUDevice`.
    """

    def __init__(
        self,
        device_id: str = "local-cpu-t1",
        threads: int = 1,
        **timing: float,
    ) -> None:
        super().__init__(device_id, LOCAL_CPU_BITS, threads, **timing)

    def build(self, config: CompressionConfig) -> nn.Module:
        return build_runnable(self.space.model, config)

    def forward(self, built: nn.Module, x: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                return built(x)

        return run

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)
