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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from moo_compress.quiet import quiet_library_warnings

if __name__ in ("__main__", "__mp_main__"):  # before the library's imports: some of them
    # warn; "__mp_main__" is this module as a spawned worker (a fit process) imports it
    quiet_library_warnings()

from distributed.security import Security  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from moo_compress import manifest  # noqa: E402
from moo_compress.accuracy import NoTrainingData  # noqa: E402
from moo_compress.cli import (  # noqa: E402
    UsageError,
    check_scheduler,
    finetune_steps,
    parse_args,
    resume_command,
)
from moo_compress.dispatch import Dispatcher, connect  # noqa: E402
from moo_compress.finetune_front import fine_tune_result  # noqa: E402
from moo_compress.interrupts import InterruptLatch  # noqa: E402
from moo_compress.manifest import ManifestError, RunManifest  # noqa: E402
from moo_compress.numeric_environment import differences, numeric_environment  # noqa: E402
from moo_compress.problem import FleetProblem  # noqa: E402
from moo_compress.problem_checks import ProblemError, build, check_class  # noqa: E402
from moo_compress.problem_file import ProblemFileError, fingerprint, load_problem_class  # noqa: E402
from moo_compress.report import front_table, write_outputs  # noqa: E402
from moo_compress.run_folder import STORE_NAME, FolderError, RunFolder  # noqa: E402
from moo_compress.search import FleetSearch, SearchSettings  # noqa: E402
from moo_compress.search_result import Progress as SearchProgress  # noqa: E402
from moo_compress.session import embedded_dispatcher, make_dispatcher  # noqa: E402
from moo_compress.store import MeasurementStore  # noqa: E402
from moo_compress.threads import evaluation_workers  # noqa: E402


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
def _dispatcher(args: argparse.Namespace, problem: FleetProblem) -> Iterator[Dispatcher]:
    """The dispatcher of ``--scheduler``, or else of an embedded cluster, measuring with
    the problem's retry policy."""
    if not args.scheduler:
        with embedded_dispatcher(problem.clusters, problem.retry_policy) as dispatcher:
            yield dispatcher
        return
    security = _security(args)
    if args.insecure and security is None:
        print(
            f"warning: --insecure: measuring through {args.scheduler} without authentication "
            "or encryption; anyone who can reach it can run code on the workers and here",
            file=sys.stderr,
        )
    try:
        client = connect(args.scheduler, security)
    except (OSError, ValueError, TypeError) as exc:  # unreachable, refused, or no TLS context
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"cannot connect to scheduler {args.scheduler!r}: {reason}") from None
    dispatcher = make_dispatcher(client, problem.clusters, problem.retry_policy)
    try:
        yield dispatcher
    finally:
        dispatcher.close()
        client.close()


def _out_path(args: argparse.Namespace, name: str | None) -> Path:
    """``--out``, or for ``--resume`` the latest ``runs/<name>-*``, or a new
    ``runs/<name>-<time>-<6 hex>``."""
    if args.out is not None:
        return args.out
    if args.resume:
        runs = sorted(Path("runs").glob(f"{name}-*"))
        if not runs:
            raise UsageError(f"--resume found no earlier run of {name!r} in runs/; give --out")
        return runs[-1]
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


@dataclass
class _Start:
    """What the runner knows once the folder is locked and the problem is built."""

    folder: RunFolder
    problem: FleetProblem
    manifest: RunManifest
    resumed: bool


def _start(args: argparse.Namespace, console: Console) -> _Start:
    """Lock the folder, read (``--resume``) or make the manifest, build the problem.

    Raises:
        UsageError, ProblemFileError, FolderError, ManifestError, ProblemError: one line
            for the user.
    """
    problem_class = load_problem_class(Path(args.problem_file)) if args.problem_file else None
    out = _out_path(args, problem_class.name if problem_class else None)
    folder = RunFolder(out, args.resume)
    try:
        stored = manifest.read(folder.store) if args.resume else None
        if stored is not None:
            problem_file = manifest.check_problem_file(stored, args.problem_file)
            settings = manifest.resolve(args, stored)
            connection = manifest.resume_connection(args, stored)
            vars(args).update({k: v for k, v in connection.items() if k != "scheduler"})
            if args.scheduler is None and connection["scheduler"] is not None:
                args.scheduler = connection["scheduler"]
                check_scheduler(args.scheduler, bool(args.tls_ca_file), args.insecure)
            problem_class = problem_class or load_problem_class(problem_file)
            seed = stored.seed
        else:
            problem_file = Path(args.problem_file)
            seed = args.seed if args.seed is not None else 0
        check_class(problem_class)
        with console.status(f"building {problem_class.name}: model, search space, fleet clusters"):
            problem = build(problem_class, seed, problem_file)
            ident = manifest.identity(problem)
        if stored is not None:
            manifest.check_identity(stored, ident)
            steps = finetune_steps(args, stored.finetune_steps)
            run = replace(stored, finetune_steps=steps, connection=connection)
        else:
            settings = SearchSettings(
                budget=args.budget or problem.budget,
                accuracy_budget=args.accuracy_budget or problem.accuracy_budget,
                pop_size=args.pop_size or problem.pop_size,
                generations=args.generations or problem.generations,
                transfer=not args.no_transfer,
                seed=seed,
                acquisition=args.acquisition,
            )
            steps = finetune_steps(args, problem.finetune_steps)
            connection = manifest.connection_of(args)
            run = manifest.new_manifest(problem, problem_file, settings, connection, steps, ident)
        if run.finetune_steps > 0:
            try:
                problem.evaluator.training_data()
            except NoTrainingData as exc:
                raise UsageError(
                    f"cannot fine-tune {run.finetune_steps} steps: {exc}; allowed: 0 steps"
                ) from None
    except BaseException:
        folder.abandon()
        raise
    folder.lock.note(run.run_id)
    return _Start(folder, problem, run, stored is not None)


