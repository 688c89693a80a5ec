"""The output folder of one run: checked, created if needed, locked, tidied.

* ``--out ""`` is refused (it would mean the current folder).
* A new run needs a folder that does not exist or is empty (a folder holding other
  files is not overwritten); a resumed run needs one that holds a store.
* The folder is locked for the run (:mod:`moo_compress.run_lock`): a second run on it is
  refused at once.
* What a killed run left behind (partial output sets, temporary files) is removed.
* A start that fails before anything was measured leaves no folder behind
  (:meth:`RunFolder.abandon`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from moo_compress.output_set import clean_leftovers
from moo_compress.run_lock import LOCK_NAME, FolderInUse, RunLock

STORE_NAME = "measurements.sqlite"


class FolderError(Exception):
    """The folder cannot hold this run (one line for the user)."""


class RunFolder:
    """The locked output folder of this process's run.

    Args:
        out: The folder.
        resume: Whether the run continues the one stored in ``out``.

    Raises:
        FolderError: empty path, not writable, in use by another run, holds a run
            (without ``resume``), holds no store (with ``resume``), or holds other files.
    """

    def __init__(self, out: Path, resume: bool) -> None:
        self.out = out
        self.store = out / STORE_NAME
        if out.exists() and not out.is_dir():
            raise FolderError(f"--out {str(out)!r} is a file; allowed: a folder")
        if out.is_dir() and not resume and not self.store.exists():
            foreign = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)
            if foreign:
                listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                raise FolderError(
                    f"{out} is not empty and holds no run ({listed}); allowed: a new or "
                    "empty folder, or a run folder with --resume"
                )
        missing = [p for p in (out, *out.parents) if not p.exists()]
        self._created = missing[-1] if missing else None
        try:
            out.mkdir(parents=True, exist_ok=True)
            self.lock = RunLock(out)
        except FolderInUse as exc:
            raise FolderError(str(exc)) from None
        except OSError as exc:
            self.abandon()
            raise FolderError(
                f"output folder {str(out)!r} is not writable: {exc.strerror or exc}"
            ) from None
        try:
            self._check(resume)
        except FolderError:
            self.abandon()
            raise
        clean_leftovers(out)

    def _check(self, resume: bool) -> None:
        """Under the lock: a resume needs a store, a new run must not find one."""
        if resume and not self.store.is_file():
            raise FolderError(f"--resume: {self.store} does not exist")
        if not resume and self.store.exists():
            raise FolderError(
                f"{self.out} already holds a run; add --resume or choose another --out"
            )

    def abandon(self, measured: int = 0) -> None:
        """Give the folder up after a failed start: if this run created it and nothing
        was measured, remove it; otherwise only unlock it."""
        lock = getattr(self, "lock", None)
        if lock is not None:
            lock.release()
        if self._created is not None and measured == 0 and self._created.exists():
            shutil.rmtree(self._created, ignore_errors=True)
            self._created = None

    def release(self) -> None:
        """Unlock at the end of the run."""
        self.lock.release()
