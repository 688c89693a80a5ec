"""Tests of moo_compress.fleet.Fleet and moo_compress.devices.SimulatedDevice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision

from moo_compress.devices import CORTEX_A72, JETSON_XAVIER_NX, MPIC_RISCV, SimulatedDevice
from moo_compress.fleet import FIELD_AGED, Fleet
from moo_compress.measurement import Measurement
from moo_compress.search_space import SearchSpace


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    torch.manual_seed(0)
    return SearchSpace.from_model(
        torchvision.models.resnet18(), torch.randn(1, 3, 64, 64), granularity="block"
    )


@pytest.fixture(scope="module")
def X(space: SearchSpace) -> np.ndarray:
    return np.random.default_rng(0).integers(space.xl, space.xu + 1, size=(200, space.n_var))


def test_fleets_are_reproducible_by_seed(space: SearchSpace, X: np.ndarray) -> None:
    a, b, c = (Fleet.field_aged(JETSON_XAVIER_NX, 50, seed=s) for s in (3, 3, 4))
    for fleet in (a, b, c):
        fleet.bind(space)
    for attr in ("compute", "bandwidth", "overhead", "noise", "profiles"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    np.testing.assert_array_equal(
        a.measure_matrix(X[:5], repeats=3), b.measure_matrix(X[:5], repeats=3)
    )
    assert not np.array_equal(a.compute, c.compute)
    m1, m2 = a.device(7).measure(space.decode(X[0])), b.device(7).measure(space.decode(X[0]))
    assert m1.samples_ms == m2.samples_ms


def test_profiles_are_kept_and_drawn_from_the_mixture() -> None:
    fleet = Fleet.field_aged(JETSON_XAVIER_NX, 2000, seed=0)
    names = [p.name for p in FIELD_AGED]
    assert set(fleet.profiles) == set(names)
    shares = np.array([np.mean(fleet.profiles == n) for n in names])
    np.testing.assert_allclose(shares, [p.weight for p in FIELD_AGED], atol=0.04)
    throttled = fleet.profiles == "thermally-throttled"
    assert np.median(fleet.compute[throttled]) < 0.7 < np.median(fleet.compute[~throttled])


def test_spread_factory_fresh_vs_field_aged(space: SearchSpace) -> None:
    dense = space.unpruned()[None]

    def spread(fleet: Fleet) -> tuple[float, float]:
        fleet.bind(space)
        lat = fleet.true_latency_ms(dense)[0]
        p5, p50, p95 = np.percentile(lat, [5, 50, 95])
        return (p95 - p5) / p50, lat.max() / lat.min()

    fresh, _ = spread(Fleet.factory_fresh(CORTEX_A72, 300, seed=0))
    _, aged_ratio = spread(Fleet.field_aged(CORTEX_A72, 300, seed=0))
    assert 0.05 < fresh < 0.15
    assert 1.7 < aged_ratio < 3.0


def test_drift_swaps_rankings_between_profiles(space: SearchSpace, X: np.ndarray) -> None:
    fleet = Fleet.field_aged(JETSON_XAVIER_NX, 200, seed=0)
    fleet.bind(space)
    a = np.flatnonzero(fleet.profiles == "thermally-throttled")[0]
    b = np.flatnonzero(fleet.profiles == "memory-contended")[0]
    lat = fleet.true_latency_ms(X, [a, b])
    i, j = np.triu_indices(len(X), k=1)
    swapped = np.sign(lat[i, 0] - lat[j, 0]) != np.sign(lat[i, 1] - lat[j, 1])
    assert swapped.sum() > 0


def test_device_matches_fleet_and_measures_noisily(space: SearchSpace, X: np.ndarray) -> None:
    fleet = Fleet.field_aged(JETSON_XAVIER_NX, 20, seed=0)
    fleet.bind(space)
    device = fleet.device(5)
    np.testing.assert_allclose(
        device.true_latency_ms(X[:10]), fleet.true_latency_ms(X[:10], [5])[:, 0]
    )
    m = device.measure(space.decode(X[0]))
    assert isinstance(m, Measurement) and len(m.samples_ms) == device.samples
    true = device.true_latency_ms(X[:1])[0]
    assert all(abs(math.log(s / true)) < 6 * device.noise for s in m.samples_ms)
    assert len(set(m.samples_ms)) > 1
    assert fleet.measure_matrix(X[:4], device_idx=[1, 3]).shape == (4, 2)


def test_unsupported_bits_are_rejected(space: SearchSpace) -> None:
    mcu = SimulatedDevice("mcu-0", MPIC_RISCV)
    with pytest.raises(ValueError, match=r"does not support bit-width\(s\) \[16, 32\]"):
        mcu.bind(space)
    with pytest.raises(ValueError, match="layer .* has 32 bits; allowed: \\[2, 4, 8\\]"):
        mcu.measure(space.decode(space.unpruned()))
    with pytest.raises(ValueError, match="does not support"):
        Fleet.factory_fresh(MPIC_RISCV, 3).bind(space)


def test_unbound_device_and_fleet_raise(space: SearchSpace) -> None:
    with pytest.raises(ValueError, match="not bound"):
        SimulatedDevice("gpu-0", JETSON_XAVIER_NX).measure(space.decode(space.unpruned()))
    with pytest.raises(ValueError, match="not bound"):
        Fleet.factory_fresh(JETSON_XAVIER_NX, 3).true_latency_ms(space.unpruned()[None])


@pytest.mark.parametrize("bad", [float("nan"), -1.0, 0.0, float("inf")])
def test_measurement_rejects_bad_latency(bad: float) -> None:
    with pytest.raises(ValueError, match="allowed: finite values > 0"):
        Measurement("gpu-0", (1.0, bad))


def test_mixed_fleet_runs_each_unit_on_its_own_sku(space: SearchSpace, X: np.ndarray) -> None:
    from moo_compress.devices import JETSON_NANO
    from moo_compress.fleet import NANO_POWER_MODES, XAVIER_NX_POWER_MODES, FleetPart

    parts = [
        FleetPart(JETSON_XAVIER_NX, 0.6, XAVIER_NX_POWER_MODES),
        FleetPart(JETSON_NANO, 0.4, NANO_POWER_MODES),
    ]
    fleet = Fleet.mixed(parts, 400, seed=1)
    fleet.bind(space)
    assert fleet.sku is JETSON_XAVIER_NX and fleet.skus == (JETSON_XAVIER_NX, JETSON_NANO)
    assert 0.5 < np.mean(fleet.sku_index == 0) < 0.7
    assert set(fleet.profiles) == {f"{p.sku.name}/{m.name}" for p in parts for m in p.mixture}
    assert all(
        n.startswith(fleet.skus[s].name)
        for n, s in zip(fleet.profiles, fleet.sku_index, strict=True)
    )
    true = fleet.true_latency_ms(X[:20])
    for i in (0, 1, 2, 3, 399):
        device = fleet.device(i)
        assert device.sku is fleet.skus[fleet.sku_index[i]]
        np.testing.assert_allclose(device.true_latency_ms(X[:20]), true[:, i])


def test_mixed_fleet_rejects_repeated_skus_and_bad_parts() -> None:
    from moo_compress.fleet import FleetPart

    with pytest.raises(ValueError, match="distinct SKUs"):
        Fleet.mixed([FleetPart(MPIC_RISCV, 1.0), FleetPart(MPIC_RISCV, 1.0)], 10)
    with pytest.raises(ValueError, match="share > 0"):
        FleetPart(MPIC_RISCV, 0.0)


def test_single_sku_fleet_draws_as_before() -> None:
    # The mixed-fleet code path must not move a single-SKU fleet's draws: these are the
    # values of Fleet.field_aged(JETSON_XAVIER_NX, 5, seed=0) before it existed.
    fleet = Fleet.field_aged(JETSON_XAVIER_NX, 5, seed=0)
    assert list(fleet.profiles) == EXPECTED_PROFILES
    np.testing.assert_allclose(fleet.compute, EXPECTED_COMPUTE, rtol=1e-12)


EXPECTED_PROFILES = [
    "battery-saver",
    "cool-idle",
    "memory-contended",
    "cool-idle",
    "thermally-throttled",
]
EXPECTED_COMPUTE = [
    0.7323536273619726,
    1.0248840053779142,
    0.9732409182395483,
    1.0065483669536848,
    0.5943834071278172,
]
