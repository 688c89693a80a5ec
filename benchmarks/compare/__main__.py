"""``python -m benchmarks.compare --problem P1,P2 --methods m1,m2 --seeds N --out DIR``.

For every problem and seed: build the task, run the oracle and every method, score each
method's front on the truth (:mod:`benchmarks.compare.metrics`) and write

* ``DIR/results.csv``: one row per problem x method x seed, columns :data:`COLUMNS`;
* ``DIR/table.md``: mean ± std over seeds per problem and method;
* with ``--publish``, ``benchmarks/RESULTS.md``: the table with the command, the
  machine and the date.

The reference front of a problem is the oracle's front merged with every method's
(non-dominated union), unless the problem enumerates its space (then the exact front).
``--quick`` is the smoke test: one seed, a quarter of the generations, a population of
at most 16, the smallest budget the search accepts (see :func:`quicken`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

from moo_compress.quiet import quiet_library_warnings

if __name__ == "__main__":  # before the library's imports: some of them warn
    quiet_library_warnings()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.compare.methods import METHODS  # noqa: E402
from benchmarks.compare.metrics import non_dominated, score  # noqa: E402
from benchmarks.compare.task import Task, load_task  # noqa: E402
from moo_compress.cli import OneLineParser, UsageError  # noqa: E402
from moo_compress.search import FleetSearch, SearchSettings  # noqa: E402

COLUMNS = (
    "problem",
    "method",
    "seed",
    "hv_fraction",
    "igd_plus",
    "measurements",
    "device_seconds",
    "accuracy_evaluations",
    "avg_speedup_iso",
    "worst_speedup_iso",
    "front_size",
    "wall_s",
)
"""``results.csv`` columns. ``hv_fraction``: hypervolume / the reference front's;
``igd_plus``: to the reference front (lower is better); ``measurements`` and
``device_seconds``: real latency measurements and their device time (s);
``accuracy_evaluations``: distinct configurations whose accuracy the method asked for;
``*_speedup_iso``: fleet-average and worst-cluster speed-up over the uncompressed
configuration at iso-accuracy (NaN: no front point within tolerance); ``wall_s``: the
method's wall time in s, charged the evaluation time of every accuracy it asked for."""
METRICS = COLUMNS[3:]
RESULTS_MD = Path(__file__).resolve().parents[1] / "RESULTS.md"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m benchmarks.compare", description=__doc__.split("\n")[0])
    parser.add_argument("--problem", required=True, help="comma-separated names or files")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 seed, short runs")
    parser.add_argument("--publish", action="store_true", help=f"also write {RESULTS_MD}")
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown or not args.methods:
        raise UsageError(f"unknown method(s) {unknown}; allowed: {', '.join(METHODS)}")
    if args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds} is not allowed; allowed: an integer >= 1")
    args.problem = [p.strip() for p in args.problem.split(",") if p.strip()]
    if args.quick:
        args.seeds = 1
    return args


