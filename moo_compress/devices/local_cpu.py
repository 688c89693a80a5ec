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
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from moo_compress.compress import compress
from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.fake_quant import unwrap
from moo_compress.int8 import to_int8
from moo_compress.measurement import Measurement

if TYPE_CHECKING:
    from moo_compress.search_space import SearchSpace

LOCAL_CPU_BITS = frozenset({2, 4, 8, 16, 32})
"""Bit-widths :class:`LocalCPUDevice` accepts (<= 8 run as int8, 16/32 as float32)."""

_Z95 = 1.959963984540054


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


def median_rel_halfwidth(samples_ms: list[float] | tuple[float, ...]) -> float:
    """Half-width of a distribution-free 95 % confidence interval of the median, / median.

    The interval runs between the order statistics of ranks
    ``n/2 -/+ 1.96 * sqrt(n) / 2`` (normal approximation to the binomial). Returns
    ``inf`` while there are too few samples for such an interval to exist.
    """
    n = len(samples_ms)
    lo = math.floor(n / 2 - _Z95 * math.sqrt(n) / 2)
    hi = math.ceil(n / 2 + 1 + _Z95 * math.sqrt(n) / 2)
    if lo < 1 or hi > n:
        return math.inf
    x = np.sort(samples_ms)
    return float((x[hi - 1] - x[lo - 1]) / 2 / np.median(x))


class LocalCPUDevice(Device):
    """This machine's CPU, timed at batch 1 with a given number of threads.

    Each :meth:`measure` runs ``warmup`` untimed passes, then timed passes until the
    median is known to within ``rel_precision`` (see :func:`median_rel_halfwidth`) after
    at least ``min_repeats`` passes, or until ``max_repeats`` passes or ``max_seconds``
    of timing, whichever comes first. Built models are kept in an LRU cache of
    ``cache_size`` entries keyed by ``config.digest``; measuring a cached config
    re-times it without rebuilding.

    Args:
        device_id: Name of this unit.
        threads: ``torch.set_num_threads`` during timing (restored afterwards).
        calibration_batches: Random batches used to calibrate int8 activations.
        warmup: Untimed passes before timing.
        rel_precision: Target relative half-width of the 95 % CI of the median.
        max_seconds: Cap on the timed phase, in s (at least ``min_repeats`` passes
            are always timed).
        min_repeats, max_repeats: Bounds on the number of timed passes.
        seed: Seed of the calibration and timing inputs.
        cache_size: Built models kept in memory.
    """

    def __init__(
        self,
        device_id: str = "local-cpu-t1",
        threads: int = 1,
        calibration_batches: int = 2,
        warmup: int = 3,
        rel_precision: float = 0.03,
        max_seconds: float = 10.0,
        min_repeats: int = 10,
        max_repeats: int = 200,
        seed: int = 0,
        cache_size: int = 4,
    ) -> None:
        super().__init__(device_id, LOCAL_CPU_BITS)
        if threads < 1 or calibration_batches < 1 or warmup < 0 or cache_size < 1:
            raise ValueError(
                f"threads={threads}, calibration_batches={calibration_batches}, "
                f"cache_size={cache_size} must be >= 1 and warmup={warmup} >= 0"
            )
        if not 1 <= min_repeats <= max_repeats or rel_precision <= 0 or max_seconds <= 0:
            raise ValueError(
                f"need 1 <= min_repeats ({min_repeats}) <= max_repeats ({max_repeats}), "
                f"rel_precision ({rel_precision}) > 0 and max_seconds ({max_seconds}) > 0"
            )
        self.threads = threads
        self.calibration_batches = calibration_batches
        self.warmup = warmup
        self.rel_precision = rel_precision
        self.max_seconds = max_seconds
        self.min_repeats = min_repeats
        self.max_repeats = max_repeats
        self.seed = seed
        self.cache_size = cache_size
        self._cache: OrderedDict[str, nn.Module] = OrderedDict()

    def bind(self, space: SearchSpace) -> None:
        """Bind to ``space`` and drop models built for a previously bound space."""
        super().bind(space)
        self._cache.clear()

    def runnable(self, config: CompressionConfig) -> nn.Module:
        """The built model of ``config`` (from the cache, or built and cached).

        Raises:
            ValueError: if the device is not bound or ``config`` uses unsupported bits.
        """
        if self.space is None:
            raise ValueError(
                f"device {self.device_id!r} is not bound to a search space; call bind(space) "
                "before measure"
            )
        self.check(config)
        key = config.digest
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        model = build_runnable(self.space.model, config, self.calibration_batches, self.seed)
        self._cache[key] = model
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return model

    def measure(self, config: CompressionConfig) -> Measurement:
        """Time batch-1 inference of ``config`` on this CPU; samples in ms.

        Raises:
            ValueError: if the device is not bound, or ``config`` has a bit-width
                outside :data:`LOCAL_CPU_BITS`.
        """
        model = self.runnable(config)
        x = torch.randn(config.input_shape, generator=torch.Generator().manual_seed(self.seed))
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            samples = self._time(model, x)
        finally:
            torch.set_num_threads(previous_threads)
        return Measurement(self.device_id, tuple(samples))

    def _time(self, model: nn.Module, x: torch.Tensor) -> list[float]:
        samples: list[float] = []
        with torch.inference_mode():
            for _ in range(self.warmup):
                model(x)
            deadline = time.perf_counter() + self.max_seconds
            while len(samples) < self.max_repeats:
                start = time.perf_counter()
                model(x)
                samples.append((time.perf_counter() - start) * 1e3)
                if len(samples) >= self.min_repeats and (
                    time.perf_counter() > deadline
                    or median_rel_halfwidth(samples) <= self.rel_precision
                ):
                    break
        return samples
