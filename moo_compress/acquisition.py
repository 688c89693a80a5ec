"""Which (configuration, cluster) latencies to measure next: decoupled fleet EHVI.

The search-v2 rule (issue 13), used by :class:`~moo_compress.search.FleetSearch` when
``settings.acquisition == "ehvi"``. Each generation, for a pool of candidates (the
NSGA-II population and offspring, evaluated on the posterior):

1. joint posterior samples of every candidate's latency on every cluster (the latency
   model's ``posterior_samples`` where it has one, e.g.
   :class:`~surrogates.transfer_switch.TransferSwitch`; otherwise independent log-normal
   draws from its mean and std) and of its accuracy loss;
2. :func:`surrogates.fleet_ehvi.choose_pairs`: expected hypervolume improvement of
   (loss, fleet average, worst cluster) over the front of the configurations measured so
   far, per cluster (decoupled), with degraded clusters closed; when fewer pairs than
   the round's share improve the front in any sample, the open pairs of largest
   posterior spread fill it, so the budget is spent;
3. adaptive fleet handling: when the measurements say every cluster ranks the
   configurations like one proxy cluster (:func:`surrogates.fleet_similarity.rank_alike`),
   only the proxy cluster is measured beyond a few calibration points per cluster (and
   the final front is screened on the proxy: :meth:`~moo_compress.ehvi_rounds.EhviRounds.
   screen`);
4. early stop: when the best expected improvement stays below what one point's
   measurement noise moves the front (:func:`surrogates.fleet_ehvi.noise_floor_hv`) for
   ``patience`` rounds in a row, once the search allows it (after half its budget:
   ``may_stop``), nothing more is worth measuring; the search says so in its result.

Units: latencies in ms; objectives minimised; hypervolume in the search's scaled space
(``[loss, avg / avg_0, worst / worst_0]``, reference point ``(1, 1.1, 1.1)``).
"""

from __future__ import annotations

import math

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from moo_compress.fleet_clusters import FleetClusters
from moo_compress.surrogate_objectives import SurrogateObjectives
from surrogates.fleet_ehvi import (
    choose_pairs,
    fleet_objectives,
    front_partitioning,
    log_ehvi,
    noise_floor_hv,
)
from surrogates.fleet_similarity import FleetSimilarity, rank_alike, spend_plan
from surrogates.latency_model import SampledLatencyModel

REFERENCE = np.array([1.0, 1.1, 1.1])
"""Hypervolume reference point in the scaled objective space (as the search's HV)."""


