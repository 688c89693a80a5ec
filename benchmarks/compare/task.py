"""One benchmark problem at one seed: what every method sees, and the ground truth.

A :class:`Task` wraps a :class:`~moo_compress.problem.FleetProblem` with:

* a shared accuracy cache, so every method pays for the same evaluation only once in
  compute, while its wall time is charged the evaluation time of every distinct
  configuration it asked about (see :class:`AccuracyLedger`);
* the ground truth used to score fronts (never shown to a method except the oracle):
  true objectives ``[1 - accuracy, fleet-average ms, worst-cluster ms]`` from each
  cluster's noiseless mean latency over all of its devices (simulated fleets) or the
  recorded latency (replayed devices);
* the devices methods may measure on: the problem's cluster representatives, every
  fleet device (HDAP clusters the fleet its own way) and one nominal device.

Where the problem's accuracy evaluator is expensive (ResNet50 fidelity, ~3 s per
configuration on 2 cores), every method and the truth share a STAND-IN: a GP fitted
on ``n_standin`` real evaluations (the anchors and a Sobol design). The comparison on
such a problem is then a comparison of latency handling, and the table says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moo_compress.accuracy import AccuracyEvaluator
from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.devices.simulated import SimulatedDevice
from moo_compress.problem import FleetProblem
from moo_compress.problem_file import load_problem_class
from surrogates.accuracy_model import AccuracyModel
from surrogates.active_learning import initial_design

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"


@dataclass
class AccuracyLedger:
    """What one method run asked of the accuracy evaluator.

    Attributes:
        evaluations: Distinct configurations evaluated for this method.
        seconds: Their evaluation time in s (measured when first evaluated, for
            whichever method asked first).
    """

    evaluations: int = 0
    seconds: float = 0.0
    seen: set[bytes] = field(default_factory=set)


class Task:
    """A problem, its truth, and the shared accuracy of its configurations.

    Args:
        problem: The problem, built with ``seed``.
        seed: Its seed (methods get the same seed).
        tolerance: Iso-accuracy tolerance: 0.005 (0.5 points) for real accuracy, 0.01
            for fidelity.
        n_standin: Real evaluations behind the stand-in of an expensive evaluator.
    """

    def __init__(self, problem: FleetProblem, seed: int, n_standin: int = 20) -> None:
        self.problem = problem
        self.seed = seed
        self.name = problem.name
        self.budget = problem.budget
        self.tolerance = 0.005 if problem.accuracy_mode == "real" else 0.01
        self._accuracy: dict[bytes, tuple[float, float]] = {}
        self.fresh_seconds = 0.0
        self.ledger = AccuracyLedger()
        self.standin: AccuracyModel | None = None
        self.accuracy_note = f"{problem.accuracy_label}, evaluated for real for every configuration"
        if problem.evaluator.expensive:
            self._fit_standin(n_standin)
        self.evaluator = _TaskEvaluator(self, problem.evaluator)
        """What a search of this task evaluates with (cached, or the stand-in)."""

    # ------------------------------------------------------------------ accuracy
    def accuracy(self, X: np.ndarray) -> np.ndarray:
        """(N,) accuracy (or fidelity) of an (N, n_var) population, cached."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        if self.standin is not None:
            self._charge(X, lambda x: 0.0)
            return self.standin.predict(self.problem.features(X))[0]
        return np.array([self._charge(x[None], self._evaluate)[0] for x in X])

    def _evaluate(self, x: np.ndarray) -> float:
        return float(self.problem.evaluator.evaluate(self.problem.space.decode(x)))

    def _charge(self, X: np.ndarray, evaluate) -> list[float]:
        """Evaluate (cached) every row of ``X``; charge the ledger for new rows."""
        values = []
        for x in X:
            key = x.tobytes()
            if key not in self._accuracy:
                start = time.perf_counter()
                value = evaluate(x)
                self._accuracy[key] = (value, time.perf_counter() - start)
                self.fresh_seconds += self._accuracy[key][1]
            value, seconds = self._accuracy[key]
            if key not in self.ledger.seen:
                self.ledger.seen.add(key)
                self.ledger.evaluations += 1
                self.ledger.seconds += seconds
            values.append(value)
        return values

    def _fit_standin(self, n: int) -> None:
        design = initial_design(self.problem.space.xl, self.problem.space.xu, n, self.seed)
        X = np.unique(np.vstack([self.problem.anchors(), design]), axis=0)
        accuracy = np.array([self._evaluate(x) for x in X])
        self.standin = AccuracyModel().fit(self.problem.features(X), accuracy)
        self.accuracy_note = (
            f"STAND-IN: a GP fitted on {len(X)} real {self.problem.accuracy_label} "
            "evaluations, shared by every method and the truth (the comparison is of "
            "latency handling)"
        )

    def new_ledger(self) -> AccuracyLedger:
        """Start charging a new method run."""
        self.ledger = AccuracyLedger()
        return self.ledger

    # ------------------------------------------------------------------ truth
    def true_objectives(self, X: np.ndarray) -> np.ndarray:
        """(N, 3) true [1 - accuracy, fleet-average ms, worst-cluster ms]. For scoring
        and for the oracle only."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        latency = self.problem.clusters.true_cluster_latency(X)
        if latency is None:
            raise ValueError(f"problem {self.name!r} has no ground-truth latency to score with")
        return self.problem.objectives(self.accuracy(X), latency)

    def baseline_objectives(self) -> np.ndarray:
        """(3,) true objectives of the uncompressed configuration."""
        return self.true_objectives(self.problem.baseline()[None])[0]

    # ------------------------------------------------------------------ devices
    @property
    def representatives(self) -> list[Device]:
        """(K,) the problem's cluster representatives."""
        return list(self.problem.clusters.representatives)

    def fleet_devices(self) -> list[Device]:
        """Every device of the fleet (bound), or the representatives without a fleet."""
        fleet = self.problem.clusters.fleet
        if fleet is None:
            return self.representatives
        return [fleet.device(i) for i in range(len(fleet))]

    def nominal_device(self) -> Device:
        """One nominal, undrifted device of the fleet's SKU (drift factors 1); for a
        problem without a simulated fleet, its ``nominal_device()`` where it has one,
        else its first representative."""
        fleet = self.problem.clusters.fleet
        if fleet is None:
            nominal = self.problem.nominal_device()
            return nominal if nominal is not None else self.representatives[0]
        device = SimulatedDevice(
            f"{fleet.sku.name}-nominal", fleet.sku, seed=np.random.SeedSequence(self.seed)
        )
        device.bind(self.problem.space)
        return device

    def decode(self, x: np.ndarray) -> CompressionConfig:
        return self.problem.space.decode(x)

    def macs(self, X: np.ndarray) -> np.ndarray:
        """(N,) MACs of a population, from the problem's analytic cost columns."""
        return np.asarray(self.problem.cost_columns(np.atleast_2d(X))["macs"], dtype=float)

    def random_configs(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, n_var) uniform random decision vectors."""
        space = self.problem.space
        return rng.integers(space.xl, space.xu + 1, size=(n, space.n_var))


class _TaskEvaluator(AccuracyEvaluator):
    """The problem's evaluator answered by the task's cache (or stand-in), ``expensive``
    False, so that a :class:`~moo_compress.search.FleetSearch` evaluates every candidate
    through it; ``mode`` is the original's."""

    expensive = False

    def __init__(self, task: Task, original: AccuracyEvaluator) -> None:
        self.task = task
        self.mode = original.mode

    def evaluate(self, config: CompressionConfig) -> float:
        return float(self.task.accuracy(self.task.problem.space.encode(config)[None])[0])


def load_task(name_or_file: str, seed: int) -> Task:
    """The task of a problem name in ``problems/`` (e.g. ``resnet50_hdap``) or a file."""
    path = Path(name_or_file)
    if not path.suffix:
        path = PROBLEMS / f"{name_or_file}.py"
    if not path.is_file():
        known = sorted(p.stem for p in PROBLEMS.glob("*.py"))
        raise ValueError(f"problem {name_or_file!r} not found; allowed: a file or one of {known}")
    return Task(load_problem_class(path)(seed=seed), seed)
