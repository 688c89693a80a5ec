"""The anytime view of deployment regret: how many measurements until it is good.

Replay a method's measurement log in the order the measurements were taken (the
:class:`~benchmarks.compare.meter.Meter`'s order, or the store's insertion order for a
search). After the ``n``-th measurement, the configurations the method could deploy
are those it has measured on every cluster's representative and whose accuracy it
asked for; the user deploys among them by the regret rule
(:func:`benchmarks.compare.regret.regret`, on those measured values) and the uncompressed
baseline while none qualifies. The result, per accuracy floor, is the first ``n`` at
which the deployed configuration's true worst-cluster regret is below ``THRESHOLD``
(0 if the baseline already is; NaN if never within the run).
"""

from __future__ import annotations

import numpy as np

from benchmarks.compare.meter import Entry
from benchmarks.compare.regret import DROPS, regret
from benchmarks.compare.task import AccuracyLedger, Task

THRESHOLD = 1.05
"""Worst-cluster regret counted as good enough (5 % slower than the best)."""


def measurements_to_regret(
    task: Task,
    log: tuple[Entry, ...],
    ledger: AccuracyLedger,
    reference: np.ndarray,
    baseline: np.ndarray,
    drops: tuple[float, ...] = DROPS,
    threshold: float = THRESHOLD,
) -> list[float]:
    """Per floor of ``drops``, the measurements until the worst-cluster regret first
    drops below ``threshold`` (see the module docstring).

    Args:
        log: The method's measurements in order.
        ledger: Its accuracy evaluations.
        reference: ``(R, 3)`` true objectives of the reference front.
        baseline: ``(3,)`` true objectives of the uncompressed configuration.
    """
    k = task.problem.clusters.k
    latency: dict[bytes, dict[int, float]] = {}
    events: list[tuple[int, bytes]] = []  # (measurements so far, configuration complete)
    for n, entry in enumerate(log, start=1):
        if entry.cluster is None or entry.key is None:
            continue
        per_cluster = latency.setdefault(entry.key, {})
        if entry.cluster in per_cluster:
            continue
        per_cluster[entry.cluster] = entry.median_ms
        if len(per_cluster) == k and entry.key in ledger.values:
            events.append((n, entry.key))
    empty = np.zeros((0, 3))
    result = [
        0.0 if regret(empty, empty, reference, baseline, d).worst < threshold else float("nan")
        for d in drops
    ]
    if not events:
        return result
    X = np.array([np.frombuffer(key, dtype=np.int64) for _, key in events])
    true = task.true_objectives(X)
    accuracy = np.array([ledger.values[key] for _, key in events])
    measured = np.array([[latency[key][c] for c in range(k)] for _, key in events])
    reported = task.problem.objectives(accuracy, measured)
    for i, drop in enumerate(drops):
        if np.isfinite(result[i]):
            continue
        for j, (n, _) in enumerate(events):
            deployed = regret(reported[: j + 1], true[: j + 1], reference, baseline, drop)
            if deployed.worst < threshold:
                result[i] = float(n)
                break
    return result
