"""benchmarks.compare: metrics on hand-made fronts, every method on a tiny problem
within its budget, the oracle on NB201, and the documented output columns."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.compare.__main__ import COLUMNS, METRICS, main
from benchmarks.compare.methods import METHODS
from benchmarks.compare.metrics import Scale, hypervolume, igd_plus, score
from benchmarks.compare.task import PROBLEMS, load_task

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"

BASELINE = np.array([0.1, 10.0, 20.0])
ORACLE = np.array([[0.1, 5.0, 10.0], [0.15, 3.0, 6.0]])


def test_metrics_of_the_oracle_itself():
    scores = score(ORACLE, ORACLE, BASELINE, tolerance=0.005)
    assert scores.hv_fraction == pytest.approx(1.0)
    assert scores.igd_plus == pytest.approx(0.0)
    assert (scores.avg_speedup, scores.worst_speedup) == (2.0, 2.0)
    assert scores.front_size == 2


def test_metrics_of_a_dominated_front_by_hand():
    method = np.array([[0.12, 6.0, 12.0]])
    scale = Scale(BASELINE)
    # reference point (0.2, 1.1, 1.1); scaled oracle (0.1, .5, .5) and (.15, .3, .3):
    # boxes 0.1*.6*.6 + 0.05*.8*.8 - overlap 0.05*.6*.6 = 0.05; the method's 0.08*.5*.5
    assert hypervolume(ORACLE, scale) == pytest.approx(0.05)
    assert hypervolume(method, scale) == pytest.approx(0.02)
    expected_igd = (np.sqrt(0.02**2 + 0.1**2 + 0.1**2) + np.sqrt(0.3**2 + 0.3**2)) / 2
    assert igd_plus(method, ORACLE, scale) == pytest.approx(expected_igd)
    scores = score(method, ORACLE, BASELINE, tolerance=0.005)
    assert scores.hv_fraction == pytest.approx(0.4)
    assert np.isnan(scores.avg_speedup) and np.isnan(scores.worst_speedup)
    assert score(method, ORACLE, BASELINE, tolerance=0.02).avg_speedup == pytest.approx(10 / 6)


@pytest.fixture(scope="module")
def tiny_task():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the compare CLI runs them
    task = load_task(str(TINY), seed=3)
    task.problem.generations = 2
    task.budget = 48  # ours needs 42 here: initial design and final front on 2 clusters
    yield task
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", [m for m in METHODS if m != "hdap_5000"])
def test_each_method_runs_within_its_budget(tiny_task, name):
    result = METHODS[name](tiny_task, 0)
    space = tiny_task.problem.space
    assert len(result.X) >= 1 and result.X.shape[1] == space.n_var
    assert np.all(space.xl <= result.X) and np.all(space.xu >= result.X)
    limit = 0 if name in ("oracle", "flops") else tiny_task.budget
    assert 0 <= result.measurements <= limit
    if name not in ("oracle", "flops"):
        assert result.measurements > 0 and result.device_seconds > 0


def test_hdap_paper_variant_measures_its_own_sample_count(tiny_task, monkeypatch):
    hdap = importlib.import_module("benchmarks.compare.methods.hdap")
    monkeypatch.setattr(hdap, "PAPER_SAMPLES", 30)
    result = METHODS["hdap_5000"](tiny_task, 0)
    representatives = hdap.cluster_devices(
        tiny_task.fleet_devices(), tiny_task.decode(tiny_task.problem.baseline()), 0
    )
    assert result.measurements == 30 * len(representatives)


def test_oracle_on_nb201_is_the_exact_front():
    if not (PROBLEMS / "nb201_fleet.py").is_file():
        pytest.skip("no NB201 problem file")
    from moo_compress.nb201 import data_dir, nb201_true_front

    if not data_dir().is_dir():
        pytest.skip(f"NB201 data not found at {data_dir()}")
    task = load_task("nb201_fleet", seed=0)
    X = METHODS["oracle"](task, 0).X
    truth = nb201_true_front(task.problem)
    assert {x.tobytes() for x in X} == {x.tobytes() for x in truth.X[truth.front]}


def test_outputs_have_the_documented_columns(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["--problem", str(TINY), "--methods", "flops,random", "--quick", "--out", str(out)])
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    assert tuple(results.columns) == COLUMNS
    assert list(results["method"]) == ["flops", "random"]
    assert results["hv_fraction"].between(0, 1.0 + 1e-9).all()
    table = (out / "table.md").read_text()
    assert "| " + " | ".join(["method", *METRICS]) + " |" in table
    assert "ours" not in table and "| random |" in table


def test_unknown_method_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["--problem", str(TINY), "--methods", "ours,bogus", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "bogus" in err and "allowed" in err
