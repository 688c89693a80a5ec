r"""Model refits in spawned processes, the same bit for bit as in this one.

A ``FitPool`` keeps ``processes`` spawned worker processes, each on one torch and one
BLAS/OpenMP thread, as a search runs its own fits (``surrogates.gp_surrogate.
single_threaded`` and ``moo_compress.threads.pinned_threads``). ``refit(model)`` pickles
the model (its data and its last fit), calls its ``refit()`` in a worker and returns a
future of the refitted copy. On the same machine and software the copy is identical to
a refit in this process: same code, one thread, and the fit's own torch seed
(``surrogates.gp_surrogate.fit_model``). ``tests/test_fit_pool.py`` checks that.

The workers start in the background when the pool is made, so that their imports
(2 to 5 s of CPU) can overlap the caller's work; ``wait_started`` waits for them. They
start with the warning filters the caller had when it made the pool (a spawned process
does not inherit them), so that a library warning the caller silenced (gpytorch's
``torch.jit.script`` notice on import, say) stays silent there too. They ignore SIGINT:
a Ctrl-C is the caller's to handle, and the caller closes the pool. A worker whose
parent has ended (killed with SIGKILL, say) ends within ``PARENT_POLL_S``. Like every
spawned process, a worker imports the parent's ``__main__`` module first: a script that
makes a pool must guard its work with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import threading
import time
import warnings
from concurrent.futures import Future, ProcessPoolExecutor, wait
from typing import Protocol, TypeVar

import torch
from threadpoolctl import threadpool_limits


class Refittable(Protocol):
    def refit(self) -> None: ...


M = TypeVar("M", bound=Refittable)

_limits: list[threadpool_limits] = []  # a worker's BLAS limit, kept alive

PARENT_POLL_S = 1.0
"""How often a worker checks that the process that started it still runs, in s."""


WarningFilter = tuple[str, str, type[Warning], str, int]
"""Arguments of ``warnings.filterwarnings``: action, message regex, category, module
regex, line number."""


def _warning_filters() -> list[WarningFilter]:
    """This process's warning filters, highest precedence first, as
    ``warnings.filterwarnings`` arguments (those whose category a worker can import;
    a filter's regexes are compiled or plain strings)."""
    return [
        (action, _pattern(message), category, _pattern(module), line)
        for action, message, category, module, line in warnings.filters
        if category.__module__ != "__main__"
    ]


def _pattern(regex: re.Pattern | str | None) -> str:
    return getattr(regex, "pattern", regex) or ""


def _start_worker(parent: int, filters: list[WarningFilter]) -> None:
    for action, message, category, module, line in reversed(filters):
        warnings.filterwarnings(action, message, category, module, line)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    _limits.append(threadpool_limits(limits=1))
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """End this worker once ``parent`` has ended (a parent killed with SIGKILL cannot
    stop its workers, and they would otherwise wait for work for ever)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


def _refitted(model: M) -> M:
    model.refit()
    return model


class FitPool:
    r"""``processes`` spawned processes that refit picklable models.

    Attributes:
        processes: Number of worker processes ``>= 1``.
    """

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"a FitPool needs processes >= 1, got {processes}")
        self.processes = processes
        self._executor = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(), _warning_filters()),
        )
        self._started = [self._executor.submit(int) for _ in range(processes)]

    def wait_started(self) -> None:
        r"""Return once every worker has started (its imports done), or died."""
        wait(self._started)

    def refit(self, model: M) -> Future[M]:
        r"""A future of ``model`` refitted in a worker (``model`` itself is not changed).

        Its ``result()`` raises what the refit raised, or
        ``concurrent.futures.process.BrokenProcessPool`` if a worker died."""
        return self._executor.submit(_refitted, model)

    def close(self) -> None:
        r"""Stop the workers; refits not yet started are cancelled."""
        self._executor.shutdown(wait=True, cancel_futures=True)
