"""Dispatching measurements to Dask workers: resource tags, one at a time per device,
concurrency across devices."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import psutil
import pytest
from distributed import wait

from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.dispatch import Dispatcher, Expected, Request, RetryPolicy, embedded_client
from moo_compress.measurement import Measurement
from moo_compress.worker_devices import measure_on_worker, resource_tag

CONFIG = CompressionConfig((1, 3, 8, 8), {"conv": 8}, {"conv": 32})


class RecordingDevice(Device):
    """Sleeps ``busy_s`` per measurement and records (device, start, end, thread)."""

    log: list[tuple[str, float, float]] = []
    _lock = threading.Lock()

    def __init__(self, device_id: str, latency_ms: float = 1.0, busy_s: float = 0.05) -> None:
        super().__init__(device_id, {32})
        self.latency_ms, self.busy_s = latency_ms, busy_s

    def measure(self, config: CompressionConfig) -> Measurement:
        start = time.monotonic()
        time.sleep(self.busy_s)
        with self._lock:
            self.log.append((self.device_id, start, time.monotonic()))
        return Measurement(self.device_id, (self.latency_ms,) * 3)


def _overlaps(intervals: list[tuple[float, float]]) -> bool:
    intervals = sorted(intervals)
    return any(b[0] < a[1] for a, b in zip(intervals, intervals[1:], strict=False))


@pytest.fixture
def log():
    RecordingDevice.log = []
    return RecordingDevice.log


def test_resource_tags_are_sanitised():
    assert resource_tag("jetson-017") == "device-jetson-017"
    assert resource_tag("rack 2/board=3,x") == "device-rack_2_board_3_x"


def test_colliding_tags_are_refused():
    with pytest.raises(ValueError, match="collide"):
        Dispatcher(None, [["a b"], ["a_b"]])


def test_a_device_never_runs_two_measurements_at_once(log):
    """Six tasks for one device submitted at once to a worker with 4 threads: the
    resource of capacity 1 makes them run one after another."""
    devices = [RecordingDevice("dev-a"), RecordingDevice("dev-b")]
    with embedded_client(devices, n_workers=2, threads_per_worker=4) as client:
        futures = [
            client.submit(
                measure_on_worker,
                d.device_id,
                CONFIG.to_json(),
                resources={resource_tag(d.device_id): 1},
                pure=False,
            )
            for _ in range(6)
            for d in devices
        ]
        wait(futures, timeout=30)
        assert all(f.result() == (1.0, 1.0, 1.0) for f in futures)
        workers = client.scheduler_info()["workers"].values()
        assert sorted(sorted(w["resources"]) for w in workers) == [
            ["device-dev-a"],
            ["device-dev-b"],
        ]
    assert len(log) == 12
    for device in ("dev-a", "dev-b"):
        assert not _overlaps([(s, e) for d, s, e in log if d == device])
    # the two devices did run at the same time
    assert _overlaps([(s, e) for _, s, e in log])


def test_batch_runs_devices_concurrently_and_returns_everything(log):
    devices = [RecordingDevice(f"dev-{i}", latency_ms=1.0 + i, busy_s=0.1) for i in range(4)]
    requests = [Request(c, CONFIG.to_json()) for _ in range(3) for c in range(4)]
    policy = RetryPolicy(outlier_min_history=0)
    with embedded_client(devices, n_workers=2) as client:
        dispatcher = Dispatcher(client, [[d.device_id] for d in devices], policy)
        outcomes = list(dispatcher.measure(requests))
    assert sorted(o.index for o in outcomes) == list(range(len(requests)))
    for o in outcomes:
        assert o.error is None and o.device_id == f"dev-{o.request.cluster}"
        assert o.samples_ms == (1.0 + o.request.cluster,) * 3
    for device in devices:
        assert not _overlaps([(s, e) for d, s, e in log if d == device.device_id])
    # devices measured at the same time (by their recorded busy intervals: a wall-time
    # bound failed once on a loaded machine, 1.11 s against 0.9 s)
    assert _overlaps([(s, e) for _, s, e in log])


def test_garbage_from_a_device_is_a_clear_failure_and_degrades_its_cluster(log):
    class Garbage(RecordingDevice):
        def measure(self, config):
            return [float("nan")]

    devices = [RecordingDevice("good"), Garbage("bad")]
    policy = RetryPolicy(attempts_per_device=2, backoff_s=0.01, outlier_min_history=0)
    with embedded_client(devices) as client:
        dispatcher = Dispatcher(client, [["good"], ["bad"]], policy)
        outcomes = list(dispatcher.measure([Request(c, CONFIG.to_json()) for c in (0, 1)]))
    by_cluster = {o.request.cluster: o for o in outcomes}
    assert by_cluster[0].error is None
    assert "TypeError" in by_cluster[1].error and "expected a Measurement" in by_cluster[1].error
    assert dispatcher.degraded == {1: by_cluster[1].error}


def _listening_sockets() -> list[str]:
    """``ip:port`` of every listening inet socket of this process (psutil), and those
    ``ss -ltnp`` attributes to this pid."""
    mine = [
        f"{c.laddr.ip}:{c.laddr.port}"
        for c in psutil.Process().net_connections("inet")
        if c.status == psutil.CONN_LISTEN
    ]
    if shutil.which("ss"):
        ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True)
        mine += [line for line in ss.stdout.splitlines() if f"pid={os.getpid()}," in line]
    return mine


def test_embedded_cluster_opens_no_listening_socket():
    before = _listening_sockets()
    devices = [RecordingDevice(f"lo-{i}") for i in range(2)]
    with embedded_client(devices) as client:
        assert client.submit(lambda: 1).result() == 1
        during = _listening_sockets()
    assert before == [] and during == [], (before, during)


class AlternatingDevice(Device):
    """Medians alternate between 1.0 and 1.2 ms; ``spread`` sets how far the 40 samples
    of one measurement scatter around their median (relative)."""

    def __init__(self, device_id: str, spread: float) -> None:
        super().__init__(device_id, {32})
        self.spread, self.calls = spread, 0

    def measure(self, config: CompressionConfig) -> Measurement:
        median = 1.0 if self.calls % 2 == 0 else 1.2
        self.calls += 1
        offsets = [self.spread * (i / 19.5 - 1) for i in range(40)]
        return Measurement(self.device_id, tuple(median * (1 + o) for o in offsets))


@pytest.mark.parametrize(("spread", "confirmed"), [(0.0, False), (0.5, True)])
def test_first_medians_agree_within_their_own_precision(spread, confirmed):
    """Two medians 20 % apart confirm each other only when their samples say that the
    medians are not known better than that (real timing on a busy machine)."""
    device = AlternatingDevice("noisy", spread)
    policy = RetryPolicy(attempts_per_device=2, devices_per_cluster=1, backoff_s=0.01)
    with embedded_client([device]) as client:
        dispatcher = Dispatcher(client, [["noisy"]], policy)
        (outcome,) = list(dispatcher.measure([Request(0, CONFIG.to_json())]))
    assert (outcome.error is None) == confirmed
    if not confirmed:
        assert "not yet confirmed" in outcome.error


class StepDevice(RecordingDevice):
    """1 ms for its first ``n_low`` calls, 10 ms after."""

    def __init__(self, device_id: str, n_low: int) -> None:
        super().__init__(device_id, busy_s=0.01)
        self.n_low, self.calls = n_low, 0

    def measure(self, config: CompressionConfig) -> Measurement:
        self.latency_ms = 1.0 if self.calls < self.n_low else 10.0
        self.calls += 1
        return super().measure(config)


def test_a_new_device_is_confirmed_at_once_and_an_outlier_waits_its_backoff(log):
    """A new device's first ``outlier_min_history`` readings each get a second reading
    at once, before its other requests, so its history fills after as many requests and
    the batch's later readings need none; an outlier of a device with a history is
    measured again only after the backoff."""
    backoff_s = 1.5
    policy = RetryPolicy(backoff_s=backoff_s, outlier_min_history=5)
    with embedded_client([StepDevice("step", n_low=13)]) as client:
        dispatcher = Dispatcher(client, [["step"]], policy)
        first = list(dispatcher.measure([Request(0, CONFIG.to_json()) for _ in range(8)]))
        warm_up = list(log)
        (outlier,) = list(dispatcher.measure([Request(0, CONFIG.to_json())]))
    assert [o.error for o in first] == [None] * 8 and outlier.error is None
    assert len(warm_up) == 5 * 2 + 3  # 5 readings confirmed, 3 trusted on the history
    gaps = [b[1] - a[2] for a, b in zip(warm_up, warm_up[1:], strict=False)]
    assert max(gaps) < backoff_s / 2, gaps
    (_, _, flagged_end), (_, retry_start, _) = log[len(warm_up) :]
    assert outlier.samples_ms == (10.0,) * 3 and retry_start - flagged_end >= backoff_s


@pytest.mark.parametrize(("factor", "attempts"), [(1.5, 2), (20.0, 1)])
def test_a_reading_the_caller_expects_needs_no_confirmation(log, factor, attempts):
    """A median outside the device's history is accepted at once where the request's
    expectation covers it (10 ms expected within 20x), and confirmed otherwise."""
    policy = RetryPolicy(backoff_s=0.01, outlier_min_history=5)
    expected = Expected(median_ms=1.0, factor=factor)
    with embedded_client([StepDevice("step", n_low=10)]) as client:
        dispatcher = Dispatcher(client, [["step"]], policy)
        list(dispatcher.measure([Request(0, CONFIG.to_json()) for _ in range(5)]))
        del log[:]
        (outcome,) = dispatcher.measure([Request(0, CONFIG.to_json(), expected)])
    assert outcome.error is None and outcome.samples_ms == (10.0,) * 3
    assert len(log) == attempts


def test_an_expectation_is_a_band_of_ratios():
    expected = Expected(median_ms=4.0, factor=2.0)
    assert expected.covers(2.0) and expected.covers(8.0) and expected.covers(5.0)
    assert not expected.covers(1.99) and not expected.covers(8.01)
    with pytest.raises(ValueError, match="factor >= 1"):
        Expected(median_ms=4.0, factor=0.5)


BROKEN_DEVICE_RUN = """
from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.dispatch import Dispatcher, Request, RetryPolicy, embedded_client
from moo_compress.measurement import Measurement

class Fine(Device):
    def measure(self, config):
        return Measurement(self.device_id, (1.0, 1.0, 1.0))

class Broken(Device):
    def measure(self, config):
        raise RuntimeError("the device broke")

config = CompressionConfig((1, 3, 8, 8), {"conv": 8}, {"conv": 32}).to_json()
policy = RetryPolicy(attempts_per_device=3, backoff_s=0.01, outlier_min_history=0)
with embedded_client([Fine("fine", {32}), Broken("broken", {32})]) as client:
    dispatcher = Dispatcher(client, [["fine"], ["broken"]], policy)
    for outcome in dispatcher.measure([Request(c, config) for c in (0, 1)]):
        print(outcome.request.cluster, outcome.error)
"""


def test_dask_worker_errors_never_reach_the_console():
    """A device that fails every attempt: the caller gets its error, and Dask prints
    nothing (no ``distributed.worker - ERROR - Compute Failed`` blocks, no INFO)."""
    result = subprocess.run(
        [sys.executable, "-c", BROKEN_DEVICE_RUN], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(result.stdout.splitlines()) == [
        "0 None",
        "1 all 1 candidate device(s) failed; last: broken: RuntimeError: the device broke",
    ]
    assert result.stderr == ""
