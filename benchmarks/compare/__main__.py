"""``python -m benchmarks.compare --problem P1,P2 --methods m1,m2 --out DIR``.

(``python -m benchmarks.compare merge DIR1,DIR2 --out DIR [--publish]`` combines runs
made in parallel into one table.)

Runs every method under protocol v2 (:mod:`benchmarks.compare.protocol`) on paired
seeds, scores it against the problem's fixed reference
(:mod:`benchmarks.compare.reference`) and writes

* ``DIR/results.csv``: one row per problem x method (or reference row) x seed,
  columns :data:`COLUMNS`; ``DIR/info.json``: the command, machine, date, wall and CPU
  time, and what the tables say about each problem;
* ``DIR/table.md``: per problem, the diagnostics, then every row against ``ours``
  (mean ± 95 % CI, wins/ties/losses, Wilcoxon p; see :mod:`benchmarks.compare.stats`);
* with ``--publish``, ``benchmarks/RESULTS.md``: the same with the command, the
  machine and the date.

Seeds: ``--seeds`` (default and minimum 10) consecutive seeds from ``--first-seed``;
fewer only with ``--quick`` or, stated in the tables, for the problems named in
``--seeds-for``. ``--quick`` is the smoke test: one seed, a quarter of the generations,
a population of at most 16, the smallest budget the search accepts (see
:func:`quicken`) and a reference of effort 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from moo_compress.quiet import quiet_library_warnings

if __name__ == "__main__":  # before the library's imports: some of them warn
    quiet_library_warnings()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from benchmarks.compare.anytime import measurements_to_regret  # noqa: E402
from benchmarks.compare.methods import METHODS  # noqa: E402
from benchmarks.compare.metrics import score  # noqa: E402
from benchmarks.compare.protocol import (  # noqa: E402
    check,
    pinned_threads,
    reported_objectives,
)
from benchmarks.compare.reference import (  # noqa: E402
    ORACLE_EFFORT,
    ROWS,
    Reference,
    load_reference,
)
from benchmarks.compare.regret import DROPS, regrets  # noqa: E402
from benchmarks.compare.tables import drop_label, markdown  # noqa: E402
from benchmarks.compare.task import Task, default_accuracy_budget, load_task  # noqa: E402
from moo_compress.cli import OneLineParser, UsageError  # noqa: E402
from moo_compress.search import FleetSearch, SearchSettings  # noqa: E402

MIN_SEEDS = 10
"""Paired seeds per problem and method unless ``--quick`` or ``--seeds-for``."""
CACHE = Path("runs") / "compare-cache"
"""Default folder of the cached reference fronts."""
COLUMNS = (
    "problem",
    "method",
    "seed",
    "hv_fraction",
    "igd_plus",
    "avg_speedup_iso",
    "worst_speedup_iso",
    *(f"{kind}_regret_{drop_label(d)}" for d in DROPS for kind in ("worst", "avg")),
    *(f"to_1.05_{drop_label(d)}" for d in DROPS),
    "reported",
    "unverified",
    "measurements",
    "device_seconds",
    "accuracy_evaluations",
    "wall_s",
)
"""``results.csv`` columns. Scores use the verified reported rows only, on the truth:
``hv_fraction``: hypervolume / the reference front's; ``igd_plus``: to the reference
front (lower is better); ``*_speedup_iso``: fleet-average and worst-cluster speed-up
over the uncompressed configuration of the one configuration deployed at iso-accuracy;
``worst_regret_D`` / ``avg_regret_D``: true worst-cluster / fleet-average ms of the
configuration deployed at the floor D below the baseline, over the reference's best
there (1.0 = perfect); ``to_1.05_D``: measurements until the worst-cluster regret at D
first dropped below 1.05 (NaN: never); ``reported`` / ``unverified``: rows reported and
how many of them the method did not measure on every cluster; ``measurements`` and
``device_seconds``: real latency measurements and their device time (s);
``accuracy_evaluations``: distinct configurations whose accuracy the method asked for;
``wall_s``: the method's wall time in s, charged the evaluation time of every accuracy
it asked for. Reference rows (``oracle``, ``oracle_macs``, ``oracle_nominal``) spend
nothing: their cost columns are NaN."""
RESULTS_MD = Path(__file__).resolve().parents[1] / "RESULTS.md"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m benchmarks.compare", description=__doc__.split("\n")[0])
    parser.add_argument("--problem", required=True, help="comma-separated names or files")
    parser.add_argument(
        "--methods", default=",".join([*METHODS, *ROWS]), help="comma-separated methods and rows"
    )
    parser.add_argument("--seeds", type=int, default=MIN_SEEDS, help=f"seeds (>= {MIN_SEEDS})")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed")
    parser.add_argument(
        "--seeds-for", default="", help="PROBLEM=N,...: fewer seeds for these problems (stated)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=CACHE, help="reference-front cache")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 seed, short runs")
    parser.add_argument("--publish", action="store_true", help=f"also write {RESULTS_MD}")
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    allowed = [*METHODS, *ROWS]
    unknown = [m for m in args.methods if m not in allowed]
    if unknown or not args.methods:
        raise UsageError(f"unknown method(s) {unknown}; allowed: {', '.join(allowed)}")
    if args.quick and "--seeds" not in argv:
        args.seeds = 1
    if args.seeds < 1 or (args.seeds < MIN_SEEDS and not args.quick):
        raise UsageError(
            f"--seeds {args.seeds} is not allowed; allowed: an integer >= {MIN_SEEDS} "
            "(fewer only with --quick, or per problem with --seeds-for)"
        )
    args.problem = [p.strip() for p in args.problem.split(",") if p.strip()]
    args.seeds_for = _seeds_for(args.seeds_for, args.problem)
    return args


def _seeds_for(text: str, problems: list[str]) -> dict[str, int]:
    """``PROBLEM=N,...`` -> {problem: N}."""
    seeds = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, n = item.partition("=")
        if name not in problems or not n.isdigit() or int(n) < 2:
            raise UsageError(
                f"--seeds-for {item!r} is not allowed; allowed: PROBLEM=N with PROBLEM one of "
                f"{problems} and N >= 2"
            )
        seeds[name] = int(n)
    return seeds


def quicken(task: Task) -> None:
    """Shorten the task for ``--quick``: a quarter of the generations, a population of
    at most 16, the smallest measurement budget the search accepts (plus one
    generation's batch per cluster) and the accuracy budget of that population."""
    problem = task.problem
    problem.generations = max(2, problem.generations // 4)
    problem.pop_size = min(problem.pop_size, 16)
    settings = SearchSettings(pop_size=problem.pop_size, seed=task.seed)
    search = FleetSearch(problem, None, settings)
    task.budget = min(task.budget, search.minimum_budget + settings.batch_size * problem.clusters.k)
    task.accuracy_budget = default_accuracy_budget(problem)


def run_method(task: Task, name: str, seed: int) -> dict:
    """Run one method under the protocol: its reported rows (reported and true
    objectives, verified mask), its log and ledger, and its wall time.

    Raises:
        ProtocolError: if it broke a budget or reported more than M rows (a meter or
            ledger over its budget raises its own error first).
    """
    fresh_before = task.fresh_seconds
    start = time.perf_counter()
    with task.charging() as ledger, pinned_threads():
        result = METHODS[name](task, seed)
    wall = time.perf_counter() - start
    check(task, name, result, ledger)
    reported, verified = reported_objectives(task, result, ledger)
    X = np.atleast_2d(result.X).reshape(-1, task.problem.space.n_var)
    return {
        "reported": reported,
        "true": task.true_objectives(X) if len(X) else np.zeros((0, 3)),
        "verified": verified,
        "log": result.log,
        "ledger": ledger,
        "costs": {
            "measurements": len(result.log),
            "device_seconds": sum(e.seconds for e in result.log),
            "accuracy_evaluations": ledger.evaluations,
            "wall_s": wall - (task.fresh_seconds - fresh_before) + ledger.seconds,
        },
    }


def score_row(task: Task, run: dict, reference_F: np.ndarray, baseline: np.ndarray) -> dict:
    """The score columns of one run (verified rows only)."""
    ok = run["verified"]
    true, reported = run["true"][ok], run["reported"][ok]
    scores = score(true, reported, reference_F, baseline, task.tolerance)
    row = {
        "hv_fraction": scores.hv_fraction,
        "igd_plus": scores.igd_plus,
        "avg_speedup_iso": scores.avg_speedup,
        "worst_speedup_iso": scores.worst_speedup,
        "reported": len(ok),
        "unverified": int(np.sum(~ok)),
    }
    for r in regrets(reported, true, reference_F, baseline):
        row[f"worst_regret_{drop_label(r.drop)}"] = r.worst
        row[f"avg_regret_{drop_label(r.drop)}"] = r.average
    if run["log"] is not None:
        steps = measurements_to_regret(task, run["log"], run["ledger"], reference_F, baseline)
        for drop, n in zip(DROPS, steps, strict=True):
            row[f"to_1.05_{drop_label(drop)}"] = n
    return row


def compare_task(
    task: Task, methods: list[str], seed: int, reference: Reference, advance
) -> list[dict]:
    """Rows of ``results.csv`` for one task and seed."""
    reference_F = reference.front_objectives(task)
    baseline = task.baseline_objectives()
    rows = []
    for name in methods:
        if name in ROWS:
            X, reported = reference.row(task, name)
            run = {
                "reported": reported,
                "true": task.true_objectives(X),
                "verified": np.ones(len(X), dtype=bool),
                "log": None,
                "costs": {},
            }
        else:
            run = run_method(task, name, seed)
        rows.append(
            {
                "problem": task.name,
                "method": name,
                "seed": seed,
                **score_row(task, run, reference_F, baseline),
                **run["costs"],
            }
        )
        advance(f"{task.name} seed {seed}: {name}")
    return rows


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
    argv = sys.argv[1:] if argv is None else argv
    quiet_library_warnings()
    console = Console(width=160)
    merge = bool(argv) and argv[0] == "merge"
    try:
        args = parse_merge_args(argv[1:]) if merge else parse_args(argv)
        args.out.mkdir(parents=True, exist_ok=True)
    except (UsageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not merge and (code := run_comparison(args, argv, console)):
        return code
    parts = args.parts if merge else [args.out]
    try:
        text = combine(parts, args.out, args.publish)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    console.print(text, markup=False, highlight=False)
    console.print(f"results in {args.out}/", highlight=False)
    return 0


def parse_merge_args(argv: list[str]) -> argparse.Namespace:
    """``merge DIR1,DIR2 --out DIR [--publish]``: one table of several runs."""
    parser = OneLineParser(
        prog="python -m benchmarks.compare merge",
        description="combine the results of several runs into one table",
    )
    parser.add_argument("parts", help="comma-separated output folders of earlier runs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--publish", action="store_true", help=f"also write {RESULTS_MD}")
    args = parser.parse_args(argv)
    args.parts = [Path(p.strip()) for p in args.parts.split(",") if p.strip()]
    missing = [str(p) for p in args.parts if not (p / "info.json").is_file()]
    if missing or not args.parts:
        raise UsageError(f"no finished run in {missing}; allowed: folders written by a run")
    return args


def run_comparison(args: argparse.Namespace, argv: list[str], console: Console) -> int:
    """Run every problem, seed and method; write ``results.csv`` and ``info.json``."""
    rows, info = [], {}
    seeds = {p: args.seeds_for.get(p, args.seeds) for p in args.problem}
    total = sum(seeds.values()) * len(args.methods)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )
    bar = progress.add_task("compare", total=total, status="")
    started, cpu_started = time.perf_counter(), time.process_time()
    with progress, pinned_threads():  # building tasks and references too
        for problem in args.problem:
            for seed in range(args.first_seed, args.first_seed + seeds[problem]):
                progress.update(bar, status=f"{problem} seed {seed}: building")
                try:
                    task = load_task(problem, seed, args.cache)
                except (ValueError, UsageError) as exc:
                    progress.stop()
                    print(f"error: {exc}", file=sys.stderr)
                    return 2
                if args.quick:
                    quicken(task)
                progress.update(bar, status=f"{problem} seed {seed}: reference")
                effort = 1 if args.quick else ORACLE_EFFORT
                reference = load_reference(task, args.cache, effort)
                rows += compare_task(
                    task,
                    args.methods,
                    seed,
                    reference,
                    lambda s: progress.update(bar, advance=1, status=s),
                )
                pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(
                    args.out / "results.csv", index=False
                )
                done = seed - args.first_seed + 1
                info[task.name] = _problem_info(
                    task, reference, (done, seeds[problem]), problem in args.seeds_for, args
                )
                # after every seed, so that a run stopped early still says what it did
                run = {
                    "command": "python -m benchmarks.compare " + " ".join(argv),
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "machine": machine(),
                    "elapsed_s": time.perf_counter() - started,
                    "cpu_s": time.process_time() - cpu_started,
                    "problems": info,
                }
                (args.out / "info.json").write_text(json.dumps(run, indent=1))
    return 0


def combine(parts: list[Path], out: Path, publish: bool) -> str:
    """One ``table.md`` (and with ``publish``, ``RESULTS.md``) of the runs in ``parts``."""
    results = pd.concat([pd.read_csv(p / "results.csv") for p in parts], ignore_index=True)
    runs = [json.loads((p / "info.json").read_text()) for p in parts]
    info = {name: about for run in runs for name, about in run["problems"].items()}
    text = markdown(results, info)
    (out / "table.md").write_text(text)
    if out not in parts:
        results.to_csv(out / "results.csv", index=False)
    if publish:
        produced = "\n".join(
            f"- `{run['command']}` on {run['date']} on {run['machine']}: "
            f"{run['elapsed_s']:.0f} s wall, {run['cpu_s']:.0f} s CPU"
            for run in runs
        )
        RESULTS_MD.write_text(
            f"# Comparison results\n\nProduced by:\n\n{produced}\n\n"
            f"Columns: see `COLUMNS` in `benchmarks/compare/__main__.py`.\n\n{text}"
        )
    return text


def _problem_info(
    task: Task, reference: Reference, seeds: tuple[int, int], fewer: bool, args
) -> dict:
    """What the tables say about a problem besides the numbers."""
    problem = task.problem
    how = (
        "exact (the enumerated space)"
        if reference.exact
        else f"NSGA-II on the noiseless truth, population and generations "
        f"{reference.settings['oracle_effort']}x the problem's"
    )
    return {
        "accuracy": task.accuracy_note,
        "budgets": (
            f"{task.budget} latency measurements, {task.accuracy_budget} accuracy evaluations, "
            f"at most M = {task.max_reported} reported configurations; "
            f"{problem.clusters.k} clusters"
        ),
        "reference": f"{how}, union with the two floor fronts; cached in {args.cache}/",
        "effort": reference.settings["oracle_effort"],
        "cache": str(args.cache),
        "seeds": (
            f"{args.first_seed}-{args.first_seed + seeds[0] - 1} ({seeds[0]}"
            + (f" of {seeds[1]} planned: the run did not finish" if seeds[0] < seeds[1] else "")
            + (", fewer than the default: --seeds-for" if fewer else "")
            + ")"
        ),
    }


if __name__ == "__main__":
    sys.exit(main())
