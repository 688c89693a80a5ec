"""A roofline latency model of one hardware model (SKU), vectorised over configs and devices.

Every quantisable layer ``l`` of a configuration ``n`` costs, on device ``d``::

    t[n, d, l] = max(C[n, l] / compute[d], M_cache[n, l] / compute[d] + M_dram[n, l] / bandwidth[d])

and the inference costs::

    sum_l t[n, d, l] + overhead[d] * (L * layer_overhead + inference_overhead)

* ``C`` (compute time) is the layer's multiply-accumulates with its channel counts padded
  up to the SKU's vector / tensor-core width at the layer's precision, divided by the
  achieved MAC/s at that precision. A depthwise convolution pads its one channel count.
  A runtime that cannot pad (:attr:`Precision.unaligned`) runs a layer whose channel
  counts are not multiples of that width on a slower generic kernel instead. A runtime
  with a fast algorithm for one kernel shape (:attr:`Precision.kernel_speedup`, e.g.
  Winograd for 3x3 convolutions) runs those layers at a multiple of the rate.
  Bias adds and the element-wise layers (norms, activations, pooling, residual adds)
  are taken as fused into the convolution epilogues, as TensorRT, ArmNN and PULP-NN do.
* ``M`` (memory time) is (weight bytes + input and output activation bytes) over the
  bandwidth, bytes at the layer's bit-width (:attr:`LayerCosts.weight_bytes` and
  :attr:`LayerCosts.act_bytes`). With a cache (``cache_bytes > 0``), a layer whose
  working set fits it moves its bytes at the cache bandwidth (``M_cache``), which
  scales with the core clock; otherwise at the DRAM bandwidth (``M_dram``). A precision
  that the hardware lacks and emulates with a wider one (:attr:`Precision.storage_bits`,
  e.g. int8 falling back to fp16 kernels) moves bytes at the wider width.
* ``compute``, ``bandwidth``, ``overhead`` are the *drift* factors of one device:
  multipliers of its achieved MAC/s (clock, thermal state), of its DRAM bandwidth
  (contention) and of its fixed overhead times (driver / runtime / OS jitter).
  1.0 is a nominal, cool, idle unit.

All latencies are in milliseconds, MACs are multiply-accumulates, bytes are bytes,
bandwidths GB/s (1e9 bytes/s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from moo_compress.config import FLOAT_BITS
from moo_compress.costs import LayerCosts

_CHUNK_ELEMS = 1 << 22
"""Largest (configs x devices x layers) block evaluated at once (32 MiB of float64)."""


@dataclass(frozen=True)
class Precision:
    """How a SKU runs layers of one bit-width.

    Attributes:
        peak_gmacs: Peak multiply-accumulates per second of the whole chip, in 1e9 MAC/s.
        efficiency: Achieved fraction of the peak on batch-1 convolutions (0, 1].
        align: Channel multiple the kernels pad input and output channels up to.
        unaligned: How a layer runs whose output channels (or input channels, unless it
            is depthwise) are not multiples of ``align``, on a runtime that does not pad
            them: a slower generic kernel. None (default): the runtime pads.
        storage_bits: Bits per weight / activation value actually moved when the
            hardware emulates this bit-width with a wider one (e.g. 16 for int8 layers
            run by fp16 kernels). None (default): the layer's own bit-width.
        kernel_speedup: ``(kernel area, factor)`` pairs: layers of that kernel area
            (kh * kw, e.g. 9 for 3x3) run at ``factor`` times the achieved rate (a
            runtime's fast algorithm for that shape). Default: none.
    """

    peak_gmacs: float
    efficiency: float
    align: int
    unaligned: Precision | None = None
    storage_bits: int | None = None
    kernel_speedup: tuple[tuple[int, float], ...] = ()

    def __post_init__(self) -> None:
        if not (self.peak_gmacs > 0 and 0 < self.efficiency <= 1 and self.align >= 1):
            raise ValueError(
                f"invalid {self}: need peak_gmacs > 0, 0 < efficiency <= 1, align >= 1"
            )
        if self.storage_bits is not None and self.storage_bits < 1:
            raise ValueError(f"invalid {self}: need storage_bits >= 1 or None")
        if any(factor <= 0 for _, factor in self.kernel_speedup):
            raise ValueError(f"invalid {self}: kernel_speedup factors must be > 0")

    @property
    def macs_per_ms(self) -> float:
        """Achieved MACs per millisecond at nominal clock."""
        return self.peak_gmacs * 1e9 * self.efficiency / 1e3


@dataclass(frozen=True)
class SKU:
    """Latency model of one hardware model.

    Attributes:
        name: Preset name, e.g. ``"jetson-xavier-nx"``.
        precisions: Bit-width -> how the SKU runs it; its keys are the supported bits.
        dram_gbs: Peak DRAM bandwidth in GB/s.
        dram_efficiency: Achieved fraction of ``dram_gbs`` (0, 1].
        layer_overhead_ms: Fixed time per quantisable layer (kernel launch, thread
            fork/join, DMA set-up), in ms.
        inference_overhead_ms: Fixed time per inference (input copy, synchronisation), ms.
        cache_bytes: Size of the last-level cache that a layer's working set may live
            in, bytes; 0 for none.
        cache_gbs: Achieved bandwidth out of that cache in GB/s (ignored without cache).
    """

    name: str
    precisions: Mapping[int, Precision]
    dram_gbs: float
    dram_efficiency: float
    layer_overhead_ms: float
    inference_overhead_ms: float
    cache_bytes: float = 0.0
    cache_gbs: float = 0.0

    def __post_init__(self) -> None:
        if not self.precisions:
            raise ValueError(f"SKU {self.name!r} supports no bit-width")
        if self.cache_bytes > 0 and self.cache_gbs <= 0:
            raise ValueError(f"SKU {self.name!r}: a cache needs cache_gbs > 0")

    @property
    def supported_bits(self) -> frozenset[int]:
        return frozenset(self.precisions)

    # ------------------------------------------------------------------ per-layer times
    def layer_times(self, layers: LayerCosts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nominal per-layer times, each (N, L) in ms.

        Returns:
            ``(compute, cache, dram)``: compute time; memory time of the layers whose
            working set fits the cache (0 elsewhere); memory time of the others
            (0 elsewhere).

        Raises:
            ValueError: if a layer has a bit-width the SKU does not support.
        """
        bits = np.asarray(layers.bits).astype(int)
        unsupported = sorted(set(np.unique(bits).tolist()) - self.supported_bits)
        if unsupported:
            raise ValueError(
                f"SKU {self.name!r} does not support bit-width(s) {unsupported}; "
                f"allowed: {sorted(self.supported_bits)}"
            )
        align = np.ones(bits.shape)
        rate = np.ones(bits.shape)
        stored = bits.astype(float)
        for b, precision in self.precisions.items():
            hit = bits == b
            if precision.storage_bits is not None:
                stored[hit] = precision.storage_bits
            if precision.unaligned is not None:
                ragged = hit & _ragged(layers, precision.align)
                align[ragged] = precision.unaligned.align
                rate[ragged] = precision.unaligned.macs_per_ms
                hit &= ~ragged
            align[hit] = precision.align
            rate[hit] = precision.macs_per_ms
            for area, factor in precision.kernel_speedup:
                rate[hit & (layers.kernel == area)] *= factor
        c_out = _pad(layers.out_channels, align)
        c_in = np.where(layers.depthwise, 1.0, _pad(layers.in_channels, align))
        compute = layers.kernel * layers.out_spatial * c_in * c_out / rate

        # Bytes at the stored width: weights, float32 biases, input + output activations.
        weights = layers.weight_elems * stored + layers.bias_elems * FLOAT_BITS
        nbytes = (weights + (layers.in_act_elems + layers.out_act_elems) * stored) / 8.0
        cached = nbytes <= self.cache_bytes  # never true without a cache (bytes > 0)
        cache = np.where(cached, nbytes, 0.0) / ((self.cache_gbs or 1.0) * 1e6)
        dram = np.where(cached, 0.0, nbytes) / (self.dram_gbs * self.dram_efficiency * 1e6)
        return compute, cache, dram

    def overhead_ms(self, n_layers: int) -> float:
        """Nominal fixed time of one inference of ``n_layers`` quantisable layers, ms."""
        return n_layers * self.layer_overhead_ms + self.inference_overhead_ms

    # ------------------------------------------------------------------ latency
    def latency_ms(
        self,
        layers: LayerCosts,
        compute: float = 1.0,
        bandwidth: float = 1.0,
        overhead: float = 1.0,
    ) -> np.ndarray:
        """(N,) latency in ms of N configurations on one device with the given drift."""
        return self.latency_matrix(layers, [compute], [bandwidth], [overhead])[:, 0]

    def latency_matrix(
        self,
        layers: LayerCosts,
        compute: np.ndarray | list[float],
        bandwidth: np.ndarray | list[float],
        overhead: np.ndarray | list[float],
    ) -> np.ndarray:
        """(N, D) latency in ms of N configurations on D devices.

        Args:
            layers: Per-layer costs of the N configurations.
            compute, bandwidth, overhead: (D,) drift factors of the devices (see the
                module docstring), each > 0.

        The (N, D, L) intermediate is evaluated in blocks of configurations, so memory
        stays below ~32 MiB whatever N and D.
        """
        c, b, o = (np.asarray(v, dtype=np.float64).ravel() for v in (compute, bandwidth, overhead))
        if not (len(c) == len(b) == len(o)):
            raise ValueError(f"drift vectors differ in length: {len(c)}, {len(b)}, {len(o)}")
        if not all(np.all(np.isfinite(v) & (v > 0)) for v in (c, b, o)):
            raise ValueError("drift factors must be finite and > 0")
        t_compute, t_cache, t_dram = self.layer_times(layers)
        n, n_layers = t_compute.shape
        out = np.empty((n, len(c)))
        # max(C / c, Mc / c + Md / b) = max(C, Mc + Md * c / b) / c
        ratio = (c / b)[None, :, None]
        step = max(1, _CHUNK_ELEMS // max(1, len(c) * n_layers))
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            memory = t_cache[lo:hi, None, :] + t_dram[lo:hi, None, :] * ratio
            out[lo:hi] = np.maximum(t_compute[lo:hi, None, :], memory).sum(-1) / c
        return out + o * self.overhead_ms(n_layers)


def _ragged(layers: LayerCosts, align: int) -> np.ndarray:
    """(N, L) True where a layer's channel counts are not multiples of ``align`` (the
    input channels of a depthwise convolution do not count)."""
    out = layers.out_channels % align != 0
    return out | (~np.asarray(layers.depthwise, dtype=bool) & (layers.in_channels % align != 0))


def _pad(channels: np.ndarray, align: np.ndarray) -> np.ndarray:
    """Channel counts rounded up to a multiple of ``align`` (elementwise)."""
    return np.ceil(channels / align) * align
