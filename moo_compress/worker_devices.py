"""Worker side of distributed measurement: the devices a Dask worker can measure on.

Every Dask worker that measures holds its :class:`~moo_compress.device.Device` objects
in this module's registry and advertises one resource per device,
``device-<id>=1`` (see :func:`resource_tag`). The client submits
:func:`measure_on_worker` with that resource, so Dask runs it on a worker that holds
the device, and never two at once on one device (the resource has capacity 1; a
per-device lock here guards the same invariant against a second client).

On an edge device, a small preload script registers the local device::

    # edge_device.py
    from moo_compress.worker_devices import register
    from my_boards import MyBoard          # your Device subclass
    from my_problem import build_space      # the same search space as the client's

    register(MyBoard("jetson-017"), space=build_space())

and the worker is started with the matching resource::

    dask worker tls://HOST:8786 --resources "device-jetson-017=1" --preload edge_device.py

The embedded cluster (:mod:`moo_compress.dispatch`) runs its workers in the client
process, so it registers the client's own device objects directly.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.measurement import Measurement

if TYPE_CHECKING:
    from moo_compress.search_space import SearchSpace

_DEVICES: dict[str, Device] = {}
_LOCKS: dict[str, threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()


def resource_tag(device_id: str) -> str:
    """The Dask resource name of a device: ``device-<id>``, with every character
    outside ``[A-Za-z0-9._-]`` replaced by ``_`` (``,`` and ``=`` would break
    ``dask worker --resources``)."""
    return "device-" + re.sub(r"[^A-Za-z0-9._-]", "_", device_id)


def register(device: Device, space: SearchSpace | None = None) -> str:
    """Make ``device`` measurable by this process's workers; return its resource tag.

    Args:
        device: The device; registering another object with the same id replaces it.
        space: If given, the device is bound to it first (a device measures only
            configurations of the space it is bound to).
    """
    if space is not None:
        device.bind(space)
    with _REGISTRY_LOCK:
        _DEVICES[device.device_id] = device
        _LOCKS.setdefault(device.device_id, threading.Lock())
    return resource_tag(device.device_id)


def unregister(device_id: str) -> None:
    """Forget a device (no-op if unknown)."""
    with _REGISTRY_LOCK:
        _DEVICES.pop(device_id, None)


def measure_on_worker(device_id: str, config_json: str) -> tuple[float, ...]:
    """Measure ``config_json`` on the registered device ``device_id``; runs on a worker.

    Returns:
        The latency samples in ms, each finite and > 0.

    Raises:
        LookupError: no device of that id is registered in this worker's process.
        TypeError: the device returned something other than a :class:`Measurement`.
        ValueError: the config is malformed or the samples are not valid latencies.
            The config is parsed by the ``config_type`` of the space the device is bound
            to (a :class:`CompressionConfig` for an unbound device).
    """
    with _REGISTRY_LOCK:
        device = _DEVICES.get(device_id)
        lock = _LOCKS.get(device_id)
    if device is None or lock is None:
        raise LookupError(f"device {device_id!r} is not registered on this worker")
    space = device.space
    config = (space.config_type if space is not None else CompressionConfig).from_json(config_json)
    with lock:
        result = device.measure(config)
    if not isinstance(result, Measurement):
        raise TypeError(
            f"device {device_id!r} returned {type(result).__name__}; expected a Measurement"
        )
    return Measurement(device_id, result.samples_ms).samples_ms
