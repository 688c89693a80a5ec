r"""Expected hypervolume improvement of a fleet's front, decoupled per cluster.

Which (configuration, output) pair to measure next, where an *output* is the accuracy
loss (output 0) or the latency on one device cluster (outputs ``1..K``). The objectives
of a configuration are, all minimised,

    (accuracy loss, fleet average sum_k w_k L_k, worst cluster max_k L_k),

each divided by ``scale`` (e.g. the unpruned baseline's values) so that no objective
dominates the volume by its units. Uncertainty enters as joint posterior samples of
``(loss, L_1..L_K)`` per candidate (``FleetGP.posterior_samples`` for the latencies,
stacked with the accuracy model's samples): the composition by weighted mean and max is
applied to each sample, so the correlation between clusters and the max's skew are kept.

The expected improvement is computed by botorch: the samples become a
``SampledFleetModel`` (a botorch ``EnsembleModel`` over the candidate set whose ensemble
members are the samples; ``AllMembersSampler`` visits each member once), the composition
is a ``FleetObjective`` (an ``MCMultiOutputObjective``), and
``qLogExpectedHypervolumeImprovement`` with a ``FastNondominatedPartitioning`` of the
current front does the box decomposition and the smoothed, log-space expectation.

Decoupled evaluation: measuring output ``j`` of a candidate reveals that output only.
``log_ehvi(..., observe=j)`` is the EHVI with output ``j`` drawn from its posterior and
every other output held at its posterior mean (the sample mean): the improvement that
learning output ``j`` alone can show. A worst-case objective dominated by another cluster
gives a cluster little value, as it should. ``choose_pairs`` divides by the cost of each
output (log EHVI minus log cost) and picks a batch greedily: after a pick, the picked
candidate's posterior-mean objectives join the front (the "kriging believer"), so the
next pick looks elsewhere.

Sign convention: the module's inputs and outputs are in the *minimised* objective space;
botorch maximises, and the negation happens inside ``FleetObjective`` and for the
reference point and front.
"""

from __future__ import annotations

import math

import moocore
import numpy as np
import torch
from botorch.acquisition.multi_objective import logei
from botorch.acquisition.multi_objective.logei import qLogExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import MCMultiOutputObjective
from botorch.models.ensemble import EnsembleModel
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.sampling.index_sampler import IndexSampler
from botorch.utils.multi_objective.box_decompositions.non_dominated import (
    FastNondominatedPartitioning,
)

from surrogates.gp_surrogate import single_threaded

DTYPE = torch.float64
N_OBJECTIVES = 3
"""Accuracy loss, fleet-average latency, worst-cluster latency."""


def pin_pytorch_kernel() -> None:
    r"""Make botorch's qLogEHVI use its PyTorch code, never its fused C++ kernel.

    botorch (0.18) compiles that kernel with ``torch.utils.cpp_extension`` on the first
    acquisition of a process where a C++ compiler and ninja exist: 30-80 s per build on
    the 2-core development machine (``~/.cache/torch_extensions``, rebuilt whenever
    another environment built it last), and silently not at all elsewhere. Its values
    equal the PyTorch path's to 2e-15 in log EHVI and gave the same picks (n = 128
    candidates, 32 samples, 4 clusters: 0.63 s per 8-pair ``choose_pairs`` fused, 0.98 s
    in PyTorch, on that machine), but whether a run used it would depend on the machine.
    Pinned, every machine computes the same numbers and no run waits for a compiler.
    Marks botorch's lazy loader as already tried (a private flag; nothing happens on a
    botorch without it or once another caller has loaded the kernel). The flag is
    process-wide: every qLogEHVI / qLogNEHVI of a process that imported this module
    takes the PyTorch path, e.g. the ``mobo`` baseline of ``benchmarks.compare``.
    """
    if getattr(logei, "_C", None) is None and hasattr(logei, "_load_attempted"):
        logei._load_attempted = True


pin_pytorch_kernel()


class SampledFleetModel(EnsembleModel):
    r"""botorch model over a fixed candidate set, given by joint posterior samples.

    Inputs ``X`` are candidate indices: ``batch x q x 1`` (float holding integers
    ``0..n-1``). The output at a candidate is the ``(1 + K)`` vector (accuracy loss,
    latency on cluster ``1..K`` in ms); the ensemble members are the ``S`` samples.
    """

    def __init__(self, samples: torch.Tensor) -> None:
        r"""
        Args:
            samples: ``(S, n, 1 + K)`` joint posterior samples per candidate.
        """
        super().__init__()
        self.samples = samples
        self._num_outputs = samples.shape[-1]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        r"""``batch x S x q x (1 + K)`` samples of the candidates indexed by ``X``."""
        return self.samples[:, X[..., 0].round().long()].movedim(0, -3)


