"""Static per-layer geometry of a network, and which prunable unit sets each channel count.

Every leaf module that costs operations or holds parameters is one *row*. For row ``r``
the number of input and output channels after pruning is either fixed or equal to the
kept channels of one prunable unit. Operations and parameters of each row are bilinear
in those channel counts::

    ops[r]    = op_io[r] * c_in * c_out + op_o[r] * c_out + op_i[r] * c_in
    params[r] = w_io[r] * c_in * c_out + w_o[r] * c_out + w_i[r] * c_in + bias[r] * c_out

with batch-1 coefficients that hold spatial sizes and kernel areas. The op counts
follow torch-pruning's ``count_ops_and_params`` conventions (multiply-accumulates for
conv/linear, one op per element for activations and pooling, two per element for
affine norms), so analytic totals equal what it reports on the pruned model.

Which unit sets a row's channels is found by a *probe*: one forward pass of a copy of
the model in which every unit is cut to a distinct channel count. That covers modules
that torch-pruning does not track (ReLU, pooling) without any per-architecture rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from moo_compress.dependency import PrunableUnit, prune_to

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.ELU, nn.LeakyReLU)  # as counted by torch-pruning
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_QUANTIZABLE = (nn.Conv2d, nn.Linear)
_COUNTED = _QUANTIZABLE + _NORMS + _ACTIVATIONS + _POOLS

FIXED = -1
"""Unit index of a channel count that no prunable unit changes."""


@dataclass(frozen=True)
class LayerTable:
    """Per-row geometry of a traced model, as numpy arrays of shape (R,).

    Attributes:
        names: Module name of each row.
        quantizable: True for ``Conv2d``/``Linear`` rows (they carry a bit-width).
        depthwise: True for depthwise convolutions (groups == in channels).
        in_unit, out_unit: Index into ``units`` of the unit that sets the row's
            input/output channels, or ``FIXED``.
        in_factor: Input channels per kept unit channel: 1, or H * W when a Linear
            reads a flattened feature map (its input channels are C * H * W).
        in_channels, out_channels: Channel counts in the unpruned model.
        op_io, op_o, op_i: Operation coefficients (see module docstring).
        w_io, w_o, w_i: Weight-element coefficients (``w_i`` is 2 for affine norms).
        bias: 1 where the row has a bias vector of ``c_out`` elements.
        kernel: Kernel area (kh * kw) of conv rows; 1 otherwise.
        in_spatial, out_spatial: Input/output elements per channel (H * W for 4-D
            activations, the non-channel size for 2-D ones).
        units: The prunable units, in the order the ``*_unit`` indices use.
    """

    names: tuple[str, ...]
    quantizable: np.ndarray
    depthwise: np.ndarray
    in_unit: np.ndarray
    in_factor: np.ndarray
    out_unit: np.ndarray
    in_channels: np.ndarray
    out_channels: np.ndarray
    op_io: np.ndarray
    op_o: np.ndarray
    op_i: np.ndarray
    w_io: np.ndarray
    w_o: np.ndarray
    w_i: np.ndarray
    bias: np.ndarray
    kernel: np.ndarray
    in_spatial: np.ndarray
    out_spatial: np.ndarray
    units: tuple[PrunableUnit, ...]

    @property
    def n_rows(self) -> int:
        return len(self.names)

    @classmethod
    def trace(
        cls, model: nn.Module, example_input: torch.Tensor, units: Sequence[PrunableUnit]
    ) -> LayerTable:
        """Build the table of ``model`` for the given prunable ``units``.

        Raises:
            ValueError: for a module type whose cost this table cannot express (a
                grouped, non-depthwise convolution, or a parametrised leaf module of
                an unsupported type), naming the layer.
        """
        _check_supported(model)
        original = _record_shapes(model, example_input)
        probe_keep = _distinct_counts(units, original)
        probed = _record_shapes(prune_to(model, example_input, probe_keep), example_input)
        by_count = {n: i for i, n in enumerate(probe_keep.values())}

        def unit_of(name: str, probe: int, original: int, flat: bool) -> tuple[int, int]:
            """(unit index, channels per kept unit channel) of one channel dimension.

            ``flat`` marks a Linear input that may be a flattened C * H * W feature map.
            """
            if probe == original:
                return FIXED, 1
            if probe in by_count:
                return by_count[probe], 1
            matches = [
                (i, original // unit.channels)
                for i, unit in enumerate(units)
                if flat
                and original % unit.channels == 0
                and probe == original // unit.channels * probe_keep[unit.root]
            ]
            if len(matches) == 1:
                return matches[0]
            raise ValueError(
                f"layer {name!r}: its channel count depends on several prunable units "
                "(e.g. a concatenation); protect one of them or use another model"
            )

        rows: dict[str, list] = {k: [] for k in _ROW_FIELDS}
        for (name, module, shp_in, shp_out), (_, _, prb_in, prb_out) in zip(
            original, probed, strict=True
        ):
            c_in, c_out = _channels(shp_in), _channels(shp_out)
            sp_in, sp_out = _numel(shp_in) // c_in, _numel(shp_out) // c_out
            row = _coefficients(module, sp_in, sp_out)
            flat = isinstance(module, nn.Linear) and len(shp_in) == 2
            in_unit, in_factor = unit_of(name, _channels(prb_in), c_in, flat)
            out_unit, _ = unit_of(name, _channels(prb_out), c_out, False)
            row.update(
                names=name,
                in_unit=in_unit,
                in_factor=in_factor,
                out_unit=out_unit,
                in_channels=c_in,
                out_channels=c_out,
                in_spatial=sp_in,
                out_spatial=sp_out,
            )
            for key in _ROW_FIELDS:
                rows[key].append(row[key])
        arrays = {k: np.asarray(v) for k, v in rows.items() if k != "names"}
        return cls(names=tuple(rows["names"]), units=tuple(units), **arrays)


_ROW_FIELDS = [
    "names",
    "quantizable",
    "depthwise",
    "in_unit",
    "in_factor",
    "out_unit",
    "in_channels",
    "out_channels",
    "op_io",
    "op_o",
    "op_i",
    "w_io",
    "w_o",
    "w_i",
    "bias",
    "kernel",
    "in_spatial",
    "out_spatial",
]


def _check_supported(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and 1 < module.groups != module.in_channels:
            raise ValueError(
                f"layer {name!r}: grouped convolution with groups={module.groups} is not "
                "supported; allowed: groups=1 or depthwise (groups == in_channels)"
            )
        own_params = any(True for _ in module.parameters(recurse=False))
        if own_params and not isinstance(module, _COUNTED):
            raise ValueError(
                f"layer {name!r} of type {type(module).__name__} has parameters but no cost "
                "model; supported parametrised types: Conv2d, Linear, BatchNorm1d/2d"
            )


def _record_shapes(model: nn.Module, example_input: torch.Tensor) -> list[tuple]:
    """Run ``model`` once; return (name, module, input shape, output shape) per call."""
    calls: list[tuple] = []
    hooks = [
        module.register_forward_hook(
            lambda m, i, o, name=name: calls.append((name, m, tuple(i[0].shape), tuple(o.shape)))
        )
        for name, module in model.named_modules()
        if isinstance(module, _COUNTED)
    ]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(example_input)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return calls


def _distinct_counts(units: Sequence[PrunableUnit], calls: list[tuple]) -> dict[str, int]:
    """Pick a channel count per unit, unique and absent from the unpruned model.

    Counts are primes where possible, so that a flattened C * H * W input identifies
    its unit unambiguously (H * W is smaller than the primes).
    """
    taken = {_channels(s) for _, _, a, b in calls for s in (a, b)}
    keep = {}
    for unit in units:
        n = unit.channels - 1
        while n in taken or (n > 2 and not _is_prime(n)):
            n -= 1
        if n < 1:
            raise ValueError(f"unit {unit.root!r} is too small to probe ({unit.channels} ch)")
        taken.add(n)
        keep[unit.root] = n
    return keep


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))


def _channels(shape: tuple[int, ...]) -> int:
    return shape[1] if len(shape) > 1 else shape[0]


def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])


def _coefficients(module: nn.Module, sp_in: int, sp_out: int) -> dict:
    """Bilinear op/param coefficients of one batch-1 call (see module docstring)."""
    row = dict.fromkeys(("op_io", "op_o", "op_i", "w_io", "w_o", "w_i", "bias"), 0)
    row.update(quantizable=False, depthwise=False, kernel=1)
    if isinstance(module, _QUANTIZABLE):
        has_bias = int(module.bias is not None)
        row.update(quantizable=True, bias=has_bias, op_o=has_bias * sp_out)
        if isinstance(module, nn.Linear):
            row.update(op_io=sp_in, w_io=1)
        else:
            kernel = int(np.prod(module.kernel_size))
            row.update(kernel=kernel, depthwise=module.groups > 1)
            if module.groups > 1:
                row.update(op_o=(kernel + has_bias) * sp_out, w_o=kernel)
            else:
                row.update(op_io=kernel * sp_out, w_io=kernel)
    elif isinstance(module, _NORMS):
        row.update(op_i=sp_in * (2 if module.affine else 1), w_i=2 if module.affine else 0)
    elif isinstance(module, _ACTIVATIONS):
        row.update(op_o=sp_out)
    else:  # pooling: one op per input element
        row.update(op_i=sp_in)
    return row
