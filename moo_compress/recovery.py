"""Recovery of a compressed model: BatchNorm re-estimation and an optional short fine-tune.

Pruning changes the statistics that every following BatchNorm normalises with.
Re-estimating them on a few calibration batches (EagleEye, Li et al., ECCV 2020) makes
accuracy measured before fine-tuning a far better predictor of accuracy after it. A short
fine-tune (HDAP fine-tunes the model it picks) then recovers part of what compression
cost; this project runs it only on the final front.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import cycle, islice

import torch
from torch import nn

from moo_compress.fake_quant import ActivationQuant, calibrate


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


def fine_tune(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    lr: float = 1e-3,
) -> nn.Module:
    """Train a compressed (pruned, fake-quantised) ``model`` in place for ``steps`` Adam
    steps, cycling through ``batches`` in order; returns it in eval mode.

    Each batch is ``(inputs, targets)`` with inputs (B, ...) and either integer class
    labels (B,), trained with cross-entropy, or float reference logits (B, C), trained
    by logit-matching distillation (mean squared error), which is how fidelity mode
    fine-tunes towards the uncompressed model on generated inputs.

    Gradients pass through fake quantisation straight-through (see
    :mod:`moo_compress.fake_quant`); weight scales follow the weights, activation ranges
    stay frozen (observers off) and BatchNorm uses batch statistics. Recover the model
    (:func:`recover`) afterwards, as after compression.

    Raises:
        ValueError: for ``steps`` < 1 or no batches.
    """
    if steps < 1 or not batches:
        raise ValueError(
            f"fine-tune needs steps >= 1 and at least one batch; got steps={steps}, "
            f"{len(batches)} batches"
        )
    for fq in model.modules():
        if isinstance(fq, ActivationQuant):
            fq.observe(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for inputs, targets in islice(cycle(batches), steps):
        outputs = model(inputs)
        if targets.is_floating_point():
            loss = nn.functional.mse_loss(outputs, targets)
        else:
            loss = nn.functional.cross_entropy(outputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()
