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
