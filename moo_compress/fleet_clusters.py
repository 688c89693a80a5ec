"""The clusters a search measures on: one representative device and a weight per cluster."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moo_compress.clustering import Clustering
from moo_compress.device import Device
from moo_compress.fleet import Fleet


@dataclass(frozen=True)
class FleetClusters:
    """K clusters of a fleet.

    Attributes:
        representatives: (K,) the device measured for each cluster.
        sizes: (K,) devices per cluster.
        fleet: The simulated fleet the clusters come from, if any (its noiseless
            latencies are used for evaluation columns only).
        labels: (D,) cluster of each fleet device, or None without a fleet.
    """

    representatives: tuple[Device, ...]
    sizes: np.ndarray
    fleet: Fleet | None = None
    labels: np.ndarray | None = None

    @classmethod
    def from_clustering(cls, fleet: Fleet, clustering: Clustering) -> FleetClusters:
        reps = tuple(fleet.device(int(i)) for i in clustering.medoids)
        return cls(reps, np.asarray(clustering.sizes), fleet, np.asarray(clustering.labels))

    @classmethod
    def from_devices(cls, devices: Sequence[Device]) -> FleetClusters:
        """Each device is a cluster of its own, all of equal weight."""
        ids = [d.device_id for d in devices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"device ids must be unique, got {ids}")
        return cls(tuple(devices), np.ones(len(devices), dtype=int))

    @property
    def k(self) -> int:
        return len(self.sizes)

    @property
    def weights(self) -> np.ndarray:
        """(K,) share of the fleet in each cluster, summing to 1."""
        return self.sizes / self.sizes.sum()

    def fleet_average(self, latency: np.ndarray) -> np.ndarray:
        """(N,) cluster-size-weighted mean of (N, K) per-cluster latencies (ms)."""
        return self._check(latency) @ self.weights

    def worst_case(self, latency: np.ndarray) -> np.ndarray:
        """(N,) largest of (N, K) per-cluster latencies (ms)."""
        return self._check(latency).max(axis=1)

    def _check(self, latency: np.ndarray) -> np.ndarray:
        latency = np.atleast_2d(np.asarray(latency, dtype=float))
        k = len(self.sizes)
        if latency.shape[1] != k:
            raise ValueError(f"expected (N, {k}) per-cluster latencies, got {latency.shape}")
        return latency

    def true_cluster_latency(self, X: np.ndarray) -> np.ndarray | None:
        """(N, K) noiseless mean latency in ms of each cluster's devices, for evaluation
        only; None where the devices have no ground truth.

        A simulated fleet averages every member device; otherwise each representative
        must offer ``true_latency_ms(X)`` (simulated and replayed devices do). The
        size-weighted mean over clusters is then the mean over every device.
        """
        if self.fleet is not None:
            true = self.fleet.true_latency_ms(X)  # (N, D)
            return np.column_stack(
                [true[:, self.labels == k].mean(axis=1) for k in range(self.k)]
            )
        if not all(hasattr(d, "true_latency_ms") for d in self.representatives):
            return None
        return np.column_stack([d.true_latency_ms(X) for d in self.representatives])

    def true_objectives(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Noiseless (average over every device, worst cluster mean) latency in ms, each
        (N,), for evaluation only; None without ground truth."""
        per_cluster = self.true_cluster_latency(X)
        if per_cluster is None:
            return None
        return self.fleet_average(per_cluster), self.worst_case(per_cluster)

    def describe(self) -> list[dict]:
        """One dict per cluster: index, size, weight and representative id."""
        return [
            {"cluster": k, "size": int(s), "weight": float(w), "representative": d.device_id}
            for k, (s, w, d) in enumerate(
                zip(self.sizes, self.weights, self.representatives, strict=True)
            )
        ]