class AllMembersSampler(IndexSampler):
    r"""An ``IndexSampler`` that takes every ensemble member once, in order (no draw)."""

    def _construct_base_samples(self, posterior: EnsemblePosterior) -> None:
        size = posterior.ensemble_size
        if self.sample_shape != torch.Size([size]):
            raise ValueError(f"sample_shape must be ({size},), got {tuple(self.sample_shape)}")
        shape = self.sample_shape + posterior.batch_shape
        index = torch.arange(size).reshape(size, *([1] * len(posterior.batch_shape)))
        self.register_buffer("base_samples", index.expand(shape).contiguous())


class FleetObjective(MCMultiOutputObjective):
    r"""``(..., q, 1 + K)`` output samples to ``(..., q, 3)`` negated, scaled objectives.

    Objectives: ``-(loss, sum_k w_k L_k, max_k L_k) / scale`` (botorch maximises). With
    ``observe=j``, every output but ``j`` is replaced by its mean over the sample
    dimension (dim 0) before the composition.
    """

    def __init__(
        self, weights: torch.Tensor, scale: torch.Tensor, observe: int | None = None
    ) -> None:
        r"""
        Args:
            weights: ``(K,)`` cluster weights, ``>= 0``, summing to 1.
            scale: ``(3,)`` positive divisors of the objectives.
            observe: Output revealed by the measurement (``0`` accuracy, ``1..K`` a
                cluster), or ``None`` for all outputs.
        """
        super().__init__()
        self.weights = weights
        self.scale = scale
        self.observe = observe

    def forward(self, samples: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        if self.observe is not None:
            held = samples.mean(dim=0, keepdim=True).expand_as(samples)
            keep = torch.zeros(samples.shape[-1], dtype=torch.bool)
            keep[self.observe] = True
            samples = torch.where(keep, samples, held)
        loss, latency = samples[..., 0], samples[..., 1:]
        objectives = torch.stack([loss, latency @ self.weights, latency.max(dim=-1).values], dim=-1)
        return -objectives / self.scale


def fleet_objectives(outputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""``(..., 3)`` minimised objectives (loss, fleet average, worst cluster) of
    ``(..., 1 + K)`` outputs (accuracy loss, latency per cluster in ms), unscaled."""
    latency = outputs[..., 1:]
    return np.stack([outputs[..., 0], latency @ weights, latency.max(-1)], axis=-1)


def _tensor(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=DTYPE)


def front_partitioning(
    front: np.ndarray, ref_point: np.ndarray, scale: np.ndarray
) -> FastNondominatedPartitioning:
    r"""Box decomposition of what ``front`` leaves undominated inside ``ref_point``, in
    botorch's negated, scaled space; arguments as in ``log_ehvi``.

    The costly part of ``log_ehvi``: 2.4 of the 3.5 s of a 19-pair ``choose_pairs`` over
    128 candidates and 4 clusters (cProfile, 30-point front) when built anew for every
    output. Build it once per front and pass it to each ``log_ehvi`` of that front.
    """
    ref = -_tensor(ref_point) / _tensor(scale)
    Y = -_tensor(np.reshape(front, (-1, N_OBJECTIVES))) / _tensor(scale)
    return FastNondominatedPartitioning(ref_point=ref, Y=Y)


def log_ehvi(
    samples: np.ndarray,
    weights: np.ndarray,
    front: np.ndarray,
    ref_point: np.ndarray,
    scale: np.ndarray,
    observe: int | None = None,
    partitioning: FastNondominatedPartitioning | None = None,
) -> np.ndarray:
    r"""Log expected hypervolume improvement of each candidate over ``front``.

    Args:
        samples: ``(S, n, 1 + K)`` joint posterior samples (accuracy loss, latency per
            cluster in ms) of ``n`` candidates.
        weights: ``(K,)`` cluster weights, summing to 1.
        front: ``(p, 3)`` current front in the minimised objective space, unscaled;
            ``p = 0`` allowed.
        ref_point: ``(3,)`` reference point, minimised space, unscaled.
        scale: ``(3,)`` positive divisors of the objectives.
        observe: Output that the measurement reveals, or ``None`` for all (coupled).
        partitioning: ``front_partitioning(front, ref_point, scale)`` when the caller
            has it; built here otherwise.

    Returns:
        ``(n,)`` log EHVI in the scaled objective space (``-inf``-like large negative
        values for hopeless candidates).
    """
    S, n, _ = samples.shape
    if partitioning is None:
        partitioning = front_partitioning(front, ref_point, scale)
    acqf = qLogExpectedHypervolumeImprovement(
        model=SampledFleetModel(_tensor(samples)),
        ref_point=-_tensor(ref_point) / _tensor(scale),
        partitioning=partitioning,
        sampler=AllMembersSampler(torch.Size([S])),
        objective=FleetObjective(_tensor(weights), _tensor(scale), observe),
    )
    with torch.no_grad(), single_threaded():  # same numbers whatever torch's thread count
        return acqf(torch.arange(n, dtype=DTYPE).reshape(n, 1, 1)).numpy()


def choose_pairs(
    samples: np.ndarray,
    weights: np.ndarray,
    front: np.ndarray,
    ref_point: np.ndarray,
    scale: np.ndarray,
    costs: np.ndarray,
    measured: np.ndarray,
    batch_size: int,
    shortlist: int = 32,
    partitioning: FastNondominatedPartitioning | None = None,
) -> list[tuple[int, int, float]]:
    r"""Greedy batch of (candidate, output) pairs by cost-weighted decoupled EHVI.

    The decoupled values are computed for the ``shortlist`` candidates of highest coupled
    EHVI (all outputs revealed) among those with an open pair; a candidate that cannot
    improve the front when everything about it is learned cannot when one output is.

    Args:
        samples: ``(S, n, 1 + K)`` joint posterior samples (see ``log_ehvi``).
        weights, front, ref_point, scale: As in ``log_ehvi``.
        costs: ``(1 + K,)`` positive cost of measuring each output once (e.g. seconds,
            or 1 per real measurement); ``inf`` excludes an output.
        measured: ``(n, 1 + K)`` bool, pairs already measured (never chosen again).
        batch_size: Number of pairs wanted, ``>= 1``.
        shortlist: Candidates whose decoupled values are computed, ``>= 1``.
        partitioning: ``front_partitioning(front, ref_point, scale)`` when the caller
            has it; built here otherwise.

    Returns:
        Up to ``batch_size`` tuples ``(candidate, output, log EHVI - log cost)``, best
        first; fewer when every pair is measured or excluded.
    """
    measured = np.asarray(measured, dtype=bool).copy()
    costs = np.asarray(costs, dtype=np.float64)
    if costs.shape != (samples.shape[-1],) or (costs <= 0).any():
        raise ValueError(f"costs must be ({samples.shape[-1]},) and > 0, got {costs}")
    front = np.reshape(front, (-1, N_OBJECTIVES))
    outputs = np.flatnonzero(np.isfinite(costs))
    open_rows = np.flatnonzero(~measured[:, outputs].all(1))
    if not len(open_rows):
        return []
    if partitioning is None:
        partitioning = front_partitioning(front, ref_point, scale)
    coupled = log_ehvi(
        samples[:, open_rows], weights, front, ref_point, scale, partitioning=partitioning
    )
    rows = open_rows[np.argsort(-coupled, kind="stable")[:shortlist]]
    samples, measured = samples[:, rows], measured[rows]
    mean_objectives = fleet_objectives(samples.mean(0), weights)  # (shortlist, 3)
    chosen: list[tuple[int, int, float]] = []
    for _ in range(batch_size):
        if chosen:  # the front has grown by the last pick
            partitioning = front_partitioning(front, ref_point, scale)
        value = np.full(measured.shape, -np.inf)
        for j in outputs:
            todo = ~measured[:, j]
            if todo.any():
                ehvi = log_ehvi(
                    samples[:, todo], weights, front, ref_point, scale, int(j), partitioning
                )
                value[todo, j] = ehvi - math.log(costs[j])
        if not np.isfinite(value).any():
            break
        i, j = np.unravel_index(int(np.argmax(value)), value.shape)
        chosen.append((int(rows[i]), int(j), float(value[i, j])))
        measured[i, j] = True
        front = np.vstack([front, mean_objectives[i]])
    return chosen


def noise_floor_hv(
    front: np.ndarray, ref_point: np.ndarray, scale: np.ndarray, rel_noise: float
) -> float:
    r"""Hypervolume (scaled space) that one front point's measurement noise moves, on
    average: the mean over front points of the volume lost when that point's latencies
    are ``rel_noise`` worse (e.g. 0.03 for 3 % noise).

    An expected improvement of one candidate below this cannot be told from measurement
    noise: a search may stop early when the best pair's EHVI falls under it.

    Args:
        front: ``(p, 3)`` front in the minimised objective space, unscaled.
        ref_point: ``(3,)`` reference point, unscaled.
        scale: ``(3,)`` divisors of the objectives.
        rel_noise: Relative latency noise, ``>= 0``.
    """
    front = np.reshape(front, (-1, N_OBJECTIVES)) / scale
    ref = np.asarray(ref_point) / scale
    if not len(front):
        return 0.0
    volume = hypervolume_inside(front, ref)
    losses = []
    for i in range(len(front)):
        worse = front.copy()
        worse[i, 1:] *= 1.0 + rel_noise
        losses.append(volume - hypervolume_inside(worse, ref))
    return float(np.mean(losses))


def hypervolume_inside(points: np.ndarray, ref: np.ndarray) -> float:
    r"""Hypervolume of the rows of ``(p, 3)`` ``points`` that dominate ``ref`` (0 for none)."""
    inside = points[np.all(points < ref, axis=1)]
    return moocore.hypervolume(inside, ref=ref) if len(inside) else 0.0
