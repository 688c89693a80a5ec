"""Command line: ``python -m moo_compress.run PROBLEM_FILE [options]``.

Loads the problem file (trusted Python code that defines one
:class:`~moo_compress.problem.FleetProblem` subclass, usually a
:class:`~moo_compress.problem.FleetCompressionProblem`; see
:mod:`moo_compress.problem_file`), runs the search with a progress display (a rich bar
on a terminal, one plain line per generation otherwise), fine-tunes the front if asked,
prints the measured front and writes the outputs (see :mod:`moo_compress.report`). Bad
input gives one line on stderr and exit code 2; Ctrl-C stops cleanly (exit 130) with
every measurement kept for ``--resume``. The options are in :mod:`moo_compress.cli`.

Measurements run on an embedded in-process Dask cluster holding the problem's devices,
or, with ``--scheduler tls://HOST:PORT``, on the workers of a real fleet (see the
README, "Measuring on a real fleet").
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from moo_compress.quiet import quiet_library_warnings

if __name__ == "__main__":  # before the library's imports: some of them warn
    quiet_library_warnings()

from distributed.security import Security  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from moo_compress.accuracy import NoTrainingData  # noqa: E402
from moo_compress.cli import UsageError, finetune_steps, parse_args  # noqa: E402
from moo_compress.dispatch import Dispatcher, connect  # noqa: E402
from moo_compress.finetune_front import fine_tune_result  # noqa: E402
from moo_compress.problem import FleetProblem  # noqa: E402
from moo_compress.problem_file import ProblemFileError, fingerprint, load_problem_class  # noqa: E402
from moo_compress.report import front_table, write_outputs  # noqa: E402
from moo_compress.search import FleetSearch, SearchSettings  # noqa: E402
from moo_compress.search_result import Progress as SearchProgress  # noqa: E402
from moo_compress.session import make_dispatcher  # noqa: E402
from moo_compress.store import MeasurementStore  # noqa: E402

STORE_NAME = "measurements.sqlite"


def _security(args: argparse.Namespace) -> Security | None:
    """TLS settings of the client, or None for plain tcp://."""
    if not args.tls_ca_file:
        return None
    for path in (args.tls_ca_file, args.tls_cert, args.tls_key):
        if not Path(path).is_file():
            raise UsageError(f"TLS file {path!r} does not exist")
    return Security(
        tls_ca_file=args.tls_ca_file,
        tls_client_cert=args.tls_cert,
        tls_client_key=args.tls_key,
        require_encryption=True,
    )


@contextlib.contextmanager
def _dispatcher(args: argparse.Namespace, problem: FleetProblem) -> Iterator[Dispatcher | None]:
    """The dispatcher of ``--scheduler``, or None (the search embeds its own)."""
    if not args.scheduler:
        yield None
        return
    security = _security(args)
    try:
        client = connect(args.scheduler, security)
    except (OSError, ValueError, TypeError) as exc:  # unreachable, refused, or no TLS context
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"cannot connect to scheduler {args.scheduler!r}: {reason}") from None
    dispatcher = make_dispatcher(client, problem.clusters)
    try:
        yield dispatcher
    finally:
        dispatcher.close()
        client.close()


