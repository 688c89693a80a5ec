"""Crash safety: ``kill -9`` a tiny run at random points N times (20 by default),
resuming each time, then check from the store that no committed measurement was lost,
changed or repeated, and that the final front equals an uninterrupted run's.

    python -m benchmarks.kill_resume_loop [--kills 20] [--seed 3]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TINY = Path(__file__).parent.parent / "tests" / "problems" / "tiny_fleet.py"


def _command(out: Path, seed: int, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "moo_compress.run", str(TINY), "--out", str(out)]
    return cmd + ["--seed", str(seed)] + (["--resume"] if resume else [])


def _rows(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(
            "SELECT id, config_hash, device_id, kind, median FROM measurements ORDER BY id"
        ).fetchall()


def _kill_at(out: Path, seed: int, resume: bool, min_rows: int) -> bool:
    """Run until the store holds ``min_rows`` rows, then SIGKILL; False if it finished."""
    process = subprocess.Popen(
        _command(out, seed, resume), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    store = out / "measurements.sqlite"
    while process.poll() is None:
        if store.exists():
            with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(store) as db:
                if db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] >= min_rows:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return True
        time.sleep(0.01)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        reference, killed = Path(folder) / "reference", Path(folder) / "killed"
        subprocess.run(_command(reference, args.seed, False), check=True, capture_output=True)
        total = len(_rows(reference / "measurements.sqlite"))
        rng = np.random.default_rng(0)
        points = np.sort(rng.integers(1, total, args.kills))
        before: list[tuple] = []
        kills = lost = 0
        for i, min_rows in enumerate(points):
            kills += _kill_at(killed, args.seed, i > 0, int(min_rows))
            rows = _rows(killed / "measurements.sqlite")
            lost += rows[: len(before)] != before
            before = rows
        subprocess.run(_command(killed, args.seed, True), check=True, capture_output=True)
        after = _rows(killed / "measurements.sqlite")
        lost += after[: len(before)] != before
        repeated = len(after) - len({(h, d, k) for _, h, d, k, _ in after})
        same = (reference / "front.csv").read_text() == (killed / "front.csv").read_text()
    print(
        f"{kills} kills at rows {points.tolist()} of {total}; rows lost or changed: {lost}; "
        f"repeated: {repeated}; final rows {len(after)} (uninterrupted {total}); "
        f"front equal to the uninterrupted run: {same}"
    )


if __name__ == "__main__":
    main()
