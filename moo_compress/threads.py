"""Thread settings under which a run's numbers are the same on every machine.

torch's intra-op thread count changes the order of floating-point sums, and with it the
numbers: the ResNet50 fidelity of one configuration differed by up to 1e-3 between one
and two intra-op threads (``resnet50_hdap``, six random configurations, 2026-12-02). So
every model evaluation runs on one intra-op thread (:func:`pinned_threads`), and a batch
of evaluations uses a machine's cores by running :func:`evaluation_workers` of them at
once, each on one thread: the same numbers whatever the machine's default, and on the
2-core machine faster than one evaluation at a time on two threads (six ResNet50
fidelity evaluations: 5.1-5.3 s against 6.0-6.7 s; ``python -m
benchmarks.accuracy_workers``).

The latency and accuracy GPs pin torch alone, with ``surrogates.gp_surrogate.
single_threaded``: they run in the search's own thread only, and their predictions
enter it thousands of times a run, each in about a microsecond, where
:func:`pinned_threads` takes 1.7 ms (it sets the BLAS pools too).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits

MAX_WORKERS = 8
"""Most evaluations :func:`evaluation_workers` runs at once (each holds a model copy)."""

_lock = threading.Lock()
_pins: list[int] = []  # the thread count of every block inside pinned_threads now
_restore: list = []  # torch's setting and the BLAS limiter, while any block is inside


@contextmanager
def pinned_threads(n: int = 1) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads and ``n`` BLAS/OpenMP threads.

    Blocks may run at once in several threads: the first to enter saves the settings,
    every one sets them for its own thread (OpenMP keeps a count per thread; threads
    started meanwhile start with it), and the last to leave restores them, for its own
    thread and threads started later. A thread that starts pinned work in other threads
    therefore holds a pin itself until that work ends (as
    :class:`~moo_compress.session.MeasurementSession` does).

    Raises:
        ValueError: for ``n < 1``, or a block asking for another ``n`` than the blocks
            already inside.
    """
    if n < 1:
        raise ValueError(f"pinned_threads needs n >= 1, got {n}")
    with _lock:
        if _pins and _pins[0] != n:
            raise ValueError(f"threads are pinned to {_pins[0]} already; asked for {n}")
        if not _pins:
            _restore[:] = [torch.get_num_threads(), threadpool_limits(limits=n)]
        _pins.append(n)
        torch.set_num_threads(n)
    try:
        yield
    finally:
        with _lock:
            _pins.pop()
            if not _pins:
                threads, limiter = _restore
                limiter.restore_original_limits()
                torch.set_num_threads(threads)
                _restore.clear()


def evaluation_workers() -> int:
    """How many model evaluations to run at once: the cores this process may use, at
    most :data:`MAX_WORKERS`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_WORKERS, cores or 1))
