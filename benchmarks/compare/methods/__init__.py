"""The compared methods, one module each; :data:`METHODS` maps a name to its runner.

Every runner is ``run(task, seed) -> MethodResult``. All get the task's measurement
budget (``task.budget`` real latency measurements), except ``oracle`` (unlimited,
noiseless), ``flops`` (none) and ``hdap_5000`` (HDAP's own 5,000 per cluster); all
get the same seeds.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.compare.methods.flops import flops
from benchmarks.compare.methods.hdap import hdap, hdap_5000
from benchmarks.compare.methods.mobo import mobo
from benchmarks.compare.methods.nominal import nominal
from benchmarks.compare.methods.oneproxy import oneproxy
from benchmarks.compare.methods.oracle import oracle
from benchmarks.compare.methods.ours import ours, ours_notransfer
from benchmarks.compare.methods.random_search import random_search
from benchmarks.compare.methods.result import MethodResult
from benchmarks.compare.task import Task

Runner = Callable[[Task, int], MethodResult]

METHODS: dict[str, Runner] = {
    "ours": ours,
    "ours_notransfer": ours_notransfer,
    "hdap": hdap,
    "hdap_5000": hdap_5000,
    "oneproxy": oneproxy,
    "mobo": mobo,
    "nominal": nominal,
    "flops": flops,
    "random": random_search,
    "oracle": oracle,
}
