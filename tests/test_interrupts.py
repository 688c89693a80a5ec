"""A Ctrl-C swallowed by a library callback still stops the run (moo_compress.interrupts)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from distributed.utils import sync

from moo_compress.devices.simulated import SimulatedDevice
from moo_compress.devices.skus import JETSON_NANO
from moo_compress.dispatch import embedded_client
from moo_compress.interrupts import InterruptLatch
from moo_compress.run import main

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(autouse=True)
def sigint_as_in_a_terminal() -> Iterator[None]:
    """Python's own SIGINT handler for each test, as in a terminal: a test session
    started in the background by a script (``cmd &``) inherits an ignored SIGINT, which
    the latch rightly leaves alone, and every test here would fail for that reason."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def sigint_in_gc_callback() -> Iterator[None]:
    """Every collection of the main thread sends SIGINT from inside a gc callback, where
    Python's handler raises and the exception is only printed ("Exception ignored in
    ..."): the moment where a run interrupted beside dask.distributed's GC diagnosis
    lost its Ctrl-C."""

    def callback(phase: str, info: dict) -> None:
        if phase == "start" and threading.current_thread() is threading.main_thread():
            signal.raise_signal(signal.SIGINT)

    gc.callbacks.append(callback)
    try:
        yield
    finally:
        gc.callbacks.remove(callback)


def test_the_latch_raises_an_interrupt_that_a_gc_callback_swallowed() -> None:
    with InterruptLatch() as latch:
        latch.check()  # nothing yet
        with sigint_in_gc_callback():
            gc.collect()
        assert latch.interrupted
        with pytest.raises(KeyboardInterrupt):
            latch.check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_latch_raises_at_once_like_the_default_handler() -> None:
    with InterruptLatch(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_the_latch_leaves_an_ignored_sigint_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with InterruptLatch() as latch:
            signal.raise_signal(signal.SIGINT)
            latch.check()
            assert not latch.interrupted
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


class _Finalised:
    """Raises ``error()`` from its ``__del__``, where Python only reports it (through
    ``sys.unraisablehook``)."""

    def __init__(self, error: Callable[[], None]) -> None:
        self.error = error

    def __del__(self) -> None:
        self.error()


def _raise_value_error() -> None:
    raise ValueError("not an interrupt")


def test_an_interrupt_swallowed_by_a_finaliser_is_not_reported_but_other_errors_are(
    monkeypatch,
) -> None:
    """A Ctrl-C in a ``__del__`` (a distributed ``Future``'s, in a test run) is the
    latch's to raise again, not for the unraisable hook to print ("Exception ignored in
    ..." above "interrupted: ..."); any other exception there still reaches the hook."""
    reported: list[type[BaseException]] = []

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        reported.append(type(unraisable.exc_value))

    monkeypatch.setattr(sys, "unraisablehook", hook)
    with InterruptLatch() as latch:
        _Finalised(lambda: signal.raise_signal(signal.SIGINT))  # dropped at once
        _Finalised(_raise_value_error)
        assert latch.interrupted
        with pytest.raises(KeyboardInterrupt):
            latch.check()
    assert reported == [ValueError]
    assert sys.unraisablehook is hook


def test_the_latch_keeps_log_records_off_from_the_interrupt_to_its_exit(caplog) -> None:
    logger = logging.getLogger("tornado.application")
    with caplog.at_level(logging.ERROR):
        with InterruptLatch():
            logger.error("before the interrupt")
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
            logger.error("while the run shuts down")
        logger.error("after the latch")
    assert [r.getMessage() for r in caplog.records] == ["before the interrupt", "after the latch"]


def test_an_interrupt_of_a_dask_call_logs_no_loop_traceback(caplog) -> None:
    """Ctrl-C while the client waits in ``distributed.utils.sync`` and the loop has not
    started the call yet: distributed's cancel callback raises ``NameError`` on the
    loop, which tornado logs with a traceback (what a CI run printed above
    "interrupted: ...")."""
    device = SimulatedDevice("ctrl-c-device", JETSON_NANO)
    caplog.set_level(logging.ERROR)
    with embedded_client([device], n_workers=1) as client, InterruptLatch():
        client.loop.add_callback(time.sleep, 1.0)  # the loop is busy when the call comes
        # to the process, as Ctrl-C does: the main thread's wait is interrupted at once
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            sync(client.loop, asyncio.sleep, 5.0)
        time.sleep(1.5)  # the loop runs the cancel callback
    assert [r.getMessage() for r in caplog.records if r.name.startswith("tornado")] == []


def test_a_run_stops_on_an_interrupt_that_a_gc_callback_swallowed(tmp_path, capsys) -> None:
    """Without the latch every interrupt of this run is swallowed and it exits 0."""
    out = tmp_path / "run"
    with sigint_in_gc_callback():
        code = main([str(TINY), "--out", str(out), "--seed", "3", "--generations", "200"])
    assert code == 130
    assert "continue with:" in capsys.readouterr().err
