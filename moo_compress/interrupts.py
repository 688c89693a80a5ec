"""Ctrl-C that a run does not lose.

Python's default SIGINT handler raises ``KeyboardInterrupt`` in whatever code runs at
that moment. Where that code is a callback whose exceptions Python only prints
("Exception ignored in ..."), the interrupt is lost and the run goes on: a ``gc``
callback (dask.distributed's GC diagnosis registers one in every process that runs an
embedded scheduler or worker), a ``__del__`` method, a weakref finaliser. A test saw a
run interrupted that way finish all its generations and exit 0.

:class:`InterruptLatch` remembers every SIGINT, raises ``KeyboardInterrupt`` at once as
the default handler does, and raises it again from :meth:`InterruptLatch.check`, which
the runner calls at its safe points (after every generation), so an interrupt lost
in such a callback stops the run one generation later.

Such a swallowed interrupt is not printed either: while the latch is installed, its
``sys.unraisablehook`` drops a ``KeyboardInterrupt`` that it has recorded ("Exception
ignored in: <function Future.__del__ ...>" and its traceback had preceded the runner's
"interrupted: ..." in a test) and passes every other exception to the previous hook.
From the first SIGINT until the latch exits, no log record is emitted
(:func:`logging.disable`): the run is shutting down, and the libraries it interrupts
log errors of their own shutdown. distributed 2026.8, interrupted while the client
waits in ``distributed.utils.sync`` before the loop has started the call, runs a
cancel callback that raises ``NameError`` on the loop thread, and tornado logs it as
"Exception in callback ..." with a traceback above the runner's one-line
"interrupted: ..." (a CI run saw it).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType


class InterruptLatch:
    """A SIGINT handler that remembers the interrupt until the run stops.

    Installed on ``__enter__`` and the previous handler restored on ``__exit__``; not
    installed outside the main thread (Python allows signal handlers only there) nor
    where SIGINT is ignored (a job started with ``&`` from a script), where the latch
    does nothing. Logging, disabled at the first SIGINT, is enabled again on
    ``__exit__``."""

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: Callable[[int, FrameType | None], object] | int | None = None
        self._installed = False
        self._logging_before: int | None = None  # logging.disable level before SIGINT
        self._previous_hook: Callable[[sys.UnraisableHookArgs], object] | None = None

    def __enter__(self) -> InterruptLatch:
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._previous_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
            self._installed = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            previous = signal.SIG_DFL if self._previous is None else self._previous
            signal.signal(signal.SIGINT, previous)
            sys.unraisablehook = self._previous_hook
            self._installed = False
        if self._logging_before is not None:
            logging.disable(self._logging_before)
            self._logging_before = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True
        if self._logging_before is None:
            self._logging_before = logging.root.manager.disable
            logging.disable(logging.CRITICAL)
        raise KeyboardInterrupt

    def _unraisable(self, unraisable: sys.UnraisableHookArgs) -> None:
        if not (self.interrupted and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            self._previous_hook(unraisable)

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a SIGINT arrived since ``__enter__`` (whether or
        not the first one reached the run)."""
        if self.interrupted:
            raise KeyboardInterrupt
