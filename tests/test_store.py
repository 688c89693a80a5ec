"""Tests of moo_compress.store.MeasurementStore."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from moo_compress.store import SCHEMA_VERSION, MeasurementStore, Record, config_hash

PROBLEM = "resnet18-cifar10/space-v1"
CONFIG = '{"width": [1.0, 0.5], "bits": [8, 4]}'


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "measurements.sqlite"


def test_config_hash_is_canonical() -> None:
    reordered = '{ "bits": [8, 4],\n "width": [1.0, 0.5] }'
    assert config_hash(CONFIG) == config_hash(reordered)
    assert len(config_hash(CONFIG)) == 16
    assert config_hash(CONFIG) != config_hash('{"width": [1.0, 0.5], "bits": [8, 8]}')


def test_add_get_round_trip(path: Path) -> None:
    with MeasurementStore(path, PROBLEM, run_id="run-1") as store:
        stored = store.add(Record("pixel-7", 2, CONFIG, "latency", (12.0, 10.0, 11.0)))
        got = store.get("pixel-7", config_hash(CONFIG), "latency")
    assert got == stored
    assert got.id is not None
    assert got.median == 11.0
    assert got.samples == (12.0, 10.0, 11.0)
    assert got.run_id == "run-1"
    assert got.cluster == 2
    assert json.loads(got.config_json) == json.loads(CONFIG)
    assert got.timestamp > 0


def test_get_missing_returns_none(path: Path) -> None:
    with MeasurementStore(path, PROBLEM, "r") as store:
        assert store.get("pixel-7", config_hash(CONFIG), "latency") is None


def test_duplicate_add_raises_and_is_not_stored(path: Path) -> None:
    with MeasurementStore(path, PROBLEM, "r") as store:
        store.add(Record("pixel-7", 0, CONFIG, "latency", (10.0,)))
        reordered = '{"bits": [8, 4], "width": [1.0, 0.5]}'
        with pytest.raises(ValueError, match="already stored"):
            store.add(Record("pixel-7", 0, reordered, "latency", (99.0,)))
        # Same config on another device or of another kind is a new row.
        store.add(Record("pixel-8", 0, CONFIG, "latency", (10.0,)))
        store.add(Record("pixel-7", 0, CONFIG, "accuracy", (0.9,)))
        assert store.count() == 3
        assert store.get("pixel-7", config_hash(CONFIG), "latency").median == 10.0


def test_get_or_measure_measures_once_across_resumed_runs(path: Path) -> None:
    calls: list[int] = []

    def measure() -> list[float]:
        calls.append(1)
        return [5.0, 6.0, 7.0]

    with MeasurementStore(path, PROBLEM, "run-1") as store:
        first = store.get_or_measure("dev", 1, CONFIG, "latency", measure)
        again = store.get_or_measure("dev", 1, CONFIG, "latency", measure)
    with MeasurementStore(path, PROBLEM, "run-2") as resumed:
        resumed_record = resumed.get_or_measure("dev", 1, CONFIG, "latency", measure)
        assert resumed.count() == 1
    assert len(calls) == 1
    assert first == again == resumed_record
    assert resumed_record.run_id == "run-1"
    assert resumed_record.median == 6.0


def test_get_or_measure_accepts_scalar_accuracy(path: Path) -> None:
    with MeasurementStore(path, PROBLEM, "r") as store:
        record = store.get_or_measure("eval", 0, CONFIG, "accuracy", lambda: 0.75)
    assert record.samples == (0.75,)
    assert record.median == 0.75


@pytest.mark.parametrize(
    ("kind", "samples"),
    [
        ("latency", (10.0, math.nan)),
        ("latency", (-1.0,)),
        ("latency", (0.0,)),
        ("latency", (math.inf,)),
        ("latency", ()),
        ("accuracy", (1.2,)),
        ("accuracy", (-0.1,)),
        ("accuracy", (math.nan,)),
        ("energy", (1.0,)),
    ],
)
def test_invalid_measurement_is_rejected_and_table_unchanged(
    path: Path, kind: str, samples: tuple[float, ...]
) -> None:
    with MeasurementStore(path, PROBLEM, "r") as store:
        store.add(Record("dev", 0, '{"a": 1}', "latency", (3.0,)))
        before = store.to_dataframe()
        with pytest.raises(ValueError):
            store.add(Record("dev", 0, CONFIG, kind, samples))
        with pytest.raises(ValueError):
            store.get_or_measure("dev", 0, CONFIG, kind, lambda: samples)
        after = store.to_dataframe()
    assert after.equals(before)


def test_invalid_median_is_rejected(path: Path) -> None:
    with MeasurementStore(path, PROBLEM, "r") as store:
        with pytest.raises(ValueError):
            store.add(Record("dev", 0, CONFIG, "latency", (3.0,), median=math.nan))
        assert store.count() == 0


def test_problem_mismatch_raises(path: Path) -> None:
    MeasurementStore(path, PROBLEM, "r").close()
    with pytest.raises(ValueError, match="problem") as info:
        MeasurementStore(path, "other-problem", "r")
    message = str(info.value)
    assert str(path) in message and PROBLEM in message and "other-problem" in message
    assert "\n" not in message


def test_schema_version_mismatch_raises(path: Path) -> None:
    MeasurementStore(path, PROBLEM, "r").close()
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(ValueError, match="schema_version") as info:
        MeasurementStore(path, PROBLEM, "r")
    assert "'999'" in str(info.value) and repr(str(SCHEMA_VERSION)) in str(info.value)


def test_wal_mode(path: Path) -> None:
    with MeasurementStore(path, PROBLEM, "r"):
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        con.close()


def test_count_filters(path: Path) -> None:
    with MeasurementStore(path, PROBLEM, "r") as store:
        for i in range(3):
            store.add(Record("a", 0, json.dumps({"i": i}), "latency", (1.0 + i,)))
        store.add(Record("b", 1, json.dumps({"i": 0}), "latency", (4.0,)))
        store.add(Record("eval", 0, json.dumps({"i": 0}), "accuracy", (0.5,)))
        assert store.count() == 5
        assert store.count(kind="latency") == 4
        assert store.count(cluster=0) == 4
        assert store.count(kind="latency", cluster=1) == 1
        with pytest.raises(ValueError):
            store.count(kind="energy")


def test_to_dataframe_columns(path: Path) -> None:
    with MeasurementStore(path, PROBLEM, "r") as store:
        store.add(Record("a", 0, CONFIG, "latency", (1.0, 3.0)))
        df = store.to_dataframe()
    assert list(df.columns) == [
        "id",
        "run_id",
        "device_id",
        "cluster",
        "config_hash",
        "config_json",
        "kind",
        "samples_json",
        "median",
        "timestamp",
    ]
    assert len(df) == 1
    assert json.loads(df.loc[0, "samples_json"]) == [1.0, 3.0]
    assert df.loc[0, "median"] == 2.0


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from moo_compress.store import MeasurementStore, Record

    store = MeasurementStore(sys.argv[1], sys.argv[2], "child")
    i = 0
    while True:
        record = store.add(Record("dev", 0, json.dumps({"i": i}), "latency", (1.0 + i,)))
        print(record.id, flush=True)  # handshake: written only after commit
        i += 1
    """
)


