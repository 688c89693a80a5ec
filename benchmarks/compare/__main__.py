"""``python -m benchmarks.compare --problem P1,P2 --methods m1,m2 --out DIR``.

(``python -m benchmarks.compare merge DIR1,DIR2 --out DIR [--publish [FILE]]`` combines runs
made in parallel into one table.)

Runs every method under protocol v2 (:mod:`benchmarks.compare.protocol`) on paired
seeds, scores it against the problem's fixed reference
(:mod:`benchmarks.compare.reference`) and writes

* ``DIR/results.csv``: one row per problem x method (or reference row) x seed,
  columns :data:`COLUMNS`; ``DIR/info.json``: the command, machine, date, wall and CPU
  time, and what the tables say about each problem;
* ``DIR/table.md``: per problem, the diagnostics, then every row against ``ours``
  (mean ± 95 % CI, wins/ties/losses, Wilcoxon p; see :mod:`benchmarks.compare.stats`);
* with ``--publish [FILE]``, ``FILE`` (default ``benchmarks/RESULTS.md``): the same
  with the command, the machine and the date.

Seeds: ``--seeds`` (default and minimum 10) consecutive seeds from ``--first-seed``;
fewer only with ``--quick`` or, stated in the tables, for the problems named in
``--seeds-for``. ``--quick`` is the smoke test: one seed, a quarter of the generations,
a population of at most 16, the smallest budget the search accepts (see
:func:`~benchmarks.compare.unit.quicken`) and a reference of effort 1.

Parallel: ``--jobs`` (default: the CPU count) units of one problem and one seed
(:mod:`benchmarks.compare.unit`) run at a time, each in its own process pinned to one
thread; every unit is seeded on its own, so ``--jobs`` changes the wall time, not the
numbers (``info.json`` records it; ``cpu_s`` sums every process).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path

from moo_compress.quiet import quiet_library_warnings

if __name__ == "__main__":  # before the library's imports: some of them warn
    quiet_library_warnings()

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from benchmarks.compare.methods import METHODS  # noqa: E402
from benchmarks.compare.reference import ORACLE_EFFORT, ROWS, load_reference  # noqa: E402
from benchmarks.compare.regret import DROPS  # noqa: E402
from benchmarks.compare.tables import drop_label, markdown  # noqa: E402
from benchmarks.compare.task import load_task  # noqa: E402
from benchmarks.compare.unit import UnitResult, diagnostics_row, run_unit  # noqa: E402
from moo_compress.cli import OneLineParser, UsageError  # noqa: E402
from moo_compress.numeric_environment import cpu_model  # noqa: E402
from moo_compress.threads import pinned_threads  # noqa: E402

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
DIAGNOSTIC_COLUMNS = (
    "problem",
    "seed",
    "kind",
    "nominal",
    "clusters",
    "spearman_min",
    "spearman_max",
    "r2_min",
    "r2_max",
    "worst_changes",
    "front_size",
    "worst_clusters",
    "nominal_hv_fraction",
    *(f"nominal_{kind}_regret_{drop_label(d)}" for d in DROPS for kind in ("worst", "avg")),
)
"""``diagnostics.csv`` columns, one row per problem and seed (see
:mod:`benchmarks.compare.diagnostics`; the candidates are the reference's fronts)."""
RESULTS_MD = Path(__file__).resolve().parents[1] / "RESULTS.md"


def add_publish(parser: argparse.ArgumentParser) -> None:
    """``--publish [FILE]``: also write the table, headed by the commands, to ``FILE``
    (:data:`RESULTS_MD` when no file is named)."""
    parser.add_argument(
        "--publish",
        nargs="?",
        const=RESULTS_MD,
        type=Path,
        metavar="FILE",
        help=f"also write FILE (default {RESULTS_MD.name} beside this package)",
    )


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
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="units (problem x seed) run at a time, one process and one thread each",
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help="reference-front cache")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 seed, short runs")
    add_publish(parser)
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
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs} is not allowed; allowed: an integer >= 1")
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


