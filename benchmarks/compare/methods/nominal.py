"""``nominal``: compress for "the" device, as if the fleet had not drifted.

The same search as ``ours`` with the same budget, but every measurement is made on one
nominal, undrifted unit of the SKU (drift factors 1; see
:meth:`benchmarks.compare.task.Task.nominal_device`), as a team does that tunes for the
device on its desk. The fleet's clusters never enter the search.
"""

from __future__ import annotations

from benchmarks.compare.methods.ours import fleet_search
from benchmarks.compare.methods.result import MethodResult
from benchmarks.compare.task import Task
from moo_compress.fleet_clusters import FleetClusters


def nominal(task: Task, seed: int) -> MethodResult:
    clusters = FleetClusters.from_devices([task.nominal_device()])
    return fleet_search(task, seed, transfer=False, clusters=clusters)
