"""Persistent, crash-safe store of real measurements (latency and accuracy).

Every measurement taken on a real device (or every real accuracy evaluation) is
written to a single SQLite file, one transaction per measurement, so that a run
killed at any moment can be resumed without measuring anything twice.

Schema (``SCHEMA_VERSION`` = 2)
-------------------------------
``measurements``
    ============  =======  ===================================================
    column        type     meaning
    ============  =======  ===================================================
    id            INTEGER  primary key (insertion order)
    run_id        TEXT     run that took the measurement
    device_id     TEXT     device that measured it; ``"accuracy-evaluator"``
                           for accuracy, ``"accuracy-evaluator:finetune-
                           <steps>-lr<lr>"`` for fine-tuned accuracy
    cluster       INTEGER  device cluster index of ``device_id``
    config_hash   TEXT     ``config_hash(config_json)``: 16 hex chars of sha256
    config_json   TEXT     canonical JSON of the compression configuration
    kind          TEXT     ``'latency'``, ``'accuracy'`` or
                           ``'accuracy_finetuned'`` (accuracy after a short
                           fine-tune; ``device_id`` names the steps)
    samples_json  TEXT     JSON list of float samples (ms for latency,
                           fraction in [0, 1] for both accuracy kinds)
    median        REAL     median of the samples (same unit)
    timestamp     REAL     unix seconds at insertion
    ============  =======  ===================================================

    ``UNIQUE (device_id, config_hash, kind)``: a configuration is measured at
    most once per device and kind.

``meta`` (``key TEXT PRIMARY KEY, value TEXT``)
    ``schema_version`` and ``problem`` (a caller-defined fingerprint of the
    problem: model, search space, ...). Opening a file whose values differ from
    the expected ones raises ``ValueError``, except a version 1 file (kinds
    ``'latency'`` and ``'accuracy'`` only), which is upgraded in place: its table
    is rebuilt with version 2's kinds, every row kept.

Durability
----------
The file is opened in WAL mode with ``synchronous=FULL``: ``commit`` returns only
after the WAL has been fsync'ed, so a committed row survives ``kill -9`` of the
process (``NORMAL`` would already do that) and also an OS crash or power loss.
The price is one fsync per measurement, negligible next to a measurement.

Concurrency
-----------
A ``MeasurementStore`` object must be used from the thread that created it
(sqlite3's ``check_same_thread`` enforces it). Other processes may read the
file concurrently (WAL readers never block the writer); concurrent writers are
serialised by SQLite's lock, waiting up to ``timeout`` seconds.

Example queries
---------------
sqlite3 CLI::

    sqlite3 runs/measurements.sqlite \\
      "SELECT cluster, COUNT(*), AVG(median) FROM measurements
       WHERE kind = 'latency' GROUP BY cluster;"

pandas::

    import sqlite3, pandas as pd
    con = sqlite3.connect("runs/measurements.sqlite")
    df = pd.read_sql_query(
        "SELECT config_hash, device_id, median FROM measurements WHERE kind = ?",
        con, params=("latency",))
    per_config = df.pivot_table(index="config_hash", columns="device_id",
                                values="median")

or ``MeasurementStore(path, problem, run_id).to_dataframe()``.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import sqlite3
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

SCHEMA_VERSION = 2
KINDS = ("latency", "accuracy", "accuracy_finetuned")
ACCURACY_KINDS = ("accuracy", "accuracy_finetuned")

_COLUMNS = (
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
)

_MEASUREMENTS = """
CREATE TABLE IF NOT EXISTS measurements (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT    NOT NULL,
    device_id    TEXT    NOT NULL,
    cluster      INTEGER NOT NULL,
    config_hash  TEXT    NOT NULL,
    config_json  TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('latency', 'accuracy', 'accuracy_finetuned')),
    samples_json TEXT    NOT NULL,
    median       REAL    NOT NULL,
    timestamp    REAL    NOT NULL,
    UNIQUE (device_id, config_hash, kind)
)"""
_SCHEMA = f"""{_MEASUREMENTS};
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def canonical_json(config_json: str) -> str:
    """Canonical form of a JSON string: sorted keys, no whitespace."""
    return json.dumps(json.loads(config_json), sort_keys=True, separators=(",", ":"))


