"""Checks of a problem class from a problem file, so its mistakes are one clear line.

:func:`check_class` checks the class attributes (types and ranges, the same limits as
the runner's options, :data:`LIMITS`) and that the required hooks are defined, before
anything is built. :func:`build` constructs the problem and turns any exception raised
in the class's own code (a hook that fails, returns the wrong thing, a weights file that
does not load) into one :class:`ProblemError` line that names the class, the exception
and, when the failing line is in the problem file, its line number.
"""

from __future__ import annotations

import numbers
import re
import traceback
from pathlib import Path

from moo_compress.dispatch.retry import RetryPolicy
from moo_compress.problem import FleetCompressionProblem, FleetProblem

LIMITS = {
    "seed": (0, 2**32 - 1),
    "budget": (1, 1_000_000),
    "accuracy_budget": (1, 1_000_000),
    "generations": (1, 100_000),
    "pop_size": (4, 10_000),
    "finetune_steps": (0, 1_000_000),
}
"""Allowed (min, max) of each integer setting, both ends included: the runner's options
and the problem class attributes of the same name. Seeds are 32-bit (numpy's and
scikit-learn's generators take nothing larger)."""

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ProblemError(Exception):
    """A problem class or its hooks are wrong (one line for the user)."""


def check_class(cls: type[FleetProblem]) -> None:
    """Raise ProblemError at the first class attribute or hook that is wrong."""
    where = cls.__name__
    if not isinstance(cls.name, str) or not NAME.fullmatch(cls.name):
        raise ProblemError(
            f"{where}.name = {cls.name!r} is not allowed; allowed: 1-64 letters, digits, "
            "'_', '.' or '-', not starting with '.', '_' or '-'"
        )
    for attribute in ("budget", "accuracy_budget", "pop_size", "generations", "finetune_steps"):
        low, high = LIMITS[attribute]
        value = getattr(cls, attribute)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ProblemError(
                f"{where}.{attribute} = {value!r} is not allowed; allowed: an integer from "
                f"{low} to {high}"
            )
    _optional_number(cls, "min_accuracy", 0.0, 1.0)
    _optional_number(cls, "max_worst_latency_ms", 0.0, None)
    if cls.retry_policy is not None and not isinstance(cls.retry_policy, RetryPolicy):
        raise ProblemError(
            f"{where}.retry_policy = {cls.retry_policy!r} is not allowed; allowed: None or a "
            "moo_compress.dispatch.RetryPolicy"
        )
    if issubclass(cls, FleetCompressionProblem):
        if not isinstance(cls.space_options, dict):
            raise ProblemError(
                f"{where}.space_options = {cls.space_options!r} is not allowed; allowed: a "
                "dict of SearchSpace.from_model keyword arguments"
            )
        _optional_number(cls, "max_size_bits", 0.0, None)
        _optional_number(cls, "max_macs", 0.0, None)
        stages = cls.feature_stages
        if isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= 64:
            raise ProblemError(
                f"{where}.feature_stages = {stages!r} is not allowed; allowed: an integer "
                "from 1 to 64"
            )
        for hook in ("build_model", "build_fleet"):
            if getattr(cls, hook) is getattr(FleetCompressionProblem, hook):
                raise ProblemError(f"{where} does not define {hook}(); it must (see the README)")


def _optional_number(cls: type, attribute: str, low: float, high: float | None) -> None:
    value = getattr(cls, attribute)
    if value is None:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and value > low if high is None else ok and low <= value <= high
    if not ok:
        allowed = f"a number > {low:g}" if high is None else f"a number from {low:g} to {high:g}"
        raise ProblemError(
            f"{cls.__name__}.{attribute} = {value!r} is not allowed; allowed: None or {allowed}"
        )


def build(cls: type[FleetProblem], seed: int, problem_file: Path) -> FleetProblem:
    """``cls(seed=seed)``; any exception but KeyboardInterrupt becomes one ProblemError
    line (naming the problem file's line where the failure arose, if it did)."""
    try:
        return cls(seed=seed)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc).strip() else ""
        where = ""
        frames = traceback.extract_tb(exc.__traceback__)
        mine = [f for f in frames if Path(f.filename).resolve() == problem_file.resolve()]
        if mine:
            where = f" (at {problem_file.name}:{mine[-1].lineno}, in {mine[-1].name})"
        if isinstance(exc, ValueError) and not mine:
            raise ProblemError(reason or type(exc).__name__) from None  # already one line
        raise ProblemError(
            f"building {cls.__name__} failed{where}: {type(exc).__name__}"
            + (f": {reason}" if reason else "")
        ) from None
