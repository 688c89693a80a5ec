"""A concrete compression of one model: kept channels per unit and a bit-width per layer."""

from __future__ import annotations

import hashlib
import json
import math
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
            ValueError: if ``text`` is not JSON, is not an object, lacks a field or has
                a field of the wrong type, naming it.
        """
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError, RecursionError) as exc:
            raise ValueError(f"config is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"config JSON must be an object, got {type(data).__name__}")
        missing = {"input_shape", "channels", "bits"} - set(data)
        if missing:
            raise ValueError(f"config JSON lacks field(s) {sorted(missing)}")
        fields = {"input_shape": list, "channels": dict, "bits": dict, "ratios": dict}
        for name, kind in fields.items():
            if name in data and not isinstance(data[name], kind):
                raise ValueError(f"config JSON field {name!r} must be a {kind.__name__}")
        try:
            return cls(
                input_shape=tuple(_integer(d) for d in data["input_shape"]),
                channels={k: _integer(v) for k, v in data["channels"].items()},
                bits={k: _integer(v) for k, v in data["bits"].items()},
                ratios={k: _number(v) for k, v in data.get("ratios", {}).items()},
            )
        except TypeError as exc:
            raise ValueError(f"config JSON has a value of the wrong type: {exc}") from None

    @property
    def digest(self) -> str:
        """First 16 hex digits of the SHA-256 of :meth:`to_json`."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def _integer(value: object) -> int:
    """``value`` if it is a JSON integer (not a bool), else ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _number(value: object) -> float:
    """``value`` as a float if it is a finite JSON number (not a bool), else ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"expected a finite number, got {value!r}")
    return float(value)
