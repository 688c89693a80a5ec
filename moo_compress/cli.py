"""The runner's command line: its options and one-line usage errors.

``python -m moo_compress.run PROBLEM_FILE [options]`` (see :mod:`moo_compress.run`).
:class:`OneLineParser` is shared with the benchmark command lines.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from pathlib import Path

from moo_compress.problem_checks import LIMITS
from moo_compress.search_settings import ACQUISITIONS


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one :class:`UsageError` line, no usage dump
    (line breaks inside offending arguments are escaped)."""

    def error(self, message: str) -> None:
        raise UsageError(message.replace("\r", "\\r").replace("\n", "\\n"))


def int_at_least(minimum: int) -> Callable[[str], int]:
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


def int_in(setting: str) -> Callable[[str], int]:
    """An argparse type: an integer within :data:`LIMITS` ``[setting]``, else a one-line
    error."""
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
    """The runner's options (see the README, "What a run gives you"). A setting not
    given is None: ``--resume`` then takes it from the run's manifest (see
    :mod:`moo_compress.manifest`), a new run from the problem class.

    Raises:
        UsageError: one line naming the bad option and what is allowed.
    """
    parser = OneLineParser(
        prog="python -m moo_compress.run",
        description="Fleet-aware multi-objective compression of one problem file.",
    )
    parser.add_argument(
        "problem_file", nargs="?", help="Python file defining a FleetProblem (none: --resume)"
    )
    parser.add_argument(
        "--out", type=_folder, help="output folder (default runs/<problem>-<time>-<hex>)"
    )
    parser.add_argument("--seed", type=int_in("seed"), help="default 0")
    parser.add_argument("--budget", type=int_in("budget"), help="real latency measurements")
    parser.add_argument("--accuracy-budget", type=int_in("accuracy_budget"))
    parser.add_argument("--generations", type=int_in("generations"))
    parser.add_argument("--pop-size", type=int_in("pop_size"))
    parser.add_argument(
        "--finetune-steps",
        type=int_in("finetune_steps"),
        help="fine-tune every final front row this many steps and report both accuracies",
    )
    parser.add_argument("--no-transfer", action="store_true", help="independent GPs per cluster")
    parser.add_argument(
        "--acquisition",
        choices=ACQUISITIONS,
        default="ehvi",
        help="which measurements to take: search v2's decoupled fleet EHVI with the transfer "
        "switch and a greedy-hypervolume final front (default), or the uncertainty policy",
    )
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
        parser.error(
            "no problem file given; allowed: a problem file such as "
            "problems/resnet50_hdap.py, or --resume --out DIR"
        )
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
    ``insecure`` (the runner then warns when it connects).

    Raises:
        UsageError: not ``tls://`` or ``tcp://``; plain ``tcp://`` (or no scheme)
            without ``insecure``; TLS files with ``tcp://``.
    """
    scheme = address.split("://", 1)[0] if "://" in address else "tcp"
    if scheme == "tls":
        return  # without certificates the scheduler refuses the connection (one line)
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


def finetune_steps(args: argparse.Namespace, default: int) -> int:
    """Fine-tune steps: ``--finetune-steps``, else ``default`` (the resumed run's, or the
    problem class's ``finetune_steps``, checked by
    :func:`~moo_compress.problem_checks.check_class`)."""
    return args.finetune_steps if args.finetune_steps is not None else default


def resume_command(out: Path) -> str:
    """The shell-quoted command that continues the run in ``out``."""
    return f"python -m moo_compress.run --resume --out {shlex.quote(str(out))}"
