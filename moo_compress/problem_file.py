"""Problem files: trusted Python files that define one :class:`FleetProblem` subclass.

:func:`load_problem_class` imports such a file (``python -m moo_compress.run FILE``, a
Dask worker's preload script, a benchmark); :func:`fingerprint` names a problem's
decision space in its measurement store. Neither pulls in the runner's console or plots.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from moo_compress.problem import FleetProblem


class ProblemFileError(ValueError):
    """A problem file that does not exist, does not load, or does not define exactly
    one problem; the message is one line."""


def load_problem_class(path: Path) -> type[FleetProblem]:
    """The one :class:`FleetProblem` subclass defined in ``path`` (imported ones, such as
    a base class, do not count).

    Raises:
        ProblemFileError: naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise ProblemFileError(f"problem file {str(path)!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"moo_problem_{path.stem}", path)
    if spec is None:
        raise ProblemFileError(
            f"problem file {str(path)!r} is not a Python file; allowed: a .py file"
        )
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise ProblemFileError(
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
        raise ProblemFileError(
            f"problem file {str(path)!r} must define exactly one FleetProblem "
            f"subclass; found {names or 'none'}"
        )
    return found[0]


def fingerprint(problem: FleetProblem) -> str:
    """``<name>:<12 hex digits>`` identifying a problem's name and decision space (see
    :meth:`DecisionSpace.fingerprint
    <moo_compress.decision_space.DecisionSpace.fingerprint>`) in its store, so another
    problem's store is refused."""
    text = f"{problem.name}|{problem.space.fingerprint()}"
    return f"{problem.name}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"