class FleetAcquisition:
    """Chooses latency measurements by decoupled EHVI (see the module docstring).

    Args:
        objectives: The search's surrogate objectives (model inputs, predictions).
        n_samples: Joint posterior samples per round. The greedy batch costs about
            ``n_samples * batch * K`` sample hypervolume improvements per round: with 64,
            choosing pairs took 306 of 693 s of an 8-generation nb201_fleet search
            (cProfile, dev seed 100, loaded machine). 32 was not profiled.
        rel_noise: Relative latency measurement noise of the early-stop rule.
        calibration_points: Measurements per non-proxy cluster on a fleet that ranks alike.
        patience: Consecutive rounds below the noise floor before the early stop (one
            round stopped a dev NB201 search at 101 of 200 measurements).
        seed: Seed of the posterior samples.
    """

    def __init__(
        self,
        objectives: SurrogateObjectives,
        n_samples: int = 32,
        rel_noise: float = 0.03,
        calibration_points: int = 3,
        patience: int = 3,
        seed: int = 0,
    ) -> None:
        self.objectives = objectives
        self.n_samples = n_samples
        self.rel_noise = rel_noise
        self.calibration_points = calibration_points
        self.patience = patience
        self.seed = seed
        self._seen: dict[bytes, np.ndarray] = {}  # measured latency (K,) per config
        self._rows: dict[bytes, np.ndarray] = {}
        self.similarity: FleetSimilarity | None = None
        self.stopped_early = False
        self.stop_reason: str | None = None
        self.rounds = 0
        self._rounds_below = 0

    def observe(self, pairs: list[tuple[np.ndarray, int]], latency: np.ndarray, k: int) -> None:
        """Record measured values ``latency`` (P,) ms of ``pairs`` (NaN: none)."""
        for (x, c), value in zip(pairs, latency, strict=True):
            key = x.tobytes()
            row = self._seen.setdefault(key, np.full(k, np.nan))
            self._rows[key] = x
            if np.isfinite(value):
                row[c] = value

    def _samples(self, X: np.ndarray) -> np.ndarray:
        """(S, n, 1 + K) joint samples of (accuracy loss, latency per cluster in ms)."""
        problem, model = self.objectives.problem, self.objectives.latency_model
        feats, prior = problem.features(X), problem.prior_ms(X)
        rng = np.random.default_rng(self.seed + self.rounds)
        if isinstance(model, SampledLatencyModel):
            lat = model.posterior_samples(
                feats, self.n_samples, prior, seed=self.seed + self.rounds
            )
        else:
            mean, std = self.objectives.predict_latency(X)
            s2 = np.log1p((std / mean) ** 2)
            z = rng.standard_normal((self.n_samples, *mean.shape))
            lat = np.exp(np.log(mean) - s2 / 2 + np.sqrt(s2) * z)
        accuracy, std = self.objectives.predict_accuracy(X)
        loss = 1.0 - accuracy + std * rng.standard_normal((self.n_samples, len(X)))
        return np.concatenate([loss[..., None], lat], axis=-1)

    def select(
        self,
        X: np.ndarray,
        clusters: FleetClusters,
        known: np.ndarray,
        n_pairs: int,
        scale: np.ndarray,
        may_stop: bool = True,
    ) -> list[tuple[int, int]]:
        """Up to ``n_pairs`` (candidate row, cluster) pairs of ``X`` to measure.

        Args:
            X: (n, n_var) candidate pool, distinct rows.
            clusters: The clusters now (degraded ones are never chosen).
            known: (n, K) bool, latencies already known.
            n_pairs: Most pairs wanted.
            scale: (3,) the search's objective scale (loss, avg_0, worst_0).
            may_stop: Whether the early stop may apply this round (rounds below the
                noise floor are counted either way).
        """
        self.rounds += 1
        if n_pairs < 1 or self.stopped_early:
            return []
        active = clusters.active
        weights = clusters.weights[active] / clusters.weights[active].sum()
        samples = self._samples(X)
        samples = np.concatenate([samples[..., :1], samples[..., 1:][..., active]], axis=-1)
        front = self._front(clusters, weights)
        ref = REFERENCE * scale
        costs = np.ones(clusters.k)
        self.similarity = self.judge(clusters)
        if self.similarity is not None:
            counts = np.isfinite(np.array(list(self._seen.values()))).sum(0)
            costs[active] = spend_plan(
                self.similarity, costs[active], counts[active], self.calibration_points
            )
        out_costs = np.concatenate([[np.inf], costs[active]])  # accuracy: its own policy
        closed = np.column_stack([np.ones(len(X), dtype=bool), known[:, active]])
        partitioning = front_partitioning(front, ref, scale)  # one per round, shared
        best = math.exp(
            log_ehvi(samples, weights, front, ref, scale, partitioning=partitioning).max()
        )
        below = front.size and best < noise_floor_hv(front, ref, scale, self.rel_noise)
        self._rounds_below = self._rounds_below + 1 if below else 0
        if may_stop and self._rounds_below >= self.patience:
            self.stop(f"expected improvement below the noise floor for {self.patience} rounds")
            return []
        picks = choose_pairs(
            samples,
            weights,
            front,
            ref,
            scale,
            out_costs,
            closed,
            n_pairs,
            partitioning=partitioning,
        )
        chosen = [(i, j) for i, j, _ in picks]
        if len(chosen) < n_pairs:  # no pair improves the front in any sample: spend the
            # rest of this round's share on the open pairs of largest log-latency spread
            spread = np.log(samples[..., 1:]).std(0)  # (n, K_active)
            spread[closed[:, 1:] | ~np.isfinite(out_costs[1:])] = -np.inf
            for i, j in chosen:
                spread[i, j - 1] = -np.inf
            for flat in np.argsort(-spread, axis=None, kind="stable"):
                i, j = np.unravel_index(flat, spread.shape)
                if len(chosen) >= n_pairs or not np.isfinite(spread[i, j]):
                    break
                chosen.append((int(i), int(j) + 1))
        index = np.flatnonzero(active)
        return [(i, int(index[j - 1])) for i, j in chosen]

    def judge(self, clusters: FleetClusters) -> FleetSimilarity | None:
        """Whether the active clusters rank the measured configurations alike (None
        before any measurement); its ``proxy`` indexes the active clusters."""
        if not self._seen:
            return None
        active = clusters.active
        weights = clusters.weights[active] / clusters.weights[active].sum()
        return rank_alike(np.array(list(self._seen.values()))[:, active], weights)

    def stop(self, reason: str) -> None:
        """Measure nothing more, for ``reason`` (one line, recorded)."""
        self.stopped_early, self.stop_reason = True, reason

    def _front(self, clusters: FleetClusters, weights: np.ndarray) -> np.ndarray:
        """(p, 3) predicted objectives of the measured configurations' non-dominated set."""
        if not self._rows:
            return np.zeros((0, 3))
        X = np.array(list(self._rows.values()))
        mean, _ = self.objectives.predict_latency(X)
        accuracy, _ = self.objectives.predict_accuracy(X)
        F = fleet_objectives(np.column_stack([1.0 - accuracy, mean[:, clusters.active]]), weights)
        return F[NonDominatedSorting().do(F, only_non_dominated_front=True)]

    def record(self) -> dict:
        """JSON-ready state for summary.json."""
        return {
            "rule": "decoupled EHVI of (loss, fleet average, worst cluster)",
            "rounds": self.rounds,
            "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason,
            "fleet_similarity": None if self.similarity is None else self.similarity.as_dict(),
        }
