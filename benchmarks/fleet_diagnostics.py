"""Print the fleet diagnostics of every problem (see :mod:`benchmarks.compare.diagnostics`).

Run: ``python -m benchmarks.fleet_diagnostics [--problem P1,P2] [--seed 0] [--sample 2000]
[--cache DIR]`` (``--cache``: where the problems' references are cached, see
:mod:`benchmarks.compare.reference`).

Per problem: its nominal device; per-cluster Spearman and log-linear R^2 against it (the
range over clusters); how often the worst cluster changes along the oracle front; the
oracle_nominal front's HV fraction and its worst-cluster and average regret at the
floors baseline - 0.5 / 1 / 2 / 5 points; and whether the problem is a fleet-awareness
test (worst-cluster regret >= 1.05 at some floor) or a control.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.compare.diagnostics import diagnose
from benchmarks.compare.task import PROBLEMS, load_task

DEFAULT = (
    "nb201_fleet",
    "nb201_phones",
    "nb201_mixed",
    "nb201_large",
    "resnet8_digits_mcu",
    "resnet8_digits_mixed_mcu",
    "resnet8_digits_pi_runtimes",
    "resnet50_hdap",
    "resnet50_jetson_mixed",
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet_diagnostics")
    parser.add_argument("--problem", default=",".join(DEFAULT), help="comma-separated names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, default=2000, help="configs for rank agreement")
    parser.add_argument("--cache", type=Path, default=None, help="reference cache folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    console = Console(width=200)
    table = None
    for name in [p.strip() for p in args.problem.split(",") if p.strip()]:
        start = time.perf_counter()
        task = load_task(name, args.seed)
        row = diagnose(task, seed=args.seed, n_sample=args.sample, cache_dir=args.cache).row()
        row["s"] = f"{time.perf_counter() - start:.0f}"
        if table is None:
            table = Table(title=f"Fleet diagnostics, seed {args.seed} (problems in {PROBLEMS})")
            for column in row:
                table.add_column(column)
        table.add_row(*row.values())
        console.print(" | ".join(row.values()))
    console.print(table)


if __name__ == "__main__":
    main()
