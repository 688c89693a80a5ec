"""Fake quantisation of one Conv2d/Linear layer at a given bit-width, with torch's own ops.

Conventions:
    * ``bits == 32``: float32, the layer is left as it is (no wrapper).
    * ``bits == 16``: float16 emulation: weights and input activations are rounded to
      float16 and computed in float32.
    * ``bits <= 8``: integer emulation: weights per output channel, symmetric, narrow
      range ``[-(2**(b-1) - 1), 2**(b-1) - 1]`` (``torch.fake_quantize_per_channel_affine``);
      input activations per tensor, affine, ``[0, 2**b - 1]``, with a min/max observer
      (``torch.ao.quantization.FakeQuantize``).

Gradients pass straight through (torch's fake-quant ops), so a compressed model can be
fine-tuned as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.quantization import FakeQuantize, MinMaxObserver

from moo_compress.config import FLOAT_BITS, HALF_BITS


class QuantizedLayer(nn.Module):
    """A Conv2d or Linear whose weights and input activations are fake-quantised.

    Attributes:
        layer: The wrapped float layer (its parameters are the trainable ones).
        bits: Bit-width of weights and input activations (2..8 or 16).
    """

    def __init__(self, layer: nn.Conv2d | nn.Linear, bits: int) -> None:
        super().__init__()
        if not (1 < bits <= 8 or bits == HALF_BITS):
            raise ValueError(f"layer bit-width {bits} is not allowed; allowed: 2..8, 16, 32")
        self.layer = layer
        self.bits = bits
        if bits <= 8:
            self.act_quant = FakeQuantize(
                observer=MinMaxObserver,
                quant_min=0,
                quant_max=2**bits - 1,
                dtype=torch.quint8,
                qscheme=torch.per_tensor_affine,
            )

    def quantized_weight(self) -> torch.Tensor:
        """Weight tensor after fake quantisation (same shape as ``layer.weight``)."""
        w = self.layer.weight
        if self.bits == HALF_BITS:
            return w.half().float()
        q_max = 2 ** (self.bits - 1) - 1
        scale = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12) / q_max
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -q_max, q_max)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.half().float() if self.bits == HALF_BITS else self.act_quant(x)
        w = self.quantized_weight()
        if isinstance(self.layer, nn.Linear):
            return F.linear(x, w, self.layer.bias)
        return self.layer._conv_forward(x, w, self.layer.bias)


def apply_fake_quant(model: nn.Module, bits: dict[str, int]) -> nn.Module:
    """Wrap, in place, every layer of ``bits`` below 32 bits in a :class:`QuantizedLayer`.

    Args:
        model: The model to modify.
        bits: Layer name -> bit-width (32 = leave as float).

    Returns:
        ``model``.
    """
    for name, b in bits.items():
        if b == FLOAT_BITS:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, QuantizedLayer(getattr(parent, child), b))
    return model


def calibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Observe activation ranges on ``batches`` afresh, then freeze them.

    Until it is calibrated, a model's activation observers keep learning from every
    forward pass. Returns ``model`` in eval mode.
    """
    fake_quants = [m for m in model.modules() if isinstance(m, FakeQuantize)]
    for fq in fake_quants:
        fq.activation_post_process.reset_min_max_vals()
        fq.enable_observer()
    model.eval()
    with torch.no_grad():
        for batch in batches:
            model(batch)
    for fq in fake_quants:
        fq.disable_observer()
    return model


def unwrap(model: nn.Module) -> tuple[nn.Module, dict[str, int]]:
    """Replace, in place, every :class:`QuantizedLayer` by its float layer.

    Returns:
        ``model`` and the bit-width of every layer that was wrapped.
    """
    bits = {}
    for name, module in list(model.named_modules()):
        if isinstance(module, QuantizedLayer):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.layer)
            bits[name] = module.bits
    return model, bits
