"""Fake quantisation of one Conv2d/Linear layer at a given bit-width, with torch's own ops.

Conventions:
    * ``bits == 32``: float32, the layer is left as it is (no wrapper).
    * ``bits == 16``: float16 emulation: weights and input activations are rounded to
      float16 and computed in float32.
    * ``bits <= 8``: integer emulation: weights per output channel, symmetric, narrow
      range ``[-(2**(b-1) - 1), 2**(b-1) - 1]`` (``torch.fake_quantize_per_channel_affine``);
      input activations per tensor, affine, ``[0, 2**b - 1]``, with a running min/max
      observer (:class:`ActivationQuant`, ``torch.fake_quantize_per_tensor_affine``).

Gradients pass straight through (torch's fake-quant ops), so a compressed model can be
fine-tuned as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from moo_compress.config import FLOAT_BITS, HALF_BITS


class ActivationQuant(nn.Module):
    """Per-tensor affine fake quantisation of activations to ``[0, 2**bits - 1]``, with
    a running min/max observer (what torch.ao's deprecated ``FakeQuantize`` with a
    ``MinMaxObserver`` computed, with the same formulas).

    While ``observing`` is true, every forward pass widens the observed range
    ``[min_val, max_val]`` and sets from it (the range always includes 0)::

        scale = max((max(max_val, 0) - min(min_val, 0)) / quant_max, float32 eps)
        zero_point = clamp(-round(min(min_val, 0) / scale), 0, quant_max)

    The output is ``(clamp(round(x / scale) + zero_point, 0, quant_max) - zero_point) *
    scale``, shape of ``x``; the gradient passes straight through inside the range.

    Buffers (in the state dict, so a loaded model keeps its range and mode):
        scale: (1,) float32. zero_point: (1,) int32. min_val, max_val: () float32,
        +inf and -inf until something is observed. observing: () bool.
    """

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.quant_min, self.quant_max = 0, 2**bits - 1
        self.register_buffer("scale", torch.tensor([1.0]))
        self.register_buffer("zero_point", torch.tensor([0], dtype=torch.int32))
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))
        self.register_buffer("observing", torch.tensor(True))

    def observe(self, on: bool) -> None:
        """Turn the observer on (the range keeps widening) or off (the range is frozen)."""
        self.observing.fill_(on)

    def reset(self) -> None:
        """Forget the observed range (the scale and zero point stay until the next pass)."""
        self.min_val.fill_(float("inf"))
        self.max_val.fill_(float("-inf"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing and x.numel():
            low, high = torch.aminmax(x.detach().float())
            self.min_val.copy_(torch.minimum(self.min_val, low))
            self.max_val.copy_(torch.maximum(self.max_val, high))
            low, high = self.min_val.clamp(max=0), self.max_val.clamp(min=0)
            scale = ((high - low) / float(self.quant_max)).clamp(min=torch.finfo(torch.float32).eps)
            zero_point = (self.quant_min - torch.round(low / scale)).to(torch.int32)
            self.scale.copy_(scale.reshape(1))
            self.zero_point.copy_(zero_point.clamp(self.quant_min, self.quant_max).reshape(1))
        return torch.fake_quantize_per_tensor_affine(
            x, self.scale, self.zero_point, self.quant_min, self.quant_max
        )


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
            self.act_quant = ActivationQuant(bits)

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
    fake_quants = [m for m in model.modules() if isinstance(m, ActivationQuant)]
    for fq in fake_quants:
        fq.reset()
        fq.observe(True)
    model.eval()
    with torch.no_grad():
        for batch in batches:
            model(batch)
    for fq in fake_quants:
        fq.observe(False)
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
