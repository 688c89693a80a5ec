"""Deployment regret: what a user who ships one configuration to the fleet loses.

For an accuracy floor (the baseline's accuracy minus ``drop``), the user deploys one
configuration from the front that a method *reported*: the one with the lowest reported
worst-cluster latency among the reported rows that meet the floor (ties: the lower
reported fleet average). A method whose front has no such row deploys the uncompressed
baseline, which meets every floor. The deployed configuration is then scored on the
truth:

* worst-cluster regret = its true worst-cluster ms / the lowest true worst-cluster ms of
  any reference configuration that meets the floor;
* average regret = its true fleet-average ms / the lowest true fleet-average ms of any
  reference configuration that meets the floor.

1.0 is perfect; 1.05 is 5 % slower than the best that could be deployed. Objectives are
``[loss, fleet-average ms, worst-cluster ms]`` with ``loss = 1 - accuracy`` (minimised),
as in :mod:`benchmarks.compare.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moo_compress.front_choice import DEPLOYMENT_DROPS

DROPS = DEPLOYMENT_DROPS
"""Accuracy floors as drops below the baseline (0.005 = half a point): the budgets at
which :mod:`moo_compress.front_choice` keeps the deployed rows."""


def deployed_index(reported: np.ndarray, max_loss: float) -> int | None:
    """The row of a reported front that a user would deploy, or None.

    Args:
        reported: ``(N, 3)`` reported ``[loss, average ms, worst-cluster ms]``.
        max_loss: The largest loss allowed (the floor).

    Returns:
        Index of the qualifying row with the lowest worst-cluster ms (then average ms),
        or None if no row has ``loss <= max_loss``.
    """
    reported = np.atleast_2d(np.asarray(reported, dtype=float))
    ok = np.flatnonzero(reported[:, 0] <= max_loss + 1e-12) if reported.size else []
    if len(ok) == 0:
        return None
    order = np.lexsort((reported[ok, 1], reported[ok, 2]))
    return int(ok[order[0]])


def best_at_floor(reference: np.ndarray, max_loss: float) -> tuple[float, float]:
    """(lowest average ms, lowest worst-cluster ms) of the true ``(M, 3)`` reference
    objectives that meet ``loss <= max_loss``, each taken over all qualifying rows."""
    reference = np.atleast_2d(np.asarray(reference, dtype=float))
    ok = reference[reference[:, 0] <= max_loss + 1e-12]
    if len(ok) == 0:
        raise ValueError(f"no reference configuration meets loss <= {max_loss:.4f}")
    return float(ok[:, 1].min()), float(ok[:, 2].min())


@dataclass(frozen=True)
class Regret:
    """Regret of one deployment at one floor.

    Attributes:
        drop: The floor, as an accuracy drop below the baseline.
        worst: True worst-cluster ms of the deployed configuration over the best.
        average: True fleet-average ms of the deployed configuration over the best.
        fell_back: True if no reported row met the floor and the baseline was deployed.
    """

    drop: float
    worst: float
    average: float
    fell_back: bool


def regret(
    reported: np.ndarray,
    true: np.ndarray,
    reference: np.ndarray,
    baseline: np.ndarray,
    drop: float,
) -> Regret:
    """Deployment regret of a reported front at one accuracy floor.

    Args:
        reported: ``(N, 3)`` the method's reported objectives (its own measurements).
        true: ``(N, 3)`` the true objectives of the same rows.
        reference: ``(M, 3)`` true objectives of the reference configurations (the exact
            front, or an oracle's); the baseline is added to it.
        baseline: ``(3,)`` true objectives of the uncompressed configuration.
        drop: Accuracy drop allowed below the baseline (absolute, 0.01 = 1 point).
    """
    baseline = np.asarray(baseline, dtype=float)
    max_loss = baseline[0] + drop
    best_avg, best_worst = best_at_floor(np.vstack([np.atleast_2d(reference), baseline]), max_loss)
    index = deployed_index(reported, max_loss)
    chosen = baseline if index is None else np.atleast_2d(true)[index]
    return Regret(drop, chosen[2] / best_worst, chosen[1] / best_avg, index is None)


def regrets(
    reported: np.ndarray,
    true: np.ndarray,
    reference: np.ndarray,
    baseline: np.ndarray,
    drops: tuple[float, ...] = DROPS,
) -> list[Regret]:
    """:func:`regret` at every floor of ``drops``."""
    return [regret(reported, true, reference, baseline, d) for d in drops]
