"""Model size at iso-accuracy: joint pruning + mixed precision vs uniform quantisation.

Run: ``python -m benchmarks.mcu_size_at_iso_accuracy [--seeds 0 1 2]``

For each seed, the digits ResNet-8 of that seed (``problems/resnet8_digits_mcu.py``, a
fleet of 200 MPIC RISC-V MCUs, bits 2 / 4 / 8) is searched jointly with
:class:`~moo_compress.search.FleetSearch` and the problem's default settings, once
without and once with the 256 kbit size limit (``problems/resnet8_digits_mcu_size.py``).
Every measured front configuration gets its TEST accuracy (the search only saw the
validation split). Against each uniform reference (unpruned, every layer at 8 or at 4
bits), the smallest front configuration whose test accuracy is at most 0.5 points below
the reference's is picked, and its model size (``space.costs(X).size_bits``) is compared.
The first conv and the last linear layer stay at 8 bits in every configuration.

Then joint vs sequential on the problem without size limit, both fronts re-measured on
the joint problem's clusters: *sequential* first searches pruning alone with every layer
at 8 bits (same settings), then gives each configuration of that front every uniform
bit-width (2, 4, 8) and keeps the non-dominated measured results. Hypervolume uses
the search's normalisation (objectives divided by 1 and the measured all-8-bit
unpruned average and worst-cluster latency, reference point (1, 1.1, 1.1)).

Motetti et al. (IEEE TC 2024, the PLiNIO library) report 47.5 % smaller models than
all-8-bit at iso-accuracy for their joint pruning + channel-wise mixed-precision search;
this benchmark reports what ours reaches.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from rich.console import Console
from rich.table import Table

from moo_compress.problem import FleetCompressionProblem
from moo_compress.run import fingerprint, load_problem_class
from moo_compress.search import FleetSearch, SearchSettings
from surrogates.store import MeasurementStore

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"
FILES = ("resnet8_digits_mcu.py", "resnet8_digits_mcu_size.py")
TOLERANCE = 0.005
"""Iso-accuracy: test accuracy at most this far (absolute, 0.5 points) below the reference."""


def _settings(problem: FleetCompressionProblem) -> SearchSettings:
    return SearchSettings(
        budget=problem.budget,
        accuracy_budget=problem.accuracy_budget,
        pop_size=problem.pop_size,
        generations=problem.generations,
        seed=problem.seed,
    )


def search_front(problem: FleetCompressionProblem) -> tuple[np.ndarray, float, float]:
    """(F, n_var) measured front of a search, its hypervolume and the wall time in s."""
    with tempfile.TemporaryDirectory() as folder:
        store = MeasurementStore(Path(folder) / "m.sqlite", fingerprint(problem), "benchmark")
        try:
            start = time.perf_counter()
            result = FleetSearch(problem, store, _settings(problem)).run()
            wall = time.perf_counter() - start
        finally:
            store.close()
    return result.X, result.hypervolume, wall


def measured_objectives(problem: FleetCompressionProblem, X: np.ndarray) -> np.ndarray:
    """(N, 3) measured objectives of ``X`` on ``problem``'s cluster representatives."""
    with tempfile.TemporaryDirectory() as folder:
        store = MeasurementStore(Path(folder) / "m.sqlite", fingerprint(problem), "benchmark")
        try:
            search = FleetSearch(problem, store, _settings(problem))
            latency, accuracy = search.measure_rows(X)
        finally:
            store.close()
    return problem.objectives(accuracy, latency)


def sequential_front(problem_class: type, seed: int) -> tuple[np.ndarray, float]:
    """(F, n_var) candidates of prune-then-quantise, in the joint problem's encoding, and
    the wall time in s of the pruning search (measuring the candidates comes on top)."""
    start = time.perf_counter()
    options = {**problem_class.space_options, "bit_widths": (8,)}
    pruning = type("PruneAt8Bits", (problem_class,), {"space_options": options})(seed=seed)
    pruned, _, _ = search_front(pruning)
    joint_bits = problem_class.space_options["bit_widths"]
    n_prune = len(pruning.space.prune_genes)
    candidates = []
    for index in range(len(joint_bits)):
        X = np.full((len(pruned), pruned.shape[1]), index)
        X[:, :n_prune] = pruned[:, :n_prune]
        candidates.append(X)
    return np.unique(np.vstack(candidates), axis=0), time.perf_counter() - start


