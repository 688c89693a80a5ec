"""FleetSearch: expensive accuracy goes through the surrogate and the active-learning policy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from moo_compress.accuracy import FidelityEvaluator
from moo_compress.search import FleetSearch, SearchSettings
from moo_compress.store import MeasurementStore

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"


class _Counting(FidelityEvaluator):
    """A fidelity evaluator that counts its real evaluations."""

    calls = 0

    def evaluate(self, config):
        type(self).calls += 1
        return super().evaluate(config)


def test_expensive_accuracy_is_evaluated_only_where_the_policy_asks(tmp_path):
    spec = importlib.util.spec_from_file_location("tiny_for_search", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Counted(module.TinyFleet):
        def build_accuracy(self, model, example_input):
            return _Counting(model, tuple(example_input.shape), seed=self.seed)

    problem = Counted(seed=3)
    seen: set[bytes] = set()
    evaluate = problem._evaluate

    def spy(X, out, *args, **kwargs):
        seen.update(np.asarray(x, dtype=np.int64).tobytes() for x in X)
        evaluate(X, out, *args, **kwargs)

    problem._evaluate = spy
    settings = SearchSettings(budget=80, accuracy_budget=26, pop_size=8, generations=4, seed=3)
    with MeasurementStore(tmp_path / "m.sqlite", "tiny", "run") as store:
        search = FleetSearch(problem, store, settings)
        result = search.run()
        stored = store.count(kind="accuracy")
    assert _Counting.calls == search.session.n_accuracy == stored <= settings.accuracy_budget
    assert _Counting.calls < len(seen)  # most candidates were scored by the GP only
    assert search.accuracy_model.n_points > 0
    assert len(result.X) >= 1
