"""Bad input, tried systematically: one clear line, exit code 2, nothing lost."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from moo_compress import manifest
from moo_compress.cli import UsageError, parse_args
from moo_compress.config import CompressionConfig
from moo_compress.run import main
from moo_compress.search_settings import SearchSettings
from moo_compress.store import SCHEMA_VERSION, MeasurementStore

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"
OPTIONS = [
    "--out",
    "--seed",
    "--budget",
    "--accuracy-budget",
    "--generations",
    "--pop-size",
    "--no-transfer",
    "--resume",
    "--scheduler",
    "--tls-ca-file",
    "--tls-cert",
    "--tls-key",
]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(OPTIONS), st.text(max_size=12)), max_size=6))
def test_fuzzed_options_parse_or_give_a_usage_error(argv):
    try:
        parse_args(argv)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
    except SystemExit as exc:  # --help (or an abbreviation of it)
        assert exc.code == 0


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["input_shape", "channels", "bits", "ratios", "x"]),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=8,
        ).map(json.dumps),
    )
)
def test_fuzzed_config_json_decodes_or_raises_value_error(text):
    try:
        config = CompressionConfig.from_json(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert CompressionConfig.from_json(config.to_json()) == config


@pytest.fixture(scope="module")
def space():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_for_bad_input", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyFleet(seed=3).space


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_decision_vectors_decode_or_raise_value_error(space, data):
    dtype = data.draw(st.sampled_from([np.int64, np.float64, np.bool_, np.str_]))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=space.n_var + 1))
    x = data.draw(hnp.arrays(dtype, shape))
    try:
        config = space.decode(x)
    except ValueError as exc:
        assert str(exc)
    else:
        assert space.decode(space.encode(config)) == config


def _problem_file(tmp_path: Path, space_options: str) -> Path:
    path = tmp_path / "opts.py"
    path.write_text(
        TINY.read_text().replace(
            'space_options = {"bit_widths": (8, 16, 32), "channel_multiple": 4}',
            f"space_options = {space_options}",
        )
    )
    return path


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('{"bit_widths": "8"}', "bit_widths='8' is not allowed"),
        ('{"channel_multiple": 2.5}', "channel_multiple=2.5 is not allowed"),
        ('{"ratios": [0.5, 0.1]}', "ratios=[0.5, 0.1] is not allowed"),
        ('{"granularity": 3}', "granularity=3 is not allowed"),
        ('{"frobnicate": 1}', "space_options: "),
        ("[1, 2]", "space_options = [1, 2] is not allowed; allowed: a dict"),
    ],
)
def test_search_space_options_of_the_wrong_type(tmp_path, capsys, options, message):
    assert main([str(_problem_file(tmp_path, options)), "--out", str(tmp_path / "o")]) == 2
    assert message in _one_line(capsys)


def _tiny_manifest(seed: int = 3) -> str:
    """The manifest JSON a new ``tiny_fleet --seed 3`` run writes."""
    spec = importlib.util.spec_from_file_location("tiny_for_manifest", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    problem = module.TinyFleet(seed=seed)
    settings = SearchSettings(budget=80, accuracy_budget=24, pop_size=8, generations=3, seed=seed)
    connection = {"scheduler": None, "tls_ca_file": None, "tls_cert": None, "tls_key": None}
    return manifest.new_manifest(
        problem, TINY, settings, {**connection, "insecure": False}, 0, manifest.identity(problem)
    ).to_json()


def test_store_of_another_problem_or_version_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with MeasurementStore(out / "measurements.sqlite", "other:123", "x") as store:
        pass
    assert main([str(TINY), "--out", str(out), "--seed", "3", "--resume"]) == 2
    assert "has no run manifest" in _one_line(capsys)
    with MeasurementStore(out / "measurements.sqlite", "other:123", "x") as store:
        store.write_meta(manifest.MANIFEST_KEY, _tiny_manifest())
    assert main([str(TINY), "--out", str(out), "--seed", "3", "--resume"]) == 2
    assert "problem is 'other:123', expected 'tiny_fleet:" in _one_line(capsys)
    with sqlite3.connect(out / "measurements.sqlite") as db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    assert main([str(TINY), "--out", str(out), "--seed", "3", "--resume"]) == 2
    assert f"schema_version is '999', expected '{SCHEMA_VERSION}'" in _one_line(capsys)


def test_read_only_output_folder(tmp_path, capsys, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)  # chmod does not stop root
    assert main([str(TINY), "--out", str(tmp_path / "ro")]) == 2
    assert "is not writable: Permission denied" in _one_line(capsys)


def test_full_disk_stops_with_one_line_and_keeps_what_was_committed(tmp_path, capsys, monkeypatch):
    original = MeasurementStore.add
    calls = []

    def add(self, record):
        calls.append(record)
        if len(calls) > 10:
            raise sqlite3.OperationalError("database or disk is full")
        return original(self, record)

    monkeypatch.setattr(MeasurementStore, "add", add)
    out = tmp_path / "full"
    assert main([str(TINY), "--out", str(out), "--seed", "3"]) == 2
    err = _one_line(capsys)
    assert "database or disk is full" in err and "10 measurements are saved" in err
    with sqlite3.connect(out / "measurements.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 10


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"\x80\x04garbage"])
def test_corrupt_weights_file_is_one_line(tmp_path, capsys, monkeypatch, content):
    """``MOO_COMPRESS_RESNET50_WEIGHTS`` naming a damaged file: one line naming the file,
    exit code 2, before any measurement (and no output folder left behind)."""
    weights = tmp_path / "resnet50.pth"
    weights.write_bytes(content)
    monkeypatch.setenv("MOO_COMPRESS_RESNET50_WEIGHTS", str(weights))
    problem = Path(__file__).parents[1] / "problems" / "resnet50_hdap.py"
    out = tmp_path / "run"
    assert main([str(problem), "--out", str(out)]) == 2
    err = _one_line(capsys)
    assert f"weights file {str(weights)!r} is not a readable PyTorch state dict" in err
    assert not out.exists()


def test_imagenet_folder_without_weights_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MOO_COMPRESS_RESNET50_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))  # no hub-cache copy
    monkeypatch.setenv("MOO_COMPRESS_IMAGENET_VAL", str(tmp_path))
    problem = Path(__file__).parents[1] / "problems" / "resnet50_hdap.py"
    assert main([str(problem), "--out", str(tmp_path / "run")]) == 2
    assert "MOO_COMPRESS_IMAGENET_VAL needs pretrained weights" in _one_line(capsys)


def test_an_index_beyond_int64_is_out_of_range_without_a_cast_warning(space):
    x = np.zeros(space.n_var)
    x[0] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered in cast"
        with pytest.raises(ValueError, match=r"out of range; allowed 0\.\."):
            space.check(x)
