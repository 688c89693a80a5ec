"""Submits latency measurements to Dask workers, one at a time per device, with retries.

Each device is a Dask resource ``device-<id>`` of capacity 1 on the worker that holds
it (:mod:`moo_compress.worker_devices`); a measurement is submitted with that resource,
so it runs only where the device is and never next to another measurement on it.
Measurements of different devices run concurrently, except on devices that share one
resource (:attr:`Device.shared_resource <moo_compress.device.Device.shared_resource>`,
e.g. every device timed on this machine's CPU): those are measured one at a time, each
submitted only when the last one on the resource has ended, so that no attempt waits
inside a worker for another one while its deadline runs. The dispatcher, in the client
process, keeps at most one attempt per device (and per shared resource) in flight,
enforces deadlines, validates results, retries failures with backoff
(:class:`~moo_compress.dispatch.retry.RetryPolicy`) and reports what failed on every
candidate device of a cluster as a degraded cluster. It never touches the measurement
store: the caller commits each yielded result.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from distributed import Client, Future, wait

from moo_compress.dispatch.outliers import Expected, OutlierCheck
from moo_compress.dispatch.retry import RetryPolicy
from moo_compress.measurement import Measurement
from moo_compress.worker_devices import measure_on_worker, resource_tag

POLL_S = 0.05
"""Longest wait (s) between two looks at the in-flight measurements."""


@dataclass(frozen=True)
class Request:
    """One latency measurement to take: a configuration on a cluster.

    Attributes:
        cluster: Cluster index.
        config_json: The configuration (``CompressionConfig.to_json``).
        expected: The caller's expectation of the median, if it has one: a reading it
            covers is accepted without the confirmation that a reading outside the
            device's recent medians needs (see :class:`RetryPolicy`).
    """

    cluster: int
    config_json: str
    expected: Expected | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one request.

    Attributes:
        index: Position of the request in the batch.
        request: The request.
        device_id: Device that measured it (None on failure).
        samples_ms: Latency samples in ms (empty on failure).
        error: Why it failed on every candidate device (None on success).
    """

    index: int
    request: Request
    device_id: str | None
    samples_ms: tuple[float, ...] = ()
    error: str | None = None


@dataclass
class _Job:
    """A request on its way: which candidate device, which attempt, what it saw."""

    index: int
    request: Request
    device: int = 0
    failures: int = 0
    failures_here: int = 0
    not_before: float = 0.0
    waiting_since: float | None = None
    flagged: list[tuple[float, float]] = field(default_factory=list)
    last_error: str = ""


