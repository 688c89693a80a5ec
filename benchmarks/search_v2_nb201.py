r"""FleetSearch on the recorded NB201 fleet under both acquisition rules: a dev check.

Runs ``problems/nb201_fleet.py`` with its own budget, population and generations, once
per seed and ``--acquisition`` rule, and scores the measured front on the recorded values
as ``benchmarks.compare`` does: hypervolume fraction of the exact front (baseline-scaled,
reference ``(loss_0 + 0.1, 1.1, 1.1)``). This is the development check of issue 13; the
reported comparison is protocol v2's ``python -m benchmarks.compare``. Run::

    python -m benchmarks.search_v2_nb201 --seeds 3 --first-seed 100 --acquisition ehvi policy
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from moo_compress.nb201 import codes, nb201_true_front
from moo_compress.problem_file import fingerprint, load_problem_class
from moo_compress.search import FleetSearch, SearchSettings
from moo_compress.search_settings import ACQUISITIONS
from moo_compress.store import MeasurementStore
from surrogates.fleet_ehvi import hypervolume_inside

PROBLEM = Path(__file__).resolve().parents[1] / "problems" / "nb201_fleet.py"


def score(problem, X: np.ndarray) -> float:
    r"""HV fraction of the exact front of the true objectives of the front ``X``."""
    truth = nb201_true_front(problem)
    rows = codes(X)  # truth.X is in code order
    base = truth.F[codes(problem.baseline()[None])[0]]
    scale = np.array([1.0, base[1], base[2]])
    ref = np.array([base[0] + 0.10, 1.1, 1.1])
    F = truth.F[rows]
    return hypervolume_inside(F / scale, ref) / hypervolume_inside(truth.front_F / scale, ref)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--acquisition", nargs="+", choices=ACQUISITIONS, default=["ehvi"])
    args = parser.parse_args()
    cls = load_problem_class(PROBLEM)
    for rule in args.acquisition:
        scores = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            problem = cls(seed)
            settings = SearchSettings(
                budget=problem.budget,
                pop_size=problem.pop_size,
                generations=problem.generations,
                seed=seed,
                acquisition=rule,
            )
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "m.sqlite"
                with MeasurementStore(path, fingerprint(problem), "dev") as store:
                    result = FleetSearch(problem, store, settings).run()
            scores.append(score(problem, np.asarray(result.front.X)))
            print(
                f"{rule} seed {seed}: HV fraction {scores[-1]:.4f}, front {len(result.front.X)}"
                f", measurements {sum(result.measurements)}/{settings.budget}, "
                f"{time.perf_counter() - t0:.0f} s, acquisition {result.acquisition}",
                flush=True,
            )
        print(f"{rule}: mean HV fraction {np.mean(scores):.4f} over {len(scores)} seeds")


if __name__ == "__main__":
    main()
