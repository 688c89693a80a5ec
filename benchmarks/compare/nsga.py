"""NSGA-II / GA over a callable objective, with the search's integer operators.

The baselines optimise their own objective models (true latency for the oracle, MACs,
trees, corrected proxies); this runs pymoo on any of them with the same operators as
:class:`~moo_compress.search.FleetSearch` (:mod:`moo_compress.nsga`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.problem import Problem
from pymoo.optimize import minimize

from moo_compress.nsga import integer_variation, make_nsga2
from moo_compress.problem import FleetProblem

Objectives = Callable[[np.ndarray], np.ndarray]
"""(N, n_var) int population -> (N, m) objectives to minimise."""
Constraints = Callable[[np.ndarray], np.ndarray]
"""(N, n_var) int population -> (N, c) constraint values, feasible where <= 0."""


class _CallbackProblem(Problem):
    def __init__(self, xl, xu, n_obj: int, objectives: Objectives, constraints, n_constr):
        super().__init__(n_var=len(xl), n_obj=n_obj, n_ieq_constr=n_constr, xl=xl, xu=xu, vtype=int)
        self.objectives, self.constraints = objectives, constraints

    def _evaluate(self, X, out, *args, **kwargs):
        X = np.asarray(X).round().astype(np.int64)
        out["F"] = np.asarray(self.objectives(X), dtype=float).reshape(len(X), -1)
        if self.constraints is not None:
            out["G"] = np.asarray(self.constraints(X), dtype=float).reshape(len(X), -1)


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
    """
    xl, xu = problem.space.xl, problem.space.xu
    pop_size = effort * problem.pop_size
    callback = _CallbackProblem(xl, xu, n_obj, objectives, constraints, n_constr)
    start = np.random.default_rng(seed).integers(xl, xu + 1, size=(pop_size, len(xl)))
    anchors = problem.anchors()[:pop_size]
    start[: len(anchors)] = anchors
    algorithm = (
        make_nsga2(pop_size, start)
        if n_obj > 1
        else GA(pop_size=pop_size, sampling=start, **integer_variation())
    )
    n_gen = effort * problem.generations if generations is None else generations
    result = minimize(callback, algorithm, ("n_gen", n_gen), seed=seed)
    if result.X is None:
        return np.zeros((0, len(xl)), dtype=np.int64)
    return np.atleast_2d(np.asarray(result.X)).round().astype(np.int64)
