"""``nominal``: compress for "the" device, as if the fleet had not drifted.

The same search as ``ours``, but every search measurement is made on one nominal,
undrifted unit of the SKU (drift factors 1, the representatives' noise; see
:meth:`benchmarks.compare.task.Task.nominal_device`), as a team does that tunes for the
device on its desk. The fleet's clusters never enter the search. Its measured front
(at most M configurations, chosen by the search on the nominal device) is then
verified on every cluster like any other report (:func:`~.protocol.report`); the
search gets the budget less that verification.
"""

from __future__ import annotations

import numpy as np

from benchmarks.compare.methods.ours import fleet_search, store_log
from benchmarks.compare.protocol import new_meter, report
from benchmarks.compare.result import MethodResult
from benchmarks.compare.task import Task
from moo_compress.fleet_clusters import FleetClusters


def nominal(task: Task, seed: int) -> MethodResult:
    nominal_clusters = FleetClusters.from_devices([task.nominal_device()])
    search_budget = task.budget - task.verification_cost
    result, rows = fleet_search(task, seed, search_budget, nominal_clusters)
    searched = store_log(task, rows, clusters=False)
    meter = new_meter(task, task.budget - len(searched))
    X = np.asarray(result.X)
    F = np.column_stack([1.0 - result.accuracy, result.latency[:, 0], result.latency[:, 0]])
    references = result.reference_rows
    row = int(np.flatnonzero((task.problem.baseline() == references.X).all(axis=1))[0])
    ms = references.latency[row, 0]
    baseline = np.array([1.0 - references.accuracy[row], ms, ms])
    reported = report(task, meter, X, F, baseline)
    return MethodResult(reported.X, searched + reported.log)