def quicken(task: Task) -> None:
    """Shorten the task for ``--quick``: a quarter of the generations, a population of
    at most 16, and the smallest measurement budget the search accepts (plus one
    generation's batch per cluster)."""
    problem = task.problem
    problem.generations = max(2, problem.generations // 4)
    problem.pop_size = min(problem.pop_size, 16)
    settings = SearchSettings(pop_size=problem.pop_size, seed=task.seed)
    search = FleetSearch(problem, None, settings)
    task.budget = min(task.budget, search.minimum_budget + settings.batch_size * problem.clusters.k)


def run_method(task: Task, name: str, seed: int) -> tuple[np.ndarray, dict]:
    """Run one method; its front's true objectives (F, 3) and its cost columns."""
    ledger = task.new_ledger()
    fresh_before = task.fresh_seconds
    start = time.perf_counter()
    result = METHODS[name](task, seed)
    wall = time.perf_counter() - start
    F = task.true_objectives(result.X) if len(result.X) else np.zeros((0, 3))
    fresh = task.fresh_seconds - fresh_before
    return F, {
        "measurements": result.measurements,
        "device_seconds": result.device_seconds,
        "accuracy_evaluations": ledger.evaluations,
        "wall_s": wall - fresh + ledger.seconds,
    }


def compare_task(task: Task, methods: list[str], seed: int, advance) -> list[dict]:
    """Rows of ``results.csv`` for one task and seed."""
    oracle_F, oracle_cost = run_method(task, "oracle", seed)
    advance(f"{task.name} seed {seed}: oracle")
    fronts, costs = {"oracle": oracle_F}, {"oracle": oracle_cost}
    for name in methods:
        if name != "oracle":
            fronts[name], costs[name] = run_method(task, name, seed)
            advance(f"{task.name} seed {seed}: {name}")
    exact = task.problem.enumerate() is not None
    reference = oracle_F if exact else non_dominated(np.vstack(list(fronts.values())))
    baseline = task.baseline_objectives()
    rows = []
    for name in methods:
        scores = score(fronts[name], reference, baseline, task.tolerance)
        rows.append(
            {
                "problem": task.name,
                "method": name,
                "seed": seed,
                "hv_fraction": scores.hv_fraction,
                "igd_plus": scores.igd_plus,
                "avg_speedup_iso": scores.avg_speedup,
                "worst_speedup_iso": scores.worst_speedup,
                "front_size": scores.front_size,
                **costs[name],
            }
        )
    return rows


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per problem and method, as strings."""
    grouped = results.groupby(["problem", "method"], sort=False)[list(METRICS)]
    mean, std = grouped.mean(), grouped.std().fillna(0.0)
    table = mean.copy().astype(object)
    for column in METRICS:
        digits = 1 if column in ("measurements", "accuracy_evaluations", "front_size") else 3
        table[column] = [
            f"{m:.{digits}f} ± {s:.{digits}f}"
            for m, s in zip(mean[column], std[column], strict=True)
        ]
    return table.reset_index()


def markdown(table: pd.DataFrame, notes: dict[str, str]) -> str:
    lines = []
    for problem, rows in table.groupby("problem", sort=False):
        lines += [f"### {problem}", "", f"Accuracy: {notes[problem]}.", ""]
        lines.append("| " + " | ".join(["method", *METRICS]) + " |")
        lines.append("|" + "---|" * (len(METRICS) + 1))
        for _, r in rows.iterrows():
            lines.append("| " + " | ".join([r["method"], *(r[m] for m in METRICS)]) + " |")
        lines.append("")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    quiet_library_warnings()
    console = Console(width=160)
    # One thread: every method is timed alike, and small convolutions on a shared
    # 2-core machine run several times faster than with contending threads.
    torch.set_num_threads(1)
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        args.out.mkdir(parents=True, exist_ok=True)
    except (UsageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows, notes = [], {}
    methods = args.methods
    total = len(args.problem) * args.seeds * (len(methods) + (0 if "oracle" in methods else 1))
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )
    bar = progress.add_task("compare", total=total, status="")
    started = time.perf_counter()
    with progress:
        for problem in args.problem:
            for seed in range(args.seeds):
                progress.update(bar, status=f"{problem} seed {seed}: building")
                try:
                    task = load_task(problem, seed)
                except (ValueError, UsageError) as exc:
                    progress.stop()
                    print(f"error: {exc}", file=sys.stderr)
                    return 2
                if args.quick:
                    quicken(task)
                notes[task.name] = task.accuracy_note
                rows += compare_task(
                    task, methods, seed, lambda s: progress.update(bar, advance=1, status=s)
                )
                pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(
                    args.out / "results.csv", index=False
                )
    results = pd.DataFrame(rows, columns=list(COLUMNS))
    table = summary_table(results)
    text = markdown(table, notes)
    (args.out / "table.md").write_text(text)
    if args.publish:
        command = "python -m benchmarks.compare " + " ".join(sys.argv[1:] if argv is None else argv)
        RESULTS_MD.write_text(
            f"# Comparison results\n\nProduced by `{command}` on {date.today()} on {machine()}; "
            f"{time.perf_counter() - started:.0f} s in total.\n\n"
            f"Columns: see `COLUMNS` in `benchmarks/compare/__main__.py`.\n\n{text}"
        )
    rich_table = Table(title="comparison (mean ± std over seeds)")
    for column in ("problem", "method", *METRICS):
        rich_table.add_column(column, justify="right")
    for _, r in table.iterrows():
        rich_table.add_row(*(str(r[c]) for c in ("problem", "method", *METRICS)))
    console.print(rich_table)
    console.print(f"{time.perf_counter() - started:.0f} s; results in {args.out}/", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
