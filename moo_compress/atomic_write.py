"""Files that are either absent, the old version or the new one: never half written.

Every writer here writes to a temporary name beside the target (same folder, so same
file system), flushes it to disk, then moves it into place with :func:`os.replace`,
which POSIX makes atomic. A ``kill -9`` at any instant leaves the old file or the new
one, at worst plus a ``.*.tmp-*`` file that :func:`remove_temporaries` clears.

Each completed write passes through :func:`step`, where a test can inject a crash
(:data:`STEP_HOOK`), so that every output-writing step can be killed in turn.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

STEP_HOOK: Callable[[str], None] | None = None
"""Called with a short description before every atomic step; None in normal use (a test
sets it to kill the process at a chosen step)."""

TEMP_MARK = ".tmp-"
"""Part of every temporary name: ``.<name>.tmp-<hex>``."""


def step(what: str) -> None:
    """Announce one atomic step (see :data:`STEP_HOOK`)."""
    if STEP_HOOK is not None:
        STEP_HOOK(what)


def temporary_name(path: Path) -> Path:
    """A fresh temporary path beside ``path``: ``.<name>.tmp-<hex>``."""
    return path.with_name(f".{path.name}{TEMP_MARK}{uuid.uuid4().hex[:12]}")


def fsync_dir(folder: Path) -> None:
    """Flush ``folder``'s entries (renames, new files) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; on a clean exit it is
    flushed and moved onto ``path``; on an exception it is removed and ``path`` is left
    as it was.

    Example::

        with replacing(out / "front.csv") as tmp:
            frame.to_csv(tmp, index=False)
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        step(f"replace {path.name}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Atomically replace ``path``'s content by ``data``."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Atomically replace ``path``'s content by ``text`` (UTF-8)."""
    write_bytes(path, text.encode())


def remove_temporaries(folder: Path) -> None:
    """Remove the temporary files and links a killed writer left in ``folder``."""
    for leftover in folder.glob(f".*{TEMP_MARK}*"):
        if leftover.is_symlink() or leftover.is_file():
            leftover.unlink(missing_ok=True)
