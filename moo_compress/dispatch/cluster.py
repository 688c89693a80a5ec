"""Dask clients to measure through: an embedded in-process cluster, or a real one.

The embedded cluster runs its scheduler and workers as threads of this process over
Dask's ``inproc://`` transport (in-memory queues, no socket). Dask would also start an
HTTP server (health, metrics, ``/info`` and ``/eventstream`` routes) for the scheduler
and for each worker; the embedded cluster's scheduler and workers build it but never let
it listen (:class:`NoHTTPScheduler`, :class:`NoHTTPWorker`), so an embedded run opens no
listening socket at all. Dask's own logging (``distributed.worker - ERROR - Compute
Failed`` blocks for every failed attempt) is kept off the console while the cluster is
open: the dispatcher reports what failed, one line per degraded cluster. The workers
share this process's device registry (:mod:`moo_compress.worker_devices`), so the
devices are registered directly, never pickled.

A real fleet has its own scheduler; :func:`connect` joins it, over TLS when given a
:class:`distributed.security.Security` (see the README, "Measuring on a real fleet").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from distributed import Client, Scheduler, SpecCluster, Worker
from distributed.http.routing import RoutingApplication
from distributed.security import Security
from tornado.httpserver import HTTPServer

from moo_compress.device import Device
from moo_compress.worker_devices import register, unregister


class _NoHTTPListener:
    """Mixin for a Dask server node: its HTTP server is built but never listens."""

    def start_http_server(self, routes, dashboard_address, default_port=0, ssl_options=None):
        self.http_application = RoutingApplication(routes)
        self.http_server = HTTPServer(self.http_application)


class NoHTTPScheduler(_NoHTTPListener, Scheduler):
    """A scheduler without an HTTP endpoint (no dashboard, no ``/info``, no metrics)."""


class NoHTTPWorker(_NoHTTPListener, Worker):
    """A worker without an HTTP endpoint."""


@contextmanager
def quiet_dask_logs() -> Iterator[None]:
    """Keep every ``distributed`` log record off the console for the ``with`` block.

    The dispatcher turns failures into :class:`~moo_compress.dispatch.Outcome` errors;
    Dask's multi-line records of the same failures (``Compute Failed`` with the task's
    arguments and traceback) would only bury them."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


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
            "cls": NoHTTPWorker,
            "options": {
                "nthreads": threads,
                "resources": {tag: 1 for tag in tags[i::n_workers]},
                "protocol": "inproc://",
                "dashboard": False,
                "memory_limit": 0,
            },
        }
        for i in range(n_workers)
    }
    scheduler = {
        "cls": NoHTTPScheduler,
        "options": {"protocol": "inproc://", "dashboard": False},
    }
    try:
        with (
            quiet_dask_logs(),
            SpecCluster(workers=workers, scheduler=scheduler, silence_logs=False) as cluster,
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
