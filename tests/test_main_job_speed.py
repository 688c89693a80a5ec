"""The main-job speed benchmark reads a finished run's times and judges only the main job."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.main_job_speed import timing_of, verdict


def _run_folder(tmp_path: Path, select_max: float) -> Path:
    summary = {
        "wall_seconds": 95.0,
        "acquisition": {
            "round_seconds": {
                "select_s": {"mean": 0.5, "max": select_max},
                "refit_s": {"mean": 2.0, "max": 7.0},
            }
        },
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "front.csv").write_text("fidelity,avg_latency_ms\n1.0,21.5\n")
    return tmp_path


def test_times_come_from_the_command_and_the_summary(tmp_path: Path) -> None:
    timing = timing_of(_run_folder(tmp_path, 1.5), 110.0, 0.2, 1.9)
    assert (timing.wall_s, timing.front_s) == (110.0, 95.0)
    assert (timing.select_mean_s, timing.select_max_s, timing.refit_mean_s) == (0.5, 1.5, 2.0)
    assert len(timing.front_digest) == 12
    assert "110.0" in timing.row() and "1.50" in timing.row()


def test_the_targets_are_judged_for_the_main_job_only(tmp_path: Path) -> None:
    fast = timing_of(_run_folder(tmp_path, 1.5), 110.0, 0.2, 1.9)
    slow = timing_of(_run_folder(tmp_path, 2.5), 130.0, 0.2, 1.9)
    assert "target: met" in verdict([fast, slow], default=True)
    assert "2.50 s against 2 s: missed" in verdict([fast, slow], default=True)
    assert "target: missed" in verdict([slow], default=True)
    assert "not judged" in verdict([fast], default=False)
    assert "1 distinct front(s)" in verdict([fast, slow], default=True)