def machine() -> str:
    """The CPU, its cores, the OS and torch's kernel set: per-seed numbers are repeatable
    on the same (see ``moo_compress.numeric_environment``)."""
    kernels = torch.backends.cpu.get_cpu_capability()
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu_model()}, {os.cpu_count()} cores, {system}, torch kernels {kernels}"


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
    """``merge DIR1,DIR2 --out DIR [--publish [FILE]]``: one table of several runs."""
    parser = OneLineParser(
        prog="python -m benchmarks.compare merge",
        description="combine the results of several runs into one table",
    )
    parser.add_argument("parts", help="comma-separated output folders of earlier runs")
    parser.add_argument("--out", type=Path, required=True)
    add_publish(parser)
    args = parser.parse_args(argv)
    args.parts = [Path(p.strip()) for p in args.parts.split(",") if p.strip()]
    missing = [str(p) for p in args.parts if not (p / "info.json").is_file()]
    if missing or not args.parts:
        raise UsageError(f"no finished run in {missing}; allowed: folders written by a run")
    return args


def run_comparison(args: argparse.Namespace, argv: list[str], console: Console) -> int:
    """Run every problem, seed and method, ``args.jobs`` units (problem x seed, see
    :mod:`benchmarks.compare.unit`) at a time; after every unit, write ``results.csv``,
    ``diagnostics.csv`` and ``info.json`` of the units done so far, in problem and seed
    order (so a run stopped early still says what it did)."""
    seeds = {p: args.seeds_for.get(p, args.seeds) for p in args.problem}
    first = args.first_seed
    units = [(p, s) for p in args.problem for s in range(first, first + seeds[p])]
    done: dict[tuple[str, int], UnitResult] = {}
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} units {task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )
    bar = progress.add_task("compare", total=len(units), status="")
    started, cpu_started = time.perf_counter(), time.process_time()

    jobs = min(args.jobs, len(units))  # 1: the units run in this process

    def finished(unit: UnitResult) -> None:
        done[(unit.problem, unit.seed)] = unit
        progress.update(bar, advance=1, status=f"{unit.problem} seed {unit.seed} done")
        write_progress(args, argv, units, seeds, done, started, cpu_started, jobs)

    work = [(p, s, args.methods, args.cache, args.quick) for p, s in units]
    with progress:
        try:
            if jobs == 1:
                for item in work:
                    finished(run_unit(*item))
            else:
                spawn = multiprocessing.get_context("spawn")  # no forked torch state
                # the filters first: unpickling run_unit imports the library, which warns
                with ProcessPoolExecutor(
                    jobs, mp_context=spawn, initializer=quiet_library_warnings
                ) as pool:
                    futures = [pool.submit(run_unit, *item) for item in work]
                    try:
                        for future in as_completed(futures):
                            finished(future.result())
                    except BaseException:
                        pool.shutdown(cancel_futures=True)
                        raise
        except (ValueError, UsageError) as exc:
            progress.stop()
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


def write_progress(
    args: argparse.Namespace,
    argv: list[str],
    units: list[tuple[str, int]],
    seeds: dict[str, int],
    done: dict[tuple[str, int], UnitResult],
    started: float,
    cpu_started: float,
    jobs: int,
) -> None:
    """Write the results, diagnostics and ``info.json`` of the ``done`` units, in the
    order of ``units``; the CPU time is the runner's, plus every finished unit's when
    ``jobs`` > 1 (each unit in a process of its own)."""
    finished = [done[u] for u in units if u in done]
    rows = [row for unit in finished for row in unit.rows]
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(args.out / "results.csv", index=False)
    pd.DataFrame([u.diagnostics for u in finished], columns=list(DIAGNOSTIC_COLUMNS)).to_csv(
        args.out / "diagnostics.csv", index=False
    )
    info = {}
    for unit in finished:
        ran = sorted(u.seed for u in finished if u.problem == unit.problem)
        name = unit.rows[0]["problem"] if unit.rows else unit.problem
        info[name] = {**unit.about, "seeds": _seeds_of(ran, seeds[unit.problem])}
    run = {
        "command": "python -m benchmarks.compare " + " ".join(argv),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "jobs": jobs,
        "elapsed_s": time.perf_counter() - started,
        "cpu_s": time.process_time()
        - cpu_started
        + (sum(u.cpu_s for u in done.values()) if jobs > 1 else 0.0),
        "problems": info,
    }
    (args.out / "info.json").write_text(json.dumps(run, indent=1))


