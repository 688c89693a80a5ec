"""Tests of moo_compress.recorded_fleet: drifted units of recorded devices."""

from __future__ import annotations

import numpy as np
import pytest

from moo_compress.clustering import cluster_fleet
from moo_compress.nb201 import NB201Space, all_cells, codes
from moo_compress.nb201_problem import PROBES
from moo_compress.recorded_fleet import RecordedFleet

N_CONV = 3  # op index of nor_conv_3x3


def table(X: np.ndarray) -> np.ndarray:
    """(N, 2) hand-made recordings: device "a" pays for 3x3 convolutions, device "b" for
    every non-trivial op alike, both on top of a fixed 1 ms."""
    X = np.atleast_2d(X)
    conv = (X == N_CONV).sum(axis=1)
    busy = (X >= 2).sum(axis=1)
    return np.column_stack([1.0 + 2.0 * conv, 1.0 + 0.5 * busy])


def fleet(units: int = 50, seed: int = 0) -> RecordedFleet:
    recorded = table(all_cells())
    probes = (np.array(list(PROBES.values())), tuple(PROBES))
    fleet = RecordedFleet(
        table, ("a", "b"), recorded.min(0), probes, frozenset({32}), units, seed=seed
    )
    fleet.bind(NB201Space())
    return fleet


def test_units_follow_the_drift_formula_of_their_recorded_device() -> None:
    f = fleet()
    X = all_cells()[::97]
    true = f.true_latency_ms(X)
    assert true.shape == (len(X), 100)
    for i in (0, 49, 50, 99):
        r = f.recorded_index[i]
        expected = f.overhead[i] * 1.0 + (table(X)[:, r] - 1.0) / f.compute[i]
        np.testing.assert_allclose(true[:, i], expected)
        np.testing.assert_allclose(f.device(i).true_latency_ms(X), expected)
    assert set(f.profiles) == {
        f"{n}/{p}" for n in "ab" for p in ("cool-idle", "throttled", "busy-host")
    }


def test_recordings_below_the_fixed_part_stay_positive() -> None:
    probes = (np.array(list(PROBES.values())), tuple(PROBES))
    f = RecordedFleet(table, ("a", "b"), np.array([2.0, 2.0]), probes, frozenset({32}), 40)
    f.bind(NB201Space())
    X = all_cells()[:50]  # recorded at 1 ms on "a" for cells without a 3x3 convolution
    true = f.true_latency_ms(X)
    assert np.all(true > 0)
    low = table(X)[:, 0] < 2.0
    np.testing.assert_allclose(true[low, 0], f.overhead[0] * table(X)[low, 0])


def test_a_unit_measures_reproducibly_with_its_noise() -> None:
    f = fleet()
    space = NB201Space()
    cell = space.decode(all_cells()[1234])
    first = f.device(7).measure(cell).samples_ms
    again = fleet().device(7).measure(cell).samples_ms
    assert first == again and len(set(first)) == len(first)
    true = f.device(7).true_latency_ms(all_cells()[1234][None])[0]
    assert np.median(first) == pytest.approx(true, rel=5 * f.noise[7] + 1e-9)
    assert f.device(7).device_id == "a-00007"


def test_clustering_separates_the_recorded_devices() -> None:
    f = fleet(units=60)
    clustering = cluster_fleet(f, seed=0)
    assert clustering.k >= 2
    for k in range(clustering.k):  # no cluster mixes units of "a" and "b"
        assert len(set(f.recorded_index[clustering.labels == k])) == 1


def test_bad_arguments_are_rejected() -> None:
    probes = (np.zeros((1, 6), dtype=int), ("none",))
    with pytest.raises(ValueError, match="units >= 1"):
        RecordedFleet(table, ("a", "b"), np.ones(2), probes, frozenset({32}), 0)
    with pytest.raises(ValueError, match="one fixed_ms per recorded device"):
        RecordedFleet(table, ("a", "b"), np.ones(3), probes, frozenset({32}), 5)
    f = RecordedFleet(table, ("a",), np.ones(1), probes, frozenset({8}), 5)
    with pytest.raises(ValueError, match="do not support bit-width"):
        f.bind(NB201Space())
    assert codes(all_cells()[:3]).tolist() == [0, 1, 2]