def hypervolume(F: np.ndarray, scale: np.ndarray) -> float:
    """Hypervolume of the non-dominated rows of (N, 3) ``F`` divided by ``scale`` (3,)."""
    front = F[NonDominatedSorting().do(F, only_non_dominated_front=True)]
    return float(HV(ref_point=np.array([1.0, 1.1, 1.1]))(front / scale))


def joint_vs_sequential(seed: int, console: Console) -> None:
    """Print hypervolume and wall time of the joint and the sequential search."""
    problem_class = load_problem_class(PROBLEMS / FILES[0])
    problem = problem_class(seed=seed)
    reference = measured_objectives(problem, problem.space.unpruned(8)[None])[0]
    scale = np.array([1.0, reference[1], reference[2]])
    start = time.perf_counter()
    joint, _, _ = search_front(problem)
    joint_wall = time.perf_counter() - start
    sequential, sequential_wall = sequential_front(problem_class, seed)
    table = Table(title=f"{problem.name}, seed {seed}: joint vs sequential (measured)")
    for column in ("search", "configs", "HV", "best val acc", "wall s"):
        table.add_column(column, justify="right")
    for name, X, wall in (
        ("joint", joint, joint_wall),
        ("sequential", sequential, sequential_wall),
    ):
        start = time.perf_counter()
        F = measured_objectives(problem, X)
        if name == "sequential":  # measuring its candidates is its second stage
            wall += time.perf_counter() - start
        table.add_row(
            name,
            str(len(X)),
            f"{hypervolume(F, scale):.4f}",
            f"{1 - F[:, 0].min():.4f}",
            f"{wall:.0f}",
        )
    console.print(table)


def smallest_at_iso(sizes: np.ndarray, test: np.ndarray, target: float) -> int | None:
    """Index of the smallest size whose test accuracy is >= ``target - TOLERANCE``."""
    ok = np.flatnonzero(test >= target - TOLERANCE)
    return None if len(ok) == 0 else int(ok[np.argmin(sizes[ok])])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    console = Console(width=150)
    summary = Table(title="size reduction at iso-accuracy (test, <= 0.5 points below)")
    for column in ("seed", "problem", "front", "HV", "search s", "vs all-8-bit", "vs all-4-bit"):
        summary.add_column(column, justify="right")
    for seed in args.seeds:
        for file in FILES:
            problem = load_problem_class(PROBLEMS / file)(seed=seed)
            space, evaluator = problem.space, problem.evaluator
            X, hypervolume, wall = search_front(problem)
            refs = {f"all-{b}-bit": space.unpruned(b) for b in (8, 4)}
            rows = np.vstack([*refs.values(), X])
            sizes = space.costs(rows).size_bits
            val = np.array([evaluator.evaluate(space.decode(x)) for x in rows])
            test = np.array([evaluator.test_accuracy(space.decode(x)) for x in rows])
            table = Table(title=f"{problem.name}, seed {seed}: references and measured front")
            for column in ("row", "val acc", "test acc", "size kbit", "MACs", "bits per layer"):
                table.add_column(column, justify="right")
            names = [*refs, *(f"front {i}" for i in range(len(X)))]
            macs = space.costs(rows).macs
            for i, name in enumerate(names):
                bits = space.bits_matrix(rows[i : i + 1])[0]
                table.add_row(
                    name,
                    f"{val[i]:.4f}",
                    f"{test[i]:.4f}",
                    f"{sizes[i] / 1e3:.1f}",
                    f"{macs[i]:,.0f}",
                    " ".join(map(str, bits)),
                )
            console.print(table)
            reductions = []
            for r in range(len(refs)):
                best = smallest_at_iso(sizes[2:], test[2:], test[r])
                if best is None:
                    reductions.append("none at iso-accuracy")
                    continue
                best += 2
                reductions.append(
                    f"{100 * (1 - sizes[best] / sizes[r]):.1f} % ({names[best]}, "
                    f"test {test[best]:.4f} vs {test[r]:.4f})"
                )
            summary.add_row(
                str(seed),
                problem.name,
                str(len(X)),
                f"{hypervolume:.4f}",
                f"{wall:.0f}",
                *reductions,
            )
    console.print(summary)
    for seed in args.seeds:
        joint_vs_sequential(seed, console)
    console.print("PLiNIO's published figure: 47.5 % smaller than all-8-bit at iso-accuracy.")


if __name__ == "__main__":
    main()
