"""Recovery of a compressed model before it is scored: BatchNorm re-estimation.

Pruning changes the statistics that every following BatchNorm normalises with.
Re-estimating them on a few calibration batches (EagleEye, Li et al., ECCV 2020) makes
accuracy measured before fine-tuning a far better predictor of accuracy after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from moo_compress.fake_quant import calibrate


def reestimate_batchnorm(model: nn.Module, batches: Sequence[torch.Tensor]) -> nn.Module:
    """Recompute every BatchNorm's running mean/var as the plain average over ``batches``.

    Only the running statistics change; weights do not. Returns ``model`` in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model.eval()
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: the exact mean over batches
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(batch)
    for m, momentum in saved:
        m.momentum = momentum
    return model.eval()


def recover(model: nn.Module, batches: Sequence[torch.Tensor]) -> nn.Module:
    """Default recovery before every evaluation: BN re-estimation, then fixing the
    activation ranges of fake-quantised layers on the same batches."""
    return calibrate(reestimate_batchnorm(model, batches), batches)
