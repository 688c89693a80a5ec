"""Command line: ``python -m moo_compress.run PROBLEM_FILE [options]``.

Loads the problem file (trusted Python code that defines one
:class:`~moo_compress.problem.FleetProblem` subclass, usually a
:class:`~moo_compress.problem.FleetCompressionProblem`), runs the search with a
rich progress display, prints the measured front and writes the outputs (see
:mod:`moo_compress.report`). Bad input gives one line on stderr and exit code 2;
Ctrl-C stops cleanly (exit 130) with every measurement kept for ``--resume``.

Measurements run on an embedded in-process Dask cluster holding the problem's devices,
or, with ``--scheduler tls://HOST:PORT``, on the workers of a real fleet (see the
README, "Measuring on a real fleet").
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import sqlite3
import sys
import time
import warnings
from pathlib import Path

# Library deprecation chatter is not for the user of a command-line tool.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
warnings.filterwarnings("ignore", message="Sparse invariant checks")

from distributed.security import Security  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from moo_compress.accuracy import NoTrainingData  # noqa: E402
from moo_compress.dispatch import Dispatcher, RetryPolicy, connect  # noqa: E402
from moo_compress.problem import FleetProblem  # noqa: E402
from moo_compress.report import front_table, write_outputs  # noqa: E402
from moo_compress.search import FleetSearch, SearchSettings, candidate_devices  # noqa: E402
from moo_compress.search import Progress as SearchProgress  # noqa: E402
from moo_compress.store import MeasurementStore  # noqa: E402

STORE_NAME = "measurements.sqlite"


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one :class:`UsageError` line, no usage dump
    (line breaks inside offending arguments are escaped)."""

    def error(self, message: str) -> None:
        raise UsageError(message.replace("\r", "\\r").replace("\n", "\\n"))


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``, else a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"{value} is not allowed; allowed: an integer >= {minimum}"
            )
        return value

    return parse


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m moo_compress.run", description=__doc__.split("\n")[0])
    parser.add_argument("problem_file", help="Python file defining a FleetProblem")
    parser.add_argument("--out", type=Path, help="output folder (default runs/<problem>-<time>)")
    positive = _int_at_least(1)
    parser.add_argument("--seed", type=_int_at_least(0), default=0)
    parser.add_argument("--budget", type=positive, help="real latency measurements in total")
    parser.add_argument("--accuracy-budget", type=positive, help="real accuracy evaluations")
    parser.add_argument("--generations", type=positive)
    parser.add_argument("--pop-size", type=_int_at_least(4))
    parser.add_argument(
        "--finetune-steps",
        type=_int_at_least(0),
        help="fine-tune every final front row this many steps and report both accuracies",
    )
    parser.add_argument("--no-transfer", action="store_true", help="independent GPs per cluster")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument(
        "--scheduler",
        help="measure on the Dask scheduler at tcp:// or tls://HOST:PORT "
        "(default: an embedded in-process cluster)",
    )
    parser.add_argument("--tls-ca-file", help="CA certificate (PEM) of a tls:// scheduler")
    parser.add_argument("--tls-cert", help="this client's certificate (PEM)")
    parser.add_argument("--tls-key", help="this client's private key (PEM)")
    args = parser.parse_args(argv)
    tls = [args.tls_ca_file, args.tls_cert, args.tls_key]
    if any(tls) and not (all(tls) and args.scheduler):
        parser.error("--tls-ca-file, --tls-cert and --tls-key go together, with --scheduler")
    return args


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
def _dispatcher(args: argparse.Namespace, problem: FleetProblem):
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
    policy = RetryPolicy()
    ids = [[d.device_id for d in group] for group in candidate_devices(problem.clusters, policy)]
    dispatcher = Dispatcher(client, ids, policy)
    try:
        yield dispatcher
    finally:
        dispatcher.close()
        client.close()


def load_problem_class(path: Path) -> type[FleetProblem]:
    """The one :class:`FleetProblem` subclass defined in ``path`` (imported ones, such as
    a base class, do not count)."""
    if not path.is_file():
        raise UsageError(f"problem file {str(path)!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"moo_problem_{path.stem}", path)
    if spec is None:
        raise UsageError(f"problem file {str(path)!r} is not a Python file; allowed: a .py file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise UsageError(
            f"problem file {str(path)!r} could not be loaded: {type(exc).__name__}: {reason}"
        ) from None
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, FleetProblem)
        and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        names = [c.__name__ for c in found]
        raise UsageError(
            f"problem file {str(path)!r} must define exactly one FleetProblem "
            f"subclass; found {names or 'none'}"
        )
    return found[0]


def fingerprint(problem: FleetProblem) -> str:
    """Identifies a problem's search space in its store, so another problem's store is
    refused."""
    space = problem.space
    text = "|".join([problem.name, *space.var_names, repr(space.ratios), repr(space.bit_widths)])
    return f"{problem.name}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"


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


def finetune_steps(args: argparse.Namespace, problem: FleetProblem) -> int:
    """Fine-tune steps: ``--finetune-steps``, else the problem's ``finetune_steps``.

    Raises:
        UsageError: if the problem's value is not an integer >= 0.
    """
    if args.finetune_steps is not None:
        return args.finetune_steps
    steps = problem.finetune_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise UsageError(
            f"{type(problem).__name__}.finetune_steps = {steps!r} is not allowed; "
            "allowed: an integer >= 0"
        )
    return steps


def _fail(error: Exception) -> int:
    """Report bad input as one unwrapped line on stderr; the exit code is 2."""
    print(f"error: {error}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    console = Console()
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        problem_class = load_problem_class(Path(args.problem_file))
        out = _out_folder(args, problem_class.name)
    except UsageError as exc:
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
    except UsageError as exc:
        return _fail(exc)
    if steps > 0:
        try:
            problem.evaluator.training_data()
        except NoTrainingData as exc:
            console.print(f"[yellow]No fine-tune of the front: {exc}.[/yellow]", highlight=False)
            steps = 0
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

    progress = Progress(
        TextColumn("[bold]generation {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task("search", total=settings.generations, status="initial design")

    def report(p: SearchProgress) -> None:
        progress.update(
            task,
            completed=p.generation,
            status=f"measurements {p.measurements}/{p.budget}  accuracy evals "
            f"{p.accuracy_evaluations}  clusters {problem.clusters.k}  HV {p.hypervolume:.4f}",
        )

    try:
        with _dispatcher(args, problem) as dispatcher, progress:
            search = FleetSearch(problem, store, settings, report, dispatcher)
            result = search.run()
        front, references, info = write_outputs(
            problem, search, result, out, time.perf_counter() - started, steps
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
