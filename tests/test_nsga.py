"""NSGA-II as every search here runs it (:func:`moo_compress.nsga.optimise`)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from moo_compress.nsga import optimise

SPACE = SimpleNamespace(space=SimpleNamespace(xl=np.zeros(6, dtype=int), xu=np.full(6, 9)))
START = np.random.default_rng(0).integers(0, 10, size=(8, 6))


def run(stop_after: int | None = None) -> tuple[list[int], list[int]]:
    """Seven generations from START; ``stop`` true at its ``stop_after``-th question.
    Returns the objective's batch sizes (one per generation) and, for each question
    ``stop`` was asked, how many generations had been evaluated by then."""
    calls: list[int] = []
    asked: list[int] = []

    def objectives(X: np.ndarray) -> np.ndarray:
        calls.append(len(X))
        return np.stack([X.sum(1), -X[:, 0]], axis=1)

    def stop() -> bool:
        asked.append(len(calls))
        return len(asked) == stop_after

    options = {} if stop_after is None else {"stop": stop}
    optimise(SPACE, objectives, 2, seed=1, generations=7, start=START, **options)
    return calls, asked


def test_runs_the_generations_asked_for():
    calls, _ = run()
    assert len(calls) == 7
    assert calls[0] == len(START)  # the first generation evaluates the start population


def test_stop_is_asked_after_every_generation_and_ends_the_run():
    calls, asked = run(stop_after=3)
    assert asked == [1, 2, 3]
    assert len(calls) == 3
    calls, asked = run(stop_after=99)  # never true: the generation count ends it
    assert len(calls) == 7 and asked == list(range(1, 8))
