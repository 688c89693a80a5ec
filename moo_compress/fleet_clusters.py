"""The clusters a search measures on: one representative device and a weight per cluster."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from moo_compress.clustering import Clustering, cluster_fleet
from moo_compress.decision_space import DecisionSpace
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
        degraded: Clusters left out of the objectives because no device of theirs
            could be measured (see :meth:`without`).
    """

    representatives: tuple[Device, ...]
    sizes: np.ndarray
    fleet: Fleet | None = None
    labels: np.ndarray | None = None
    degraded: frozenset[int] = frozenset()

    @classmethod
    def build(
        cls, fleet: Fleet | Sequence[Device], space: DecisionSpace, seed: int = 0
    ) -> FleetClusters:
        """Bind ``fleet`` to ``space`` and cluster it (a :class:`Fleet`, see
        :func:`~moo_compress.clustering.cluster_fleet`), or make each device of a list
        its own cluster.

        Raises:
            ValueError: if ``fleet`` is neither a Fleet nor a non-empty list of devices.
        """
        if isinstance(fleet, Fleet):
            fleet.bind(space)
            return cls.from_clustering(fleet, cluster_fleet(fleet, seed=seed))
        devices = list(fleet)
        if not devices or not all(isinstance(d, Device) for d in devices):
            raise ValueError(
                "build_fleet() must return a Fleet or a non-empty list of Device objects"
            )
        for device in devices:
            device.bind(space)
        return cls.from_devices(devices)

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
    def active(self) -> np.ndarray:
        """(K,) whether each cluster counts in the objectives (is not degraded)."""
        return ~np.isin(np.arange(self.k), list(self.degraded))

    @property
    def weights(self) -> np.ndarray:
        """(K,) share of the non-degraded fleet in each cluster, summing to 1 (0 for a
        degraded cluster)."""
        sizes = self.sizes * self.active
        return sizes / sizes.sum()

    def without(self, cluster: int) -> FleetClusters:
        """These clusters with ``cluster`` degraded: from then on the fleet average is
        the size-weighted mean over the other clusters only, and the worst case their
        maximum; its latency column is ignored (it may be NaN).

        Raises:
            ValueError: if no cluster would be left.
        """
        degraded = self.degraded | {int(cluster)}
        if len(degraded) >= self.k:
            raise ValueError(f"all {self.k} clusters are degraded: no device can be measured")
        return replace(self, degraded=frozenset(degraded))

    def candidates(self, cluster: int, n: int) -> list[Device]:
        """Up to ``n`` devices that may measure ``cluster``: its representative, then
        other members in fleet order (a cluster of a device list has only its own)."""
        rep = self.representatives[cluster]
        if self.fleet is None or self.labels is None:
            return [rep]
        members = (self.fleet.device(int(i)) for i in np.flatnonzero(self.labels == cluster))
        others = [d for d in members if d.device_id != rep.device_id]
        return [rep, *others][:n]

    def fleet_average(self, latency: np.ndarray) -> np.ndarray:
        """(N,) cluster-size-weighted mean of (N, K) per-cluster latencies (ms) over the
        non-degraded clusters."""
        active = self.active
        return self._check(latency)[:, active] @ self.weights[active]

    def worst_case(self, latency: np.ndarray) -> np.ndarray:
        """(N,) largest of (N, K) per-cluster latencies (ms) over the non-degraded
        clusters."""
        return self._check(latency)[:, self.active].max(axis=1)

    def fleet_objectives(self, latency: np.ndarray) -> np.ndarray:
        """(N, 2) the fleet's latency objectives, both minimised, of (N, K) per-cluster
        latencies (ms): [:meth:`fleet_average`, :meth:`worst_case`]."""
        return np.column_stack([self.fleet_average(latency), self.worst_case(latency)])

    def _check(self, latency: np.ndarray) -> np.ndarray:
        latency = np.atleast_2d(np.asarray(latency, dtype=float))
        k = len(self.sizes)
        if latency.shape[1] != k:
            raise ValueError(f"expected (N, {k}) per-cluster latencies, got {latency.shape}")
        return latency

    def true_cluster_latency(self, X: np.ndarray) -> np.ndarray | None:
        """(N, K) noiseless mean latency in ms of each cluster's devices, for evaluation
        only; None where the devices have no ground truth.

        A simulated fleet averages every member device; otherwise each representative's
        :meth:`Device.true_latency_ms <moo_compress.device.Device.true_latency_ms>`
        (simulated and replayed devices have one). The size-weighted mean over clusters
        is then the mean over every device.
        """
        if self.fleet is not None:
            true = self.fleet.true_latency_ms(X)  # (N, D)
            return np.column_stack([true[:, self.labels == k].mean(axis=1) for k in range(self.k)])
        columns = [d.true_latency_ms(X) for d in self.representatives]
        if any(column is None for column in columns):
            return None
        return np.column_stack(columns)

    def true_objectives(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Noiseless (average over every device, worst cluster mean) latency in ms, each
        (N,), for evaluation only; None without ground truth."""
        per_cluster = self.true_cluster_latency(X)
        if per_cluster is None:
            return None
        return self.fleet_average(per_cluster), self.worst_case(per_cluster)

    def describe(self) -> list[dict]:
        """One dict per cluster: index, size, weight, representative id, degraded."""
        return [
            {
                "cluster": k,
                "size": int(s),
                "weight": float(w),
                "representative": d.device_id,
                "degraded": k in self.degraded,
            }
            for k, (s, w, d) in enumerate(
                zip(self.sizes, self.weights, self.representatives, strict=True)
            )
        ]
