"""The knobs of one fleet search."""

from __future__ import annotations

from dataclasses import dataclass

ACQUISITIONS = ("policy", "ehvi")


@dataclass
class SearchSettings:
    """Knobs of one search.

    Attributes:
        budget: Real latency measurements in total, over all clusters, including the
            initial design, the final front and the reference rows.
        accuracy_budget: Real accuracy evaluations for an expensive evaluator.
        pop_size, generations: NSGA-II settings.
        max_front: At most this many predicted-front configurations are measured at
            the end (``"ehvi"``: by greedy hypervolume contribution under the posterior;
            ``"policy"``: spread evenly along the predicted fleet-average latency).
        n_init: Initial space-filling (Sobol) configurations; with the problem's anchors
            (see :meth:`FleetProblem.anchors <moo_compress.problem.FleetProblem.anchors>`)
            each is measured on every cluster.
        batch_size: Measurements the policy may ask for per generation.
        rel_std_threshold: Relative predictive std above which a pair is worth measuring.
        refit_every: Full surrogate refit after this many new points.
        transfer: Multi-task GP across clusters (True) or independent GPs; the default
            latency model's choice.
        gp_maxiter: L-BFGS iterations of a full GP fit. An iteration cap, unlike a time
            cap, keeps fits deterministic; past ~50 iterations the fits of this search
            gained nothing measurable on held-out configurations.
        seed: Seed of everything random in the search.
        acquisition: ``"ehvi"`` (the default; search v2, issue 13): decoupled fleet EHVI
            (:mod:`moo_compress.acquisition`) over every configuration NSGA-II has
            evaluated, spending the budget evenly over the generations, then NSGA-II on the
            posterior and rounds that spend what the final front does not need; it stops
            early, and says why, when the expected improvement falls below the noise. Its
            latency model is the :class:`~surrogates.transfer_switch.TransferSwitch`, and
            the reported front is chosen by greedy hypervolume contribution among the
            configurations measured on every cluster. ``"policy"``: the uncertainty policy
            of :class:`~surrogates.active_learning.ActiveLearningPolicy` (the search before
            issue 13), ``batch_size`` pairs per generation at most, the final front spread
            evenly along the predicted fleet-average latency.
    """

    budget: int = 300
    accuracy_budget: int = 60
    pop_size: int = 40
    max_front: int = 16
    generations: int = 20
    n_init: int = 8
    batch_size: int = 8
    rel_std_threshold: float = 0.03
    refit_every: int = 16
    transfer: bool = True
    gp_maxiter: int = 50
    seed: int = 0
    acquisition: str = "ehvi"

    def __post_init__(self) -> None:
        if self.acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {self.acquisition!r}")
