"""NAS-Bench-201 on recorded data: replay device, space, true front and a short search.

Needs the data folder (``$MOO_COMPRESS_NB201`` or ``../shared/data/nb201``); skipped
without it. Expected values are read straight from the CSV files.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moo_compress.devices.replay import ReplayDevice
from moo_compress.nb201 import (
    EDGES,
    FILES,
    N_ARCHS,
    OPS,
    NB201Cell,
    NB201Space,
    all_cells,
    codes,
    data_dir,
    encode_ops,
    live_edges,
    live_macs,
    macs,
    nb201_true_front,
    require_data_dir,
)
from moo_compress.search import FleetSearch, SearchSettings
from moo_compress.store import MeasurementStore

DATA = data_dir()
PROBLEM = Path(__file__).parents[1] / "problems" / "nb201_fleet.py"
needs_data = pytest.mark.skipif(
    not all((DATA / f).is_file() for f in FILES),
    reason=f"NB201 data not found in {DATA} (set MOO_COMPRESS_NB201)",
)


@pytest.fixture(scope="module")
def problem():
    spec = importlib.util.spec_from_file_location("nb201_fleet_for_tests", PROBLEM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.NB201Fleet(seed=0)


@pytest.fixture(scope="module")
def help_csv() -> pd.DataFrame:
    return pd.read_csv(DATA / "latency_help_ms.csv")


def test_space_round_trip_over_every_cell():
    space = NB201Space()
    X = all_cells()
    assert X.shape == (N_ARCHS, 6) and np.array_equal(codes(X), np.arange(N_ARCHS))
    for x in X:
        cell = space.decode(x)
        assert np.array_equal(space.encode(cell), x)
        assert NB201Cell.from_json(cell.to_json()) == cell
    assert space.var_names[0] == "edge_1<-0" and space.var_names[-1] == "edge_3<-2"


def test_space_rejects_bad_vectors():
    space = NB201Space()
    with pytest.raises(ValueError, match=r"gene 'edge_2<-1' = 5 is not allowed; allowed: 0..4"):
        space.check([[0, 0, 5, 0, 0, 0]])
    with pytest.raises(ValueError, match="expected an"):
        space.check(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="must be integers"):
        space.check([[0.5, 0, 0, 0, 0, 0]])


def test_macs_formula():
    all_3x3, no_conv = np.full((1, 6), 3), np.zeros((1, 6), dtype=int)
    assert macs(no_conv)[0] == 7_783_040
    assert macs(all_3x3)[0] == 7_783_040 + 15 * 9 * 6 * 16**2 * 32**2


def test_live_edges_are_the_edges_of_input_to_output_paths_without_none():
    """Against an independent rule over every cell: an edge is live if and only if it
    lies on one of the four node paths 0-3, 0-1-3, 0-2-3, 0-1-2-3 whose edges all carry
    an op other than ``none``."""
    X = all_cells()
    edge = {(s, t): i for i, (t, s) in enumerate(EDGES)}
    paths = [(0, 3), (0, 1, 3), (0, 2, 3), (0, 1, 2, 3)]
    expected = np.zeros(X.shape, dtype=bool)
    for path in paths:
        on = [edge[pair] for pair in zip(path, path[1:], strict=False)]
        open_path = np.all(X[:, on] != OPS.index("none"), axis=1)
        expected[np.ix_(open_path, on)] = True
    assert np.array_equal(live_edges(X), expected)
    # 3x3 convolutions on 1<-0 and 2<-1 feed node 2, which feeds nothing: both dead
    dead_end = np.array([[3, 0, 3, 1, 0, 0]])
    assert live_edges(dead_end).tolist() == [[False, False, False, True, False, False]]
    assert live_macs(dead_end)[0] == 7_783_040 < macs(dead_end)[0]
    assert np.array_equal(live_macs(np.full((1, 6), 3)), macs(np.full((1, 6), 3)))


@needs_data
def test_features_tell_apart_cells_of_equal_op_counts_but_different_live_edges(problem):
    """One 3x3 convolution and one skip each: on 3<-0 the convolution is live; on 2<-1,
    after a skip on 1<-0, it is dead (node 2 feeds nothing)."""
    live, dead = np.array([[0, 0, 0, 3, 0, 1]]), np.array([[1, 0, 3, 0, 0, 0]])
    a, b = problem.features(live), problem.features(dead)
    assert a.shape == (1, 8)
    assert np.array_equal(a[0, :6], b[0, :6])  # the op counts and MACs agree
    assert a[0, 6] > b[0, 6]  # log live MACs
    assert (a[0, 7], b[0, 7]) == (1, 0)  # live edges


def test_missing_data_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MOO_COMPRESS_NB201", str(tmp_path))
    with pytest.raises(ValueError, match="MOO_COMPRESS_NB201") as info:
        require_data_dir()
    message = str(info.value)
    assert str(tmp_path) in message and "HayeonLee/HELP" in message and "\n" not in message


def test_missing_value_raises_naming_device_and_config():
    cell = NB201Space().decode(np.zeros(6, dtype=int))
    device = ReplayDevice("rice_edgetpu", {cell.to_json(): -1.0})
    with pytest.raises(ValueError, match=r"'rice_edgetpu' has no recorded latency for .*none~0"):
        device.measure(cell)
    with pytest.raises(ValueError, match="recorded: nan"):
        ReplayDevice("d", {cell.to_json(): math.nan}).measure(cell)
    with pytest.raises(ValueError, match="recorded: no value"):
        ReplayDevice("d", {}).measure(cell)


@needs_data
def test_recorded_missing_value_raises(problem):
    oneproxy = pd.read_csv(DATA / "latency_oneproxy_ms.csv")
    row = oneproxy[oneproxy["rice_edgetpu"] == -1].iloc[0]
    space = problem.space
    cell = space.decode(encode_ops([row["arch_str"]])[0])
    x = space.encode(cell)[None]
    assert problem.recorded.latency_ms("rice_edgetpu", x)[0] == -1
    device = ReplayDevice("rice_edgetpu", {cell.to_json(): -1.0})
    device.bind(space)
    with pytest.raises(ValueError, match="rice_edgetpu"):
        device.true_latency_ms(x)


@needs_data
def test_replay_returns_the_recorded_value(problem, help_csv):
    devices = {d.device_id: d for d in problem.clusters.representatives}
    assert help_csv.loc[help_csv.nb201_index == 0, "raspi4"].item() == 10.482
    for index in (0, 1, 7_777, 15_624):
        row = help_csv[help_csv.nb201_index == index].iloc[0]
        x = encode_ops([row["arch_str"]])
        cell = problem.space.decode(x[0])
        for name, device in devices.items():
            measurement = device.measure(cell)
            assert measurement.samples_ms == (row[name],)
            assert device.true_latency_ms(x)[0] == row[name]
    accuracy = pd.read_csv(DATA / "accuracy_cifar10.csv").set_index("nb201_index")
    assert problem.evaluator.evaluate(cell) == pytest.approx(
        accuracy.loc[15_624, "cifar10_valid_acc"] / 100
    )
    assert problem.evaluator.test_accuracy(cell) == pytest.approx(
        accuracy.loc[15_624, "cifar10_test_acc"] / 100
    )


def _dominated(points: np.ndarray, f: np.ndarray) -> bool:
    """Whether some row of ``points`` (minimised) dominates ``f``."""
    weakly, strictly = points - f <= 0, points - f < 0
    return bool((weakly.all(axis=1) & strictly.any(axis=1)).any())


@needs_data
def test_true_front_is_non_empty_and_non_dominated(problem):
    oracle = nb201_true_front(problem)
    front = oracle.front_F
    assert oracle.F.shape == (N_ARCHS, 3) and len(front) > 0
    assert not any(_dominated(front, f) for f in front)
    # No architecture at all dominates a front point.
    assert not any(_dominated(oracle.F, f) for f in front[:: max(1, len(front) // 10)])
    assert oracle.F[:, 0].min() == front[:, 0].min()


@needs_data
def test_short_search_respects_its_budget(problem, tmp_path):
    settings = SearchSettings(budget=130, pop_size=8, generations=2, max_front=8, seed=0)
    store = MeasurementStore(tmp_path / "m.sqlite", "nb201", "test")
    try:
        result = FleetSearch(problem, store, settings).run()
    finally:
        store.close()
    assert 0 < sum(result.measurements) <= settings.budget
    assert len(result.X) > 0 and np.all(result.latency > 0)
    np.testing.assert_allclose(result.accuracy, problem.recorded.valid_accuracy(result.X))


@needs_data
def test_replayed_device_raises_for_a_missing_value_and_looks_up_fast(problem):
    from moo_compress.nb201_problem import CellReplayDevice

    X = all_cells()
    column = problem.recorded.latency_ms("raspi4", X).copy()
    device = CellReplayDevice("raspi4", column)
    device.bind(problem.space)
    np.testing.assert_array_equal(device.true_latency_ms(X[:100]), column[:100])
    assert device.measure(problem.space.decode(X[7])).samples_ms == (column[7],)
    column[7] = -1.0  # "not measured"
    with pytest.raises(ValueError, match="no recorded latency"):
        device.true_latency_ms(X[:10])
    with pytest.raises(ValueError, match="no recorded latency"):
        device.measure(problem.space.decode(X[7]))
