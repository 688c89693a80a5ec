"""Which points of a front to report: the deployment rows, then a greedy hypervolume choice.

A search or a baseline that may report at most ``M`` configurations (benchmark protocol
v2; the search's verified front) picks them here, so that every method uses the same
rule. Hypervolume is monotone submodular in the chosen set, so the greedy choice reaches
at least ``1 - 1/e`` (about 63 %) of the best subset's hypervolume (Nemhauser et al.,
1978), and in practice nearly all of it on 3-objective fronts.

A user deploys one configuration at an accuracy budget: the fastest in the worst cluster
among those within the budget of the baseline's accuracy (:func:`deployment_rows`, the
rule of :mod:`benchmarks.compare.regret`). A greedy choice of ``M`` rows by hypervolume
can skip the row that is fastest at a common budget (on nb201_fleet's exact front, the
16 rows it picks deploy 9 % slower than the best at 1 point below the baseline), so the
rows deployed at :data:`DEPLOYMENT_DROPS` are taken first (there: 0.9968 of the front's
hypervolume instead of 0.9972, and no deployment regret at any of the four drops; on
nb201_phones', where greedy skips none, 0.9970 instead of 0.9977).
"""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np

DEPLOYMENT_DROPS = (0.005, 0.01, 0.02, 0.05)
"""Accuracy budgets a user deploys at, as drops below the baseline's accuracy (fractions
of 1: 0.005 is half a point)."""


def deployment_rows(
    F: np.ndarray, baseline_loss: float, drops: Sequence[float] = DEPLOYMENT_DROPS
) -> np.ndarray:
    """The rows a user would deploy at each accuracy budget.

    Args:
        F: ``(n, k)`` objectives ``[loss, ..., worst]``, all minimised, ``loss = 1 -
            accuracy``; the last column is the one a deployment minimises (the
            worst-cluster ms, or MACs for ``[loss, MACs]``), ties go to the lower
            second column (the fleet-average ms), then to the lower index.
        baseline_loss: The uncompressed configuration's loss.
        drops: Accuracy drops below the baseline (fractions of 1).

    Returns:
        ``(p,)`` distinct int indices into ``F`` in the order of ``drops``, ``p <=
        len(drops)``: for each drop that some row meets (``loss <= baseline_loss +
        drop``), the deployed row.
    """
    F = np.atleast_2d(np.asarray(F, dtype=float))
    rows: list[int] = []
    for drop in drops:
        ok = np.flatnonzero(F[:, 0] <= baseline_loss + drop + 1e-12) if F.size else []
        if len(ok):
            best = int(ok[np.lexsort((F[ok, 1], F[ok, -1]))[0]])
            if best not in rows:
                rows.append(best)
    return np.array(rows, dtype=int)


def greedy_hv_subset(
    F: np.ndarray, m: int, ref_point: np.ndarray, first: Sequence[int] = ()
) -> np.ndarray:
    """Indices of at most ``m`` rows of ``F`` chosen one at a time by hypervolume gain.

    Args:
        F: ``(n, k)`` objectives, all minimised, in any common scale (e.g. scaled by a
            baseline so that no objective dominates the volume by its units).
        m: The most rows to choose, ``>= 1``.
        ref_point: ``(k,)`` hypervolume reference point; a row that does not strictly
            dominate it adds no volume and is never chosen.
        first: Indices taken before the greedy choice, in their order, whatever they add
            (e.g. :func:`deployment_rows`); those that do not dominate ``ref_point`` and
            those past ``m`` are skipped.

    Returns:
        ``(p,)`` int indices into ``F``, ``p <= m``: the taken ``first`` rows, then the
        others in the order chosen (largest gain first). Fewer than ``m`` when fewer rows
        add volume. Ties go to the lower index.
    """
    F = np.atleast_2d(np.asarray(F, dtype=float))
    ref = np.asarray(ref_point, dtype=float)
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    if F.ndim != 2 or F.shape[1] != ref.shape[0]:
        raise ValueError(f"F must be (n, {ref.shape[0]}) to match ref_point, got {F.shape}")
    candidates = [i for i in range(len(F)) if np.all(F[i] < ref)]
    chosen = [int(i) for i in dict.fromkeys(first) if int(i) in candidates][:m]
    candidates = [i for i in candidates if i not in chosen]
    volume = moocore.hypervolume(F[chosen], ref=ref) if chosen else 0.0
    while candidates and len(chosen) < m:
        gains = [moocore.hypervolume(F[chosen + [i]], ref=ref) - volume for i in candidates]
        best = int(np.argmax(gains))
        if gains[best] <= 0.0:
            break
        volume += gains[best]
        chosen.append(candidates.pop(best))
    return np.array(chosen, dtype=int)
