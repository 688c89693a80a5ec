"""Group the devices of a fleet by how they run a few probe configurations.

Each device is measured (noisily) on a small fixed probe set built from the search
space (:func:`probe_set`) that stresses compute, memory and fixed overheads
differently, so that devices that drift alike land together. Probe latencies are
normalised per probe (``log(latency / fleet median)``) and clustered by a k-means-
initialised Gaussian mixture, k picked by BIC and checked by the silhouette score
(:func:`cluster_probes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

if TYPE_CHECKING:
    from sklearn.mixture import GaussianMixture

    from moo_compress.fleet import Fleet
    from moo_compress.search_space import SearchSpace

_MEDOID_CANDIDATES = 32
"""Members nearest the centroid among which the medoid of a cluster is searched."""


@dataclass(frozen=True)
class Clustering:
    """Devices grouped into ``k`` clusters, largest first.

    Attributes:
        labels: (D,) cluster of each device, 0..k-1.
        k: Number of clusters.
        medoids: (k,) device index of each cluster's representative: the member with
            the least summed distance to the others, searched among the 32 members
            nearest the centroid (exact medoids cost O(size^2)).
        sizes: (k,) devices per cluster.
        centroid_ms: (k, P) mean measured latency (ms) of each cluster on each probe.
        silhouette: Silhouette score of the labels (NaN when k == 1).
        probe_names: (P,) names of the probes.
    """

    labels: np.ndarray
    k: int
    medoids: np.ndarray
    sizes: np.ndarray
    centroid_ms: np.ndarray
    silhouette: float
    probe_names: tuple[str, ...]

    @property
    def weights(self) -> np.ndarray:
        """(k,) share of the fleet in each cluster."""
        return self.sizes / self.sizes.sum()


def probe_set(space: SearchSpace) -> tuple[np.ndarray, tuple[str, ...]]:
    """Probe configurations of a space: (P, n_var) decision vectors and their names.

    * ``dense@max-bits``: unpruned at the largest bit-width: compute-heavy (FP32 on a GPU).
    * ``dense@min-bits``: unpruned at the smallest bit-width: memory-heavy on
      tensor-core hardware (the bytes fall less than the compute time).
    * ``dense@mid-bits``: unpruned at a middle bit-width (spaces with >= 3 widths).
    * ``pruned@max-bits`` / ``pruned@min-bits``: every gene at its largest pruning
      ratio: small kernels, dominated by per-layer and per-inference overhead.
    * ``early-pruned@max-bits``: first half of the prune genes (high-resolution,
      activation-heavy layers) pruned, the rest dense.
    * ``late-pruned@min-bits``: second half (weight-heavy layers) pruned, low bits.

    Probes that coincide (e.g. a space with one bit-width) are kept once.
    """
    n_prune = len(space.prune_genes)
    max_ratio = len(space.ratios) - 1
    n_bits = len(space.bit_widths)
    half = n_prune // 2

    def config(prune: slice, bit_index: int) -> np.ndarray:
        x = space.xl.copy()
        x[:n_prune][prune] = max_ratio
        x[n_prune:] = bit_index
        return x

    none, every = slice(0, 0), slice(0, n_prune)
    probes = {
        "dense@max-bits": config(none, n_bits - 1),
        "dense@min-bits": config(none, 0),
        "dense@mid-bits": config(none, n_bits // 2),
        "pruned@max-bits": config(every, n_bits - 1),
        "pruned@min-bits": config(every, 0),
        "early-pruned@max-bits": config(slice(0, half), n_bits - 1),
        "late-pruned@min-bits": config(slice(half, n_prune), 0),
    }
    names: list[str] = []
    rows: list[np.ndarray] = []
    for name, x in probes.items():
        if not any(np.array_equal(x, r) for r in rows):
            names.append(name)
            rows.append(x)
    return np.array(rows), tuple(names)


def normalise(latency_ms: np.ndarray) -> np.ndarray:
    """(D, P) ``log(latency / median over devices)`` of (D, P) probe latencies in ms."""
    log = np.log(np.asarray(latency_ms, dtype=float))
    return log - np.median(log, axis=0)


def cluster_probes(
    latency_ms: np.ndarray,
    *,
    k: int | None = None,
    k_max: int = 8,
    min_silhouette: float = 0.3,
    noise_sd: float = 0.0,
    silhouette_sample: int = 2000,
    probe_names: tuple[str, ...] | None = None,
    seed: int = 0,
) -> Clustering:
    """Cluster D devices by their (D, P) probe latencies (ms).

    On the :func:`normalise`-d vectors, a Gaussian mixture with full covariances,
    initialised by k-means, is fitted for k = 1..k_max and the k of lowest BIC wins.
    Plain k-means (spherical, equal-size clusters) mis-assigns here: a throttled unit
    varies along the "compute" direction, a contended one along "bandwidth", so the
    profiles are elongated and of different spreads; the mixture models that.
    k = 1 is returned instead when the chosen split has a silhouette score (on a
    random subsample of ``silhouette_sample`` devices) below ``min_silhouette`` (no
    clear group structure: splitting one Gaussian blob scores ~0.3 or less), or when
    the fleet's spread (median over probes of the robust standard deviation,
    1.4826 x MAD, of the normalised vectors) is within twice ``noise_sd``.

    Args:
        latency_ms: (D, P) measured latency of every device on every probe.
        k: Force this number of clusters (skips the selection).
        k_max: Largest k tried (capped at D - 1).
        min_silhouette: Silhouette below which one cluster is returned.
        noise_sd: Measurement noise (log-sigma) of the probe latencies; 0 if unknown.
        silhouette_sample: Devices subsampled to score a split (cost O(sample^2)).
        probe_names: (P,) names, stored in the result.
        seed: Seed of the mixture fits and of the subsample.
    """
    latency_ms = np.asarray(latency_ms, dtype=float)
    if latency_ms.ndim != 2 or not np.all(np.isfinite(latency_ms) & (latency_ms > 0)):
        raise ValueError("latency_ms must be a (D, P) array of finite values > 0")
    z = normalise(latency_ms)
    n = len(z)
    names = probe_names or tuple(f"probe{i}" for i in range(z.shape[1]))
    if k is not None:
        if not 1 <= k <= n:
            raise ValueError(f"k={k} is not allowed; allowed: 1..{n}")
        labels = _mixture(z, k, seed).predict(z)
        score = _silhouette(z, labels, silhouette_sample, seed)
        return _result(latency_ms, z, labels, score, names)

    spread = float(np.median(1.4826 * np.median(np.abs(z - np.median(z, 0)), axis=0)))
    labels, score = np.zeros(n, dtype=int), float("nan")
    if spread > 2 * noise_sd:
        fits = [_mixture(z, kk, seed) for kk in range(1, min(k_max, n - 1) + 1)]
        best = min(fits, key=lambda gm: gm.bic(z))
        labels = best.predict(z)
        score = _silhouette(z, labels, silhouette_sample, seed)
    if not score >= min_silhouette:
        labels, score = np.zeros(n, dtype=int), float("nan")
    return _result(latency_ms, z, labels, score, names)


def cluster_fleet(
    fleet: Fleet,
    *,
    repeats: int = 3,
    k: int | None = None,
    k_max: int = 8,
    min_silhouette: float = 0.3,
    seed: int = 0,
) -> Clustering:
    """Measure every device of a bound ``fleet`` on its probes (:meth:`Fleet.probes`,
    by default :func:`probe_set`) and cluster them.

    Each probe is measured in two rounds of ``repeats`` samples (median per round);
    the round-to-round difference estimates the measurement noise, and the geometric
    mean of the rounds is clustered with :func:`cluster_probes`.
    """
    if fleet.space is None:
        raise ValueError("fleet is not bound; call fleet.bind(space) first")
    X, names = fleet.probes()
    first = fleet.measure_matrix(X, repeats=repeats).T
    second = fleet.measure_matrix(X, repeats=repeats).T
    diff = np.log(first) - np.log(second)
    noise_sd = float(np.median(np.std(diff, axis=0))) / 2  # sd of one round / sqrt(2)
    return cluster_probes(
        np.sqrt(first * second),
        k=k,
        k_max=k_max,
        min_silhouette=min_silhouette,
        noise_sd=noise_sd,
        probe_names=names,
        seed=seed,
    )


def _mixture(z: np.ndarray, k: int, seed: int) -> GaussianMixture:
    # Imported here: scikit-learn's import pulls in rich, and loading a problem file
    # (this module comes with every problem) should not.
    from sklearn.mixture import GaussianMixture

    # One thread: on (D, P<=7) data OpenMP start-up costs far more than it saves.
    with threadpool_limits(limits=1):
        return GaussianMixture(
            n_components=k, covariance_type="full", n_init=2, reg_covar=1e-5, random_state=seed
        ).fit(z)


def _silhouette(z: np.ndarray, labels: np.ndarray, sample: int, seed: int) -> float:
    if len(np.unique(labels)) < 2:
        return float("nan")
    from sklearn.metrics import silhouette_score  # see _mixture

    size = min(sample, len(z))
    return float(silhouette_score(z, labels, sample_size=size, random_state=seed))


def _result(
    latency_ms: np.ndarray,
    z: np.ndarray,
    labels: np.ndarray,
    score: float,
    names: tuple[str, ...],
) -> Clustering:
    """Relabel clusters largest first and compute sizes, medoids and centroids."""
    found, sizes = np.unique(labels, return_counts=True)
    order = found[np.argsort(-sizes, kind="stable")]
    relabel = np.empty(labels.max() + 1, dtype=int)
    relabel[order] = np.arange(len(order))
    labels = relabel[labels]
    medoids, centroids = [], []
    for c in range(len(order)):
        members = np.flatnonzero(labels == c)
        zc = z[members]
        near = np.argsort(((zc - zc.mean(0)) ** 2).sum(1))[:_MEDOID_CANDIDATES]
        dist = np.sqrt(((zc[near, None, :] - zc[None, :, :]) ** 2).sum(-1)).sum(1)
        medoids.append(members[near[np.argmin(dist)]])
        centroids.append(latency_ms[members].mean(0))
    return Clustering(
        labels=labels,
        k=len(order),
        medoids=np.array(medoids),
        sizes=np.bincount(labels),
        centroid_ms=np.array(centroids),
        silhouette=score,
        probe_names=names,
    )
