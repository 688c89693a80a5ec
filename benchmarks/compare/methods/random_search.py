"""``random``: uniform random configurations, each measured for real on every cluster.

``budget // K`` seeded uniform random configurations (plus the baseline) are measured on
each cluster's representative; the non-dominated measured ones are the front.
"""

from __future__ import annotations

import numpy as np

from benchmarks.compare.meter import Meter
from benchmarks.compare.methods.result import MethodResult
from benchmarks.compare.metrics import non_dominated_index
from benchmarks.compare.task import Task


def random_search(task: Task, seed: int) -> MethodResult:
    devices = task.representatives
    meter = Meter(task.decode, task.budget)
    n = task.budget // len(devices)
    rng = np.random.default_rng(seed)
    X = np.unique(np.vstack([task.problem.baseline()[None], task.random_configs(rng, n)]), axis=0)
    X = X[:n]
    F = task.problem.objectives(task.accuracy(X), meter.measure_rows(devices, X))
    return MethodResult(X[non_dominated_index(F)], meter.count, meter.device_seconds)
