"""python -m moo_compress.export: any row of a finished run, one-line errors, exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from moo_compress.export import main
from moo_compress.run import main as run_main

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export-cli") / "run"
    assert run_main([str(TINY), "--out", str(out), "--seed", "3"]) == 0
    return out


def test_row_exported_in_one_format(finished_run, tmp_path, capsys):
    target = tmp_path / "row0"
    assert main([str(finished_run), "--row", "0", "--format", "onnx", "--out", str(target)]) == 0
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "export.json", "model.onnx"]
    report = json.loads((target / "export.json").read_text())
    assert report["onnx"]["top1_agreement"] >= 0.99 and report["onnx"]["opset"] >= 21
    assert "row 0: wrote" in capsys.readouterr().out


def test_knee_by_default_in_every_format(finished_run, tmp_path):
    target = tmp_path / "knee"
    assert main([str(finished_run), "--out", str(target)]) == 0
    names = {p.name for p in target.iterdir()}
    assert {"config.json", "state_dict.pt", "model.pt2", "model.onnx", "export.json"} <= names
    summary = json.loads((finished_run / "summary.json").read_text())
    knee = (finished_run / "knee" / "config.json").read_text()
    assert (target / "config.json").read_text() == knee and summary["knee_row"] is not None


def test_formats_add_up_and_another_row_replaces_the_folder(finished_run, tmp_path):
    target = tmp_path / "one"
    for fmt in ("onnx", "state_dict"):
        assert main([str(finished_run), "--row", "0", "--format", fmt, "--out", str(target)]) == 0
    report = json.loads((target / "export.json").read_text())
    assert {"onnx", "state_dict"} <= set(report) and report["errors"] == {}
    assert {"model.onnx", "state_dict.pt"} <= {p.name for p in target.iterdir()}
    assert main([str(finished_run), "--row", "1", "--format", "pt2", "--out", str(target)]) == 0
    names = sorted(p.name for p in target.iterdir())
    assert names == ["config.json", "export.json", "model.pt2"]  # no file of row 0 is left
    report = json.loads((target / "export.json").read_text())
    assert set(report) == {"config_digest", "errors", "pt2"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--row", "999"], "has no row 999; allowed: 0.."),
        (["--row", "-1"], "argument --row: -1 is not allowed"),
        (["--format", "tflite"], "argument --format: invalid choice: 'tflite'"),
    ],
)
def test_bad_row_or_format_is_one_line_exit_2(finished_run, args, message, capsys):
    assert main([str(finished_run), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_not_a_run_and_unwritable_target_are_one_line_exit_2(finished_run, tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "is not a finished run: summary.json is missing" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        # root ignores permissions; /proc refuses new folders even to root
        writable = os.access(locked, os.W_OK)
        target = Path("/proc/no-such-folder") if writable else locked / "out"
        assert main([str(finished_run), "--out", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert "is not writable" in err and len(err.splitlines()) == 1
    finally:
        locked.chmod(0o700)