def config_hash(config_json: str) -> str:
    """First 16 hex chars of the sha256 of ``canonical_json(config_json)``.

    Two JSON strings that differ only in key order or whitespace hash equally.
    """
    return hashlib.sha256(canonical_json(config_json).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Record:
    """One measurement (one row of ``measurements``).

    ``config_json`` is canonicalised and ``config_hash`` derived from it on
    construction. ``median`` defaults to the median of ``samples``. ``run_id``
    and ``timestamp`` are stamped by ``MeasurementStore.add``; ``id`` is the
    row id (``None`` until stored).

    Units: latency samples in milliseconds; accuracy samples as fractions.
    """

    device_id: str
    cluster: int
    config_json: str
    kind: str
    samples: tuple[float, ...]
    median: float | None = None
    run_id: str = ""
    timestamp: float = 0.0
    id: int | None = None
    config_hash: str = field(init=False)

    def __post_init__(self) -> None:
        canonical = canonical_json(self.config_json)
        samples = tuple(float(s) for s in self.samples)
        object.__setattr__(self, "config_json", canonical)
        object.__setattr__(self, "config_hash", config_hash(canonical))
        object.__setattr__(self, "samples", samples)
        if self.median is not None:
            object.__setattr__(self, "median", float(self.median))
        elif samples:
            object.__setattr__(self, "median", float(statistics.median(samples)))


def validate(record: Record) -> None:
    """Raise ``ValueError`` unless ``record`` may enter the store.

    Rules: ``kind`` is one of ``KINDS``; ``samples`` is non-empty; every sample
    and the median are finite; latency values are > 0 (ms); accuracy values (both
    kinds) lie in [0, 1].
    """
    _check_kind(record.kind)
    if not record.samples:
        raise ValueError("a measurement needs at least one sample")
    values = (*record.samples, record.median)
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"non-finite {record.kind} value in {values}")
    if record.kind == "latency" and not all(v > 0 for v in values):
        raise ValueError(f"latency must be > 0 ms, got {values}")
    if record.kind in ACCURACY_KINDS and not all(0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"accuracy must lie in [0, 1], got {values}")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


