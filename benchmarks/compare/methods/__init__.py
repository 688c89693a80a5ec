"""The compared methods, one module each; :data:`METHODS` maps a name to its runner.

Every runner is ``run(task, seed) -> MethodResult`` and runs under protocol v2 (see
:mod:`benchmarks.compare.protocol`): the same latency and accuracy budgets, at most M
reported configurations, the same seeds. The oracle and the floors are not methods:
see :mod:`benchmarks.compare.reference`.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.compare.methods.flops import flops
from benchmarks.compare.methods.hdap import hdap
from benchmarks.compare.methods.mobo import mobo
from benchmarks.compare.methods.nominal import nominal
from benchmarks.compare.methods.oneproxy import oneproxy
from benchmarks.compare.methods.ours import ours, ours_v1
from benchmarks.compare.methods.random_search import random_search
from benchmarks.compare.result import MethodResult
from benchmarks.compare.task import Task

Runner = Callable[[Task, int], MethodResult]

METHODS: dict[str, Runner] = {
    "ours": ours,
    "ours_v1": ours_v1,
    "hdap": hdap,
    "oneproxy": oneproxy,
    "mobo": mobo,
    "nominal": nominal,
    "flops": flops,
    "random": random_search,
}
