"""What a method returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmarks.compare.meter import Entry


@dataclass(frozen=True)
class MethodResult:
    """One method run.

    The harness, not the method, decides what is verified: a reported row is verified
    when ``log`` holds its latency on every cluster's representative and the method
    asked for its accuracy (see :func:`benchmarks.compare.protocol.reported_objectives`).
    Its reported objectives are then those measured values; an unverified row is shown
    with ``predicted`` and left out of every headline score.

    Attributes:
        X: (P, n_var) the configurations the method reports, ``P <= M``.
        log: Every real latency measurement the method took, in order.
        predicted: (P, 3) the method's own ``[loss, average ms, worst ms]`` belief for
            each row (used only for unverified rows), or None.
    """

    X: np.ndarray
    log: tuple[Entry, ...] = field(default_factory=tuple)
    predicted: np.ndarray | None = None
