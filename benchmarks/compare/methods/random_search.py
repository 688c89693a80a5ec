"""``random``: uniform random configurations, each measured for real on every cluster.

``budget // K`` seeded uniform random configurations (the baseline first) are measured
on each cluster's representative; at most M of the non-dominated measured ones are
reported, chosen by greedy hypervolume (:func:`~benchmarks.compare.protocol.report`,
which measures nothing more: they are all measured already).
"""

from __future__ import annotations

import numpy as np

from benchmarks.compare.metrics import non_dominated_index
from benchmarks.compare.protocol import new_meter, report
from benchmarks.compare.result import MethodResult
from benchmarks.compare.task import Task


def random_search(task: Task, seed: int) -> MethodResult:
    devices = task.representatives
    meter = new_meter(task)
    n = task.budget // len(devices)
    rng = np.random.default_rng(seed)
    baseline = task.problem.baseline()[None]
    X = np.vstack([baseline, task.random_configs(rng, n)])
    X = X[np.sort(np.unique(X, axis=0, return_index=True)[1])][:n]
    F = task.problem.objectives(task.accuracy(X), meter.measure_rows(devices, X))
    front = non_dominated_index(F)
    return report(task, meter, X[front], F[front], F[0])
