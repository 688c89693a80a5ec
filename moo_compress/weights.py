"""Loading weights into a model, with one clear error when they do not fit, and finding
torchvision's pretrained weights in the torch hub cache without network access."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import WeightsEnum


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


def hub_cache_file(weights: WeightsEnum) -> Path:
    """Where ``torch.hub`` keeps the file of torchvision ``weights``:
    ``torch.hub.get_dir()/checkpoints/<file name of weights.url>``. ``torch.hub.get_dir()``
    is ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def pretrained_weights(
    model: nn.Module, weights: WeightsEnum, explicit: str | Path | None = None
) -> tuple[bool, str]:
    """Load pretrained weights into ``model`` if a file is at hand; say which, in one line.

    The file is ``explicit`` if given (e.g. from an environment variable), else the
    torch hub cache's copy of ``weights`` (:func:`hub_cache_file`) if it exists. Nothing
    is downloaded.

    Returns:
        Whether weights were loaded, and one line naming them (or saying that the model
        keeps random weights).

    Raises:
        ValueError: if ``explicit`` does not exist or a file does not fit the model.
    """
    if explicit:
        load_weights_file(model, explicit)
        return True, f"weights: {explicit} (given)"
    cached = hub_cache_file(weights)
    if cached.is_file():
        load_weights_file(model, cached)
        return True, f"weights: torchvision {weights} from the torch hub cache ({cached})"
    return False, f"weights: random (no {cached.name} in the torch hub cache {cached.parent})"
