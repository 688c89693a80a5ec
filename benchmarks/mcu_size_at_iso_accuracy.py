"""Model size at iso-accuracy: joint pruning + mixed precision vs uniform quantisation.

Run: ``python -m benchmarks.mcu_size_at_iso_accuracy [--seeds 0 1 2] [--finetune-steps 30]``

For each seed, the digits ResNet-8 of that seed (``problems/resnet8_digits_mcu.py``, a
fleet of 200 MPIC RISC-V MCUs, bits 2 / 4 / 8) is searched jointly with
:class:`~moo_compress.search.FleetSearch` and the problem's default settings, once
without and once with the 256 kbit size limit (``problems/resnet8_digits_mcu_size.py``).
Every measured front configuration gets its TEST accuracy (the search only saw the
validation split), before and after a short fine-tune on the train split. Against each
uniform reference (unpruned, every layer at 8 or at 4 bits), the smallest front
configuration whose test accuracy (before fine-tuning, as the search saw it) is at most
0.5 points below the reference's is picked, and its model size
(``space.costs(X).size_bits``) is compared. The first conv and the last linear layer
stay at 8 bits in every configuration.

Then joint vs sequential on the problem without size limit, budget-matched: the
*sequential* method first searches pruning alone with every layer at 8 bits, then
measures each configuration of that front at the other bit-widths (2 and 4); both
stages measure on the joint problem's cluster representatives. The pruning stage gets
the latency measurements the joint search really spent minus what the quantisation
stage may spend (2 x its front cap x clusters; the cap is ``max_front``, lowered where
the pruning stage's initial design, front and reference rows would not fit otherwise),
and as many fewer generations as the quantisation stage's accuracy evaluations fill in
units of ``pop_size``; both methods' spent counts are read from their stores. Both
candidate sets are then re-measured in one store (evaluation only, not counted) and
scored by the hypervolume of their non-dominated rows, with the search's normalisation
(objectives divided by 1 and the measured all-8-bit unpruned average and worst-cluster
latency, reference point (1, 1.1, 1.1)).

Motetti et al. (IEEE TC 2024, the PLiNIO library) report 47.5 % smaller models than
all-8-bit at iso-accuracy for their joint pruning + channel-wise mixed-precision search;
this benchmark reports what ours reaches.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from rich.console import Console
from rich.table import Table

from moo_compress.problem import FleetCompressionProblem
from moo_compress.problem_file import fingerprint, load_problem_class
from moo_compress.search import FleetSearch, SearchSettings
from moo_compress.store import MeasurementStore

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"
FILES = ("resnet8_digits_mcu.py", "resnet8_digits_mcu_size.py")
TOLERANCE = 0.005
"""Iso-accuracy: test accuracy at most this far (absolute, 0.5 points) below the reference."""


@dataclass
class Spent:
    """What a method really spent: latency measurements and accuracy evaluations (rows
    of its stores) and wall time in s."""

    latency: int
    accuracy: int
    wall_s: float

    def __add__(self, other: Spent) -> Spent:
        return Spent(
            self.latency + other.latency, self.accuracy + other.accuracy, self.wall_s + other.wall_s
        )


def _settings(problem: FleetCompressionProblem) -> SearchSettings:
    return SearchSettings(
        budget=problem.budget,
        accuracy_budget=problem.accuracy_budget,
        pop_size=problem.pop_size,
        generations=problem.generations,
        seed=problem.seed,
    )


def with_store(
    problem: FleetCompressionProblem,
    settings: SearchSettings,
    work: Callable[[FleetSearch], np.ndarray],
) -> tuple[np.ndarray, Spent]:
    """Run ``work`` on a :class:`FleetSearch` of ``problem`` over a fresh temporary
    store; return its result and what it spent."""
    with tempfile.TemporaryDirectory() as folder:
        store = MeasurementStore(Path(folder) / "m.sqlite", fingerprint(problem), "benchmark")
        try:
            start = time.perf_counter()
            result = work(FleetSearch(problem, store, settings))
            wall = time.perf_counter() - start
            spent = Spent(store.count("latency"), store.count("accuracy"), wall)
        finally:
            store.close()
    return result, spent


def search_front(
    problem: FleetCompressionProblem, settings: SearchSettings | None = None
) -> tuple[np.ndarray, float, Spent]:
    """(F, n_var) measured front of a search, its hypervolume and what it spent."""
    hypervolume = []

    def run(search: FleetSearch) -> np.ndarray:
        result = search.run()
        hypervolume.append(result.hypervolume)
        return result.X

    X, spent = with_store(problem, settings or _settings(problem), run)
    return X, hypervolume[0], spent


def measure(search: FleetSearch, X: np.ndarray) -> np.ndarray:
    """(N, 3) measured objectives of ``X`` on the search problem's cluster representatives."""
    latency, accuracy = search.objectives.measure_rows(X)
    return search.problem.objectives(accuracy, latency, search.clusters)


