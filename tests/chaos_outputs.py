"""Chaos driver for the atomic-output test (run as a script by tests/test_run_cli.py).

Imports the runner once, then forks children that run ``python -m moo_compress.run ARGS``
on fresh copies of a finished run folder (``--out`` is appended to ARGS), with a hook at
every output-writing step (:data:`moo_compress.atomic_write.STEP_HOOK`):

1. **Every step, one run.** An uninterrupted run copies the folder at each step ``i``,
   in its hook, before the step is taken: ``kill-i`` holds exactly what a ``kill -9`` at
   step ``i`` leaves on disk. (A SIGKILL runs no code of the process; what it had
   written through the kernel stays, what it had not is lost, and the copy, taken while
   the process is stopped in the hook, sees the same.) This run's own folder is the
   uninterrupted new set.
2. **A real kill.** One child is killed (SIGKILL) at the step named ``REAL_KILL``; the
   test checks that its folder matches ``kill-i`` of that step.
3. **Resumes.** An uninterrupted ``--resume`` runs in a copy of each distinct kind of
   leftover: which sets ``.outputs`` holds (current, sealed, partial), which top-level
   names (temporaries by pattern), and whether the current set is the old or new one.
   Kills that leave the same kind of folder take the same path through the resume
   (:func:`moo_compress.output_set.clean_leftovers` removes partial and superseded sets
   whatever files they hold), so one resume per kind covers them all.

Prints one JSON object.

Usage: python tests/chaos_outputs.py SOURCE_RUN WORK_FOLDER RUNNER_ARGS...
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import moo_compress.atomic_write as atomic_write
from moo_compress.output_set import CURRENT, PARTIAL, VERSIONS, verify
from moo_compress.run import main

REAL_KILL = "switch to the new set"
"""The step at which a child is really killed, to check the copies against."""


def _child(argv: list[str], hook: Callable[[int, str], None]) -> int:
    """Run the runner in a forked child calling ``hook(i, step)`` at step i (from 1);
    its exit status (negative: killed by that signal)."""
    pid = os.fork()
    if pid == 0:
        seen = []

        def step(what: str) -> None:
            seen.append(what)
            hook(len(seen), what)

        atomic_write.STEP_HOOK = step
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _seen(out: Path) -> dict:
    """What a reader finds: the verified set's summary fields, or the error."""
    try:
        summary = verify(out)
    except Exception as exc:  # recorded, judged by the test
        return {"error": f"{type(exc).__name__}: {exc}"}
    if summary is None:
        return {"summary": None}
    return {
        "summary": {"run_id": summary["run_id"], "finetune_steps": summary["finetune"]["steps"]},
        "files": summary["files"],
        "front": (out / "front.csv").read_text(),
        "top_level": sorted(p.name for p in out.iterdir()),
        "sets": sorted(p.name for p in (out / VERSIONS).iterdir()),
    }


def leftovers(out: Path, seen: dict) -> list:
    """The kind of folder a kill left, free of names unique to one run: the top-level
    names (temporaries as ``.NAME.tmp-*``), the kinds of the sets in ``.outputs`` and
    the fine-tune steps of the current set."""
    current = os.readlink(out / CURRENT) if (out / CURRENT).is_symlink() else None
    top = sorted(re.sub(r"\.tmp-\w+$", ".tmp-*", p.name) for p in out.iterdir())
    sets = sorted(
        "partial"
        if p.name.endswith(PARTIAL)
        else "current"
        if current and Path(current).name == p.name
        else "sealed"
        for p in (out / VERSIONS).iterdir()
    )
    steps = (seen.get("summary") or {}).get("finetune_steps")
    return [top, sets, steps]


def run(source: Path, work: Path, args: list[str]) -> dict:
    reference = work / "reference"
    shutil.copytree(source, reference, symlinks=True)
    steps: list[str] = []

    def copy(i: int, what: str) -> None:
        steps.append(what)
        shutil.copytree(reference, work / f"kill-{i}", symlinks=True)
        (work / "steps.json").write_text(json.dumps(steps))

    status = _child([*args, "--out", str(reference)], copy)
    steps = json.loads((work / "steps.json").read_text())
    report = {"reference_status": status, "steps": steps, "reference": _seen(reference)}
    report["before"] = _seen(source)

    real = work / "real-kill"
    shutil.copytree(source, real, symlinks=True)
    at = steps.index(REAL_KILL) + 1 if REAL_KILL in steps else 0

    def kill(i: int, what: str) -> None:
        if i == at:
            os.kill(os.getpid(), signal.SIGKILL)

    status = _child([*args, "--out", str(real)], kill)
    seen = _seen(real)
    report["real_kill"] = {"step": at, "status": status, "seen": seen}
    report["real_kill"]["leftovers"] = leftovers(real, seen)

    report["kills"] = []
    resumed: set[str] = set()
    for i, what in enumerate(steps, start=1):
        out = work / f"kill-{i}"
        seen = _seen(out)
        kind = leftovers(out, seen)
        kill_report = {"step": what, "after_kill": seen, "leftovers": kind}
        if json.dumps(kind) not in resumed:
            resumed.add(json.dumps(kind))
            kill_report["resume_status"] = _child([*args, "--out", str(out)], lambda i, w: None)
            kill_report["after_resume"] = _seen(out)
        report["kills"].append(kill_report)
        shutil.rmtree(out)
    return report


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])))
