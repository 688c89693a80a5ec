"""Tests of moo_compress.devices.local_cpu.LocalCPUDevice on a tiny CNN."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from moo_compress.config import CompressionConfig
from moo_compress.devices import local_cpu
from moo_compress.devices.local_cpu import LocalCPUDevice
from moo_compress.measurement import median_rel_halfwidth
from moo_compress.search_space import SearchSpace

INPUT = (1, 3, 16, 16)


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    ).eval()


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace.from_model(tiny_cnn(), torch.randn(INPUT), bit_widths=(8, 16, 32))


def fast_device(**kwargs: object) -> LocalCPUDevice:
    options = {"warmup": 1, "min_repeats": 5, "max_repeats": 30, "max_seconds": 0.5}
    return LocalCPUDevice(**(options | kwargs))


def counting_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Patch the builder so that each build appends the config digest to the list."""
    builds: list[str] = []
    real = local_cpu.build_runnable

    def build(model: nn.Module, config: CompressionConfig, *args: int) -> nn.Module:
        builds.append(config.digest)
        return real(model, config, *args)

    monkeypatch.setattr(local_cpu, "build_runnable", build)
    return builds


def test_float_config_gives_positive_finite_ms(space: SearchSpace) -> None:
    device = fast_device()
    device.bind(space)
    m = device.measure(space.decode(space.unpruned(32)))
    assert m.device_id == "local-cpu-t1"
    assert 5 <= len(m.samples_ms) <= 30
    assert all(math.isfinite(s) and s > 0 for s in m.samples_ms)


def test_int8_config_runs_pruned_float_layers_without_fake_quant(space: SearchSpace) -> None:
    device = fast_device()
    device.bind(space)
    config = space.decode(space.unpruned(8))
    model = device.built(config)
    assert all(type(m).__module__.startswith("torch.nn.modules") for m in model.modules())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert device.measure(config).median_ms > 0


def test_pruned_int8_config_runs(space: SearchSpace) -> None:
    device = fast_device()
    device.bind(space)
    x = space.unpruned(8)
    x[: len(space.prune_genes)] = space.ratios.index(0.5)
    config = space.decode(x)
    assert sum(config.channels.values()) < sum(u.channels for u in space.table.units)
    assert device.measure(config).median_ms > 0


def test_samples_are_wall_clock_ms(space: SearchSpace, monkeypatch: pytest.MonkeyPatch) -> None:
    class Sleeper(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            time.sleep(0.005)
            return x

    monkeypatch.setattr(local_cpu, "build_runnable", lambda *args: Sleeper())
    device = fast_device(min_repeats=3, max_repeats=3)
    device.bind(space)
    m = device.measure(space.decode(space.unpruned(32)))
    assert len(m.samples_ms) == 3
    assert all(5.0 <= s < 100.0 for s in m.samples_ms)


def test_cache_retimes_without_rebuilding(
    space: SearchSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = counting_builds(monkeypatch)
    device = fast_device()
    device.bind(space)
    config = space.decode(space.unpruned(8))
    first = device.measure(config)
    second = device.measure(config)
    assert builds == [config.digest]
    assert second.timestamp >= first.timestamp
    assert first.samples_ms != second.samples_ms  # timed again


def test_cache_is_lru_bounded(space: SearchSpace, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = counting_builds(monkeypatch)
    device = fast_device(cache_size=1, min_repeats=1, max_repeats=1)
    device.bind(space)
    a, b = space.decode(space.unpruned(32)), space.decode(space.unpruned(16))
    for config in (a, b, a):
        device.measure(config)
    assert builds == [a.digest, b.digest, a.digest]


def test_rebinding_drops_cache(space: SearchSpace, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = counting_builds(monkeypatch)
    device = fast_device(min_repeats=1, max_repeats=1)
    config = space.decode(space.unpruned(32))
    for _ in range(2):
        device.bind(space)
        device.measure(config)
    assert len(builds) == 2


def test_threads_set_for_timing_and_restored(
    space: SearchSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return x

    monkeypatch.setattr(local_cpu, "build_runnable", lambda *args: Spy())
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        device = fast_device(threads=1)
        device.bind(space)
        device.measure(space.decode(space.unpruned(32)))
        assert set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_unbound_device_raises(space: SearchSpace) -> None:
    with pytest.raises(ValueError, match="not bound"):
        fast_device().measure(space.decode(space.unpruned(32)))


def test_unsupported_bits_raise(space: SearchSpace) -> None:
    device = fast_device()
    device.bind(space)
    config = space.decode(space.unpruned(32))
    bad = dataclasses.replace(config, bits={n: 3 for n in config.bits})
    with pytest.raises(ValueError, match="3 bits"):
        device.measure(bad)


@pytest.mark.parametrize(
    "kwargs", [{"threads": 0}, {"min_repeats": 5, "max_repeats": 4}, {"rel_precision": 0}]
)
def test_bad_options_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LocalCPUDevice(**kwargs)


def test_median_rel_halfwidth() -> None:
    assert median_rel_halfwidth([1.0, 2.0, 3.0]) == math.inf
    assert median_rel_halfwidth([4.0] * 50) == 0.0
    samples = np.arange(1.0, 101.0)  # median 50.5; ranks 40 and 61 bound the 95 % CI
    assert median_rel_halfwidth(samples.tolist()) == pytest.approx((61 - 40) / 2 / 50.5)
