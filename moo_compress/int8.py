"""Real int8 kernels on this CPU (torch.ao, x86/fbgemm backend) for a compressed model.

Layers at 8 bits or fewer run as int8: the x86 CPU has no sub-8-bit kernels, so 2- and
4-bit layers also run as int8 here (their accuracy is still judged with fake
quantisation at their real bit-width). Layers at 16 or 32 bits stay float32. Conv, BN
and ReLU are fused and residual adds are quantised by torch's FX graph-mode flow.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
from torch import nn
from torch.ao.quantization import QConfigMapping, get_default_qconfig
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from moo_compress.fake_quant import unwrap

INT8_ENGINE = "x86"


def to_int8(compressed: nn.Module, calibration: Iterable[torch.Tensor]) -> nn.Module:
    """Convert the output of :func:`~moo_compress.compress.compress` to real int8 kernels.

    Args:
        compressed: A compressed model (its fake-quantised layers give the bit-widths).
            It is not modified.
        calibration: Input batches used to observe activation ranges, e.g. a few
            tensors of shape (B, 3, 224, 224).

    Returns:
        A ``torch.fx.GraphModule`` running quantised kernels, in eval mode.

    Raises:
        ValueError: if the model cannot be traced by ``torch.fx`` or has no
            calibration batch.
    """
    model, bits = unwrap(copy.deepcopy(compressed))
    torch.backends.quantized.engine = INT8_ENGINE
    mapping = QConfigMapping().set_global(get_default_qconfig(INT8_ENGINE))
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and bits.get(name, 32) > 8:
            mapping.set_module_name(name, None)
    batches = list(calibration)
    if not batches:
        raise ValueError("to_int8 needs at least one calibration batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        try:
            prepared = prepare_fx(model.eval(), mapping, example_inputs=(batches[0],))
        except Exception as exc:
            raise ValueError(f"cannot trace {type(model).__name__} with torch.fx: {exc}") from exc
        with torch.no_grad():
            for batch in batches:
                prepared(batch)
        return convert_fx(prepared).eval()
