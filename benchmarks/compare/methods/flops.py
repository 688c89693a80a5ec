"""``flops``: no device feedback at all; NSGA-II on accuracy loss and MACs.

The common proxy of hardware-agnostic compression: minimise ``[1 - accuracy, MACs]``
(analytic, :meth:`benchmarks.compare.task.Task.macs`) with the same NSGA-II settings
as ``ours``. No latency is measured.
"""

from __future__ import annotations

import numpy as np

from benchmarks.compare.methods.result import MethodResult
from benchmarks.compare.nsga import optimise
from benchmarks.compare.task import Task


def flops(task: Task, seed: int) -> MethodResult:
    problem = task.problem

    def objectives(X: np.ndarray) -> np.ndarray:
        return np.column_stack([1.0 - task.accuracy(X), task.macs(X)])

    X = optimise(
        problem.space.xl,
        problem.space.xu,
        objectives,
        2,
        pop_size=problem.pop_size,
        generations=problem.generations,
        seed=seed,
        initial=problem.anchors(),
    )
    return MethodResult(X, 0, 0.0)
