"""Protocol v2: the rules every compared method runs under, and how its report is read.

The same for every method (issue 12):

* **Budgets:** ``task.budget`` real latency measurements (:class:`~.meter.Meter`, or the
  method's own measurement store) and ``task.accuracy_budget`` distinct accuracy
  evaluations (:class:`~.task.AccuracyLedger`), both equal for all methods. Asking for
  one more raises at once; a method whose log shows more is a :class:`ProtocolError`.
  Nothing is silently truncated.
* **At most M reported configurations** (``task.max_reported``, default 16), chosen by
  the method. Every method may use the same rule, :func:`choose`: the rows a user
  deploys at the regret's accuracy floors, then greedy hypervolume contribution
  (:mod:`moo_compress.front_choice`), in its own predicted objectives. More than M is a
  :class:`ProtocolError`.
* **Reported values are the method's own measurements.** The harness reads them from
  the method's log and ledger (:func:`reported_objectives`): a row is *verified* when
  the method measured it on every cluster's representative and asked for its
  accuracy. Unverified rows are shown, marked, and left out of every headline score.
* **Threads are pinned** (:func:`moo_compress.threads.pinned_threads`): torch and the
  BLAS pools run one thread inside every method run, so a seed gives the same numbers
  whatever the machine's default.
"""

from __future__ import annotations

import numpy as np

from benchmarks.compare.meter import Meter
from benchmarks.compare.metrics import LATENCY_REFERENCE, LOSS_MARGIN, non_dominated_index
from benchmarks.compare.result import MethodResult
from benchmarks.compare.task import AccuracyLedger, Task
from moo_compress.front_choice import deployment_rows, greedy_hv_subset


class ProtocolError(RuntimeError):
    """A method broke protocol v2 (over a budget, or more than M reported rows)."""


def choose(F: np.ndarray, baseline: np.ndarray, m: int) -> np.ndarray:
    """Indices of at most ``m`` rows of ``F``: the rows deployed at each of
    :data:`~moo_compress.front_choice.DEPLOYMENT_DROPS` (the regret's floors), then the
    others by greedy hypervolume contribution.

    Args:
        F: ``(N, k)`` objectives ``[loss, latency-like ...]`` (minimised; e.g. predicted
            ``[loss, average ms, worst ms]``, or ``[loss, MACs]``).
        baseline: ``(k,)`` the same objectives of the uncompressed configuration: the
            latency-like columns are divided by it, and the reference point is
            ``(loss_0 + LOSS_MARGIN, LATENCY_REFERENCE, ...)`` as in the metrics.
        m: The most rows to choose.

    Returns:
        ``(p,)`` indices, ``p <= m``, sorted.
    """
    F = np.atleast_2d(np.asarray(F, dtype=float))
    baseline = np.asarray(baseline, dtype=float)
    scale = np.concatenate([[1.0], baseline[1:]])
    latency_ref = np.full(len(baseline) - 1, LATENCY_REFERENCE)
    ref = np.concatenate([[baseline[0] + LOSS_MARGIN], latency_ref])
    ok = np.flatnonzero(np.all(np.isfinite(F), axis=1))
    first = deployment_rows(F[ok], baseline[0])
    return np.sort(ok[greedy_hv_subset(F[ok] / scale, m, ref, first)])


def report(
    task: Task, meter: Meter, X: np.ndarray, F: np.ndarray, baseline: np.ndarray
) -> MethodResult:
    """The shared way to report: :func:`choose` at most M of the candidates ``X`` by
    their predicted objectives ``F`` (``(N, k)``, the baseline's ``(k,)``), measure
    each on every cluster's representative and ask its accuracy (verification, charged
    to the method's budgets), and report the non-dominated measured ones.

    A method calling this must keep ``task.verification_cost`` measurements for it.
    """
    chosen = np.atleast_2d(X)[choose(F, baseline, task.max_reported)]
    latency = meter.measure_rows(task.representatives, chosen)
    measured = task.problem.objectives(task.accuracy(chosen), latency)
    keep = np.sort(non_dominated_index(measured))
    return MethodResult(chosen[keep], tuple(meter.log))


def new_meter(task: Task, budget: int | None = None) -> Meter:
    """A meter over ``budget`` (default the task's) measurements that knows which
    cluster each representative stands for."""
    clusters = {d.device_id: c for c, d in enumerate(task.representatives)}
    return Meter(task.decode, task.budget if budget is None else budget, clusters)


def reported_objectives(
    task: Task, result: MethodResult, ledger: AccuracyLedger
) -> tuple[np.ndarray, np.ndarray]:
    """What a method reported, read from its own measurements.

    Returns:
        ``(P, 3)`` reported ``[loss, average ms, worst ms]``: the measured values of a
        verified row (median per cluster, first measurement of each cluster), the
        method's ``predicted`` row (or NaN) otherwise; and ``(P,)`` whether each row is
        verified.
    """
    X = np.atleast_2d(np.asarray(result.X, dtype=np.int64))
    k = task.problem.clusters.k
    measured: dict[tuple[bytes, int], float] = {}
    for entry in result.log:
        if entry.cluster is not None and entry.key is not None:
            measured.setdefault((entry.key, entry.cluster), entry.median_ms)
    reported = np.full((len(X), 3), np.nan)
    verified = np.zeros(len(X), dtype=bool)
    for i, x in enumerate(X):
        key = x.tobytes()
        latency = [measured.get((key, c)) for c in range(k)]
        if key in ledger.values and all(v is not None for v in latency):
            reported[i] = task.problem.objectives(
                np.array([ledger.values[key]]), np.array([latency])
            )[0]
            verified[i] = True
        elif result.predicted is not None:
            reported[i] = result.predicted[i]
    return reported, verified


def check(task: Task, name: str, result: MethodResult, ledger: AccuracyLedger) -> None:
    """Raise :class:`ProtocolError` if ``result`` breaks a budget or reports more than
    M rows (the meter and the ledger already raise when asked for too much; this also
    catches a method that measured through its own store)."""
    problems = []
    if len(result.X) > task.max_reported:
        problems.append(
            f"reported {len(result.X)} configurations, allowed at most M = {task.max_reported}"
        )
    if len(result.log) > task.budget:
        problems.append(f"took {len(result.log)} latency measurements, budget {task.budget}")
    if ledger.evaluations > task.accuracy_budget:
        problems.append(
            f"asked for {ledger.evaluations} accuracy evaluations, budget {task.accuracy_budget}"
        )
    if problems:
        raise ProtocolError(f"method {name!r} on {task.name}: " + "; ".join(problems))
