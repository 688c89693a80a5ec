"""A Ctrl-C swallowed by a library callback still stops the run (moo_compress.interrupts)."""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from moo_compress.interrupts import InterruptLatch
from moo_compress.run import main

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


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


def test_a_run_stops_on_an_interrupt_that_a_gc_callback_swallowed(tmp_path, capsys) -> None:
    """Without the latch every interrupt of this run is swallowed and it exits 0."""
    out = tmp_path / "run"
    with sigint_in_gc_callback():
        code = main([str(TINY), "--out", str(out), "--seed", "3", "--generations", "200"])
    assert code == 130
    assert "continue with:" in capsys.readouterr().err
