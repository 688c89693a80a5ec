"""Pinned threads: model evaluations give the same numbers whatever the machine's thread
setting, one at a time or several at once."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from moo_compress import export
from moo_compress import session as session_module
from moo_compress.accuracy import FidelityEvaluator
from moo_compress.compress import compress
from moo_compress.session import MeasurementSession
from moo_compress.store import MeasurementStore
from moo_compress.threads import pinned_threads

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"


def _tiny():
    spec = importlib.util.spec_from_file_location("tiny_for_threads", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyFleet(seed=3)


@pytest.fixture(autouse=True)
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_pinned_threads_restores_the_setting():
    with pinned_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def _in_new_thread() -> int:
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    return seen[0]


def test_blocks_pinned_in_several_threads_restore_the_setting_when_the_last_leaves():
    inside, first_left, second_left = threading.Barrier(3), threading.Event(), threading.Event()
    seen = []

    def block(wait_for: threading.Event, done: threading.Event) -> None:
        with pinned_threads():
            inside.wait()
            wait_for.wait()
            seen.append(torch.get_num_threads())
        done.set()

    checked = threading.Event()
    first = threading.Thread(target=block, args=(checked, first_left))
    second = threading.Thread(target=block, args=(first_left, second_left))
    for t in (first, second):
        t.start()
    inside.wait()
    assert _in_new_thread() == 1  # a thread started meanwhile runs pinned too
    checked.set()
    second_left.wait()
    assert seen == [1, 1]  # the second still pinned after the first left
    for t in (first, second):
        t.join()
    assert _in_new_thread() == 2 and torch.get_num_threads() == 2


def test_pinning_another_count_inside_a_pin_is_refused():
    refused = pytest.raises(ValueError, match="pinned to 1 already; asked for 2")
    with pinned_threads(), refused, pinned_threads(2):
        pass
    assert torch.get_num_threads() == 2


class _Spy(FidelityEvaluator):
    """Records the torch thread setting and the thread of every scoring; fails on ``bad``."""

    def __init__(self, *args, bad: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bad = bad
        self.calls: list[tuple[int, int]] = []

    def evaluate(self, config) -> float:
        if config.to_json() == self.bad:
            raise RuntimeError("evaluation failed")
        return super().evaluate(config)

    def score(self, model) -> float:
        self.calls.append((torch.get_num_threads(), threading.get_ident()))
        return super().score(model)


def _session(tmp_path, monkeypatch, workers: int, bad_row: int | None = None):
    problem = _tiny()
    X = np.random.default_rng(0).integers(
        problem.space.xl, problem.space.xu + 1, size=(5, problem.space.n_var)
    )
    bad = None if bad_row is None else problem.space.decode(X[bad_row]).to_json()
    evaluator = _Spy(problem.reference, (1, 3, 32, 32), bad=bad)
    store = MeasurementStore(tmp_path / f"w{workers}.sqlite", "tiny", f"w{workers}")
    monkeypatch.setattr(session_module, "evaluation_workers", lambda: workers)
    return MeasurementSession(problem.space, problem.clusters, evaluator, store), X


def test_a_batch_runs_concurrently_on_one_thread_each_with_the_values_of_one_at_a_time(
    tmp_path, monkeypatch
):
    alone, X = _session(tmp_path, monkeypatch, workers=1)
    one_at_a_time, fresh = alone.evaluate_accuracies(X)
    assert {threads for threads, _ in alone.evaluator.calls} == {1}
    assert fresh == [0, 1, 2, 3, 4]

    together, _ = _session(tmp_path, monkeypatch, workers=3)
    batch = np.vstack([X, X[1:2]])  # a repeated row is evaluated once and new once
    values, fresh = together.evaluate_accuracies(batch)
    calls = together.evaluator.calls
    assert len(calls) == 5 and {threads for threads, _ in calls} == {1}
    assert len({ident for _, ident in calls}) > 1  # several evaluations at once
    assert fresh == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(values, np.append(one_at_a_time, one_at_a_time[1]))
    assert together.store.count("accuracy") == 5
    assert torch.get_num_threads() == 2

    again, fresh = together.evaluate_accuracies(X[::-1])
    assert fresh == [] and len(together.evaluator.calls) == 5  # known: nothing evaluated
    np.testing.assert_array_equal(again, one_at_a_time[::-1])


def test_a_failed_evaluation_is_raised_after_the_others_are_stored(tmp_path, monkeypatch):
    session, X = _session(tmp_path, monkeypatch, workers=2, bad_row=2)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        session.evaluate_accuracies(X)
    assert session.store.count("accuracy") == 4
    assert torch.get_num_threads() == 2


def test_exports_are_written_and_checked_on_one_thread(tmp_path, monkeypatch):
    problem = _tiny()
    config = problem.space.decode(problem.space.unpruned(bits=8))
    seen = []
    write = export._write_state_dict

    def spy(*args):
        seen.append(torch.get_num_threads())
        return write(*args)

    monkeypatch.setattr(export, "_write_state_dict", spy)
    export.export_model(
        compress(problem.reference, config), config, tmp_path, formats=("state_dict",)
    )
    assert seen == [1] and torch.get_num_threads() == 2
