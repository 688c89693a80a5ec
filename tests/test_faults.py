"""Injected faults are survived: the front equals the fault-free one; a cluster that
cannot be measured is degraded and the run goes on; worker loss; fallback devices."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from moo_compress.devices.faulty import FaultyDevice
from moo_compress.dispatch import Dispatcher, Request, RetryPolicy, embedded_client
from moo_compress.dispatch.outliers import OutlierCheck
from moo_compress.problem_file import fingerprint
from moo_compress.search import FleetSearch, SearchSettings
from moo_compress.session import candidate_devices
from moo_compress.store import MeasurementStore

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"
FAST = RetryPolicy(
    timeout_s=0.3,
    attempts_per_device=10,
    devices_per_cluster=1,
    backoff_s=0.01,
    max_backoff_s=0.05,
)


def _tiny():
    spec = importlib.util.spec_from_file_location("tiny_for_faults", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyFleet(seed=3)


def _search(tmp_path: Path, name: str, wrap=None, policy: RetryPolicy = FAST):
    """Run the tiny search on devices wrapped by ``wrap``; (result, wrapped devices)."""
    problem = _tiny()
    settings = SearchSettings(budget=80, accuracy_budget=24, pop_size=8, generations=3, seed=3)
    groups = candidate_devices(problem.clusters, policy)
    wrapped = [[wrap(d) if wrap else d for d in group] for group in groups]
    devices = [d for group in wrapped for d in group]
    with (
        MeasurementStore(tmp_path / f"{name}.sqlite", fingerprint(problem), name) as store,
        embedded_client(devices) as client,
    ):
        dispatcher = Dispatcher(client, [[d.device_id for d in g] for g in wrapped], policy)
        result = FleetSearch(problem, store, settings, dispatcher=dispatcher).run()
        dispatcher.close()
    return result, devices


def test_faulty_devices_give_the_fault_free_front(tmp_path):
    clean, _ = _search(tmp_path, "clean")
    faulty, devices = _search(tmp_path, "faulty", lambda d: FaultyDevice(d, hang_s=0.6, seed=11))
    requests = sum(sum(d._requests.values()) for d in devices)
    assert requests > sum(faulty.measurements) * 1.2  # faults did happen and were retried
    assert faulty.degraded == {} and clean.degraded == {}
    np.testing.assert_array_equal(faulty.X, clean.X)
    np.testing.assert_array_equal(faulty.latency, clean.latency)
    assert faulty.measurements == clean.measurements


def test_a_cluster_that_always_fails_is_degraded_and_the_run_goes_on(tmp_path):
    # The broken device fails at once; the deadline only has to spare the healthy one
    # (0.3 s degraded it too on a machine at load 17).
    policy = RetryPolicy(
        timeout_s=10.0, attempts_per_device=2, devices_per_cluster=1, backoff_s=0.01
    )

    cluster_1 = _tiny().clusters.representatives[1].device_id

    def break_cluster_1(device):
        return (
            FaultyDevice(device, fail=1.0, hang=0, outlier=0)
            if (device.device_id == cluster_1)
            else device
        )

    result, _ = _search(tmp_path, "degraded", break_cluster_1, policy)
    assert list(result.degraded) == [1]
    reason = result.degraded[1]
    assert "injected failure" in reason or "expected a Measurement" in reason
    assert len(result.X) >= 1
    assert np.isnan(result.latency[:, 1]).all() and np.isfinite(result.latency[:, 0]).all()
    assert result.measurements[1] == 0 and result.measurements[0] > 0


def test_failures_move_to_another_device_of_the_cluster():
    problem = _tiny()
    rep, member = problem.clusters.candidates(0, 2)
    broken = FaultyDevice(rep, fail=1.0, hang=0, outlier=0)
    policy = RetryPolicy(attempts_per_device=2, backoff_s=0.01, outlier_min_history=0)
    config = problem.space.decode(problem.space.unpruned()).to_json()
    with embedded_client([broken, member]) as client:
        dispatcher = Dispatcher(client, [[rep.device_id, member.device_id]], policy)
        (outcome,) = dispatcher.measure([Request(0, config)])
    assert outcome.error is None and outcome.device_id == member.device_id
    assert sum(broken._requests.values()) == 2


def test_lost_worker_degrades_its_clusters_only():
    problem = _tiny()
    devices = list(problem.clusters.representatives)
    policy = RetryPolicy(
        timeout_s=0.3, attempts_per_device=2, backoff_s=0.01, outlier_min_history=0
    )
    config = problem.space.decode(problem.space.unpruned()).to_json()
    with embedded_client(devices, n_workers=2) as client:
        cluster = client.cluster
        cluster.sync(cluster.workers["devices-1"].close)  # holds cluster 1's device
        dispatcher = Dispatcher(client, [[d.device_id] for d in devices], policy)
        outcomes = {
            o.request.cluster: o
            for o in dispatcher.measure([Request(0, config), Request(1, config)])
        }
        dispatcher.close()
    assert outcomes[0].error is None
    assert list(dispatcher.degraded) == [1]
    assert "no result within 0.3 s" in outcomes[1].error or "timed-out" in outcomes[1].error


def test_outlier_check_flags_medians_beyond_k_iqr():
    check = OutlierCheck(k=3.0, history=8, min_history=4)
    assert not check.trusts(1.0)  # no history yet: needs confirmation
    for m in (1.0, 1.1, 1.2, 1.3):
        check.add(m)
    assert check.trusts(1.15) and check.trusts(1.6)
    assert not check.trusts(20.0) and not check.trusts(0.1)


@pytest.mark.parametrize("bad", [{"fail": 0.9, "hang": 0.2}, {"outlier": -0.1}])
def test_faulty_device_rejects_bad_probabilities(bad):
    with pytest.raises(ValueError, match="probabilities"):
        FaultyDevice(_tiny().clusters.representatives[0], **bad)
