"""``flops``: no device feedback in the search; NSGA-II on accuracy loss and MACs.

The common proxy of hardware-agnostic compression: minimise ``[1 - accuracy, MACs]``
(analytic, :meth:`benchmarks.compare.task.Task.macs`) with the same NSGA-II settings
as ``ours``. The only latency measurements are the verification of its report: at most
M configurations chosen by greedy hypervolume in ``[loss, MACs]``, each measured on
every cluster (:func:`~benchmarks.compare.protocol.report`).
"""

from __future__ import annotations

import numpy as np

from benchmarks.compare.protocol import new_meter, report
from benchmarks.compare.result import MethodResult
from benchmarks.compare.task import Task
from moo_compress.nsga import optimise


def flops(task: Task, seed: int) -> MethodResult:
    def objectives(X: np.ndarray) -> np.ndarray:
        return np.column_stack([1.0 - task.accuracy(X), task.macs(X)])

    X = optimise(task.problem, objectives, 2, seed)
    baseline = objectives(task.problem.baseline()[None])[0]
    return report(task, new_meter(task), X, objectives(X), baseline)
