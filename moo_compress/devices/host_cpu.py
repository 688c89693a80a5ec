"""This machine's CPU as one shared resource, and the timing loop of every device on it.

Several devices may time models on this CPU: torch's own kernels
(:class:`~moo_compress.devices.local_cpu.LocalCPUDevice`), ONNX Runtime
(:class:`~moo_compress.devices.onnxruntime.OnnxRuntimeDevice`) or OpenVINO, each at
its own thread count. They are distinct :class:`~moo_compress.device.Device` objects,
so the dispatcher measures them concurrently, in worker threads of one process. What
they share is global, and one of them must own it at a time:

* the cores themselves: two timing loops on one CPU slow each other down, so neither
  measures what a unit of the fleet would see;
* torch's intra-op thread count (``torch.set_num_threads`` is process-wide): a 2-thread
  device would time with the 1-thread device's setting, or the other way round;
* the model-building tools: torch.fx's symbolic tracer (torch.ao's ``prepare_fx``)
  replaces ``torch.nn.Module.__call__`` and ``__getattr__`` on the class for the whole
  trace, so a forward pass in any other thread (torch-pruning's dependency trace, a
  timing pass) is recorded by that tracer and fails with "module is not installed as a
  submodule".

* the OpenMP thread team: each OS thread that calls torch gets its own team, and the
  idle team of the Dask thread that measured last keeps spinning on a core while the
  next measurement, in another Dask thread, starts its own (medians through Dask were up
  to 5x those of the same model timed in one thread).

So every :class:`HostCPUDevice` builds and times on one dedicated thread,
:func:`on_host_thread`: one measurement on this CPU at a time, whatever the device,
always from the same OS thread. The devices say so
(:attr:`~moo_compress.device.Device.shared_resource` ``"host-cpu"``), and the dispatcher
submits their measurements one at a time: a measurement never waits here for another
one while the dispatcher's deadline for it runs.

Conventions: latencies are wall-clock milliseconds of one batch-1 forward pass of
``config.input_shape``; inputs are seeded random tensors (latency does not depend on the
values).
"""

from __future__ import annotations

import contextlib
import threading
import time
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Generic, TypeVar

import torch

from moo_compress.config import CompressionConfig
from moo_compress.device import Device
from moo_compress.measurement import Measurement, median_rel_halfwidth

if TYPE_CHECKING:
    from moo_compress.search_space import SearchSpace

HOST_CPU = "host-cpu"
"""The :attr:`~moo_compress.device.Device.shared_resource` of every device on this CPU."""

_HOST_THREAD_NAME = "moo-compress-host-cpu"
_HOST = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_HOST_THREAD_NAME)

Result = TypeVar("Result")


def on_host_thread(fn: Callable[[], Result]) -> Result:
    """Run ``fn`` on the one thread that builds and times models on this CPU; wait for
    it and return its result (or raise its exception). Called from that thread itself,
    it simply calls ``fn``."""
    if threading.current_thread().name.startswith(_HOST_THREAD_NAME):
        return fn()
    return _HOST.submit(fn).result()


Built = TypeVar("Built")


