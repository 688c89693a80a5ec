"""A concrete compression of one model: kept channels per unit and a bit-width per layer."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

FLOAT_BITS = 32
"""Bit-width that means "unquantised float32"."""

HALF_BITS = 16
"""Bit-width that means float16 (the precision an edge GPU runs natively)."""


@dataclass(frozen=True)
class CompressionConfig:
    """Everything :func:`moo_compress.compress.compress` needs, keyed by layer names.

    Attributes:
        input_shape: Shape of one input batch, e.g. (1, 3, 224, 224).
        channels: Root layer of each prunable unit -> output channels kept (>= 1).
        bits: Every quantisable layer (Conv2d/Linear) -> bit-width. 32 is float32,
            16 is float16, 8 and below are integer weights and activations.
        ratios: Gene name -> pruning ratio in [0, 1) that produced ``channels``
            (informative; lets :meth:`SearchSpace.encode` invert the config).
    """

    input_shape: tuple[int, ...]
    channels: dict[str, int]
    bits: dict[str, int]
    ratios: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), stable across runs and processes."""
        return json.dumps(
            {
                "input_shape": list(self.input_shape),
                "channels": self.channels,
                "bits": self.bits,
                "ratios": self.ratios,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> CompressionConfig:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: if ``text`` is not JSON or lacks a field, naming it.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config is not valid JSON: {exc}") from exc
        missing = {"input_shape", "channels", "bits"} - set(data)
        if missing:
            raise ValueError(f"config JSON lacks field(s) {sorted(missing)}")
        return cls(
            input_shape=tuple(int(d) for d in data["input_shape"]),
            channels={k: int(v) for k, v in data["channels"].items()},
            bits={k: int(v) for k, v in data["bits"].items()},
            ratios={k: float(v) for k, v in data.get("ratios", {}).items()},
        )

    @property
    def digest(self) -> str:
        """First 16 hex digits of the SHA-256 of :meth:`to_json`."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]
