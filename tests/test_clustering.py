"""Tests of moo_compress.clustering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from sklearn.metrics import adjusted_rand_score

from moo_compress.clustering import cluster_fleet, cluster_probes, probe_set
from moo_compress.devices import CORTEX_A72
from moo_compress.fleet import Fleet
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.search_space import SearchSpace


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    torch.manual_seed(0)
    return SearchSpace.from_model(
        torchvision.models.resnet18(), torch.randn(1, 3, 64, 64), granularity="block"
    )


def test_probe_set_is_distinct_and_in_bounds(space: SearchSpace) -> None:
    X, names = probe_set(space)
    assert len(X) == len(names) == 7
    assert len(np.unique(X, axis=0)) == len(X)
    np.testing.assert_array_equal(space.check(X), X)  # raises if out of bounds
    np.testing.assert_array_equal(X[names.index("dense@max-bits")], space.unpruned())


def test_clustering_recovers_planted_profiles(space: SearchSpace) -> None:
    fleet = Fleet.field_aged(CORTEX_A72, 400, seed=1)
    fleet.bind(space)
    clustering = cluster_fleet(fleet)
    assert clustering.k == 4
    assert adjusted_rand_score(fleet.profiles, clustering.labels) >= 0.9
    assert clustering.sizes.sum() == 400
    assert list(clustering.sizes) == sorted(clustering.sizes, reverse=True)
    for c, medoid in enumerate(clustering.medoids):
        assert clustering.labels[medoid] == c
    assert clustering.centroid_ms.shape == (4, 7)


def test_factory_fresh_fleet_is_one_cluster(space: SearchSpace) -> None:
    fleet = Fleet.factory_fresh(CORTEX_A72, 400, seed=1)
    fleet.bind(space)
    clustering = cluster_fleet(fleet)
    assert clustering.k == 1 and np.isnan(clustering.silhouette)
    assert cluster_fleet(fleet, k=2).k == 2


def test_noise_level_spread_is_one_cluster() -> None:
    rng = np.random.default_rng(0)
    latency = 10 * np.exp(0.01 * rng.standard_normal((300, 5)))
    latency[:150] *= 1.02  # a real but tiny shift, within twice the noise
    assert cluster_probes(latency, noise_sd=0.02).k == 1


def test_weights_fleet_average_and_worst_case() -> None:
    rng = np.random.default_rng(0)
    latency = np.vstack([np.full((30, 3), 10.0), np.full((10, 3), 30.0)])
    latency *= np.exp(0.01 * rng.standard_normal(latency.shape))
    clustering = cluster_probes(latency)
    assert clustering.k == 2
    np.testing.assert_allclose(clustering.weights, [0.75, 0.25])
    clusters = FleetClusters((), clustering.sizes)
    per_cluster = np.array([[1.0, 5.0], [4.0, 2.0]])
    np.testing.assert_allclose(clusters.fleet_average(per_cluster), [2.0, 3.5])
    np.testing.assert_allclose(clusters.worst_case(per_cluster), [5.0, 4.0])
    with pytest.raises(ValueError, match=r"expected \(N, 2\)"):
        clusters.fleet_average(np.ones((2, 3)))


def test_invalid_latencies_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite values > 0"):
        cluster_probes(np.array([[1.0, -1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="k=5 is not allowed"):
        cluster_probes(np.ones((3, 2)), k=5)
