"""Quality of a method's front, judged on the ground truth.

Every front is scored on true objectives ``F = [1 - accuracy, fleet-average ms,
worst-cluster ms]`` (see :meth:`benchmarks.compare.task.Task.true_objectives`), scaled
by the baseline (uncompressed configuration): ``[loss, avg / avg_0, worst / worst_0]``.

* **Hypervolume fraction:** HV of the method's non-dominated scaled front over HV of
  the oracle's, reference point ``(loss_0 + 0.10, 1.1, 1.1)``: the region within 10
  accuracy points of the baseline and no slower than 1.1x the baseline. Above 1.0 means
  the method found points the oracle missed.
* **IGD+** (Ishibuchi et al., 2015) of the scaled front to the scaled oracle front;
  lower is better, 0 when the oracle front is covered.
* **Iso-accuracy speed-ups:** among front points whose accuracy is at most ``tolerance``
  below the baseline's, the largest ``avg_0 / avg`` and ``worst_0 / worst``
  (each chosen separately); NaN if no point qualifies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.indicators.igd_plus import IGDPlus
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

LOSS_MARGIN = 0.10
"""Hypervolume reference on the loss axis: this far above the baseline's loss."""
LATENCY_REFERENCE = 1.1
"""Hypervolume reference on both latency axes, as a multiple of the baseline's."""


@dataclass(frozen=True)
class Scale:
    """The baseline's true objectives (3,): loss, average ms, worst-cluster ms."""

    baseline: np.ndarray

    def __call__(self, F: np.ndarray) -> np.ndarray:
        """(N, 3) scaled objectives."""
        F = np.atleast_2d(np.asarray(F, dtype=float))
        return F / np.array([1.0, self.baseline[1], self.baseline[2]])

    @property
    def reference_point(self) -> np.ndarray:
        return np.array([self.baseline[0] + LOSS_MARGIN, LATENCY_REFERENCE, LATENCY_REFERENCE])


def non_dominated_index(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of (N, m) ``F`` (all minimised)."""
    F = np.atleast_2d(F)
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(NonDominatedSorting().do(F, only_non_dominated_front=True), dtype=int)


def non_dominated(F: np.ndarray) -> np.ndarray:
    """The non-dominated rows of (N, m) ``F`` (all minimised)."""
    F = np.atleast_2d(F)
    return F[non_dominated_index(F)]


def hypervolume(F: np.ndarray, scale: Scale) -> float:
    """Hypervolume of the scaled non-dominated rows of (N, 3) true objectives."""
    F = np.atleast_2d(F)
    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=scale.reference_point)(scale(non_dominated(F))))


def igd_plus(F: np.ndarray, oracle: np.ndarray, scale: Scale) -> float:
    """IGD+ of (N, 3) ``F`` to the (M, 3) oracle front, both scaled; inf if N = 0."""
    F = np.atleast_2d(F)
    if len(F) == 0:
        return float("inf")
    return float(IGDPlus(scale(non_dominated(oracle)))(scale(non_dominated(F))))


def iso_accuracy_speedups(
    F: np.ndarray, baseline: np.ndarray, tolerance: float
) -> tuple[float, float]:
    """(average, worst-cluster) speed-up over the baseline at iso-accuracy.

    Args:
        F: (N, 3) true objectives of a front.
        baseline: (3,) true objectives of the uncompressed configuration.
        tolerance: Accuracy drop allowed (absolute, e.g. 0.005 = 0.5 points).
    """
    F = np.atleast_2d(F)
    ok = F[F[:, 0] <= baseline[0] + tolerance + 1e-12] if len(F) else F
    if len(ok) == 0:
        return float("nan"), float("nan")
    return float(baseline[1] / ok[:, 1].min()), float(baseline[2] / ok[:, 2].min())


@dataclass(frozen=True)
class Scores:
    """The metrics of one front."""

    hv_fraction: float
    igd_plus: float
    avg_speedup: float
    worst_speedup: float
    front_size: int


def score(F: np.ndarray, oracle: np.ndarray, baseline: np.ndarray, tolerance: float) -> Scores:
    """All metrics of (N, 3) true objectives ``F`` against the (M, 3) oracle front."""
    scale = Scale(np.asarray(baseline, dtype=float))
    reference = hypervolume(oracle, scale)
    avg, worst = iso_accuracy_speedups(F, baseline, tolerance)
    return Scores(
        hv_fraction=hypervolume(F, scale) / reference if reference > 0 else float("nan"),
        igd_plus=igd_plus(F, oracle, scale),
        avg_speedup=avg,
        worst_speedup=worst,
        front_size=len(non_dominated(F)) if len(np.atleast_2d(F)) else 0,
    )
