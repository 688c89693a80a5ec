"""Compact surrogate inputs that describe a compressed configuration.

Latency on any device is close to a sum over layers of a compute term (MACs at the
layer's precision) and a memory term (bytes moved). The features keep that structure
at a coarse resolution, so a GP with a handful of inputs can learn it from few
measurements:

* for each of ``n_stages`` contiguous stages of the network (cut so that each holds
  about the same share of the unpruned MACs) and each precision class (integer <= 8
  bits, float16, float32): the MACs run at that precision in that stage, in GMACs;
* total weight bytes and total activation bytes, in MB.

The raw decision vector is the alternative (one input per gene); the ablation in
``benchmarks/surrogate_resnet50.py`` compares both.

``roofline_features`` refines this with what kernels actually execute:

* MACs with the channel counts padded up to the vector width (``align`` channels; a
  depthwise convolution pads only its one channel count), because pruning 64 channels
  to 57 saves nothing on a machine that computes 8 at a time;
* per stage, the padded MACs of the *compute-bound* layers (per precision class) and the
  bytes of the *memory-bound* ones: a layer is memory-bound when its arithmetic intensity
  (padded MACs per byte moved) is below the roofline knee ``knee_macs_per_byte`` (peak
  MAC/s over bandwidth of the nominal device). Time on a roofline is the compute term
  of the first plus the memory term of the second, so a GP sees the two regimes apart.
"""

from __future__ import annotations

import numpy as np

PRECISION_CLASSES = ((0, 8), (9, 16), (17, 32))
"""Inclusive bit ranges of the precision classes: integer, half, float."""


def stage_bounds(unpruned_macs: np.ndarray, n_stages: int) -> np.ndarray:
    """Stage index of each layer, shape (L,), from the (L,) unpruned MACs per layer."""
    share = np.cumsum(unpruned_macs) / unpruned_macs.sum()
    return np.minimum((share * n_stages - 1e-9).astype(int), n_stages - 1)


def config_features(layers, stages: np.ndarray) -> np.ndarray:
    """Features of a population, shape (N, 3 * n_stages + 2).

    Args:
        layers: A :class:`moo_compress.costs.LayerCosts` of N configurations.
        stages: (L,) stage index of each layer, from :func:`stage_bounds`.
    """
    n_stages = int(stages.max()) + 1
    one_hot = np.eye(n_stages)[stages]  # (L, S)
    blocks = []
    for low, high in PRECISION_CLASSES:
        in_class = (layers.bits >= low) & (layers.bits <= high)
        blocks.append((layers.macs * in_class) @ one_hot / 1e9)
    weight_mb = layers.weight_bytes.sum(1, keepdims=True) / 1e6
    act_mb = layers.act_bytes.sum(1, keepdims=True) / 1e6
    return np.hstack([*blocks, weight_mb, act_mb])


def padded_macs(layers, align: int) -> np.ndarray:
    """(N, L) MACs with channel counts rounded up to multiples of ``align`` (>= 1).

    Args:
        layers: A :class:`moo_compress.costs.LayerCosts` of N configurations.
        align: Vector width in channels; 1 leaves the MACs unchanged.
    """
    if align < 1:
        raise ValueError(f"align must be >= 1, got {align}")

    def pad(c: np.ndarray) -> np.ndarray:
        return np.ceil(c / align) * align

    safe = lambda c: np.maximum(c, 1.0)  # noqa: E731  (a pruned-away layer has 0 MACs)
    factor = pad(layers.out_channels) / safe(layers.out_channels)
    factor = factor * np.where(
        layers.depthwise, 1.0, pad(layers.in_channels) / safe(layers.in_channels)
    )
    return layers.macs * factor


def roofline_features(
    layers, stages: np.ndarray, align: int = 8, knee_macs_per_byte: float = 10.0
) -> np.ndarray:
    """Roofline features of a population, shape (N, 4 * n_stages).

    Columns: for each precision class (``PRECISION_CLASSES`` order) and stage, the padded
    GMACs of compute-bound layers; then per stage the MB moved by memory-bound layers
    (weights plus input and output activations at the layer's bit-width).

    Args:
        layers: A :class:`moo_compress.costs.LayerCosts` of N configurations.
        stages: (L,) stage index of each layer, from :func:`stage_bounds`.
        align: Vector width in channels (e.g. 8 int8 lanes of a 64-bit SIMD unit).
        knee_macs_per_byte: Roofline knee of the nominal device (peak MAC/s over bytes/s),
            ``> 0``: below it a layer is memory-bound.
    """
    if knee_macs_per_byte <= 0:
        raise ValueError(f"knee_macs_per_byte must be > 0, got {knee_macs_per_byte}")
    n_stages = int(stages.max()) + 1
    one_hot = np.eye(n_stages)[stages]  # (L, S)
    macs = padded_macs(layers, align)
    moved = layers.weight_bytes + layers.act_bytes  # (N, L) bytes
    compute_bound = macs >= knee_macs_per_byte * moved
    blocks = []
    for low, high in PRECISION_CLASSES:
        in_class = (layers.bits >= low) & (layers.bits <= high) & compute_bound
        blocks.append((macs * in_class) @ one_hot / 1e9)
    blocks.append((moved * ~compute_bound) @ one_hot / 1e6)
    return np.hstack(blocks)