class Dispatcher:
    """Measures batches of requests on the devices of a Dask cluster.

    Args:
        client: A client of a cluster whose workers hold the devices.
        candidates: (K,) per cluster, the device ids that may measure it, the
            representative first.
        policy: Deadlines, retries and the outlier test.
        shared: device id -> name of the resource it shares with other devices (see
            :attr:`Device.shared_resource <moo_compress.device.Device.shared_resource>`);
            devices absent here share nothing.

    Attributes:
        degraded: cluster -> reason, for clusters whose candidates all failed a request.
    """

    def __init__(
        self,
        client: Client,
        candidates: Sequence[Sequence[str]],
        policy: RetryPolicy | None = None,
        shared: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.policy = policy or RetryPolicy()
        self.candidates = [list(c)[: self.policy.devices_per_cluster] for c in candidates]
        ids = sorted({d for c in self.candidates for d in c})
        tags = {resource_tag(d) for d in ids}
        if len(tags) != len(ids):
            raise ValueError(f"device ids collide after sanitising to resource tags: {ids}")
        self.degraded: dict[int, str] = {}
        p = self.policy
        self._checks = {
            d: OutlierCheck(p.outlier_k, p.outlier_history, p.outlier_min_history) for d in ids
        }
        shared = shared or {}
        self._lane = {d: f"shared resource {shared[d]!r}" if d in shared else d for d in ids}
        self._busy: dict[str, Future] = {}  # lane -> its latest attempt
        self._overdue: dict[Future, float] = {}  # attempt past its deadline -> since when

    def measure(self, requests: Sequence[Request]) -> Iterator[Outcome]:
        """Measure ``requests`` concurrently; yield each outcome as it is final.

        A request of a degraded cluster fails at once. Requests of one device (or of
        the devices of one shared resource) run one after another, in batch order
        (retries go to the back, except the confirmation of a new device's reading, which
        goes first: see :class:`RetryPolicy`).
        """
        waiting = [_Job(i, r) for i, r in enumerate(requests)]
        in_flight: dict[Future, tuple[_Job, str, float]] = {}
        while waiting or in_flight:
            now = time.monotonic()
            still_waiting = []
            for job in waiting:
                if job.request.cluster in self.degraded:
                    yield self._degraded_outcome(job)
                elif job.not_before <= now and self._submit(job, now, in_flight):
                    continue
                elif self._stuck(job, now):
                    yield from self._fail(job, self._stuck_reason(job), now, still_waiting)
                else:
                    still_waiting.append(job)
            waiting = still_waiting
            self._wait(in_flight, waiting, now)
            now = time.monotonic()
            for future, (job, device_id, deadline) in list(in_flight.items()):
                if future.done():
                    del in_flight[future]
                    yield from self._finished(future, job, device_id, now, waiting)
                elif now > deadline:
                    del in_flight[future]  # left in _busy until it really ends
                    self._overdue[future] = deadline
                    yield from self._fail(
                        job, f"no result within {self.policy.timeout_s:g} s", now, waiting
                    )

    def close(self) -> None:
        """Cancel attempts still running after their deadline."""
        self.client.cancel(list(self._busy.values()))
        self._busy.clear()
        self._overdue.clear()

    # ------------------------------------------------------------------ internals
    def _device(self, job: _Job) -> str:
        return self.candidates[job.request.cluster][job.device]

    def _lane_of(self, job: _Job) -> str:
        """The device of ``job``, or the shared resource it measures on."""
        return self._lane[self._device(job)]

    def _stuck(self, job: _Job, now: float) -> bool:
        """Whether ``job`` has waited longer than a deadline for a device (or shared
        resource) that stays busy with an attempt past its own deadline.

        Waiting behind attempts still within their deadlines never counts: a batch
        queues many requests per device."""
        overdue = self._overdue.get(self._busy.get(self._lane_of(job)))
        if overdue is None or job.waiting_since is None:
            return False
        return now - max(overdue, job.waiting_since) > self.policy.timeout_s

    def _stuck_reason(self, job: _Job) -> str:
        lane = self._lane_of(job)
        if lane == self._device(job):
            return "its device stayed busy with a timed-out attempt"
        return f"its {lane} stayed busy with a timed-out attempt"

    def _submit(self, job: _Job, now: float, in_flight: dict) -> bool:
        """Submit ``job`` unless its device is still busy; whether it was submitted."""
        device_id = self._device(job)
        lane = self._lane[device_id]
        busy = self._busy.get(lane)
        if busy is not None and not busy.done():
            if job.waiting_since is None:
                job.waiting_since = now
            return False
        self._overdue.pop(busy, None)
        future = self.client.submit(
            measure_on_worker,
            device_id,
            job.request.config_json,
            resources={resource_tag(device_id): 1},
            pure=False,
        )
        self._busy[lane] = future
        job.waiting_since = None
        in_flight[future] = (job, device_id, now + self.policy.timeout_s)
        return True

    def _wait(self, in_flight: dict, waiting: list[_Job], now: float) -> None:
        """Block until a future finishes, a deadline passes or a retry is due."""
        wakes = [deadline for _, _, deadline in in_flight.values()]
        wakes += [job.not_before for job in waiting]
        timeout = min([POLL_S, *(w - now for w in wakes)])
        futures = list(in_flight) + [f for f in self._busy.values() if f not in in_flight]
        if timeout <= 0 or not futures:
            time.sleep(max(0.0, timeout))
            return
        with contextlib.suppress(TimeoutError):
            wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")

    def _finished(
        self, future: Future, job: _Job, device_id: str, now: float, waiting: list[_Job]
    ) -> Iterator[Outcome]:
        self._busy.pop(self._lane[device_id], None)
        try:
            measurement = Measurement(device_id, future.result())
        except Exception as exc:  # a device's failure, reported and retried
            yield from self._fail(job, f"{type(exc).__name__}: {exc}", now, waiting)
            return
        median = measurement.median_ms
        precision = _finite_or_zero(measurement.rel_precision)
        check = self._checks[device_id]
        rel = self.policy.agree_rel
        expected = job.request.expected
        if (
            check.trusts(median)
            or (expected is not None and expected.covers(median))
            or any(abs(median / m - 1) <= rel + precision + p for m, p in job.flagged)
        ):
            check.add(median)
            yield Outcome(job.index, job.request, device_id, measurement.samples_ms)
            return
        job.flagged.append((median, precision))
        if check.warming_up:  # confirmed first, so that the device's history fills early
            reason = f"median {median:.4g} ms is not yet confirmed (a new device's reading)"
        else:
            reason = f"median {median:.4g} ms is an outlier and not yet confirmed"
        yield from self._fail(job, reason, now, waiting, at_once=check.warming_up)

    def _fail(
        self, job: _Job, reason: str, now: float, waiting: list[_Job], at_once: bool = False
    ) -> Iterator[Outcome]:
        """Count a failed attempt: schedule a retry, or give the request up. The retry
        waits the policy's backoff at the back of the queue, or, ``at_once``, goes first."""
        p = self.policy
        job.failures += 1
        job.failures_here += 1
        job.last_error = f"{self._device(job)}: {reason}"
        job.waiting_since = None
        if job.failures_here >= p.attempts_per_device:
            job.device += 1
            job.failures_here = 0
            job.flagged.clear()
        cluster = job.request.cluster
        if job.device >= len(self.candidates[cluster]):
            self.degraded.setdefault(
                cluster,
                f"all {len(self.candidates[cluster])} candidate device(s) failed; "
                f"last: {job.last_error}",
            )
            yield self._degraded_outcome(job)
            return
        if cluster in self.degraded:
            yield self._degraded_outcome(job)
            return
        if at_once:
            job.not_before = now
            waiting.insert(0, job)
        else:
            job.not_before = now + p.backoff(job.failures)
            waiting.append(job)

    def _degraded_outcome(self, job: _Job) -> Outcome:
        return Outcome(job.index, job.request, None, error=self.degraded[job.request.cluster])


def _finite_or_zero(value: float) -> float:
    """``value``, or 0 where it is infinite (too few samples for a confidence interval)."""
    return value if math.isfinite(value) else 0.0
