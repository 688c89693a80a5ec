"""One benchmark problem at one seed: what every method sees, and the ground truth.

A :class:`Task` wraps a :class:`~moo_compress.problem.FleetProblem` with:

* the protocol's budgets, equal for every method: ``budget`` real latency
  measurements, ``accuracy_budget`` distinct accuracy evaluations and ``max_reported``
  reported configurations (M);
* a shared accuracy cache, so every method pays for the same evaluation only once in
  compute, while its wall time is charged the evaluation time of every distinct
  configuration it asked about and its ledger counts them against
  ``accuracy_budget`` (see :class:`AccuracyLedger`); scoring reads the same cache
  without charging anyone (:meth:`Task.true_objectives`);
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

import hashlib
import inspect
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moo_compress import compress, fake_quant, recovery
from moo_compress.accuracy import AccuracyEvaluator
from moo_compress.atomic_write import replacing
from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.devices.simulated import SimulatedDevice
from moo_compress.problem import FleetProblem
from moo_compress.problem_file import load_problem_class
from surrogates.accuracy_model import AccuracyModel
from surrogates.active_learning import initial_design

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"
ACCURACY_BUDGET_FACTOR = 2
"""The accuracy budget is this many times the evaluations of one NSGA-II run with the
problem's population and generations, ``pop_size * (generations + 1)``."""


class AccuracyBudgetExhausted(RuntimeError):
    """A method asked for more distinct accuracy evaluations than its budget."""


@dataclass
class AccuracyLedger:
    """What one method run asked of the accuracy evaluator.

    Attributes:
        budget: Most distinct configurations it may ask about.
        seconds: Their evaluation time in s (measured when first evaluated, for
            whichever method asked first).
        values: ``x.tobytes()`` -> accuracy, for every configuration it asked about,
            in the order asked.
    """

    budget: int
    seconds: float = 0.0
    values: dict[bytes, float] = field(default_factory=dict)

    @property
    def evaluations(self) -> int:
        """Distinct configurations evaluated for this method."""
        return len(self.values)