def sequential_front(problem: FleetCompressionProblem, joint: Spent) -> tuple[np.ndarray, Spent]:
    """Prune-then-quantise within what the joint search spent (see the module docstring).

    Returns the (F, n_var) candidates in the joint problem's encoding and what both
    stages spent.
    """
    problem_class = type(problem)
    settings = _settings(problem)
    bit_widths = problem.space.bit_widths
    options = {**problem_class.space_options, "bit_widths": (8,)}
    pruning = type("PruneAt8Bits", (problem_class,), {"space_options": options})(seed=problem.seed)
    # Its own clustering of the fleet (probed with 8-bit configurations only) differs;
    # both methods measure on the same cluster representatives instead.
    pruning.clusters = problem.clusters
    k, n_other = problem.clusters.k, len(bit_widths) - 1
    n_initial = settings.n_init + 1  # the Sobol design and the unpruned 8-bit anchor
    # Its front, at most ``cap`` configurations, is measured at 1 + n_other bit-widths.
    cap = min(
        settings.pop_size,
        settings.max_front,
        (joint.latency // k - n_initial - 2) // (n_other + 1),
    )
    stage1 = replace(
        settings,
        max_front=cap,
        budget=joint.latency - n_other * cap * k,
        generations=settings.generations - math.ceil(n_other * cap / settings.pop_size),
    )
    pruned, _, spent = search_front(pruning, stage1)
    n_prune = len(pruning.space.prune_genes)
    candidates = np.repeat(pruned, len(bit_widths), axis=0)
    candidates[:, n_prune:] = np.tile(np.arange(len(bit_widths)), len(pruned))[:, None]
    quantised = candidates[np.array(bit_widths)[candidates[:, n_prune]] != 8]
    _, quantising = with_store(problem, settings, lambda search: measure(search, quantised))
    return candidates, spent + quantising


def hypervolume(F: np.ndarray, scale: np.ndarray) -> float:
    """Hypervolume of the non-dominated rows of (N, 3) ``F`` divided by ``scale`` (3,)."""
    front = F[NonDominatedSorting().do(F, only_non_dominated_front=True)]
    return float(HV(ref_point=np.array([1.0, 1.1, 1.1]))(front / scale))


def joint_vs_sequential(
    problem: FleetCompressionProblem, joint: np.ndarray, joint_spent: Spent
) -> list[str]:
    """One table row per method: hypervolume, measurements and wall time (joint first)."""
    sequential, sequential_spent = sequential_front(problem, joint_spent)
    unpruned = problem.space.unpruned(8)[None]
    everything = np.vstack([unpruned, joint, sequential])
    F, _ = with_store(problem, _settings(problem), lambda search: measure(search, everything))
    scale = np.array([1.0, F[0, 1], F[0, 2]])
    rows = []
    for name, F_method, spent in (
        ("joint", F[1 : 1 + len(joint)], joint_spent),
        ("sequential", F[1 + len(joint) :], sequential_spent),
    ):
        rows.append(
            [
                str(problem.seed),
                name,
                str(len(F_method)),
                f"{hypervolume(F_method, scale):.4f}",
                f"{1 - F_method[:, 0].min():.4f}",
                str(spent.latency),
                str(spent.accuracy),
                f"{spent.wall_s:.0f}",
            ]
        )
    return rows


def smallest_at_iso(sizes: np.ndarray, test: np.ndarray, target: float) -> int | None:
    """Index of the smallest size whose test accuracy is >= ``target - TOLERANCE``."""
    ok = np.flatnonzero(test >= target - TOLERANCE)
    return None if len(ok) == 0 else int(ok[np.argmin(sizes[ok])])


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--finetune-steps", type=int, default=30)
    args = parser.parse_args(argv)
    steps = args.finetune_steps
    console = Console(width=160)
    summary = _table(
        "size reduction at iso-accuracy (test, <= 0.5 points below)",
        (
            "seed",
            "problem",
            "front",
            "HV",
            "search s",
            "vs all-8-bit",
            "vs all-4-bit",
            f"front test gain, {steps}-step fine-tune",
        ),
    )
    versus_columns = (
        "seed",
        "search",
        "configs",
        "HV",
        "best val acc",
        "latency meas.",
        "accuracy evals",
        "wall s",
    )
    versus = _table(
        "joint vs sequential, budget-matched (resnet8_digits_mcu, measured)", versus_columns
    )
    for seed in args.seeds:
        for file in FILES:
            problem = load_problem_class(PROBLEMS / file)(seed=seed)
            space, evaluator = problem.space, problem.evaluator
            X, hv, spent = search_front(problem)
            refs = {f"all-{b}-bit": space.unpruned(b) for b in (8, 4)}
            rows = np.vstack([*refs.values(), X])
            configs = [space.decode(x) for x in rows]
            sizes = space.costs(rows).size_bits
            val = np.array([evaluator.evaluate(c) for c in configs])
            test = np.array([evaluator.test_accuracy(c) for c in configs])
            tuned = np.array([evaluator.test_accuracy(c, steps) for c in configs])
            table = _table(
                f"{problem.name}, seed {seed}: references and measured front",
                (
                    "row",
                    "val acc",
                    "test acc",
                    f"test after {steps} steps",
                    "size kbit",
                    "MACs",
                    "bits per layer",
                ),
            )
            names = [*refs, *(f"front {i}" for i in range(len(X)))]
            macs = space.costs(rows).macs
            for i, name in enumerate(names):
                bits = space.bits_matrix(rows[i : i + 1])[0]
                table.add_row(
                    name,
                    f"{val[i]:.4f}",
                    f"{test[i]:.4f}",
                    f"{tuned[i]:.4f}",
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
            gain = 100 * (tuned[2:] - test[2:])
            summary.add_row(
                str(seed),
                problem.name,
                str(len(X)),
                f"{hv:.4f}",
                f"{spent.wall_s:.0f}",
                *reductions,
                f"{gain.mean():+.2f} points (min {gain.min():+.2f}, max {gain.max():+.2f})",
            )
            if file == FILES[0]:
                rows = joint_vs_sequential(problem, X, spent)
                seed_table = _table(f"seed {seed}: joint vs sequential", versus_columns)
                for row in rows:
                    versus.add_row(*row)
                    seed_table.add_row(*row)
                console.print(seed_table)
    console.print(summary)
    console.print(versus)
    console.print("PLiNIO's published figure: 47.5 % smaller than all-8-bit at iso-accuracy.")


if __name__ == "__main__":
    main()
