"""``oracle``: NSGA-II on the true latency of every device, unlimited measurements.

It sees what no real method can: each cluster's noiseless mean latency over all of its
devices (:meth:`benchmarks.compare.task.Task.true_objectives`), for every candidate,
with a population and a generation count ``ORACLE_EFFORT`` times the problem's. Where
the problem enumerates its space (:meth:`FleetProblem.enumerate
<moo_compress.problem.FleetProblem.enumerate>`, e.g. NAS-Bench-201's 15,625 cells) the
oracle is the exact Pareto front instead.
"""

from __future__ import annotations

from benchmarks.compare.methods.result import MethodResult
from benchmarks.compare.metrics import non_dominated_index
from benchmarks.compare.nsga import optimise
from benchmarks.compare.task import Task

ORACLE_EFFORT = 2
"""Population and generations of the oracle, as multiples of the problem's."""


def oracle(task: Task, seed: int) -> MethodResult:
    problem = task.problem
    X = problem.enumerate()
    if X is not None:
        return MethodResult(X[non_dominated_index(task.true_objectives(X))], 0, 0.0)
    X = optimise(problem, task.true_objectives, 3, seed, effort=ORACLE_EFFORT)
    return MethodResult(X, 0, 0.0)
