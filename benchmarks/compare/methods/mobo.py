"""``mobo``: multi-objective Bayesian optimisation with botorch's qLogNEHVI.

The textbook black-box alternative (Daulton et al., NeurIPS 2021; Ament et al.,
NeurIPS 2023 for the log form): every evaluation of a configuration measures it on
every cluster's representative (K real measurements) and evaluates its accuracy, and
one multi-output GP models ``[accuracy, -fleet-average ms, -worst-cluster ms]``
directly (maximised). Inputs are the problem's latency features (the same as ``ours``),
so the difference to ``ours`` is the strategy: no per-cluster models, no transfer, and
acquisition-driven rather than NSGA-II-driven search.

* Initial design: the baseline and ``N_INIT`` random configurations.
* Each iteration: fit a ``SingleTaskGP`` (3 outputs, ``Normalize`` inputs,
  ``Standardize`` outputs), then pick ``BATCH`` configurations from ``POOL`` fresh random
  candidates with ``optimize_acqf_discrete`` on qLogNEHVI (``MC_SAMPLES`` quasi-MC
  samples); the reference point is 10
  accuracy points below and 1.1x the latency of the measured baseline.
* Until ``budget // K`` configurations are measured; at most M of the non-dominated
  measured ones are reported, chosen by greedy hypervolume
  (:func:`~benchmarks.compare.protocol.report`; all are measured already).
"""

from __future__ import annotations

import numpy as np
import torch
from botorch.acquisition.multi_objective.logei import (
    qLogNoisyExpectedHypervolumeImprovement,
)
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from botorch.optim.optimize import optimize_acqf_discrete
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.mlls import ExactMarginalLogLikelihood

from benchmarks.compare.metrics import non_dominated_index
from benchmarks.compare.protocol import new_meter, report
from benchmarks.compare.result import MethodResult
from benchmarks.compare.task import Task

N_INIT = 8
BATCH = 4
POOL = 512
MC_SAMPLES = 32
"""Quasi-MC samples of qLogNEHVI (botorch's default is 128; the box decompositions of
every sample dominate the run time in three objectives)."""


def mobo(task: Task, seed: int) -> MethodResult:
    problem = task.problem
    devices = task.representatives
    meter = new_meter(task)
    n_evals = task.budget // len(devices)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)

    X = np.vstack([problem.baseline()[None], task.random_configs(rng, N_INIT)])[:n_evals]
    F = problem.objectives(task.accuracy(X), meter.measure_rows(devices, X))
    reference = torch.tensor([-(F[0, 0] + 0.1), -1.1 * F[0, 1], -1.1 * F[0, 2]])
    while len(X) < n_evals:
        train_x = torch.tensor(problem.features(X), dtype=torch.float64)
        train_y = -torch.tensor(F, dtype=torch.float64)  # maximise [acc - 1, -avg, -worst]
        model = SingleTaskGP(
            train_x,
            train_y,
            input_transform=Normalize(train_x.shape[1]),
            outcome_transform=Standardize(3),
        )
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        acquisition = qLogNoisyExpectedHypervolumeImprovement(
            model,
            ref_point=reference.double(),
            X_baseline=train_x,
            prune_baseline=True,
            sampler=SobolQMCNormalSampler(torch.Size([MC_SAMPLES]), seed=seed),
        )
        pool = np.unique(task.random_configs(rng, POOL), axis=0)
        q = min(BATCH, n_evals - len(X))
        choices = torch.tensor(problem.features(pool), dtype=torch.float64)
        new = pool[_pick(acquisition, choices, q)]
        X = np.vstack([X, new])
        F = np.vstack([F, problem.objectives(task.accuracy(new), meter.measure_rows(devices, new))])
    front = non_dominated_index(F)
    return report(task, meter, X[front], F[front], F[0])


def _pick(acquisition, choices: torch.Tensor, q: int) -> np.ndarray:
    """Row indices in ``choices`` of a sequential-greedy q-batch."""
    selected, _ = optimize_acqf_discrete(acquisition, q=q, choices=choices, unique=True)
    return np.array([int(torch.nonzero((choices == row).all(dim=1))[0, 0]) for row in selected])
