"""Dask clients to measure through: an embedded in-process cluster, or a real one.

The embedded cluster runs its scheduler and workers as threads of this process over
Dask's ``inproc://`` transport, with no dashboard. Dask still starts an HTTP server
(health and metrics routes) for the scheduler and each worker; they listen on loopback
only, on ephemeral ports, so nothing outside this machine can reach them. Its workers
share this process's device registry (:mod:`moo_compress.worker_devices`), so the
devices are registered directly, never pickled.

A real fleet has its own scheduler; :func:`connect` joins it, over TLS when given a
:class:`distributed.security.Security` (see the README, "Measuring on a real fleet").
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from distributed import Client, Scheduler, SpecCluster, Worker
from distributed.security import Security

from moo_compress.device import Device
from moo_compress.worker_devices import register, unregister

LOOPBACK_HTTP = "127.0.0.1:0"
"""Where the embedded cluster's HTTP servers listen (Dask's default is every interface,
port 8787)."""


@contextmanager
def embedded_client(
    devices: Sequence[Device], n_workers: int = 2, threads_per_worker: int | None = None
) -> Iterator[Client]:
    """A client of an in-process cluster whose workers hold ``devices``.

    Worker ``i`` advertises the resource tags of ``devices[i::n_workers]``.

    Args:
        devices: Bound devices with unique ids.
        n_workers: Workers (at most one per device).
        threads_per_worker: Default: one per device of the worker plus one, so that
            a hung device never blocks the worker's other devices.
    """
    if not devices:
        raise ValueError("an embedded cluster needs at least one device")
    n_workers = max(1, min(n_workers, len(devices)))
    tags = [register(d) for d in devices]
    threads = threads_per_worker or math.ceil(len(devices) / n_workers) + 1
    workers = {
        f"devices-{i}": {
            "cls": Worker,
            "options": {
                "nthreads": threads,
                "resources": {tag: 1 for tag in tags[i::n_workers]},
                "protocol": "inproc://",
                "dashboard": False,
                "dashboard_address": LOOPBACK_HTTP,
                "memory_limit": 0,
            },
        }
        for i in range(n_workers)
    }
    scheduler = {
        "cls": Scheduler,
        "options": {
            "protocol": "inproc://",
            "dashboard": False,
            "dashboard_address": LOOPBACK_HTTP,
        },
    }
    try:
        with (
            SpecCluster(workers=workers, scheduler=scheduler, silence_logs=40) as cluster,
            Client(cluster) as client,
        ):
            yield client
    finally:
        for device in devices:
            unregister(device.device_id)


def connect(address: str, security: Security | None = None, timeout_s: float = 30.0) -> Client:
    """A client of the scheduler at ``address`` (``tcp://`` or ``tls://HOST:PORT``).

    Raises:
        OSError: the scheduler cannot be reached (or refuses the certificate) within
            ``timeout_s`` seconds.
    """
    return Client(address, security=security, timeout=timeout_s)
