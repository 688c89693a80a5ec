"""Build the real compressed model of a :class:`~moo_compress.config.CompressionConfig`."""

from __future__ import annotations

import torch
from torch import nn

from moo_compress.config import FLOAT_BITS, CompressionConfig
from moo_compress.dependency import prune_to
from moo_compress.fake_quant import apply_fake_quant


def compress(model: nn.Module, config: CompressionConfig) -> nn.Module:
    """Return a new model: channels physically removed, layers fake-quantised.

    Each prunable unit keeps its ``config.channels[root]`` highest-magnitude channels
    (torch-pruning removes them from every coupled layer). Each layer with fewer than
    32 bits is wrapped in a :class:`~moo_compress.fake_quant.QuantizedLayer`. The
    original ``model`` is untouched. For real integer kernels, export the result with
    :func:`moo_compress.onnx_export.export_onnx` (QDQ ONNX).

    Raises:
        ValueError: for a unit left with zero channels or more than it has, or a layer
            name that is not in the model, naming it.
    """
    modules = dict(model.named_modules())
    for root, n in config.channels.items():
        module = modules.get(root)
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            raise ValueError(
                f"config names unit {root!r}, which is not a Conv2d/Linear of the model"
            )
        full = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        if not 1 <= n <= full:
            raise ValueError(f"unit {root!r}: {n} channels kept; allowed 1..{full}")
    for name in config.bits:
        if not isinstance(modules.get(name), (nn.Conv2d, nn.Linear)):
            raise ValueError(f"config gives bits to {name!r}, which is not a Conv2d/Linear layer")
    example = torch.zeros(config.input_shape)
    pruned = prune_to(model, example, config.channels)
    return apply_fake_quant(pruned, {n: b for n, b in config.bits.items() if b != FLOAT_BITS})
