"""Export of a chosen compressed model, and the one function that loads it back.

A folder written by :func:`export_model` holds:

* ``config.json``: the :class:`~moo_compress.config.CompressionConfig`;
* ``state_dict.pt``: weights of the compressed, recovered model (BatchNorm statistics
  re-estimated, activation ranges calibrated);
* ``model.torchscript.pt``: the same model traced with TorchScript, loadable with
  ``torch.jit.load`` without moo_compress (written when tracing succeeds).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from moo_compress.compress import compress
from moo_compress.config import CompressionConfig
from moo_compress.weights import load_weights_file


def export_model(model: nn.Module, config: CompressionConfig, folder: Path) -> list[str]:
    """Write ``model`` (already compressed with ``config``) to ``folder``.

    Returns:
        Names of the files written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(config.to_json())
    torch.save(model.state_dict(), folder / "state_dict.pt")
    written = ["config.json", "state_dict.pt"]
    try:
        traced = torch.jit.trace(model.eval(), torch.zeros(config.input_shape))
        traced.save(str(folder / "model.torchscript.pt"))
        written.append("model.torchscript.pt")
    except Exception:  # tracing is optional; the state dict is the reference format
        pass
    return written


def load_compressed(base_model: nn.Module, folder: str | Path) -> nn.Module:
    """Rebuild a compressed model exported by :func:`export_model`.

    Args:
        base_model: The uncompressed architecture (its weights are replaced).
        folder: The export folder.

    Raises:
        ValueError: if the folder lacks a file, or the weights do not fit the model,
            naming the path or the first mismatching tensor.
    """
    folder = Path(folder)
    for name in ("config.json", "state_dict.pt"):
        if not (folder / name).is_file():
            raise ValueError(f"{folder / name} does not exist; export with export_model()")
    config = CompressionConfig.from_json((folder / "config.json").read_text())
    model = compress(base_model, config)
    return load_weights_file(model, folder / "state_dict.pt").eval()
