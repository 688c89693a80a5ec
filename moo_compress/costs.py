"""Analytic cost figures of a whole population of compressed models, without building any.

All arrays are numpy. ``N`` is the population size, ``R`` the number of rows of the
:class:`~moo_compress.layer_table.LayerTable` and ``L`` the number of quantisable layers
(Conv2d/Linear rows, in table order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moo_compress.config import FLOAT_BITS
from moo_compress.layer_table import FIXED, LayerTable


@dataclass(frozen=True)
class LayerCosts:
    """Per quantisable layer, shape (N, L) unless stated.

    Attributes:
        names: (L,) layer names.
        macs: Multiply-accumulates (bias adds included, as torch-pruning counts them).
        weight_elems: Weight elements (bias excluded).
        bias_elems: Bias elements.
        in_channels, out_channels: Channel counts after pruning.
        bits: Bit-width of weights and input activations (32 = float).
        in_act_elems, out_act_elems: Input/output activation elements (batch 1).
        kernel: (L,) kernel area kh*kw (1 for Linear).
        depthwise: (L,) True for depthwise convolutions.
        out_spatial: (L,) output elements per channel (H*W, or 1 for Linear).
    """

    names: tuple[str, ...]
    macs: np.ndarray
    weight_elems: np.ndarray
    bias_elems: np.ndarray
    in_channels: np.ndarray
    out_channels: np.ndarray
    bits: np.ndarray
    in_act_elems: np.ndarray
    out_act_elems: np.ndarray
    kernel: np.ndarray
    depthwise: np.ndarray
    out_spatial: np.ndarray

    @property
    def weight_bytes(self) -> np.ndarray:
        """(N, L) bytes of weights at their bit-width plus float32 biases."""
        return (self.weight_elems * self.bits + self.bias_elems * FLOAT_BITS) / 8.0

    @property
    def act_bytes(self) -> np.ndarray:
        """(N, L) bytes of input plus output activations at the layer's bit-width."""
        return (self.in_act_elems + self.out_act_elems) * self.bits / 8.0


@dataclass(frozen=True)
class Costs:
    """Totals per configuration, shape (N,), and the per-layer breakdown.

    Attributes:
        macs: Operations as torch-pruning's ``count_ops_and_params`` counts them
            (conv/linear MACs plus norm, activation and pooling element ops).
        params: Parameters (weights, biases, norm affine parameters).
        size_bits: Model size in bits: quantisable weights at their bit-width, biases
            and every other parameter at 32 bits.
        bitops: Sum over quantisable layers of MACs * weight bits * activation bits.
        peak_act_bytes: Largest input+output activation footprint of any quantisable
            layer at its bit-width, in bytes (layer-by-layer execution).
        layers: Per quantisable layer figures.
    """

    macs: np.ndarray
    params: np.ndarray
    size_bits: np.ndarray
    bitops: np.ndarray
    peak_act_bytes: np.ndarray
    layers: LayerCosts


def evaluate_costs(table: LayerTable, keep: np.ndarray, bits: np.ndarray) -> Costs:
    """Compute the costs of ``N`` configurations at once.

    Args:
        table: Geometry of the model.
        keep: (N, U) int, kept output channels of each prunable unit.
        bits: (N, L) int, bit-width of each quantisable layer.
    """
    keep = np.atleast_2d(keep).astype(np.float64)
    bits = np.atleast_2d(bits).astype(np.float64)
    c_in = _channels(keep, table.in_unit, table.in_channels, table.in_factor)
    c_out = _channels(keep, table.out_unit, table.out_channels)

    io = c_in * c_out
    ops = table.op_io * io + table.op_o * c_out + table.op_i * c_in
    weights = table.w_io * io + table.w_o * c_out
    other_params = table.w_i * c_in
    biases = table.bias * c_out

    q = table.quantizable
    layers = LayerCosts(
        names=tuple(n for n, is_q in zip(table.names, q, strict=True) if is_q),
        macs=ops[:, q],
        weight_elems=weights[:, q],
        bias_elems=biases[:, q],
        in_channels=c_in[:, q],
        out_channels=c_out[:, q],
        bits=bits,
        in_act_elems=c_in[:, q] * table.in_spatial[q],
        out_act_elems=c_out[:, q] * table.out_spatial[q],
        kernel=table.kernel[q],
        depthwise=table.depthwise[q],
        out_spatial=table.out_spatial[q],
    )
    unquantised = (other_params.sum(1) + biases.sum(1)) * FLOAT_BITS
    return Costs(
        macs=ops.sum(1),
        params=(weights + other_params + biases).sum(1),
        size_bits=(layers.weight_elems * bits).sum(1) + unquantised,
        bitops=(layers.macs * bits * bits).sum(1),
        peak_act_bytes=layers.act_bytes.max(1),
        layers=layers,
    )


def _channels(
    keep: np.ndarray, unit: np.ndarray, original: np.ndarray, factor: np.ndarray | int = 1
) -> np.ndarray:
    """(N, R) channel counts: the unit's kept channels (times ``factor``), or the original."""
    pruned = unit != FIXED
    out = np.broadcast_to(original.astype(np.float64), (keep.shape[0], len(unit))).copy()
    out[:, pruned] = keep[:, unit[pruned]] * np.broadcast_to(factor, unit.shape)[pruned]
    return out
