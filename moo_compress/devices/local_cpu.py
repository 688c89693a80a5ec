"""The CPU this process runs on, timed for real with ``time.perf_counter``.

Conventions:
    * Latencies are wall-clock milliseconds of one batch-1 forward pass
      (``config.input_shape``) under ``torch.inference_mode``.
    * A configuration with any layer at 8 bits or fewer is converted with
      :func:`~moo_compress.int8.to_int8` and runs real x86 int8 kernels (2- and 4-bit
      layers run as int8 too: there are no sub-8-bit CPU kernels). 16- and 32-bit layers
      run as float32: this CPU has no fast float16 path, so a 16-bit layer costs what a
      32-bit one does here.
    * Inputs (calibration and timing) are seeded random tensors, since latency does not
      depend on the values.
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
from moo_compress.int8 import to_int8

LOCAL_CPU_BITS = frozenset({2, 4, 8, 16, 32})
"""Bit-widths :class:`LocalCPUDevice` accepts (<= 8 run as int8, 16/32 as float32)."""


def build_runnable(
    model: nn.Module, config: CompressionConfig, calibration_batches: int = 2, seed: int = 0
) -> nn.Module:
    """The model of ``config`` as this CPU runs it, in eval mode.

    Physically pruned by :func:`~moo_compress.compress.compress`; then converted to
    int8 kernels by :func:`~moo_compress.int8.to_int8` (calibrated on
    ``calibration_batches`` seeded random batches of ``config.input_shape``) when any
    layer has 8 bits or fewer, otherwise unwrapped to plain float32 layers.

    Raises:
        ValueError: if ``calibration_batches < 1`` (with an int8 layer), or from
            ``compress``/``to_int8`` for a config that does not fit ``model``.
    """
    compressed = compress(model, config)
    if not any(b <= 8 for b in config.bits.values()):
        return unwrap(compressed)[0].eval()
    generator = torch.Generator().manual_seed(seed)
    batches = [
        torch.randn(config.input_shape, generator=generator) for _ in range(calibration_batches)
    ]
    return to_int8(compressed, batches)


class LocalCPUDevice(HostCPUDevice[nn.Module]):
    """This machine's CPU running torch's kernels, at batch 1 with ``threads`` threads.

    Timing, caching and the shared CPU lock are :class:`HostCPUDevice`'s; this class
    builds with :func:`build_runnable` and sets ``torch.set_num_threads`` while timing
    (restored afterwards).

    Args:
        device_id: Name of this unit.
        threads: ``torch.set_num_threads`` during timing.
        calibration_batches: Random batches used to calibrate int8 activations.
        **timing: ``warmup``, ``rel_precision``, ``max_seconds``, ``min_repeats``,
            ``max_repeats``, ``seed``, ``cache_size`` of :class:`HostCPUDevice`.
    """

    def __init__(
        self,
        device_id: str = "local-cpu-t1",
        threads: int = 1,
        calibration_batches: int = 2,
        **timing: float,
    ) -> None:
        super().__init__(device_id, LOCAL_CPU_BITS, threads, **timing)
        if calibration_batches < 1:
            raise ValueError(f"calibration_batches={calibration_batches} must be >= 1")
        self.calibration_batches = calibration_batches

    def build(self, config: CompressionConfig) -> nn.Module:
        return build_runnable(self.space.model, config, self.calibration_batches, self.seed)

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
