"""One run per output folder: an exclusive lock on ``<out>/.lock``.

The lock is an ``flock`` on the file, taken without waiting: a second run on the same
folder is refused at once. The kernel drops the lock when its process ends, however it
ends (``kill -9`` included), so a crashed run never leaves the folder locked. The file
itself stays (deleting a lock file races with a process about to lock it); it holds the
pid and run id of the last run that held it, for the refusal message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = ".lock"


class FolderInUse(Exception):
    """Another process holds the folder's lock."""


class RunLock:
    """The exclusive lock of one output folder, held until :meth:`release` (or the end
    of the process).

    Raises:
        FolderInUse: another run holds it; the message names its pid.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 200, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise FolderInUse(
                f"{folder} is in use by another run ({holder or 'pid unknown'}); "
                "wait for it to end or choose another --out"
            ) from None
        self.note("")

    def note(self, run_id: str) -> None:
        """Record this process (and ``run_id``) in the lock file."""
        text = f"pid {os.getpid()}" + (f", run {run_id}" if run_id else "")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text.encode(), 0)

    def release(self) -> None:
        """Unlock (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
