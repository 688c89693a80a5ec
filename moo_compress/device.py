"""The device abstraction: something that returns latency for a compressed configuration.

Subclass :class:`Device` to add hardware. A subclass sets ``device_id`` and
``supported_bits`` and implements :meth:`Device.measure`; :meth:`Device.bind` hands it the
search space (and so the model) whose configurations it will be asked to run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from moo_compress.config import CompressionConfig
from moo_compress.measurement import Measurement

if TYPE_CHECKING:
    import numpy as np

    from moo_compress.decision_space import DecisionSpace


class Device(ABC):
    """A device that can run a compressed model and time it.

    Attributes:
        device_id: Unique name of the unit, e.g. ``"jetson-017"``.
        supported_bits: Bit-widths the device runs (32 = float32, 16 = float16,
            <= 8 integer).
        shared_resource: Name of a resource this device shares with other devices of
            its process, on which one measurement runs at a time (e.g. this machine's
            CPU), or None. The dispatcher then measures those devices one after
            another, so that no measurement queues for the resource inside a worker.
    """

    shared_resource: str | None = None

    def __init__(self, device_id: str, supported_bits: frozenset[int] | set[int]) -> None:
        self.device_id = device_id
        self.supported_bits = frozenset(int(b) for b in supported_bits)
        self.space: DecisionSpace | None = None

    def bind(self, space: DecisionSpace) -> None:
        """Tell the device which model and search space its configurations belong to.

        Raises:
            ValueError: if the space offers a bit-width the device does not support.
        """
        unsupported = sorted(set(space.bit_widths) - self.supported_bits)
        if unsupported:
            raise ValueError(
                f"device {self.device_id!r} does not support bit-width(s) {unsupported}; "
                f"allowed: {sorted(self.supported_bits)}"
            )
        self.space = space

    def check(self, config: CompressionConfig) -> None:
        """Raise ``ValueError`` if ``config`` uses a bit-width this device lacks."""
        for layer, bits in config.bits.items():
            if bits not in self.supported_bits:
                raise ValueError(
                    f"device {self.device_id!r}: layer {layer!r} has {bits} bits; "
                    f"allowed: {sorted(self.supported_bits)}"
                )

    @abstractmethod
    def measure(self, config: CompressionConfig) -> Measurement:
        """Run ``config`` at batch size 1 and return its latency samples (ms)."""

    def true_latency_ms(self, X: np.ndarray) -> np.ndarray | None:
        """(N,) noiseless latency in ms of a population (N, n_var) of the bound space,
        for evaluation only (never shown to a search); None (the default) where the
        device has no ground truth, as real hardware has not."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.device_id!r})"
