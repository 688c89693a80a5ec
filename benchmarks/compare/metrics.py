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
* **Iso-accuracy speed-ups:** ``avg_0 / avg`` and ``worst_0 / worst`` of one
  configuration: the one a user would deploy at the floor ``tolerance`` below the
  baseline's accuracy, chosen by the method's *reported* values (lowest reported
  worst-cluster ms, see :func:`benchmarks.compare.regret.deployed_index`), scored on
  the truth. Without a qualifying row the baseline is deployed (1.0, 1.0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.indicators.igd_plus import IGDPlus
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from benchmarks.compare.regret import deployed_index

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
    reported: np.ndarray, true: np.ndarray, baseline: np.ndarray, tolerance: float
) -> tuple[float, float]:
    """(average, worst-cluster) speed-up over the baseline of the one configuration
    deployed at iso-accuracy.

    Args:
        reported: (N, 3) reported objectives of a front (the method's measurements).
        true: (N, 3) true objectives of the same rows.
        baseline: (3,) true objectives of the uncompressed configuration.
        tolerance: Accuracy drop allowed (absolute, e.g. 0.005 = 0.5 points).
    """
    index = deployed_index(reported, baseline[0] + tolerance) if len(reported) else None
    chosen = np.asarray(baseline, dtype=float) if index is None else np.atleast_2d(true)[index]
    return float(baseline[1] / chosen[1]), float(baseline[2] / chosen[2])


@dataclass(frozen=True)
class Scores:
    """The front metrics of one run (verified rows only)."""

    hv_fraction: float
    igd_plus: float
    avg_speedup: float
    worst_speedup: float


def score(
    true: np.ndarray,
    reported: np.ndarray,
    reference: np.ndarray,
    baseline: np.ndarray,
    tolerance: float,
) -> Scores:
    """The metrics of a verified front: (N, 3) ``true`` and ``reported`` objectives of
    the same rows, against the (M, 3) reference front."""
    scale = Scale(np.asarray(baseline, dtype=float))
    true = np.atleast_2d(np.asarray(true, dtype=float)).reshape(-1, 3)
    volume = hypervolume(reference, scale)
    avg, worst = iso_accuracy_speedups(
        np.atleast_2d(reported).reshape(-1, 3), true, baseline, tolerance
    )
    return Scores(
        hv_fraction=hypervolume(true, scale) / volume if volume > 0 else float("nan"),
        igd_plus=igd_plus(true, reference, scale),
        avg_speedup=avg,
        worst_speedup=worst,
    )
