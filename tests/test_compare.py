"""benchmarks.compare: metrics on hand-made fronts, the reference on NB201, and the
command line's outputs. Protocol v2 itself is tested in test_protocol.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.compare.__main__ import COLUMNS, DIAGNOSTIC_COLUMNS, main
from benchmarks.compare.metrics import Scale, hypervolume, igd_plus, iso_accuracy_speedups, score
from benchmarks.compare.reference import load_reference
from benchmarks.compare.stats import mean_ci, paired
from benchmarks.compare.task import PROBLEMS, load_task

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"

BASELINE = np.array([0.1, 10.0, 20.0])
ORACLE = np.array([[0.1, 5.0, 10.0], [0.15, 3.0, 6.0]])


def test_metrics_of_the_oracle_itself():
    scores = score(ORACLE, ORACLE, ORACLE, BASELINE, tolerance=0.005)
    assert scores.hv_fraction == pytest.approx(1.0)
    assert scores.igd_plus == pytest.approx(0.0)
    assert (scores.avg_speedup, scores.worst_speedup) == (2.0, 2.0)


def test_metrics_of_a_dominated_front_by_hand():
    method = np.array([[0.12, 6.0, 12.0]])
    scale = Scale(BASELINE)
    # reference point (0.2, 1.1, 1.1); scaled oracle (0.1, .5, .5) and (.15, .3, .3):
    # boxes 0.1*.6*.6 + 0.05*.8*.8 - overlap 0.05*.6*.6 = 0.05; the method's 0.08*.5*.5
    assert hypervolume(ORACLE, scale) == pytest.approx(0.05)
    assert hypervolume(method, scale) == pytest.approx(0.02)
    expected_igd = (np.sqrt(0.02**2 + 0.1**2 + 0.1**2) + np.sqrt(0.3**2 + 0.3**2)) / 2
    assert igd_plus(method, ORACLE, scale) == pytest.approx(expected_igd)
    scores = score(method, method, ORACLE, BASELINE, tolerance=0.005)
    assert scores.hv_fraction == pytest.approx(0.4)
    # no row within 0.5 points: the baseline is deployed, speed-up 1
    assert (scores.avg_speedup, scores.worst_speedup) == (1.0, 1.0)
    assert score(method, method, ORACLE, BASELINE, tolerance=0.02).avg_speedup == pytest.approx(
        10 / 6
    )


def test_iso_accuracy_speedups_come_from_one_configuration():
    # row 0 has the best average, row 1 the best worst cluster: the user deploys one,
    # chosen by its reported worst-cluster ms (row 1), and both speed-ups are row 1's
    true = np.array([[0.1, 4.0, 16.0], [0.1, 8.0, 10.0]])
    avg, worst = iso_accuracy_speedups(true, true, BASELINE, tolerance=0.005)
    assert (avg, worst) == (10 / 8, 20 / 10)
    # chosen by what was reported: a method that believed row 0 was best deploys row 0
    believed = np.array([[0.1, 4.0, 9.0], [0.1, 8.0, 10.0]])
    assert iso_accuracy_speedups(believed, true, BASELINE, 0.005) == (10 / 4, 20 / 16)


def test_paired_statistics_by_hand():
    ours = np.array([0.90, 0.80, 0.70, 0.60, np.nan])
    other = np.array([0.80, 0.802, 0.75, 0.50, 0.9])
    result = paired(ours, other, higher_is_better=True, tie=0.005)
    # seed 1 differs by 0.002 <= 0.005: a tie; seed 4 has no value for ours: dropped
    assert (result.n, result.wins, result.ties, result.losses) == (4, 2, 1, 1)
    from scipy.stats import wilcoxon

    expected = wilcoxon(np.array([0.1, -0.002, -0.05, 0.1]), zero_method="zsplit").pvalue
    assert result.p == pytest.approx(expected)
    # lower is better: the same numbers flip
    flipped = paired(ours, other, higher_is_better=False, tie=0.005)
    assert (flipped.wins, flipped.losses) == (1, 2)
    assert paired(np.ones(5), np.ones(5), True, 0.0).p == 1.0
    mean, half = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)


def test_reference_on_nb201_is_the_exact_front_and_is_cached(tmp_path):
    if not (PROBLEMS / "nb201_fleet.py").is_file():
        pytest.skip("no NB201 problem file")
    from moo_compress.nb201 import data_dir, nb201_true_front

    if not data_dir().is_dir():
        pytest.skip(f"NB201 data not found at {data_dir()}")
    task = load_task("nb201_fleet", seed=0)
    reference = load_reference(task, tmp_path)
    assert reference.exact and not reference.cached
    truth = nb201_true_front(task.problem)
    X = reference.fronts["oracle"]
    assert {x.tobytes() for x in X} == {x.tobytes() for x in truth.X[truth.front]}
    again = load_reference(task, tmp_path)
    assert again.cached and len(list(tmp_path.glob("*.npz"))) == 1
    for name, front in reference.fronts.items():
        assert np.array_equal(front, again.fronts[name])
    # the floors are 2-objective fronts of the same space, scored on the fleet
    macs_front = reference.fronts["oracle_macs"]
    assert len(macs_front) >= 2 and not np.array_equal(macs_front, X)


def test_outputs_have_the_documented_columns(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(
        [
            "--problem",
            str(TINY),
            "--methods",
            "flops,random,oracle,oracle_nominal",
            "--quick",
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    assert tuple(results.columns) == COLUMNS
    assert list(results["method"]) == ["flops", "random", "oracle", "oracle_nominal"]
    assert results["hv_fraction"].between(0, 1.0 + 1e-9).all()
    assert (results["worst_regret_1pt"] >= 1.0 - 1e-9).all()
    measured = results[results["method"].isin(["flops", "random"])]
    assert (measured["reported"] <= 16).all() and (measured["unverified"] == 0).all()
    assert results.loc[results["method"] == "oracle", "measurements"].isna().all()
    table = (out / "table.md").read_text()
    assert "| row | hv_fraction | ours W/T/L, p |" in table
    assert "| random |" in table and "| ours |" not in table
    assert "Worst-cluster deployment regret" in table and "Anytime" in table
    diagnostics = pd.read_csv(out / "diagnostics.csv")
    assert tuple(diagnostics.columns) == DIAGNOSTIC_COLUMNS and len(diagnostics) == 1
    assert diagnostics["kind"].iloc[0] in ("test", "control")
    assert "**Fleet diagnostics**" in table
    # runs made in parallel combine into one table; a later part's row replaces an
    # earlier one of the same problem, method and seed
    merged = tmp_path / "merged"
    assert main(["merge", f"{out},{out}", "--out", str(merged)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(merged / "results.csv"), results)
    table = (merged / "table.md").read_text()
    assert "| random |" in table and "- Seeds: 0-0 (1, fewer than the default 10)." in table
    assert main(["merge", str(tmp_path / "nothing"), "--out", str(merged)]) == 2
    # --publish FILE writes the table to FILE, headed by the command of each part
    published = tmp_path / "RESULTS_TINY.md"
    assert main(["merge", f"{out},{out}", "--out", str(merged), "--publish", str(published)]) == 0
    text = published.read_text()
    assert text.startswith("# Comparison results\n\nProduced by:\n\n- `python -m benchmarks")
    assert text.count("--methods flops,random,oracle,oracle_nominal") == 2
    assert "4 rows of earlier parts were replaced" in text and text.endswith(table)


def test_parallel_units_give_the_numbers_of_one_process(tmp_path, capfd):
    """--jobs runs each (problem, seed) unit in its own process: the scores, costs and
    row order are those of --jobs 1 (wall times aside), and the worker processes are as
    quiet as the runner (no library warning on their imports)."""
    frames = []
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        argv = ["--problem", str(TINY), "--methods", "flops,random,oracle", "--quick"]
        argv += ["--seeds", "2", "--jobs", str(jobs), "--out", str(out)]
        assert main([*argv, "--cache", str(tmp_path / f"cache{jobs}")]) == 0
        frames.append(pd.read_csv(out / "results.csv").drop(columns="wall_s"))
        info = json.loads((out / "info.json").read_text())
        assert info["jobs"] == jobs and info["cpu_s"] > 0
    assert list(frames[1]["seed"]) == [0, 0, 0, 1, 1, 1]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert "Warning" not in capfd.readouterr().err


def test_unknown_method_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["--problem", str(TINY), "--methods", "ours,bogus", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "bogus" in err and "allowed" in err


def test_fewer_than_ten_seeds_needs_quick_or_a_stated_exception(tmp_path, capsys):
    code = main(["--problem", str(TINY), "--seeds", "3", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--seeds 3 is not allowed" in err and ">= 10" in err
    code = main(["--problem", str(TINY), "--seeds-for", "other=3", "--out", str(tmp_path)])
    assert code == 2 and "--seeds-for" in capsys.readouterr().err


def test_standin_evaluations_are_cached(tmp_path, monkeypatch):
    first = load_task(str(TINY), seed=3, cache=tmp_path)
    assert first.standin is not None and len(list(tmp_path.glob("standin-*.npy"))) == 1
    X = first.random_configs(np.random.default_rng(1), 5)

    def no_evaluation(self, x):
        raise AssertionError("the cached stand-in evaluated a configuration again")

    monkeypatch.setattr(type(first), "_evaluate", no_evaluation)
    again = load_task(str(TINY), seed=3, cache=tmp_path)
    assert np.array_equal(first.accuracy(X), again.accuracy(X))
