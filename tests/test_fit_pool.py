"""Fits in spawned processes are the fits of this process, bit for bit."""

from __future__ import annotations

import copy
import functools
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from surrogates.fit_pool import PARENT_POLL_S, FitPool
from surrogates.fleet_gp import FleetGP
from surrogates.transfer_switch import TransferSwitch


def _data(n: int = 36, d: int = 4, k: int = 3, seed: int = 0):
    """``(X, [(cluster, rows)], y_ms)``: a shared function, affine per cluster."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, d))
    f = np.sin(3 * X[:, 0]) + X[:, 1] ** 2
    y = np.exp(np.column_stack([1 + 0.5 * c + (1 + 0.2 * c) * f for c in range(k)]))
    y *= np.exp(0.03 * rng.standard_normal(y.shape))
    return X, [(c, rng.choice(n, n // 2, replace=False)) for c in range(k)], y


def _filled(model):
    X, rows, y = _data()
    for c, idx in rows:
        model.add(c, X[idx], y[idx, c])
    return model


def _same_predictions(a, b) -> bool:
    X = np.random.default_rng(1).uniform(size=(20, 4))
    (ma, sa), (mb, sb) = a.predict_log(X), b.predict_log(X)
    return np.array_equal(ma, mb) and np.array_equal(sa, sb)


def test_a_model_refitted_in_the_pool_is_the_model_refitted_here():
    here = _filled(FleetGP(3, structure="calibrated", maxiter=30))
    sent = copy.deepcopy(here)
    pool = FitPool(1)
    try:
        there = pool.refit(sent).result()
    finally:
        pool.close()
    here.refit()
    assert sent.is_stale and not there.is_stale  # the pool returned a refitted copy
    assert there.loo_score() == here.loo_score()
    assert _same_predictions(here, there)


def test_workers_keep_the_warning_filters_of_the_process_that_made_the_pool():
    # a worker is spawned, so it would start with Python's default filters
    warns = SimpleNamespace(refit=functools.partial(warnings.warn, "probe", UserWarning))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="probe", category=UserWarning)
        pool = FitPool(1)
    try:
        with pytest.raises(UserWarning, match="probe"):
            pool.refit(warns).result()
    finally:
        pool.close()


def _twice(switch: TransferSwitch) -> TransferSwitch:
    """Two comparisons (``regrow=1``): a pool starts at the first, serves the second."""
    switch.refit()
    switch.refit()
    return switch


def test_a_switch_with_fit_processes_chooses_and_predicts_as_one_without():
    alone = _twice(_filled(TransferSwitch(3, maxiter=30, regrow=1)))
    pooled = _filled(TransferSwitch(3, maxiter=30, regrow=1, fit_processes=1, parallel_from=0))
    try:
        pooled.refit()  # starts the pool, fits every structure here, waits for the pool
        pool = pooled._pool
        assert pool is not None and all(f.done() for f in pool._started)
        before = dict(pooled.models)
        pooled.refit()  # structure 1 of 3 in the pool, 0 and 2 here
        assert [pooled.models[s] is before[s] for s in pooled.structures] == [True, False, True]
        assert pooled.evidence == alone.evidence
        assert _same_predictions(pooled, alone)
        frozen = copy.deepcopy(pooled)  # as the search freezes its model at the end
        assert frozen._pool is None and frozen.fit_processes == 0
        assert _same_predictions(frozen, alone)
    finally:
        pooled.close()
    assert pooled._pool is None


def test_a_dead_fit_process_costs_a_warning_not_the_comparison():
    alone = _twice(_filled(TransferSwitch(3, maxiter=30, regrow=1)))
    pooled = _filled(TransferSwitch(3, maxiter=30, regrow=1, fit_processes=1, parallel_from=0))
    try:
        pooled.refit()
        pool = pooled._pool
        pool.refit(FleetGP(3)).exception()  # a no-data refit: its error comes back ...
        (pid,) = pool._executor._processes  # ... and the worker lives on; now kill it
        os.kill(pid, signal.SIGKILL)
        with pytest.warns(RuntimeWarning, match="a fit process died"):
            pooled.refit()
        assert pooled._pool is None and pooled.fit_processes == 0
        assert pooled.evidence == alone.evidence
        assert _same_predictions(pooled, alone)
    finally:
        pooled.close()


PARENT = """
from surrogates.fit_pool import PARENT_POLL_S, FitPool

if __name__ == "__main__":
    pool = FitPool(1)
    pool.refit(None).exception()  # the worker runs (refitting None fails there)
    (pid,) = pool._executor._processes
    print(pid, flush=True)
    input()  # wait to be killed
"""


def test_workers_end_when_their_parent_is_killed(tmp_path):
    """SIGKILL gives the parent no chance to stop its workers: they must notice."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    root = Path(__file__).resolve().parent.parent
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        worker = int(parent.stdout.readline())
        os.kill(worker, 0)  # alive
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10 * PARENT_POLL_S + 5
    while time.monotonic() < deadline and _alive(worker):
        time.sleep(0.2)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.is_file() and "zombie" in status.read_text())


def test_the_processes_start_only_for_data_worth_them():
    switch = TransferSwitch(3, maxiter=30, regrow=1, fit_processes=1, parallel_from=80)
    X, rows, y = _data(n=160)
    try:
        (c, idx), *_ = rows
        switch.add(c, X[idx[:79]], y[idx[:79], c])
        switch.refit()  # a comparison at 79 points
        assert switch._pool is None
        switch.add(c, X[idx[79:80]], y[idx[79:80], c])
        switch.refit()  # at 80
        assert switch._pool is not None
    finally:
        switch.close()


def test_pool_sizes_below_one_are_refused():
    with pytest.raises(ValueError, match="processes >= 1"):
        FitPool(0)
    with pytest.raises(ValueError, match="fit_processes >= 0"):
        TransferSwitch(3, fit_processes=-1)
    assert TransferSwitch(3, fit_processes=5).fit_processes == 2  # one per other structure
