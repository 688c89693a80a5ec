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
import shlex
import sqlite3
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

# Library deprecation chatter is not for the user of a command-line tool.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
warnings.filterwarnings("ignore", message="Sparse invariant checks")

from distributed.security import Security  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from moo_compress import manifest  # noqa: E402
from moo_compress.accuracy import NoTrainingData  # noqa: E402
from moo_compress.dispatch import Dispatcher, RetryPolicy, connect  # noqa: E402
from moo_compress.manifest import ManifestError, RunManifest  # noqa: E402
from moo_compress.problem import FleetProblem  # noqa: E402
from moo_compress.problem_checks import LIMITS, ProblemError, build, check_class  # noqa: E402
from moo_compress.report import front_table, write_outputs  # noqa: E402
from moo_compress.run_folder import STORE_NAME, FolderError, RunFolder  # noqa: E402
from moo_compress.search import FleetSearch, SearchSettings, candidate_devices  # noqa: E402
from moo_compress.search import Progress as SearchProgress  # noqa: E402
from surrogates.store import MeasurementStore  # noqa: E402


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one :class:`UsageError` line, no usage dump
    (line breaks inside offending arguments are escaped)."""

    def error(self, message: str) -> None:
        raise UsageError(message.replace("\r", "\\r").replace("\n", "\\n"))


def _int_in(setting: str):
    """An argparse type: an integer within ``LIMITS[setting]``, else a one-line error."""
    low, high = LIMITS[setting]

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{value} is not allowed; allowed: an integer from {low} to {high}"
            )
        return value

    return parse


def _folder(text: str) -> Path:
    """An argparse type: a non-empty folder path (``""`` would mean the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("'' is not allowed; allowed: a folder path")
    return Path(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The runner's options. A setting not given is None (``--resume`` then takes it from
    the run's manifest, a new run from the problem class)."""
    parser = OneLineParser(prog="python -m moo_compress.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "problem_file", nargs="?", help="Python file defining a FleetProblem (none: --resume)"
    )
    parser.add_argument(
        "--out", type=_folder, help="output folder (default runs/<problem>-<time>-<hex>)"
    )
    parser.add_argument("--seed", type=_int_in("seed"), help="default 0")
    parser.add_argument("--budget", type=_int_in("budget"), help="real latency measurements")
    parser.add_argument("--accuracy-budget", type=_int_in("accuracy_budget"))
    parser.add_argument("--generations", type=_int_in("generations"))
    parser.add_argument("--pop-size", type=_int_in("pop_size"))
    parser.add_argument(
        "--finetune-steps",
        type=_int_in("finetune_steps"),
        help="fine-tune every final front row this many steps and report both accuracies",
    )
    parser.add_argument("--no-transfer", action="store_true", help="independent GPs per cluster")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out with its own settings (--resume --out DIR is enough)",
    )
    parser.add_argument(
        "--scheduler",
        help="measure on the Dask scheduler at tls://HOST:PORT (tcp:// only with --insecure; "
        "default: an embedded in-process cluster)",
    )
    parser.add_argument("--tls-ca-file", help="CA certificate (PEM) of a tls:// scheduler")
    parser.add_argument("--tls-cert", help="this client's certificate (PEM)")
    parser.add_argument("--tls-key", help="this client's private key (PEM)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a plain tcp:// scheduler (unauthenticated, unencrypted pickles)",
    )
    args = parser.parse_args(argv)
    if args.problem_file is None and not args.resume:
        parser.error("the following arguments are required: problem_file")
    if args.resume and args.out is None and args.problem_file is None:
        parser.error("--resume needs --out DIR (or the problem file, to find its latest run)")
    tls = [args.tls_ca_file, args.tls_cert, args.tls_key]
    if any(tls) and not (all(tls) and args.scheduler):
        parser.error("--tls-ca-file, --tls-cert and --tls-key go together, with --scheduler")
    if args.scheduler is not None:
        check_scheduler(args.scheduler, bool(args.tls_ca_file), args.insecure)
    return args


def check_scheduler(address: str, tls: bool, insecure: bool) -> None:
    """Refuse a scheduler address that would send Dask's pickles in the clear, unless
    ``insecure`` (:func:`_dispatcher` then warns when it connects).

    Raises:
        UsageError: not ``tls://`` or ``tcp://``; ``tls://`` without TLS files; plain
            ``tcp://`` (or no scheme) without ``insecure``; TLS files with ``tcp://``.
    """
    scheme = address.split("://", 1)[0] if "://" in address else "tcp"
    if scheme == "tls":
        if not tls:
            raise UsageError(f"scheduler {address!r} needs --tls-ca-file, --tls-cert and --tls-key")
        return
    if scheme != "tcp":
        raise UsageError(
            f"scheduler {address!r} is not allowed; allowed: tls://HOST:PORT, or "
            "tcp://HOST:PORT with --insecure"
        )
    if tls:
        raise UsageError(f"scheduler {address!r} is plain tcp://; TLS files need tls://")
    if not insecure:
        raise UsageError(
            f"scheduler {address!r} is plain TCP: Dask's messages (pickled code and data) would "
            "travel unauthenticated and unencrypted; use tls:// with --tls-ca-file, --tls-cert "
            "and --tls-key, or add --insecure on a network you trust"
        )


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
    if security is None:
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


def finetune_steps(args: argparse.Namespace, default: int) -> int:
    """Fine-tune steps: ``--finetune-steps``, else ``default`` (the resumed run's, or the
    problem class's ``finetune_steps``)."""
    return args.finetune_steps if args.finetune_steps is not None else default


def resume_command(out: Path) -> str:
    """The shell-quoted command that continues the run in ``out``."""
    return f"python -m moo_compress.run --resume --out {shlex.quote(str(out))}"


def _fail(error: Exception) -> int:
    """Report bad input as one unwrapped line on stderr; the exit code is 2."""
    print(f"error: {error}", file=sys.stderr)
    return 2


@dataclass
class _Start:
    """What the runner knows once the folder is locked and the problem is built."""

    folder: RunFolder
    problem: FleetProblem
    manifest: RunManifest
    resumed: bool
    finetune_steps: int


def _start(args: argparse.Namespace, console: Console) -> _Start:
    """Lock the folder, read (``--resume``) or make the manifest, build the problem.

    Raises:
        UsageError, FolderError, ManifestError, ProblemError: one line for the user.
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
            run = replace(stored, finetune_steps=steps)
        else:
            settings = SearchSettings(
                budget=args.budget or problem.budget,
                accuracy_budget=args.accuracy_budget or problem.accuracy_budget,
                pop_size=args.pop_size or problem.pop_size,
                generations=args.generations or problem.generations,
                transfer=not args.no_transfer,
                seed=seed,
            )
            steps = finetune_steps(args, problem.finetune_steps)
            connection = manifest.connection_of(args)
            run = manifest.new_manifest(problem, problem_file, settings, connection, steps, ident)
    except BaseException:
        folder.abandon()
        raise
    folder.lock.note(run.run_id)
    return _Start(folder, problem, run, stored is not None, steps)


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


def _count(store: MeasurementStore) -> str:
    """How many measurements the store holds, in words (even if it cannot be read)."""
    try:
        return f"{store.count()} measurements are"
    except sqlite3.Error:
        return "the measurements taken so far are"


def main(argv: list[str] | None = None) -> int:
    console = Console()
    started = time.perf_counter()
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        start = _start(args, console)
    except (UsageError, FolderError, ManifestError, ProblemError) as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        print("interrupted before anything was measured", file=sys.stderr)
        return 130
    problem, out, folder = start.problem, start.folder.out, start.folder
    settings = start.manifest.search_settings()
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
    steps = start.finetune_steps
    if steps > 0:
        try:
            problem.evaluator.training_data()
        except NoTrainingData as exc:
            console.print(f"[yellow]No fine-tune of the front: {exc}.[/yellow]", highlight=False)
            steps = 0
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
        if _measured(store) == 0:
            console.print(
                "[yellow]--resume: the store holds no measurement yet; the run starts from "
                "the beginning.[/yellow]",
                highlight=False,
            )

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

    finished = False
    try:
        with _dispatcher(args, problem) as dispatcher, progress:
            search = FleetSearch(problem, store, settings, report, dispatcher)
            result = search.run()
        front, references, info = write_outputs(
            problem, search, result, out, time.perf_counter() - started, steps
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
        f"evaluations; {info['wall_seconds']:.0f} s. Outputs in {out}/",
        highlight=False,
    )
    return 0


def _measured(store: MeasurementStore) -> int:
    """Rows in the store; 1 when it cannot be read (then nothing is removed)."""
    try:
        return store.count()
    except sqlite3.Error:
        return 1


def _no_room(out: Path, store: MeasurementStore, exc: Exception) -> OSError:
    return OSError(
        f"cannot write to {out}: {exc}; {_count(store)} saved in {out / STORE_NAME}, "
        f"continue with: {resume_command(out)} once there is room"
    )


if __name__ == "__main__":
    sys.exit(main())
