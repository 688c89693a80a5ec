"""The runner's command line: its options and one-line usage errors.

``python -m moo_compress.run PROBLEM_FILE [options]`` (see :mod:`moo_compress.run`).
:class:`OneLineParser` is shared with the benchmark command lines.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from moo_compress.problem import FleetProblem


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


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The runner's options (see the README, "What a run gives you").

    Raises:
        UsageError: one line naming the bad option and what is allowed.
    """
    parser = OneLineParser(
        prog="python -m moo_compress.run",
        description="Fleet-aware multi-objective compression of one problem file.",
    )
    parser.add_argument("problem_file", help="Python file defining a FleetProblem")
    parser.add_argument("--out", type=Path, help="output folder (default runs/<problem>-<time>)")
    positive = int_at_least(1)
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--budget", type=positive, help="real latency measurements in total")
    parser.add_argument("--accuracy-budget", type=positive, help="real accuracy evaluations")
    parser.add_argument("--generations", type=positive)
    parser.add_argument("--pop-size", type=int_at_least(4))
    parser.add_argument(
        "--finetune-steps",
        type=int_at_least(0),
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
