"""``ours``: clustered GP surrogates with active learning inside NSGA-II.

:class:`~moo_compress.search.FleetSearch` as the runner uses it, with the problem's
default settings and the task's measurement budget: one multi-task GP across clusters
(``transfer=True``) or independent GPs per cluster (``transfer=False``). Its budget
includes re-measuring the final front for real on every cluster.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.compare.methods.result import MethodResult
from benchmarks.compare.task import Task
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.problem_file import fingerprint
from moo_compress.search import FleetSearch, SearchSettings
from moo_compress.store import MeasurementStore


def fleet_search(
    task: Task, seed: int, transfer: bool, clusters: FleetClusters | None = None
) -> MethodResult:
    """Run a FleetSearch on the task's problem with the task's budget and accuracy, on
    ``clusters`` (default: the problem's), in a throw-away store; its measured front and
    the measurements and device-seconds the store recorded."""
    problem = task.problem
    settings = SearchSettings(
        budget=task.budget,
        pop_size=problem.pop_size,
        generations=problem.generations,
        transfer=transfer,
        seed=seed,
    )
    with tempfile.TemporaryDirectory() as folder:
        store = MeasurementStore(Path(folder) / "m.sqlite", fingerprint(problem), "compare")
        try:
            search = FleetSearch(
                problem, store, settings, clusters=clusters, evaluator=task.evaluator
            )
            result = search.run()
            records = store.to_dataframe()
        finally:
            store.close()
    latency = records[records["kind"] == "latency"]
    seconds = sum(sum(json.loads(samples)) for samples in latency["samples_json"])
    return MethodResult(np.asarray(result.X), len(latency), seconds / 1e3)


def ours(task: Task, seed: int) -> MethodResult:
    """Multi-task GP across clusters (transfer on)."""
    return fleet_search(task, seed, transfer=True)


def ours_notransfer(task: Task, seed: int) -> MethodResult:
    """Independent GP per cluster (transfer off)."""
    return fleet_search(task, seed, transfer=False)
