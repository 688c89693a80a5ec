"""Search v2's measuring (``settings.acquisition == "ehvi"``): what to measure each
generation, what to do after the last one, and which measured rows to report.

:class:`~moo_compress.search.FleetSearch` runs the NSGA-II loop; under ``"ehvi"`` it
hands these steps to :class:`EhviRounds`:

1. every generation, the offspring join the :class:`~moo_compress.candidate_pool.
   CandidatePool` and one EHVI round (:class:`~moo_compress.acquisition.FleetAcquisition`)
   measures up to the generation's share of the budget among the best
   :data:`POOL_SIZE` candidates of the pool, then the latency model is refitted;
2. after the last generation, NSGA-II runs on the posterior (no measurement; every row
   it evaluates joins the pool) for as many new configurations as ``generations`` more
   generations would evaluate, in at most three times as many generations
   (:meth:`EhviRounds.explore`), then what the reservation for the final front leaves
   over is spent in more rounds;
3. the final front to measure is chosen by greedy hypervolume contribution among
   NSGA-II's last front and the best :data:`POOL_SIZE` candidates of the whole pool,
   with every latency already measured in place of its prediction
   (:meth:`EhviRounds.plugged`), within the budget left;
4. on a fleet whose clusters rank alike (:func:`surrogates.fleet_similarity.rank_alike`
   on every measurement so far), the final front is screened as a
   one-device search would: measured on the proxy cluster first, then only the rows that
   add hypervolume there (the other clusters predicted by the calibrated model) are
   measured on the other clusters. On such a fleet the search spends as a one-device
   search does (``nominal``): step 1 also holds back ``front_cap`` measurements for the
   proxy's measurement of the final front, step 2 keeps the verification of
   ``front_cap`` rows on every cluster reserved, and what the screen leaves of it stays
   unspent;
5. the reported front is chosen by greedy hypervolume contribution of the *measured*
   objectives, among that front and every pool row already measured on every active
   cluster (nothing new is measured).

Units: latencies in ms; objectives ``[loss, fleet-average ms, worst-cluster ms]``,
minimised; hypervolume in the search's scaled space (``[loss, avg / avg_0,
worst / worst_0]``, reference point :data:`~moo_compress.acquisition.REFERENCE`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from moo_compress.acquisition import REFERENCE, FleetAcquisition
from moo_compress.candidate_pool import CandidatePool
from moo_compress.front_choice import deployment_rows, greedy_hv_subset
from moo_compress.nsga import optimise

if TYPE_CHECKING:
    from moo_compress.search import FleetSearch

N_REFERENCE = 2
"""Most reference rows a problem measures beside the final front; reserved on every
cluster until the final candidates are known, then only what
:meth:`EhviRounds.reference_cost` needs."""
POOL_SIZE = 128
"""Candidates an EHVI round considers: the best predicted layers of the pool."""
EXPLORE_GENERATIONS = 3
"""Most generations of the posterior exploration, in multiples of ``settings.generations``
(:meth:`EhviRounds.explore`). Three times gave +0.0076 HV fraction on nb201_phones dev
seeds 100-104 (5 of 5 up) and +0.0008 on nb201_fleet dev seeds 100-109."""


class EhviRounds:
    """The EHVI steps of one :class:`~moo_compress.search.FleetSearch` (module docstring).

    Args:
        search: The search whose session, surrogates, policy and settings these steps
            use; it owns the NSGA-II loop and the final measurement.

    Attributes:
        acquisition: Chooses the (configuration, cluster) pairs and records why it
            stopped, if it did.
        pool: Every configuration NSGA-II has evaluated.
        seconds: Wall seconds of every round's pair choice (``"select"``: posterior
            samples and EHVI) and latency-model refit (``"refit"``), in round order.
        explored: The posterior exploration's ``generations`` and the
            ``new_configurations`` it added to the pool (:meth:`explore`); None before it.
        screened: The proxy screen of the final front (:meth:`screen`); None if none.
    """

    def __init__(self, search: FleetSearch) -> None:
        self.search = search
        self.acquisition = FleetAcquisition(search.objectives, seed=search.settings.seed)
        self.pool = CandidatePool()
        self.seconds: dict[str, list[float]] = {"select": [], "refit": []}
        self.screened: dict | None = None
        self.explored: dict | None = None

    # ------------------------------------------------------------- during the loop
    def generation(self, offspring: np.ndarray, generations_left: int) -> None:
        """Add ``offspring`` (N, n_var) to the pool, then one round with the share of the
        policy's remaining budget that falls to one of ``generations_left``. On a fleet
        whose clusters rank alike, ``search.front_cap`` more stay held back for the
        proxy's measurement of the final front (see :meth:`spend_slack`)."""
        self.pool.add(offspring)
        remaining = self.search.latency_policy.remaining()
        if self.alike_proxy() is not None:
            remaining = max(0, remaining - self.search.front_cap)
        self.acquire(-(-remaining // max(1, generations_left)))

    def acquire(self, n: int) -> bool:
        """One EHVI round: up to ``n`` pairs from the best :data:`POOL_SIZE` candidates of
        the pool, measured, then a refit; whether anything was measured."""
        search = self.search
        X = self.pool.best(self.predicted, POOL_SIZE)
        known = np.array(
            [[search.session.known(x, c) for c in range(search.clusters.k)] for x in X]
        )
        # the early stop only after half the budget: on resnet50_hdap (dev seed 0) the
        # noise-floor rule had stopped the search at 82 of 400 measurements
        may_stop = 2 * self.left() <= search.settings.budget
        start = time.perf_counter()
        picks = self.acquisition.select(
            X, search.clusters, known, n, search.reference_scale(), may_stop
        )
        self.seconds["select"].append(time.perf_counter() - start)
        if picks:
            search.measure([(X[i], c) for i, c in picks])
            start = time.perf_counter()
            search.latency_model.refit()
            self.seconds["refit"].append(time.perf_counter() - start)
        return bool(picks)

    def record(self) -> dict:
        """JSON-ready: the acquisition's record plus the rounds' wall seconds (mean and
        max of the pair choice and of the refit; machine-dependent, unlike the rest)."""
        timing = {
            f"{what}_s": {"mean": float(np.mean(v)), "max": float(np.max(v))} if v else None
            for what, v in self.seconds.items()
        }
        return {
            **self.acquisition.record(),
            "round_seconds": timing,
            "explore": self.explored,
            "screen": self.screened,
        }

    # ------------------------------------------------------- after the last generation
    def finish(self, opt: np.ndarray, population: np.ndarray) -> np.ndarray:
        """Explore the posterior from ``population``, spend the slack, and return the
        candidates of the final front (:meth:`final_candidates`)."""
        self.explore(population)
        self.spend_slack(opt)
        return self.final_candidates(opt)

    def final_candidates(self, opt: np.ndarray) -> np.ndarray:
        """NSGA-II's ``opt`` (N, n_var) plus the best :data:`POOL_SIZE` rows of the pool
        by :meth:`plugged` objectives. In 12 dev-seed runs (nb201_fleet 100-104,
        nb201_large 100-103, nb201_mixed 100-102) the best 16 rows of NSGA-II's front
        held 0.970-0.985 of the true front's hypervolume, those of the pool
        0.975-0.989."""
        return np.vstack([opt, self.pool.best(self.plugged, POOL_SIZE)])

    def explore(self, start: np.ndarray) -> None:
        """NSGA-II on the posterior from the population ``start`` (P, n_var), measuring no
        latency; every row it evaluates joins the pool.

        A surrogate evaluation costs microseconds, but a configuration new to the pool
        costs a real accuracy evaluation under a cheap evaluator. So the exploration is
        bounded by new configurations, not by generations: it stops before a generation
        that could take it past ``P * (settings.generations - 1)`` of them (what
        ``settings.generations`` generations evaluate where no row repeats), and after
        :data:`EXPLORE_GENERATIONS` times ``settings.generations`` generations at most.
        Where NSGA-II revisits rows (NB201's 15,625 cells), it runs longer for the same
        cost; where it does not (the ResNet spaces), it runs ``settings.generations``.
        Recorded in :attr:`explored`.
        """
        search = self.search
        generations = search.settings.generations
        allowed = len(start) * (generations - 1)
        before = len(self.pool)
        self.explored = {"generations": 0, "new_configurations": 0}

        def objectives(X: np.ndarray) -> np.ndarray:
            self.pool.add(X)
            self.explored["generations"] += 1
            self.explored["new_configurations"] = len(self.pool) - before
            return self.posterior(X)[0]

        def spent() -> bool:
            return self.explored["new_configurations"] + len(start) > allowed

        n_constr = self.posterior(start[:1])[1].shape[1]
        optimise(
            search.problem,
            objectives,
            3,
            search.settings.seed,
            constraints=(lambda X: self.posterior(X)[1]) if n_constr else None,
            n_constr=n_constr,
            generations=EXPLORE_GENERATIONS * generations,
            start=start,
            stop=spent,
        )

    def spend_slack(self, opt: np.ndarray) -> None:
        """Spend what the reservation for the final front leaves over (front
        configurations measured during the search cost nothing at the end), one round of
        at most a generation's share at a time, until only the final front's and the
        reference rows' missing pairs are left or the acquisition stops early.

        On a fleet whose clusters rank alike, the search spends as ``nominal`` does: the
        whole verification of ``search.front_cap`` rows on every active cluster stays
        reserved, and the chosen front's missing proxy pairs (which the proxy screen,
        :meth:`screen`, measures first) come out of the search's share, as a one-device
        search measures its own front within its budget; what the screen leaves of the
        verification stays unspent. On resnet8_digits_mcu dev seeds 100-109 this (with
        the hold-back of :meth:`generation`) took 195.7 measurements to 181.6, against
        nominal's 181.7, within nominal + 3 per cluster on 9 of 10 seeds (5 before)."""
        search = self.search
        policy = search.latency_policy
        share = max(1, -(-policy.budget_total // max(1, search.settings.generations)))
        while not self.acquisition.stopped_early:
            candidates = self.final_candidates(opt)
            chosen = self.choose(candidates)
            proxy = self.alike_proxy()
            if proxy is None:
                front_cost = self.unmeasured(chosen)
            else:
                n_active = int(search.clusters.active.sum())
                front_cost = search.front_cap * n_active + self.unmeasured(chosen, [proxy])
            spare = self.left() - front_cost - self.reference_cost(candidates)
            n = min(share, spare)
            if n < 1:
                return
            policy.budget_total += n  # released from the reservation
            if not self.acquire(n):
                self.acquisition.stop(
                    f"no candidate has a pair left to measure ({spare} of the budget unspent)"
                )

    # ------------------------------------------------------------------ the front
    def choose(self, front: np.ndarray) -> np.ndarray:
        """At most ``search.front_cap`` distinct rows of ``front`` (N, n_var) to measure:
        the feasible rows deployed at the problem's ``deployment_drops`` (:meth:`deployed`),
        then by greedy hypervolume contribution of the :meth:`plugged` objectives (then, if
        fewer add volume, the rest evenly spread), each taken only while its missing
        pairs fit in the budget left beside the reference rows."""
        search = self.search
        front = np.unique(front, axis=0)
        F, feasible = self.plugged(front)
        first = self.deployed(F, np.flatnonzero(feasible))
        F = F / search.reference_scale()
        chosen = greedy_hv_subset(F, min(len(front), 2 * search.front_cap), REFERENCE, first)
        rest = np.setdiff1d(np.arange(len(front)), chosen)
        order = np.concatenate([front[chosen], search.spread(front[rest])])
        return self.affordable(order, self.left() - self.reference_cost(front))

    def screen(self, front: np.ndarray) -> np.ndarray:
        """The rows of the chosen final ``front`` (N, n_var) to measure on every cluster.

        ``front`` itself, unless two or more active clusters rank alike (judged anew on
        every measurement so far).
        Then, as a one-device search would, ``front`` is measured on the proxy cluster
        first, and at most ``search.front_cap`` rows are chosen by greedy hypervolume
        contribution among ``front`` and every pool configuration already measured on the
        proxy (and, for an expensive evaluator, evaluated): the proxy's latency measured,
        the other clusters' predicted by the latency model (calibrated to the proxy),
        accuracy real where known. Only those rows are then measured on the other
        clusters, each while it fits in the budget beside the reference rows; what the
        reservation leaves over stays unspent. Recorded in :attr:`screened`.
        """
        search = self.search
        proxy = self.alike_proxy()
        if proxy is None or not len(front):
            return front  # nothing to screen for
        session = search.session
        new = self.unmeasured(front, [proxy])
        X = np.unique(np.vstack([front, *[x[None] for x in self.measured_pool([proxy])]]), axis=0)
        latency, _ = search.objectives.predict_latency(X)
        # measures the front's missing proxy pairs, reads the rest from the store
        latency[:, proxy] = search.objectives.measure_latencies([(x, proxy) for x in X])
        accuracy, _ = search.objectives.predict_accuracy(X)
        known = [i for i, x in enumerate(X) if session.has_accuracy(x)]
        accuracy[known] = search.objectives.evaluate_accuracies(X[known])
        order = self.greedy_feasible(X, accuracy, latency)
        rows = self.affordable(X[order], self.left() - new - self.reference_cost(front))
        if not len(rows):  # nothing adds volume: verify the chosen front as it is
            return front
        self.screened = {
            "proxy": proxy,
            "chosen": len(front),
            "candidates": len(X),
            "verified": len(rows),
        }
        return rows

    def best_measured(self, front: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """After ``front`` was measured: at most ``search.front_cap`` configurations, by
        greedy hypervolume contribution of their *measured* objectives, among ``front``
        and every pool configuration already measured on every active cluster (and, for
        an expensive evaluator, already evaluated). No new latency is measured. Returns
        the rows, their (N, K) latency in ms and (N,) accuracy."""
        active = np.flatnonzero(self.search.clusters.active)
        done = self.measured_pool([int(c) for c in active])
        X = np.unique(np.vstack([front, *[x[None] for x in done]]), axis=0)
        latency, accuracy = self.search.objectives.measure_rows(X)
        picks = self.greedy_feasible(X, accuracy, latency)
        if not len(picks):  # nothing adds volume: keep the chosen front as it is
            picks = np.flatnonzero((X[:, None] == front[None]).all(-1).any(1))
        return X[picks], latency[picks], accuracy[picks]

    # ------------------------------------------------------------------ helpers
    def alike_proxy(self) -> int | None:
        """The proxy cluster (index among all clusters) if two or more active clusters
        rank alike, judged anew on every measurement so far; None otherwise."""
        similarity = self.acquisition.judge(self.search.clusters)
        if similarity is None or not similarity.alike or len(similarity.r2) < 2:
            return None
        return int(np.flatnonzero(self.search.clusters.active)[similarity.proxy])

    def measured_pool(self, clusters: list[int]) -> list[np.ndarray]:
        """Pool configurations whose latency is known on every one of ``clusters`` (and,
        for an expensive evaluator, whose accuracy is known)."""
        search = self.search
        session = search.session
        return [
            x
            for x in self.pool.rows()
            if all(session.known(x, c) for c in clusters)
            and (not search.expensive_accuracy or session.has_accuracy(x))
        ]

    def greedy_feasible(
        self, X: np.ndarray, accuracy: np.ndarray, latency: np.ndarray
    ) -> np.ndarray:
        """Indices of at most ``search.front_cap`` feasible rows of ``X`` (N, n_var): those
        deployed at the problem's ``deployment_drops`` (:meth:`deployed`), then by greedy
        hypervolume contribution of the objectives of ``accuracy`` (N,) and
        ``latency`` (N, K) ms, in the order chosen; none when no row adds volume."""
        search = self.search
        F = search.problem.objectives(accuracy, latency, search.clusters)
        G = search.problem.constraint_values(X, accuracy, latency, search.clusters)
        feasible = np.flatnonzero(np.all(G <= 0, axis=1))
        first = np.searchsorted(feasible, self.deployed(F, feasible))
        scaled = F[feasible] / search.reference_scale()
        return feasible[greedy_hv_subset(scaled, search.front_cap, REFERENCE, first)]

    def deployed(self, F: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Indices among ``rows`` (indices into (N, 3) objectives ``F``) of the rows a user
        deploys at the problem's ``deployment_drops`` (:func:`~moo_compress.front_choice.
        deployment_rows`, below the baseline's predicted loss), as indices into ``F``."""
        search = self.search
        baseline = search.problem.baseline()[None]
        loss = 1.0 - float(search.objectives.predict_accuracy(baseline)[0][0])
        return rows[deployment_rows(F[rows], loss, search.problem.deployment_drops)]

    def affordable(self, order: np.ndarray, allowance: int) -> np.ndarray:
        """At most ``search.front_cap`` rows of ``order`` (N, n_var), in order, each taken
        only while its unmeasured pairs on the active clusters fit in ``allowance``
        measurements."""
        rows = []
        for x in order:
            cost = self.unmeasured(x[None])
            if len(rows) < self.search.front_cap and cost <= allowance:
                rows.append(x)
                allowance -= cost
        return np.array(rows, dtype=np.int64).reshape(-1, order.shape[1])

    def reference_cost(self, front: np.ndarray) -> int:
        """Measurements to hold back for the reference rows measured beside a final front
        drawn from ``front`` (N >= 1, n_var): the baseline's missing pairs on the active
        clusters where it is a reference row, and every active cluster for each other
        row (those may depend on which front is chosen, e.g. the FLOPs-uniform row).
        On NAS-Bench-201, whose one reference row is the baseline measured in the initial
        design, this is 0 where a fixed two rows a cluster had left 8 of 200 unspent."""
        search = self.search
        baseline = search.problem.baseline()
        n_active = int(search.clusters.active.sum())
        rows = search.problem.reference_rows(front).values()
        return sum(
            self.unmeasured(x[None]) if np.array_equal(x, baseline) else n_active for x in rows
        )

    def left(self) -> int:
        """Latency measurements of the budget not yet spent (reservation included)."""
        policy = self.search.latency_policy
        return self.search.settings.budget - (policy.budget_total - policy.remaining())

    def unmeasured(self, X: np.ndarray, clusters: list[int] | None = None) -> int:
        """Pairs of ``X`` (N, n_var) on ``clusters`` (default: the active ones) whose
        latency is not known."""
        search = self.search
        if clusters is None:
            clusters = [int(c) for c in np.flatnonzero(search.clusters.active)]
        return sum(not search.session.known(x, c) for x in X for c in clusters)

    def posterior(self, X: np.ndarray, measured: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) objectives and (N, c) constraint values of ``X`` under the posterior
        mean (feasible where <= 0); with ``measured``, every latency this session has
        measured stands in place of its prediction (read from the store; nothing new is
        measured)."""
        search = self.search
        mean, _ = search.objectives.predict_latency(X)
        if measured:
            active = np.flatnonzero(search.clusters.active)
            pairs = [(i, int(c)) for i, x in enumerate(X) for c in active]
            pairs = [(i, c) for i, c in pairs if search.session.known(X[i], c)]
            if pairs:
                rows, cols = np.array(pairs).T
                known = [(X[i], c) for i, c in pairs]
                mean[rows, cols] = search.objectives.measure_latencies(known)
        accuracy, _ = search.objectives.predict_accuracy(X)
        F = search.problem.objectives(accuracy, mean, search.clusters)
        return F, search.problem.constraint_values(X, accuracy, mean, search.clusters)

    def predicted(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) predicted objectives of ``X`` and (N,) bool predicted feasibility."""
        F, G = self.posterior(X)
        return F, np.all(G <= 0, axis=1)

    def plugged(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`predicted`, with every latency measured so far in place of its
        prediction: a measured pair is what the reported front will show, while the
        model's mean there is smoothed (noise, winsorised outliers)."""
        F, G = self.posterior(X, measured=True)
        return F, np.all(G <= 0, axis=1)