def _open_store(start: _Start) -> MeasurementStore:
    """The run's store, keyed by the problem's identity; the manifest written (new run)
    or updated (fine-tune steps of a resume).

    Raises:
        UsageError: the store is damaged or belongs to another problem.
    """
    path = start.folder.store
    key = manifest.store_key(fingerprint(start.problem), manifest.identity(start.problem))
    try:
        store = MeasurementStore(path, key, start.manifest.run_id)
        store.write_meta(manifest.MANIFEST_KEY, start.manifest.to_json())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except sqlite3.Error as exc:
        raise UsageError(_damaged(path, exc)) from None
    return store


def _damaged(path: Path, exc: sqlite3.Error) -> str:
    return (
        f"{path} is damaged ({exc}); its measurements cannot be read; start a new run in "
        "another --out"
    )


def _measured(store: MeasurementStore) -> int:
    """Rows in the store; 1 when it cannot be read (then nothing is removed)."""
    try:
        return store.count()
    except sqlite3.Error:
        return 1


def _count(store: MeasurementStore) -> str:
    """How many measurements the store holds, in words (even if it cannot be read)."""
    try:
        return f"{store.count()} measurements are"
    except sqlite3.Error:
        return "the measurements taken so far are"


def _no_room(out: Path, store: MeasurementStore, exc: Exception) -> OSError:
    return OSError(
        f"cannot write to {out}: {exc}; {_count(store)} saved in {out / STORE_NAME}, "
        f"continue with: {resume_command(out)} once there is room"
    )


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


LOG_WIDTH = 160
"""Columns of the output when it goes to a file or a pipe (a log), where rich would
otherwise wrap every message and the front table at 80."""


def output_console() -> Console:
    """The terminal's own width on a terminal; in a log, :data:`LOG_WIDTH` columns for
    tables and messages never wrapped, one line each."""
    console = Console()
    return console if console.is_terminal else Console(width=LOG_WIDTH, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    quiet_library_warnings()
    console = output_console()
    started = time.perf_counter()
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        start = _start(args, console)
    except (UsageError, ProblemFileError, FolderError, ManifestError, ProblemError) as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        print("interrupted before anything was measured", file=sys.stderr)
        return 130
    problem, folder, out = start.problem, start.folder, start.folder.out
    settings, steps = start.manifest.search_settings(), start.manifest.finetune_steps
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
        store = _open_store(start)
    except UsageError as exc:
        folder.abandon()
        return _fail(exc)
    if start.resumed:
        version = manifest.package_version()
        if version != start.manifest.package_version:
            console.print(
                f"[yellow]The run began with moo_compress {start.manifest.package_version}; "
                f"this is {version}.[/yellow]",
                highlight=False,
            )
        began_on = start.manifest.numeric_environment  # None: recorded before it was kept
        changed = differences(began_on, numeric_environment()) if began_on else []
        if changed:
            console.print(
                "[yellow]The run began on another numeric environment ("
                + "; ".join(changed)
                + "): every measurement is kept, but the resumed search can reach another "
                "front than an uninterrupted one would.[/yellow]",
                highlight=False,
            )
        if _measured(store) == 0:
            console.print(
                "[yellow]--resume: the store holds no measurement yet; the run starts from "
                "the beginning.[/yellow]",
                highlight=False,
            )

    finished = False
    try:
        with (
            InterruptLatch() as interrupts,
            _dispatcher(args, problem) as dispatcher,
            _progress_display(console, settings, started) as show,
        ):

            def report(progress: SearchProgress) -> None:
                interrupts.check()  # a Ctrl-C that a library callback swallowed
                show(progress)

            # the latency fits use the cores the evaluations use: they never run at once
            fits = evaluation_workers() - 1
            search = FleetSearch(problem, store, settings, report, dispatcher, fit_processes=fits)
            result = search.run()
            interrupts.check()
        finetune = fine_tune_result(problem, store, result, steps) if steps > 0 else None
        front, references, info = write_outputs(
            problem, result, out, time.perf_counter() - started, finetune, store.run_id
        )
        finished = True
    except KeyboardInterrupt:
        print(
            f"interrupted: {_count(store)} saved in {out / STORE_NAME}; "
            f"continue with: {resume_command(out)}",
            file=sys.stderr,
        )
        return 130
    except (ValueError, UsageError) as exc:
        return _fail(exc)
    except sqlite3.DatabaseError as exc:
        if not isinstance(exc, sqlite3.OperationalError):
            return _fail(ValueError(_damaged(out / STORE_NAME, exc)))
        return _fail(_no_room(out, store, exc))
    except OSError as exc:
        return _fail(_no_room(out, store, exc))
    finally:
        if not finished and not start.resumed:
            folder.abandon(measured=_measured(store))
        store.close()
        folder.release()

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
        f"evaluations; front measured at {info['wall_seconds']:.0f} s; outputs (the knee's "
        f"exported model included) in {out}/ at {time.perf_counter() - started:.0f} s.",
        highlight=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
