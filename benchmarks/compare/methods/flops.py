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
    def objectives(X: np.ndarray) -> np.ndarray:
        return np.column_stack([1.0 - task.accuracy(X), task.macs(X)])

    return MethodResult(optimise(task.problem, objectives, 2, seed), 0, 0.0)
