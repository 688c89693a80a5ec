"""Model evaluations one at a time or several at once, and what torch's thread count does
to their values.

A search evaluates the accuracy (or fidelity) of a batch of configurations through
:meth:`MeasurementSession.evaluate_accuracies
<moo_compress.session.MeasurementSession.evaluate_accuracies>`: each evaluation on one
torch thread, :func:`~moo_compress.threads.evaluation_workers` of them at once. This
script times a batch of a problem's random configurations three ways and prints their
values:

* ``unpinned``: one at a time, compressed, recovered and scored on torch's default
  thread count (how evaluations ran before the pin: a value that depends on the machine);
* ``pinned``: one at a time on one thread (:meth:`ModelEvaluator.evaluate
  <moo_compress.accuracy.ModelEvaluator.evaluate>`);
* ``concurrent``: the session's batch, each on one thread.

``pinned`` and ``concurrent`` must give the same values (the script says whether they
do); ``unpinned`` shows how far thread counts move them.

    python -m benchmarks.accuracy_workers [--problem problems/resnet50_hdap.py] [--n 6]
        [--seed 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from moo_compress.accuracy import ModelEvaluator
from moo_compress.problem_file import load_problem_class
from moo_compress.session import MeasurementSession
from moo_compress.store import MeasurementStore
from moo_compress.threads import evaluation_workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="problems/resnet50_hdap.py")
    parser.add_argument("--n", type=int, default=6, help="configurations (default 6)")
    parser.add_argument("--seed", type=int, default=1, help="of the configurations")
    args = parser.parse_args()
    problem = load_problem_class(Path(args.problem))(seed=0)
    evaluator = problem.evaluator
    if not isinstance(evaluator, ModelEvaluator):
        raise SystemExit(f"{args.problem}: its evaluator scores no model; nothing to time")
    space = problem.space
    rng = np.random.default_rng(args.seed)
    X = rng.integers(space.xl, space.xu + 1, size=(args.n, space.n_var))
    configs = [space.decode(x) for x in X]
    evaluator.evaluate(configs[0])  # warm-up: the pruner's graph, allocations

    def unpinned() -> list[float]:
        scores = []
        for config in configs:
            model = evaluator.compressed(config)
            with torch.no_grad():
                scores.append(float(evaluator.score(model)))
        return scores

    def concurrent() -> list[float]:
        with (
            tempfile.TemporaryDirectory() as folder,
            MeasurementStore(Path(folder) / "m.sqlite", problem.name, "bench") as store,
        ):
            session = MeasurementSession(space, problem.clusters, evaluator, store)
            return session.evaluate_accuracies(X)[0].tolist()

    print(
        f"{problem.name}: {args.n} configurations; torch default {torch.get_num_threads()} "
        f"thread(s); {evaluation_workers()} evaluation workers"
    )
    values = {}
    for name, run in [
        ("unpinned", unpinned),
        ("pinned", lambda: [evaluator.evaluate(c) for c in configs]),
        ("concurrent", concurrent),
    ]:
        start = time.perf_counter()
        values[name] = np.array(run())
        seconds = time.perf_counter() - start
        print(f"{name:>10}: {seconds:6.2f} s  " + " ".join(f"{v:.7f}" for v in values[name]))
    same = np.array_equal(values["pinned"], values["concurrent"])
    moved = np.abs(values["unpinned"] - values["pinned"]).max()
    print(f"concurrent == pinned: {same}; largest |unpinned - pinned|: {moved:.2e}")


if __name__ == "__main__":
    main()
