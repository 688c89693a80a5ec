"""Loading weights into a model, with one clear error when they do not fit."""

from __future__ import annotations

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
        ValueError: if the file does not exist or its weights do not fit the model.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {str(path)!r} does not exist")
    return load_checked(model, torch.load(path, map_location="cpu", weights_only=True), str(path))