class Task:
    """A problem, its truth, and the shared accuracy of its configurations.

    Args:
        problem: The problem, built with ``seed``.
        seed: Its seed (methods get the same seed).
        n_standin: Real evaluations behind the stand-in of an expensive evaluator.
        source: The problem's file (its hash keys the cached reference front).
        cache: Folder where the stand-in's real evaluations are cached, or None.

    Attributes:
        budget: Real latency measurements every method may spend (the problem's).
        accuracy_budget: Distinct accuracy evaluations every method may ask for.
        max_reported: M, the most configurations a method may report (the problem's
            ``max_reported``, default 16).
        tolerance: Iso-accuracy tolerance: 0.005 (0.5 points) for real accuracy, 0.01
            for fidelity.
    """

    def __init__(
        self,
        problem: FleetProblem,
        seed: int,
        n_standin: int = 20,
        source: Path | None = None,
        cache: Path | None = None,
    ) -> None:
        self.problem = problem
        self.seed = seed
        self.name = problem.name
        self.source = source
        self.cache = cache
        self.budget = problem.budget
        self.accuracy_budget = default_accuracy_budget(problem)
        self.max_reported = problem.max_reported
        self.tolerance = 0.005 if problem.accuracy_mode == "real" else 0.01
        self._accuracy: dict[bytes, tuple[float, float]] = {}
        self.fresh_seconds = 0.0
        self.ledger: AccuracyLedger | None = None
        self.standin: AccuracyModel | None = None
        self.accuracy_note = f"{problem.accuracy_label}, evaluated for real for every configuration"
        if problem.evaluator.expensive:
            self._fit_standin(n_standin)
        self.evaluator = _TaskEvaluator(self, problem.evaluator)
        """What a search of this task evaluates with (cached, or the stand-in)."""

    # ------------------------------------------------------------------ accuracy
    def accuracy(self, X: np.ndarray) -> np.ndarray:
        """(N,) accuracy (or fidelity) of an (N, n_var) population, cached; charged to
        the running method's ledger, if any.

        Raises:
            AccuracyBudgetExhausted: if a new configuration would exceed the ledger's
                budget.
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        if self.standin is not None:
            accuracy = self.standin.predict(self.problem.features(X))[0]
            predicted = dict(zip((x.tobytes() for x in X), accuracy, strict=True))
            return np.array(self._charge(X, lambda x: float(predicted[x.tobytes()])))
        return np.array([self._charge(x[None], self._evaluate)[0] for x in X])

    def _evaluate(self, x: np.ndarray) -> float:
        return float(self.problem.evaluator.evaluate(self.problem.space.decode(x)))

    def _charge(self, X: np.ndarray, evaluate) -> list[float]:
        """Evaluate (cached) every row of ``X``; charge the ledger, if any, for rows new
        to it."""
        values = []
        ledger = self.ledger
        for x in X:
            key = x.tobytes()
            new = ledger is not None and key not in ledger.values
            if new and ledger.evaluations >= ledger.budget:
                raise AccuracyBudgetExhausted(
                    f"budget of {ledger.budget} accuracy evaluations spent"
                )
            if key not in self._accuracy:
                start = time.perf_counter()
                value = evaluate(x)
                self._accuracy[key] = (value, time.perf_counter() - start)
                self.fresh_seconds += self._accuracy[key][1]
            value, seconds = self._accuracy[key]
            if new:
                ledger.values[key] = value
                ledger.seconds += seconds
            values.append(value)
        return values

    def _fit_standin(self, n: int) -> None:
        design = initial_design(self.problem.space.xl, self.problem.space.xu, n, self.seed)
        X = np.unique(np.vstack([self.problem.anchors(), design]), axis=0)
        path = self._standin_path(X)
        if path is not None and path.is_file():
            accuracy = np.load(path)
        else:
            accuracy = np.array([self._evaluate(x) for x in X])
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                with replacing(path) as tmp, tmp.open("wb") as out:  # parallel units
                    np.save(out, accuracy)
        self.standin = AccuracyModel().fit(self.problem.features(X), accuracy)
        self.accuracy_note = (
            f"STAND-IN: a GP fitted on {len(X)} real {self.problem.accuracy_label} "
            "evaluations, shared by every method and the truth (the comparison is of "
            "latency handling)"
        )

    def _standin_path(self, X: np.ndarray) -> Path | None:
        """Where the stand-in's real evaluations of ``X`` are cached, or None. The key:
        the seed, ``X``, the space, the evaluator's class and the source files of the
        problem's model and evaluator and of compression (problems that share them,
        like the two ResNet50 fleets, share the evaluations)."""
        if self.cache is None:
            return None
        problem = self.problem
        digest = hashlib.sha256(X.tobytes())
        digest.update(repr((self.seed, problem.space.var_names, type(problem.evaluator))).encode())
        sources = {inspect.getsourcefile(type(problem.evaluator))}
        sources |= {inspect.getsourcefile(m) for m in (compress, fake_quant, recovery)}
        for hook in (type(problem).build_model, type(problem).build_accuracy):
            sources.add(inspect.getsourcefile(hook))
        for source in sorted(filter(None, sources)):
            digest.update(Path(source).read_bytes())
        return Path(self.cache) / f"standin-{digest.hexdigest()[:16]}.npy"

    @contextmanager
    def charging(self) -> Iterator[AccuracyLedger]:
        """Charge every accuracy asked for inside the block to a new ledger."""
        self.ledger = AccuracyLedger(self.accuracy_budget)
        try:
            yield self.ledger
        finally:
            self.ledger = None

    # ------------------------------------------------------------------ truth
    def true_objectives(self, X: np.ndarray) -> np.ndarray:
        """(N, 3) true [1 - accuracy, fleet-average ms, worst-cluster ms]. For scoring
        and for the reference only: charged to no method."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        latency = self.problem.clusters.true_cluster_latency(X)
        if latency is None:
            raise ValueError(f"problem {self.name!r} has no ground-truth latency to score with")
        ledger, self.ledger = self.ledger, None
        try:
            return self.problem.objectives(self.accuracy(X), latency)
        finally:
            self.ledger = ledger

    def true_nominal_ms(self, X: np.ndarray) -> np.ndarray:
        """(N,) noiseless latency in ms of the nominal device (see
        :meth:`nominal_device`); for the ``oracle_nominal`` floor only."""
        return self.nominal_device().true_latency_ms(np.atleast_2d(X))

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
        """The device a single-device team tunes for: the problem's
        ``nominal_device()`` where it has one, else one nominal, undrifted
        device of the simulated fleet's SKU (drift factors 1), else the first
        representative.

        The simulated nominal device's measurement noise is the cluster
        representatives' (their sigmas weighted by cluster size), so that tuning on it
        is neither easier nor harder to measure than tuning on the fleet."""
        nominal = self.problem.nominal_device()
        if nominal is not None:
            return nominal
        fleet = self.problem.clusters.fleet
        if fleet is None:
            return self.representatives[0]
        clusters = self.problem.clusters
        noise = float(np.dot(clusters.weights, [d.noise for d in clusters.representatives]))
        device = SimulatedDevice(
            f"{fleet.sku.name}-nominal",
            fleet.sku,
            noise=noise,
            seed=np.random.SeedSequence(self.seed),
        )
        device.bind(self.problem.space)
        return device

    def decode(self, x: np.ndarray) -> CompressionConfig:
        return self.problem.space.decode(x)

    def macs(self, X: np.ndarray) -> np.ndarray:
        """(N,) MACs of a population, from the problem's analytic cost columns."""
        return np.asarray(self.problem.cost_columns(np.atleast_2d(X))["macs"], dtype=float)

    @property
    def verification_cost(self) -> int:
        """Latency measurements that verifying M reported configurations on every
        cluster costs: ``max_reported * K``."""
        return self.max_reported * self.problem.clusters.k

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


def default_accuracy_budget(problem: FleetProblem) -> int:
    """:data:`ACCURACY_BUDGET_FACTOR` times ``pop_size * (generations + 1)``."""
    return ACCURACY_BUDGET_FACTOR * problem.pop_size * (problem.generations + 1)


def problem_path(name_or_file: str) -> Path:
    """The file of a problem name in ``problems/`` (e.g. ``resnet50_hdap``) or a file.

    Raises:
        ValueError: naming the known problems, if there is no such file.
    """
    path = Path(name_or_file)
    if not path.suffix:
        path = PROBLEMS / f"{name_or_file}.py"
    if not path.is_file():
        known = sorted(p.stem for p in PROBLEMS.glob("*.py"))
        raise ValueError(f"problem {name_or_file!r} not found; allowed: a file or one of {known}")
    return path


def load_task(name_or_file: str, seed: int, cache: Path | None = None) -> Task:
    """The task of a problem name in ``problems/`` (e.g. ``resnet50_hdap``) or a file;
    ``cache``: see :class:`Task`."""
    path = problem_path(name_or_file)
    return Task(load_problem_class(path)(seed=seed), seed, source=path, cache=cache)