def _out_folder(args: argparse.Namespace, name: str) -> Path:
    if args.out is not None:
        out = args.out
    elif args.resume:
        runs = sorted(Path("runs").glob(f"{name}-*"))
        if not runs:
            raise UsageError(f"--resume found no earlier run of {name!r} in runs/; give --out")
        out = runs[-1]
    else:
        out = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.resume and not (out / STORE_NAME).is_file():
        raise UsageError(f"--resume: {out / STORE_NAME} does not exist")
    if not args.resume and (out / STORE_NAME).exists():
        raise UsageError(f"{out} already holds a run; add --resume or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"output folder {str(out)!r} is not writable: {exc.strerror}") from None
    return out


def _fail(error: Exception) -> int:
    """Report bad input as one unwrapped line on stderr; the exit code is 2."""
    print(f"error: {error}", file=sys.stderr)
    return 2


@contextlib.contextmanager
def _progress_display(
    console: Console, settings: SearchSettings, started: float
) -> Iterator[Callable[[SearchProgress], None]]:
    """A callback showing each generation: a rich bar on a terminal, else one plain line
    per generation (``nohup``, CI, ``| tee``), flushed at once."""

    def status(p: SearchProgress) -> str:
        return (
            f"measurements {p.measurements}/{p.budget}  accuracy evals "
            f"{p.accuracy_evaluations}  HV {p.hypervolume:.4f}"
        )

    if not console.is_terminal:

        def line(p: SearchProgress) -> None:
            elapsed = time.perf_counter() - started
            print(
                f"generation {p.generation}/{p.generations}  {status(p)}  elapsed {elapsed:.0f} s",
                flush=True,
            )

        yield line
        return
    bar = Progress(
        TextColumn("[bold]generation {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = bar.add_task("search", total=settings.generations, status="initial design")
    with bar:
        yield lambda p: bar.update(task, completed=p.generation, status=status(p))


def main(argv: list[str] | None = None) -> int:
    quiet_library_warnings()
    console = Console()
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        problem_class = load_problem_class(Path(args.problem_file))
        out = _out_folder(args, problem_class.name)
    except (UsageError, ProblemFileError) as exc:
        return _fail(exc)

    started = time.perf_counter()
    with console.status(f"building {problem_class.name}: model, search space, fleet clusters"):
        try:
            problem = problem_class(seed=args.seed)
        except ValueError as exc:
            return _fail(exc)
    console.print(problem.space.describe(), highlight=False)
    console.print(
        f"{problem.clusters.k} cluster(s): "
        + ", ".join(
            f"#{c['cluster']} {c['size']} devices (rep {c['representative']})"
            for c in problem.clusters.describe()
        ),
        highlight=False,
    )
    if problem.accuracy_mode == "fidelity":
        console.print(
            "[yellow]No labelled data: the accuracy objective is FIDELITY to the "
            "uncompressed model on generated inputs, not accuracy.[/yellow]"
        )
    try:
        steps = finetune_steps(args, problem)
        if steps > 0:
            problem.evaluator.training_data()
    except UsageError as exc:
        return _fail(exc)
    except NoTrainingData as exc:
        return _fail(UsageError(f"cannot fine-tune {steps} steps: {exc}; allowed: 0 steps"))
    settings = SearchSettings(
        budget=args.budget or problem.budget,
        accuracy_budget=args.accuracy_budget or problem.accuracy_budget,
        pop_size=args.pop_size or problem.pop_size,
        generations=args.generations or problem.generations,
        transfer=not args.no_transfer,
        seed=args.seed,
    )
    run_id = time.strftime("%Y%m%d-%H%M%S")
    try:
        store = MeasurementStore(out / STORE_NAME, fingerprint(problem), run_id)
    except ValueError as exc:
        return _fail(exc)
    except sqlite3.Error as exc:
        return _fail(ValueError(f"cannot open {out / STORE_NAME}: {exc}"))

    try:
        with (
            _dispatcher(args, problem) as dispatcher,
            _progress_display(console, settings, started) as report,
        ):
            result = FleetSearch(problem, store, settings, report, dispatcher).run()
        finetune = fine_tune_result(problem, store, result, steps) if steps > 0 else None
        front, references, info = write_outputs(
            problem, result, out, time.perf_counter() - started, finetune
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: {store.count()} measurements are saved in {out / STORE_NAME}; "
            f"continue with: python -m moo_compress.run {args.problem_file} --out {out} "
            f"--seed {args.seed} --resume",
            file=sys.stderr,
        )
        return 130
    except (ValueError, UsageError) as exc:
        return _fail(exc)
    except (sqlite3.Error, OSError) as exc:
        return _fail(
            OSError(
                f"cannot write to {out}: {exc}; {store.count()} measurements are saved in "
                f"{out / STORE_NAME}, continue with --resume once there is room"
            )
        )
    finally:
        store.close()

    for cluster, reason in result.degraded.items():
        console.print(
            f"[yellow]cluster #{cluster} is DEGRADED and left out of the objectives: "
            f"{reason}[/yellow]",
            highlight=False,
        )

    console.print(front_table(problem, front, references))
    console.print(
        f"hypervolume {info['hypervolume']:.4f}; {info['measurements']['latency_total']} latency "
        f"measurements (budget {settings.budget}), {info['measurements']['accuracy']} accuracy "
        f"evaluations; {info['wall_seconds']:.0f} s. Outputs in {out}/",
        highlight=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
