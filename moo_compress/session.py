"""The measurements of one search: store, dispatcher, degrading clusters, accuracy cache.

A :class:`MeasurementSession` is everything real a search touches. Every latency and
accuracy value goes through the :class:`~moo_compress.store.MeasurementStore` first, so a
resumed run with the same seed replays the same decisions from the store and never
measures anything twice. What the store lacks is measured in batches through a
:class:`~moo_compress.dispatch.Dispatcher` (Dask workers, one measurement at a time per
device, different devices concurrently); each result is committed to the store the
moment it arrives.

A cluster whose every candidate device fails a measurement (after the retries of the
dispatcher's :class:`~moo_compress.dispatch.RetryPolicy`) is *degraded*: it is measured
no more, its latency is NaN from then on, and :attr:`MeasurementSession.clusters` leaves
it out of the objectives (fleet average re-weighted over the others, worst case their
maximum; see :meth:`FleetClusters.without
<moo_compress.fleet_clusters.FleetClusters.without>`). The problem's own clusters are
never changed.

Dispatchers over a fleet's clusters are built here and nowhere else
(:func:`make_dispatcher`, :func:`embedded_dispatcher`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager

import numpy as np
from distributed import Client

from moo_compress.accuracy import AccuracyEvaluator
from moo_compress.config import CompressionConfig
from moo_compress.decision_space import DecisionSpace
from moo_compress.device import Device
from moo_compress.dispatch import Dispatcher, Expected, Request, RetryPolicy, embedded_client
from moo_compress.fleet_clusters import FleetClusters
from moo_compress.store import MeasurementStore, Record, config_hash
from moo_compress.threads import evaluation_workers, pinned_threads

ACCURACY_DEVICE = "accuracy-evaluator"
"""Store ``device_id`` of accuracy evaluations (they run on this machine)."""

Pair = tuple[np.ndarray, int]
"""A (decision vector (n_var,), cluster) pair whose latency is wanted."""


def candidate_devices(clusters: FleetClusters, policy: RetryPolicy) -> list[list[Device]]:
    """(K,) per cluster, the devices the dispatcher may measure it on, representative
    first."""
    return [clusters.candidates(c, policy.devices_per_cluster) for c in range(clusters.k)]


def make_dispatcher(
    client: Client, clusters: FleetClusters, policy: RetryPolicy | None = None
) -> Dispatcher:
    """A dispatcher on ``client``'s workers for every candidate device of ``clusters``
    (see :func:`candidate_devices`)."""
    policy = policy or RetryPolicy()
    groups = candidate_devices(clusters, policy)
    ids = [[d.device_id for d in group] for group in groups]
    shared = {d.device_id: d.shared_resource for g in groups for d in g if d.shared_resource}
    return Dispatcher(client, ids, policy, shared)


@contextmanager
def embedded_dispatcher(
    clusters: FleetClusters, policy: RetryPolicy | None = None
) -> Iterator[Dispatcher]:
    """A dispatcher on an embedded in-process Dask cluster holding every candidate
    device of ``clusters``, open for the ``with`` block."""
    policy = policy or RetryPolicy()
    groups = candidate_devices(clusters, policy)
    devices = list({d.device_id: d for group in groups for d in group}.values())
    with embedded_client(devices) as client:
        dispatcher = make_dispatcher(client, clusters, policy)
        try:
            yield dispatcher
        finally:
            dispatcher.close()


class MeasurementSession:
    """Real latency and accuracy of decision vectors, through a store.

    Args:
        space: Decodes decision vectors into the configurations measured.
        clusters: The clusters to measure on (this session degrades its own copy).
        evaluator: Scores configurations for accuracy.
        store: Where every measurement is kept (None: nothing can be measured, e.g. to
            ask a search for its minimum budget).
        dispatcher: Where missing latencies are measured. Default: an
            :func:`embedded_dispatcher` over ``clusters``, open while measuring.

    Attributes:
        clusters: The clusters now, with the degraded ones marked.
        degraded: cluster -> why it was degraded.
        n_accuracy: Distinct decision vectors whose accuracy is known in this session.
    """

    def __init__(
        self,
        space: DecisionSpace,
        clusters: FleetClusters,
        evaluator: AccuracyEvaluator,
        store: MeasurementStore | None,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.space = space
        self.clusters = clusters
        self.evaluator = evaluator
        self.store = store
        self.dispatcher = dispatcher
        self.degraded: dict[int, str] = {}
        self._known: set[tuple[bytes, int]] = set()
        self._accuracy: dict[bytes, float] = {}

    @property
    def n_accuracy(self) -> int:
        return len(self._accuracy)

    # ------------------------------------------------------------------ latency
    @property
    def n_latency(self) -> int:
        """Distinct (decision vector, cluster) latencies known in this session."""
        return len(self._known)

    def counts(self) -> list[int]:
        """(K,) distinct latencies known per cluster."""
        return [sum(1 for _, c in self._known if c == k) for k in range(self.clusters.k)]

    def known(self, x: np.ndarray, cluster: int) -> bool:
        """Whether the latency of ``x`` on ``cluster`` is known in this session."""
        return (_key(x), cluster) in self._known

    def measure_latencies(
        self, pairs: Sequence[Pair], expected: Sequence[Expected | None] | None = None
    ) -> tuple[np.ndarray, list[int]]:
        """Median latency of each (x, cluster) pair, and which pairs are new.

        Pairs the store holds (measured on any device of their cluster) are read from
        it; the others are measured concurrently through the dispatcher, each committed
        to the store as it arrives. ``expected`` (one per pair, or None) is the caller's
        expectation of each median, which spares a plausible reading its confirmation
        (see :class:`~moo_compress.dispatch.Request`); it never changes a value.

        Returns:
            (P,) median latency in ms (NaN on a degraded cluster), and the indices of
            ``pairs`` whose latency this session had not known, in the order of
            ``pairs`` (not of arrival, so the same seed gives the same models).
        """
        configs = [self.space.decode(x).to_json() for x, _ in pairs]
        keys = [(c, config) for (_, c), config in zip(pairs, configs, strict=True)]
        records: dict[tuple[int, str], Record] = {}
        for c, config in keys:
            found = self.store.get_by_cluster(c, config_hash(config), "latency")
            if found is not None:
                records[(c, config)] = found
        hints = dict(zip(keys, expected, strict=True)) if expected is not None else {}
        missing = list(
            dict.fromkeys(key for key in keys if key not in records and key[0] not in self.degraded)
        )
        if missing:
            requests = [Request(c, cfg, hints.get((c, cfg))) for c, cfg in missing]
            with self.dispatching() as dispatcher:
                for outcome in dispatcher.measure(requests):
                    c, config = missing[outcome.index]
                    if outcome.error is not None:
                        self.degrade(c, outcome.error)
                        continue
                    record = Record(outcome.device_id, c, config, "latency", outcome.samples_ms)
                    records[(c, config)] = self.store.add(record)
        latency = np.full(len(pairs), np.nan)
        fresh = []
        for i, ((x, c), config) in enumerate(zip(pairs, configs, strict=True)):
            record = records.get((c, config))
            if record is None:
                continue
            latency[i] = record.median
            if (_key(x), c) not in self._known:
                self._known.add((_key(x), c))
                fresh.append(i)
        return latency, fresh

    @contextmanager
    def dispatching(self) -> Iterator[Dispatcher]:
        """The dispatcher in use, or an embedded one open for the ``with`` block."""
        if self.dispatcher is not None:
            yield self.dispatcher
            return
        with embedded_dispatcher(self.clusters) as dispatcher:
            self.dispatcher = dispatcher
            try:
                yield dispatcher
            finally:
                self.dispatcher = None

    def degrade(self, cluster: int, reason: str) -> None:
        """Leave ``cluster`` out of everything from now on (see the module docstring).

        Raises:
            ValueError: if no cluster would be left.
        """
        if cluster not in self.degraded:
            self.degraded[cluster] = reason
            self.clusters = self.clusters.without(cluster)

    # ------------------------------------------------------------------ accuracy
    def has_accuracy(self, x: np.ndarray) -> bool:
        """Whether the accuracy of ``x`` is known in this session."""
        return _key(x) in self._accuracy

    def evaluate_accuracies(self, X: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Real accuracy (or fidelity) of each row of ``X`` (N, n_var), and which rows
        are new to this session.

        Rows the store holds are read from it. The others are evaluated, several at a
        time on :func:`~moo_compress.threads.evaluation_workers` threads where the
        evaluator is ``concurrent`` (each evaluation on one torch thread, so the values
        are those of one at a time), and each value is committed to the store as it
        arrives.

        Returns:
            (N,) accuracy in [0, 1], and the indices of the rows this session had not
            known, in the order of ``X`` (not of arrival, so the same seed gives the
            same models; a row repeated in ``X`` is new once).
        """
        keys = [_key(x) for x in X]
        values = {key: self._accuracy[key] for key in keys if key in self._accuracy}
        configs = {  # only rows new to the session are decoded: this is a hot path
            key: self.space.decode(x) for key, x in zip(keys, X, strict=True) if key not in values
        }
        missing = []
        for key, config in configs.items():
            record = self.store.get(ACCURACY_DEVICE, config_hash(config.to_json()), "accuracy")
            if record is None:
                missing.append(key)
            else:
                values[key] = record.median

        def commit(i: int, value: float) -> None:
            record = Record(ACCURACY_DEVICE, -1, configs[missing[i]].to_json(), "accuracy", [value])
            values[missing[i]] = self.store.add(record).median

        self._evaluate([configs[key] for key in missing], commit)
        fresh = []
        for i, key in enumerate(keys):
            if key not in self._accuracy:
                self._accuracy[key] = values[key]
                fresh.append(i)
        return np.array([values[key] for key in keys]), fresh

    def _evaluate(
        self, configs: list[CompressionConfig], commit: Callable[[int, float], None]
    ) -> None:
        """Evaluate ``configs``, passing ``(index, score)`` of each to ``commit`` in this
        thread as its evaluation ends. A failed evaluation's error is raised once every
        other evaluation has ended and been committed; on an interrupt, the evaluations
        already ended are committed first."""
        workers = min(len(configs), evaluation_workers()) if self.evaluator.concurrent else 1
        if workers <= 1:
            for i, config in enumerate(configs):
                commit(i, self.evaluator.evaluate(config))
            return
        error = None
        with pinned_threads(), ThreadPoolExecutor(workers) as pool:
            futures = {pool.submit(self.evaluator.evaluate, c): i for i, c in enumerate(configs)}
            pending = set(futures)
            try:
                for future in as_completed(futures):
                    pending.discard(future)
                    if future.exception() is not None:
                        error = error or future.exception()
                        continue
                    commit(futures[future], future.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                for future in pending:
                    if future.done() and not future.cancelled() and future.exception() is None:
                        commit(futures[future], future.result())
                raise
        if error is not None:
            raise error


def _key(x: np.ndarray) -> bytes:
    return np.asarray(x, dtype=np.int64).tobytes()