def missing_diagnostics(
    results: pd.DataFrame, found: list[pd.DataFrame], info: dict[str, dict]
) -> pd.DataFrame:
    """The diagnostics rows of ``found``, plus those of every problem and seed of
    ``results`` that they lack (a run made before diagnostics were part of it), computed
    on the cached reference."""
    have = (
        pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=DIAGNOSTIC_COLUMNS)
    )
    known = set(zip(have["problem"], have["seed"], strict=True))
    rows = []
    with pinned_threads():
        for problem, seed in results[["problem", "seed"]].drop_duplicates().itertuples(index=False):
            if (problem, seed) in known:
                continue
            cache = Path(info[problem].get("cache", CACHE))
            task = load_task(problem, int(seed), cache)
            reference = load_reference(task, cache, info[problem].get("effort", ORACLE_EFFORT))
            rows.append(diagnostics_row(task, reference))
    return pd.concat([have, pd.DataFrame(rows, columns=DIAGNOSTIC_COLUMNS)], ignore_index=True)


def combine(parts: list[Path], out: Path, publish: Path | None) -> str:
    """One ``table.md`` (and with ``publish``, that file too, headed by the commands that
    made the parts) of the runs in ``parts``.

    A row of a later part replaces the row of an earlier part with the same problem,
    method and seed (so a rerun of some methods replaces their old rows), and so does a
    later diagnostics row of the same problem and seed; with several parts, each
    problem's seeds are read from the combined rows, and the published file says how
    many rows were replaced."""
    results = pd.concat([pd.read_csv(p / "results.csv") for p in parts], ignore_index=True)
    key = ["problem", "method", "seed"]
    replaced = int(results.duplicated(key, keep="last").sum())
    results = results.drop_duplicates(key, keep="last").reset_index(drop=True)
    runs = [json.loads((p / "info.json").read_text()) for p in parts]
    info = {name: dict(about) for run in runs for name, about in run["problems"].items()}
    if len(parts) > 1:
        for name, seeds in results.groupby("problem")["seed"]:
            info[name]["seeds"] = _seeds_of(sorted(set(seeds.astype(int))))
    found = [pd.read_csv(p / "diagnostics.csv") for p in parts if (p / "diagnostics.csv").is_file()]
    if found:
        found = [pd.concat(found).drop_duplicates(["problem", "seed"], keep="last")]
    diagnostics = missing_diagnostics(results, found, info)
    text = markdown(results, info, diagnostics)
    (out / "table.md").write_text(text)
    if out not in parts:
        results.to_csv(out / "results.csv", index=False)
        if diagnostics is not None:
            diagnostics.to_csv(out / "diagnostics.csv", index=False)
    if publish is not None:
        produced = "\n".join(
            f"- `{run['command']}` on {run['date']} on {run['machine']}: "
            f"{run['elapsed_s']:.0f} s wall, {run['cpu_s']:.0f} s CPU"
            for run in runs
        )
        if len(parts) > 1:
            produced += (
                f"\n\nCombined by `python -m benchmarks.compare merge` in this order; "
                f"{replaced} rows of earlier parts were replaced by a later part's rows of "
                "the same problem, method and seed."
            )
        publish.write_text(
            f"# Comparison results\n\nProduced by:\n\n{produced}\n\n"
            f"Columns: see `COLUMNS` in `benchmarks/compare/__main__.py`.\n\n{text}"
        )
    return text


def _seeds_of(seeds: list[int], planned: int | None = None) -> str:
    """``"1000-1009 (10)"`` for consecutive seeds, else the list; saying when fewer ran
    than ``planned`` (a run that did not finish) and when fewer than the default
    :data:`MIN_SEEDS` were planned (or ran)."""
    planned = len(seeds) if planned is None else planned
    consecutive = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    which = f"{seeds[0]}-{seeds[-1]}" if consecutive else ", ".join(map(str, seeds))
    unfinished = f" of {planned} planned: the run did not finish" if len(seeds) < planned else ""
    fewer = f", fewer than the default {MIN_SEEDS}" if planned < MIN_SEEDS else ""
    return f"{which} ({len(seeds)}{unfinished}{fewer})"


if __name__ == "__main__":
    sys.exit(main())
