"""How the dispatcher retries a failed measurement, and when it gives up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Deadlines, retries with exponential backoff, and the outlier test.

    An *attempt* fails when it raises, returns garbage (no, non-finite or non-positive
    samples, or not a :class:`~moo_compress.measurement.Measurement`), misses its
    deadline (a hung device or a lost worker), or is an unconfirmed outlier (see
    :class:`~moo_compress.dispatch.outliers.OutlierCheck`): a median that lies neither
    within the device's recent medians nor within the request's
    :class:`~moo_compress.dispatch.outliers.Expected` band (where the caller gave one)
    needs a second, agreeing reading.

    A failed attempt is retried on the same device after :meth:`backoff` seconds, at
    the back of the queue. A reading that is unconfirmed only because its device has
    fewer than ``outlier_min_history`` accepted medians is the exception: nothing went
    wrong that waiting could mend, so it is measured again at once, before the device's
    other requests, and the device's history fills after ``outlier_min_history``
    requests instead of after a whole batch; it still counts as an attempt. After
    ``attempts_per_device`` failures on one device the request moves to the cluster's
    next candidate device; when all ``devices_per_cluster`` candidates have failed it,
    the cluster is *degraded*.

    Attributes:
        timeout_s: Deadline of one attempt in s, counted from its submission (an
            attempt is submitted only when its device, and the resource it shares with
            other devices if any, is free, so the deadline covers the measurement
            alone). A device (or shared resource) still busy with an attempt that
            missed its deadline counts as failing the next attempt if it stays busy
            for another ``timeout_s``; waiting behind attempts within their deadlines
            never counts.
        attempts_per_device: Attempts on one device before moving to the next one.
        devices_per_cluster: Candidate devices tried per cluster (the representative
            first, then other members of the cluster).
        backoff_s: Wait in s before the first retry.
        backoff_factor: Each further retry of a request waits this much longer.
        max_backoff_s: Cap of the wait in s.
        outlier_k: A median outside ``[q1 - k IQR, q3 + k IQR]`` of the device's
            recent medians is an outlier.
        outlier_history: Recent accepted medians kept per device.
        outlier_min_history: Below this many, every median needs confirmation.
        agree_rel: Two medians of one request confirm each other if they differ by at
            most this fraction plus the relative half-widths of both medians' 95 %
            confidence intervals (:attr:`Measurement.rel_precision`, 0 for a
            measurement too short for one): real timing on a busy machine is no more
            precise than its own samples say.
    """

    timeout_s: float = 60.0
    attempts_per_device: int = 4
    devices_per_cluster: int = 3
    backoff_s: float = 0.5
    backoff_factor: float = 2.0
    max_backoff_s: float = 30.0
    outlier_k: float = 3.0
    outlier_history: int = 32
    outlier_min_history: int = 5
    agree_rel: float = 0.05

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.attempts_per_device < 1 or self.devices_per_cluster < 1:
            raise ValueError(
                f"need timeout_s > 0, attempts_per_device >= 1 and devices_per_cluster >= 1; "
                f"got {self.timeout_s}, {self.attempts_per_device}, {self.devices_per_cluster}"
            )

    def backoff(self, failures: int) -> float:
        """Wait in s before the retry that follows the ``failures``-th failure (>= 1)."""
        return min(self.max_backoff_s, self.backoff_s * self.backoff_factor ** (failures - 1))
