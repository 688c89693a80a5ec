"""``ours``: the fleet search, clustered GP surrogates with active learning in NSGA-II.

:class:`~moo_compress.search.FleetSearch` as the runner uses it, with the problem's
default settings, the task's measurement budget and ``max_front = M``:

* ``ours``: the runner's default acquisition (:class:`~moo_compress.search.SearchSettings`);
* ``ours_v1``: the uncertainty policy with one multi-task GP across clusters, the search
  before issue 13 (an ablation of search v2).

Its budget includes re-measuring its final front (at most M configurations) for real on
every cluster; that front is its report.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.compare.meter import Entry
from benchmarks.compare.result import MethodResult
from benchmarks.compare.task import Task
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.problem_file import fingerprint
from moo_compress.search import FleetSearch, SearchResult, SearchSettings
from moo_compress.store import MeasurementStore


def fleet_search(
    task: Task,
    seed: int,
    budget: int,
    clusters: FleetClusters | None = None,
    **options,
) -> tuple[SearchResult, pd.DataFrame]:
    """Run a FleetSearch on the task's problem with ``budget`` latency measurements, the
    task's accuracy and ``max_front = M``, on ``clusters`` (default: the problem's), in a
    throw-away store; its result and the store's latency rows in the order taken.
    ``options``: other :class:`SearchSettings` (default: the runner's)."""
    problem = task.problem
    settings = SearchSettings(
        budget=budget,
        pop_size=problem.pop_size,
        generations=problem.generations,
        max_front=task.max_reported,
        seed=seed,
        **options,
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
    latency = records[records["kind"] == "latency"].sort_values("id")
    return result, latency


def store_log(task: Task, rows: pd.DataFrame, clusters: bool) -> tuple[Entry, ...]:
    """The log of a search's store rows. ``clusters``: whether the store's cluster
    indices are the task's (True for ``ours``; False for a search on other devices)."""
    space = task.problem.space
    entries = []
    for row in rows.itertuples():
        x = space.encode(space.config_type.from_json(row.config_json))
        entries.append(
            Entry(
                row.device_id,
                int(row.cluster) if clusters else None,
                np.asarray(x, dtype=np.int64).tobytes(),
                float(row.median),
                sum(json.loads(row.samples_json)) / 1e3,
            )
        )
    return tuple(entries)


def _ours(task: Task, seed: int, **options) -> MethodResult:
    result, rows = fleet_search(task, seed, task.budget, **options)
    return MethodResult(np.asarray(result.X), store_log(task, rows, clusters=True))


def ours(task: Task, seed: int) -> MethodResult:
    """The runner's default search."""
    return _ours(task, seed)


def ours_v1(task: Task, seed: int) -> MethodResult:
    """The uncertainty policy and one multi-task GP (the search before issue 13)."""
    return _ours(task, seed, acquisition="policy", transfer=True)
