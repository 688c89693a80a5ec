"""``oneproxy``: one proxy device plus a linear correction per cluster (re-implementation).

After "One Proxy Device Is Enough for Hardware-Aware Neural Architecture Search" (Lu et
al., SIGMETRICS 2022): latency *rankings* are largely shared across devices, so a
latency predictor built on one proxy device, adapted with a few measurements of each
target, stands in for many devices. Their AdaProxy adapts the proxy predictor to a
target; here, as the issue asks, the adaptation is a linear correction in log space.
No code of theirs is used.

The budget less the verification of the report (``M * K``, see
:func:`~benchmarks.compare.protocol.report`) is spent as follows:

1. Half: random configurations measured on the proxy (the task's nominal device); a
   GP (:class:`~surrogates.gp_surrogate.GPSurrogate`, the problem's features) fitted
   on them.
2. The other half, split evenly over the K clusters: random configurations measured on
   each representative; per cluster ``log y = a * log proxy(x) + b`` by least squares.
3. NSGA-II on ``[1 - accuracy, fleet-average, worst cluster]`` of the corrected
   predictions; at most M of its predicted front, chosen by greedy hypervolume in the
   predictions, are measured on every cluster and reported.
"""

from __future__ import annotations

import numpy as np

from benchmarks.compare.protocol import new_meter, report
from benchmarks.compare.result import MethodResult
from benchmarks.compare.task import Task
from moo_compress.nsga import optimise
from surrogates.gp_surrogate import GPSurrogate, single_threaded


def oneproxy(task: Task, seed: int) -> MethodResult:
    problem = task.problem
    representatives = task.representatives
    meter = new_meter(task)
    rng = np.random.default_rng(seed)
    model_budget = task.budget - task.verification_cost
    n_proxy = model_budget // 2
    n_target = (model_budget - n_proxy) // len(representatives)

    proxy = task.nominal_device()
    X_proxy = np.vstack([problem.baseline()[None], task.random_configs(rng, n_proxy - 1)])
    y_proxy = np.array([meter.measure(proxy, x) for x in X_proxy])
    model = GPSurrogate(fit_timeout_s=None)
    with single_threaded():
        model.fit(problem.features(X_proxy), y_proxy)

    def proxy_log(X: np.ndarray) -> np.ndarray:
        with single_threaded():
            return model.predict_log(problem.features(X))[0]

    corrections = []
    for device in representatives:
        X_t = task.random_configs(rng, n_target)
        y_t = np.log([meter.measure(device, x) for x in X_t])
        A = np.column_stack([proxy_log(X_t), np.ones(len(X_t))])
        corrections.append(np.linalg.lstsq(A, y_t, rcond=None)[0])
    slopes, intercepts = np.array(corrections).T  # (K,) each

    def objectives(X: np.ndarray) -> np.ndarray:
        latency = np.exp(proxy_log(X)[:, None] * slopes + intercepts)  # (N, K) ms
        return problem.objectives(task.accuracy(X), latency)

    X = optimise(problem, objectives, 3, seed)
    baseline = objectives(problem.baseline()[None])[0]
    return report(task, meter, X, objectives(X), baseline)
