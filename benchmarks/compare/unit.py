"""One unit of the comparison: every method and reference row of one problem and seed.

A unit needs nothing from the others (its task, its reference and its methods are all
seeded by its own seed), so :func:`run_unit` can run in a worker process of its own:
``python -m benchmarks.compare --jobs N`` runs N units at a time, each pinned to one
thread (:func:`~moo_compress.threads.pinned_threads`), and gets the same numbers
as one process running them in turn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.compare.anytime import measurements_to_regret
from benchmarks.compare.diagnostics import diagnose
from benchmarks.compare.methods import METHODS
from benchmarks.compare.metrics import score
from benchmarks.compare.protocol import check, reported_objectives
from benchmarks.compare.reference import ORACLE_EFFORT, ROWS, Reference, load_reference
from benchmarks.compare.regret import DROPS, regrets
from benchmarks.compare.tables import drop_label
from benchmarks.compare.task import Task, default_accuracy_budget, load_task
from moo_compress.search import FleetSearch, SearchSettings
from moo_compress.threads import pinned_threads


@dataclass(frozen=True)
class UnitResult:
    """What one unit returns to the runner.

    Attributes:
        problem: The problem's name or file, as given on the command line.
        seed: The unit's seed.
        rows: ``results.csv`` rows, one per method and reference row.
        diagnostics: The ``diagnostics.csv`` row.
        about: What the tables say about the problem (accuracy, budgets, reference).
        cpu_s: CPU seconds the unit used (in its own process).
    """

    problem: str
    seed: int
    rows: list[dict]
    diagnostics: dict
    about: dict
    cpu_s: float


def run_unit(
    problem: str, seed: int, methods: list[str], cache: Path | None, quick: bool
) -> UnitResult:
    """Build the task of ``problem`` and ``seed``, load (or compute and cache) its
    reference, run every one of ``methods`` and score it, all pinned to one thread.

    Raises:
        ValueError, UsageError: if the problem cannot be loaded.
        ProtocolError: if a method broke the protocol.
    """
    cpu_started = time.process_time()
    with pinned_threads():
        task = load_task(problem, seed, cache)
        if quick:
            quicken(task)
        reference = load_reference(task, cache, 1 if quick else ORACLE_EFFORT)
        rows = compare_task(task, methods, seed, reference)
        diagnostics = diagnostics_row(task, reference)
    return UnitResult(
        problem,
        seed,
        rows,
        diagnostics,
        about(task, reference, cache),
        time.process_time() - cpu_started,
    )


def about(task: Task, reference: Reference, cache: Path | None) -> dict:
    """What the tables say about a problem besides the numbers (its seeds are added by
    the runner)."""
    problem = task.problem
    how = (
        "exact (the enumerated space)"
        if reference.exact
        else f"NSGA-II on the noiseless truth, population and generations "
        f"{reference.settings['oracle_effort']}x the problem's"
    )
    return {
        "accuracy": task.accuracy_note,
        "budgets": (
            f"{task.budget} latency measurements, {task.accuracy_budget} accuracy evaluations, "
            f"at most M = {task.max_reported} reported configurations; "
            f"{problem.clusters.k} clusters"
        ),
        "reference": f"{how}, union with the two floor fronts; cached in {cache}/",
        "effort": reference.settings["oracle_effort"],
        "cache": str(cache),
    }


def quicken(task: Task) -> None:
    """Shorten the task for ``--quick``: a quarter of the generations, a population of
    at most 16, the smallest measurement budget the search accepts (plus one
    generation's batch per cluster) and the accuracy budget of that population."""
    problem = task.problem
    problem.generations = max(2, problem.generations // 4)
    problem.pop_size = min(problem.pop_size, 16)
    settings = SearchSettings(pop_size=problem.pop_size, seed=task.seed)
    search = FleetSearch(problem, None, settings)
    task.budget = min(task.budget, search.minimum_budget + settings.batch_size * problem.clusters.k)
    task.accuracy_budget = default_accuracy_budget(problem)


def run_method(task: Task, name: str, seed: int) -> dict:
    """Run one method under the protocol: its reported rows (reported and true
    objectives, verified mask), its log and ledger, and its wall time.

    Raises:
        ProtocolError: if it broke a budget or reported more than M rows (a meter or
            ledger over its budget raises its own error first).
    """
    fresh_before = task.fresh_seconds
    start = time.perf_counter()
    with task.charging() as ledger, pinned_threads():
        result = METHODS[name](task, seed)
    wall = time.perf_counter() - start
    check(task, name, result, ledger)
    reported, verified = reported_objectives(task, result, ledger)
    X = np.atleast_2d(result.X).reshape(-1, task.problem.space.n_var)
    return {
        "reported": reported,
        "true": task.true_objectives(X) if len(X) else np.zeros((0, 3)),
        "verified": verified,
        "log": result.log,
        "ledger": ledger,
        "costs": {
            "measurements": len(result.log),
            "device_seconds": sum(e.seconds for e in result.log),
            "accuracy_evaluations": ledger.evaluations,
            "wall_s": wall - (task.fresh_seconds - fresh_before) + ledger.seconds,
        },
    }


def diagnostics_row(task: Task, reference: Reference) -> dict:
    """The fleet diagnostics of one task (:func:`~benchmarks.compare.diagnostics.diagnose`,
    on the task's reference)."""
    found = diagnose(task, seed=task.seed, reference=reference)
    row = {
        "problem": task.name,
        "seed": task.seed,
        "kind": found.kind,
        "nominal": found.nominal,
        "clusters": len(found.clusters),
        "spearman_min": float(np.min(found.spearman)),
        "spearman_max": float(np.max(found.spearman)),
        "r2_min": float(np.min(found.r2)),
        "r2_max": float(np.max(found.r2)),
        "worst_changes": found.worst_changes,
        "front_size": found.front_size,
        "worst_clusters": found.worst_clusters,
        "nominal_hv_fraction": found.nominal_hv_fraction,
    }
    for r in found.nominal_regrets:
        row[f"nominal_worst_regret_{drop_label(r.drop)}"] = r.worst
        row[f"nominal_avg_regret_{drop_label(r.drop)}"] = r.average
    return row


def score_row(task: Task, run: dict, reference_F: np.ndarray, baseline: np.ndarray) -> dict:
    """The score columns of one run (verified rows only)."""
    ok = run["verified"]
    true, reported = run["true"][ok], run["reported"][ok]
    scores = score(true, reported, reference_F, baseline, task.tolerance)
    row = {
        "hv_fraction": scores.hv_fraction,
        "igd_plus": scores.igd_plus,
        "avg_speedup_iso": scores.avg_speedup,
        "worst_speedup_iso": scores.worst_speedup,
        "reported": len(ok),
        "unverified": int(np.sum(~ok)),
    }
    for r in regrets(reported, true, reference_F, baseline):
        row[f"worst_regret_{drop_label(r.drop)}"] = r.worst
        row[f"avg_regret_{drop_label(r.drop)}"] = r.average
    if run["log"] is not None:
        steps = measurements_to_regret(task, run["log"], run["ledger"], reference_F, baseline)
        for drop, n in zip(DROPS, steps, strict=True):
            row[f"to_1.05_{drop_label(drop)}"] = n
    return row


def compare_task(task: Task, methods: list[str], seed: int, reference: Reference) -> list[dict]:
    """Rows of ``results.csv`` for one task and seed."""
    reference_F = reference.front_objectives(task)
    baseline = task.baseline_objectives()
    rows = []
    for name in methods:
        if name in ROWS:
            X, reported = reference.row(task, name)
            run = {
                "reported": reported,
                "true": task.true_objectives(X),
                "verified": np.ones(len(X), dtype=bool),
                "log": None,
                "costs": {},
            }
        else:
            run = run_method(task, name, seed)
        rows.append(
            {
                "problem": task.name,
                "method": name,
                "seed": seed,
                **score_row(task, run, reference_F, baseline),
                **run["costs"],
            }
        )
    return rows