def test_committed_rows_survive_sigkill(path: Path) -> None:
    MeasurementStore(path, PROBLEM, "parent").close()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), PROBLEM], stdout=subprocess.PIPE, text=True
    )
    try:
        committed = [int(child.stdout.readline()) for _ in range(25)]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with MeasurementStore(path, PROBLEM, "parent") as store:
        ids = set(store.to_dataframe()["id"])
        assert set(committed) <= ids
        assert store.count() >= len(committed)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_version_1_file_is_upgraded_with_its_rows_kept(path: Path) -> None:
    """A store written before fine-tuned accuracy existed (schema 1, whose CHECK allowed
    only 'latency' and 'accuracy') resumes, and then takes the new kind."""
    con = sqlite3.connect(path)
    with con:
        con.executescript(
            """
            CREATE TABLE measurements (
                id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, device_id TEXT NOT NULL,
                cluster INTEGER NOT NULL, config_hash TEXT NOT NULL, config_json TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('latency', 'accuracy')),
                samples_json TEXT NOT NULL, median REAL NOT NULL, timestamp REAL NOT NULL,
                UNIQUE (device_id, config_hash, kind));
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )
        con.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('problem', ?)", (PROBLEM,))
        con.execute(
            "INSERT INTO measurements VALUES "
            "(1, 'old', 'dev', 0, ?, ?, 'latency', '[3.0]', 3.0, 5.0)",
            (config_hash(CONFIG), json.dumps(json.loads(CONFIG), sort_keys=True)),
        )
    con.close()
    with MeasurementStore(path, PROBLEM, "new") as store:
        old = store.get("dev", config_hash(CONFIG), "latency")
        assert (old.id, old.run_id, old.median, old.timestamp) == (1, "old", 3.0, 5.0)
        store.add(Record("eval:finetune-2", -1, CONFIG, "accuracy_finetuned", (0.9,)))
        assert store.count() == 2 and store.count("accuracy_finetuned") == 1
        with pytest.raises(ValueError, match=r"accuracy must lie in \[0, 1\]"):
            store.add(Record("eval:finetune-3", -1, CONFIG, "accuracy_finetuned", (1.5,)))
    with sqlite3.connect(path) as con:
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


@pytest.mark.parametrize(
    ("column", "value", "field"),
    [
        ("samples_json", "[1.0, oops", "field samples_json: not a JSON list of numbers"),
        ("samples_json", "[-3.0]", "field samples_json or median: latency must be > 0 ms"),
        ("median", "NaN", "field median"),
        ("config_json", "{not json", "field config_json: not valid JSON"),
        ("config_hash", "0000000000000000", "field config_hash: does not match config_json"),
    ],
)
def test_a_bad_row_is_named_when_read(path: Path, column: str, value: str, field: str) -> None:
    """Rows are validated when read back, not only when added: a row edited or damaged
    on disk is named (table, key, field) instead of entering a search."""
    with MeasurementStore(path, "p", "r") as store:
        stored = store.add(Record("dev-1", 0, '{"a": 1}', "latency", (2.0, 3.0)))
    with sqlite3.connect(path) as db:
        if column == "median":
            db.execute("UPDATE measurements SET median = 'x' WHERE id = ?", (stored.id,))
        else:
            db.execute(f"UPDATE measurements SET {column} = ? WHERE id = ?", (value, stored.id))
    key = value if column == "config_hash" else stored.config_hash
    with MeasurementStore(path, "p", "r") as store:
        with pytest.raises(ValueError) as raised:
            store.get_by_cluster(0, key, "latency")
        with pytest.raises(ValueError):
            store.get("dev-1", key, "latency")
    message = str(raised.value)
    assert f"{path}: table measurements, row id {stored.id} (device 'dev-1', config " in message
    assert field in message and "\n" not in message
