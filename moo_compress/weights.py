"""Loading weights into a model, with one clear error when they do not fit."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn


def load_checked(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state`` into ``model``, strictly.

    Raises:
        ValueError: naming ``source`` and the first tensor that is missing, unexpected or
            of the wrong shape.
    """
    expected = model.state_dict()
    for key, tensor in state.items():
        if key not in expected:
            raise ValueError(f"{source}: tensor {key!r} has no counterpart in the model")
        if expected[key].shape != tensor.shape:
            raise ValueError(
                f"{source}: tensor {key!r} has shape {tuple(tensor.shape)}, the model's layer "
                f"expects {tuple(expected[key].shape)}"
            )
    missing = [key for key in expected if key not in state]
    if missing:
        raise ValueError(f"{source}: no weights for {missing[0]!r} ({len(missing)} missing)")
    model.load_state_dict(state)
    return model


def load_weights_file(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state-dict file (e.g. torchvision's ``resnet50-*.pth``) into ``model``.

    Raises:
        ValueError: if the file does not exist, cannot be read as a state dict (damaged,
            truncated, or another format) or its weights do not fit the model.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol chatter; errors still raise
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged zip, pickle, or not a torch file at all
        reason = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"weights file {str(path)!r} is not a readable PyTorch state dict: {reason}"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(
            f"weights file {str(path)!r} holds a {type(state).__name__}, not a state dict "
            "(a mapping of tensor names to tensors)"
        )
    return load_checked(model, state, str(path))
