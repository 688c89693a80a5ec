"""NSGA-II with the integer operators every search of this project uses.

:func:`optimise` runs it (or a GA, for one objective) on any objective callable: the
baselines of ``benchmarks/compare`` on their own models (true latency for the oracle,
MACs, trees, corrected proxies), and search v2 on its posterior.

Decision vectors are integer indices (see :mod:`moo_compress.decision_space`); pymoo's
real-valued SBX crossover and polynomial mutation act on them as floats and a rounding
repair brings the children back to integers; duplicates are eliminated. The fleet search
(:mod:`moo_compress.search`) and the benchmark baselines (``benchmarks/compare``) both
build their algorithms here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.problem import Problem
from pymoo.core.termination import TerminateIfAny, Termination
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.optimize import minimize
from pymoo.termination.max_gen import MaximumGenerationTermination

if TYPE_CHECKING:
    from moo_compress.problem import FleetProblem


def integer_variation() -> dict:
    """Keyword arguments of a pymoo genetic algorithm: integer SBX (p = 0.9, eta = 15),
    polynomial mutation (eta = 20), rounding repair, duplicate elimination."""
    return {
        "crossover": SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
        "mutation": PM(eta=20, vtype=float, repair=RoundingRepair()),
        "eliminate_duplicates": True,
    }


def make_nsga2(pop_size: int, sampling: np.ndarray) -> NSGA2:
    """NSGA-II of ``pop_size`` with :func:`integer_variation`, starting from the
    ``(pop_size, n_var)`` integer population ``sampling``."""
    return NSGA2(pop_size=pop_size, sampling=sampling, **integer_variation())


Objectives = Callable[[np.ndarray], np.ndarray]
"""(N, n_var) int population -> (N, m) objectives to minimise."""
Constraints = Callable[[np.ndarray], np.ndarray]
"""(N, n_var) int population -> (N, c) constraint values, feasible where <= 0."""
Stop = Callable[[], bool]
"""Asked after every generation: whether to end the run there."""


class _CallbackProblem(Problem):
    def __init__(self, xl, xu, n_obj: int, objectives: Objectives, constraints, n_constr):
        super().__init__(n_var=len(xl), n_obj=n_obj, n_ieq_constr=n_constr, xl=xl, xu=xu, vtype=int)
        self.objectives, self.constraints = objectives, constraints

    def _evaluate(self, X, out, *args, **kwargs):
        X = np.asarray(X).round().astype(np.int64)
        out["F"] = np.asarray(self.objectives(X), dtype=float).reshape(len(X), -1)
        if self.constraints is not None:
            out["G"] = np.asarray(self.constraints(X), dtype=float).reshape(len(X), -1)


class _StopWhen(Termination):
    """Ends a pymoo run after the generation at which ``stop()`` is true."""

    def __init__(self, stop: Stop) -> None:
        super().__init__()
        self.stop = stop

    def _update(self, algorithm) -> float:
        return 1.0 if self.stop() else 0.0


def optimise(
    problem: FleetProblem,
    objectives: Objectives,
    n_obj: int,
    seed: int,
    *,
    effort: int = 1,
    constraints: Constraints | None = None,
    n_constr: int = 0,
    generations: int | None = None,
    start: np.ndarray | None = None,
    stop: Stop | None = None,
) -> np.ndarray:
    """The best (non-dominated; for one objective, the single best feasible) decision
    vectors found in ``problem``'s bounds, as an (F, n_var) int array.

    Args:
        problem: Gives the bounds, the population size and generation count (each
            times ``effort``) and the anchors seeded into the first population (the
            rest uniform random).
        objectives: The objective callable; ``n_obj`` columns.
        constraints: Optional constraint callable; ``n_constr`` columns.
        generations: Generations instead of ``effort * problem.generations``. A run
            evaluates at most ``pop_size * generations`` configurations.
        start: (pop, n_var) int first population instead of the anchors and uniform
            random rows (its length sets the population size).
        stop: Asked after every generation; the run ends early at the first ``True``.
    """
    xl, xu = problem.space.xl, problem.space.xu
    callback = _CallbackProblem(xl, xu, n_obj, objectives, constraints, n_constr)
    if start is None:
        pop_size = effort * problem.pop_size
        start = np.random.default_rng(seed).integers(xl, xu + 1, size=(pop_size, len(xl)))
        anchors = problem.anchors()[:pop_size]
        start[: len(anchors)] = anchors
    pop_size = len(start)
    algorithm = (
        make_nsga2(pop_size, start)
        if n_obj > 1
        else GA(pop_size=pop_size, sampling=start, **integer_variation())
    )
    n_gen = effort * problem.generations if generations is None else generations
    termination = MaximumGenerationTermination(n_gen)
    if stop is not None:
        termination = TerminateIfAny(termination, _StopWhen(stop))
    result = minimize(callback, algorithm, termination, seed=seed)
    if result.X is None:
        return np.zeros((0, len(xl)), dtype=np.int64)
    return np.atleast_2d(np.asarray(result.X)).round().astype(np.int64)