class HostCPUDevice(Device, Generic[Built]):
    """A device timed on this machine's CPU, at batch 1, with a fixed thread count.

    A subclass says how a configuration is built for its runtime (:meth:`build`, e.g. a
    torch module or an ONNX Runtime session) and how one forward pass of the built
    object runs (:meth:`forward`). This class caches built objects, builds and times on
    the host thread (:func:`on_host_thread`), and times: ``warmup`` untimed
    passes, then timed passes until the median is known to within ``rel_precision``
    (see :func:`median_rel_halfwidth`) after at least ``min_repeats`` passes, or until
    ``max_repeats`` passes or ``max_seconds`` of timing, whichever comes first.

    Args:
        device_id: Name of this unit.
        supported_bits: Bit-widths the runtime accepts.
        threads: Threads the runtime computes with (>= 1).
        warmup: Untimed passes before timing.
        rel_precision: Target relative half-width of the 95 % CI of the median.
        max_seconds: Cap on the timed phase, in s (at least ``min_repeats`` passes
            are always timed).
        min_repeats, max_repeats: Bounds on the number of timed passes.
        seed: Seed of the timing (and any calibration) inputs.
        cache_size: Built models kept in memory, keyed by ``config.digest`` (LRU).
    """

    shared_resource = HOST_CPU

    def __init__(
        self,
        device_id: str,
        supported_bits: frozenset[int] | set[int],
        threads: int = 1,
        warmup: int = 3,
        rel_precision: float = 0.03,
        max_seconds: float = 10.0,
        min_repeats: int = 10,
        max_repeats: int = 200,
        seed: int = 0,
        cache_size: int = 4,
    ) -> None:
        super().__init__(device_id, supported_bits)
        if threads < 1 or warmup < 0 or cache_size < 1:
            raise ValueError(
                f"threads={threads} and cache_size={cache_size} must be >= 1 and "
                f"warmup={warmup} >= 0"
            )
        if not 1 <= min_repeats <= max_repeats or rel_precision <= 0 or max_seconds <= 0:
            raise ValueError(
                f"need 1 <= min_repeats ({min_repeats}) <= max_repeats ({max_repeats}), "
                f"rel_precision ({rel_precision}) > 0 and max_seconds ({max_seconds}) > 0"
            )
        self.threads = threads
        self.warmup = warmup
        self.rel_precision = rel_precision
        self.max_seconds = max_seconds
        self.min_repeats = min_repeats
        self.max_repeats = max_repeats
        self.seed = seed
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Built] = OrderedDict()

    @abstractmethod
    def build(self, config: CompressionConfig) -> Built:
        """Build ``config``'s model of the bound space for this runtime (uncached)."""

    @abstractmethod
    def forward(self, built: Built, x: torch.Tensor) -> Callable[[], object]:
        """A function that runs one forward pass of ``built`` on ``x`` (shape
        ``config.input_shape``), the thing that is timed."""

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Context in which the runtime computes with ``threads`` threads (default:
        nothing to do, for runtimes that fix their thread count when built)."""
        yield

    def bind(self, space: SearchSpace) -> None:
        """Bind to ``space`` and drop models built for a previously bound space."""
        super().bind(space)
        self._cache.clear()

    def built(self, config: CompressionConfig) -> Built:
        """The built model of ``config`` (from the cache, or built and cached).

        Raises:
            ValueError: if the device is not bound or ``config`` uses unsupported bits.
        """
        if self.space is None:
            raise ValueError(
                f"device {self.device_id!r} is not bound to a search space; call bind(space) "
                "before measure"
            )
        self.check(config)
        key = config.digest
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        built = on_host_thread(lambda: self.build(config))
        self._cache[key] = built
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return built

    def measure(self, config: CompressionConfig) -> Measurement:
        """Time batch-1 inference of ``config`` on this CPU; samples in ms.

        Raises:
            ValueError: if the device is not bound, or ``config`` has a bit-width the
                device does not support.
        """
        return on_host_thread(lambda: self._measure_here(config))

    def _measure_here(self, config: CompressionConfig) -> Measurement:
        x = torch.randn(config.input_shape, generator=torch.Generator().manual_seed(self.seed))
        run = self.forward(self.built(config), x)
        with self.pinned():
            samples = self._time(run)
        return Measurement(self.device_id, tuple(samples))

    def _time(self, run: Callable[[], object]) -> list[float]:
        samples: list[float] = []
        for _ in range(self.warmup):
            run()
        deadline = time.perf_counter() + self.max_seconds
        while len(samples) < self.max_repeats:
            start = time.perf_counter()
            run()
            samples.append((time.perf_counter() - start) * 1e3)
            precise = median_rel_halfwidth(samples) <= self.rel_precision
            if len(samples) >= self.min_repeats and (time.perf_counter() > deadline or precise):
                break
        return samples
