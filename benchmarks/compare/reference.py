"""The reference of a problem instance: the oracle's front and the two floor fronts.

Fixed per problem instance (problem file and seed), never per run, so a method's score
does not depend on which other methods ran:

* ``oracle``: the front of the true objectives ``[loss, fleet-average ms, worst ms]``;
* ``oracle_macs``: the front that is optimal for ``[loss, MACs]``;
* ``oracle_nominal``: the front that is optimal for ``[loss, nominal device ms]`` (the
  noiseless nominal device of :meth:`~benchmarks.compare.task.Task.nominal_device`).

Each is exact where the problem enumerates its space (``problem.enumerate()``, e.g.
NAS-Bench-201's 15,625 cells). Otherwise three NSGA-II runs, one per front, on the
noiseless objectives with a population and a generation count ``ORACLE_EFFORT`` times
the problem's (about ``ORACLE_EFFORT**2`` times the configurations a method's NSGA-II
sees, every one of them "measured" for free and without noise), and then each front is
taken anew from the *pool* of all three runs' fronts, in its own objectives
(:func:`pooled`). Without that step each front also carried its own run's search
error: on ``resnet8_digits_mcu``, a fleet that only rescales the nominal device
(log-linear R^2 >= 0.99999), the separate ``oracle_nominal`` run missed configurations
the ``oracle`` run had found, showed up to 13 % worst-cluster regret, and the
diagnostics called 2 of 4 seeds tests. With the pool, a pure rescaling leaves exactly
no regret. Where a floor's own run missed a region that another run found, the pooled
floor is better than that run alone would be: the floors err towards calling a problem a
control and towards beating a method, so claims against them stay conservative. The
reference front that every score is relative to is the non-dominated union of the three
fronts on the truth, which the pool step does not change.

Computing it can take minutes, so it is cached on disk (``.npz``) under a key of the
problem file's hash, the seed, the settings and a probe of the truth (the true
objectives, MACs and nominal latency of a few fixed configurations): a change of the
problem, the settings or the latency model computes it anew.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.compare.metrics import non_dominated_index
from benchmarks.compare.protocol import choose
from benchmarks.compare.task import Task
from moo_compress.atomic_write import replacing
from moo_compress.nsga import optimise

ORACLE_EFFORT = 2
"""Population and generations of the oracle NSGA-II runs, as multiples of the problem's."""
ROWS = ("oracle", "oracle_macs", "oracle_nominal")
"""The reference rows of the tables: the oracle and the two floors."""
VERSION = 1
"""Bumped when what is cached changes meaning."""


@dataclass(frozen=True)
class Reference:
    """The three fronts of one problem instance.

    Attributes:
        fronts: ``oracle``, ``oracle_macs`` and ``oracle_nominal`` -> ``(n, n_var)``
            decision vectors of that front.
        exact: Whether the fronts are exact (an enumerated space).
        settings: How they were computed (part of the cache key).
        cached: Whether they were read from the cache.
    """

    fronts: dict[str, np.ndarray]
    exact: bool
    settings: dict
    cached: bool = False

    def front_objectives(self, task: Task) -> np.ndarray:
        """``(R, 3)`` true objectives of the reference front: the non-dominated union of
        the three fronts."""
        F = task.true_objectives(np.vstack(list(self.fronts.values())))
        return F[non_dominated_index(F)]

    def row(self, task: Task, name: str) -> tuple[np.ndarray, np.ndarray]:
        """What a reference row reports, and its ``(P, 3)`` reported objectives, by
        which the deployed configuration is chosen.

        ``oracle``: the at most M rows of the ``oracle`` front chosen by greedy
        hypervolume on the truth, reported with their true objectives (what a method
        that knew everything and reported M rows would get). The floors: their whole
        front, reported in their own objectives (``oracle_macs``: ``[loss, MACs,
        MACs]``; ``oracle_nominal``: ``[loss, nominal ms, nominal ms]``) and scored on
        the fleet, as in :mod:`benchmarks.compare.diagnostics`.
        """
        X = self.fronts[name]
        own = own_objectives(task, name, X)
        if name == "oracle":
            picks = choose(own, task.baseline_objectives(), task.max_reported)
            X, own = X[picks], own[picks]
        return X, own


