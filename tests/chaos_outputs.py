"""Chaos driver for the atomic-output test (run as a script by tests/test_run_cli.py).

Imports the runner once, then for each output-writing step ``i`` forks a child that runs
``python -m moo_compress.run ARGS`` on a fresh copy of a finished run folder and kills
itself (SIGKILL) at step ``i`` (through :data:`moo_compress.atomic_write.STEP_HOOK`).
After each kill it records what a reader of the folder sees, then forks an uninterrupted
``--resume`` and records the front it finishes with. Prints one JSON object.

Usage: python tests/chaos_outputs.py SOURCE_RUN WORK_FOLDER RUNNER_ARGS...
(``--out`` is appended to RUNNER_ARGS).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import moo_compress.atomic_write as atomic_write
from moo_compress.output_set import verify
from moo_compress.run import main


def _child(argv: list[str], kill_at: int | None, steps_file: Path) -> int:
    """Run the runner in a forked child; its exit status (negative: killed by signal)."""
    pid = os.fork()
    if pid == 0:
        seen = []

        def hook(what: str) -> None:
            seen.append(what)
            steps_file.write_text(json.dumps(seen))
            if kill_at is not None and len(seen) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        atomic_write.STEP_HOOK = hook
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
        "sets": sorted(p.name for p in (out / ".outputs").iterdir()),
    }


def run(source: Path, work: Path, args: list[str]) -> dict:
    steps_file = work / "steps.json"
    reference = work / "reference"
    shutil.copytree(source, reference, symlinks=True)
    status = _child([*args, "--out", str(reference)], None, steps_file)
    steps = json.loads(steps_file.read_text())
    report = {"reference_status": status, "steps": steps, "reference": _seen(reference)}
    report["before"] = _seen(source)
    report["kills"] = []
    for i in range(1, len(steps) + 1):
        out = work / f"kill-{i}"
        shutil.copytree(source, out, symlinks=True)
        killed = _child([*args, "--out", str(out)], i, steps_file)
        after_kill = _seen(out)
        resumed = _child([*args, "--out", str(out)], None, steps_file)
        report["kills"].append(
            {
                "step": steps[i - 1],
                "status": killed,
                "after_kill": after_kill,
                "resume_status": resumed,
                "after_resume": _seen(out),
            }
        )
        shutil.rmtree(out)
    return report


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])))