class MeasurementStore:
    """SQLite-backed store of measurements, keyed by (device, config, kind).

    Args:
        path: SQLite file; created with the schema if missing.
        problem: fingerprint of the optimisation problem; must match the one
            stored in the file (written on creation).
        run_id: stamped on every record this object adds.
        timeout: seconds to wait for another process's write lock.

    Raises:
        ValueError: the file's ``schema_version`` or ``problem`` differs from
            ``SCHEMA_VERSION`` / ``problem``.
    """

    def __init__(self, path: str | Path, problem: str, run_id: str, timeout: float = 30.0):
        self.path = Path(path)
        self.problem = problem
        self.run_id = run_id
        self._con = sqlite3.connect(self.path, timeout=timeout)
        try:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            self._init_schema()
        except BaseException:
            self._con.close()
            raise

    def _init_schema(self) -> None:
        with self._con:
            self._con.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._con.execute(statement)
            expected = {"schema_version": str(SCHEMA_VERSION), "problem": self.problem}
            for key, value in expected.items():
                self._con.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
            found = dict(self._con.execute("SELECT key, value FROM meta"))
            if found["schema_version"] == "1":
                self._upgrade_from_v1()
                found["schema_version"] = str(SCHEMA_VERSION)
        for key, value in expected.items():
            if found[key] != value:
                raise ValueError(f"{self.path}: {key} is {found[key]!r}, expected {value!r}")

    def _upgrade_from_v1(self) -> None:
        """Rebuild a version 1 table (whose CHECK refuses the new kind) with the current
        schema, inside the caller's transaction; every row is kept."""
        self._con.execute("ALTER TABLE measurements RENAME TO measurements_v1")
        self._con.execute(_MEASUREMENTS)
        self._con.execute("INSERT INTO measurements SELECT * FROM measurements_v1")
        self._con.execute("DROP TABLE measurements_v1")
        self._con.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )

    def close(self) -> None:
        """Close the connection (every added record is already committed)."""
        self._con.close()

    def __enter__(self) -> MeasurementStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, device_id: str, config_hash: str, kind: str) -> Record | None:
        """The stored record for (device, config, kind), or ``None``."""
        _check_kind(kind)
        row = self._con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM measurements "
            "WHERE device_id = ? AND config_hash = ? AND kind = ?",
            (device_id, config_hash, kind),
        ).fetchone()
        return None if row is None else _record_from_row(row, self.path)

    def get_by_cluster(self, cluster: int, config_hash: str, kind: str) -> Record | None:
        """The first stored record of a config on any device of ``cluster``, or ``None``
        (a measurement retried on another member of the cluster is stored under that
        member's ``device_id``)."""
        _check_kind(kind)
        row = self._con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM measurements "
            "WHERE cluster = ? AND config_hash = ? AND kind = ? ORDER BY id LIMIT 1",
            (int(cluster), config_hash, kind),
        ).fetchone()
        return None if row is None else _record_from_row(row, self.path)

    def read_meta(self, key: str) -> str | None:
        """The ``meta`` value of ``key``, or None."""
        row = self._con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def write_meta(self, key: str, value: str) -> None:
        """Set the ``meta`` value of ``key`` (committed)."""
        with self._con:
            self._con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def add(self, record: Record) -> Record:
        """Validate and insert ``record`` in its own committed transaction.

        ``run_id`` and ``timestamp`` are set by the store. Returns the stored
        record (with ``id``).

        Raises:
            ValueError: ``validate`` rejects it, or a record with the same
                (device_id, config_hash, kind) is already stored (duplicates are
                an error, not silently merged; use ``get_or_measure`` to reuse).
        """
        validate(record)
        stored = replace(
            record, cluster=int(record.cluster), run_id=self.run_id, timestamp=time.time(), id=None
        )
        try:
            with self._con:
                cursor = self._con.execute(
                    f"INSERT INTO measurements ({', '.join(_COLUMNS[1:])}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        stored.run_id,
                        stored.device_id,
                        stored.cluster,
                        stored.config_hash,
                        stored.config_json,
                        stored.kind,
                        json.dumps(stored.samples),
                        stored.median,
                        stored.timestamp,
                    ),
                )
        except sqlite3.IntegrityError as err:
            raise ValueError(
                f"{self.path}: {record.kind} of config {record.config_hash} on "
                f"{record.device_id!r} is already stored"
            ) from err
        return replace(stored, id=cursor.lastrowid)

    def get_or_measure(
        self,
        device_id: str,
        cluster: int,
        config_json: str,
        kind: str,
        measure_fn: Callable[[], float | Sequence[float]],
    ) -> Record:
        """Return the stored record, measuring and storing it only if absent.

        The store is queried before ``measure_fn`` is called, so a config is
        never measured twice on a device, within a run or across resumed runs.

        Args:
            measure_fn: takes no argument, returns one value or a sequence of
                samples (ms for latency, fraction in [0, 1] for accuracy).

        Raises:
            ValueError: the measurement is invalid (see ``validate``); nothing
                is stored.
        """
        existing = self.get(device_id, config_hash(config_json), kind)
        if existing is not None:
            return existing
        result = measure_fn()
        samples = (result,) if isinstance(result, numbers.Real) else tuple(result)
        return self.add(Record(device_id, cluster, config_json, kind, samples))

    def count(self, kind: str | None = None, cluster: int | None = None) -> int:
        """Number of stored records, optionally filtered by kind and cluster."""
        clauses, params = [], []
        if kind is not None:
            _check_kind(kind)
            clauses.append("kind = ?")
            params.append(kind)
        if cluster is not None:
            clauses.append("cluster = ?")
            params.append(int(cluster))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._con.execute(f"SELECT COUNT(*) FROM measurements{where}", params).fetchone()[0]

    def to_dataframe(self) -> pd.DataFrame:
        """All records ordered by ``id``; one column per table column.

        ``samples_json`` stays a JSON string (``json.loads`` it per row).
        """
        return pd.read_sql_query(
            f"SELECT {', '.join(_COLUMNS)} FROM measurements ORDER BY id", self._con
        )


def _record_from_row(row: tuple, path: Path) -> Record:
    """The record of a stored row, checked as :func:`validate` checks a new one.

    Raises:
        ValueError: naming the file, the table, the row's key and the bad field.
    """
    values = dict(zip(_COLUMNS, row, strict=True))

    def bad(column: str, why: str) -> ValueError:
        key = (
            f"id {values['id']} (device {values['device_id']!r}, config "
            f"{values['config_hash']}, kind {values['kind']!r})"
        )
        return ValueError(
            f"{path}: table measurements, row {key}, field {column}: {why}; the store is damaged"
        )

    try:
        samples = json.loads(values["samples_json"])
        samples = tuple(float(s) for s in samples)
    except (TypeError, ValueError):
        raise bad("samples_json", "not a JSON list of numbers") from None
    median = values["median"]
    if not isinstance(median, float | int) or isinstance(median, bool):
        raise bad("median", f"{median!r} is not a number")
    try:
        record = Record(
            device_id=values["device_id"],
            cluster=values["cluster"],
            config_json=values["config_json"],
            kind=values["kind"],
            samples=samples,
            median=values["median"],
            run_id=values["run_id"],
            timestamp=values["timestamp"],
            id=values["id"],
        )
    except (TypeError, ValueError):
        raise bad("config_json", "not valid JSON") from None
    if record.config_hash != values["config_hash"]:
        raise bad("config_hash", f"does not match config_json (expected {record.config_hash})")
    try:
        validate(record)
    except ValueError as exc:
        field_name = "kind" if record.kind not in KINDS else "samples_json or median"
        raise bad(field_name, str(exc)) from None
    return record