def own_objectives(task: Task, name: str, X: np.ndarray) -> np.ndarray:
    """``(N, 3)`` the objectives a reference row optimises, as ``[loss, a, b]``."""
    if name == "oracle":
        return task.true_objectives(X)
    loss = task.true_objectives(X)[:, 0]
    cost = task.macs(X) if name == "oracle_macs" else task.true_nominal_ms(X)
    return np.column_stack([loss, cost, cost])


def settings_of(task: Task, effort: int = ORACLE_EFFORT) -> dict:
    """What the reference of ``task`` depends on, besides the problem file and truth."""
    problem = task.problem
    return {
        "version": VERSION,
        "problem": task.name,
        "seed": task.seed,
        "exact": problem.enumerate() is not None,
        "oracle_effort": effort,
        "pop_size": problem.pop_size,
        "generations": problem.generations,
    }


def cache_key(task: Task, settings: dict) -> str:
    """16 hex characters of the problem file, the settings and a probe of the truth."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    if task.source is not None:
        digest.update(Path(task.source).read_bytes())
    problem = task.problem
    rng = np.random.default_rng(12345)
    probe = np.vstack([problem.anchors(), task.random_configs(rng, 4)])
    truth = np.column_stack(
        [task.true_objectives(probe), task.macs(probe), task.true_nominal_ms(probe)]
    )
    digest.update(np.round(truth, 6).tobytes())
    return digest.hexdigest()[:16]


def constraints(task: Task, X: np.ndarray) -> np.ndarray:
    """``(N, c)`` the problem's constraint values on the truth (feasible where <= 0)."""
    X = np.atleast_2d(X)
    F = task.true_objectives(X)
    latency = task.problem.clusters.true_cluster_latency(X)
    return task.problem.constraint_values(X, 1.0 - F[:, 0], latency)


def compute(task: Task, settings: dict) -> dict[str, np.ndarray]:
    """The three fronts (see the module docstring), of feasible configurations only."""
    problem = task.problem
    X = problem.enumerate()
    if X is not None:
        X = X[np.all(constraints(task, X) <= 0, axis=1)]
        return {name: X[non_dominated_index(own_objectives(task, name, X))] for name in ROWS}
    n_constr = constraints(task, problem.baseline()[None]).shape[1]
    fronts = {}
    for name in ROWS:
        n_obj = 3 if name == "oracle" else 2
        fronts[name] = optimise(
            problem,
            lambda X, name=name, n_obj=n_obj: own_objectives(task, name, X)[:, :n_obj],
            n_obj,
            task.seed,
            effort=settings["oracle_effort"],
            constraints=(lambda X: constraints(task, X)) if n_constr else None,
            n_constr=n_constr,
        )
    return fronts


def load_reference(task: Task, cache_dir: Path | None, effort: int = ORACLE_EFFORT) -> Reference:
    """The reference of ``task``, from ``cache_dir`` if it holds it, else computed
    (and written there); ``effort``: see :data:`ORACLE_EFFORT` (``--quick`` uses 1)."""
    settings = settings_of(task, effort)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{task.name}-seed{task.seed}-{cache_key(task, settings)}.npz"
    cached = path is not None and path.is_file()
    if cached:
        with np.load(path) as data:
            fronts = {name: data[name] for name in ROWS}
    else:
        fronts = compute(task, settings)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with replacing(path) as tmp, tmp.open("wb") as out:  # parallel units
                np.savez(out, **fronts, settings=json.dumps(settings))
    exact = settings["exact"]
    return Reference(fronts if exact else pooled(task, fronts), exact, settings, cached)


def pooled(task: Task, fronts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each front anew from the pool of all three: the rows of the union (distinct
    decision vectors) non-dominated in that front's own objectives (:func:`own_objectives`).

    Only for NSGA-II fronts: exact (enumerated) fronts are already optimal over the
    whole space. The cache keeps the runs' own fronts, so this step needs no
    recomputation.
    """
    pool = np.unique(np.vstack(list(fronts.values())), axis=0)
    return {name: pool[non_dominated_index(own_objectives(task, name, pool))] for name in ROWS}
